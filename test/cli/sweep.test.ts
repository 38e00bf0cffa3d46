/** `loom sweep`: the plan, errors located in the sweep file, a sweep end to end, re-running it, and Ctrl-C. */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loom } from '../helpers/cli.ts';
import { writeTinyPipeline } from '../helpers/tiny-pipeline.ts';

const ROOT = join(import.meta.dirname, '..', '..');

function sweepFile(over: Record<string, unknown> = {}): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'loom-sweep-cli-'));
  writeTinyPipeline(dir);
  const file = join(dir, 'sweep.json');
  writeFileSync(file, JSON.stringify({ sweep: 'tiny', pipeline: 'p.json', grid: { 'optimizer.lr': [1e-4, 1e-3] }, seeds: 2, budget: { steps: 48 }, ...over }));
  return { dir, file };
}

describe('loom sweep', () => {
  it('--dry-run prints every run with its overrides and runs nothing', async () => {
    const { dir, file } = sweepFile();
    const r = await loom('sweep', file, '--dry-run', '--out', join(dir, 'out'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('sweep tiny: 2 configurations x 2 seeds = 4 runs of');
    expect(r.out).toContain('  lr=0.001/s2: --set optimizer.lr=0.001 --seed 2 --steps 48\n');
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('errors name the sweep file and pointer; usage errors exit 2', async () => {
    const { file } = sweepFile({ grid: { 'optimizer.lr': [1e-3, 'fast'] } });
    const r = await loom('sweep', file, '--dry-run');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${file}#/grid/optimizer.lr/1`);
    expect(r.err).not.toMatch(/^\s+at /m);
    expect((await loom('sweep')).code).toBe(2);
    expect((await loom('sweep', file, '--workers', '0')).code).toBe(2);
  });

  it('runs the sweep on 2 workers and writes the report; running it again skips every run', async () => {
    const { dir, file } = sweepFile();
    const out = join(dir, 'out');
    const a = await loom('sweep', file, '--workers', '2', '--backend', 'cpu', '--out', out);
    expect(a.code).toBe(0);
    expect(a.err).toContain('4 runs of 2 configurations on 2 worker processes');
    expect(a.err.match(/^\[\d\/4\] lr=0\.0{2,3}1\/s\d: done in [\d.]+ s, final return ([\d.]+|-) \(running \d, left \d/gm)).toHaveLength(4);
    expect(a.out).toMatch(/^\| rank \| configuration \| optimizer.lr \| final return \(mean ± 95% CI\) \| seeds \|$/m);
    for (const f of ['sweep.md', 'sweep.csv', 'sweep.json', 'sensitivity.svg', 'curves.svg']) expect(existsSync(join(out, f))).toBe(true);
    for (const run of ['lr=0.0001/s1', 'lr=0.0001/s2', 'lr=0.001/s1', 'lr=0.001/s2']) expect(JSON.parse(readFileSync(join(out, run, 'run.json'), 'utf8')).status).toBe('finished');
    const b = await loom('sweep', file, '--workers', '2', '--backend', 'cpu', '--out', out);
    expect(b.code).toBe(0);
    expect(b.err.match(/already finished/g)).toHaveLength(4);
    expect(b.out).toBe(a.out);
    // The same ids with another budget: refused before any run starts.
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), budget: { steps: 64 } }));
    const c = await loom('sweep', file, '--workers', '2', '--backend', 'cpu', '--out', out);
    expect(c.code).toBe(2);
    expect(c.err).toContain('run lr=0.0001/s1 of sweep tiny: the configuration differs');
    expect(c.err).toContain('total_steps');
    expect(c.err).not.toContain('worker processes');
  });

  it('Ctrl-C stops every running run with a checkpoint, writes no report, and exits 130', async () => {
    // Long enough that no run finishes before the signal: 40000 iterations of the tiny pipeline.
    const { dir, file } = sweepFile({ budget: { steps: 640000 } });
    const out = join(dir, 'out');
    const r = await new Promise<{ code: number | null; err: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [join(ROOT, 'bin', 'loom.js'), 'sweep', file, '--workers', '2', '--backend', 'cpu', '--out', out], { cwd: ROOT, env: { ...process.env, LOOM_FROM_SOURCES: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      let sent = false;
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (!sent && /worker processes/.test(err)) {
          sent = true;
          // The parent only, as a test can: it forwards the stop to its workers.
          child.kill('SIGINT');
        }
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, err }));
    });
    expect(r.code).toBe(130);
    expect(r.err).toContain('stopped with 0 of 4 runs done and 4 left');
    expect(r.err).not.toMatch(/^\s+at /m);
    expect(existsSync(join(out, 'sweep.md'))).toBe(false);
    for (const run of ['lr=0.0001/s1', 'lr=0.0001/s2']) {
      expect(existsSync(join(out, run, 'checkpoint.json'))).toBe(true);
      expect(JSON.parse(readFileSync(join(out, run, 'run.json'), 'utf8')).status).toBe('stopped');
    }
    // Not started: no folder.
    expect(existsSync(join(out, 'lr=0.001', 's2'))).toBe(false);
  }, 120_000);
});
