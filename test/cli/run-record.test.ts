/** `--set`, `--force`, `--env` and run.json through the `loom` command line (train, compare, check). */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../runtime/pipeline/run-record.ts';
import { loom } from '../helpers/cli.ts';
import { G } from '../helpers/tiny-pipeline.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-cli-run-'));
const record = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunRecord;

/** A tiny pipeline file (2 envs x 8 steps, 4 iterations) on the given agent; returns its path. */
function tinyFile(agent = 'cartpole', env = agent): string {
  const file = join(tmp(), 'tiny.json');
  writeFileSync(
    file,
    JSON.stringify({
      pipeline: 'tiny',
      env: { step: G(`envs/${env}.step.graph.json`), reset: G(`envs/${env}.reset.graph.json`), num_envs: 2 },
      policy: { act: G(`algorithms/ppo-${agent}.act.graph.json`) },
      loss: G(`algorithms/ppo-${agent}.loss.graph.json`),
      optimizer: { name: 'adam', lr: 2.5e-4 },
      rollout: { steps: 8 },
      update: { epochs: 2, minibatches: 2 },
      total_steps: 64,
      checkpoint: { every: 0 },
      eval: { episodes: 0 },
    }),
  );
  return file;
}

describe('loom train', () => {
  it('--set values reach the config and run.json; a second run into the folder is refused, --force runs it', async () => {
    const file = tinyFile();
    const out = join(tmp(), 'run');
    const args = ['train', file, '--set', 'optimizer.lr=1e-3', '--set', 'update.epochs=1', '--steps', '32', '--out', out, '--backend', 'cpu'];
    const a = await loom(...args);
    expect(a.code, a.err).toBe(0);
    expect(a.out).toContain(`run record: ${out}/run.json`);
    const r = record(out);
    expect(r).toMatchObject({ status: 'finished', overrides: ['optimizer.lr=1e-3', 'update.epochs=1'], backend: 'cpu', iterations: 2 });
    expect(r.config).toMatchObject({ optimizer: { lr: 0.001 }, update: { epochs: 1 }, total_steps: 32 });
    expect(r.invocation).toEqual({ command: 'train', args: [file], flags: { set: ['optimizer.lr=1e-3', 'update.epochs=1'], steps: '32', out, backend: 'cpu' } });
    const b = await loom(...args);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/^error\[E_USAGE\] .*run\.json: .* holds a finished run of tiny\n  hint: +add --resume to continue it, or add --force/m);
    expect(b.err).not.toMatch(/^\s+at /m);
    const c = await loom(...args, '--force');
    expect(c.code, c.err).toBe(0);
  });

  it('--resume with other --set values is refused with the differences, and runs with --force', async () => {
    const file = tinyFile();
    const out = join(tmp(), 'run');
    const base = ['train', file, '--out', out, '--backend', 'cpu'];
    const a = await loom(...base, '--set', 'total_steps=32');
    expect(a.code, a.err).toBe(0);
    const b = await loom(...base, '--resume', '--set', 'update.epochs=1');
    expect(b.code).toBe(2);
    expect(b.err).toContain('--resume: the configuration differs from the one the run in');
    expect(b.err).toContain('found:    recorded -> now: total_steps: 32 -> 64; update.epochs: 2 -> 1');
    const c = await loom(...base, '--resume', '--set', 'update.epochs=1', '--force');
    expect(c.code, c.err).toBe(0);
    expect(c.out).toMatch(/finished at iteration 4 /);
    expect(record(out)).toMatchObject({ status: 'finished', resumed_from: { iteration: 2 }, overrides: ['update.epochs=1'] });
  });

  it('a bad --set path or value is a located error naming the override', async () => {
    const file = tinyFile();
    const out = join(tmp(), 'run');
    const a = await loom('train', file, '--set', 'update.epoch=1', '--out', out, '--backend', 'cpu');
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/^error\[E_USAGE\]: --set update\.epoch=1: the pipeline has no field "update\.epoch"/m);
    expect(a.err).toContain('hint:     did you mean "update.epochs"?');
    const b = await loom('train', file, '--set', 'update.epochs=-1', '--out', out, '--backend', 'cpu');
    expect(b.code).toBe(1);
    expect(b.err).toContain(`error[E_SCHEMA] ${file}#/update/epochs: --set update.epochs=-1: number out of range`);
    expect(existsSync(out)).toBe(false);
  });

  it('--env CartPole-v1 on a Pendulum pipeline trains the CartPole agent and says so', async () => {
    const out = join(tmp(), 'run');
    const a = await loom('train', tinyFile('pendulum'), '--env', 'CartPole-v1', '--steps', '16', '--out', out, '--backend', 'cpu');
    expect(a.code, a.err).toBe(0);
    expect(a.err).toMatch(/--env CartPole-v1: the act graph takes obs of width 3, .* using the shipped agent \S*ppo-cartpole\.act\.graph\.json/);
    expect(record(out).config).toMatchObject({ env: { name: 'CartPole-v1', step: G('envs/cartpole.step.graph.json') }, policy: { act: G('algorithms/ppo-cartpole.act.graph.json') }, loss: G('algorithms/ppo-cartpole.loss.graph.json') });
  });
});

describe('loom compare and loom check', () => {
  it('compare records --set in every run folder, reuses its finished runs, and refuses a folder whose run has other settings', async () => {
    const out = join(tmp(), 'cmp');
    const args = ['compare', tinyFile(), '--seeds', '2', '--steps', '32', '--set', 'update.epochs=1', '--out', out, '--backend', 'cpu', '--workers', '1'];
    const a = await loom(...args);
    expect(a.code, a.err).toBe(0);
    for (const s of ['s1', 's2']) expect(record(join(out, 'tiny', s))).toMatchObject({ status: 'finished', seed: Number(s[1]), overrides: ['update.epochs=1'], config: { update: { epochs: 1 } }, invocation: { command: 'compare' } });
    const b = await loom(...args);
    expect(b.code, b.err).toBe(0);
    expect(b.err).toMatch(/tiny seed 1: already finished/);
    expect(b.err).not.toMatch(/seed 1: start/);
    const c = await loom(...args.filter((x) => x !== 'update.epochs=1' && x !== '--set'));
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/run tiny\/s1 of loom compare: the configuration differs/);
    expect(c.err).toMatch(/update\.epochs: 1 -> 2/);
  });

  it('check applies --set to the pipelines it checks', async () => {
    const file = tinyFile();
    expect((await loom('check', file, '--set', 'update.minibatches=2')).code).toBe(0);
    const a = await loom('check', file, '--set', 'update.minibatches=3');
    expect(a.code).toBe(1);
    expect(a.err).toContain('#/update/minibatches: --set update.minibatches=3: num_envs * rollout.steps');
  });
});
