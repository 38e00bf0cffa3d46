import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LoomError } from '../../../compiler/errors.ts';
import {
  bruteForceOptimum,
  continuousOptimum,
  costSectional,
  costTraditional,
  feasibleSet,
  forwardShapes,
  objective,
  optimalExperts,
  savings,
  type MoeParams,
} from '../../../compiler/cost/moe.ts';
import { bootstrapOverheads, fitOverheads } from '../../../compiler/cost/moe.ts';

// Spec A.6 worked examples (c_att = 1, m = 0, w0 = 0). The spec's J for variant C leaves out the
// pre-expert block, which matches J here only when that block does not depend on E (pre: none).
const ex1: MoeParams = { L: 2048, d0: 4096, reduction: { kind: 'fixed', rho: 4 }, w1: 0, w2: 1e7 };
const ex2: MoeParams = { L: 1024, d0: 768, reduction: { kind: 'fixed', rho: 4 }, w1: 5e5, w2: 1e5 };
const ex3: MoeParams = { L: 4096, d0: 1024, reduction: { kind: 'coupled' }, w1: 0, w2: 1e8, pre: { kind: 'none' } };

function usageError(f: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(LoomError);
  expect((err as LoomError).code).toBe('E_USAGE');
  expect((err as LoomError).message).toMatch(pattern);
}

describe('spec A.6 worked examples', () => {
  it('example 1 (variant F, L=2048, L\'=512, d0=4096, w2=1e7): E_opt = 8', () => {
    const r = optimalExperts(ex1);
    expect(r.Lp).toBe(512);
    expect(r.K).toBe(25_769_803_776);
    expect(r.continuous).toBeCloseTo(10.8816, 4);
    expect(r.continuousMethod).toBe('closed-form');
    expect(r.candidates).toEqual([
      { E: 8, J: 3_861_225_472 },
      { E: 16, J: 4_170_612_736 },
    ]);
    expect(r.E).toBe(8);
    expect(r.s).toBe(512);
    expect(r.cost).toBe(3_861_225_472);
    expect(r.J1).toBe(25_779_803_776);
  });

  it('example 2 (variant F, w1 != 0, divisor 12 of 768): E_opt = 12', () => {
    const r = optimalExperts(ex2);
    expect(r.Lp).toBe(256);
    expect(r.K).toBe(452_984_832);
    expect(r.continuous).toBeCloseTo(12.3499, 4);
    expect(r.continuousMethod).toBe('numeric');
    // The continuous optimum is a root of the cubic 2 w2 E^3 + w1 E^2 - K.
    const E = r.continuous;
    expect(Math.abs(2e5 * E ** 3 + 5e5 * E ** 2 - 452_984_832)).toBeLessThan(1e-3);
    expect(r.candidates).toEqual([
      { E: 12, J: 58_148_736 },
      { E: 16, J: 61_911_552 },
    ]);
    expect(r.E).toBe(12);
    expect(r.J1).toBe(453_584_832);
  });

  it('example 3 (variant C, L\' = L/E): E_opt = 4', () => {
    const r = optimalExperts(ex3);
    expect(r.variant).toBe('coupled');
    expect(r.K).toBe(30_064_771_072);
    expect(r.continuous).toBeCloseTo(4.164, 3);
    expect(r.candidates).toEqual([
      { E: 4, J: 3_479_048_192 },
      { E: 8, J: 6_869_762_048 },
    ]);
    expect(r.E).toBe(4);
    expect(r.J1).toBe(30_164_771_072);
  });

  it('example 3 with the default pooling pre-expert block: J gains P/E, P = L d0^2 + c_att L^2 d0; E_opt stays 4', () => {
    const r = optimalExperts({ ...ex3, pre: { kind: 'pooling' } });
    const P = 4096 * 1024 ** 2 + 4096 ** 2 * 1024;
    expect(r.P).toBe(P);
    expect(r.candidates).toEqual([
      { E: 4, J: 3_479_048_192 + P / 4 },
      { E: 8, J: 6_869_762_048 + P / 8 },
    ]);
    expect(r.E).toBe(4);
    expect(r.J1).toBe(30_164_771_072 + P);
  });

  it('brute force agrees on all three', () => {
    expect(bruteForceOptimum(ex1)).toEqual({ E: 8, J: 3_861_225_472 });
    expect(bruteForceOptimum(ex2)).toEqual({ E: 12, J: 58_148_736 });
    expect(bruteForceOptimum(ex3)).toEqual({ E: 4, J: 3_479_048_192 });
  });
});

describe('cost breakdown', () => {
  it('costTraditional is 3 L d0^2 + c_att L^2 d0', () => {
    expect(costTraditional({ ...ex1, c_att: 2 })).toEqual({
      A: 3 * 2048 * 4096 ** 2,
      B: 2 * 2048 ** 2 * 4096,
      total: 3 * 2048 * 4096 ** 2 + 2 * 2048 ** 2 * 4096,
    });
  });

  it('costSectional follows spec A.4 term by term (variant F, pooling pre-expert block, FFN)', () => {
    const p: MoeParams = { ...ex1, m: 4, w0: 7, w1: 3 };
    const c = costSectional(8, p);
    const L = 2048, Lp = 512, d0 = 4096, s = 512;
    expect(c.A_pre).toBe(3 * L * d0 ** 2 + (Lp + 2 * L) * d0 ** 2);
    expect(c.B_pre).toBe(L ** 2 * d0 + Lp * L * d0);
    expect(c.A_exp).toBe(8 * 3 * Lp * s ** 2);
    expect(c.B_exp).toBe(8 * Lp ** 2 * s);
    expect(c.F_exp).toBe(8 * 2 * 4 * Lp * s ** 2);
    expect(c.O).toBe(7 + 3 * 8 + 1e7 * 64);
    expect(c.total).toBe(c.A_pre + c.B_pre + c.A_exp + c.B_exp + c.F_exp + c.O);
    expect(savings(8, p)).toBe(costTraditional(p).total - c.total);
  });

  it('variant F: total - J is the same for every E (the argmin of J maximises savings)', () => {
    const p: MoeParams = { ...ex2, m: 2, c_att: 2, w0: 11 };
    const diffs = feasibleSet(p).map((E) => costSectional(E, p).total - objective(E, p));
    for (const d of diffs) expect(d / diffs[0]!).toBeCloseTo(1, 12);
  });

  it('variant C expert terms are 3 L d0^2/E^2, c_att L^2 d0/E^2, 2m L d0^2/E^2', () => {
    const p: MoeParams = { ...ex3, m: 1, pre: { kind: 'none' } };
    const c = costSectional(4, p);
    expect(c.A_exp).toBe((3 * 4096 * 1024 ** 2) / 16);
    expect(c.B_exp).toBe((4096 ** 2 * 1024) / 16);
    expect(c.F_exp).toBe((2 * 4096 * 1024 ** 2) / 16);
    expect(c.A_pre).toBe(0);
    expect(c.B_pre).toBe(0);
  });

  it('pre: fixed uses the given numbers; pre: none makes example 2 beneficial', () => {
    expect(costSectional(12, { ...ex2, pre: { kind: 'fixed', A: 5, B: 6 } })).toMatchObject({ A_pre: 5, B_pre: 6 });
    const r = optimalExperts({ ...ex2, pre: { kind: 'none' } });
    const trad = 3 * 1024 * 768 ** 2 + 1024 ** 2 * 768;
    // C_sect(12) = J(12) + B_exp (constant c_att L'^2 d0 in variant F).
    expect(r.total).toBe(58_148_736 + 256 ** 2 * 768);
    expect(r.savings).toBe(trad - r.total);
    expect(r.beneficial).toBe(true);
  });

  it('with the default pooling pre-expert block sectioning never pays', () => {
    const r = optimalExperts(ex1);
    expect(r.savings).toBeLessThan(0);
    expect(r.beneficial).toBe(false);
    expect(r.reason).toMatch(/S\(E\*\)/);
  });

  it('is not beneficial when J(1) <= J(E_opt) (overhead so large that E* = 1)', () => {
    // w2 >= K/6 makes J(1) <= J(2), so E* = 1; pre none keeps S(1) positive.
    const r = optimalExperts({ ...ex1, w2: 5e9, pre: { kind: 'none' } });
    expect(r.E).toBe(1);
    expect(r.savings).toBeGreaterThan(0);
    expect(r.beneficial).toBe(false);
    expect(r.reason).toMatch(/J\(1\)/);
  });
});

describe('continuous optimum', () => {
  it('closed forms: cube root (F, w1 = 0), fourth root (C, w1 = 0), square root (F, w2 = 0)', () => {
    expect(continuousOptimum(ex1).E).toBeCloseTo(Math.cbrt(25_769_803_776 / 2e7), 10);
    expect(continuousOptimum(ex3).E).toBeCloseTo((30_064_771_072 / 1e8) ** 0.25, 10);
    const K = 3 * 256 * 768 ** 2;
    expect(continuousOptimum({ ...ex2, w2: 0 }).E).toBeCloseTo(Math.sqrt(K / 5e5), 10);
  });

  it('variant C with w1 > 0 solves the quartic 2 w2 E^4 + w1 E^3 - 2 K2 = 0', () => {
    const p: MoeParams = { ...ex3, w1: 3e8 };
    const r = continuousOptimum(p);
    expect(r.method).toBe('numeric');
    const K2 = 30_064_771_072;
    expect(Math.abs(2e8 * r.E ** 4 + 3e8 * r.E ** 3 - 2 * K2) / (2 * K2)).toBeLessThan(1e-12);
    // The root is the minimiser: J is larger on both sides.
    expect(objective(r.E, p)).toBeLessThan(objective(r.E * 1.001, p));
    expect(objective(r.E, p)).toBeLessThan(objective(r.E * 0.999, p));
  });

  it('w1 = w2 = 0: J decreases without bound, so the largest feasible E wins', () => {
    const p: MoeParams = { ...ex1, w2: 0, Emax: 64 };
    expect(continuousOptimum(p)).toEqual({ E: Infinity, method: 'unbounded' });
    const r = optimalExperts(p);
    expect(r.E).toBe(64);
    expect(r.candidates.map((c) => c.E)).toEqual([64]);
  });
});

describe('feasible set', () => {
  it('divisors of d0 within the range, s >= sMin, heads | s', () => {
    expect(feasibleSet({ L: 64, d0: 768, reduction: { kind: 'fixed', rho: 4 }, w2: 1 })).toEqual([
      1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 768,
    ]);
    expect(feasibleSet({ L: 64, d0: 768, reduction: { kind: 'fixed', rho: 4 }, w2: 1, Emin: 3, Emax: 100, sMin: 16 })).toEqual([
      3, 4, 6, 8, 12, 16, 24, 32, 48,
    ]);
    // s = 768/E divisible by 12 heads: E in {1, 2, 4, 8, 16, 32, 64}.
    expect(feasibleSet({ L: 64, d0: 768, reduction: { kind: 'fixed', rho: 4 }, w2: 1, heads: 12, Emax: 64 })).toEqual([1, 2, 4, 8, 16, 32, 64]);
  });

  it('variant C requires E | L unless ceil', () => {
    const p: MoeParams = { L: 1000, d0: 64, reduction: { kind: 'coupled' }, w2: 1 };
    expect(feasibleSet(p)).toEqual([1, 2, 4, 8]);
    expect(feasibleSet({ ...p, ceil: true })).toEqual([1, 2, 4, 8, 16, 32, 64]);
  });

  it('variant C with ceil uses L\' = ceil(L/E) and scans F', () => {
    const p: MoeParams = { L: 1000, d0: 64, reduction: { kind: 'coupled' }, ceil: true, w2: 1000, c_att: 1 };
    // E = 16: L' = 63, J = L' d0^2 + c_att L' L d0 (pooling) + 3 L' d0^2 / E + c_att L'^2 d0 + w2 E^2.
    expect(objective(16, p)).toBe(63 * 64 ** 2 + 63 * 1000 * 64 + (3 * 63 * 64 ** 2) / 16 + 63 ** 2 * 64 + 1000 * 256);
    const r = optimalExperts(p);
    expect(r.method).toBe('scan');
    expect(r.E).toBe(bruteForceOptimum(p).E);
    expect(r.savings).toBe(Math.max(...r.table.map((t) => t.savings)));
  });
});

/** An independent reference: every E in 1..d0 checked against the spec's constraints, J from the spec formulas. */
function reference(p: Required<Omit<MoeParams, 'heads' | 'pre' | 'ceil'>> & { heads?: number }): { E: number; J: number } | undefined {
  let best: { E: number; J: number } | undefined;
  const { L, d0, c_att, m, w1, w2 } = p;
  for (let E = 1; E <= d0; E++) {
    if (E < p.Emin || E > p.Emax || d0 % E !== 0 || d0 / E < p.sMin) continue;
    if (p.heads !== undefined && (d0 / E) % p.heads !== 0) continue;
    let J: number;
    if (p.reduction.kind === 'fixed') {
      const Lp = Math.ceil(L / p.reduction.rho);
      J = (3 * Lp * d0 * d0 + 2 * m * Lp * d0 * d0) / E + w1 * E + w2 * E * E;
    } else {
      if (L % E !== 0) continue;
      // The pooling pre-expert block at L' = L/E: L' d0^2 + c_att L' L d0.
      J = (L * d0 * d0 + c_att * L * L * d0) / E + (3 * L * d0 * d0 + c_att * L * L * d0 + 2 * m * L * d0 * d0) / (E * E) + w1 * E + w2 * E * E;
    }
    if (best === undefined || J < best.J) best = { E, J };
  }
  return best;
}

const D0S = [1, 6, 12, 48, 60, 64, 96, 120, 128, 360, 384, 512, 720, 768, 1000, 1024, 1536, 2048, 2520, 4096, 5040];

const arbParams = fc.record({
  L: fc.integer({ min: 1, max: 8192 }),
  d0: fc.constantFrom(...D0S),
  reduction: fc.oneof(
    fc.record({ kind: fc.constant('fixed' as const), rho: fc.constantFrom(1, 2, 2.5, 3, 4, 8, 16) }),
    fc.constant({ kind: 'coupled' as const }),
  ),
  c_att: fc.constantFrom(0, 1, 2),
  m: fc.constantFrom(0, 1, 4),
  w0: fc.constantFrom(0, 1e6),
  w1: fc.oneof(fc.constant(0), fc.double({ min: 1, max: 1e9, noNaN: true })),
  w2: fc.oneof(fc.constant(0), fc.double({ min: 1e-2, max: 1e9, noNaN: true })),
  Emin: fc.constantFrom(1, 1, 2, 3),
  Emax: fc.integer({ min: 1, max: 6000 }),
  sMin: fc.constantFrom(1, 1, 4, 16),
  heads: fc.option(fc.constantFrom(1, 2, 3, 4, 8), { nil: undefined }),
});

describe('integer optimum against a brute-force scan', () => {
  it('optimalExperts agrees with bruteForceOptimum and an independent reference (random parameters)', () => {
    let checked = 0;
    fc.assert(
      fc.property(arbParams, (raw) => {
        const p: MoeParams = { ...raw, Emax: Math.max(raw.Emin, raw.Emax) };
        if (raw.heads === undefined) delete p.heads;
        const ref = reference({ ...raw, Emax: p.Emax! });
        if (ref === undefined) {
          // An empty feasible set is an error everywhere.
          expect(() => optimalExperts(p)).toThrow(LoomError);
          expect(() => bruteForceOptimum(p)).toThrow(LoomError);
          return;
        }
        checked++;
        const r = optimalExperts(p);
        const b = bruteForceOptimum(p);
        expect(r.E).toBe(b.E);
        expect(r.cost).toBe(b.J);
        // The reference computes J in its own order of operations, so allow rounding; a
        // different E is only acceptable for a genuine tie.
        expect(Math.abs(r.cost - ref.J)).toBeLessThanOrEqual(1e-9 * ref.J);
        if (r.E !== ref.E) expect(Math.abs(objective(ref.E, p) - r.cost)).toBeLessThanOrEqual(1e-12 * r.cost);
        // The chosen E is one of the bracketing pair.
        expect(r.candidates.map((c) => c.E)).toContain(r.E);
      }),
      { numRuns: 400, seed: 20250327 },
    );
    expect(checked).toBeGreaterThan(100);
  });

  it('J is strictly convex in E on the reals and unimodal over F', () => {
    fc.assert(
      fc.property(arbParams, fc.double({ min: 0.05, max: 5000, noNaN: true }), fc.double({ min: 1e-3, max: 10, noNaN: true }), (raw, E, h) => {
        // J on the reals (the relaxation; feasibility does not matter here).
        const q: MoeParams = { ...raw, Emin: 1, Emax: raw.d0, sMin: 1 };
        delete q.heads;
        const mid = objective(E, q);
        const sides = (objective(E - Math.min(h, E / 2), q) + objective(E + Math.min(h, E / 2), q)) / 2;
        expect(sides).toBeGreaterThanOrEqual(mid * (1 - 1e-12));
      }),
      { numRuns: 300, seed: 7 },
    );
    for (const p of [ex1, ex2, ex3]) {
      const Js = optimalExperts(p).table.map((t) => t.J);
      const k = Js.indexOf(Math.min(...Js));
      for (let i = 1; i <= k; i++) expect(Js[i]!).toBeLessThan(Js[i - 1]!);
      for (let i = k + 1; i < Js.length; i++) expect(Js[i]!).toBeGreaterThan(Js[i - 1]!);
    }
  });

  it('ties break toward the smaller E', () => {
    // K/E + w2 E^2 ties at E = 8 and 16 when K = w2 * 8 * 16 * 24: K = 3 L' d0^2 with L' = 1, d0 = 64.
    const K = 3 * 64 * 64;
    const p: MoeParams = { L: 1, d0: 64, reduction: { kind: 'fixed', rho: 1 }, w2: K / (8 * 16 * 24) };
    expect(objective(8, p)).toBe(objective(16, p));
    expect(optimalExperts(p).E).toBe(8);
    expect(bruteForceOptimum(p).E).toBe(8);
  });
});

describe('forwardShapes', () => {
  it('follows spec A.3', () => {
    expect(forwardShapes(2, 2048, 4096, 8, 4)).toEqual({
      input: [2, 2048, 4096],
      preExpert: [2, 2048, 4096],
      reduced: [2, 512, 4096],
      sectioned: [2, 512, 8, 512],
      expert: [2, 512, 512],
      combined: [2, 512, 4096],
    });
    expect(forwardShapes(1, 10, 12, 3, 3).reduced).toEqual([1, 4, 12]);
    expect(forwardShapes(1, 4096, 1024, 4, 'coupled').sectioned).toEqual([1, 1024, 4, 256]);
  });
  it('rejects E not dividing d0 and L not divisible in the coupled form', () => {
    usageError(() => forwardShapes(1, 16, 12, 5, 4), /does not divide d0/);
    usageError(() => forwardShapes(1, 10, 12, 4, 'coupled'), /divide L/);
  });
});

describe('bad parameters are E_USAGE errors', () => {
  it('sizes', () => {
    usageError(() => optimalExperts({ ...ex1, L: 0 }), /L must be a positive integer/);
    usageError(() => optimalExperts({ ...ex1, d0: -4 }), /d0 must be a positive integer/);
    usageError(() => optimalExperts({ ...ex1, d0: 4.5 }), /d0 must be a positive integer/);
    usageError(() => optimalExperts({ ...ex1, L: NaN }), /L must be a positive integer/);
    usageError(() => optimalExperts({ ...ex1, heads: 0 }), /heads must be a positive integer/);
    usageError(() => optimalExperts({ ...ex1, sMin: 1.5 }), /sMin must be a positive integer/);
    usageError(() => optimalExperts({ ...ex1, reduction: { kind: 'fixed', rho: 0.5 } }), /rho must be a finite number >= 1/);
  });
  it('coefficients', () => {
    usageError(() => optimalExperts({ ...ex1, w1: -1 }), /w1 must be >= 0/);
    usageError(() => optimalExperts({ ...ex1, w2: -1e-9 }), /w2 must be >= 0/);
    usageError(() => optimalExperts({ ...ex1, c_att: -1 }), /c_att must be >= 0/);
    usageError(() => optimalExperts({ ...ex1, m: Infinity }), /m must be a finite number/);
    usageError(() => optimalExperts({ L: 4, d0: 4, reduction: { kind: 'coupled' } } as unknown as MoeParams), /w2 .* is required/);
  });
  it('Emin > Emax', () => {
    usageError(() => optimalExperts({ ...ex1, Emin: 9, Emax: 8 }), /Emin \(9\) is greater than Emax \(8\)/);
  });
  it('an empty feasible set names the constraint that emptied it', () => {
    const base: MoeParams = { L: 7, d0: 16, reduction: { kind: 'fixed', rho: 1 }, w2: 1 };
    usageError(() => optimalExperts({ ...base, Emin: 5, Emax: 7 }), /"Emin <= E <= Emax/);
    usageError(() => optimalExperts({ ...base, Emin: 4, sMin: 8 }), /"s = d0\/E >= sMin/);
    usageError(() => optimalExperts({ ...base, d0: 12, heads: 5 }), /"heads \(5\) divides s/);
    usageError(() => optimalExperts({ ...base, reduction: { kind: 'coupled' }, Emin: 2 }), /"E divides L \(7\)/);
  });
  it('sizes so large that costs lose integer precision, and non-finite overhead', () => {
    usageError(() => optimalExperts({ ...ex1, L: 1_000_000, d0: 100_000_000 }), /exceeds Number.MAX_SAFE_INTEGER/);
    usageError(() => optimalExperts({ ...ex1, w2: 1e307 }), /not finite/);
  });
  it('ceil only applies to the coupled variant', () => {
    usageError(() => optimalExperts({ ...ex1, ceil: true }), /coupled/);
  });
});

describe('fitOverheads', () => {
  const base = { L: 1024, d0: 768, reduction: { kind: 'fixed' as const, rho: 4 }, w2: 1 };
  const K = 3 * 256 * 768 * 768; // 3·L'·d0², m = 0

  it('recovers the coefficients of costs generated by the model, with a forward+backward scale', () => {
    const truth = { scale: 3, w0: 1e7, w1: 5e5, w2: 1e5 };
    const points = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32].map((E) => ({ E, cost: truth.scale * (K / E) + truth.w0 + truth.scale * (truth.w1 * E + truth.w2 * E * E) }));
    const fit = fitOverheads(points, base);
    expect(fit.scale).toBeCloseTo(3, 6);
    expect(fit.w1 / truth.w1).toBeCloseTo(1, 5);
    expect(fit.w2 / truth.w2).toBeCloseTo(1, 5);
    expect(fit.rms / 1e9).toBeLessThan(1e-6);
    // With the fitted coefficients the solver lands on the fitted curve's minimiser (spec example 2: E* = 12).
    expect(optimalExperts({ ...base, w1: fit.w1, w2: fit.w2 }).E).toBe(12);
  });

  it('keeps the coefficients non-negative: a cost that only falls with E gives no overhead', () => {
    const points = [1, 2, 4, 8, 16, 32].map((E) => ({ E, cost: 2 * (K / E) + 5e6 - 1e3 * E }));
    const fit = fitOverheads(points, base);
    expect(fit.w1).toBeGreaterThanOrEqual(0);
    expect(fit.w2).toBeGreaterThanOrEqual(0);
    expect(fit.w1 + fit.w2).toBe(0);
  });

  it('needs at least four points', () => {
    expect(() => fitOverheads([{ E: 1, cost: 1 }, { E: 2, cost: 1 }, { E: 4, cost: 1 }], base)).toThrow(/4 or more expert counts/);
  });
});

/**
 * S(E) = C_trad - C_sect(E) written out from spec A.4 per expert (E experts on [L', s]), with the
 * default pooling pre-expert block, independently of compiler/cost/moe.ts.
 */
function savingsReference(E: number, p: { L: number; d0: number; coupled: boolean; rho?: number; c_att: number; m: number; w0: number; w1: number; w2: number }): { S: number; scale: number } {
  const { L, d0, c_att, m } = p;
  const s = d0 / E;
  const Lp = p.coupled ? L / E : Math.ceil(L / p.rho!);
  const trad = 3 * L * d0 * d0 + c_att * L * L * d0;
  const pre = 3 * L * d0 * d0 + (Lp + 2 * L) * d0 * d0 + c_att * L * L * d0 + c_att * Lp * L * d0;
  const experts = E * (3 * Lp * s * s + c_att * Lp * Lp * s + 2 * m * Lp * s * s);
  const sect = pre + experts + p.w0 + p.w1 * E + p.w2 * E * E;
  return { S: trad - sect, scale: trad + sect };
}

/** argmax S over every E in 1..d0 meeting the spec's constraints (E | d0, Emax, and E | L when coupled); ties to the smaller E. */
function argmaxSavings(p: Parameters<typeof savingsReference>[1] & { Emax: number }): { E: number; S: number; scale: number } {
  let best: { E: number; S: number; scale: number } | undefined;
  for (let E = 1; E <= Math.min(p.d0, p.Emax); E++) {
    if (p.d0 % E !== 0 || (p.coupled && p.L % E !== 0)) continue;
    const r = savingsReference(E, p);
    if (best === undefined || r.S > best.S) best = { E, ...r };
  }
  return best!;
}

describe('coupled reduction: E* maximises the savings S (the pooling term falls with E too)', () => {
  const cases: { name: string; p: MoeParams; E: number }[] = [
    { name: 'd0=512, L=64, w2=1e3, m=4', p: { L: 64, d0: 512, reduction: { kind: 'coupled' }, w2: 1e3, m: 4 }, E: 32 },
    { name: 'd0=960, L=1000, w1=w2=1e6', p: { L: 1000, d0: 960, reduction: { kind: 'coupled' }, w1: 1e6, w2: 1e6 }, E: 10 },
    { name: 'd0=1536, L=8192, w2=1e7', p: { L: 8192, d0: 1536, reduction: { kind: 'coupled' }, w2: 1e7 }, E: 16 },
  ];
  for (const { name, p, E } of cases) {
    it(name, () => {
      const ref = argmaxSavings({ L: p.L, d0: p.d0, coupled: true, c_att: 1, m: p.m ?? 0, w0: 0, w1: p.w1 ?? 0, w2: p.w2, Emax: p.d0 });
      expect(ref.E).toBe(E);
      const r = optimalExperts(p);
      expect(r.E).toBe(ref.E);
      expect(bruteForceOptimum(p).E).toBe(ref.E);
      expect(r.savings).toBeCloseTo(ref.S, 0);
      // J and C_sect differ by a constant, so S(E) + J(E) is the same at every feasible E.
      const sums = r.table.map((t) => t.savings + t.J);
      for (const v of sums) expect(Math.abs(v - sums[0]!)).toBeLessThanOrEqual(1e-12 * r.traditional.total * 4);
    });
  }

  it('the continuous optimum is the root of J\'(E) = -P/E^2 - 2 K2/E^3 + w1 + 2 w2 E', () => {
    const p: MoeParams = { L: 64, d0: 512, reduction: { kind: 'coupled' }, w1: 10, w2: 1e3, m: 4 };
    const r = continuousOptimum(p);
    expect(r.method).toBe('numeric');
    const h = 1e-4 * r.E;
    const slope = (objective(r.E + h, p) - objective(r.E - h, p)) / (2 * h);
    expect(Math.abs(slope) * r.E).toBeLessThan(1e-6 * objective(r.E, p));
    expect(objective(r.E, p)).toBeLessThan(objective(r.E * 1.01, p));
    expect(objective(r.E, p)).toBeLessThan(objective(r.E * 0.99, p));
  });

  it('random parameters: E* is the brute-force argmax of S over the feasible set (both reductions)', () => {
    let checked = 0;
    let coupled = 0;
    fc.assert(
      fc.property(
        fc.record({
          L: fc.integer({ min: 1, max: 4096 }),
          d0: fc.constantFrom(12, 48, 60, 64, 96, 120, 256, 360, 512, 720, 960, 1024, 1536),
          coupled: fc.boolean(),
          rho: fc.constantFrom(1, 2, 4, 8),
          c_att: fc.constantFrom(0, 1, 2),
          m: fc.constantFrom(0, 1, 4),
          w0: fc.constantFrom(0, 1e6),
          w1: fc.oneof(fc.constant(0), fc.double({ min: 1, max: 1e8, noNaN: true })),
          w2: fc.oneof(fc.constant(0), fc.double({ min: 1e-2, max: 1e8, noNaN: true })),
          Emax: fc.integer({ min: 1, max: 2000 }),
        }),
        (q) => {
          const p: MoeParams = { L: q.L, d0: q.d0, reduction: q.coupled ? { kind: 'coupled' } : { kind: 'fixed', rho: q.rho }, c_att: q.c_att, m: q.m, w0: q.w0, w1: q.w1, w2: q.w2, Emax: q.Emax };
          const ref = argmaxSavings(q);
          checked++;
          if (q.coupled) coupled++;
          const r = optimalExperts(p);
          // A different E only for a tie within rounding of the costs.
          if (r.E !== ref.E) expect(Math.abs(savingsReference(r.E, q).S - ref.S)).toBeLessThanOrEqual(1e-12 * ref.scale);
          expect(Math.abs(r.savings - savingsReference(r.E, q).S)).toBeLessThanOrEqual(1e-12 * ref.scale);
        },
      ),
      { numRuns: 600, seed: 20261206 },
    );
    expect(checked).toBe(600);
    expect(coupled).toBeGreaterThan(200);
  });
});

describe('bootstrapOverheads', () => {
  const base = { L: 1024, d0: 768, reduction: { kind: 'fixed' as const, rho: 4 }, w2: 1, Emax: 96 };
  const K = 3 * 256 * 768 * 768;
  const truth = { scale: 1e-9, w0: 0.02, w1: 5e5, w2: 1e5 };
  const Es = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 96];
  const med = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  /** Timings from the model with 4% noise per timing and a slow spell (x1.3) in every fifth round, hitting all E. */
  function synthetic(rounds: number, seed: number): { E: number; times: number[] }[] {
    let x = seed;
    const uniform = () => ((x = (x * 1103515245 + 12345) % 2147483648) / 2147483648);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
    const model = (E: number) => truth.scale * (K / E + truth.w1 * E + truth.w2 * E * E) + truth.w0;
    const out = Es.map((E) => ({ E, times: [] as number[] }));
    for (let r = 0; r < rounds; r++) {
      const spell = r % 5 === 4 ? 1.3 : 1;
      for (const o of out) o.times.push(model(o.E) * spell * (1 + 0.04 * gauss()));
    }
    return out;
  }

  it('recovers w1, w2 and E* from noisy timings, with intervals that cover the truth', () => {
    const b = bootstrapOverheads(synthetic(15, 3), base, { stat: med, resamples: 200, seed: 5 });
    // Spec example 2's coefficients: E* = 12.
    expect(b.E).toBe(12);
    expect(b.fit.scale / truth.scale).toBeCloseTo(1, 1);
    for (const k of ['w1', 'w2'] as const) {
      expect(b[k].se).toBeGreaterThan(0);
      expect(b[k].lo).toBeLessThanOrEqual(truth[k]);
      expect(b[k].hi).toBeGreaterThanOrEqual(truth[k]);
      expect(Math.abs(b.fit[k] - truth[k])).toBeLessThan(3 * b[k].se);
    }
    expect(Math.abs(b.fit.w2 / truth.w2 - 1)).toBeLessThan(0.15);
    // Most resamples agree on E* = 12; the shares sum to 1.
    expect(b.solverE.find((e) => e.E === 12)!.share).toBeGreaterThan(0.5);
    expect(b.solverE.reduce((a, e) => a + e.share, 0)).toBeCloseTo(1, 12);
    expect(b.measuredE.reduce((a, e) => a + e.share, 0)).toBeCloseTo(1, 12);
  });

  it('more rounds narrow the spread; the same seed gives the same result', () => {
    const few = bootstrapOverheads(synthetic(6, 11), base, { stat: med, resamples: 150, seed: 2 });
    const many = bootstrapOverheads(synthetic(60, 11), base, { stat: med, resamples: 150, seed: 2 });
    expect(many.w2.se).toBeLessThan(few.w2.se);
    expect(bootstrapOverheads(synthetic(6, 11), base, { stat: med, resamples: 150, seed: 2 })).toEqual(few);
  });

  it('needs the same number of rounds at every E', () => {
    expect(() => bootstrapOverheads([{ E: 1, times: [1, 2] }, { E: 2, times: [1] }], base, { stat: med })).toThrow(/same number/);
  });
});
