import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraphJson } from '../../compiler/frontend/load.ts';
import { compileGraph } from '../../compiler/compile.ts';
import { loadWithHp, runPlain } from '../helpers/graph-run.ts';

type Json = { nodes: { id: string; op: string; attrs?: Record<string, unknown> }[] };

await tf.setBackend('cpu');
const startTensors = tf.memory().numTensors;
afterAll(() => expect(tf.memory().numTensors).toBe(startTensors));

const ADV = resolve('graphs/algorithms/grpo/advantage.graph.json');
const LOSS = resolve('graphs/algorithms/grpo/loss.graph.json');
const KL = resolve('graphs/algorithms/kl.graph.json');

const close = (a: number[], b: number[], digits: number) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(x, `index ${i}`).toBeCloseTo(b[i]!, digits));
};

describe('grpo/advantage (B.2, B.6, D.12)', () => {
  it('r = [1, 0, 0, 1]: population std -> [1, -1, -1, 1]; sample std -> +-0.866', () => {
    close(runPlain(loadWithHp(ADV), { rewards: [[1, 0, 0, 1]] }).adv!, [1, -1, -1, 1], 6);
    // sample std = sqrt(1/3) = 0.57735, 0.5/0.57735 = 0.866025
    close(runPlain(loadWithHp(ADV, {}, { std_g: { ddof: 1 } }), { rewards: [[1, 0, 0, 1]] }).adv!, [0.866025, -0.866025, -0.866025, 0.866025], 5);
  });

  it('r = [0.9, 0.1, 0.5, 0.3]: mean 0.45, std 0.29580 -> [1.5213, -1.1832, 0.1690, -0.5071]', () => {
    const o = runPlain(loadWithHp(ADV), { rewards: [[0.9, 0.1, 0.5, 0.3]] });
    close(o.adv!, [1.5213, -1.1832, 0.169, -0.5071], 4);
    expect(o.mean![0]).toBeCloseTo(0.45, 6);
    expect(o.std![0]).toBeCloseTo(0.2958, 4);
  });

  it('normalises each group (row) separately; zero-variance groups give exactly 0', () => {
    const o = runPlain(loadWithHp(ADV), { rewards: [[0.9, 0.1, 0.5, 0.3], [0.1, 0.1, 0.1, 0.1], [2, 2, 2, 2], [1, 0, 0, 1]] });
    close(o.adv!.slice(0, 4), [1.5213, -1.1832, 0.169, -0.5071], 4);
    expect(o.adv!.slice(4, 12)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    close(o.adv!.slice(12), [1, -1, -1, 1], 6);
    // a single-sample group with the sample std (0/0) is still 0, not NaN
    expect(runPlain(loadWithHp(ADV, {}, { std_g: { ddof: 1 } }), { rewards: [[3], [4]] }).adv).toEqual([0, 0]);
  });
});

describe('kl estimator (B.2, D.13)', () => {
  it('pi_theta = 0.8, pi_ref = 0.4: x = 0.5, D = 0.5 - ln 0.5 - 1 = 0.193147', () => {
    const o = runPlain(loadWithHp(KL), { logp_theta: [Math.log(0.8), Math.log(0.5)], logp_ref: [Math.log(0.4), Math.log(0.5)] });
    close(o.kl!, [0.193147, 0], 6);
    expect(o.kl_mean![0]).toBeCloseTo(0.193147 / 2, 6);
  });

  it('is >= 0 and matches x - log x - 1 in float64 on random pairs', () => {
    const a = Array.from({ length: 50 }, (_, i) => -3 * Math.abs(Math.sin(i * 1.7)));
    const b = Array.from({ length: 50 }, (_, i) => -3 * Math.abs(Math.cos(i * 0.9)));
    const o = runPlain(loadWithHp(KL), { logp_theta: a, logp_ref: b });
    o.kl!.forEach((d, i) => {
      const x = Math.exp(b[i]! - a[i]!);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(Math.abs(d - (x - Math.log(x) - 1))).toBeLessThan(1e-5 * (1 + x));
    });
  });
});

describe('grpo/loss: clipped ratio objective minus beta KL', () => {
  // ratios 1.5, 0.5, 0.5, 1.5, 1.1 against advantages +1, +1, -1, -1, +2
  const ratio = [1.5, 0.5, 0.5, 1.5, 1.1];
  const adv = [1, 1, -1, -1, 2];
  const logp_old = [-1, -2, -0.5, -1.2, -0.7];
  const logp = logp_old.map((l, i) => l + Math.log(ratio[i]!));
  const logp_ref = [-1.1, -2.5, -0.4, -1.0, -0.7];
  // min(r A, clip(r) A): 1.2 (clipped), 0.5, -0.8 (clipped), -1.5, 2.2
  const surr = [1.2, 0.5, -0.8, -1.5, 2.2];
  const kl = logp.map((l, i) => {
    const x = Math.exp(logp_ref[i]! - l);
    return x - Math.log(x) - 1;
  });

  it('beta 0 (default): loss = -mean(surrogate); clipfrac and approx_kl diagnostics', () => {
    const o = runPlain(loadWithHp(LOSS), { logp, logp_old, adv, logp_ref });
    expect(o.loss![0]).toBeCloseTo(-(1.2 + 0.5 - 0.8 - 1.5 + 2.2) / 5, 5);
    close(o.objective!, surr, 5);
    expect(o.clipfrac![0]).toBeCloseTo(4 / 5, 6);
    const akl = ratio.reduce((s, r) => s + (r - 1) - Math.log(r), 0) / 5;
    expect(o.approx_kl![0]).toBeCloseTo(akl, 5);
    expect(o.kl![0]).toBeCloseTo(kl.reduce((s, x) => s + x, 0) / 5, 5);
  });

  it('beta 0.04 subtracts beta D per sample; the gradient w.r.t. logp matches the analytic one', () => {
    const beta = 0.04;
    const o = runPlain(loadWithHp(LOSS, { beta }), { logp, logp_old, adv, logp_ref });
    close(o.objective!, surr.map((s, i) => s - beta * kl[i]!), 5);

    // d loss / d logp_i = -(1/N) (d surr_i/d logp_i - beta (1 - x_i)); d surr/d logp = r A where unclipped, 0 where clipped
    const wrapper = {
      graph: 'grpo-loss-grad',
      inputs: { logp: { shape: ['N'] }, logp_old: { shape: ['N'] }, adv: { shape: ['N'] }, logp_ref: { shape: ['N'] } },
      nodes: [
        { id: 'l', op: 'call', graph: 'loss.graph.json', in: { logp: 'logp', logp_old: 'logp_old', adv: 'adv', logp_ref: 'logp_ref' } },
        { id: 'g', op: 'grad', in: ['l.loss'], attrs: { wrt: ['logp', 'logp_old', 'adv'] } },
      ],
      outputs: { d_logp: 'g.logp', d_old: 'g.logp_old', d_adv: 'g.adv' },
    };
    const json = JSON.parse(readFileSync(LOSS, 'utf8')) as Json;
    json.nodes.find((n) => n.id === 'hp_beta')!.attrs!.value = beta;
    const files = { read: (p: string) => (resolve(p) === LOSS ? JSON.stringify(json) : readFileSync(p, 'utf8')) };
    const g = loadGraphJson(wrapper, resolve('graphs/algorithms/grpo/grad.graph.json'), { files });
    const expected = ratio.map((r, i) => {
      const clipped = [true, false, true, false, false][i]!;
      const x = Math.exp(logp_ref[i]! - logp[i]!);
      return -((clipped ? 0 : r * adv[i]!) - beta * (1 - x)) / 5;
    });
    const gi = runPlain(g, { logp, logp_old, adv, logp_ref });
    close(gi.d_logp!, expected, 5);
    // logp_old and adv are constants of the objective
    expect(gi.d_old!.every((x) => x === 0)).toBe(true);
    expect(gi.d_adv!.every((x) => x === 0)).toBe(true);
    const gc = runPlain(compileGraph(g, { disabled: new Set(['fusion']) }).graph, { logp, logp_old, adv, logp_ref });
    close(gc.d_logp!, expected, 5);
  });
});
