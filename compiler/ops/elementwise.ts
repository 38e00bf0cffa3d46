/**
 * Elementwise ops: unary math, binary arithmetic with NumPy broadcasting, comparisons,
 * logical ops, where, clip and cast. All are fusable: `scalar` gives one element as kernel IR,
 * which generated kernels inline and constant folding evaluates.
 */
import type { Attrs, DType, TensorType } from '../ir.ts';
import { kir, type CompareOp, type Expr } from '../codegen/kir.ts';
import { defineOp, streamingCost, type GradArgs, type GradBuilder, type Tensor } from './registry.ts';
import type * as tfType from '@tensorflow/tfjs';

type TF = typeof tfType;
const FLOAT: readonly DType[] = ['float32'];
const NUMERIC: readonly DType[] = ['float32', 'int32'];

/**
 * Runs a kernel whose result carries no gradient (comparisons, logical ops) out of sight of
 * tfjs's tape: tfjs has no gradient for Greater, Less, Equal, LogicalNot..., so tf.grads in the
 * reference interpreter would fail on any differentiated graph with `where(x > 0, ...)`.
 */
function untaped(tf: TF, f: (...xs: Tensor[]) => Tensor, xs: Tensor[]): Tensor {
  return tf.customGrad((...args: (Tensor | tfType.GradSaveFunc)[]) => {
    const ins = args.slice(0, xs.length) as Tensor[];
    return { value: f(...ins), gradFunc: () => ins.map((x) => tf.zeros(x.shape)) };
  })(...xs) as Tensor;
}

/**
 * tfjs's Maximum / Minimum gradients ignore broadcasting (they hand back dy at the output shape),
 * so tf.grads fails on broadcast operands; broadcasting first lets BroadcastTo's gradient sum back.
 */
function broadcastFirst(tf: TF, f: (x: Tensor, y: Tensor) => Tensor, x: Tensor, y: Tensor): Tensor {
  if (x.shape.join(',') === y.shape.join(',')) return f(x, y);
  const shape = tf.broadcast_util.assertAndGetBroadcastShape(x.shape, y.shape);
  return tf.tidy(() => f(tf.broadcastTo(x, shape), tf.broadcastTo(y, shape)));
}

interface UnarySpec {
  doc: string;
  kernel: (tf: TF, x: Tensor) => Tensor;
  scalar: (x: Expr) => Expr;
  /** dx given x, y = f(x) and dy. */
  grad?: (b: GradBuilder, x: string, y: string, dy: string) => string | null;
  flops?: number;
  dtypes?: readonly DType[];
}

function unary(name: string, s: UnarySpec): void {
  const allowed = s.dtypes ?? FLOAT;
  defineOp({
    name,
    family: 'elementwise',
    doc: s.doc,
    inputs: ['x'],
    attrs: { properties: {} },
    shape: ([x], _a, ctx) => ({ dtype: ctx.dtype(x!, allowed, 'x'), shape: x!.shape }),
    kernel: (tf, [x]) => s.kernel(tf, x!),
    grad: s.grad ? (b, a) => [s.grad!(b, a.inputs[0]!, a.output, a.dy)] : undefined,
    fusion: 'elementwise',
    scalar: ([x]) => s.scalar(x!),
    cost: streamingCost(s.flops ?? 1),
  });
}

unary('neg', {
  doc: '-x',
  kernel: (tf, x) => tf.neg(x),
  scalar: (x) => kir.neg(x),
  grad: (b, _x, _y, dy) => b.op('neg', [dy]),
  dtypes: NUMERIC,
});
unary('abs', {
  doc: '|x|',
  kernel: (tf, x) => tf.abs(x),
  scalar: (x) => kir.abs(x),
  grad: (b, x, _y, dy) => b.op('mul', [dy, b.op('sign', [x])]),
  dtypes: NUMERIC,
});
unary('sign', {
  doc: 'sign of x: -1, 0 or 1',
  kernel: (tf, x) => tf.sign(x),
  scalar: (x) => kir.sign(x),
  grad: (b, x) => b.op('zeros_like', [x]),
  dtypes: NUMERIC,
});
unary('exp', {
  doc: 'e^x',
  kernel: (tf, x) => tf.exp(x),
  scalar: (x) => kir.exp(x),
  grad: (b, _x, y, dy) => b.op('mul', [dy, y]),
  flops: 8,
});
unary('log', {
  doc: 'natural logarithm',
  kernel: (tf, x) => tf.log(x),
  scalar: (x) => kir.log(x),
  grad: (b, x, _y, dy) => b.op('div', [dy, x]),
  flops: 8,
});
unary('log1p', {
  doc: 'log(1 + x)',
  kernel: (tf, x) => tf.log1p(x),
  scalar: (x) => kir.log1p(x),
  grad: (b, x, _y, dy) => b.op('div', [dy, b.op('add', [x, b.constant(1)])]),
  flops: 8,
});
unary('sqrt', {
  doc: 'square root',
  kernel: (tf, x) => tf.sqrt(x),
  scalar: (x) => kir.sqrt(x),
  grad: (b, _x, y, dy) => b.op('div', [dy, b.op('mul', [y, b.constant(2)])]),
  flops: 4,
});
unary('rsqrt', {
  doc: '1 / sqrt(x)',
  kernel: (tf, x) => tf.rsqrt(x),
  scalar: (x) => kir.div(kir.c(1), kir.sqrt(x)),
  // d/dx x^-1/2 = -1/2 x^-3/2 = -0.5 * y^3
  grad: (b, _x, y, dy) => b.op('mul', [dy, b.op('mul', [b.constant(-0.5), b.op('mul', [y, b.op('square', [y])])])]),
  flops: 5,
});
unary('square', {
  doc: 'x * x',
  kernel: (tf, x) => tf.square(x),
  scalar: (x) => kir.mul(x, x),
  grad: (b, x, _y, dy) => b.op('mul', [dy, b.op('mul', [x, b.constant(2)])]),
  dtypes: NUMERIC,
});
unary('reciprocal', {
  doc: '1 / x',
  kernel: (tf, x) => tf.reciprocal(x),
  scalar: (x) => kir.div(kir.c(1), x),
  grad: (b, _x, y, dy) => b.op('neg', [b.op('mul', [dy, b.op('square', [y])])]),
});
unary('tanh', {
  doc: 'hyperbolic tangent',
  kernel: (tf, x) => tf.tanh(x),
  scalar: (x) => kir.tanh(x),
  grad: (b, _x, y, dy) => b.op('mul', [dy, b.op('sub', [b.constant(1), b.op('square', [y])])]),
  flops: 10,
});
unary('sigmoid', {
  doc: '1 / (1 + e^-x)',
  kernel: (tf, x) => tf.sigmoid(x),
  scalar: (x) => kir.div(kir.c(1), kir.add(kir.c(1), kir.exp(kir.neg(x)))),
  grad: (b, _x, y, dy) => b.op('mul', [dy, b.op('mul', [y, b.op('sub', [b.constant(1), y])])]),
  flops: 10,
});
unary('softplus', {
  doc: 'log(1 + e^x), computed stably',
  kernel: (tf, x) => tf.softplus(x),
  scalar: (x) => kir.add(kir.max(x, kir.c(0)), kir.log1p(kir.exp(kir.neg(kir.abs(x))))),
  grad: (b, x, _y, dy) => b.op('mul', [dy, b.op('sigmoid', [x])]),
  flops: 12,
});
unary('relu', {
  doc: 'max(x, 0)',
  kernel: (tf, x) => tf.relu(x),
  scalar: (x) => kir.max(x, kir.c(0)),
  grad: (b, x, _y, dy) => b.op('mul', [dy, b.op('cast', [b.op('greater', [x, b.constant(0)])], { dtype: 'float32' })]),
  dtypes: NUMERIC,
});
unary('sin', {
  doc: 'sine',
  kernel: (tf, x) => tf.sin(x),
  scalar: (x) => kir.sin(x),
  grad: (b, x, _y, dy) => b.op('mul', [dy, b.op('cos', [x])]),
  flops: 8,
});
unary('cos', {
  doc: 'cosine',
  kernel: (tf, x) => tf.cos(x),
  scalar: (x) => kir.cos(x),
  grad: (b, x, _y, dy) => b.op('neg', [b.op('mul', [dy, b.op('sin', [x])])]),
  flops: 8,
});
unary('floor', {
  doc: 'round toward -inf (gradient 0)',
  kernel: (tf, x) => tf.floor(x),
  scalar: (x) => kir.floor(x),
  grad: (b, x) => b.op('zeros_like', [x]),
});
unary('ceil', {
  doc: 'round toward +inf (gradient 0)',
  kernel: (tf, x) => tf.ceil(x),
  scalar: (x) => kir.ceil(x),
  grad: (b, x) => b.op('zeros_like', [x]),
});
unary('stop_gradient', {
  doc: 'identity in the forward pass; blocks gradients',
  // customGrad so that tfjs's own autodiff (used by the reference interpreter) also stops here.
  kernel: (tf, x) =>
    tf.customGrad((...args: (Tensor | tfType.GradSaveFunc)[]) => ({
      value: tf.clone(args[0] as Tensor),
      gradFunc: (dy: Tensor) => tf.zerosLike(dy),
    }))(x) as Tensor,
  scalar: (x) => x,
  grad: () => null,
  flops: 0,
  dtypes: ['float32', 'int32', 'bool'],
});
unary('identity', {
  doc: 'identity',
  kernel: (tf, x) => tf.clone(x),
  scalar: (x) => x,
  grad: (_b, _x, _y, dy) => dy,
  flops: 0,
  dtypes: ['float32', 'int32', 'bool'],
});
unary('zeros_like', {
  doc: 'zeros with the shape and dtype of x',
  kernel: (tf, x) => tf.zerosLike(x),
  scalar: (x) => kir.c(0, x.dtype),
  grad: () => null,
  flops: 0,
  dtypes: ['float32', 'int32', 'bool'],
});
unary('ones_like', {
  doc: 'ones with the shape and dtype of x',
  kernel: (tf, x) => tf.onesLike(x),
  scalar: (x) => kir.c(1, x.dtype),
  grad: () => null,
  flops: 0,
  dtypes: ['float32', 'int32', 'bool'],
});
unary('logical_not', {
  doc: 'boolean not',
  kernel: (tf, x) => untaped(tf, (v) => tf.logicalNot(v), [x]),
  scalar: (x) => kir.not(x),
  dtypes: ['bool'],
});

// ---------------------------------------------------------------------------- binary

/** Sums a broadcast gradient back to the shape of `like`. */
function unbroadcast(b: GradBuilder, g: string, like: string): string {
  return b.op('sum_to', [g, like]);
}

interface BinarySpec {
  doc: string;
  kernel: (tf: TF, x: Tensor, y: Tensor) => Tensor;
  scalar: (x: Expr, y: Expr) => Expr;
  /** Gradients before unbroadcasting: (dx, dy) at the broadcast shape. */
  grad?: (b: GradBuilder, x: string, y: string, out: string, dy: string) => [string | null, string | null];
  dtypes?: readonly DType[];
  out?: DType;
  flops?: number;
}

function binary(name: string, s: BinarySpec): void {
  const allowed = s.dtypes ?? NUMERIC;
  defineOp({
    name,
    family: 'elementwise',
    doc: s.doc + ' (NumPy broadcasting)',
    inputs: ['x', 'y'],
    attrs: { properties: {} },
    shape: ([x, y], _a, ctx): TensorType => {
      const dt = ctx.sameDtype([x!, y!]);
      ctx.dtype(x!, allowed, 'x');
      return { dtype: s.out ?? dt, shape: ctx.broadcast(x!.shape, y!.shape) };
    },
    kernel: (tf, [x, y]) => s.kernel(tf, x!, y!),
    grad: s.grad
      ? (b: GradBuilder, a: GradArgs) => {
          const [x, y] = a.inputs as [string, string];
          const [gx, gy] = s.grad!(b, x, y, a.output, a.dy);
          return [gx && unbroadcast(b, gx, x), gy && unbroadcast(b, gy, y)];
        }
      : undefined,
    fusion: 'elementwise',
    scalar: ([x, y]) => s.scalar(x!, y!),
    cost: streamingCost(s.flops ?? 1),
  });
}

binary('add', {
  doc: 'x + y',
  kernel: (tf, x, y) => tf.add(x, y),
  scalar: (x, y) => kir.add(x, y),
  grad: (_b, _x, _y, _o, dy) => [dy, dy],
});
binary('sub', {
  doc: 'x - y',
  kernel: (tf, x, y) => tf.sub(x, y),
  scalar: (x, y) => kir.sub(x, y),
  grad: (b, _x, _y, _o, dy) => [dy, b.op('neg', [dy])],
});
binary('mul', {
  doc: 'x * y',
  kernel: (tf, x, y) => tf.mul(x, y),
  scalar: (x, y) => kir.mul(x, y),
  grad: (b, x, y, _o, dy) => [b.op('mul', [dy, y]), b.op('mul', [dy, x])],
});
binary('div', {
  doc: 'x / y (true division)',
  kernel: (tf, x, y) => tf.div(x, y),
  scalar: (x, y) => kir.div(x, y),
  grad: (b, _x, y, out, dy) => {
    const gx = b.op('div', [dy, y]);
    return [gx, b.op('neg', [b.op('mul', [gx, out])])];
  },
  dtypes: FLOAT,
});
binary('pow', {
  doc: 'x ^ y',
  kernel: (tf, x, y) => tf.pow(x, y),
  scalar: (x, y) => kir.pow(x, y),
  grad: (b, x, y, out, dy) => {
    // d/dx = y * x^(y-1); d/dy = out * log(x), taken as 0 where x <= 0.
    const gx = b.op('mul', [dy, b.op('mul', [y, b.op('pow', [x, b.op('sub', [y, b.constant(1)])])])]);
    const pos = b.op('greater', [x, b.constant(0)]);
    const safeX = b.op('where', [pos, x, b.op('ones_like', [x])]);
    const gy = b.op('mul', [dy, b.op('mul', [out, b.op('log', [safeX])])]);
    return [gx, gy];
  },
  dtypes: FLOAT,
  flops: 20,
});
binary('maximum', {
  doc: 'max(x, y); ties send the gradient to x',
  kernel: (tf, x, y) => broadcastFirst(tf, (a, b) => tf.maximum(a, b), x, y),
  scalar: (x, y) => kir.max(x, y),
  grad: (b, x, y, _o, dy) => {
    const m = b.op('greater_equal', [x, y]);
    const z = b.op('zeros_like', [dy]);
    return [b.op('where', [m, dy, z]), b.op('where', [m, z, dy])];
  },
});
binary('minimum', {
  doc: 'min(x, y); ties send the gradient to x',
  kernel: (tf, x, y) => broadcastFirst(tf, (a, b) => tf.minimum(a, b), x, y),
  scalar: (x, y) => kir.min(x, y),
  grad: (b, x, y, _o, dy) => {
    const m = b.op('less_equal', [x, y]);
    const z = b.op('zeros_like', [dy]);
    return [b.op('where', [m, dy, z]), b.op('where', [m, z, dy])];
  },
});
binary('mod', {
  doc: 'x mod y, with the sign of y (floored, like Python)',
  kernel: (tf, x, y) => tf.mod(x, y),
  scalar: (x, y) => kir.rem(kir.add(kir.rem(x, y), y), y),
  grad: (b, x, y, _o, dy) => [dy, b.op('neg', [b.op('mul', [dy, b.op('floor', [b.op('div', [x, y])])])])],
  dtypes: FLOAT,
  flops: 3,
});

const COMPARE: [string, string, (tf: TF, x: Tensor, y: Tensor) => Tensor, CompareOp][] = [
  ['equal', '==', (tf, x, y) => tf.equal(x, y), 'eq'],
  ['not_equal', '!=', (tf, x, y) => tf.notEqual(x, y), 'ne'],
  ['less', '<', (tf, x, y) => tf.less(x, y), 'lt'],
  ['less_equal', '<=', (tf, x, y) => tf.lessEqual(x, y), 'le'],
  ['greater', '>', (tf, x, y) => tf.greater(x, y), 'gt'],
  ['greater_equal', '>=', (tf, x, y) => tf.greaterEqual(x, y), 'ge'],
];
for (const [name, sym, kernel, cmp] of COMPARE) {
  binary(name, {
    doc: `x ${sym} y, as bool`,
    kernel: (tf, x, y) => untaped(tf, (a, b) => kernel(tf, a, b), [x, y]),
    scalar: (x, y) => kir[cmp](x, y),
    dtypes: ['float32', 'int32', 'bool'],
    out: 'bool',
  });
}
binary('logical_and', {
  doc: 'boolean and',
  kernel: (tf, x, y) => untaped(tf, (a, b) => tf.logicalAnd(a, b), [x, y]),
  scalar: (x, y) => kir.and(x, y),
  dtypes: ['bool'],
});
binary('logical_or', {
  doc: 'boolean or',
  kernel: (tf, x, y) => untaped(tf, (a, b) => tf.logicalOr(a, b), [x, y]),
  scalar: (x, y) => kir.or(x, y),
  dtypes: ['bool'],
});

// ---------------------------------------------------------------------------- where / clip / cast

defineOp({
  name: 'where',
  family: 'elementwise',
  doc: 'cond ? x : y, with broadcasting of all three',
  inputs: ['cond', 'x', 'y'],
  attrs: { properties: {} },
  shape: ([c, x, y], _a, ctx) => {
    ctx.dtype(c!, ['bool'], 'cond');
    return { dtype: ctx.sameDtype([x!, y!]), shape: ctx.broadcast(c!.shape, x!.shape, y!.shape) };
  },
  kernel: (tf, [c, x, y], _a, ctx) => {
    // tf.where needs equal shapes on some backends: broadcast explicitly.
    const shape = ctx.outType.shape;
    return tf.tidy(() => tf.where(tf.broadcastTo(c!, shape), tf.broadcastTo(x!, shape), tf.broadcastTo(y!, shape)));
  },
  grad: (b, a) => {
    const [c, x, y] = a.inputs as [string, string, string];
    const z = b.op('zeros_like', [a.dy]);
    return [null, b.op('sum_to', [b.op('where', [c, a.dy, z]), x]), b.op('sum_to', [b.op('where', [c, z, a.dy]), y])];
  },
  fusion: 'elementwise',
  scalar: ([c, x, y]) => kir.select(c!, x!, y!),
  cost: streamingCost(1),
});

defineOp({
  name: 'clip',
  family: 'elementwise',
  doc: 'clamps x to [min, max]; the gradient passes where min <= x <= max',
  inputs: ['x'],
  attrs: { properties: { min: { type: 'number' }, max: { type: 'number' } }, required: ['min', 'max'] },
  shape: ([x], a, ctx) => {
    if ((a.min as number) > (a.max as number)) ctx.fail('E_ATTR', 'clip needs min <= max', 'min <= max', `min=${a.min}, max=${a.max}`);
    return { dtype: ctx.dtype(x!, NUMERIC, 'x'), shape: x!.shape };
  },
  kernel: (tf, [x], a) => tf.clipByValue(x!, a.min as number, a.max as number),
  grad: (b, a) => {
    const x = a.inputs[0]!;
    const inside = b.op('logical_and', [
      b.op('greater_equal', [x, b.constant(a.attrs.min as number)]),
      b.op('less_equal', [x, b.constant(a.attrs.max as number)]),
    ]);
    return [b.op('where', [inside, a.dy, b.op('zeros_like', [a.dy])])];
  },
  fusion: 'elementwise',
  scalar: ([x], a) => kir.min(kir.max(x!, kir.c(a.min as number)), kir.c(a.max as number)),
  cost: streamingCost(2),
});

defineOp({
  name: 'cast',
  family: 'elementwise',
  doc: 'converts dtype (float -> int truncates toward zero; bool is 0/1)',
  inputs: ['x'],
  attrs: { properties: { dtype: { enum: ['float32', 'int32', 'bool'] } }, required: ['dtype'] },
  shape: ([x], a) => ({ dtype: a.dtype as DType, shape: x!.shape }),
  // tfjs's Cast gradient passes dy through even to and from integers; truncation has none.
  kernel: (tf, [x], a) =>
    x!.dtype === 'float32' && a.dtype === 'float32' ? tf.cast(x!, 'float32') : untaped(tf, (v) => tf.cast(v, a.dtype as DType), [x!]),
  grad: (b, a) => {
    const x = a.inputs[0]!;
    return [b.type(x).dtype === 'float32' && a.attrs.dtype === 'float32' ? a.dy : null];
  },
  fusion: 'elementwise',
  scalar: ([x], a) => kir.cast(x!, a.dtype as DType),
  cost: streamingCost(0),
});

export type { Attrs };
