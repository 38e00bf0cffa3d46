/**
 * What the fusion pass and the code generators need to know about an op, read from the op
 * registry: its fusion class, the per-element JS expression of elementwise ops, and how a
 * reduction combines elements.
 *
 * The registry has no field yet for a reduction's combiner, and a few ops whose semantics are
 * plainly elementwise or reductive are registered as 'opaque' (broadcast_to, broadcast_like,
 * sum_to). Until the registry carries that information (an optional `reducer` on OpDef and the
 * fusion class fixed on those ops), the table below supplies it. A registry field, once present,
 * always wins over the table.
 */
import { type Attrs } from '../ir.ts';
import { getOp, type OpDef } from '../ops/registry.ts';
import { axesOf } from '../ops/reduce.ts';

/** How a reduction combines the elements of its reduced axes. JS expressions over doubles. */
export interface Reducer {
  /** Initial accumulator value. */
  init: string;
  /** New accumulator from the accumulator and one element. */
  step(acc: string, x: string): string;
  /** Result from the accumulator and the number of combined elements (default: the accumulator). */
  finish?(acc: string, count: string): string;
  /** Reduced axes of the data input, from concrete shapes. */
  axes(inShape: readonly number[], outShape: readonly number[], attrs: Attrs): number[];
  /** Indices of the inputs whose values are read (the others only give a shape). */
  dataInputs: readonly number[];
}

export type Role = 'elementwise' | 'reduction' | 'matmul' | 'view' | 'opaque';

const byAttrs = (inShape: readonly number[], _out: readonly number[], attrs: Attrs): number[] => axesOf(attrs, inShape.length);

/** Axes that broadcasting `out` to `inShape` expanded: the leading extra ones and out's 1s. */
function broadcastAxes(inShape: readonly number[], out: readonly number[]): number[] {
  const lead = inShape.length - out.length;
  const axes: number[] = [];
  for (let i = 0; i < inShape.length; i++) if (i < lead || (out[i - lead] === 1 && inShape[i] !== 1)) axes.push(i);
  return axes;
}

const SUM: Omit<Reducer, 'axes' | 'dataInputs'> = { init: '0', step: (a, x) => `${a} + ${x}` };

const REDUCERS: Record<string, Reducer> = {
  sum: { ...SUM, axes: byAttrs, dataInputs: [0] },
  mean: { ...SUM, finish: (a, n) => `${a} / ${n}`, axes: byAttrs, dataInputs: [0] },
  max: { init: '-Infinity', step: (a, x) => `Math.max(${a}, ${x})`, axes: byAttrs, dataInputs: [0] },
  min: { init: 'Infinity', step: (a, x) => `Math.min(${a}, ${x})`, axes: byAttrs, dataInputs: [0] },
  prod: { init: '1', step: (a, x) => `${a} * ${x}`, axes: byAttrs, dataInputs: [0] },
  sum_to: { ...SUM, axes: (i, o) => broadcastAxes(i, o), dataInputs: [0] },
};

/** Elementwise semantics of ops the registry classes as opaque: out[i] = x[bcast(i)]. */
const ELEMENTWISE: Record<string, (args: string[]) => string> = {
  broadcast_to: ([x]) => x!,
  broadcast_like: ([x]) => x!,
};

type WithReducer = OpDef & { reducer?: Reducer };

export function reducerOf(op: string): Reducer | undefined {
  const def = getOp(op) as WithReducer | undefined;
  if (!def) return undefined;
  return def.reducer ?? REDUCERS[op];
}

/** The JS expression of one element of an elementwise op, or undefined if the op is not one. */
export function scalarOf(op: string): ((args: string[], attrs: Attrs) => string) | undefined {
  const def = getOp(op);
  if (!def) return undefined;
  if (def.fusion === 'elementwise' && def.scalar) return def.scalar;
  const fb = ELEMENTWISE[op];
  return fb ? (args) => fb(args) : undefined;
}

/** The role an op can play in a fused kernel. */
export function roleOf(op: string): Role {
  const def = getOp(op);
  if (!def || def.pure === false) return 'opaque';
  if (scalarOf(op)) return 'elementwise';
  if (reducerOf(op)) return 'reduction';
  if (def.fusion === 'matmul') return 'matmul';
  if (def.fusion === 'view') return 'view';
  return 'opaque';
}

/** Matmul operands' transposition flags. */
export function matmulFlags(attrs: Attrs): { transposeA: boolean; transposeB: boolean } {
  return { transposeA: attrs.transpose_a === true, transposeB: attrs.transpose_b === true };
}

/**
 * Which arguments an elementwise op's expression reads: an input whose placeholder does not
 * appear (zeros_like, ones_like) only gives the shape.
 */
export function readsArgs(op: string, attrs: Attrs, arity: number): boolean[] {
  const f = scalarOf(op);
  if (!f) return Array.from({ length: arity }, () => true);
  const names = Array.from({ length: arity }, (_v, k) => `__arg${k}__`);
  const expr = f(names, attrs);
  return names.map((n) => expr.includes(n));
}
