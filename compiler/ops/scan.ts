/**
 * Linear scans along the leading (time) axis: the recurrences behind GAE, discounted returns and
 * eligibility traces, and the adjoints of each other.
 *   reverse_linear_scan(a, c, init): x_t = a_t + c_t * x_{t+1}, x_T = init
 *   linear_scan(a, c, init):         x_t = a_t + c_t * x_{t-1}, x_{-1} = init
 *   time_shift(x, fill){offset}:     y_t = x_{t+offset} where in range, else fill (offset +-1)
 * The reference kernels are host loops (T is small in RL rollouts); a fused target may lower
 * them to a sequential kernel per column.
 */
import { allBatched } from './batching.ts';
import { showType, type DType, type TensorType } from '../ir.ts';
import { bytesOf, defineOp, sizeOf, type ConcreteType, type BatchArgs, type BatchBuilder, type BatchResult, type GradBuilder, type ShapeCtx, type Tensor } from './registry.ts';
import type * as tfType from '@tensorflow/tfjs';

type TF = typeof tfType;
const FLOAT: readonly DType[] = ['float32'];

/** a, c: [T, ...rest]; init: [...rest]. c must match a exactly (no broadcasting: the time axis is explicit). */
function scanShape([a, c, init]: TensorType[], ctx: ShapeCtx): TensorType {
  ctx.dtype(a!, FLOAT, 'a');
  ctx.dtype(c!, FLOAT, 'c');
  ctx.dtype(init!, FLOAT, 'init');
  if (a!.shape.length < 1) ctx.fail('E_RANK', 'a scan needs a time axis: a must have rank >= 1', 'a: [T, ...]', showType(a!));
  if (c!.shape.length !== a!.shape.length) ctx.fail('E_RANK', 'c must have the same shape as a', showType(a!), showType(c!));
  const shape = a!.shape.map((d, i) => ctx.unify(d, c!.shape[i]!, `axis ${i} of a and c`));
  if (init!.shape.length !== shape.length - 1)
    ctx.fail('E_RANK', 'init must have the shape of one time step of a (a.shape without its first axis)', `[${shape.slice(1).join(', ')}]`, showType(init!));
  init!.shape.forEach((d, i) => ctx.unify(shape[i + 1]!, d, `axis ${i} of init and axis ${i + 1} of a`));
  return { dtype: 'float32', shape };
}

function scanKernel(tf: TF, [a, c, init]: Tensor[], reverse: boolean): Tensor {
  const av = a!.dataSync();
  const cv = c!.dataSync();
  const iv = init!.dataSync();
  const T = a!.shape[0]!;
  const W = T === 0 ? iv.length : av.length / T;
  const out = new Float32Array(av.length);
  for (let j = 0; j < W; j++) {
    let x = iv[j]!;
    for (let s = 0; s < T; s++) {
      const t = reverse ? T - 1 - s : s;
      // Math.fround keeps each step in float32, as a float32 device kernel would.
      x = Math.fround(av[t * W + j]! + Math.fround(cv[t * W + j]! * x));
      out[t * W + j] = x;
    }
  }
  return tf.tensor(out, a!.shape, 'float32');
}

const scanCost = (inputs: ConcreteType[], out: ConcreteType) => ({
  flops: 2 * sizeOf(out.shape),
  bytes: inputs.reduce((s, t) => s + bytesOf(t), 0) + bytesOf(out),
});

/** The edge row (offset +1: the last, -1: the first) of v [T, ...], as [...]: v minus v with that row zeroed. */
function edgeRow(b: GradBuilder, v: string, zeros: string, offset: 1 | -1): string {
  const inner = b.op('time_shift', [v, zeros], { offset: -offset });
  const back = b.op('time_shift', [inner, zeros], { offset });
  return b.op('sum', [b.op('sub', [v, back])], { axes: 0 });
}

/**
 * vmap: the time axis must stay first, so batched time-major operands [size, T, ...] run as
 * [T, size, ...] (the batch becomes one more column) and the result moves back.
 */
function timeMajorBatch(b: BatchBuilder, a: BatchArgs): BatchResult {
  const rank = a.outType.shape.length + 1;
  const swap = (v: string) => b.op('transpose', [v], { perm: [1, 0, ...[...Array(rank).keys()].slice(2)] });
  const ins = allBatched(b, a).map((v) => (b.type(v).shape.length === rank ? swap(v) : v));
  return { value: swap(b.op(a.op, ins, a.attrs)), batched: true };
}

defineOp({
  name: 'reverse_linear_scan',
  readsHost: true,
  family: 'scan',
  doc: 'x_t = a_t + c_t * x_{t+1} backwards over the leading axis, with x_T = init (a, c: [T, ...], init: [...]); GAE is a = delta, c = gamma*lambda*(1 - done)',
  inputs: ['a', 'c', 'init'],
  attrs: { properties: {} },
  shape: (ins, _a, ctx) => scanShape(ins, ctx),
  kernel: (tf, ins) => scanKernel(tf, ins, true),
  // Adjoint: g_t = dy_t + c_{t-1} g_{t-1} (a forward scan); da = g, dc_t = g_t x_{t+1}, dinit = g_{T-1} c_{T-1}.
  grad: (b, { inputs: [, c, init], output, dy }) => {
    const z = b.op('zeros_like', [init!]);
    const xNext = b.op('time_shift', [output, init!], { offset: 1 });
    const cPrev = b.op('time_shift', [c!, z], { offset: -1 });
    const g = b.op('linear_scan', [dy, cPrev, z]);
    return [g, b.op('mul', [g, xNext]), edgeRow(b, b.op('mul', [g, c!]), z, 1)];
  },
  batch: timeMajorBatch,
  fusion: 'opaque',
  cost: scanCost,
});

defineOp({
  name: 'linear_scan',
  readsHost: true,
  family: 'scan',
  doc: 'x_t = a_t + c_t * x_{t-1} forwards over the leading axis, with x_{-1} = init (a, c: [T, ...], init: [...]); the adjoint of reverse_linear_scan',
  inputs: ['a', 'c', 'init'],
  attrs: { properties: {} },
  shape: (ins, _a, ctx) => scanShape(ins, ctx),
  kernel: (tf, ins) => scanKernel(tf, ins, false),
  // Adjoint: g_t = dy_t + c_{t+1} g_{t+1} (a reverse scan); da = g, dc_t = g_t x_{t-1}, dinit = g_0 c_0.
  grad: (b, { inputs: [, c, init], output, dy }) => {
    const z = b.op('zeros_like', [init!]);
    const xPrev = b.op('time_shift', [output, init!], { offset: -1 });
    const cNext = b.op('time_shift', [c!, z], { offset: 1 });
    const g = b.op('reverse_linear_scan', [dy, cNext, z]);
    return [g, b.op('mul', [g, xPrev]), edgeRow(b, b.op('mul', [g, c!]), z, -1)];
  },
  batch: timeMajorBatch,
  fusion: 'opaque',
  cost: scanCost,
});

defineOp({
  name: 'time_shift',
  family: 'scan',
  doc: 'y_t = x_{t+offset} along the leading axis where t+offset is in range, else `fill` (x: [T, ...], fill: [...], offset +1 or -1): x_{t+1} / x_{t-1} for TD targets and scan adjoints',
  inputs: ['x', 'fill'],
  attrs: { properties: { offset: { enum: [1, -1] } }, required: ['offset'] },
  shape: ([x, fill], _a, ctx) => {
    if (x!.shape.length < 1) ctx.fail('E_RANK', 'time_shift needs a time axis: x must have rank >= 1', 'x: [T, ...]', showType(x!));
    const dt = ctx.sameDtype([x!, fill!]);
    if (fill!.shape.length !== x!.shape.length - 1)
      ctx.fail('E_RANK', 'fill must have the shape of one time step of x', `[${x!.shape.slice(1).join(', ')}]`, showType(fill!));
    const shape = [x!.shape[0]!, ...x!.shape.slice(1).map((d, i) => ctx.unify(d, fill!.shape[i]!, `axis ${i + 1} of x and axis ${i} of fill`))];
    return { dtype: dt, shape };
  },
  kernel: (tf, [x, fill], attrs) => {
    const T = x!.shape[0]!;
    if (T === 0) return tf.clone(x!);
    const rest = x!.shape.slice(1).map(() => -1);
    return tf.tidy(() => {
      const row = tf.expandDims(fill!, 0);
      return attrs.offset === 1
        ? tf.concat([tf.slice(x!, [1, ...rest.map(() => 0)], [T - 1, ...rest]), row], 0)
        : tf.concat([row, tf.slice(x!, [0, ...rest.map(() => 0)], [T - 1, ...rest])], 0);
    });
  },
  grad: (b, { attrs, inputs: [, fill], dy }) => {
    const offset = attrs.offset as 1 | -1;
    const z = b.op('zeros_like', [fill!]);
    return [b.op('time_shift', [dy, z], { offset: -offset }), edgeRow(b, dy, z, offset)];
  },
  batch: timeMajorBatch,
  fusion: 'opaque',
  cost: (inputs, out) => ({ flops: 0, bytes: bytesOf(inputs[0]!) + bytesOf(out) }),
});
