/**
 * Reductions over axes: sum, mean, max, min, prod, logsumexp, variance, std, argmax, argmin,
 * and `reduce_count` (how many elements a reduction combines, read from the runtime shape so
 * gradients of mean-like ops work with symbolic dims).
 */
import { axesBatch, axisBatch } from './batching.ts';
import type { Attrs, DType, TensorType } from '../ir.ts';
import type { Dim } from '../dims.ts';
import { kir } from '../codegen/kir.ts';
import {
  bytesOf,
  defineOp,
  rowStrides,
  sizeOf,
  type ConcreteType,
  type Cost,
  type GradBuilder,
  type HostArray,
  type Reducer,
  type ShapeCtx,
  type Tensor,
} from './registry.ts';
import type * as tfType from '@tensorflow/tfjs';

type TF = typeof tfType;
const FLOAT: readonly DType[] = ['float32'];
const NUMERIC: readonly DType[] = ['float32', 'int32'];

const AXES_ATTRS = {
  axes: { anyOf: [{ type: 'integer' }, { type: 'array', items: { type: 'integer' } }] },
  keepdims: { type: 'boolean' },
};

/** The attribute's axes, before normalisation (undefined = all axes). */
function rawAxes(attrs: Attrs): number[] | undefined {
  const a = attrs.axes;
  if (a === undefined || a === null) return undefined;
  return typeof a === 'number' ? [a] : (a as number[]);
}

/** Normalised, sorted reduced axes; fails on out-of-range or duplicate axes. */
export function checkAxes(attrs: Attrs, rank: number, ctx: ShapeCtx): number[] {
  const raw = rawAxes(attrs);
  if (raw === undefined) return [...Array(rank).keys()];
  const seen = new Map<number, number>();
  for (const ax of raw) {
    if (!Number.isInteger(ax) || ax < -rank || ax >= rank)
      ctx.fail('E_AXIS', `axis ${ax} is out of range for a rank-${rank} tensor`, `axes in [${-rank}, ${rank - 1}]`, JSON.stringify(raw));
    const n = ax < 0 ? ax + rank : ax;
    if (seen.has(n))
      ctx.fail('E_AXIS', `axis ${ax} is listed twice (as ${seen.get(n)} and ${ax})`, 'distinct axes', JSON.stringify(raw));
    seen.set(n, ax);
  }
  return [...seen.keys()].sort((a, b) => a - b);
}

/** Normalised axes at kernel / grad time, where shapes are already checked. */
export function axesOf(attrs: Attrs, rank: number): number[] {
  const raw = rawAxes(attrs);
  if (raw === undefined) return [...Array(rank).keys()];
  return [...new Set(raw.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
}

export function reducedShape(shape: readonly Dim[], axes: readonly number[], keepdims: boolean): Dim[] {
  const out: Dim[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/** Re-inserts the reduced axes (as size 1) into a gradient of a keepdims=false reduction. */
export function keepDims(b: GradBuilder, dy: string, axes: readonly number[], keepdims: boolean): string {
  if (keepdims) return dy;
  let g = dy;
  for (const ax of axes) g = b.op('expand_dims', [g], { axis: ax });
  return g;
}

// ---------------------------------------------------------------------------- host loops

/** Offsets into a row-major array of `shape` of the index space of `axes` (ascending), in row-major order. */
function axisOffsets(shape: readonly number[], strides: readonly number[], axes: readonly number[]): Int32Array {
  let n = 1;
  for (const a of axes) n *= shape[a]!;
  const out = new Int32Array(n);
  const k = axes.length;
  const idx = new Array<number>(k).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    // Odometer step, last axis fastest.
    for (let d = k - 1; d >= 0; d--) {
      const a = axes[d]!;
      off += strides[a]!;
      if (++idx[d]! < shape[a]!) break;
      off -= strides[a]! * shape[a]!;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * Layout of a reduction over sorted `axes` of a row-major `shape`: output element o (row-major
 * over the kept axes, so keepdims does not change it) combines the elements at
 * outer[o] + inner[j], j in row-major order of the reduced axes (the order tfjs's cpu kernels
 * visit them, which fixes the float rounding of sums).
 */
export function reduceLayout(shape: readonly number[], axes: readonly number[]): { outer: Int32Array; inner: Int32Array } {
  const strides = rowStrides(shape);
  const kept = [...shape.keys()].filter((a) => !axes.includes(a));
  return { outer: axisOffsets(shape, strides, kept), inner: axisOffsets(shape, strides, axes) };
}

/**
 * One axis of a row-major shape as lines: line (o, i), o < outer, i < inner, holds the `size`
 * elements at o * size * inner + i + j * inner. A negative axis counts from the end.
 */
export function axisLines(shape: readonly number[], axis: number): { outer: number; size: number; inner: number } {
  if (axis < 0) axis += shape.length;
  let outer = 1;
  let inner = 1;
  for (let a = 0; a < axis; a++) outer *= shape[a]!;
  for (let a = axis + 1; a < shape.length; a++) inner *= shape[a]!;
  return { outer, size: shape[axis]!, inner };
}

/**
 * tfjs's max (`isMax`) or min of x[base + offs[j]] (offs null: x[base + j * stride]), j < n: NaN
 * wins; NaN over no elements.
 */
export function hostExtremum(isMax: boolean, x: HostArray, base: number, offs: Int32Array | null, n: number, stride = 1): number {
  if (n === 0) return Number.NaN;
  let m = x[base + (offs ? offs[0]! : 0)]!;
  for (let j = 1; j < n; j++) {
    const v = x[base + (offs ? offs[j]! : j * stride)]!;
    if (Number.isNaN(v) || (isMax ? v > m : v < m)) m = v;
  }
  return m;
}

/** tfjs's mean: the sum of x / n, each quotient rounded to float32 (variance centres on this exact value). */
function hostMean(x: HostArray, base: number, offs: Int32Array): number {
  const n = offs.length;
  let acc = 0;
  for (let j = 0; j < n; j++) acc += Math.fround(x[base + offs[j]!]! / n);
  return Math.fround(acc);
}

/** Two-pass variance, as varianceKernel: sum((x - mean)^2) / (n - ddof). */
function hostVariance(x: HostArray, base: number, offs: Int32Array, attrs: Attrs): number {
  const m = hostMean(x, base, offs);
  let acc = 0;
  for (let j = 0; j < offs.length; j++) {
    const d = x[base + offs[j]!]! - m;
    acc += d * d;
  }
  return acc / (offs.length - ((attrs.ddof as number | undefined) ?? 0));
}

/** A reduction's host combine: the result from the elements x[base + offs[j]]. */
type HostCombine = (x: HostArray, base: number, offs: Int32Array, attrs: Attrs) => number;

function reductionCost(flopsPerElem: number) {
  return (inputs: ConcreteType[], out: ConcreteType): Cost => ({
    flops: flopsPerElem * sizeOf(inputs[0]!.shape),
    bytes: bytesOf(inputs[0]!) + bytesOf(out),
  });
}

interface ReduceSpec {
  doc: string;
  dtypes: readonly DType[];
  kernel: (tf: TF, x: Tensor, axes: number[], keepdims: boolean, attrs: Attrs) => Tensor;
  /** dx given x, y, dy with the reduced axes re-inserted (keepdims form), and the axes. */
  grad?: (b: GradBuilder, x: string, yk: string, dyk: string, axes: number[], attrs: Attrs) => string;
  flops?: number;
  extraAttrs?: Record<string, object>;
  /** How generated kernels combine elements (reductions without one are not fused). */
  combine?: Omit<Reducer, 'axes' | 'dataInputs'>;
  /** Host kernel combine (the helper walks the axes; typed-array stores do the float32 rounding / int32 wrap, as tfjs's do). */
  host: HostCombine;
}

const SUM: Omit<Reducer, 'axes' | 'dataInputs'> = { op: 'sum', identity: 0, combine: (a, x) => kir.add(a, x) };

function reduction(name: string, s: ReduceSpec): void {
  defineOp({
    name,
    family: 'reduce',
    doc: `${s.doc} over \`axes\` (default: all); \`keepdims\` keeps reduced axes as size 1`,
    inputs: ['x'],
    attrs: { properties: { ...AXES_ATTRS, ...s.extraAttrs } },
    shape: ([x], a, ctx): TensorType => {
      const dtype = ctx.dtype(x!, s.dtypes, 'x');
      const axes = checkAxes(a, x!.shape.length, ctx);
      return { dtype, shape: reducedShape(x!.shape, axes, a.keepdims === true) };
    },
    kernel: (tf, [x], a) => s.kernel(tf, x!, axesOf(a, x!.rank), a.keepdims === true, a),
    host: ([x], out, a) => {
      const { outer, inner } = reduceLayout(x!.shape, axesOf(a, x!.shape.length));
      const xs = x!.data;
      const ys = out.data;
      for (let o = 0; o < outer.length; o++) ys[o] = s.host(xs, outer[o]!, inner, a);
    },
    grad: s.grad
      ? (b, a) => {
          const x = a.inputs[0]!;
          if (b.type(x).dtype !== 'float32') return [null];
          const axes = axesOf(a.attrs, b.type(x).shape.length);
          const keep = a.attrs.keepdims === true;
          return [s.grad!(b, x, keepDims(b, a.output, axes, keep), keepDims(b, a.dy, axes, keep), axes, a.attrs)];
        }
      : undefined,
    fusion: 'reduction',
    reducer: s.combine && { ...s.combine, axes: (inShape, _out, attrs) => axesOf(attrs, inShape.length), dataInputs: [0] },
    cost: reductionCost(s.flops ?? 1),
  });
}

/** The sum of x[base + offs[j]] in double precision (stored to float32 or int32 by the caller's array). */
export function hostSum(x: HostArray, base: number, offs: Int32Array): number {
  let acc = 0;
  for (let j = 0; j < offs.length; j++) acc += x[base + offs[j]!]!;
  return acc;
}

reduction('sum', {
  doc: 'sum',
  combine: SUM,
  dtypes: NUMERIC,
  kernel: (tf, x, axes, keep) => tf.sum(x, axes, keep),
  host: hostSum,
  grad: (b, x, _yk, dyk) => b.op('broadcast_like', [dyk, x]),
});

reduction('mean', {
  doc: 'arithmetic mean',
  combine: { ...SUM, op: 'mean', finish: (a, n) => kir.div(a, n) },
  dtypes: FLOAT,
  kernel: (tf, x, axes, keep) => tf.mean(x, axes, keep),
  host: hostMean,
  grad: (b, x, _yk, dyk, axes) => b.op('broadcast_like', [b.op('div', [dyk, b.op('reduce_count', [x], { axes })]), x]),
});

/** max/min: the gradient goes to the positions equal to the result, split evenly among ties. */
function extremumGrad(b: GradBuilder, x: string, yk: string, dyk: string, axes: number[]): string {
  const mask = b.op('cast', [b.op('equal', [x, yk])], { dtype: 'float32' });
  const ties = b.op('sum', [mask], { axes, keepdims: true });
  return b.op('mul', [mask, b.op('div', [dyk, ties])]);
}

reduction('max', {
  doc: 'maximum (gradient shared evenly among tied maxima)',
  dtypes: NUMERIC,
  combine: { op: 'max', identity: -Infinity, combine: (a, x) => kir.max(a, x) },
  kernel: (tf, x, axes, keep) => tf.max(x, axes, keep),
  host: (x, base, offs) => hostExtremum(true, x, base, offs, offs.length),
  grad: extremumGrad,
});

reduction('min', {
  doc: 'minimum (gradient shared evenly among tied minima)',
  dtypes: NUMERIC,
  combine: { op: 'min', identity: Infinity, combine: (a, x) => kir.min(a, x) },
  kernel: (tf, x, axes, keep) => tf.min(x, axes, keep),
  host: (x, base, offs) => hostExtremum(false, x, base, offs, offs.length),
  grad: extremumGrad,
});

reduction('prod', {
  doc: 'product',
  dtypes: NUMERIC,
  combine: { op: 'prod', identity: 1, combine: (a, x) => kir.mul(a, x) },
  kernel: (tf, x, axes, keep) => tf.prod(x, axes, keep),
  host: (x, base, offs) => {
    // Same order of double products as tfjs, so int32 results that overflow wrap identically.
    let acc = 1;
    for (let j = 0; j < offs.length; j++) acc *= x[base + offs[j]!]!;
    return acc;
  },
  grad: (b, x, _yk, dyk, axes) => {
    // d prod / d x_i = product of the others. Computed without dividing by zero: with no zero in
    // the slice it is prod(nonzero) / x_i; with exactly one zero only that position gets
    // prod(nonzero); with two or more zeros everything is 0.
    const zero = b.constant(0, 'float32');
    const isZero = b.op('equal', [x, zero]);
    const nz = b.op('where', [isZero, b.op('ones_like', [x]), x]);
    const pnz = b.op('prod', [nz], { axes, keepdims: true });
    const zeros = b.op('sum', [b.op('cast', [isZero], { dtype: 'float32' })], { axes, keepdims: true });
    const zx = b.op('zeros_like', [x]);
    const atZero = b.op('where', [b.op('equal', [zeros, b.constant(1, 'float32')]), pnz, zx]);
    const elsewhere = b.op('where', [b.op('equal', [zeros, zero]), b.op('div', [pnz, nz]), zx]);
    return b.op('mul', [b.op('where', [isZero, atZero, elsewhere]), dyk]);
  },
  flops: 1,
});

reduction('logsumexp', {
  doc: 'log(sum(exp(x))), computed stably',
  dtypes: FLOAT,
  kernel: (tf, x, axes, keep) => tf.logSumExp(x, axes, keep),
  host: (x, base, offs) => {
    // max + log(sum(exp(x - max))); an all -inf or any NaN slice gives NaN, as in tfjs.
    const m = hostExtremum(true, x, base, offs, offs.length);
    let acc = 0;
    for (let j = 0; j < offs.length; j++) acc += Math.exp(x[base + offs[j]!]! - m);
    return m + Math.log(acc);
  },
  grad: (b, x, yk, dyk) => b.op('mul', [dyk, b.op('exp', [b.op('sub', [x, yk])])]),
  flops: 12,
});

const DDOF = { ddof: { enum: [0, 1] } };

/** Two-pass variance: sum((x - mean)^2) / (n - ddof). */
function varianceKernel(tf: TF, x: Tensor, axes: number[], keep: boolean, attrs: Attrs): Tensor {
  const n = axes.reduce((p, a) => p * x.shape[a]!, 1);
  const ddof = (attrs.ddof as number | undefined) ?? 0;
  return tf.tidy(() => {
    const d = tf.sub(x, tf.mean(x, axes, true));
    return tf.div(tf.sum(tf.square(d), axes, keep), tf.scalar(n - ddof));
  });
}

/** (x - mean) and n - ddof, shared by the variance and std gradients. */
function centred(b: GradBuilder, x: string, axes: number[], attrs: Attrs): { d: string; n: string } {
  const ddof = (attrs.ddof as number | undefined) ?? 0;
  const count = b.op('reduce_count', [x], { axes });
  return {
    d: b.op('sub', [x, b.op('mean', [x], { axes, keepdims: true })]),
    n: ddof === 0 ? count : b.op('sub', [count, b.constant(ddof, 'float32')]),
  };
}

reduction('variance', {
  doc: 'variance, dividing by n - ddof (ddof 0: population, 1: Bessel-corrected)',
  dtypes: FLOAT,
  extraAttrs: DDOF,
  kernel: varianceKernel,
  host: hostVariance,
  grad: (b, x, _yk, dyk, axes, attrs) => {
    const { d, n } = centred(b, x, axes, attrs);
    return b.op('mul', [d, b.op('div', [b.op('mul', [dyk, b.constant(2, 'float32')]), n])]);
  },
  flops: 4,
});

reduction('std', {
  doc: 'standard deviation, sqrt(variance) with the same ddof',
  dtypes: FLOAT,
  extraAttrs: DDOF,
  kernel: (tf, x, axes, keep, attrs) => tf.tidy(() => tf.sqrt(varianceKernel(tf, x, axes, keep, attrs))),
  host: (x, base, offs, attrs) => Math.sqrt(hostVariance(x, base, offs, attrs)),
  grad: (b, x, yk, dyk, axes, attrs) => {
    // d std = (x - mean) / ((n - ddof) * std). Where std is 0 every (x - mean) is 0 too; a
    // denominator of 1 there gives the zero subgradient instead of 0/0.
    const { d, n } = centred(b, x, axes, attrs);
    const safe = b.op('where', [b.op('greater', [yk, b.constant(0, 'float32')]), yk, b.op('ones_like', [yk])]);
    return b.op('mul', [d, b.op('div', [dyk, b.op('mul', [n, safe])])]);
  },
  flops: 4,
});

defineOp({
  name: 'reduce_count',
  family: 'reduce',
  doc: 'the number of elements of x that a reduction over `axes` (default: all) combines, as a float32 scalar; read from the runtime shape',
  inputs: ['x'],
  attrs: { properties: { axes: AXES_ATTRS.axes } },
  shape: ([x], a, ctx) => {
    checkAxes(a, x!.shape.length, ctx);
    return { dtype: 'float32', shape: [] };
  },
  kernel: (tf, [x], a) => tf.scalar(axesOf(a, x!.rank).reduce((p, ax) => p * x!.shape[ax]!, 1), 'float32'),
  host: ([x], out, a) => {
    out.data[0] = axesOf(a, x!.shape.length).reduce((p, ax) => p * x!.shape[ax]!, 1);
  },
  grad: () => [null],
  // The count depends on the instance's shape only: the same for every instance.
  batch: axesBatch(false),
  fusion: 'opaque',
  cost: (_i, out) => ({ flops: 0, bytes: bytesOf(out) }),
});

// ---------------------------------------------------------------------------- argmax / argmin

function argReduction(name: string, doc: string, kernel: (tf: TF, x: Tensor, axis: number) => Tensor, isMax: boolean): void {
  defineOp({
    name,
    family: 'reduce',
    doc: `${doc} along \`axis\` (default -1) as int32; ties pick the first index`,
    inputs: ['x'],
    attrs: { properties: { axis: { type: 'integer' }, keepdims: { type: 'boolean' } } },
    shape: ([x], a, ctx) => {
      ctx.dtype(x!, NUMERIC, 'x');
      const rank = x!.shape.length;
      if (rank === 0) ctx.fail('E_RANK', `${name} needs a tensor of rank >= 1`, 'rank >= 1', 'a scalar');
      const axis = ctx.axis((a.axis as number | undefined) ?? -1, rank);
      return { dtype: 'int32', shape: reducedShape(x!.shape, [axis], a.keepdims === true) };
    },
    kernel: (tf, [x], a) => {
      const rank = x!.rank;
      const ax = (a.axis as number | undefined) ?? -1;
      const axis = ax < 0 ? ax + rank : ax;
      if (a.keepdims !== true) return kernel(tf, x!, axis);
      return tf.tidy(() => tf.expandDims(kernel(tf, x!, axis), axis));
    },
    host: ([x], out, a) => {
      const { outer, size, inner } = axisLines(x!.shape, (a.axis as number | undefined) ?? -1);
      const xs = x!.data;
      const ys = out.data;
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          const base = o * size * inner + i;
          // As tfjs: strict comparison, so ties keep the first index and NaN never wins.
          let best = xs[base]!;
          let at = 0;
          for (let j = 1; j < size; j++) {
            const v = xs[base + j * inner]!;
            if (isMax ? v > best : v < best) {
              best = v;
              at = j;
            }
          }
          ys[o * inner + i] = at;
        }
    },
    grad: () => [null],
    batch: axisBatch(-1),
    fusion: 'reduction',
    cost: reductionCost(1),
  });
}

argReduction('argmax', 'index of the maximum', (tf, x, axis) => tf.argMax(x, axis), true);
argReduction('argmin', 'index of the minimum', (tf, x, axis) => tf.argMin(x, axis), false);
