/**
 * Statistics over few seeds, after rliable (Agarwal et al., "Deep RL at the edge of the
 * statistical precipice", NeurIPS 2021): the interquartile mean, stratified bootstrap percentile
 * CIs, the probability of improvement and performance profiles; and the two-sided Mann–Whitney U
 * test with Holm–Bonferroni adjustment for the p-values a table shows. Resamples come from
 * Threefry keyed by a fixed seed, so a report is the same on every run and machine.
 *
 * Scores are given per task (a stratum: runs of one environment) as `number[][]`; a table of one
 * environment has one task, where the stratified bootstrap is the ordinary one over runs.
 */
import { randomBits, seedKey } from '../compiler/ops/threefry.ts';

/** Bootstrap replicates when nothing else is asked for (rliable's default). */
export const BOOTSTRAP_REPS = 2000;
/** The seed of every bootstrap: reports are reproducible. */
export const BOOTSTRAP_SEED = 0;

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * scipy.stats.trim_mean(x, p): sorts, drops floor(p · n) values at each end and averages the rest
 * (rliable's IQM is trimMean(flattened scores, 0.25)). n = 5 drops one at each end; n = 3 none.
 */
export function trimMean(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const cut = Math.floor(p * s.length);
  return mean(s.slice(cut, s.length - cut));
}

/** The interquartile mean of runs over tasks: the 25% trimmed mean of every score together. */
export const iqm = (scores: readonly (readonly number[])[]): number => trimMean(scores.flat(), 0.25);
export const meanOfAll = (scores: readonly (readonly number[])[]): number => mean(scores.flat());

/** numpy.percentile's default (linear interpolation between order statistics), q in [0, 100]. */
export function percentile(sorted: readonly number[], q: number): number {
  const h = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(h);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/**
 * The resampled run indices of a stratified bootstrap: for each replicate and each task, as many
 * indices (drawn with replacement, uniformly) as the task has runs. Replicate r, task t, draw i
 * reads the Threefry stream at one fixed position, so the same sizes always give the same draws.
 */
export function bootstrapIndices(sizes: readonly number[], reps: number, seed = BOOTSTRAP_SEED): number[][][] {
  const per = sizes.reduce((a, b) => a + b, 0);
  const bits = randomBits(seedKey(seed), reps * per);
  let k = 0;
  // floor(u · n) with u in [0, 1): uniform over 0..n-1 up to 2^-32.
  return Array.from({ length: reps }, () => sizes.map((n) => Array.from({ length: n }, () => Math.floor((bits[k++]! / 2 ** 32) * n))));
}

export interface Estimate {
  /** The statistic on the scores themselves. */
  value: number;
  /** The 95% percentile bootstrap interval. */
  lo: number;
  hi: number;
}

/**
 * A statistic of per-task scores with its stratified bootstrap 95% percentile CI (runs resampled
 * within each task). Null without scores; with one run the interval is the point.
 */
export function bootstrapCI(scores: readonly (readonly number[])[], stat: (s: readonly (readonly number[])[]) => number, o: { reps?: number; seed?: number } = {}): Estimate | null {
  const tasks = scores.filter((t) => t.length > 0);
  if (!tasks.length) return null;
  const idx = bootstrapIndices(tasks.map((t) => t.length), o.reps ?? BOOTSTRAP_REPS, o.seed);
  const stats = idx.map((rep) => stat(rep.map((is, t) => is.map((i) => tasks[t]![i]!)))).sort((a, b) => a - b);
  return { value: stat(tasks), lo: percentile(stats, 2.5), hi: percentile(stats, 97.5) };
}

/** P(X > Y) over all pairs of runs, ties counting 1/2: the Mann–Whitney U of X over n · m. */
export function pairProbability(x: readonly number[], y: readonly number[]): number {
  return mannWhitneyU(x, y) / (x.length * y.length);
}

/** U of x: for each x, the y below it, plus half the y equal to it (O((n + m) log(n + m)) through ranks). */
export function mannWhitneyU(x: readonly number[], y: readonly number[]): number {
  const r = ranks([...x, ...y]);
  const rx = r.slice(0, x.length).reduce((a, b) => a + b, 0);
  return rx - (x.length * (x.length + 1)) / 2;
}

/** Mid-ranks (1-based; ties share the mean of their ranks). */
function ranks(xs: readonly number[]): number[] {
  const order = xs.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1]![0] === order[i]![0]) j++;
    for (let k = i; k <= j; k++) out[order[k]![1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/**
 * rliable's probability of improvement of X over Y: per task P(X > Y), averaged over tasks, with
 * an independent stratified bootstrap CI (X's and Y's runs resampled apart, within each task).
 * Tasks pair up by position; a task where either side has no run is left out.
 */
export function probabilityOfImprovement(x: readonly (readonly number[])[], y: readonly (readonly number[])[], o: { reps?: number; seed?: number } = {}): Estimate | null {
  const pairs = x.flatMap((xt, t) => (xt.length && y[t]?.length ? [[xt, y[t]!] as const] : []));
  if (!pairs.length) return null;
  const poi = (ps: readonly (readonly [readonly number[], readonly number[]])[]) => mean(ps.map(([a, b]) => pairProbability(a, b)));
  // One replicate draws X's runs, then Y's, from disjoint parts of the stream: independent resamples.
  const T = pairs.length;
  const idx = bootstrapIndices([...pairs.map((p) => p[0].length), ...pairs.map((p) => p[1].length)], o.reps ?? BOOTSTRAP_REPS, o.seed);
  const stats = idx.map((rep) => poi(pairs.map(([a, b], t) => [rep[t]!.map((i) => a[i]!), rep[T + t]!.map((i) => b[i]!)] as const))).sort((a, b) => a - b);
  return { value: poi(pairs), lo: percentile(stats, 2.5), hi: percentile(stats, 97.5) };
}

/** A performance profile: at each τ, the fraction of runs scoring above τ (per task, averaged over tasks). */
export function profileAt(scores: readonly (readonly number[])[], tau: number): number {
  const tasks = scores.filter((t) => t.length > 0);
  return mean(tasks.map((t) => t.filter((s) => s > tau).length / t.length));
}

export interface ProfilePoint {
  tau: number;
  /** Fraction of runs with score > τ, and its bootstrap 95% CI. */
  frac: number;
  lo: number;
  hi: number;
}

/** The profile over a τ grid with pointwise stratified bootstrap bands (one resample serves every τ). */
export function performanceProfile(scores: readonly (readonly number[])[], taus: readonly number[], o: { reps?: number; seed?: number } = {}): ProfilePoint[] {
  const tasks = scores.filter((t) => t.length > 0);
  if (!tasks.length) return [];
  const resampled = bootstrapIndices(tasks.map((t) => t.length), o.reps ?? BOOTSTRAP_REPS, o.seed).map((rep) => rep.map((is, t) => is.map((i) => tasks[t]![i]!)));
  return taus.map((tau) => {
    const fr = resampled.map((s) => profileAt(s, tau)).sort((a, b) => a - b);
    return { tau, frac: profileAt(tasks, tau), lo: percentile(fr, 2.5), hi: percentile(fr, 97.5) };
  });
}

/** `n` evenly spaced values from lo to hi (both included); one value when they are equal. */
export function grid(lo: number, hi: number, n: number): number[] {
  if (!(hi > lo) || n < 2) return [lo];
  return Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
}

/**
 * Two-sided p-value of the Mann–Whitney U test of x against y. Without ties and with n, m ≤ 20,
 * the exact distribution of U (counted by dynamic programming over the ways to place the ranks);
 * otherwise the normal approximation with tie correction and continuity correction, as scipy's
 * mannwhitneyu ('asymptotic'). Null when either sample is empty.
 */
export function mannWhitneyP(x: readonly number[], y: readonly number[]): number | null {
  const n = x.length;
  const m = y.length;
  if (!n || !m) return null;
  const u = mannWhitneyU(x, y);
  const all = [...x, ...y];
  const tied = new Set(all).size < all.length;
  if (!tied && n <= 20 && m <= 20) {
    const counts = uCounts(n, m);
    const total = counts.reduce((a, b) => a + b, 0);
    // Two-sided: twice the smaller tail, at most 1 (scipy's exact method).
    const k = Math.round(Math.max(u, n * m - u));
    const upper = counts.slice(k).reduce((a, b) => a + b, 0) / total;
    return Math.min(1, 2 * upper);
  }
  const N = n + m;
  const tieTerm = [...countValues(all).values()].reduce((a, t) => a + (t ** 3 - t), 0);
  const sd = Math.sqrt(((n * m) / 12) * (N + 1 - tieTerm / (N * (N - 1))));
  if (sd === 0) return 1;
  const z = (Math.abs(u - (n * m) / 2) - 0.5) / sd;
  return Math.min(1, 2 * normalSf(Math.max(0, z)));
}

function countValues(xs: readonly number[]): Map<number, number> {
  const c = new Map<number, number>();
  for (const x of xs) c.set(x, (c.get(x) ?? 0) + 1);
  return c;
}

/** counts[u]: the arrangements of n x's and m y's (no ties) whose U equals u. */
function uCounts(n: number, m: number): number[] {
  // f[i][j][u] by the last element: an x above all j y's adds j to U, a y adds nothing.
  let prev: number[][] = Array.from({ length: m + 1 }, () => [1]);
  for (let i = 1; i <= n; i++) {
    const cur: number[][] = [];
    for (let j = 0; j <= m; j++) {
      const len = i * j + 1;
      const row = new Array<number>(len).fill(0);
      prev[j]!.forEach((c, u) => (row[u + j]! += c));
      if (j > 0) cur[j - 1]!.forEach((c, u) => (row[u]! += c));
      cur.push(row);
    }
    prev = cur;
  }
  return prev[m]!;
}

/** P(Z > z) for a standard normal (erfc by Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
export function normalSf(z: number): number {
  const x = z / Math.SQRT2;
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y = t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  const erfc = x >= 0 ? y : 2 - y;
  return erfc / 2;
}

/**
 * Holm–Bonferroni: the i-th smallest of m p-values is multiplied by m − i + 1, then made monotone
 * (each at least the one before) and capped at 1. Nulls stay null and do not count in m.
 */
export function holm(ps: readonly (number | null)[]): (number | null)[] {
  const idx = ps.flatMap((p, i) => (p === null ? [] : [i])).sort((a, b) => ps[a]! - ps[b]!);
  const m = idx.length;
  const out: (number | null)[] = ps.map(() => null);
  let run = 0;
  idx.forEach((i, k) => {
    run = Math.max(run, Math.min(1, (m - k) * ps[i]!));
    out[i] = run;
  });
  return out;
}
