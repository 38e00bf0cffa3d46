/**
 * Symbolic dimensions. A dim is a non-negative integer or a monomial over named symbols
 * with an integer coefficient, written canonically: "B", "B*T", "4*B*T". Monomials are enough
 * for what graphs do with dims (flatten, split by a known factor) and keep equality decidable.
 */
import { LoomError } from './errors.ts';

export type Dim = number | string;
export type Shape = Dim[];

interface Monomial {
  coef: number;
  syms: string[]; // sorted, with repeats
}

const SYMBOL = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function isSymbolName(s: string): boolean {
  return SYMBOL.test(s);
}

function parse(d: Dim): Monomial {
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split('*')) {
    const p = part.trim();
    if (/^\d+$/.test(p)) coef *= exactCoefficient(Number(p), p);
    else syms.push(p);
  }
  syms.sort();
  return { coef, syms };
}

/**
 * A coefficient beyond 2^53 is not exact, and would print as "1e+23", which reads back as a
 * symbol; such a size is absurd anyway. Callers add the location.
 */
function exactCoefficient(coef: number, written: string): number {
  if (!Number.isSafeInteger(coef))
    throw new LoomError({
      code: 'E_SIZE',
      message: `a dimension has the coefficient ${written}, too large to represent exactly`,
      expected: `a coefficient of at most ${Number.MAX_SAFE_INTEGER} (and a tensor of at most ${MAX_ELEMENTS} elements)`,
      found: written,
    });
  return coef;
}

function render(m: Monomial): Dim {
  if (m.syms.length === 0 || m.coef === 0) return m.coef;
  exactCoefficient(m.coef, String(BigInt(m.coef)));
  const s = m.syms.join('*');
  return m.coef === 1 ? s : `${m.coef}*${s}`;
}

/** Canonical form of a dim as written by a user ("T*B" -> "B*T"). */
export function canonDim(d: Dim): Dim {
  return render(parse(d));
}

export function isStatic(d: Dim): d is number {
  return typeof d === 'number';
}

export function dimEq(a: Dim, b: Dim): boolean {
  return canonDim(a) === canonDim(b);
}

export function dimMul(a: Dim, b: Dim): Dim {
  const x = parse(a);
  const y = parse(b);
  return render({ coef: x.coef * y.coef, syms: [...x.syms, ...y.syms].sort() });
}

/** a / b if b divides a exactly (as monomials), else undefined. */
export function dimDiv(a: Dim, b: Dim): Dim | undefined {
  const x = parse(a);
  const y = parse(b);
  if (y.coef === 0 || x.coef % y.coef !== 0) return undefined;
  const rest = [...x.syms];
  for (const s of y.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return render({ coef: x.coef / y.coef, syms: rest });
}

export function product(shape: Shape): Dim {
  return shape.reduce<Dim>((acc, d) => dimMul(acc, d), 1);
}

export function symbolsOf(d: Dim): string[] {
  return parse(d).syms;
}

export function isStaticShape(shape: Shape): shape is number[] {
  return shape.every(isStatic);
}

/** Substitutes bound symbols; unbound ones stay symbolic. */
export function substDim(d: Dim, env: ReadonlyMap<string, number>): Dim {
  const m = parse(d);
  let coef = m.coef;
  const syms: string[] = [];
  for (const s of m.syms) {
    const v = env.get(s);
    if (v === undefined) syms.push(s);
    else coef *= v;
  }
  return render({ coef, syms });
}

export function substShape(shape: Shape, env: ReadonlyMap<string, number>): Shape {
  return shape.map((d) => substDim(d, env));
}

export function showShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** Largest element count a single tensor may have; beyond it no backend can allocate it. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/** Substitutes symbols by dims (which may themselves be symbolic), e.g. callee "B" -> caller "N*G". */
export function substDimSym(d: Dim, env: ReadonlyMap<string, Dim>): Dim {
  const m = parse(d);
  let out: Dim = m.coef;
  for (const s of m.syms) out = dimMul(out, env.get(s) ?? s);
  return out;
}
