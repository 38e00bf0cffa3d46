/**
 * rliable's statistics against independent references: trimmed means by hand (scipy's trim_mean
 * semantics), bootstrap CIs recomputed from the same seeded resamples by a plain implementation,
 * the probability of improvement against an O(n·m) pair count, Mann–Whitney p-values against the
 * permutation distribution enumerated in full and against scipy's values, Holm on a hand example.
 */
import { describe, expect, it } from 'vitest';
import { bootstrapCI, bootstrapIndices, holm, iqm, mannWhitneyP, meanOfAll, pairProbability, performanceProfile, probabilityOfImprovement, trimMean } from '../../runtime/stats.ts';

/** numpy.percentile (linear), written out: position (R - 1) q / 100 between two order statistics. */
const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  const pos = ((s.length - 1) * q) / 100;
  const i = Math.floor(pos);
  return i + 1 < s.length ? s[i]! * (1 - (pos - i)) + s[i + 1]! * (pos - i) : s[i]!;
};
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('interquartile mean', () => {
  it('drops floor(n / 4) scores at each end, as scipy.stats.trim_mean(x, 0.25)', () => {
    // n = 5: one dropped at each end -> (2 + 3 + 4) / 3 (scipy: 3.0)
    expect(trimMean([100, 2, 3, 1, 4], 0.25)).toBe(3);
    // n = 8: two at each end -> (3 + 4 + 5 + 6) / 4 (scipy: 4.5)
    expect(trimMean([8, 7, 6, 5, 4, 3, 2, 1], 0.25)).toBe(4.5);
    // n = 7: floor(1.75) = 1 at each end -> (2 + 3 + 5 + 7 + 8) / 5 (scipy: 5.0)
    expect(trimMean([5, 1, 9, 7, 3, 2, 8], 0.25)).toBe(5);
    // n = 3: floor(0.75) = 0, the plain mean
    expect(trimMean([1, 2, 9], 0.25)).toBe(4);
    // Over tasks, the scores are flattened first.
    expect(iqm([[100, 2], [3, 1, 4]])).toBe(3);
    expect(meanOfAll([[1, 2], [3]])).toBe(2);
  });
});

describe('stratified bootstrap', () => {
  it('resamples within each task, uniformly, and the same way every time', () => {
    const a = bootstrapIndices([3, 2], 4000, 7);
    expect(bootstrapIndices([3, 2], 4000, 7)).toEqual(a);
    expect(bootstrapIndices([3, 2], 4000, 8)).not.toEqual(a);
    const counts = [0, 0, 0];
    for (const rep of a) {
      expect(rep.map((t) => t.length)).toEqual([3, 2]);
      for (const i of rep[0]!) counts[i]!++;
      for (const i of rep[1]!) expect(i === 0 || i === 1).toBe(true);
    }
    // 12000 draws over 3 indices: 4000 each, sd about 52.
    for (const c of counts) expect(Math.abs(c - 4000)).toBeLessThan(300);
  });

  it('IQM and mean CIs equal a plain percentile bootstrap over the same resamples', () => {
    const scores = [[12, 3, 7, 40, 5, 9], [1, 2, 30]];
    const reps = 500;
    const idx = bootstrapIndices([6, 3], reps, 0);
    const plainIqm = idx.map((rep) => {
      const s = [...rep[0]!.map((i) => scores[0]![i]!), ...rep[1]!.map((i) => scores[1]![i]!)].sort((x, y) => x - y);
      return avg(s.slice(2, 7)); // 9 scores: floor(2.25) = 2 dropped at each end
    });
    const plainMean = idx.map((rep) => avg([...rep[0]!.map((i) => scores[0]![i]!), ...rep[1]!.map((i) => scores[1]![i]!)]));
    const a = bootstrapCI(scores, iqm, { reps, seed: 0 })!;
    expect(a.value).toBeCloseTo(avg([3, 5, 7, 9, 12]), 12);
    expect(a.lo).toBeCloseTo(pct(plainIqm, 2.5), 12);
    expect(a.hi).toBeCloseTo(pct(plainIqm, 97.5), 12);
    const b = bootstrapCI(scores, meanOfAll, { reps, seed: 0 })!;
    expect(b.value).toBeCloseTo(avg(scores.flat()), 12);
    expect(b.lo).toBeCloseTo(pct(plainMean, 2.5), 12);
    expect(b.hi).toBeCloseTo(pct(plainMean, 97.5), 12);
    expect(b.lo).toBeLessThan(b.value);
    expect(b.hi).toBeGreaterThan(b.value);
  });

  it('two runs {0, 1}: the mean takes 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4, so the 95% interval is [0, 1]', () => {
    expect(bootstrapCI([[0, 1]], meanOfAll)).toEqual({ value: 0.5, lo: 0, hi: 1 });
    expect(bootstrapCI([[4]], meanOfAll)).toEqual({ value: 4, lo: 4, hi: 4 });
    expect(bootstrapCI([[]], meanOfAll)).toBeNull();
  });
});

describe('probability of improvement', () => {
  it('equals the share of pairs (x, y) with x > y, ties counting one half', () => {
    const x = [3, 1, 4, 1, 5, 9, 2];
    const y = [2, 7, 1, 8, 2, 8];
    let wins = 0;
    for (const a of x) for (const b of y) wins += a > b ? 1 : a === b ? 0.5 : 0;
    expect(pairProbability(x, y)).toBeCloseTo(wins / (x.length * y.length), 12);
    expect(pairProbability([1, 1], [1])).toBe(0.5);
  });

  it('its CI resamples X and Y independently: a plain bootstrap over the same draws', () => {
    const x = [5, 6, 7, 8];
    const y = [4, 6, 9];
    const reps = 300;
    const idx = bootstrapIndices([4, 3], reps, 0);
    const pairCount = (a: number[], b: number[]) => a.reduce((s, u) => s + b.reduce((t, v) => t + (u > v ? 1 : u === v ? 0.5 : 0), 0), 0) / (a.length * b.length);
    const plain = idx.map((rep) => pairCount(rep[0]!.map((i) => x[i]!), rep[1]!.map((i) => y[i]!)));
    const p = probabilityOfImprovement([x], [y], { reps, seed: 0 })!;
    expect(p.value).toBeCloseTo(pairCount(x, y), 12);
    expect(p.lo).toBeCloseTo(pct(plain, 2.5), 12);
    expect(p.hi).toBeCloseTo(pct(plain, 97.5), 12);
    // Over two tasks: the mean of the per-task probabilities.
    expect(probabilityOfImprovement([x, [1]], [y, [0]])!.value).toBeCloseTo((pairCount(x, y) + 1) / 2, 12);
  });
});

describe('performance profiles', () => {
  it('count the runs above each tau, with bands from the same resamples', () => {
    const s = [1, 2, 3, 4];
    const prof = performanceProfile([s], [0, 2, 2.5, 4], { reps: 200, seed: 0 });
    expect(prof.map((p) => p.frac)).toEqual([1, 0.5, 0.5, 0]);
    const idx = bootstrapIndices([4], 200, 0);
    const at = (tau: number) => idx.map((rep) => rep[0]!.filter((i) => s[i]! > tau).length / 4);
    expect(prof[1]!.lo).toBeCloseTo(pct(at(2), 2.5), 12);
    expect(prof[1]!.hi).toBeCloseTo(pct(at(2), 97.5), 12);
    // Every run is above 0 in every resample.
    expect([prof[0]!.lo, prof[0]!.hi]).toEqual([1, 1]);
  });
});

describe('Mann–Whitney U test and Holm', () => {
  /** The two-sided exact p by enumerating every split of the pooled values into groups of n and m. */
  function permutationP(x: number[], y: number[]): number {
    const all = [...x, ...y];
    const n = x.length;
    const u = (a: number[], b: number[]) => a.reduce((s, p) => s + b.filter((q) => q < p).length, 0);
    const obs = u(x, y);
    const dist: number[] = [];
    const pick = (start: number, chosen: number[]) => {
      if (chosen.length === n) {
        const a = chosen.map((i) => all[i]!);
        const b = all.filter((_, i) => !chosen.includes(i));
        dist.push(u(a, b));
        return;
      }
      for (let i = start; i < all.length; i++) pick(i + 1, [...chosen, i]);
    };
    pick(0, []);
    const k = Math.max(obs, n * y.length - obs);
    return Math.min(1, (2 * dist.filter((d) => d >= k).length) / dist.length);
  }

  it('exact without ties: equals the permutation distribution counted in full', () => {
    const cases: [number[], number[]][] = [
      [[10, 11, 12, 13, 14], [1, 2, 3, 4, 5]],
      [[1.5, 2, 8, 9, 10], [3, 4, 5, 6, 7]],
      [[0.3, 0.9, 0.1], [0.5, 0.7, 0.2, 0.8]],
      [[5, 1, 4, 7, 2, 6], [3, 8]],
    ];
    for (const [x, y] of cases) expect(mannWhitneyP(x, y)).toBeCloseTo(permutationP(x, y), 12);
    // scipy.stats.mannwhitneyu(x, y).pvalue: 0.007936507936507936 = 2/252 and 0.6904761904761905
    expect(mannWhitneyP(cases[0]![0], cases[0]![1])).toBeCloseTo(0.007936507936507936, 12);
    expect(mannWhitneyP(cases[1]![0], cases[1]![1])).toBeCloseTo(0.6904761904761905, 12);
  });

  it('with ties: the normal approximation with tie and continuity corrections (scipy asymptotic)', () => {
    // U = 4.5; mu = 12.5; tie term 3 * (2^3 - 2) = 18; sd = sqrt(25/12 * (11 - 18/90)) = 4.7434;
    // z = (8 - 0.5) / 4.7434 = 1.5811; p = 2 * P(Z > z) (scipy: 0.11384629800665805)
    expect(mannWhitneyP([1, 2, 3, 4, 5], [3, 4, 5, 6, 7])).toBeCloseTo(0.11384629800665805, 6);
    expect(mannWhitneyP([2, 2], [2, 2])).toBe(1);
    expect(mannWhitneyP([], [1])).toBeNull();
  });

  it('Holm: sorted p-values times m, m - 1, ..., made monotone and capped at 1', () => {
    // Sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, max(0.04, 0.06) = 0.06.
    const adj = holm([0.01, 0.04, 0.03, 0.005]);
    [0.03, 0.06, 0.06, 0.02].forEach((v, i) => expect(adj[i]!).toBeCloseTo(v, 12));
    expect(holm([0.5, null, 0.4])).toEqual([0.8, null, 0.8]);
    expect(holm([0.9, 0.8])).toEqual([1, 1]);
  });
});
