/**
 * The kernel IR: typed scalar expressions that say what one element of a fused kernel computes,
 * with no target source text. Ops define their per-element body once, in the registry, with the
 * builder `kir` (`scalar: ([x, y]) => kir.mul(x, y)`); reductions combine elements with
 * `{identity, combine, finish}` written the same way. Targets render expressions (js.ts, wgsl.ts)
 * and `evalExpr` evaluates one in float64 (constant folding).
 *
 * Types: float32, int32 and bool (a 0/1 value). Loads name values by number: in an op's body
 * the op's arguments, in a kernel spec the kernel's values, in a reducer 0 = accumulator, 1 = element.
 */
import type { DType } from '../ir.ts';

export type UnaryOp = 'neg' | 'abs' | 'sign' | 'exp' | 'log' | 'log1p' | 'sqrt' | 'tanh' | 'sin' | 'cos' | 'floor' | 'ceil' | 'trunc' | 'not';
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min' | 'rem' | 'and' | 'or' | CompareOp;
export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';

export type Expr =
  | { k: 'const'; value: number; dtype: DType }
  | { k: 'load'; ref: number; dtype: DType }
  | { k: 'unary'; op: UnaryOp; x: Expr; dtype: DType }
  | { k: 'binary'; op: BinaryOp; x: Expr; y: Expr; dtype: DType }
  /** c ? x : y, with c a bool. */
  | { k: 'select'; c: Expr; x: Expr; y: Expr; dtype: DType }
  /** float -> int32 truncates toward zero; to bool is x != 0; bool is 0/1. */
  | { k: 'cast'; x: Expr; dtype: DType };

const COMPARE: ReadonlySet<string> = new Set<CompareOp>(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);
export const isCompare = (op: BinaryOp): op is CompareOp => COMPARE.has(op);

/** A literal takes the type of the other operand, so `kir.max(x, kir.c(0))` is int32 on int32 x. */
function typed(e: Expr, dtype: DType): Expr {
  return e.k === 'const' && e.dtype !== dtype ? { ...e, dtype } : e;
}

function binary(op: BinaryOp, x: Expr, y: Expr): Expr {
  const dt = x.k === 'const' ? y.dtype : x.dtype;
  const a = typed(x, dt);
  const b = typed(y, dt);
  return { k: 'binary', op, x: a, y: b, dtype: isCompare(op) || op === 'and' || op === 'or' ? 'bool' : dt };
}
const unary = (op: UnaryOp) => (x: Expr): Expr => ({ k: 'unary', op, x, dtype: op === 'not' ? 'bool' : x.dtype });
const bin = (op: BinaryOp) => (x: Expr, y: Expr): Expr => binary(op, x, y);

/** Builds expressions; stateless, so op definitions share it. */
export const kir = {
  /** A literal (float32 unless given; next to a typed operand it takes that operand's type). */
  c: (value: number, dtype: DType = 'float32'): Expr => ({ k: 'const', value, dtype }),
  load: (ref: number, dtype: DType): Expr => ({ k: 'load', ref, dtype }),
  neg: unary('neg'),
  abs: unary('abs'),
  sign: unary('sign'),
  exp: unary('exp'),
  log: unary('log'),
  log1p: unary('log1p'),
  sqrt: unary('sqrt'),
  tanh: unary('tanh'),
  sin: unary('sin'),
  cos: unary('cos'),
  floor: unary('floor'),
  ceil: unary('ceil'),
  trunc: unary('trunc'),
  not: unary('not'),
  add: bin('add'),
  sub: bin('sub'),
  mul: bin('mul'),
  div: bin('div'),
  pow: bin('pow'),
  max: bin('max'),
  min: bin('min'),
  /** Truncated remainder (the sign of x), as JS `%` and WGSL `%`. */
  rem: bin('rem'),
  and: bin('and'),
  or: bin('or'),
  eq: bin('eq'),
  ne: bin('ne'),
  lt: bin('lt'),
  le: bin('le'),
  gt: bin('gt'),
  ge: bin('ge'),
  select: (c: Expr, x: Expr, y: Expr): Expr => {
    const dt = x.k === 'const' ? y.dtype : x.dtype;
    return { k: 'select', c, x: typed(x, dt), y: typed(y, dt), dtype: dt };
  },
  cast: (x: Expr, dtype: DType): Expr => ({ k: 'cast', x, dtype }),
};
export type KirBuilder = typeof kir;

/** How a reduction combines elements: acc = combine(acc, x) from `identity`, then finish(acc, count). */
export interface ReducerBody {
  /** Name, for labels. */
  op: string;
  identity: number;
  combine(acc: Expr, x: Expr): Expr;
  /** Result from the accumulator and the number of combined elements (default: the accumulator). */
  finish?(acc: Expr, count: Expr): Expr;
}

/** A reduction instantiated at a dtype: `combine` loads 0 (accumulator) and 1 (element); `finish` loads 0 and has the count baked in. */
export interface Reduction {
  op: string;
  identity: number;
  combine: Expr;
  finish?: Expr;
}

export function instantiate(r: ReducerBody, dtype: DType, count: number): Reduction {
  const acc = kir.load(0, dtype);
  return {
    op: r.op,
    identity: r.identity,
    combine: r.combine(acc, kir.load(1, dtype)),
    finish: r.finish?.(acc, kir.c(count, dtype)),
  };
}

/** The loads of an expression, in first-use order. */
export function loadsOf(e: Expr, out: number[] = []): number[] {
  switch (e.k) {
    case 'const':
      break;
    case 'load':
      if (!out.includes(e.ref)) out.push(e.ref);
      break;
    case 'unary':
    case 'cast':
      loadsOf(e.x, out);
      break;
    case 'binary':
      loadsOf(e.x, out);
      loadsOf(e.y, out);
      break;
    case 'select':
      loadsOf(e.c, out);
      loadsOf(e.x, out);
      loadsOf(e.y, out);
      break;
  }
  return out;
}

/** Replaces each load by `f(ref, dtype)`. */
export function mapLoads(e: Expr, f: (ref: number, dtype: DType) => Expr): Expr {
  switch (e.k) {
    case 'const':
      return e;
    case 'load':
      return f(e.ref, e.dtype);
    case 'unary':
    case 'cast':
      return { ...e, x: mapLoads(e.x, f) };
    case 'binary':
      return { ...e, x: mapLoads(e.x, f), y: mapLoads(e.y, f) };
    case 'select':
      return { ...e, c: mapLoads(e.c, f), x: mapLoads(e.x, f), y: mapLoads(e.y, f) };
  }
}

/**
 * Whether the expression jumps where its operands change slightly (rounding, comparisons,
 * remainders, casts to int or bool): such ops must see operands already rounded to float32.
 */
export function isDiscontinuous(e: Expr): boolean {
  switch (e.k) {
    case 'const':
    case 'load':
      return false;
    case 'unary':
      return ['sign', 'floor', 'ceil', 'trunc'].includes(e.op) || isDiscontinuous(e.x);
    case 'cast':
      return e.dtype !== 'float32' || isDiscontinuous(e.x);
    case 'binary':
      return isCompare(e.op) || e.op === 'rem' || isDiscontinuous(e.x) || isDiscontinuous(e.y);
    case 'select':
      return isDiscontinuous(e.c) || isDiscontinuous(e.x) || isDiscontinuous(e.y);
  }
}

const UNARY_F64: Record<UnaryOp, (x: number) => number> = {
  neg: (x) => -x,
  abs: Math.abs,
  sign: Math.sign,
  exp: Math.exp,
  log: Math.log,
  log1p: Math.log1p,
  sqrt: Math.sqrt,
  tanh: Math.tanh,
  sin: Math.sin,
  cos: Math.cos,
  floor: Math.floor,
  ceil: Math.ceil,
  trunc: Math.trunc,
  not: (x) => (x ? 0 : 1),
};
const BINARY_F64: Record<BinaryOp, (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
  pow: Math.pow,
  max: Math.max,
  min: Math.min,
  rem: (x, y) => x % y,
  and: (x, y) => (x && y ? 1 : 0),
  or: (x, y) => (x || y ? 1 : 0),
  eq: (x, y) => (x === y ? 1 : 0),
  ne: (x, y) => (x !== y ? 1 : 0),
  lt: (x, y) => (x < y ? 1 : 0),
  le: (x, y) => (x <= y ? 1 : 0),
  gt: (x, y) => (x > y ? 1 : 0),
  ge: (x, y) => (x >= y ? 1 : 0),
};

/** The value of an expression in float64 (as the JS target computes it, with Math.tanh), loads from `values`. */
export function evalExpr(e: Expr, values: readonly number[]): number {
  switch (e.k) {
    case 'const':
      return e.value;
    case 'load':
      return values[e.ref]!;
    case 'unary':
      return UNARY_F64[e.op](evalExpr(e.x, values));
    case 'binary':
      return BINARY_F64[e.op](evalExpr(e.x, values), evalExpr(e.y, values));
    case 'select':
      return evalExpr(e.c, values) ? evalExpr(e.x, values) : evalExpr(e.y, values);
    case 'cast': {
      const x = evalExpr(e.x, values);
      return e.dtype === 'int32' ? Math.trunc(x) : e.dtype === 'bool' ? (x !== 0 ? 1 : 0) : +x;
    }
  }
}

/** A compact, target-independent text of an expression (labels, hashes, docs). */
export function exprText(e: Expr): string {
  switch (e.k) {
    case 'const':
      return `${e.value}:${e.dtype[0]}`;
    case 'load':
      return `$${e.ref}`;
    case 'unary':
      return `${e.op}(${exprText(e.x)})`;
    case 'binary':
      return `${e.op}(${exprText(e.x)}, ${exprText(e.y)})`;
    case 'select':
      return `select(${exprText(e.c)}, ${exprText(e.x)}, ${exprText(e.y)})`;
    case 'cast':
      return `${e.dtype}(${exprText(e.x)})`;
  }
}
