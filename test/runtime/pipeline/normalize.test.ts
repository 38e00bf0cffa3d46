/**
 * Running observation and reward normalisation (normalize.obs / reward / per_env): the trainer's
 * statistics against gymnasium's RunningMeanStd computed here in closed form from exactly the
 * observations and rewards the env programs produced.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TensorMap } from '../../../runtime/interpreter.ts';
import { Trainer, train } from '../../../runtime/pipeline/driver.ts';
import { syncProgram, type Program } from '../../../runtime/pipeline/program.ts';
import { tinyPipeline as tiny, writeTinyPipeline } from '../../helpers/tiny-pipeline.ts';
import { loomErr } from '../../helpers/loom-error.ts';
import { loom } from '../../helpers/cli.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Records a copy of the outputs of every call of a private program of the trainer. */
function spyOutputs(t: Trainer, field: string): Record<string, Float32Array | Int32Array | Uint8Array>[] {
  const calls: Record<string, Float32Array | Int32Array | Uint8Array>[] = [];
  const slot = t as unknown as Record<string, Program>;
  const inner = slot[field]!;
  slot[field] = syncProgram((inputs: TensorMap, params: TensorMap) => {
    const out = inner(inputs, params);
    calls.push(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.dataSync().slice()])) as Record<string, Float32Array>);
    return out;
  });
  return calls;
}

/** RunningMeanStd (mean 0, var 1, count 1e-4) after folding in all of `xs`: the pooled moments in closed form. */
function pooled(xs: number[]): { mean: number; var: number; count: number } {
  const c0 = 1e-4;
  const k = xs.length;
  const n = c0 + k;
  const md = xs.reduce((a, b) => a + b, 0) / k;
  const m2 = 1 * c0 + xs.reduce((a, x) => a + (x - md) ** 2, 0) + (md * md * c0 * k) / n;
  return { mean: (md * k) / n, var: m2 / n, count: n };
}

const close = (got: number, want: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want)));

const N = 2;
const T = 16;
const D = 4;
const ITER = 3;
const GAMMA = 0.99;

/** Runs ITER iterations with both normalisers on; returns what the env produced and what the trainer holds. */
function run(perEnv: boolean) {
  const t = new Trainer(tiny({ rollout: { steps: T }, total_steps: N * T * ITER, normalize: { obs: true, reward: true, per_env: perEnv } }));
  const resets = spyOutputs(t, 'reset');
  const steps = spyOutputs(t, 'step');
  const gaes: Float32Array[] = [];
  const slot = t as unknown as Record<string, Program>;
  const gae = slot.gae!;
  slot.gae = syncProgram((inputs, params) => {
    gaes.push(inputs.rewards!.dataSync().slice() as Float32Array);
    return gae(inputs, params);
  });
  t.init();
  for (let k = 0; k < ITER; k++) t.iterate();
  const stats = { obs: t.host.obsStat!.toJSON(), ret: t.host.retStat!.toJSON() };
  t.dispose();
  return { resets, steps, gaes, stats };
}

describe('observation normalisation', () => {
  for (const perEnv of [false, true])
    it(`folds every observation the env produced into the statistics exactly once (per_env ${perEnv})`, () => {
      const { resets, steps, stats } = run(perEnv);
      expect(resets).toHaveLength(1);
      expect(steps).toHaveLength(T * ITER);
      const produced = [resets[0]!.obs!, ...steps.map((s) => s.obs!)];
      // Rows of env i, feature j, in the order the env produced them.
      const column = (i: number | null, j: number) => produced.flatMap((o) => Array.from({ length: N }, (_, e) => e).filter((e) => i === null || e === i).map((e) => o[e * D + j]!));
      const groups = perEnv ? Array.from({ length: N }, (_, i) => i) : [null];
      expect(stats.obs.mean).toHaveLength(groups.length * D);
      groups.forEach((i, g) => {
        for (let j = 0; j < D; j++) {
          const want = pooled(column(i, j));
          close(stats.obs.mean[g * D + j]!, want.mean);
          close(stats.obs.var[g * D + j]!, want.var);
          close(stats.obs.count, want.count);
        }
      });
    });
});

describe('observation normalisation in group rollouts', () => {
  it('counts each visited state once: the executed branches, not the simulated ones', () => {
    const t = new Trainer(tiny({ algorithm: 'grpo', group: { size: 2, horizon: 2 }, rollout: { steps: 4 }, total_steps: 2 * 4 * 2 * 2 * 3, normalize: { obs: true } }));
    t.init();
    for (let k = 0; k < 3; k++) {
      t.iterate();
      // The reset observation and each executed step's, up to the state the next rollout step starts from.
      close(t.host.obsStat!.count, 1e-4 + N * 4 * (k + 1));
    }
    t.dispose();
  });
});

describe('reward normalisation', () => {
  for (const perEnv of [false, true])
    it(`updates with each env's discounted return once per step and scales by its std (per_env ${perEnv})`, () => {
      const { steps, gaes, stats } = run(perEnv);
      // gym's NormalizeReward as the driver implements it: acc = gamma acc + r, update, scale; acc = 0 after an episode ends.
      const acc = new Array<number>(N).fill(0);
      const seen: number[][] = Array.from({ length: N }, () => []);
      let ends = 0;
      steps.forEach((s, k) => {
        for (let i = 0; i < N; i++) {
          acc[i] = acc[i]! * GAMMA + s.reward![i]!;
          seen[i]!.push(acc[i]!);
        }
        for (let i = 0; i < N; i++) {
          const sd = Math.sqrt(pooled(perEnv ? seen[i]! : seen.flatMap((_, e) => seen[e]!)).var + 1e-8);
          const want = Math.max(-10, Math.min(10, s.reward![i]! / sd));
          expect(gaes[Math.floor(k / T)]![(k % T) * N + i]).toBeCloseTo(want, 5);
          if (s.terminated![i] || s.truncated![i]) {
            acc[i] = 0;
            ends++;
          }
        }
      });
      expect(ends).toBeGreaterThan(0);
      const groups = perEnv ? seen : [seen.flat()];
      expect(stats.ret.mean).toHaveLength(groups.length);
      groups.forEach((xs, g) => {
        const want = pooled(xs);
        close(stats.ret.mean[g]!, want.mean);
        close(stats.ret.var[g]!, want.var);
        close(stats.ret.count, want.count);
      });
    });
});

describe('normalize.per_env', () => {
  it('checkpoints per-env statistics and resumes bit-identically', async () => {
    const cfg = () => tiny({ total_steps: 64, normalize: { obs: true, reward: true, per_env: true } });
    const tmp = () => mkdtempSync(join(tmpdir(), 'loom-norm-'));
    const a = await train(cfg(), { outDir: tmp() });
    const dir = tmp();
    tf.dispose(Object.values((await train(cfg(), { outDir: dir, maxIterations: 2 })).params));
    const b = await train(cfg(), { outDir: dir, resume: true });
    for (const k of Object.keys(a.params)) expect(Array.from(b.params[k]!.dataSync())).toEqual(Array.from(a.params[k]!.dataSync()));
    tf.dispose([...Object.values(a.params), ...Object.values(b.params)]);
  });

  it('trains, plays with loom eval, and is refused by loom export, which has one normaliser to bake in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-norm-'));
    const f = writeTinyPipeline(dir, { total_steps: 16, normalize: { obs: true, per_env: true } });
    expect((await loom('train', f, '--out', join(dir, 'run'))).code).toBe(0);
    expect((await loom('eval', join(dir, 'run'), '--episodes', '1')).code).toBe(0);
    const r = await loom('export', join(dir, 'run'), '--out', join(dir, 'p.graph.json'));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/per env \(normalize.per_env\)/);
  });

  it('is refused for group algorithms, whose branch observations belong to no env', () => {
    const e = loomErr(() => tiny({ algorithm: 'grpo', group: { size: 2 }, normalize: { obs: true, per_env: true } }));
    expect(e.info.code).toBe('E_SCHEMA');
    expect(e.info.pointer).toBe('/normalize/per_env');
  });
});
