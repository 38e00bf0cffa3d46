/**
 * loom eval and loom export on real runs: eval reproduces the run's own final evaluation and its
 * best/ score, and the exported standalone graph gives the checkpoint's act graph outputs on raw
 * observations (with the normaliser baked in where the pipeline normalises them).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { seedKey, toInt32 } from '../../compiler/ops/threefry.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { loadGroup, readCheckpoint, writeCheckpoint } from '../../runtime/pipeline/checkpoint.ts';
import { G } from '../helpers/tiny-pipeline.ts';
import { loom } from '../helpers/cli.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-evalx-'));

function pipelineFile(dir: string, env: 'cartpole' | 'pendulum', over: Record<string, unknown> = {}): string {
  const f = join(dir, 'p.json');
  writeFileSync(
    f,
    JSON.stringify({
      pipeline: `tiny-${env}`,
      env: { step: G(`envs/${env}.step.graph.json`), reset: G(`envs/${env}.reset.graph.json`), num_envs: 2 },
      policy: { act: G(`algorithms/ppo-${env}.act.graph.json`) },
      loss: G(`algorithms/ppo-${env}.loss.graph.json`),
      optimizer: { name: 'adam', lr: 1e-3 },
      rollout: { steps: 16 },
      update: { epochs: 2, minibatches: 2 },
      total_steps: 96,
      seed: 3,
      checkpoint: { every: 0 },
      ...over,
    }),
  );
  return f;
}

async function trained(env: 'cartpole' | 'pendulum', over: Record<string, unknown> = {}, flags: string[] = []): Promise<{ dir: string; out: string }> {
  const dir = tmp();
  const r = await loom('train', pipelineFile(dir, env, over), '--out', join(dir, 'run'), '--backend', 'cpu', ...flags);
  expect(r.code, r.err).toBe(0);
  return { dir, out: r.out };
}

const meanOf = (text: string, re: RegExp) => Number(re.exec(text)![1]);

describe('loom eval', () => {
  it('configures the pipeline as the run was: its --set overrides (run.json), its --env agent, its eval.deterministic', async () => {
    // Trained with observation normalisation switched on from the command line, on another env.
    const { dir, out } = await trained('cartpole', { eval: { episodes: 3, deterministic: false } }, ['--set', 'normalize.obs=true', '--env', 'Acrobot-v1']);
    const e = await loom('eval', join(dir, 'run'), '--backend', 'cpu');
    expect(e.code, e.err).toBe(0);
    expect(e.out).toContain('3 episodes, stochastic, seed 3');
    expect(meanOf(e.out, /mean return (-?[\d.]+)/)).toBe(meanOf(out, /evaluation: 3 episodes, mean return (-?[\d.]+)/));
    const d = await loom('eval', join(dir, 'run'), '--deterministic', '--backend', 'cpu');
    expect(d.out).toContain('3 episodes, deterministic');
  });

  it('on a run folder reproduces its final evaluation (deterministic, the run seed); on best/ its best score', async () => {
    const { dir, out } = await trained('cartpole', { eval: { episodes: 4, every: 2 } });
    const e = await loom('eval', join(dir, 'run'), '--backend', 'cpu');
    expect(e.code, e.err).toBe(0);
    expect(e.out).toContain('4 episodes, deterministic, seed 3');
    expect(meanOf(e.out, /mean return (-?[\d.]+)/)).toBe(meanOf(out, /evaluation: 4 episodes, mean return (-?[\d.]+)/));
    const best = readCheckpoint(join(dir, 'run', 'best', 'checkpoint.json')).eval!;
    const b = await loom('eval', join(dir, 'run', 'best'), '--backend', 'cpu');
    expect(b.out).toContain(`iteration ${best.iteration} `);
    expect(meanOf(b.out, /mean return (-?[\d.]+)/)).toBe(Number(best.mean_return.toFixed(2)));
    const s = await loom('eval', join(dir, 'run', 'checkpoint.json'), '--stochastic', '--episodes', '3', '--seed', '9', '--backend', 'cpu');
    expect(s.code, s.err).toBe(0);
    expect(s.out).toContain('3 episodes, stochastic, seed 9');
  });

  it('errors: no checkpoint, a checkpoint that does not record its pipeline (and --pipeline as the way out), conflicting flags', async () => {
    const dir = tmp();
    const none = await loom('eval', dir);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/^error\[E_IO\].*no checkpoint at/);
    const { dir: run } = await trained('cartpole', { eval: { episodes: 0 } });
    const file = join(run, 'run', 'checkpoint.json');
    const body = readCheckpoint(file);
    const { source: _s, ...host } = body.host;
    writeCheckpoint(file, { ...body, host });
    const r = await loom('eval', file, '--episodes', '2');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error\[E_INPUT\].*does not record the pipeline/);
    expect(r.err).toContain('--pipeline FILE');
    expect((await loom('eval', file, '--episodes', '2', '--pipeline', join(run, 'p.json'), '--backend', 'cpu')).code).toBe(0);
    const both = await loom('eval', file, '--deterministic', '--stochastic');
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/^error\[E_USAGE\]/);
  });
});

/** The act graph of `env` run by the interpreter with the checkpoint's params on `obs` (already normalised). */
function reference(env: string, ckpt: string, obs: tf.Tensor, key: tf.Tensor): TensorMap {
  const params = loadGroup(readCheckpoint(ckpt).tensors.params!);
  const out = interpret(loadGraph(G(`algorithms/ppo-${env}.act.graph.json`)), { obs, key }, params);
  tf.dispose(Object.values(params));
  return out;
}

const values = (m: TensorMap) => Object.fromEntries(Object.entries(m).map(([k, t]) => [k, Array.from(t.dataSync())]));

describe('loom export', () => {
  it('CartPole: the standalone graph gives the checkpoint act graph\'s outputs exactly, also through loom run', async () => {
    const { dir } = await trained('cartpole', { eval: { episodes: 0 } });
    const policy = join(dir, 'policy.graph.json');
    const r = await loom('export', join(dir, 'run'), '--out', policy);
    expect(r.code, r.err).toBe(0);
    const g = loadGraph(policy);
    expect(g.params).toEqual([]);
    expect(g.nodes.some((n) => n.op === 'call')).toBe(false);
    const obs = tf.randomNormal([64, 4], 0, 1, 'float32', 5);
    const key = tf.tensor(toInt32(seedKey(7)), [2], 'int32');
    const got = values(interpret(g, { obs, key }, {}));
    const want = values(reference('cartpole', join(dir, 'run', 'checkpoint.json'), obs, key));
    expect(Object.keys(got).sort()).toEqual(['action', 'action_mode', 'logp', 'value']);
    expect(got).toEqual(want);
    // Both actions occur, so the comparison says something about the argmax.
    expect(new Set(want.action_mode).size).toBe(2);
    // The file itself, through `loom run` (a key derived from --seed, as documented).
    writeFileSync(join(dir, 'obs.json'), JSON.stringify({ obs: obs.arraySync() }));
    const run = await loom('run', policy, '--inputs', join(dir, 'obs.json'), '--backend', 'cpu');
    expect(run.code, run.err).toBe(0);
    const printed = JSON.parse(run.out) as Record<string, number[]>;
    expect(printed.action_mode).toEqual(want.action_mode);
    expect(printed.value).toEqual(want.value!.map((x) => Math.fround(x)));
  });

  it('Pendulum with obs normalisation: raw observations give the outputs of the act graph on normalised ones', async () => {
    const { dir } = await trained('pendulum', { normalize: { obs: true, reward: true, clip: 10 }, eval: { episodes: 0 } });
    const policy = join(dir, 'policy.graph.json');
    expect((await loom('export', join(dir, 'run', 'checkpoint.json'), '--out', policy)).code).toBe(0);
    const ckpt = join(dir, 'run', 'checkpoint.json');
    const stat = readCheckpoint(ckpt).host.obsStat as { mean: number[]; var: number[] };
    // Raw observations, some far enough out to be clipped after normalisation.
    const raw = Float32Array.from({ length: 64 * 3 }, (_, i) => Math.sin(i * 12.9898) * (i % 16 === 0 ? 1e4 : 8));
    // gym's NormalizeObservation in float64, as the driver applies it.
    const norm = Float32Array.from(raw, (v, i) => Math.max(-10, Math.min(10, (v - stat.mean[i % 3]!) / Math.sqrt(stat.var[i % 3]! + 1e-8))));
    expect(norm.some((v) => Math.abs(v) === 10)).toBe(true);
    const key = tf.tensor(toInt32(seedKey(7)), [2], 'int32');
    const got = values(interpret(loadGraph(policy), { obs: tf.tensor(raw, [64, 3]), key }, {}));
    const want = values(reference('pendulum', ckpt, tf.tensor(norm, [64, 3]), key));
    for (const k of ['action', 'action_mode', 'logp', 'value']) {
      expect(got[k]!.length).toBe(want[k]!.length);
      got[k]!.forEach((v, i) => expect(v).toBeCloseTo(want[k]![i]!, 4));
    }
    // Without the normaliser the outputs would differ.
    const unnormalised = values(reference('pendulum', ckpt, tf.tensor(raw, [64, 3]), key));
    expect(unnormalised.action_mode).not.toEqual(want.action_mode);
  });
});
