import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraphJson } from '../../compiler/frontend/load.ts';
import { compileGraph } from '../../compiler/compile.ts';
import { loadWithHp, runPlain } from '../helpers/graph-run.ts';

await tf.setBackend('cpu');
const startTensors = tf.memory().numTensors;
afterAll(() => expect(tf.memory().numTensors).toBe(startTensors));

const UPDATE = resolve('graphs/algorithms/amppo/update.graph.json');
const MODULATE = resolve('graphs/algorithms/amppo/modulate.graph.json');

// ---- plain float64 reference of spec §2.4, written from the spec ----
interface Hp { tau: number; p_star: number; kappa: number; eta: number; rho: number; rho_sat: number; eps: number; v_shift: number }
const DEFAULTS: Hp = { tau: 1.25, p_star: 0.1, kappa: 2.0, eta: 0.3, rho: 0.1, rho_sat: 0.98, eps: 1e-5, v_shift: 0 };
interface RefOut { A_mod: number[]; alpha: number; s: number; applied: boolean; norm: number; sigma: number; alpha_hat: number; s_obs: number }
function refM(A: number[], alpha: number, s: number, update: boolean, hp: Hp = DEFAULTS): RefOut {
  const n = A.length;
  const norm = Math.sqrt(A.reduce((acc, a) => acc + a * a, 0));
  const mean = A.reduce((acc, a) => acc + a, 0) / n;
  const sigma = Math.sqrt(A.reduce((acc, a) => acc + (a - mean) ** 2, 0) / (n - 1)) + hp.eps;
  const alpha_hat = (hp.kappa * (norm + hp.eps)) / (sigma + hp.eps) * (hp.p_star / (s + hp.eps)) ** hp.eta;
  if (n <= 1 || norm < hp.eps) return { A_mod: [...A], alpha, s, applied: false, norm, sigma, alpha_hat, s_obs: NaN };
  const a = update ? Math.min(Math.max((1 - hp.rho) * alpha + hp.rho * alpha_hat, 1e-12), 1e12) : alpha;
  const Z = A.map((x) => (a * x) / (norm + hp.eps));
  const s_obs = Z.filter((z) => Math.abs(z) > hp.tau).length / n;
  const sNew = update ? (1 - hp.rho_sat) * s + hp.rho_sat * s_obs : s;
  const A_mod = A.map((x, i) => Math.abs(x) * (hp.kappa * Math.tanh(Z[i]!) + hp.v_shift));
  return { A_mod, alpha: a, s: sNew, applied: true, norm, sigma, alpha_hat, s_obs };
}

/** Seeded standard normals (mulberry32 + Box-Muller), rounded to float32 as the graph sees them. */
function gaussians(seed: number, n: number): number[] {
  let st = seed >>> 0;
  const u = () => {
    st = (st + 0x6d2b79f5) >>> 0;
    let t = st;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: number[] = [];
  while (out.length < n) {
    const r = Math.sqrt(-2 * Math.log(1 - u()));
    const th = 2 * Math.PI * u();
    out.push(Math.fround(r * Math.cos(th)), Math.fround(r * Math.sin(th)));
  }
  return out.slice(0, n);
}

const rel = (x: number, y: number) => Math.abs(x - y) / Math.max(1e-6, Math.abs(y));
function expectClose(actual: number[], expected: number[], tol: number) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((x, i) => expect(rel(x, expected[i]!), `index ${i}: ${x} vs ${expected[i]}`).toBeLessThan(tol));
}

describe('amppo/update: hand-computed vectors (spec §2.4)', () => {
  const g = loadWithHp(UPDATE);

  it('A = [1, -2, 2] from the initial state alpha 1, s 0.1', () => {
    // N = 3; std (n-1) = sqrt(13/3) = 2.081666, sigma = 2.081676;
    // alpha_hat = 2 * 3.00001 / 2.081686 * (0.1/0.10001)^0.3 = 2.8822022;
    // alpha = 0.9 * 1 + 0.1 * 2.8822022 = 1.1882202; Z = alpha * A / 3.00001 = [0.396072, -0.792144, 0.792144]
    // none above 1.25 -> s_obs 0, s = 0.02 * 0.1 = 0.002; A_mod = 2 |A| tanh(Z) = [0.753166, -2.638488, 2.638488].
    const o = runPlain(g, { A: [1, -2, 2], alpha_ema: 1, s_ema: 0.1 });
    expect(o.norm![0]).toBeCloseTo(3, 6);
    expect(o.sigma![0]).toBeCloseTo(2.081676, 5);
    expect(o.alpha_hat![0]).toBeCloseTo(2.8822022, 5);
    expect(o.alpha_ema![0]).toBeCloseTo(1.1882202, 5);
    expect(o.s_obs![0]).toBe(0);
    expect(o.s_ema![0]).toBeCloseTo(0.002, 7);
    expectClose(o.A_mod!, [0.7531662, -2.638488, 2.638488], 1e-5);
    expect(o.applied).toEqual([1]);
  });

  it('second step A = [3, -4]: alpha updated before s, s measured with the new alpha', () => {
    // from alpha 1.1882202, s 0.002: N = 5, sigma = 4.949747 + 1e-5, alpha_hat = 2 * 5.00001/4.949767 * (0.1/0.00201)^0.3 = 6.523148;
    // alpha = 0.9 * 1.1882202 + 0.6523148 = 1.7217130; Z = [1.033026, -1.377368] -> one of two above 1.25: s_obs 0.5,
    // s = 0.02 * 0.002 + 0.98 * 0.5 = 0.49004 (had s been measured with the old alpha, Z[1] = 0.95 and s_obs = 0).
    const o = runPlain(g, { A: [3, -4], alpha_ema: 1.1882202221006364, s_ema: 0.002 });
    expect(o.alpha_hat![0]).toBeCloseTo(6.523148, 4);
    expect(o.alpha_ema![0]).toBeCloseTo(1.721713, 5);
    expect(o.s_obs![0]).toBe(0.5);
    expect(o.s_ema![0]).toBeCloseTo(0.49004, 6);
    expectClose(o.A_mod!, [4.650714, -7.042884], 1e-5);
  });

  it('edge cases: len <= 1 or N < eps return A unchanged and leave the state alone (A7)', () => {
    for (const A of [[0.7], [-3], [0, 0, 0], [1e-6, -2e-6, 3e-6]]) {
      const o = runPlain(g, { A, alpha_ema: 4.5, s_ema: 0.3 });
      expect(o.A_mod).toEqual(A.map(Math.fround));
      expect(o.alpha_ema).toEqual([4.5]);
      expect(o.s_ema).toEqual([Math.fround(0.3)]);
      expect(o.applied).toEqual([0]);
    }
    // just above the threshold it applies
    expect(runPlain(g, { A: [2e-5, 0], alpha_ema: 1, s_ema: 0.1 }).applied).toEqual([1]);
  });

  it('alpha_ema is clamped to [1e-12, 1e12]', () => {
    // s_ema = 0 gives (0.1/1e-5)^0.3 = 15.85 and a huge alpha_ema input stays at the cap
    expect(runPlain(g, { A: [1, 2, 3], alpha_ema: 1e13, s_ema: 0 }).alpha_ema![0]).toBeCloseTo(1e12, -7);
    expect(runPlain(g, { A: [1, -1, 1, -1], alpha_ema: 0, s_ema: 1e30 }).alpha_ema![0]).toBeGreaterThanOrEqual(1e-12);
  });
});

describe('amppo/modulate: frozen alpha, minibatch norm', () => {
  const g = loadWithHp(MODULATE);

  it('A = [0.5, -1, 2, 0.1] with alpha 5', () => {
    // N = sqrt(0.25 + 1 + 4 + 0.01) = 2.293469; Z = 5 A / 2.293479 = [1.090047, -2.180094, 4.360188, 0.218009]
    // A_mod = 2 |A| tanh(Z) = [0.796895, -1.949541, 3.998694, 0.042924]
    const o = runPlain(g, { A: [0.5, -1, 2, 0.1], alpha_ema: 5 });
    expectClose(o.A_mod!, [0.7968953, -1.9495407, 3.9986944, 0.0429240], 1e-5);
    expect(o.norm![0]).toBeCloseTo(2.293469, 5);
  });

  it('is sign-preserving and |A_mod| < kappa |A|; edge cases pass A through', () => {
    const A = gaussians(3, 64);
    const o = runPlain(g, { A, alpha_ema: 30 });
    o.A_mod!.forEach((m, i) => {
      expect(Math.sign(m)).toBe(Math.sign(A[i]!));
      expect(Math.abs(m)).toBeLessThanOrEqual(2 * Math.abs(A[i]!) + 1e-7);
    });
    expect(runPlain(g, { A: [5], alpha_ema: 30 }).A_mod).toEqual([5]);
    expect(runPlain(g, { A: [0, 0], alpha_ema: 30 }).A_mod).toEqual([0, 0]);
  });

  it('equals the A_mod of update when given the updated alpha and the same batch', () => {
    const A = gaussians(11, 100);
    const u = runPlain(loadWithHp(UPDATE), { A, alpha_ema: 7, s_ema: 0.2 });
    const m = runPlain(g, { A, alpha_ema: u.alpha_ema![0]! });
    expectClose(m.A_mod!, u.A_mod!, 1e-6);
  });

  it('s_obs is the fraction of |alpha A / (N + eps)| above tau (the driver\'s sat_mb), tau overridable', () => {
    const A = gaussians(5, 256);
    for (const [alpha, tau] of [[30, 1.25], [8, 0.3]] as const) {
      const o = runPlain(loadWithHp(MODULATE, { tau }), { A, alpha_ema: alpha });
      const want = refM(A, alpha, 0.1, false, { ...DEFAULTS, tau }).s_obs;
      expect(want).toBeGreaterThan(0.05);
      expect(want).toBeLessThan(0.95);
      expect(o.s_obs![0]).toBeCloseTo(want, 6);
    }
  });

  it('honours overridden hyperparameters (kappa, v_shift)', () => {
    const A = [0.3, -0.2, 1.5];
    const hp = { ...DEFAULTS, kappa: 1.5, v_shift: 0.25 };
    const o = runPlain(loadWithHp(MODULATE, { kappa: 1.5, v_shift: 0.25 }), { A, alpha_ema: 3 });
    expectClose(o.A_mod!, refM(A, 3, 0.1, false, hp).A_mod, 1e-5);
  });
});

describe('controller-state evolution against a float64 reference', () => {
  it('follows the reference over a fixed sequence of advantage batches (incl. edge cases)', () => {
    const g = loadWithHp(UPDATE);
    const batches: number[][] = [
      gaussians(1, 256),
      gaussians(2, 256).map((x) => 3 * x + 0.5),
      [0.4],
      gaussians(3, 37).map((x) => 0.01 * x),
      [0, 0, 0, 0],
      gaussians(4, 512),
      gaussians(5, 2).map((x) => 10 * x),
      gaussians(6, 1000).map((x) => x * Math.abs(x)),
      gaussians(7, 128),
      gaussians(8, 300),
      gaussians(9, 64),
      gaussians(10, 2048),
    ];
    let alpha = 1;
    let s = 0.1;
    let ga = 1;
    let gs = 0.1;
    for (const A of batches) {
      const r = refM(A, alpha, s, true);
      const o = runPlain(g, { A, alpha_ema: ga, s_ema: gs });
      expect(o.applied![0]).toBe(r.applied ? 1 : 0);
      if (r.applied) {
        expect(rel(o.norm![0]!, r.norm)).toBeLessThan(1e-5);
        expect(rel(o.sigma![0]!, r.sigma)).toBeLessThan(1e-4);
        expect(rel(o.alpha_hat![0]!, r.alpha_hat)).toBeLessThan(1e-4);
        expect(o.s_obs![0]).toBeCloseTo(r.s_obs, 6);
      }
      expect(rel(o.alpha_ema![0]!, r.alpha)).toBeLessThan(1e-4);
      expect(rel(o.s_ema![0]!, r.s)).toBeLessThan(1e-4);
      o.A_mod!.forEach((x, i) => expect(Math.abs(x - r.A_mod[i]!)).toBeLessThan(1e-4 * (1 + Math.abs(r.A_mod[i]!))));
      // each side carries its own state forward
      alpha = r.alpha;
      s = r.s;
      ga = o.alpha_ema![0]!;
      gs = o.s_ema![0]!;
    }
    expect(alpha).not.toBe(1);
  });
});

describe('§2.7 sanity numbers: seeded Gaussian advantages, B = 2048', () => {
  it('first alpha ~ 10, then alpha settles near 61.6 with s near 0.35; minibatches are mostly saturated', () => {
    const g = loadWithHp(UPDATE);
    let alpha = 1;
    let s = 0.1;
    const alphas: number[] = [];
    const ss: number[] = [];
    for (let k = 0; k < 60; k++) {
      const o = runPlain(g, { A: gaussians(1000 + k, 2048), alpha_ema: alpha, s_ema: s });
      alpha = o.alpha_ema![0]!;
      s = o.s_ema![0]!;
      alphas.push(alpha);
      ss.push(s);
    }
    // 0.9 + 0.1 * 2 * sqrt(2048) * (0.1/0.10001)^0.3 = 9.95, up to the sample's N/sigma
    expect(alphas[0]).toBeGreaterThan(9.5);
    expect(alphas[0]).toBeLessThan(10.4);
    // fixed point: alpha = 2 sqrt(B) (0.1/s)^0.3 with s = P(|x| > 1.25 sqrt(B)/alpha) -> 61.6, 0.359
    const tail = (xs: number[]) => xs.slice(30).reduce((a, b) => a + b, 0) / (xs.length - 30);
    expect(Math.abs(tail(alphas) - 61.6)).toBeLessThan(1);
    expect(Math.abs(tail(ss) - 0.35)).toBeLessThan(0.02);
    for (const a of alphas.slice(30)) expect(Math.abs(a - 61.6)).toBeLessThan(3);

    // minibatches of 64 normalised by their own norm: Z ~ 61.6 x / 8, so P(|Z| > 1.25) ~ 0.87 ("roughly 90 %").
    // A_mod/A = kappa tanh(|Z|) is monotone in |Z|, so saturation is A_mod/A > 2 tanh(1.25).
    const m = loadWithHp(MODULATE);
    let sat = 0;
    let total = 0;
    for (let j = 0; j < 32; j++) {
      const A = gaussians(5000 + j, 64);
      const o = runPlain(m, { A, alpha_ema: alpha });
      o.A_mod!.forEach((x, i) => {
        sat += x / A[i]! > 2 * Math.tanh(1.25) ? 1 : 0;
        total++;
      });
    }
    expect(sat / total).toBeGreaterThan(0.8);
    expect(sat / total).toBeLessThan(0.95);
  });
});

describe('gradient of modulate w.r.t. A', () => {
  const wrapper = {
    graph: 'amppo-modulate-grad-check',
    inputs: { A: { shape: ['M'] }, w: { shape: ['M'] }, alpha: { shape: [] } },
    nodes: [
      { id: 'm', op: 'call', graph: 'modulate.graph.json', in: { A: 'A', alpha_ema: 'alpha' } },
      { id: 'wm', op: 'mul', in: ['w', 'm.A_mod'] },
      { id: 'loss', op: 'sum', in: ['wm'] },
      { id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: ['A'] } },
    ],
    outputs: { loss: 'loss', dA: 'g.A' },
  };

  it('matches central finite differences of the float64 reference, interpreted and compiled', () => {
    const A = [0.5, -1.0, 2.0, 0.1, -0.3, 0.8];
    const w = [0.3, -1.2, 0.7, 2.0, 1.0, -0.5];
    const alpha = 4;
    const f = (x: number[]) => refM(x, alpha, 0.1, false).A_mod.reduce((acc, v, i) => acc + w[i]! * v, 0);
    const h = 1e-6;
    const fd = A.map((_, i) => {
      const p = [...A];
      const q = [...A];
      p[i]! += h;
      q[i]! -= h;
      return (f(p) - f(q)) / (2 * h);
    });
    const g = loadGraphJson(wrapper, resolve('graphs/algorithms/amppo/grad-check.graph.json'));
    const o = runPlain(g, { A, w, alpha });
    expect(o.loss![0]).toBeCloseTo(f(A), 4);
    fd.forEach((d, i) => expect(Math.abs(o.dA![i]! - d)).toBeLessThan(1e-3 * (1 + Math.abs(d))));

    // fused kernels need the compiled-program executor; the unfused program runs on the interpreter
    const c = compileGraph(g, { disabled: new Set(['fusion']) }).graph;
    expect(c.nodes.some((n) => n.op === 'grad')).toBe(false);
    const oc = runPlain(c, { A, w, alpha });
    expectClose(oc.dA!, o.dA!, 1e-5);
  });
});
