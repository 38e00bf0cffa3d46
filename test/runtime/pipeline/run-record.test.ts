/**
 * run.json: what a run folder records (status transitions included), and what it refuses: starting
 * afresh over a finished run or a checkpoint, and resuming with another configuration.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { schemaValidator } from '../../../compiler/frontend/schema.ts';
import { train, type TrainOptions } from '../../../runtime/pipeline/driver.ts';
import { gitCommit, type RunRecord } from '../../../runtime/pipeline/run-record.ts';
import { loomErrAsync } from '../../helpers/loom-error.ts';
import { tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const ROOT = join(import.meta.dirname, '..', '..', '..');
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-runrec-'));
const record = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunRecord;
const run = async (cfg: ReturnType<typeof tiny>, opts: TrainOptions) => tf.dispose(Object.values((await train(cfg, opts)).params));

describe('run.json', () => {
  it('records the resolved pipeline, the overrides and command line, provenance, backend, Node and times', async () => {
    const dir = tmp();
    const cfg = tiny();
    const invocation = { command: 'train', args: ['tiny.json'], flags: { set: ['update.epochs=2'], seed: '3' } };
    const seen: string[] = [];
    await run(cfg, { outDir: dir, overrides: ['update.epochs=2'], invocation, backend: 'cpu', onProgress: () => seen.push(record(dir).status) });
    expect(seen).toEqual(['running', 'running', 'running', 'running']);
    const r = record(dir);
    expect(schemaValidator('run.schema.json')(r)).toBe(true);
    expect(r).toMatchObject({ format: 'loom-run', version: 1, status: 'finished', pipeline: 'tiny', seed: 3, overrides: ['update.epochs=2'], invocation, backend: 'cpu', node: process.version, iterations: 4, global_step: 64 });
    expect(r.config).toEqual(JSON.parse(JSON.stringify(cfg)));
    expect(r.loom.version).toBe((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    expect(Date.parse(r.started)).toBeLessThanOrEqual(Date.parse(r.ended!));
    expect(r.resumed_from).toBeUndefined();
    expect(r.error).toBeUndefined();
    // The commit that git itself reports, where this is a git checkout.
    const git = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
    if (git.status === 0) expect(r.loom.commit).toBe(git.stdout.trim());
  });

  it('goes running -> stopped (with a checkpoint) -> running -> finished on --resume, which says where it picked up', async () => {
    const dir = tmp();
    await run(tiny(), { outDir: dir, maxIterations: 2 });
    expect(record(dir)).toMatchObject({ status: 'stopped', iterations: 2, global_step: 32 });
    const seen: string[] = [];
    await run(tiny(), { outDir: dir, resume: true, onProgress: () => seen.push(record(dir).status) });
    expect(seen).toEqual(['running', 'running']);
    expect(record(dir)).toMatchObject({ status: 'finished', iterations: 4, global_step: 64, resumed_from: { iteration: 2, global_step: 32 } });
  });

  it('goes to failed, with the error, when the run throws; the error is the one rethrown', async () => {
    const dir = tmp();
    let calls = 0;
    const boom = new Error('boom');
    await expect(
      train(tiny(), {
        outDir: dir,
        shouldStop: () => {
          if (++calls === 3) throw boom;
          return false;
        },
      }),
    ).rejects.toThrow(boom);
    expect(record(dir)).toMatchObject({ status: 'failed', iterations: 2, error: { code: 'internal', message: 'boom' } });
    expect(schemaValidator('run.schema.json')(record(dir))).toBe(true);
  });
});

describe('what a run folder refuses', () => {
  it('starting afresh over a finished run, unless --force; run.json is left as it was', async () => {
    const dir = tmp();
    await run(tiny(), { outDir: dir });
    const before = readFileSync(join(dir, 'run.json'), 'utf8');
    const e = await loomErrAsync(() => train(tiny(), { outDir: dir }));
    expect(e.info).toMatchObject({ code: 'E_USAGE', file: join(dir, 'run.json') });
    expect(e.info.message).toBe(`${dir} holds a finished run of tiny`);
    expect(e.info.hint).toMatch(/--resume to continue it, or add --force to start over/);
    expect(readFileSync(join(dir, 'run.json'), 'utf8')).toBe(before);
    // Without its checkpoint (deleted to save space) it is still a finished run.
    rmSync(join(dir, 'checkpoint.json'));
    expect((await loomErrAsync(() => train(tiny(), { outDir: dir }))).info.message).toBe(`${dir} holds a finished run of tiny`);
    await run(tiny(), { outDir: dir, force: true, overrides: ['seed=3'] });
    expect(record(dir)).toMatchObject({ status: 'finished', overrides: ['seed=3'] });
  });

  it('starting afresh over a checkpoint (a stopped run, or one without run.json), unless --force, which removes it', async () => {
    const dir = tmp();
    await run(tiny(), { outDir: dir, maxIterations: 1 });
    expect((await loomErrAsync(() => train(tiny(), { outDir: dir }))).info).toMatchObject({ code: 'E_USAGE', file: join(dir, 'checkpoint.json'), message: `${dir} holds a checkpoint of an earlier run` });
    // Forced, and failing before its first checkpoint: the old checkpoint must not stay to be resumed.
    await expect(train(tiny(), { outDir: dir, force: true, shouldStop: () => { throw new Error('stop'); } })).rejects.toThrow('stop');
    expect(existsSync(join(dir, 'checkpoint.json'))).toBe(false);
    expect(record(dir).status).toBe('failed');
    // A failed run without a checkpoint may be started over.
    await run(tiny(), { outDir: dir });
    expect(record(dir).status).toBe('finished');
  });

  it('--resume with another configuration, listing what differs, unless --force', async () => {
    const dir = tmp();
    await run(tiny(), { outDir: dir, maxIterations: 1 });
    const other = tiny({ update: { epochs: 3, minibatches: 2 }, seed: 4 });
    const e = await loomErrAsync(() => train(other, { outDir: dir, resume: true }));
    expect(e.info).toMatchObject({ code: 'E_USAGE', file: join(dir, 'run.json') });
    expect(e.info.message).toBe(`--resume: the configuration differs from the one the run in ${dir} started with (2 settings)`);
    expect(e.info.found).toBe('recorded -> now: seed: 3 -> 4; update.epochs: 2 -> 3');
    expect(e.info.hint).toMatch(/--force/);
    expect(record(dir).status).toBe('stopped');
    await run(other, { outDir: dir, resume: true, force: true });
    expect(record(dir)).toMatchObject({ status: 'finished', seed: 4, config: { update: { epochs: 3 } } });
  });

  it('a run.json that is not a run record, naming it (and --force replaces it)', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'run.json'), '{"format": "something else"}');
    expect((await loomErrAsync(() => train(tiny(), { outDir: dir }))).info).toMatchObject({ code: 'E_SCHEMA', file: join(dir, 'run.json') });
    await run(tiny(), { outDir: dir, force: true });
    expect(record(dir).status).toBe('finished');
  });
});

describe('gitCommit', () => {
  const SHA = 'a'.repeat(40);
  const SHA2 = 'b'.repeat(40);
  const repo = (files: Record<string, string>) => {
    const root = tmp();
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(join(root, f, '..'), { recursive: true });
      writeFileSync(join(root, f), text);
    }
    return root;
  };

  it('reads a detached HEAD, a loose ref, a packed ref, and a worktree whose refs live in the common folder', async () => {
    expect(gitCommit(repo({ '.git/HEAD': `${SHA}\n` }))).toBe(SHA);
    expect(gitCommit(repo({ '.git/HEAD': 'ref: refs/heads/main\n', '.git/refs/heads/main': `${SHA}\n` }))).toBe(SHA);
    expect(gitCommit(repo({ '.git/HEAD': 'ref: refs/heads/main\n', '.git/packed-refs': `# pack-refs\n${SHA2} refs/heads/other\n${SHA} refs/heads/main\n` }))).toBe(SHA);
    const wt = repo({
      'main/.git/refs/heads/topic': `${SHA2}\n`,
      'main/.git/worktrees/wt/HEAD': 'ref: refs/heads/topic\n',
      'main/.git/worktrees/wt/commondir': '../..\n',
    });
    writeFileSync(join(wt, '.git'), `gitdir: ${join(wt, 'main/.git/worktrees/wt')}\n`);
    expect(gitCommit(wt)).toBe(SHA2);
  });

  it('is absent without a checkout, for a missing ref, and for a ref that would leave the git folder', async () => {
    expect(gitCommit(tmp())).toBeUndefined();
    expect(gitCommit(repo({ '.git/HEAD': 'ref: refs/heads/none\n' }))).toBeUndefined();
    expect(gitCommit(repo({ '.git/HEAD': 'ref: refs/../../secret\n', secret: `${SHA}\n` }))).toBeUndefined();
    expect(gitCommit(repo({ '.git/HEAD': 'garbage\n' }))).toBeUndefined();
  });
});
