/** AM-PPO ablation: advantage.transform.value_target "modulated" (spec §2.5) or "gae" (policy-only modulation). */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TensorMap } from '../../../runtime/interpreter.ts';
import { parsePipeline } from '../../../runtime/pipeline/config.ts';
import { Trainer } from '../../../runtime/pipeline/driver.ts';
import { syncProgram, type Program } from '../../../runtime/pipeline/program.ts';
import { G, tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

type Values = Record<string, Float32Array>;
/** Records copies of the inputs and outputs of every call of a private program of the trainer. */
function spy(t: Trainer, field: string): { inputs: Values; outputs: Values }[] {
  const calls: { inputs: Values; outputs: Values }[] = [];
  const slot = t as unknown as Record<string, Program>;
  const inner = slot[field]!;
  const copy = (m: TensorMap) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Float32Array.from(v.dataSync())]));
  slot[field] = syncProgram((inputs, params) => {
    const out = inner(inputs, params);
    calls.push({ inputs: copy(inputs), outputs: copy(out) });
    return out;
  });
  return calls;
}

/** Spec am-ppo §2.4, update = false, default κ = 2 and ε = 1e-5: A_mod = κ|A| tanh(α A / (‖A‖ + ε)). */
function modulated(A: Float32Array, alpha: number): number[] {
  const n = Math.sqrt(A.reduce((s, a) => s + a * a, 0));
  return Array.from(A, (a) => 2 * Math.abs(a) * Math.tanh((alpha * a) / (n + 1e-5)));
}

/** 1 − Var(y − v) / Var(y), population variances. */
function explained(v: ArrayLike<number>, y: ArrayLike<number>): number {
  const varOf = (xs: number[]) => {
    const m = xs.reduce((s, x) => s + x, 0) / xs.length;
    return xs.reduce((s, x) => s + (x - m) ** 2, 0) / xs.length;
  };
  const ys = Array.from(y);
  return 1 - varOf(ys.map((x, i) => x - v[i]!)) / varOf(ys);
}

describe('advantage.transform.value_target', () => {
  for (const target of ['modulated', 'gae'] as const)
    it(`${target}: A_mod is the policy advantage and the value target is ${target === 'gae' ? 'A_raw' : 'A_mod'} + V_old`, () => {
      const t = new Trainer(tiny({ advantage: { transform: { kind: 'amppo', value_target: target } } }));
      t.init();
      const mods = spy(t, 'amppoModulate');
      const losses = spy(t, 'loss');
      const gaes = spy(t, 'gae');
      const updates = spy(t, 'amppoUpdate');
      const row = t.iterate();
      const alpha = t.host.amppo!.alpha_ema;
      expect(losses).toHaveLength(4);
      let apart = 0;
      mods.forEach((m, i) => {
        const raw = m.inputs.A!;
        const mod = modulated(raw, alpha);
        const L = losses[i]!.inputs;
        L.advantages!.forEach((a, j) => expect(a).toBeCloseTo(mod[j]!, 4));
        const base = target === 'gae' ? Array.from(raw) : mod;
        L.returns!.forEach((r, j) => expect(r).toBeCloseTo(base[j]! + L.values_old![j]!, 4));
        raw.forEach((a, j) => (Math.abs(a - mod[j]!) > 1e-2 ? apart++ : 0));
      });
      // The two targets differ on this batch, so each assertion above tells them apart.
      expect(apart).toBeGreaterThan(0);
      // Explained variance is measured against the target the critic regresses on.
      const g = gaes[0]!;
      const vOld = g.inputs.values!;
      const full = updates[0]!.outputs.A_mod!;
      const y = target === 'gae' ? g.outputs.returns! : Array.from(full, (a, j) => a + vOld[j]!);
      expect(row.explained_variance).toBeCloseTo(explained(vOld, y), 5);
      t.dispose();
    });

  it('defaults to modulated, and the shipped policy-only pipelines set gae over the AM-PPO ones', () => {
    expect(tiny({ advantage: { transform: { kind: 'amppo' } } }).advantage.transform!.value_target).toBe('modulated');
    for (const env of ['cartpole', 'acrobot']) {
      const f = G(`pipelines/amppo-policy-only-${env}.json`);
      const base = G(`pipelines/amppo-${env}.json`);
      const c = parsePipeline(JSON.parse(readFileSync(f, 'utf8')), f);
      const b = parsePipeline(JSON.parse(readFileSync(base, 'utf8')), base);
      expect(c.advantage.transform!.value_target).toBe('gae');
      expect({ ...c.advantage.transform!, value_target: 'modulated' }).toEqual(b.advantage.transform);
    }
  });
});
