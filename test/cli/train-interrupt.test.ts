/**
 * Ctrl-C during `loom train`: the run stops after the current iteration with exit code 130, writes a
 * valid checkpoint, and `--resume` continues from it to the end. Runs the real CLI in a child process.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function loom(args: string[], interruptOn?: RegExp): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    // The sources under test, not a dist/ build that may be older.
    const env = { ...process.env, LOOM_FROM_SOURCES: '1' };
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'loom.js'), ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (interruptOn && !sent && interruptOn.test(err)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('loom train: Ctrl-C', () => {
  it('saves a checkpoint after the current iteration, exits 130, and resumes to the end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-int-'));
    const args = ['train', 'graphs/pipelines/ppo-cartpole.json', '--steps', '60000', '--out', dir, '--backend', 'wasm'];
    const a = await loom(args, /iter 1\//);
    expect(a.code).toBe(130);
    expect(a.err).toMatch(/interrupted; saving a checkpoint after this iteration/);
    const stoppedAt = Number(/stopped at iteration (\d+)/.exec(a.out)?.[1]);
    // The signal is handled between iterations, long before the 117 of the full run.
    expect(stoppedAt).toBeGreaterThanOrEqual(1);
    expect(stoppedAt).toBeLessThan(117);
    expect(existsSync(join(dir, 'checkpoint.json'))).toBe(true);
    expect(a.err).not.toMatch(/^\s+at /m);
    const b = await loom([...args, '--resume']);
    expect(b.code).toBe(0);
    expect(b.out).toMatch(/finished at iteration 117 /);
  }, 120_000);
});

describe('loom compare: Ctrl-C', () => {
  it('stops the current run with a checkpoint, starts no other, writes no tables, and exits 130', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-int-'));
    const args = ['compare', 'graphs/pipelines/ppo-cartpole.json', '--seeds', '2', '--steps', '60000', '--out', dir, '--backend', 'wasm', '--workers', '1'];
    // The pool's line as it hands the first run to its worker.
    const a = await loom(args, /ppo-cartpole seed 1: start/);
    expect(a.code).toBe(130);
    expect(a.err).toMatch(/interrupted; saving a checkpoint after this iteration/);
    expect(a.err).toMatch(/ppo-cartpole seed 1: stopped at iteration \d+ \(checkpoint in .*\)\nloom compare: no tables written: run the same command again to resume/);
    expect(a.err).not.toMatch(/^\s+at /m);
    const run = join(dir, 'ppo-cartpole', 's1');
    expect(existsSync(join(run, 'checkpoint.json'))).toBe(true);
    expect(existsSync(join(dir, 'ppo-cartpole', 's2'))).toBe(false);
    expect(existsSync(join(dir, 'compare.md'))).toBe(false);
    expect(JSON.parse(readFileSync(join(run, 'run.json'), 'utf8')).status).toBe('stopped');
  }, 120_000);
});
