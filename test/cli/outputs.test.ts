/**
 * Output paths: a pipeline name cannot lead a run outside its output folder, and output folders or
 * files that cannot be written are E_IO user errors (exit 1, the path named, no stack), promptly.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { G, writeTinyPipeline } from '../helpers/tiny-pipeline.ts';
import { loom } from '../helpers/cli.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-out-'));

/** A tiny CartPole pipeline file named `name` (2 envs x 8 steps; 64 steps are 4 iterations). */
function pipelineFile(dir: string, name: string): string {
  return writeTinyPipeline(dir, { pipeline: name, update: { epochs: 1, minibatches: 1 }, total_steps: 32, checkpoint: undefined });
}

function expectUserError(r: { code: number; err: string }, code: string): void {
  expect(r.err).not.toMatch(/internal error|^\s+at /m);
  // train and compare say what they load ("loading pipeline…") before it can fail.
  expect(r.err).toMatch(new RegExp(`^error\\[${code}\\]`, 'm'));
  expect(r.code).toBe(1);
}

describe('pipeline names become folder names', () => {
  it('loom train with the default --out: "../../evil" is a schema error and nothing is written outside', async () => {
    const root = tmp();
    const cwd = join(root, 'a', 'b');
    mkdirSync(cwd, { recursive: true });
    const file = pipelineFile(root, '../../evil');
    const before = process.cwd();
    process.chdir(cwd);
    let r: Awaited<ReturnType<typeof loom>>;
    try {
      r = await loom('train', file, '--backend', 'cpu');
    } finally {
      process.chdir(before);
    }
    expectUserError(r, 'E_SCHEMA');
    expect(r.err).toContain(`${file}#/pipeline`);
    expect(r.err).toMatch(/folder name/);
    expect(readdirSync(root).sort()).toEqual(['a', 'p.json']);
    expect(readdirSync(join(root, 'a'))).toEqual(['b']);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('loom compare: "../evil" in DIR/<pipeline>/s<seed> is a schema error and nothing is written', async () => {
    const root = tmp();
    const file = pipelineFile(root, '../evil');
    const r = await loom('compare', file, '--seeds', '1', '--steps', '32', '--out', join(root, 'out'), '--backend', 'cpu');
    expectUserError(r, 'E_SCHEMA');
    expect(readdirSync(root)).toEqual(['p.json']);
  });

  it.each([['a/b'], ['a\\b'], ['..'], ['.hidden'], ['a\u0001b'], ['']])('loom check rejects the pipeline name %j at /pipeline', async (name) => {
    const root = tmp();
    const r = await loom('check', pipelineFile(root, name));
    expectUserError(r, 'E_SCHEMA');
    expect(r.err).toContain('#/pipeline');
  });

  it('ordinary names still pass: letters, digits, ".", "_", "-"', async () => {
    const r = await loom('check', pipelineFile(tmp(), 'PPO_v2.1-cartpole'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('outputs that cannot be written are E_IO', () => {
  it('loom run --out DIR where DIR is a folder', async () => {
    const dir = tmp();
    const r = await loom('run', 'graphs/examples/affine.graph.json', '--inputs', 'graphs/examples/affine.inputs.json', '--backend', 'cpu', '--out', dir);
    expectUserError(r, 'E_IO');
    expect(r.err).toContain(dir);
    expect(r.err).toMatch(/is a folder, not a file/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('loom experts --svg under /proc returns (no hang) with E_IO', async () => {
    const r = await loom('experts', '--d0', '4096', '--L', '2048', '--w2', '1e7', '--svg', '/proc/loom-x/cost.svg');
    expectUserError(r, 'E_IO');
    expect(r.err).toMatch(/cannot write \/proc\/loom-x\/cost\.svg: \/proc is a kernel file system/);
  });

  it('loom calibrate --out under /proc is refused before measuring', async () => {
    const r = await loom('calibrate', '--quick', '--backend', 'cpu', '--out', '/proc/loom-x/profile.json');
    expectUserError(r, 'E_IO');
    expect(r.err).not.toMatch(/peakFlops|measuring/i);
  });

  it('loom train --out under a file (ENOTDIR) and under /proc', async () => {
    const root = tmp();
    const file = pipelineFile(root, 'ok');
    writeFileSync(join(root, 'f'), '');
    const a = await loom('train', file, '--backend', 'cpu', '--out', join(root, 'f', 'run'));
    expectUserError(a, 'E_IO');
    expect(a.err).toContain(`${join(root, 'f')} is a file, not a folder`);
    const b = await loom('train', file, '--backend', 'cpu', '--out', '/proc/loom-x/run');
    expectUserError(b, 'E_IO');
  });
});

describe('loom train --resume after kill -9', () => {
  it('says on stderr, in one line, what it dropped from metrics.jsonl', async () => {
    const root = tmp();
    const file = pipelineFile(root, 'ok');
    const out = join(root, 'run');
    expect((await loom('train', file, '--backend', 'cpu', '--out', out)).code).toBe(0);
    appendFileSync(join(out, 'metrics.jsonl'), '{"iteration":3,"glob');
    const r = await loom('train', file, '--backend', 'cpu', '--out', out, '--resume');
    expect(r.code).toBe(0);
    expect(r.err.split('\n').filter((l) => l.startsWith('resume: dropped'))).toEqual([
      `resume: dropped the last line of ${join(out, 'metrics.jsonl')} (1 incomplete or unreadable line); the run continues from the checkpoint at iteration 2`,
    ]);
  });
});
