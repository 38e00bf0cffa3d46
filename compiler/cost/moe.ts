/**
 * Cost model and expert-count solver for the transformer-augmented sectional MoE
 * (spec: shared/spec/sectional-moe-and-grpo.md, Part A and Part D items 1-5).
 *
 * The embedding width d0 is split into E sections of width s = d0/E; expert e is a narrow
 * transformer block on section e of every token, after a full-width pre-expert block that
 * shortens the sequence from L to L'. Costs are multiply-accumulate counts per sequence
 * (batch size scales everything and drops out of the argmin).
 *
 * Reconstructed parts ([R] in the spec), all configurable here:
 * - the reduction L' = ceil(L/rho) (variant F, `reduction: {kind:'fixed', rho}`) or the coupled
 *   reading L' = L/E (variant C, `reduction: {kind:'coupled'}`, `ceil: true` for ceil(L/E));
 * - the pre-expert block cost (`pre`): attention pooling by default, or none, or fixed numbers;
 * - the overhead form O(E) = w0 + w1*E + w2*E^2;
 * - the feasibility rules (E | d0, E range, s >= sMin, heads | s, L mod E = 0 in variant C).
 *
 * Pure math: no tfjs, no I/O.
 */
import { LoomError } from '../errors.ts';

/** How the pre-expert block shortens the sequence. */
export type Reduction = { kind: 'fixed'; rho: number } | { kind: 'coupled' };

/**
 * Pre-expert block cost [R, spec D.2]. 'pooling' (default, spec A.4): one full-width self-attention
 * layer plus attention pooling with L' learned queries. 'none': the pre-expert block is not counted
 * (e.g. it is shared with the baseline). 'fixed': given QKV (A) and attention (B) counts.
 */
export type PreCost = { kind: 'pooling' } | { kind: 'none' } | { kind: 'fixed'; A: number; B: number };

export interface MoeParams {
  /** Input sequence length. */
  L: number;
  /** Embedding width. */
  d0: number;
  reduction: Reduction;
  /** Attention multiplier: 1 counts QK^T only, 2 also softmax*V [R]. Default 1. */
  c_att?: number;
  /** Expert FFN expansion ratio; 0 means no FFN [R]. Default 0. */
  m?: number;
  /** Overhead O(E) = w0 + w1*E + w2*E^2 [S/R]. Defaults 0, 0. */
  w0?: number;
  w1?: number;
  w2: number;
  /** Smallest and largest admissible E (e.g. Emax = devices). Defaults 1 and d0. */
  Emin?: number;
  Emax?: number;
  /** Smallest admissible section width s = d0/E. Default 1. */
  sMin?: number;
  /** When experts are multi-head, the head count must divide s. */
  heads?: number;
  /** Variant C only: use L' = ceil(L/E) instead of requiring L mod E = 0. */
  ceil?: boolean;
  /** Pre-expert block cost model; default pooling. */
  pre?: PreCost;
}

/** Parameters with every default filled in and every value checked. */
export interface ResolvedParams {
  L: number;
  d0: number;
  reduction: Reduction;
  c_att: number;
  m: number;
  w0: number;
  w1: number;
  w2: number;
  Emin: number;
  Emax: number;
  sMin: number;
  heads?: number;
  ceil: boolean;
  pre: PreCost;
}

export interface SectionalCost {
  /** Pre-expert QKV-type projections. */
  A_pre: number;
  /** Pre-expert attention scores. */
  B_pre: number;
  /** Expert QKV projections, all E experts together. */
  A_exp: number;
  /** Expert attention scores, all experts. */
  B_exp: number;
  /** Expert FFNs, all experts. */
  F_exp: number;
  /** Overhead O(E). */
  O: number;
  total: number;
}

export interface TraditionalCost {
  A: number;
  B: number;
  total: number;
}

export interface ExpertRow {
  E: number;
  s: number;
  /** The E-dependent objective J(E). */
  J: number;
  /** C_sect(E). */
  total: number;
  /** S(E) = C_trad - C_sect(E). */
  savings: number;
}

export interface ContinuousOptimum {
  /** The positive root of J'(E) = 0, or +Infinity when J is decreasing (w1 = w2 = 0). */
  E: number;
  method: 'closed-form' | 'numeric' | 'unbounded';
}

export interface ExpertsResult {
  variant: 'fixed' | 'coupled';
  params: ResolvedParams;
  /** K (variant F) or K2 (variant C): the coefficient of 1/E or 1/E^2 in J. */
  K: number;
  /** Variant C with the pooling pre-expert block: P = L*d0^2 + c_att*L^2*d0, the pooling cost's coefficient of 1/E in J; else 0. */
  P: number;
  /** L' in variant F (E-independent); undefined in variant C. */
  Lp?: number;
  /** Integer optimum over the feasible set. */
  E: number;
  /** Section width d0/E. */
  s: number;
  /** J(E). */
  cost: number;
  /** C_sect(E). */
  total: number;
  /** S(E) = C_trad - C_sect(E). */
  savings: number;
  /** J(1): the unsectioned configuration, evaluated even when E = 1 is not feasible. */
  J1: number;
  traditional: TraditionalCost;
  beneficial: boolean;
  /** Why sectioning does not pay, when it does not. */
  reason?: string;
  continuous: number;
  continuousMethod: ContinuousOptimum['method'];
  /** The feasible members bracketing the continuous optimum (one when it lies outside F or on a member). */
  candidates: { E: number; J: number }[];
  /** 'bracket' uses convexity; 'scan' evaluates all of F (ceil mode, where J is not convex). */
  method: 'bracket' | 'scan';
  table: ExpertRow[];
}

const usage = (message: string, extra: { expected?: string; found?: string; hint?: string } = {}): never => {
  throw new LoomError({ code: 'E_USAGE', message, ...extra });
};

function posInt(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !Number.isInteger(v) || v < 1) {
    usage(`${name} must be a positive integer`, { found: String(v) });
  }
  if ((v as number) > Number.MAX_SAFE_INTEGER) usage(`${name} is too large`, { found: String(v) });
  return v as number;
}

function nonNeg(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) usage(`${name} must be a finite number`, { found: String(v) });
  if ((v as number) < 0) usage(`${name} must be >= 0 (coefficients cannot be negative)`, { found: String(v) });
  return v as number;
}

/** Fills defaults and validates; every user mistake is an E_USAGE LoomError. Idempotent, so entry points accept either form. */
export function resolveParams(p: MoeParams): ResolvedParams {
  const L = posInt('L', p.L);
  const d0 = posInt('d0', p.d0);
  let reduction: Reduction;
  if (p.reduction?.kind === 'fixed') {
    const rho = p.reduction.rho;
    if (typeof rho !== 'number' || !Number.isFinite(rho) || rho < 1) {
      usage('reduction factor rho must be a finite number >= 1 (L\' = ceil(L/rho) <= L)', { found: String(rho) });
    }
    reduction = { kind: 'fixed', rho };
  } else if (p.reduction?.kind === 'coupled') {
    reduction = { kind: 'coupled' };
  } else {
    return usage('reduction must be {kind:"fixed", rho} or {kind:"coupled"}', { found: JSON.stringify(p.reduction) });
  }
  const c_att = nonNeg('c_att', p.c_att ?? 1);
  const m = nonNeg('m', p.m ?? 0);
  const w0 = nonNeg('w0', p.w0 ?? 0);
  const w1 = nonNeg('w1', p.w1 ?? 0);
  if (p.w2 === undefined) usage('w2 (quadratic overhead coefficient) is required');
  const w2 = nonNeg('w2', p.w2);
  const Emin = posInt('Emin', p.Emin ?? 1);
  const Emax = posInt('Emax', p.Emax ?? d0);
  if (Emin > Emax) usage(`Emin (${Emin}) is greater than Emax (${Emax})`);
  const sMin = posInt('sMin', p.sMin ?? 1);
  const heads = p.heads === undefined ? undefined : posInt('heads', p.heads);
  let pre: PreCost = { kind: 'pooling' };
  if (p.pre !== undefined) {
    if (p.pre.kind === 'fixed') pre = { kind: 'fixed', A: nonNeg('pre.A', p.pre.A), B: nonNeg('pre.B', p.pre.B) };
    else if (p.pre.kind === 'none' || p.pre.kind === 'pooling') pre = { kind: p.pre.kind };
    else usage('pre must be {kind:"pooling"}, {kind:"none"} or {kind:"fixed", A, B}', { found: JSON.stringify(p.pre) });
  }
  if (p.ceil && reduction.kind !== 'coupled') usage('ceil applies only to the coupled reduction (variant C)');
  const r: ResolvedParams = { L, d0, reduction, c_att, m, w0, w1, w2, Emin, Emax, sMin, ceil: p.ceil === true, pre };
  if (heads !== undefined) r.heads = heads;
  checkMagnitudes(r);
  return r;
}

/**
 * The MAC counts are integer products of the sizes; beyond 2^53 they stop being exact and the
 * comparisons between candidate E lose meaning, so such inputs are refused rather than answered.
 */
function checkMagnitudes(p: ResolvedParams): void {
  const { L, d0, c_att, m } = p;
  const Lp = p.reduction.kind === 'fixed' ? fixedLp(L, p.reduction.rho) : L;
  const terms: [string, number][] = [
    ['3*L*d0^2 (traditional QKV)', 3 * L * d0 * d0],
    ['c_att*L^2*d0 (traditional attention)', c_att * L * L * d0],
    ["(L'+2L)*d0^2 (pooling projections)", (Lp + 2 * L) * d0 * d0],
    ["c_att*L'*L*d0 (pooling attention)", c_att * Lp * L * d0],
    ["2m*L'*d0^2 (expert FFN)", 2 * m * Lp * d0 * d0],
    ["c_att*L'^2*d0 (expert attention)", c_att * Lp * Lp * d0],
  ];
  if (p.pre.kind === 'fixed') terms.push(['pre.A', p.pre.A], ['pre.B', p.pre.B]);
  let sum = 0;
  for (const [name, v] of terms) {
    sum += v;
    if (!(v <= Number.MAX_SAFE_INTEGER)) {
      usage(`sizes too large: ${name} = ${v} exceeds Number.MAX_SAFE_INTEGER, so costs would not be exact`, {
        hint: 'use smaller L/d0, or express costs in a larger unit',
      });
    }
  }
  if (!(sum <= Number.MAX_SAFE_INTEGER)) {
    usage(`sizes too large: the total cost ${sum} exceeds Number.MAX_SAFE_INTEGER, so costs would not be exact`);
  }
  const Etop = Math.min(p.Emax, d0);
  const o = p.w0 + p.w1 * Etop + p.w2 * Etop * Etop;
  if (!Number.isFinite(o)) usage(`overhead coefficients too large: O(${Etop}) is not finite`);
}

function fixedLp(L: number, rho: number): number {
  return Math.max(1, Math.ceil(L / rho));
}

/** Sequence length after the reduction: ceil(L/rho) in variant F, L/E (or ceil) in variant C. */
export function reducedLength(E: number, p: ResolvedParams): number {
  if (p.reduction.kind === 'fixed') return fixedLp(p.L, p.reduction.rho);
  return p.ceil ? Math.ceil(p.L / E) : p.L / E;
}

/** K (variant F, coefficient of 1/E) or K2 (variant C, coefficient of 1/E^2) of J. */
export function leadingCoefficient(p: ResolvedParams): number {
  const { L, d0, c_att, m } = p;
  if (p.reduction.kind === 'fixed') {
    const Lp = fixedLp(L, p.reduction.rho);
    return 3 * Lp * d0 * d0 + 2 * m * Lp * d0 * d0;
  }
  return 3 * L * d0 * d0 + c_att * L * L * d0 + 2 * m * L * d0 * d0;
}

/**
 * The pooling pre-expert block's coefficient of 1/E in J. Its cost (L' + 2L)*d0^2 + c_att*L'*L*d0
 * depends on E only through L'; in variant C L' = L/E, so it contributes P/E with
 * P = L*d0^2 + c_att*L^2*d0. Variant F, and the 'none' and 'fixed' pre-expert models, give 0.
 */
export function poolingCoefficient(p: ResolvedParams): number {
  if (p.reduction.kind !== 'coupled' || p.pre.kind !== 'pooling') return 0;
  return p.L * p.d0 * p.d0 + p.c_att * p.L * p.L * p.d0;
}

/** C_trad: one full-width transformer block on L tokens (spec A.4 [S]). */
export function costTraditional(params: MoeParams | ResolvedParams): TraditionalCost {
  const p = resolveParams(params);
  const A = 3 * p.L * p.d0 * p.d0;
  const B = p.c_att * p.L * p.L * p.d0;
  return { A, B, total: A + B };
}

function checkE(E: number, p: ResolvedParams): void {
  if (!Number.isInteger(E) || E < 1) usage('E must be a positive integer', { found: String(E) });
  if (p.d0 % E !== 0) usage(`E = ${E} does not divide d0 = ${p.d0}`);
}

/** Sectional cost breakdown at E (spec A.4). E must divide d0. */
export function costSectional(E: number, params: MoeParams | ResolvedParams): SectionalCost {
  const p = resolveParams(params);
  checkE(E, p);
  const { L, d0, c_att } = p;
  const Lp = reducedLength(E, p);
  let A_pre = 0;
  let B_pre = 0;
  if (p.pre.kind === 'pooling') {
    // Full-width self-attention on L tokens, then L' learned queries cross-attending to them.
    // In variant C L' = L/E, so this term also falls with E, and J counts it (poolingCoefficient).
    A_pre = 3 * L * d0 * d0 + (Lp + 2 * L) * d0 * d0;
    B_pre = c_att * L * L * d0 + c_att * Lp * L * d0;
  } else if (p.pre.kind === 'fixed') {
    A_pre = p.pre.A;
    B_pre = p.pre.B;
  }
  const expertTerms = expertCosts(E, p);
  const O = overhead(E, p);
  return { A_pre, B_pre, ...expertTerms, O, total: A_pre + B_pre + expertTerms.A_exp + expertTerms.B_exp + expertTerms.F_exp + O };
}

function expertCosts(E: number, p: ResolvedParams): { A_exp: number; B_exp: number; F_exp: number } {
  const { d0, c_att, m } = p;
  const Lp = reducedLength(E, p);
  const s = d0 / E;
  // E experts, each on [L', s]: E * 3 L' s^2 = 3 L' d0^2 / E, etc.
  return {
    A_exp: (3 * Lp * d0 * d0) / E,
    B_exp: c_att * Lp * Lp * s * E,
    F_exp: (2 * m * Lp * d0 * d0) / E,
  };
}

function overhead(E: number, p: ResolvedParams): number {
  return p.w0 + p.w1 * E + p.w2 * E * E;
}

/** S(E) = C_trad - C_sect(E). */
export function savings(E: number, params: MoeParams | ResolvedParams): number {
  const p = resolveParams(params);
  return costTraditional(p).total - costSectional(E, p).total;
}

/**
 * The E-dependent part of C_sect(E), so that C_sect(E) - J(E) is the same for every E and the argmin
 * of J is the argmax of the savings S. Variant F: K/E + w1 E + w2 E^2 (spec A.5). Variant C:
 * P/E + K2/E^2 + w1 E + w2 E^2, where P/E is the pooling pre-expert block's cost at L' = L/E (spec
 * A.5 treats the pre-expert block as constant in E, which holds only in variant F). With `ceil`,
 * the terms use L' = ceil(L/E) and J is no longer a pure power law.
 * Evaluated for any real E > 0 (the continuous relaxation), not only feasible E.
 */
export function objective(E: number, params: MoeParams | ResolvedParams): number {
  const p = resolveParams(params);
  if (!(E > 0)) usage('E must be positive', { found: String(E) });
  const tail = p.w1 * E + p.w2 * E * E;
  if (p.reduction.kind === 'fixed') return leadingCoefficient(p) / E + tail;
  if (p.ceil) {
    const { A_exp, B_exp, F_exp } = expertCosts(E, p);
    const pool = poolingCoefficient(p) === 0 ? 0 : Math.ceil(p.L / E) * p.d0 * (p.d0 + p.c_att * p.L);
    return pool + A_exp + B_exp + F_exp + tail;
  }
  return poolingCoefficient(p) / E + leadingCoefficient(p) / (E * E) + tail;
}

/**
 * Minimiser of J over real E > 0. F: root of 2 w2 E^3 + w1 E^2 - K; C: root of
 * 2 w2 E^4 + w1 E^3 - P E - 2 K2 (E^3 J'(E)). J is strictly convex on E > 0, so J' increases and
 * each polynomial changes sign once there: the positive root is unique and bisection converges to
 * it. Without the pooling term (P = 0) and with w1 = 0 (or w2 = 0) there is a closed form.
 * Variant C with `ceil` uses the exact-division relaxation.
 */
export function continuousOptimum(params: MoeParams | ResolvedParams): ContinuousOptimum {
  const p = resolveParams(params);
  const K = leadingCoefficient(p);
  const P = poolingCoefficient(p);
  const { w1, w2 } = p;
  const fixed = p.reduction.kind === 'fixed';
  if (w1 === 0 && w2 === 0) return { E: Infinity, method: 'unbounded' };
  if (P === 0 && w1 === 0) return { E: fixed ? Math.cbrt(K / (2 * w2)) : Math.pow(K / w2, 0.25), method: 'closed-form' };
  if (P === 0 && w2 === 0) return { E: fixed ? Math.sqrt(K / w1) : Math.cbrt((2 * K) / w1), method: 'closed-form' };
  const g = fixed ? (E: number) => 2 * w2 * E ** 3 + w1 * E * E - K : (E: number) => 2 * w2 * E ** 4 + w1 * E ** 3 - P * E - 2 * K;
  // Without P the root with w1 = 0 bounds the true root from above (g there is w1 E^2 >= 0 or
  // w1 E^3 >= 0); with P, or w2 = 0, the doubling below finds an upper bound.
  let hi = w2 > 0 ? (fixed ? Math.cbrt(K / (2 * w2)) : Math.pow(K / w2, 0.25)) : 1;
  let lo = 0;
  while (g(hi) < 0) hi *= 2; // guards against rounding in the bound
  for (let i = 0; i < 2000; i++) {
    const mid = lo + (hi - lo) / 2;
    if (mid <= lo || mid >= hi) break;
    if (g(mid) < 0) lo = mid;
    else hi = mid;
  }
  return { E: Math.abs(g(lo)) < Math.abs(g(hi)) ? lo : hi, method: 'numeric' };
}

function divisors(n: number): number[] {
  const small: number[] = [];
  const large: number[] = [];
  for (let i = 1; i * i <= n; i++) {
    if (n % i === 0) {
      small.push(i);
      if (i * i !== n) large.push(n / i);
    }
  }
  return small.concat(large.reverse());
}

/**
 * F = {E : Emin <= E <= Emax, E | d0, d0/E >= sMin, heads | d0/E, and (variant C, no ceil) E | L},
 * ascending. An empty set is an E_USAGE error naming the constraint that emptied it.
 */
export function feasibleSet(params: MoeParams | ResolvedParams): number[] {
  const p = resolveParams(params);
  const steps: [string, (E: number) => boolean][] = [
    [`Emin <= E <= Emax (${p.Emin}..${p.Emax})`, (E) => E >= p.Emin && E <= p.Emax],
    [`s = d0/E >= sMin (${p.sMin})`, (E) => p.d0 / E >= p.sMin],
  ];
  if (p.heads !== undefined) steps.push([`heads (${p.heads}) divides s = d0/E`, (E) => (p.d0 / E) % p.heads! === 0]);
  if (p.reduction.kind === 'coupled' && !p.ceil) steps.push([`E divides L (${p.L}) in the coupled variant`, (E) => p.L % E === 0]);
  let set = divisors(p.d0);
  let applied = `E divides d0 (${p.d0})`;
  for (const [name, ok] of steps) {
    const next = set.filter(ok);
    if (next.length === 0) {
      usage(`no feasible expert count: the constraint "${name}" leaves nothing`, {
        expected: `some E satisfying ${applied} and ${name}`,
        found: `candidates before it: ${preview(set)}`,
      });
    }
    set = next;
    applied += `, ${name}`;
  }
  return set;
}

function preview(xs: number[]): string {
  return xs.length <= 12 ? xs.join(', ') : `${xs.slice(0, 6).join(', ')}, ..., ${xs.slice(-3).join(', ')} (${xs.length} values)`;
}

function row(E: number, p: ResolvedParams, trad: number): ExpertRow {
  const c = costSectional(E, p);
  const J = objective(E, p);
  if (!Number.isFinite(J) || !Number.isFinite(c.total)) usage(`cost at E = ${E} is not finite; coefficients are too large`);
  return { E, s: p.d0 / E, J, total: c.total, savings: trad - c.total };
}

/** Smallest J, ties toward the smaller E (less overhead risk, spec A.5 step 3). */
function argmin(rows: ExpertRow[]): ExpertRow {
  let best = rows[0]!;
  for (const r of rows) if (r.J < best.J || (r.J === best.J && r.E < best.E)) best = r;
  return best;
}

/**
 * Constrained integer optimum (spec A.5 procedure): J is strictly convex on E > 0, so the optimum
 * over F is one of the two members bracketing the continuous root. With `ceil` J is not convex and F
 * is scanned instead.
 */
export function optimalExperts(params: MoeParams): ExpertsResult {
  const p = resolveParams(params);
  const F = feasibleSet(p);
  const trad = costTraditional(p);
  const table = F.map((E) => row(E, p, trad.total));
  const cont = continuousOptimum(p);
  const below = table.filter((r) => r.E <= cont.E).pop();
  const above = table.find((r) => r.E >= cont.E);
  const pair = [below, above].filter((r): r is ExpertRow => r !== undefined).filter((r, i, a) => a.findIndex((q) => q.E === r.E) === i);
  const method = p.ceil ? 'scan' : 'bracket';
  const best = method === 'scan' ? argmin(table) : argmin(pair);
  const J1 = objective(1, p);
  let reason: string | undefined;
  if (best.savings <= 0) {
    reason = `S(E*) = ${best.savings} <= 0: the sectional layer costs at least as much as the traditional block`;
    if (p.pre.kind === 'pooling') {
      // The default pre-expert block already contains a full-width layer plus pooling.
      reason += ' (the pooling pre-expert block alone costs more than the traditional block; pre: none compares the expert stage alone)';
    }
  } else if (J1 <= best.J) {
    reason = `J(1) = ${J1} <= J(E*) = ${best.J}: sectioning does not beat the unsectioned configuration`;
  }
  const result: ExpertsResult = {
    variant: p.reduction.kind,
    params: p,
    K: leadingCoefficient(p),
    P: poolingCoefficient(p),
    E: best.E,
    s: best.s,
    cost: best.J,
    total: best.total,
    savings: best.savings,
    J1,
    traditional: trad,
    beneficial: reason === undefined,
    continuous: cont.E,
    continuousMethod: cont.method,
    candidates: pair.map((r) => ({ E: r.E, J: r.J })),
    method,
    table,
  };
  if (p.reduction.kind === 'fixed') result.Lp = reducedLength(1, p);
  if (reason !== undefined) result.reason = reason;
  return result;
}

/** Reference optimum: J over every member of F, ties toward the smaller E. Used to cross-check. */
export function bruteForceOptimum(params: MoeParams): { E: number; J: number } {
  const p = resolveParams(params);
  let best: { E: number; J: number } | undefined;
  for (const E of feasibleSet(p)) {
    const J = objective(E, p);
    if (best === undefined || J < best.J) best = { E, J };
  }
  return best!;
}

export interface ForwardShapes {
  input: number[];
  /** After the full-width pre-expert self-attention. */
  preExpert: number[];
  /** After the sequence reduction to L'. */
  reduced: number[];
  /** Reshaped to [B, L', E, s]. */
  sectioned: number[];
  /** One expert's input and output: [B, L', s]. */
  expert: number[];
  /** Concatenated expert outputs, [B, L', d0]. */
  combined: number[];
}

/** Tensor shapes through the sectional layer (spec A.3). rho is the reduction factor, or 'coupled' for L' = L/E. */
export function forwardShapes(B: number, L: number, d0: number, E: number, rho: number | 'coupled'): ForwardShapes {
  posInt('B', B);
  posInt('L', L);
  posInt('d0', d0);
  posInt('E', E);
  if (d0 % E !== 0) usage(`E = ${E} does not divide d0 = ${d0}`);
  let Lp: number;
  if (rho === 'coupled') {
    if (L % E !== 0) usage(`coupled reduction needs E (${E}) to divide L (${L})`);
    Lp = L / E;
  } else {
    if (!Number.isFinite(rho) || rho < 1) usage('reduction factor rho must be a finite number >= 1', { found: String(rho) });
    Lp = fixedLp(L, rho);
  }
  const s = d0 / E;
  return {
    input: [B, L, d0],
    preExpert: [B, L, d0],
    reduced: [B, Lp, d0],
    sectioned: [B, Lp, E, s],
    expert: [B, Lp, s],
    combined: [B, Lp, d0],
  };
}

export interface OverheadFit {
  /** Overhead coefficients in the solver's units (forward MACs per sequence). */
  w0: number;
  w1: number;
  w2: number;
  /** How many forward-expert costs one measured or simulated unit holds (3 for forward + backward). */
  scale: number;
  /** Root-mean-square residual of the fit, in the points' units. */
  rms: number;
}

/** Least squares for y ~ X b over the columns `cols` (the others fixed at 0). */
function leastSquares(X: number[][], y: number[], cols: number[]): { b: number[]; sse: number } | undefined {
  const k = cols.length;
  const A = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => X.reduce((s, row) => s + row[cols[i]!]! * row[cols[j]!]!, 0)));
  const r = cols.map((c) => X.reduce((s, row, n) => s + row[c]! * y[n]!, 0));
  // Gaussian elimination with partial pivoting.
  for (let i = 0; i < k; i++) {
    let p = i;
    for (let q = i + 1; q < k; q++) if (Math.abs(A[q]![i]!) > Math.abs(A[p]![i]!)) p = q;
    if (Math.abs(A[p]![i]!) < 1e-300) return undefined;
    [A[i], A[p]] = [A[p]!, A[i]!];
    [r[i], r[p]] = [r[p]!, r[i]!];
    for (let q = i + 1; q < k; q++) {
      const f = A[q]![i]! / A[i]![i]!;
      for (let j = i; j < k; j++) A[q]![j]! -= f * A[i]![j]!;
      r[q]! -= f * r[i]!;
    }
  }
  const sol = new Array<number>(k).fill(0);
  for (let i = k - 1; i >= 0; i--) sol[i] = (r[i]! - A[i]!.slice(i + 1).reduce((s, a, j) => s + a * sol[i + 1 + j]!, 0)) / A[i]![i]!;
  const b = new Array<number>(X[0]!.length).fill(0);
  cols.forEach((c, i) => (b[c] = sol[i]!));
  const sse = X.reduce((s, row, n) => s + (row.reduce((t, x, j) => t + x * b[j]!, 0) - y[n]!) ** 2, 0);
  return { b, sse };
}

/**
 * Fits the overhead coefficients to costs observed at several E (simulated or measured, already
 * in forward-MAC units per sequence): cost(E) ~ scale·K(E) + w0 + w1'·E + w2'·E², where K(E) is the
 * model's E-dependent cost without overhead (J with w1 = w2 = 0: K/E, or P/E + K2/E² when coupled). scale, w1', w2' >= 0 (exact
 * non-negative least squares over the active sets). The returned w1 = w1'/scale, w2 = w2'/scale
 * give the solver the same minimiser as the fitted curve.
 */
export function fitOverheads(points: readonly { E: number; cost: number }[], params: MoeParams): OverheadFit {
  const p = resolveParams({ ...params, w0: 0, w1: 0, w2: 0 });
  if (points.length < 4) usage('fitting overheads needs costs at 4 or more expert counts', { found: String(points.length) });
  // The model's E-dependent cost without overhead: J with w = 0 (pooling term included in variant C).
  const lead = (E: number) => objective(E, p);
  const X = points.map(({ E }) => [lead(E), 1, E, E * E]);
  const y = points.map((q) => q.cost);
  let best: { b: number[]; sse: number } | undefined;
  // Column 1 (w0) is always free; columns 0, 2, 3 must end non-negative.
  for (let mask = 0; mask < 8; mask++) {
    const cols = [1, ...[0, 2, 3].filter((_, i) => mask & (1 << i))];
    const fit = leastSquares(X, y, cols);
    if (!fit || [0, 2, 3].some((c) => fit.b[c]! < 0)) continue;
    if (!best || fit.sse < best.sse) best = fit;
  }
  const [scale, w0, w1, w2] = best!.b as [number, number, number, number];
  const s = scale > 0 ? scale : 1;
  return { w0: w0 / s, w1: w1 / s, w2: w2 / s, scale, rms: Math.sqrt(best!.sse / points.length) };
}

/** A bootstrap summary of one fitted coefficient. */
export interface CoefficientSpread {
  /** Standard deviation over the resamples (the bootstrap standard error). */
  se: number;
  /** 2.5% and 97.5% quantiles over the resamples. */
  lo: number;
  hi: number;
}

export interface OverheadBootstrap {
  /** The fit to the statistic of every round, and the solver's E* with its w1, w2. */
  fit: OverheadFit;
  E: number;
  resamples: number;
  w1: CoefficientSpread;
  w2: CoefficientSpread;
  /** Share of resamples giving each solver E* (from the refitted w1, w2), and each measured-fastest E. */
  solverE: { E: number; share: number }[];
  measuredE: { E: number; share: number }[];
}

/**
 * Overhead coefficients with their uncertainty, from repeated timings at several E: `times[r]` is
 * round r, and round r of every E was taken in the same round-robin pass. The point fit is
 * `fitOverheads` on `stat` (e.g. the median) of each E's times; the spread comes from refitting on
 * rounds drawn with replacement, whole rounds at a time, so a slow spell that hit every E of one
 * round stays paired. Deterministic for a given seed.
 */
export function bootstrapOverheads(
  timings: readonly { E: number; times: readonly number[] }[],
  params: MoeParams,
  opts: { stat: (xs: number[]) => number; resamples?: number; seed?: number },
): OverheadBootstrap {
  const rounds = timings[0]?.times.length ?? 0;
  if (rounds < 2 || timings.some((t) => t.times.length !== rounds)) {
    usage('bootstrapping overheads needs the same number (2 or more) of timed rounds at every E', {
      found: timings.map((t) => `E=${t.E}: ${t.times.length}`).join(', '),
    });
  }
  const resamples = posInt('resamples', opts.resamples ?? 200);
  const solve = (fit: OverheadFit) => optimalExperts({ ...params, w1: fit.w1, w2: fit.w2 }).E;
  const fitRounds = (idx: number[]) => {
    const points = timings.map((t) => ({ E: t.E, cost: opts.stat(idx.map((r) => t.times[r]!)) }));
    return { fit: fitOverheads(points, params), fastest: points.reduce((a, p) => (p.cost < a.cost ? p : a)).E };
  };
  const all = fitRounds(Array.from({ length: rounds }, (_, r) => r));
  // mulberry32: a small seeded generator, so a given seed reproduces the same resamples.
  let state = (opts.seed ?? 1) >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const w1s: number[] = [];
  const w2s: number[] = [];
  const solverE = new Map<number, number>();
  const measuredE = new Map<number, number>();
  for (let b = 0; b < resamples; b++) {
    const { fit, fastest } = fitRounds(Array.from({ length: rounds }, () => Math.floor(next() * rounds)));
    w1s.push(fit.w1);
    w2s.push(fit.w2);
    const E = solve(fit);
    solverE.set(E, (solverE.get(E) ?? 0) + 1);
    measuredE.set(fastest, (measuredE.get(fastest) ?? 0) + 1);
  }
  const spread = (xs: number[]): CoefficientSpread => {
    const s = [...xs].sort((a, b) => a - b);
    const mean = s.reduce((a, v) => a + v, 0) / s.length;
    const q = (f: number) => s[Math.min(s.length - 1, Math.max(0, Math.round(f * (s.length - 1))))]!;
    return { se: Math.sqrt(s.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(1, s.length - 1)), lo: q(0.025), hi: q(0.975) };
  };
  const shares = (m: Map<number, number>) => [...m.entries()].sort((a, b) => a[0] - b[0]).map(([E, n]) => ({ E, share: n / resamples }));
  return { fit: all.fit, E: solve(all.fit), resamples, w1: spread(w1s), w2: spread(w2s), solverE: shares(solverE), measuredE: shares(measuredE) };
}
