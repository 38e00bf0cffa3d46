/**
 * Neural-net and policy-distribution ops: softmax and log_softmax over an axis, categorical
 * log-probabilities and entropy over the last axis (logits may hold -inf for masked actions),
 * and the diagonal-Gaussian log density used by continuous-action policies.
 */
import { axisBatch, leadingBatch } from './batching.ts';
import type { DType, TensorType } from '../ir.ts';
import {
  broadcastStrides,
  bytesOf,
  defineOp,
  sizeOf,
  streamingCost,
  type ConcreteType,
  type Cost,
  type HostArray,
  type HostTensor,
  type ShapeCtx,
  type Tensor,
} from './registry.ts';
import { kir } from '../codegen/kir.ts';
import { axisLines, hostExtremum } from './reduce.ts';
import type * as tfType from '@tensorflow/tfjs';

type TF = typeof tfType;
const FLOAT: readonly DType[] = ['float32'];
/** 0.5 * log(2 * pi). */
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** Cost of a pass over the first input with `flopsPerElem` per element, writing the output once. */
function overFirst(flopsPerElem: number) {
  return (inputs: ConcreteType[], out: ConcreteType): Cost => ({
    flops: flopsPerElem * sizeOf(inputs[0]!.shape),
    bytes: inputs.reduce((s, t) => s + bytesOf(t), 0) + bytesOf(out),
  });
}

/** Applies a last-axis kernel along any axis by swapping that axis with the last one. */
function alongAxis(tf: TF, x: Tensor, axis: number, f: (x: Tensor) => Tensor): Tensor {
  const rank = x.rank;
  const ax = axis < 0 ? axis + rank : axis;
  if (ax === rank - 1) return f(x);
  const perm = [...Array(rank).keys()];
  perm[ax] = rank - 1;
  perm[rank - 1] = ax;
  // A swap is its own inverse.
  return tf.tidy(() => tf.transpose(f(tf.transpose(x, perm)), perm));
}

/**
 * Host softmax / log_softmax along an axis, the tfjs way: m = max (NaN-propagating), e = exp(x - m),
 * then e / sum(e) or (x - m) - log(sum(e)). A line of all -inf (or with NaN or +inf) gives NaN.
 */
function hostSoftmax([x]: readonly HostTensor[], out: HostTensor, axis: number, log: boolean): void {
  const { outer, size, inner } = axisLines(x!.shape, axis);
  const xs = x!.data;
  const ys = out.data;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      const base = o * size * inner + i;
      const m = hostExtremum(true, xs, base, null, size, inner);
      let s = 0;
      for (let j = 0; j < size; j++) s += Math.exp(xs[base + j * inner]! - m);
      if (log) {
        const ls = Math.log(s);
        for (let j = 0; j < size; j++) ys[base + j * inner] = xs[base + j * inner]! - m - ls;
      } else for (let j = 0; j < size; j++) ys[base + j * inner] = Math.exp(xs[base + j * inner]! - m) / s;
    }
}

/** max and log(sum(exp(x - max))) of row r of row-major logits with K columns, for log_softmax = x - m - ls. */
function rowLse(xs: HostArray, r: number, k: number): { m: number; ls: number } {
  const base = r * k;
  const m = hostExtremum(true, xs, base, null, k);
  let s = 0;
  for (let j = 0; j < k; j++) s += Math.exp(xs[base + j]! - m);
  return { m, ls: Math.log(s) };
}

function axisShape([x]: TensorType[], axis: number, name: string, ctx: ShapeCtx): TensorType {
  ctx.dtype(x!, FLOAT, 'x');
  if (x!.shape.length === 0) ctx.fail('E_RANK', `${name} needs a tensor of rank >= 1`, 'rank >= 1', 'a scalar');
  ctx.axis(axis, x!.shape.length);
  return { dtype: 'float32', shape: x!.shape };
}

defineOp({
  name: 'softmax',
  family: 'nn',
  doc: 'exp(x) / sum(exp(x)) along `axis` (default -1), computed stably',
  inputs: ['x'],
  attrs: { properties: { axis: { type: 'integer' } } },
  shape: (ins, a, ctx) => axisShape(ins, (a.axis as number | undefined) ?? -1, 'softmax', ctx),
  kernel: (tf, [x], a) => alongAxis(tf, x!, (a.axis as number | undefined) ?? -1, (v) => tf.softmax(v)),
  host: (ins, out, a) => hostSoftmax(ins, out, (a.axis as number | undefined) ?? -1, false),
  grad: (b, a) => {
    const y = a.output;
    const s = b.op('sum', [b.op('mul', [a.dy, y])], { axes: (a.attrs.axis as number | undefined) ?? -1, keepdims: true });
    return [b.op('mul', [y, b.op('sub', [a.dy, s])])];
  },
  batch: axisBatch(-1),
  fusion: 'reduction',
  cost: overFirst(10),
});

defineOp({
  name: 'log_softmax',
  family: 'nn',
  doc: 'x - logsumexp(x) along `axis` (default -1), computed stably',
  inputs: ['x'],
  attrs: { properties: { axis: { type: 'integer' } } },
  shape: (ins, a, ctx) => axisShape(ins, (a.axis as number | undefined) ?? -1, 'log_softmax', ctx),
  kernel: (tf, [x], a) => alongAxis(tf, x!, (a.axis as number | undefined) ?? -1, (v) => tf.logSoftmax(v)),
  host: (ins, out, a) => hostSoftmax(ins, out, (a.axis as number | undefined) ?? -1, true),
  grad: (b, a) => {
    const s = b.op('sum', [a.dy], { axes: (a.attrs.axis as number | undefined) ?? -1, keepdims: true });
    return [b.op('sub', [a.dy, b.op('mul', [b.op('exp', [a.output]), s])])];
  },
  batch: axisBatch(-1),
  fusion: 'reduction',
  cost: overFirst(10),
});

// ---------------------------------------------------------------------------- categorical

/** Checks logits [..., K] float32 against actions int32 [...]; returns the unified batch dims. */
function categoricalShape(logits: TensorType, actions: TensorType, ctx: ShapeCtx): TensorType['shape'] {
  ctx.dtype(logits, FLOAT, 'logits');
  ctx.dtype(actions, ['int32'], 'actions');
  const r = logits.shape.length;
  if (r === 0) ctx.fail('E_RANK', 'logits need a last axis of categories', 'rank >= 1 ([..., K])', 'a scalar');
  if (actions.shape.length !== r - 1)
    ctx.fail('E_RANK', 'actions must have the shape of logits without its last axis', `rank ${r - 1}`, `rank ${actions.shape.length}`);
  return actions.shape.map((d, i) => ctx.unify(logits.shape[i]!, d, `actions axis ${i} vs logits axis ${i}`));
}

/** Sums `v` over the last axis, treating positions where `keep` is false as 0 (so 0 * -inf never appears). */
function maskedLastSum(tf: TF, keep: Tensor, v: Tensor): Tensor {
  return tf.sum(tf.where(keep, v, tf.zerosLike(v)), -1);
}

defineOp({
  name: 'categorical_log_prob',
  family: 'nn',
  doc: 'log_softmax(logits)[..., actions]: log-probability of int32 actions [...] under logits [..., K]',
  inputs: ['logits', 'actions'],
  attrs: { properties: {} },
  shape: ([l, a], _a, ctx) => ({ dtype: 'float32', shape: categoricalShape(l!, a!, ctx) }),
  kernel: (tf, [logits, actions]) =>
    tf.tidy(() => {
      const k = logits!.shape[logits!.rank - 1]!;
      const hot = tf.cast(tf.oneHot(actions!, k), 'bool');
      return maskedLastSum(tf, hot, tf.logSoftmax(logits!));
    }),
  host: ([logits, actions], out) => {
    const k = logits!.shape[logits!.shape.length - 1]!;
    const xs = logits!.data;
    const as = actions!.data;
    const ys = out.data;
    for (let r = 0; r < ys.length; r++) {
      const act = as[r]!;
      // An out-of-range action selects nothing, so the kernel's masked sum is 0.
      if (act < 0 || act >= k) ys[r] = 0;
      else {
        const { m, ls } = rowLse(xs, r, k);
        ys[r] = xs[r * k + act]! - m - ls;
      }
    }
  },
  grad: (b, a) => {
    const [logits, actions] = a.inputs as [string, string];
    const hot = b.op('categorical_one_hot', [actions, logits]);
    const p = b.op('softmax', [logits], { axis: -1 });
    const dyk = b.op('expand_dims', [a.dy], { axis: b.type(a.dy).shape.length });
    return [b.op('mul', [b.op('sub', [hot, p]), dyk]), null];
  },
  batch: leadingBatch,
  fusion: 'reduction',
  cost: overFirst(12),
});

defineOp({
  name: 'categorical_one_hot',
  family: 'nn',
  doc: 'float32 one-hot rows [..., K] of int32 actions [...], with K taken from logits [..., K] (so it may be symbolic); out-of-range actions give a zero row',
  inputs: ['actions', 'logits'],
  attrs: { properties: {} },
  shape: ([a, l], _a, ctx) => {
    const batch = categoricalShape(l!, a!, ctx);
    return { dtype: 'float32', shape: [...batch, l!.shape[l!.shape.length - 1]!] };
  },
  kernel: (tf, [actions, logits]) => tf.tidy(() => tf.cast(tf.oneHot(actions!, logits!.shape[logits!.rank - 1]!), 'float32')),
  host: ([actions], out) => {
    const k = out.shape[out.shape.length - 1]!;
    const as = actions!.data;
    const ys = out.data;
    ys.fill(0);
    for (let r = 0; r < as.length; r++) {
      const act = as[r]!;
      if (act >= 0 && act < k) ys[r * k + act] = 1;
    }
  },
  grad: () => [null, null],
  batch: leadingBatch,
  fusion: 'opaque',
  cost: (_i, out) => ({ flops: 0, bytes: bytesOf(out) }),
});

defineOp({
  name: 'categorical_entropy',
  family: 'nn',
  doc: '-sum(p * log p) over the last axis of logits [..., K], p = softmax(logits); masked (-inf) logits contribute 0',
  inputs: ['logits'],
  attrs: { properties: {} },
  shape: ([l], _a, ctx) => {
    ctx.dtype(l!, FLOAT, 'logits');
    if (l!.shape.length === 0) ctx.fail('E_RANK', 'logits need a last axis of categories', 'rank >= 1 ([..., K])', 'a scalar');
    return { dtype: 'float32', shape: l!.shape.slice(0, -1) };
  },
  kernel: (tf, [logits]) =>
    tf.tidy(() => {
      const ls = tf.logSoftmax(logits!);
      const p = tf.exp(ls);
      // Masked (-inf) logits have a non-finite log-probability. isFinite, unlike greater, has a
      // tfjs gradient, so tf.grads can differentiate this kernel.
      return tf.neg(maskedLastSum(tf, tf.isFinite(ls), tf.mul(p, ls)));
    }),
  host: ([logits], out) => {
    const k = logits!.shape[logits!.shape.length - 1]!;
    const xs = logits!.data;
    const ys = out.data;
    for (let r = 0; r < ys.length; r++) {
      const { m, ls } = rowLse(xs, r, k);
      let acc = 0;
      for (let j = 0; j < k; j++) {
        const l = xs[r * k + j]! - m - ls;
        // Non-finite log-probabilities (masked logits; every entry of a NaN row) add 0, as in the kernel.
        if (Number.isFinite(l)) acc += Math.exp(l) * l;
      }
      ys[r] = -acc;
    }
  },
  grad: (b, a) => {
    // dH/dx_j = -p_j (log p_j + H); where p_j = 0 (masked) the limit is 0.
    const logits = a.inputs[0]!;
    const ls = b.op('log_softmax', [logits], { axis: -1 });
    const p = b.op('exp', [ls]);
    const r = b.type(a.output).shape.length;
    const h = b.op('expand_dims', [a.output], { axis: r });
    const dyk = b.op('expand_dims', [a.dy], { axis: r });
    const live = b.op('greater', [p, b.constant(0, 'float32')]);
    const safeLs = b.op('where', [live, ls, b.op('zeros_like', [ls])]);
    return [b.op('neg', [b.op('mul', [b.op('mul', [p, b.op('add', [safeLs, h])]), dyk])])];
  },
  batch: leadingBatch,
  fusion: 'reduction',
  cost: overFirst(14),
});

// ---------------------------------------------------------------------------- gaussian

defineOp({
  name: 'normal_log_prob',
  family: 'nn',
  doc: 'log N(x; mean, exp(log_std)^2) elementwise: -(x-mean)^2 / (2 exp(2 log_std)) - log_std - log(2 pi)/2 (NumPy broadcasting)',
  inputs: ['x', 'mean', 'log_std'],
  attrs: { properties: {} },
  shape: ([x, m, s], _a, ctx) => {
    ctx.dtype(x!, FLOAT, 'x');
    ctx.dtype(m!, FLOAT, 'mean');
    ctx.dtype(s!, FLOAT, 'log_std');
    return { dtype: 'float32', shape: ctx.broadcast(x!.shape, m!.shape, s!.shape) };
  },
  kernel: (tf, [x, m, s]) =>
    tf.tidy(() => {
      const d = tf.sub(x!, m!);
      const quad = tf.div(tf.square(d), tf.mul(tf.exp(tf.mul(s!, 2)), 2));
      return tf.sub(tf.sub(tf.neg(quad), s!), HALF_LOG_2PI);
    }),
  host: ([x, m, s], out) => {
    const shape = out.shape;
    const r = shape.length;
    const sx = broadcastStrides(x!.shape, shape);
    const sm = broadcastStrides(m!.shape, shape);
    const ss = broadcastStrides(s!.shape, shape);
    const xs = x!.data;
    const ms = m!.data;
    const ls = s!.data;
    const ys = out.data;
    const idx = new Array<number>(r).fill(0);
    let ox = 0;
    let om = 0;
    let os = 0;
    for (let i = 0; i < ys.length; i++) {
      const d = xs[ox]! - ms[om]!;
      const lsd = ls[os]!;
      ys[i] = -((d * d) / (Math.exp(2 * lsd) * 2)) - lsd - HALF_LOG_2PI;
      // Odometer step over the output index, last axis fastest.
      for (let a = r - 1; a >= 0; a--) {
        ox += sx[a]!;
        om += sm[a]!;
        os += ss[a]!;
        if (++idx[a]! < shape[a]!) break;
        ox -= sx[a]! * shape[a]!;
        om -= sm[a]! * shape[a]!;
        os -= ss[a]! * shape[a]!;
        idx[a] = 0;
      }
    }
  },
  grad: (b, a) => {
    // With z = (x - mean) / sigma: d/dx = -z/sigma, d/dmean = z/sigma, d/dlog_std = z^2 - 1.
    const [x, m, s] = a.inputs as [string, string, string];
    const d = b.op('sub', [x, m]);
    const v = b.op('exp', [b.op('mul', [s, b.constant(2, 'float32')])]);
    const gm = b.op('mul', [a.dy, b.op('div', [d, v])]);
    const gs = b.op('mul', [a.dy, b.op('sub', [b.op('div', [b.op('square', [d]), v]), b.constant(1, 'float32')])]);
    return [b.op('sum_to', [b.op('neg', [gm]), x]), b.op('sum_to', [gm, m]), b.op('sum_to', [gs, s])];
  },
  fusion: 'elementwise',
  scalar: ([x, m, s]) => {
    const d = kir.sub(x!, m!);
    return kir.sub(kir.sub(kir.div(kir.neg(kir.mul(d, d)), kir.mul(kir.c(2), kir.exp(kir.mul(kir.c(2), s!)))), s!), kir.c(HALF_LOG_2PI));
  },
  cost: streamingCost(12),
});
