import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadPipeline } from '../../runtime/pipeline/config.ts';
import { loadWithHp, runPlain } from '../helpers/graph-run.ts';

await tf.setBackend('cpu');
const startTensors = tf.memory().numTensors;
afterAll(() => expect(tf.memory().numTensors).toBe(startTensors));

const ADV = resolve('graphs/algorithms/hybrid-grpo/advantage.graph.json');
const NORM = resolve('graphs/algorithms/hybrid-grpo/reward-norm.graph.json');

const close = (a: number[], b: number[], digits: number) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(x, `index ${i}: ${x} vs ${b[i]}`).toBeCloseTo(b[i]!, digits));
};

// B.6: f = tanh, gamma 0.99, R = [1, 0.5, -0.2, 0], V(s) = 0.3, V(s') = [0.4, 0.2, 0.1, 0], no dones
const B6 = { R: [[1.0, 0.5, -0.2, 0.0]], V_s: [0.3], V_next: [[0.4, 0.2, 0.1, 0.0]], done: [[0, 0, 0, 0]] };
const HYBRID = [0.8576, 0.3601, -0.3984, -0.3];
// z = (R - 0.325) / 0.465698 (population std)
const Z = [1.449436, 0.37578, -1.127339, -0.697877];

describe('hybrid-grpo/advantage: B.6 vectors', () => {
  it('alpha = 0: per-sample A = tanh(R) + gamma V(s\') - V(s), A_T, q, selection, y', () => {
    const o = runPlain(loadWithHp(ADV, { alpha: 0 }), B6);
    close(o.adv!, HYBRID, 4);
    close(o.adv_hybrid!, HYBRID, 4);
    expect(o.A_T![0]).toBeCloseTo(0.1298, 4);
    close(o.q!, [1.396, 0.698, -0.101, 0.0], 5);
    expect(o.y![0]).toBeCloseTo(0.49825, 5); // (1.396 + 0.698 - 0.101 + 0)/4, quoted as 0.4982 in B.6
    // B.6 picks sample 0 by the raw q; select scores q_f = tanh(R) + gamma V(s') = [1.157594, 0.660117, -0.098375, 0] (B.4.4), also sample 0
    close(o.q_f!, [1.157594, 0.660117, -0.098375, 0], 5);
    expect(o.select).toEqual([0]);
  });

  it('alpha = 1: pure group z-score; default alpha 0.5 blends the two', () => {
    close(runPlain(loadWithHp(ADV, { alpha: 1 }), B6).adv!, Z, 4);
    const o = runPlain(loadWithHp(ADV), B6);
    close(o.adv!, Z.map((z, i) => 0.5 * z + 0.5 * HYBRID[i]!), 4);
    close(o.z!, Z, 4);
    // alpha only affects the policy advantage, not A_T, q or y
    expect(o.A_T![0]).toBeCloseTo(0.1298, 4);
    expect(o.y![0]).toBeCloseTo(0.49825, 5); // (1.396 + 0.698 - 0.101 + 0)/4, quoted as 0.4982 in B.6
  });

  it('f modes: identity and tanh(tau z) (tau 1 -> [0.8956, 0.3590, -0.8101, -0.6030])', () => {
    const tz = runPlain(loadWithHp(ADV, { alpha: 0, f_mode: 2 }), B6);
    close(tz.f!, [0.8956, 0.359, -0.8101, -0.603], 4);
    close(tz.adv!, [0.8956 + 0.396 - 0.3, 0.359 + 0.198 - 0.3, -0.8101 + 0.099 - 0.3, -0.603 - 0.3], 4);
    close(runPlain(loadWithHp(ADV, { alpha: 0, f_mode: 2, tau: 0.5 }), B6).f!, Z.map((z) => Math.tanh(0.5 * z)), 4);
    const id = runPlain(loadWithHp(ADV, { alpha: 0, f_mode: 1 }), B6);
    close(id.adv!, [1.096, 0.398, -0.401, -0.3], 5);
    close(id.q_f!, id.q!, 6);
  });

  it('dones drop the bootstrap; several states are handled row by row', () => {
    const o = runPlain(loadWithHp(ADV, { alpha: 0, gamma: 0.9 }), {
      R: [[1.0, 0.5, -0.2, 0.0], [0, 0, 0, 0]],
      V_s: [0.3, -1],
      V_next: [[0.4, 0.2, 0.1, 5.0], [1, 2, 3, 4]],
      done: [[0, 1, 0, 1], [1, 0, 0, 0]],
    });
    const t = Math.tanh;
    const row0 = [t(1) + 0.36 - 0.3, t(0.5) - 0.3, t(-0.2) + 0.09 - 0.3, -0.3];
    const row1 = [1, 2.8, 3.7, 4.6];
    close(o.adv!, [...row0, ...row1], 5);
    close(o.A_T!, [row0.reduce((a, b) => a + b) / 4, row1.reduce((a, b) => a + b) / 4], 5);
    close(o.q!, [1.36, 0.5, -0.11, 0, 0, 1.8, 2.7, 3.6], 5);
    close(o.y!, [(1.36 + 0.5 - 0.11) / 4, 8.1 / 4], 5);
    expect(o.select).toEqual([0, 3]);
    // the all-equal reward group has z = 0 (not NaN)
    expect(o.z!.slice(4)).toEqual([0, 0, 0, 0]);
  });

  it('select is argmax_N of f(R) + gamma (1 - done) V(s\') (B.4.4, B.5), not of the raw reward', () => {
    const o = runPlain(loadWithHp(ADV, { alpha: 0 }), {
      R: [[2, 0], [0.5, 0]],
      V_s: [0, 0],
      V_next: [[0, 1], [0, 1]],
      done: [[0, 0], [0, 1]],
    });
    // Row 0: raw R + gamma V(s') = [2, 0.99] picks 0; tanh(2) = 0.9640 < 0.99 picks 1.
    // Row 1: the second branch ended, so its V(s') = 1 does not count: [tanh(0.5), 0] picks 0.
    close(o.q_f!, [Math.tanh(2), 0.99, Math.tanh(0.5), 0], 5);
    expect(o.select).toEqual([1, 0]);
  });
});

describe('hybrid-grpo/advantage: the author\'s later form (hybrid_grpo_continuous.py)', () => {
  // bootstrap 0, f_mode 2, alpha 0: adv = tanh(tau z) of the branch rewards, no V terms; select = argmax R.
  const V2 = { alpha: 0, f_mode: 2, bootstrap: 0 };
  it('adv = tanh(tau z) whatever V is; y keeps the bootstrapped target; the largest reward is executed', () => {
    // B.6 rewards; V(s') = 3 on the second branch makes R + gamma V(s') (and the spec's q_f) pick branch 1, R picks 0.
    const batch = { R: [[1.0, 0.5, -0.2, 0.0]], V_s: [5], V_next: [[0, 3, 0, 0]], done: [[0, 0, 0, 0]] };
    const o = runPlain(loadWithHp(ADV, V2), batch);
    close(o.adv!, [0.8956, 0.359, -0.8101, -0.603], 4); // B.6: tanh of the group z-score
    close(o.adv!, Z.map((z) => Math.tanh(z)), 5);
    expect(o.A_T![0]).toBeCloseTo(Z.reduce((a, z) => a + Math.tanh(z), 0) / 4, 5);
    expect(o.select).toEqual([0]);
    expect(o.y![0]).toBeCloseTo((1.0 + 0.5 + 0.99 * 3 - 0.2 + 0) / 4, 5);
    // The spec form on the same batch credits V: its advantage and choice differ.
    const spec = runPlain(loadWithHp(ADV, { alpha: 0 }), batch);
    expect(spec.select).toEqual([1]);
    close(runPlain(loadWithHp(ADV, { ...V2, tau: 2 }), batch).adv!, Z.map((z) => Math.tanh(2 * z)), 5);
  });

  it('is what the hybrid-grpo-v2 pipelines configure', () => {
    for (const env of ['pendulum', 'cartpole']) {
      const hp = loadPipeline(resolve(`graphs/pipelines/hybrid-grpo-v2-${env}.json`)).group!.hp;
      expect(hp, env).toMatchObject({ ...V2, tau: 1 });
      const o = runPlain(loadWithHp(ADV, hp), { R: [[1.0, 0.5, -0.2, 0.0], [2, 2, 2, 2]], V_s: [0.3, 1], V_next: [[0.4, 0.2, 0.1, 0.0], [1, 2, 3, 4]], done: [[0, 0, 0, 0], [0, 0, 1, 0]] });
      // the constant group has z = 0, so no advantage (and the first branch, as torch.argmax)
      close(o.adv!, [0.8956, 0.359, -0.8101, -0.603, 0, 0, 0, 0], 4);
      expect(o.select).toEqual([0, 0]);
    }
  });
});

describe('hybrid-grpo/reward-norm: adaptive reward normalisation with explicit EMA state', () => {
  it('follows a float64 EMA reference over several batches', () => {
    const g = loadWithHp(NORM);
    let mu = 0;
    let m2 = 1;
    let gmu = 0;
    let gm2 = 1;
    for (let k = 0; k < 8; k++) {
      const R = [0, 1, 2].map((s) => [0, 1, 2, 3].map((j) => 5 + 2 * Math.sin(k * 3.1 + s * 1.3 + j * 0.7)));
      const flat = R.flat();
      const bm = flat.reduce((a, b) => a + b) / flat.length;
      const bm2 = flat.reduce((a, b) => a + b * b, 0) / flat.length;
      mu = 0.99 * mu + 0.01 * bm;
      m2 = 0.99 * m2 + 0.01 * bm2;
      const sigma = Math.sqrt(Math.max(m2 - mu * mu, 0));
      const o = runPlain(g, { R, mu: gmu, m2: gm2 });
      expect(o.mu![0]).toBeCloseTo(mu, 5);
      expect(o.m2![0]).toBeCloseTo(m2, 4);
      expect(o.sigma![0]).toBeCloseTo(sigma, 4);
      close(o.R_norm!, flat.map((r) => (r - mu) / (sigma + 1e-8)), 3);
      close(o.R_norm_tanh!, flat.map((r) => Math.tanh((r - mu) / (sigma + 1e-8))), 4);
      gmu = o.mu![0]!;
      gm2 = o.m2![0]!;
    }
    expect(mu).toBeGreaterThan(0.3);
  });

  it('feeds hybrid-grpo/advantage (f identity) as the normalised reward', () => {
    const n = runPlain(loadWithHp(NORM), { R: B6.R, mu: 0.2, m2: 1.04 });
    const o = runPlain(loadWithHp(ADV, { alpha: 0, f_mode: 1 }), { ...B6, R: [n.R_norm!] });
    close(o.adv!, n.R_norm!.map((r, i) => r + 0.99 * B6.V_next[0]![i]! - 0.3), 5);
  });
});
