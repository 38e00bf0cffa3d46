/**
 * Shape ops: views (reshape, expand_dims, squeeze), data movement (transpose, concat, stack,
 * slice, tile, gather, one_hot), broadcasting (broadcast_to, broadcast_like) and the helpers
 * their gradients need (sum_to, scatter_add, pad_like, split_like). Shapes may be symbolic:
 * attributes that hold dims accept symbolic-dim strings ("B", "T*4") next to integers, and
 * kernels always take concrete sizes from the inferred output type or from the run-time
 * tensors, never from the attributes.
 */
import {
  canonDim,
  dimDiv,
  dimEq,
  dimMul,
  isStatic,
  isSymbolName,
  product,
  showShape,
  symbolsOf,
  type Dim,
  type Shape,
} from '../dims.ts';
import type { Attrs } from '../ir.ts';
import {
  bytesOf,
  broadcastStrides,
  defineOp,
  rowStrides,
  sizeOf,
  streamingCost,
  type ConcreteType,
  type Cost,
  type GradBuilder,
  type HostArray,
  type HostTensor,
  type ShapeCtx,
  type Tensor,
} from './registry.ts';
import { LoomError } from '../errors.ts';
import { hostSum, reduceLayout } from './reduce.ts';
import { allBatched, axisBatch, leadingBatch, shiftAxis } from './batching.ts';
import { kir } from '../codegen/kir.ts';
import type * as tfType from '@tensorflow/tfjs';

// ---------------------------------------------------------------------------- helpers

/** JSON Schema of a dim written in an attribute: an integer or a symbolic monomial. */
const DIM_SCHEMA = { anyOf: [{ type: 'integer' }, { type: 'string', minLength: 1 }] };
const INT_ARRAY = { type: 'array', items: { type: 'integer' } };
const DIM_ARRAY = { type: 'array', items: DIM_SCHEMA };

/** Gradients only flow through float values; integer and bool inputs get null. */
function isFloat(b: GradBuilder, v: string): boolean {
  return b.type(v).dtype === 'float32';
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

/** Validates one dim written in an attribute; `allowNeg1` admits -1 ("infer" / "to the end"). */
function attrDim(v: unknown, ctx: ShapeCtx, what: string, allowNeg1 = false): Dim {
  if (isInt(v)) {
    if (v >= 0 || (allowNeg1 && v === -1)) return v;
    return ctx.fail('E_ATTR', `${what} must be ${allowNeg1 ? '>= -1' : 'non-negative'}`, allowNeg1 ? 'an integer >= -1 or a symbolic dim' : 'an integer >= 0 or a symbolic dim', String(v));
  }
  if (typeof v === 'string') {
    const parts = v.split('*').map((p) => p.trim());
    if (parts.length > 0 && parts.every((p) => /^\d+$/.test(p) || isSymbolName(p))) return canonDim(v);
    return ctx.fail('E_ATTR', `${what} is not a valid symbolic dim`, 'an integer or a product of symbols and integers, e.g. "B*T"', JSON.stringify(v));
  }
  return ctx.fail('E_ATTR', `${what} must be an integer or a symbolic dim`, 'integer | string', JSON.stringify(v));
}

function intArrayAttr(v: unknown, ctx: ShapeCtx, what: string): number[] {
  if (!Array.isArray(v) || !v.every(isInt)) return ctx.fail('E_ATTR', `${what} must be an array of integers`, 'integer[]', JSON.stringify(v));
  return v;
}

function intAttr(v: unknown, ctx: ShapeCtx, what: string, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (!isInt(v)) return ctx.fail('E_ATTR', `${what} must be an integer`, 'integer', JSON.stringify(v));
  return v;
}

/** Splits a dim into coefficient and symbolic part: "4*B*T" -> [4, "B*T"], 7 -> [7, ""]. */
function coefOf(d: Dim): [number, string] {
  const c = canonDim(d);
  if (typeof c === 'number') return [c, ''];
  const m = /^(\d+)\*(.*)$/.exec(c);
  return m ? [Number(m[1]), m[2]!] : [1, c];
}

/** a + b when the sum is still a monomial (same symbols, or both static); else undefined. */
function dimAdd(a: Dim, b: Dim): Dim | undefined {
  if (a === 0) return canonDim(b);
  if (b === 0) return canonDim(a);
  const [ca, ra] = coefOf(a);
  const [cb, rb] = coefOf(b);
  if (ra !== rb) return undefined;
  return ra === '' ? ca + cb : dimMul(ca + cb, ra);
}

/** Symbols an attribute introduces must be bound by a graph input, or no run could size them. */
function checkBound(dims: Dim[], known: Shape, ctx: ShapeCtx, what: string): void {
  const have = new Set(known.flatMap(symbolsOf));
  for (const d of dims)
    for (const sym of symbolsOf(d))
      if (!have.has(sym) && !ctx.isBound(sym))
        ctx.fail('E_UNBOUND_DIM', `${what} mentions the symbol ${sym}, which no graph input binds`, 'symbols bound by graph inputs', sym);
}

/** Whether `from` broadcasts to `to` (NumPy rules, one direction only). */
function broadcastsTo(from: Shape, to: Shape): boolean {
  if (from.length > to.length) return false;
  const lead = to.length - from.length;
  return from.every((d, i) => d === 1 || dimEq(d, to[lead + i]!));
}

/** Normalised, duplicate-free axes; fails with E_AXIS / E_ATTR. */
function normAxes(axes: number[], rank: number, ctx: ShapeCtx, what: string): number[] {
  const out = axes.map((a) => ctx.axis(a, rank));
  if (new Set(out).size !== out.length) ctx.fail('E_ATTR', `${what} repeats an axis`, 'distinct axes', JSON.stringify(axes));
  return out;
}

/** Bytes moved by a copy that reads and writes `out` once (plus the listed extra inputs). */
function copyCost(extra: (inputs: ConcreteType[]) => ConcreteType[] = () => []) {
  return (inputs: ConcreteType[], out: ConcreteType): Cost => ({
    flops: 0,
    bytes: 2 * bytesOf(out) + extra(inputs).reduce((s, t) => s + bytesOf(t), 0),
  });
}

/** Views are metadata-only in tfjs: no data is moved. */
const VIEW_COST = (): Cost => ({ flops: 0, bytes: 0 });

// ---------------------------------------------------------------------------- host-kernel helpers
// Plain row-major loops: per call they allocate a few rank-sized arrays, nothing per element.

function axisOf(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Product of shape[from..to). */
function prodOf(shape: readonly number[], from = 0, to = shape.length): number {
  let n = 1;
  for (let i = from; i < to; i++) n *= shape[i]!;
  return n;
}

/**
 * For every index i of `shape` (row-major): dst[dOff + i·dSt] = src[sOff + i·sSt]. Transpose,
 * slice, tile and broadcasting are this copy with suitable strides.
 */
function stridedMove(
  src: HostArray,
  sOff: number,
  sSt: readonly number[],
  dst: HostArray,
  dOff: number,
  dSt: readonly number[],
  shape: readonly number[],
): void {
  const r = shape.length;
  const n = prodOf(shape);
  if (n === 0) return;
  if (r === 0) {
    dst[dOff] = src[sOff]!;
    return;
  }
  const inner = shape[r - 1]!;
  const si = sSt[r - 1]!;
  const di = dSt[r - 1]!;
  const block = si === 1 && di === 1 && inner >= BLOCK_COPY;
  const idx = new Array<number>(r).fill(0);
  for (let o = 0; o < n; o += inner) {
    if (block) copyRun(src, sOff, dst, dOff, inner);
    else for (let j = 0, s = sOff, d = dOff; j < inner; j++, s += si, d += di) dst[d] = src[s]!;
    // Odometer over the outer axes, moving both offsets with it.
    for (let k = r - 2; k >= 0; k--) {
      sOff += sSt[k]!;
      dOff += dSt[k]!;
      idx[k] = idx[k]! + 1;
      if (idx[k]! < shape[k]!) break;
      sOff -= sSt[k]! * shape[k]!;
      dOff -= dSt[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
}

/**
 * Contiguous runs at least this long are copied with TypedArray.set (a memmove) rather than
 * element by element: the slices and concats of flat parameter vectors are thousands long.
 */
const BLOCK_COPY = 16;

/** dst[dOff + j] = src[sOff + j] for j < n, for arrays of one dtype. */
function copyRun(src: HostArray, sOff: number, dst: HostArray, dOff: number, n: number): void {
  dst.set(src.subarray(sOff, sOff + n), dOff);
}

/** Writes x, gathered with strides `sSt` from offset `sOff`, contiguously into out (out.shape). */
function stridedRead(x: HostTensor, sOff: number, sSt: readonly number[], out: HostTensor): void {
  stridedMove(x.data, sOff, sSt, out.data, 0, rowStrides(out.shape), out.shape);
}

/** Views: out has x's elements in the same order. */
function copyHost(ins: readonly HostTensor[], out: HostTensor): void {
  const s = ins[0]!.data;
  const d = out.data;
  if (d.length >= BLOCK_COPY) copyRun(s, 0, d, 0, d.length);
  else for (let i = 0; i < d.length; i++) d[i] = s[i]!;
}

/** Concat/stack: for each index over out's axes before `ax`, each input's contiguous chunk in turn. */
function joinHost(ins: readonly HostTensor[], out: HostTensor, ax: number): void {
  const outer = prodOf(out.shape, 0, ax);
  const d = out.data;
  let o = 0;
  for (let p = 0; p < outer; p++)
    for (let k = 0; k < ins.length; k++) {
      const src = ins[k]!.data;
      const chunk = src.length / outer;
      if (chunk >= BLOCK_COPY) {
        copyRun(src, p * chunk, d, o, chunk);
        o += chunk;
      } else for (let j = p * chunk, e = j + chunk; j < e; j++) d[o++] = src[j]!;
    }
}

// ---------------------------------------------------------------------------- views

defineOp({
  name: 'reshape',
  family: 'shape',
  doc: 'reinterprets x with a new shape of the same element count; `shape` entries are integers or symbolic dims, at most one -1 (inferred)',
  inputs: ['x'],
  attrs: { properties: { shape: DIM_ARRAY }, required: ['shape'] },
  shape: ([x], a, ctx) => {
    if (!Array.isArray(a.shape)) return ctx.fail('E_ATTR', 'reshape needs a `shape` array', 'an array of dims', JSON.stringify(a.shape));
    const dims = a.shape.map((d, i) => attrDim(d, ctx, `shape[${i}]`, true));
    const holes = dims.filter((d) => d === -1).length;
    if (holes > 1) ctx.fail('E_ATTR', 'reshape allows at most one -1', 'at most one -1', showShape(dims));
    const total = product(x!.shape);
    let out: Dim[] = dims;
    if (holes === 1) {
      const known = product(dims.filter((d) => d !== -1));
      const rest = known === 0 ? undefined : dimDiv(total, known);
      if (rest === undefined)
        ctx.fail(
          'E_SHAPE',
          `cannot infer the -1 in ${showShape(dims)}: ${total} elements are not a multiple of ${known}`,
          `an element count divisible by ${known}`,
          `${showShape(x!.shape)} (${total} elements)`,
        );
      out = dims.map((d) => (d === -1 ? rest! : d));
    }
    const outTotal = product(out);
    if (!dimEq(outTotal, total))
      ctx.fail(
        'E_SHAPE',
        `reshape changes the element count (${total} -> ${outTotal})`,
        `a shape with ${total} elements`,
        `${showShape(out)} (${outTotal} elements)`,
      );
    return { dtype: x!.dtype, shape: out };
  },
  kernel: (tf, [x], _a, ctx) => tf.reshape(x!, ctx.outType.shape),
  host: copyHost,
  grad: (b, a) => {
    const x = a.inputs[0]!;
    return [isFloat(b, x) ? b.op('reshape', [a.dy], { shape: b.type(x).shape }) : null];
  },
  batch: (b, a) => ({ value: b.op('reshape', [a.inputs[0]!], { shape: [b.size, ...(a.attrs.shape as Dim[])] }), batched: true }),
  fusion: 'view',
  cost: VIEW_COST,
});

defineOp({
  name: 'expand_dims',
  family: 'shape',
  doc: 'inserts a size-1 axis at `axis` (in [-(rank+1), rank]; negative counts from the end of the result)',
  inputs: ['x'],
  attrs: { properties: { axis: { type: 'integer' } }, required: ['axis'] },
  shape: ([x], a, ctx) => {
    const r = x!.shape.length;
    const ax = ctx.axis(intAttr(a.axis, ctx, 'axis'), r + 1);
    const out = [...x!.shape];
    out.splice(ax, 0, 1);
    return { dtype: x!.dtype, shape: out };
  },
  kernel: (tf, [x], _a, ctx) => tf.reshape(x!, ctx.outType.shape),
  host: copyHost,
  grad: (b, a) => {
    const x = a.inputs[0]!;
    if (!isFloat(b, x)) return [null];
    const r = b.type(x).shape.length;
    const ax = (a.attrs.axis as number) < 0 ? (a.attrs.axis as number) + r + 1 : (a.attrs.axis as number);
    return [b.op('squeeze', [a.dy], { axes: [ax] })];
  },
  batch: (b, a) => ({ value: b.op('expand_dims', [a.inputs[0]!], { axis: shiftAxis(a.attrs.axis as number) }), batched: true }),
  fusion: 'view',
  cost: VIEW_COST,
});

defineOp({
  name: 'squeeze',
  family: 'shape',
  doc: 'removes size-1 axes: the listed `axes` (each must be 1), or every static 1 when `axes` is absent',
  inputs: ['x'],
  attrs: { properties: { axes: INT_ARRAY } },
  shape: ([x], a, ctx) => {
    const s = x!.shape;
    let drop: number[];
    if (a.axes === undefined) drop = s.flatMap((d, i) => (d === 1 ? [i] : []));
    else {
      drop = normAxes(intArrayAttr(a.axes, ctx, 'axes'), s.length, ctx, 'axes');
      for (const ax of drop)
        if (s[ax] !== 1)
          ctx.fail(
            'E_SHAPE',
            `cannot squeeze axis ${ax} of ${showShape(s)}: its size is ${s[ax]}${isStatic(s[ax]!) ? '' : ' (symbolic, not known to be 1)'}`,
            'size 1',
            String(s[ax]),
          );
    }
    return { dtype: x!.dtype, shape: s.filter((_d, i) => !drop.includes(i)) };
  },
  kernel: (tf, [x], _a, ctx) => tf.reshape(x!, ctx.outType.shape),
  host: copyHost,
  grad: (b, a) => {
    const x = a.inputs[0]!;
    return [isFloat(b, x) ? b.op('reshape', [a.dy], { shape: b.type(x).shape }) : null];
  },
  // Without `axes`, the instance's static 1s: the batch axis stays even where its size is 1.
  batch: (b, a) => {
    const x = a.inputs[0]!;
    const axes = a.attrs.axes === undefined ? b.type(x).shape.slice(1).flatMap((d, i) => (d === 1 ? [i] : [])) : (a.attrs.axes as number[]);
    return { value: b.op('squeeze', [x], { axes: axes.map(shiftAxis) }), batched: true };
  },
  fusion: 'view',
  cost: VIEW_COST,
});

// ---------------------------------------------------------------------------- transpose

function permOf(attrs: Attrs, rank: number, ctx: ShapeCtx): number[] {
  if (attrs.perm === undefined) return Array.from({ length: rank }, (_v, i) => rank - 1 - i);
  const perm = intArrayAttr(attrs.perm, ctx, 'perm');
  if (perm.length !== rank)
    ctx.fail('E_ATTR', `perm has ${perm.length} entries but x has rank ${rank}`, `a permutation of 0..${rank - 1}`, JSON.stringify(perm));
  const p = perm.map((v) => ctx.axis(v, rank));
  if (new Set(p).size !== rank) ctx.fail('E_ATTR', 'perm is not a permutation (an axis repeats)', `a permutation of 0..${rank - 1}`, JSON.stringify(perm));
  return p;
}

/** Normalised perm for gradient rules (attrs were validated by shape inference). */
function gradPerm(attrs: Attrs, rank: number): number[] {
  if (attrs.perm === undefined) return Array.from({ length: rank }, (_v, i) => rank - 1 - i);
  return (attrs.perm as number[]).map((v) => (v < 0 ? v + rank : v));
}

defineOp({
  name: 'transpose',
  family: 'shape',
  doc: 'permutes axes: out.shape[i] = x.shape[perm[i]]; `perm` defaults to reversing the axes',
  inputs: ['x'],
  attrs: { properties: { perm: INT_ARRAY } },
  shape: ([x], a, ctx) => {
    const p = permOf(a, x!.shape.length, ctx);
    return { dtype: x!.dtype, shape: p.map((i) => x!.shape[i]!) };
  },
  kernel: (tf, [x], a) => tf.transpose(x!, gradPerm(a, x!.rank)),
  host: ([x], out, a) => {
    const st = rowStrides(x!.shape);
    stridedRead(x!, 0, gradPerm(a, x!.shape.length).map((p) => st[p]!), out);
  },
  grad: (b, a) => {
    const x = a.inputs[0]!;
    if (!isFloat(b, x)) return [null];
    const p = gradPerm(a.attrs, b.type(x).shape.length);
    const inv: number[] = [];
    p.forEach((src, i) => (inv[src] = i));
    return [b.op('transpose', [a.dy], { perm: inv })];
  },
  batch: (b, a) => {
    const x = a.inputs[0]!;
    const p = gradPerm(a.attrs, b.type(x).shape.length - 1);
    return { value: b.op('transpose', [x], { perm: [0, ...p.map((v) => v + 1)] }), batched: true };
  },
  fusion: 'opaque',
  cost: streamingCost(0),
});

// ---------------------------------------------------------------------------- concat / stack / split_like

defineOp({
  name: 'concat',
  family: 'shape',
  doc: 'joins inputs along `axis`; all other dims must agree and dtypes must match. A symbolic concatenated axis must stay a single monomial (B and B give 2*B)',
  inputs: ['xs'],
  variadic: true,
  minInputs: 1,
  attrs: { properties: { axis: { type: 'integer' } }, required: ['axis'] },
  shape: (xs, a, ctx) => {
    const dtype = ctx.sameDtype(xs);
    const r = xs[0]!.shape.length;
    if (r === 0) ctx.fail('E_RANK', 'concat needs inputs of rank >= 1', 'rank >= 1', showShape(xs[0]!.shape));
    const ax = ctx.axis(intAttr(a.axis, ctx, 'axis'), r);
    const out = [...xs[0]!.shape];
    xs.slice(1).forEach((x, k) => {
      if (x.shape.length !== r)
        ctx.fail('E_RANK', `concat inputs must share a rank (input ${k + 1} differs from input 0)`, `rank ${r}`, showShape(x.shape));
      for (let i = 0; i < r; i++) {
        if (i === ax) {
          const sum = dimAdd(out[i]!, x.shape[i]!);
          if (sum === undefined)
            ctx.fail(
              'E_SHAPE',
              `the concatenated axis ${out[i]} + ${x.shape[i]} is not a single symbolic dim`,
              'static sizes, or symbolic sizes that differ only by a factor (B, 2*B)',
              xs.map((t) => showShape(t.shape)).join(', '),
            );
          out[i] = sum!;
        } else out[i] = ctx.unify(out[i]!, x.shape[i]!, `concat input ${k + 1}, axis ${i}`);
      }
    });
    return { dtype, shape: out };
  },
  kernel: (tf, xs, a) => (xs.length === 1 ? tf.clone(xs[0]!) : tf.concat(xs, a.axis as number)),
  host: (xs, out, a) => joinHost(xs, out, axisOf(a.axis as number, out.shape.length)),
  hostAtAnySize: true,
  grad: (b, a) =>
    a.inputs.map((x, index) =>
      isFloat(b, x) ? b.op('split_like', [a.dy, ...a.inputs], { axis: a.attrs.axis as number, index }) : null,
    ),
  batch: axisBatch(0),
  fusion: 'opaque',
  cost: streamingCost(0),
});

defineOp({
  name: 'split_like',
  family: 'shape',
  doc: 'piece `index` of x split along `axis` into consecutive parts sized like the `likes` (their values are unused); the adjoint of concat',
  inputs: ['x', 'likes'],
  variadic: true,
  minInputs: 2,
  attrs: { properties: { axis: { type: 'integer' }, index: { type: 'integer', minimum: 0 } }, required: ['axis', 'index'] },
  shape: ([x, ...likes], a, ctx) => {
    const r = x!.shape.length;
    const ax = ctx.axis(intAttr(a.axis, ctx, 'axis'), r);
    const index = intAttr(a.index, ctx, 'index');
    if (index < 0 || index >= likes.length)
      ctx.fail('E_ATTR', `index ${index} is out of range for ${likes.length} parts`, `0 <= index < ${likes.length}`, String(index));
    let total: Dim | undefined = 0;
    for (const l of likes) {
      if (l.shape.length !== r) ctx.fail('E_RANK', 'split_like parts must have the rank of x', `rank ${r}`, showShape(l.shape));
      total = total === undefined ? undefined : dimAdd(total, l.shape[ax]!);
    }
    if (total !== undefined && !dimEq(total, x!.shape[ax]!))
      ctx.fail('E_SHAPE', `the parts cover ${total} of axis ${ax} but x has ${x!.shape[ax]}`, String(x!.shape[ax]), String(total));
    const out = x!.shape.map((d, i) => (i === ax ? likes[index]!.shape[i]! : ctx.unify(d, likes[index]!.shape[i]!, `split_like axis ${i}`)));
    return { dtype: x!.dtype, shape: out };
  },
  kernel: (tf, [x, ...likes], a, ctx) => {
    const ax = (a.axis as number) < 0 ? (a.axis as number) + x!.rank : (a.axis as number);
    const begin = new Array<number>(x!.rank).fill(0);
    // Offsets come from the run-time part sizes, so symbolic graphs need no dim arithmetic here.
    for (let j = 0; j < (a.index as number); j++) begin[ax] += likes[j]!.shape[ax]!;
    return tf.slice(x!, begin, ctx.outType.shape);
  },
  host: ([x, ...likes], out, a) => {
    const ax = axisOf(a.axis as number, x!.shape.length);
    const st = rowStrides(x!.shape);
    let begin = 0;
    for (let j = 0; j < (a.index as number); j++) begin += likes[j]!.shape[ax]!;
    stridedRead(x!, begin * st[ax]!, st, out);
  },
  grad: (b, a) => {
    const [x, ...likes] = a.inputs;
    if (!isFloat(b, x!)) return a.inputs.map(() => null);
    const parts = likes.map((l, j) => (j === (a.attrs.index as number) ? a.dy : b.op('zeros_like', [l])));
    return [b.op('concat', parts, { axis: a.attrs.axis as number }), ...likes.map(() => null)];
  },
  batch: axisBatch(0),
  fusion: 'opaque',
  cost: copyCost(),
});

defineOp({
  name: 'stack',
  family: 'shape',
  doc: 'stacks equally shaped inputs along a new axis `axis` (in [-(rank+1), rank])',
  inputs: ['xs'],
  variadic: true,
  minInputs: 1,
  attrs: { properties: { axis: { type: 'integer' } } },
  shape: (xs, a, ctx) => {
    const dtype = ctx.sameDtype(xs);
    const r = xs[0]!.shape.length;
    const ax = ctx.axis(intAttr(a.axis, ctx, 'axis', 0), r + 1);
    const s = [...xs[0]!.shape];
    xs.slice(1).forEach((x, k) => {
      if (x.shape.length !== r) ctx.fail('E_RANK', `stack inputs must share a shape (input ${k + 1} differs in rank)`, showShape(s), showShape(x.shape));
      for (let i = 0; i < r; i++) s[i] = ctx.unify(s[i]!, x.shape[i]!, `stack input ${k + 1}, axis ${i}`);
    });
    s.splice(ax, 0, xs.length);
    return { dtype, shape: s };
  },
  kernel: (tf, xs, a) => tf.stack(xs, (a.axis as number | undefined) ?? 0),
  host: (xs, out, a) => joinHost(xs, out, axisOf((a.axis as number | undefined) ?? 0, out.shape.length)),
  hostAtAnySize: true,
  grad: (b, a) => {
    const r = b.type(a.inputs[0]!).shape.length;
    const raw = (a.attrs.axis as number | undefined) ?? 0;
    const ax = raw < 0 ? raw + r + 1 : raw;
    return a.inputs.map((x, i) => {
      if (!isFloat(b, x)) return null;
      const begin = new Array<number>(r + 1).fill(0);
      const size = new Array<number>(r + 1).fill(-1);
      begin[ax] = i;
      size[ax] = 1;
      return b.op('squeeze', [b.op('slice', [a.dy], { begin, size })], { axes: [ax] });
    });
  },
  batch: axisBatch(0),
  fusion: 'opaque',
  cost: streamingCost(0),
});

// ---------------------------------------------------------------------------- slice / pad_like

defineOp({
  name: 'slice',
  family: 'shape',
  doc: 'the block of x starting at `begin` with extent `size` per axis (-1 = to the end). A symbolic axis needs an explicit size or begin 0 with size -1',
  inputs: ['x'],
  attrs: { properties: { begin: INT_ARRAY, size: DIM_ARRAY }, required: ['begin', 'size'] },
  shape: ([x], a, ctx) => {
    const s = x!.shape;
    const begin = intArrayAttr(a.begin, ctx, 'begin');
    if (!Array.isArray(a.size)) return ctx.fail('E_ATTR', 'slice needs a `size` array', 'an array of dims', JSON.stringify(a.size));
    const size = a.size.map((d, i) => attrDim(d, ctx, `size[${i}]`, true));
    if (begin.length !== s.length || size.length !== s.length)
      ctx.fail(
        'E_ATTR',
        `begin and size need one entry per axis of x (rank ${s.length})`,
        `${s.length} entries each`,
        `begin ${JSON.stringify(begin)}, size ${JSON.stringify(a.size)}`,
      );
    checkBound(size, s, ctx, 'size');
    const out = s.map((d, i): Dim => {
      const b0 = begin[i]!;
      const sz = size[i]!;
      const range = `axis ${i}: begin ${b0}, size ${sz} on a dim of ${d}`;
      if (b0 < 0) ctx.fail('E_SHAPE', `slice begins before the start (${range})`, 'begin >= 0', String(b0));
      if (isStatic(d)) {
        if (b0 > d) ctx.fail('E_SHAPE', `slice begins past the end (${range})`, `begin <= ${d}`, String(b0));
        if (sz === -1) return d - b0;
        if (isStatic(sz) && b0 + sz > d)
          ctx.fail('E_SHAPE', `slice runs past the end (${range})`, `begin + size <= ${d}`, `${b0} + ${sz} = ${b0 + sz}`);
        return sz;
      }
      if (sz === -1) {
        if (b0 === 0) return d;
        return ctx.fail(
          'E_SHAPE',
          `cannot slice the symbolic dim ${d} from ${b0} to the end (${range}); give an explicit size`,
          'begin 0 or an explicit size',
          `begin ${b0}, size -1`,
        );
      }
      return sz;
    });
    return { dtype: x!.dtype, shape: out };
  },
  kernel: (tf, [x], a, ctx) => tf.slice(x!, a.begin as number[], ctx.outType.shape),
  hostAtAnySize: true,
  host: ([x], out, a) => {
    const st = rowStrides(x!.shape);
    const begin = a.begin as number[];
    let off = 0;
    for (let i = 0; i < st.length; i++) off += begin[i]! * st[i]!;
    stridedRead(x!, off, st, out);
  },
  grad: (b, a) => {
    const x = a.inputs[0]!;
    return [isFloat(b, x) ? b.op('pad_like', [a.dy, x], { begin: a.attrs.begin as number[] }) : null];
  },
  batch: (b, a) => ({
    value: b.op('slice', [a.inputs[0]!], { begin: [0, ...(a.attrs.begin as number[])], size: [-1, ...(a.attrs.size as Dim[])] }),
    batched: true,
  }),
  fusion: 'opaque',
  cost: copyCost(),
});

defineOp({
  name: 'pad_like',
  family: 'shape',
  doc: "places x at offset `begin` inside zeros shaped like `like` (its values are unused); the adjoint of slice",
  inputs: ['x', 'like'],
  attrs: { properties: { begin: INT_ARRAY }, required: ['begin'] },
  shape: ([x, like], a, ctx) => {
    const begin = intArrayAttr(a.begin, ctx, 'begin');
    const r = like!.shape.length;
    if (x!.shape.length !== r) ctx.fail('E_RANK', 'pad_like needs x and like of equal rank', `rank ${r}`, showShape(x!.shape));
    if (begin.length !== r) ctx.fail('E_ATTR', `begin needs one entry per axis (rank ${r})`, `${r} entries`, JSON.stringify(begin));
    x!.shape.forEach((d, i) => {
      const l = like!.shape[i]!;
      if (begin[i]! < 0) ctx.fail('E_SHAPE', `axis ${i}: begin ${begin[i]} is negative`, 'begin >= 0', String(begin[i]));
      if (isStatic(d) && isStatic(l) && begin[i]! + d > l)
        ctx.fail('E_SHAPE', `axis ${i}: x (size ${d}) at offset ${begin[i]} does not fit in ${l}`, `begin + size <= ${l}`, String(begin[i]! + d));
    });
    return { dtype: x!.dtype, shape: like!.shape };
  },
  kernel: (tf, [x, like], a) => {
    const begin = a.begin as number[];
    return tf.pad(x!, x!.shape.map((d, i): [number, number] => [begin[i]!, like!.shape[i]! - begin[i]! - d]));
  },
  host: ([x], out, a) => {
    out.data.fill(0);
    const st = rowStrides(out.shape);
    const begin = a.begin as number[];
    let off = 0;
    for (let i = 0; i < st.length; i++) off += begin[i]! * st[i]!;
    stridedMove(x!.data, 0, rowStrides(x!.shape), out.data, off, st, x!.shape);
  },
  grad: (b, a) => {
    const [x] = a.inputs as [string, string];
    return [isFloat(b, x) ? b.op('slice', [a.dy], { begin: a.attrs.begin as number[], size: b.type(x).shape }) : null, null];
  },
  batch: (b, a) => ({ value: b.op('pad_like', allBatched(b, a), { begin: [0, ...(a.attrs.begin as number[])] }), batched: true }),
  fusion: 'opaque',
  cost: (_i, out) => ({ flops: 0, bytes: 2 * bytesOf(out) }),
});

// ---------------------------------------------------------------------------- tile

defineOp({
  name: 'tile',
  family: 'shape',
  doc: 'repeats x `reps[i]` times along each axis i (reps has one entry >= 1 per axis)',
  inputs: ['x'],
  attrs: { properties: { reps: { type: 'array', items: { type: 'integer', minimum: 1 } } }, required: ['reps'] },
  shape: ([x], a, ctx) => {
    const reps = intArrayAttr(a.reps, ctx, 'reps');
    const s = x!.shape;
    if (reps.length !== s.length) ctx.fail('E_ATTR', `reps needs one entry per axis of x (rank ${s.length})`, `${s.length} entries`, JSON.stringify(reps));
    if (reps.some((r) => r < 1)) ctx.fail('E_ATTR', 'reps must be >= 1', 'integers >= 1', JSON.stringify(reps));
    return { dtype: x!.dtype, shape: s.map((d, i) => dimMul(d, reps[i]!)) };
  },
  kernel: (tf, [x], a) => tf.tile(x!, a.reps as number[]),
  // out viewed as [r0, d0, r1, d1, ...] reads x[i0, i1, ...] whatever the rep indices.
  host: ([x], out, a) => {
    const s = x!.shape;
    const reps = a.reps as number[];
    const st = rowStrides(s);
    const shape: number[] = [];
    const strides: number[] = [];
    for (let i = 0; i < s.length; i++) shape.push(reps[i]!, s[i]!), strides.push(0, st[i]!);
    stridedMove(x!.data, 0, strides, out.data, 0, rowStrides(shape), shape);
  },
  grad: (b, a) => {
    const x = a.inputs[0]!;
    if (!isFloat(b, x)) return [null];
    // dy viewed as [r0, d0, r1, d1, ...], with the rep axes moved first, sums down to x.
    const s = b.type(x).shape;
    const reps = a.attrs.reps as number[];
    const split = s.flatMap((d, i) => [reps[i]!, d]);
    const perm = [...s.map((_d, i) => 2 * i), ...s.map((_d, i) => 2 * i + 1)];
    const moved = b.op('transpose', [b.op('reshape', [a.dy], { shape: split })], { perm });
    return [b.op('sum_to', [moved, x])];
  },
  batch: (b, a) => ({ value: b.op('tile', [a.inputs[0]!], { reps: [1, ...(a.attrs.reps as number[])] }), batched: true }),
  fusion: 'opaque',
  cost: streamingCost(0),
});

// ---------------------------------------------------------------------------- gather / scatter_add / one_hot

defineOp({
  name: 'gather',
  family: 'shape',
  doc:
    'takes slices of x along `axis` (default 0) at int32 `indices`: out.shape = x.shape[:axis] + indices.shape + x.shape[axis+1:]; ' +
    'with `batch_dims` 1, x and indices share a leading batch axis and each batch entry gathers with its own indices (out.shape = x.shape[:axis] + indices.shape[1:] + x.shape[axis+1:])',
  inputs: ['x', 'indices'],
  attrs: { properties: { axis: { type: 'integer' }, batch_dims: { enum: [0, 1] } } },
  shape: ([x, idx], a, ctx) => {
    ctx.dtype(idx!, ['int32'], 'indices');
    const s = x!.shape;
    if (s.length === 0) ctx.fail('E_RANK', 'gather needs x of rank >= 1', 'rank >= 1', showShape(s));
    const ax = ctx.axis(intAttr(a.axis, ctx, 'axis', 0), s.length);
    const bd = (a.batch_dims as number | undefined) ?? 0;
    if (bd === 1) {
      if (ax < 1 || idx!.shape.length < 1)
        ctx.fail('E_ATTR', 'batch_dims 1 needs a leading batch axis on x and indices, and an axis after it', 'axis >= 1, indices of rank >= 1', `axis ${ax}, indices ${showShape(idx!.shape)}`);
      ctx.unify(s[0]!, idx!.shape[0]!, 'batch axis of x and indices');
    }
    return { dtype: x!.dtype, shape: [...s.slice(0, ax), ...idx!.shape.slice(bd), ...s.slice(ax + 1)] };
  },
  // tfjs-backend-wasm's GatherV2 reads the wrong rows with batchDims (4.22), so a batched gather
  // runs as one plain gather per batch entry.
  kernel: (tf, [x, idx], a, ctx) =>
    (a.batch_dims as number | undefined) === 1
      ? x!.shape[0] === 0
        ? tf.zeros(ctx.outType.shape, ctx.outType.dtype)
        : tf.tidy(() => {
          const ax = (a.axis as number | undefined) ?? 0;
          const xs = tf.unstack(x!);
          const is = tf.unstack(idx!);
          return tf.stack(xs.map((xb, b) => tf.gather(xb, is[b]!, (ax < 0 ? ax + x!.rank : ax) - 1)));
        })
      : tf.gather(x!, idx!, (a.axis as number | undefined) ?? 0),
  host: ([x, idx], out, a) => {
    const s = x!.shape;
    const ax = axisOf((a.axis as number | undefined) ?? 0, s.length);
    const bd = (a.batch_dims as number | undefined) ?? 0;
    const rows = s[ax]!;
    const batches = bd === 1 ? s[0]! : 1;
    const outer = prodOf(s, bd, ax);
    const inner = prodOf(s, ax + 1);
    const iv = idx!.data;
    const n = iv.length / batches;
    const xd = x!.data;
    const d = out.data;
    // As the reference (tfjs cpu) does: an out-of-range index is an error, not a zero row.
    for (let j = 0; j < iv.length; j++)
      if (!(iv[j]! >= 0 && iv[j]! < rows)) throw new RangeError(`gather: the index value ${iv[j]} is not in [0, ${rows - 1}]`);
    let o = 0;
    for (let q = 0; q < batches; q++)
      for (let p = q * outer; p < (q + 1) * outer; p++)
        for (let j = q * n; j < (q + 1) * n; j++)
          for (let e = (p * rows + iv[j]!) * inner, end = e + inner; e < end; e++) d[o++] = xd[e]!;
  },
  grad: (b, a) => {
    const [x, idx] = a.inputs as [string, string];
    if (!isFloat(b, x)) return [null, null];
    if (a.attrs.batch_dims === 1)
      throw new LoomError({
        code: 'E_UNKNOWN_OP',
        message: 'cannot differentiate through gather with batch_dims 1: it has no gradient rule',
        hint: 'batch_dims gathers come from vmap, which runs after autodiff: differentiate the unbatched graph, then vmap it',
      });
    const r = b.type(x).shape.length;
    const raw = (a.attrs.axis as number | undefined) ?? 0;
    return [b.op('scatter_add', [a.dy, idx, x], { axis: raw < 0 ? raw + r : raw }), null];
  },
  batch: (b, a) => {
    const [x, idx] = a.inputs as [string, string];
    const [xb, ib] = a.batched;
    const raw = (a.attrs.axis as number | undefined) ?? 0;
    if (xb && !ib) return { value: b.op('gather', [x, idx], { axis: shiftAxis(raw) }), batched: true };
    const r = b.type(x).shape.length - (xb ? 1 : 0);
    const ax = raw < 0 ? raw + r : raw;
    if (!xb) {
      // The indices' batch axis lands at `axis` of the result: move it to the front.
      const out = b.op('gather', [x, idx], { axis: ax });
      if (ax === 0) return { value: out, batched: true };
      const rank = b.type(out).shape.length;
      const perm = [ax, ...[...Array(rank).keys()].filter((i) => i !== ax)];
      return { value: b.op('transpose', [out], { perm }), batched: true };
    }
    return { value: b.op('gather', [x, idx], { axis: ax + 1, batch_dims: 1 }), batched: true };
  },
  fusion: 'opaque',
  cost: (inputs, out) => ({ flops: 0, bytes: bytesOf(inputs[1]!) + 2 * bytesOf(out) }),
});

defineOp({
  name: 'scatter_add',
  readsHost: true,
  family: 'shape',
  doc: "sums `updates` into zeros shaped like `like` at int32 `indices` along `axis` (repeated indices accumulate; values of `like` unused); the adjoint of gather",
  inputs: ['updates', 'indices', 'like'],
  attrs: { properties: { axis: { type: 'integer' } } },
  shape: ([u, idx, like], a, ctx) => {
    ctx.dtype(idx!, ['int32'], 'indices');
    const dtype = ctx.dtype(u!, ['float32', 'int32'], 'updates');
    const s = like!.shape;
    if (s.length === 0) ctx.fail('E_RANK', 'scatter_add needs `like` of rank >= 1', 'rank >= 1', showShape(s));
    const ax = ctx.axis(intAttr(a.axis, ctx, 'axis', 0), s.length);
    const want = [...s.slice(0, ax), ...idx!.shape, ...s.slice(ax + 1)];
    if (u!.shape.length !== want.length)
      ctx.fail('E_SHAPE', 'updates must be shaped like the gather output', showShape(want), showShape(u!.shape));
    want.forEach((d, i) => ctx.unify(d, u!.shape[i]!, `updates axis ${i}`));
    return { dtype, shape: s };
  },
  // A host loop: tfjs's unsortedSegmentSum is missing on wasm and slow on cpu. customGrad keeps
  // the kernel differentiable by tfjs (the reference interpreter's autodiff): d updates = gather(dy).
  kernel: (tf, [u, idx, like], a) => {
    const s = like!.shape;
    const ax = (a.axis as number | undefined) ?? 0;
    const axis = ax < 0 ? ax + s.length : ax;
    const pre = sizeOf(s.slice(0, axis));
    const post = sizeOf(s.slice(axis + 1));
    const rows = s[axis]!;
    const n = idx!.size;
    const scatter = tf.customGrad((...args: (Tensor | tfType.GradSaveFunc)[]) => {
      const upd = args[0] as Tensor;
      const uv = upd.dataSync();
      const iv = idx!.dataSync();
      const out = upd.dtype === 'int32' ? new Int32Array(sizeOf(s)) : new Float32Array(sizeOf(s));
      for (let p = 0; p < pre; p++)
        for (let j = 0; j < n; j++) {
          const k = iv[j]!;
          if (k < 0 || k >= rows) continue; // out-of-range indices contribute nothing, as in tf.unsortedSegmentSum
          const src = (p * n + j) * post;
          const dst = (p * rows + k) * post;
          for (let q = 0; q < post; q++) out[dst + q] += uv[src + q]!;
        }
      return {
        value: tf.tensor(out, s, upd.dtype),
        gradFunc: (dy: Tensor) => tf.reshape(tf.gather(dy, idx!, axis), upd.shape),
      };
    });
    return scatter(u!) as Tensor;
  },
  host: ([u, idx], out, a) => {
    const s = out.shape;
    const axis = axisOf((a.axis as number | undefined) ?? 0, s.length);
    const pre = prodOf(s, 0, axis);
    const post = prodOf(s, axis + 1);
    const rows = s[axis]!;
    const uv = u!.data;
    const iv = idx!.data;
    const n = iv.length;
    const d = out.data;
    d.fill(0);
    for (let p = 0; p < pre; p++)
      for (let j = 0; j < n; j++) {
        const k = iv[j]!;
        if (k < 0 || k >= rows) continue;
        const src = (p * n + j) * post;
        const dst = (p * rows + k) * post;
        for (let q = 0; q < post; q++) d[dst + q] = d[dst + q]! + uv[src + q]!;
      }
  },
  grad: (b, a) => {
    const [u, idx] = a.inputs as [string, string, string];
    return [isFloat(b, u) ? b.op('gather', [a.dy, idx], { axis: (a.attrs.axis as number | undefined) ?? 0 }) : null, null, null];
  },
  // Batched indices scatter per instance, which no single library call does: fall back.
  batch: (b, a) => {
    if (a.batched[1]) return null;
    const [u, idx, like] = a.inputs as [string, string, string];
    const raw = (a.attrs.axis as number | undefined) ?? 0;
    const updates = a.batched[0] ? u : b.materialize(u);
    const target = a.batched[2] ? like : b.materialize(like);
    return { value: b.op('scatter_add', [updates, idx, target], { axis: shiftAxis(raw) }), batched: true };
  },
  fusion: 'opaque',
  cost: (inputs, out) => ({
    flops: sizeOf(inputs[0]!.shape),
    bytes: bytesOf(inputs[0]!) + bytesOf(inputs[1]!) + 2 * bytesOf(out),
  }),
});

defineOp({
  name: 'one_hot',
  family: 'shape',
  doc: 'float32 one-hot encoding of int32 indices: out[..., k] = indices[...] == k ? on : off, with a new last axis of size `depth`; out-of-range indices give all `off`',
  inputs: ['indices'],
  attrs: {
    properties: { depth: { type: 'integer', minimum: 1 }, on: { type: 'number' }, off: { type: 'number' } },
    required: ['depth'],
  },
  shape: ([idx], a, ctx) => {
    ctx.dtype(idx!, ['int32'], 'indices');
    const depth = intAttr(a.depth, ctx, 'depth');
    if (depth < 1) ctx.fail('E_ATTR', 'one_hot depth must be >= 1', 'an integer >= 1', String(depth));
    return { dtype: 'float32', shape: [...idx!.shape, depth] };
  },
  kernel: (tf, [idx], a) =>
    tf.oneHot(idx!, a.depth as number, (a.on as number | undefined) ?? 1, (a.off as number | undefined) ?? 0, 'float32'),
  host: ([idx], out, a) => {
    const depth = a.depth as number;
    const on = (a.on as number | undefined) ?? 1;
    const off = (a.off as number | undefined) ?? 0;
    const iv = idx!.data;
    const d = out.data;
    d.fill(off);
    for (let i = 0; i < iv.length; i++) {
      const k = iv[i]!;
      if (k >= 0 && k < depth) d[i * depth + k] = on;
    }
  },
  grad: () => [null],
  batch: leadingBatch,
  fusion: 'opaque',
  cost: (inputs, out) => ({ flops: 0, bytes: bytesOf(inputs[0]!) + bytesOf(out) }),
});

// ---------------------------------------------------------------------------- broadcasting

defineOp({
  name: 'broadcast_to',
  family: 'shape',
  doc: 'broadcasts x to `shape` (NumPy rules; integers or symbolic dims)',
  inputs: ['x'],
  attrs: { properties: { shape: DIM_ARRAY }, required: ['shape'] },
  shape: ([x], a, ctx) => {
    if (!Array.isArray(a.shape)) return ctx.fail('E_ATTR', 'broadcast_to needs a `shape` array', 'an array of dims', JSON.stringify(a.shape));
    const target = a.shape.map((d, i) => attrDim(d, ctx, `shape[${i}]`));
    checkBound(target, x!.shape, ctx, 'shape');
    if (!broadcastsTo(x!.shape, target))
      ctx.fail('E_SHAPE', `cannot broadcast ${showShape(x!.shape)} to ${showShape(target)}`, `a shape that broadcasts to ${showShape(target)}`, showShape(x!.shape));
    return { dtype: x!.dtype, shape: target };
  },
  kernel: (tf, [x], _a, ctx) => tf.broadcastTo(x!, ctx.outType.shape),
  host: ([x], out) => stridedRead(x!, 0, broadcastStrides(x!.shape, out.shape), out),
  grad: (b, a) => {
    const x = a.inputs[0]!;
    return [isFloat(b, x) ? b.op('sum_to', [a.dy, x]) : null];
  },
  batch: (b, a) => {
    const shape = a.attrs.shape as Dim[];
    return { value: b.op('broadcast_to', [b.padRank(a.inputs[0]!, shape.length)], { shape: [b.size, ...shape] }), batched: true };
  },
  fusion: 'elementwise',
  scalar: ([x]) => x!,
  cost: streamingCost(0),
});

defineOp({
  name: 'broadcast_like',
  family: 'shape',
  doc: "broadcasts x to the shape of `like` (NumPy rules; like's values are unused)",
  inputs: ['x', 'like'],
  attrs: { properties: {} },
  shape: ([x, like], _a, ctx) => {
    if (!broadcastsTo(x!.shape, like!.shape))
      ctx.fail('E_SHAPE', `cannot broadcast ${showShape(x!.shape)} to ${showShape(like!.shape)}`, `a shape that broadcasts to ${showShape(like!.shape)}`, showShape(x!.shape));
    return { dtype: x!.dtype, shape: like!.shape.map(canonDim) };
  },
  kernel: (tf, [x, like]) => tf.broadcastTo(x!, like!.shape),
  host: ([x], out) => stridedRead(x!, 0, broadcastStrides(x!.shape, out.shape), out),
  grad: (b, a) => {
    const x = a.inputs[0]!;
    return [isFloat(b, x) ? b.op('sum_to', [a.dy, x]) : null, null];
  },
  batch: (b, a) => {
    const [x, like] = a.inputs as [string, string];
    const rank = a.outType.shape.length;
    const xx = a.batched[0] ? b.padRank(x, rank) : x;
    if (a.batched[1]) return { value: b.op('broadcast_like', [xx, like]), batched: true };
    return { value: b.op('broadcast_to', [xx], { shape: [b.size, ...b.type(like).shape] }), batched: true };
  },
  fusion: 'elementwise',
  scalar: ([x]) => x!,
  cost: (inputs, out) => ({ flops: 0, bytes: bytesOf(inputs[0]!) + bytesOf(out) }),
});

/** The axes sum_to reduces: those a broadcast from `to` up to `shape` expanded (the leading extra ones and the 1s). */
function sumToAxes(shape: readonly number[], to: readonly number[]): number[] {
  const lead = shape.length - to.length;
  return shape.flatMap((d, i) => (i < lead || (to[i - lead] === 1 && d !== 1) ? [i] : []));
}

defineOp({
  name: 'sum_to',
  family: 'shape',
  doc: "sums x over its broadcast axes down to the shape of `like` (the inverse of broadcasting; like's values are unused)",
  inputs: ['x', 'like'],
  attrs: { properties: {} },
  shape: ([x, like], _a, ctx) => {
    const dtype = ctx.dtype(x!, ['float32'], 'x');
    if (!broadcastsTo(like!.shape, x!.shape))
      ctx.fail(
        'E_SHAPE',
        `cannot sum ${showShape(x!.shape)} down to ${showShape(like!.shape)}: the target does not broadcast to it`,
        `a target shape that broadcasts to ${showShape(x!.shape)}`,
        showShape(like!.shape),
      );
    return { dtype, shape: like!.shape.map(canonDim) };
  },
  kernel: (tf, [x, like]) =>
    tf.tidy(() => {
      // Axes come from the run-time shapes, so one compiled graph serves every binding of B, T.
      const axes = sumToAxes(x!.shape, like!.shape);
      const s = axes.length > 0 ? tf.sum(x!, axes) : x!;
      return tf.reshape(s, like!.shape);
    }),
  // Per output element, the sum reduction's host loop over the broadcast axes (row-major, as tfjs's cpu sum).
  host: ([x], out) => {
    const { outer, inner } = reduceLayout(x!.shape, sumToAxes(x!.shape, out.shape));
    for (let o = 0; o < outer.length; o++) out.data[o] = hostSum(x!.data, outer[o]!, inner);
  },
  grad: (b, a) => [b.op('broadcast_like', [a.dy, a.inputs[0]!]), null],
  // The target gets size-1 axes after the batch axis up to x's rank, so that sum_to's own
  // leading-axes rule never sums over the batch axis; the result is reshaped back.
  batch: (b, a) => {
    const [x, like] = a.inputs as [string, string];
    const xx = a.batched[0] ? x : b.materialize(x);
    const rank = b.type(xx).shape.length - 1;
    const target = b.padRank(a.batched[1] ? like : b.materialize(like), rank);
    const summed = b.op('sum_to', [xx, target]);
    return { value: b.op('reshape', [summed], { shape: [b.size, ...a.outType.shape] }), batched: true };
  },
  fusion: 'reduction',
  reducer: {
    op: 'sum',
    identity: 0,
    combine: (a, x) => kir.add(a, x),
    axes: (inShape, out) => sumToAxes(inShape, out),
    dataInputs: [0],
  },
  cost: (inputs, out) => ({ flops: sizeOf(inputs[0]!.shape), bytes: bytesOf(inputs[0]!) + bytesOf(out) }),
});

