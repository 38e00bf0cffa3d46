/**
 * Linear algebra: batched matrix multiplication with NumPy broadcasting of the batch dims.
 */
import { dimEq, showShape, type Dim, type Shape } from '../dims.ts';
import { isLoomError } from '../errors.ts';
import type { Attrs } from '../ir.ts';
import { bytesOf, defineOp, sizeOf, type GradBuilder, type Tensor } from './registry.ts';
import type * as tfType from '@tensorflow/tfjs';

function flags(a: Attrs): [boolean, boolean] {
  return [a.transpose_a === true, a.transpose_b === true];
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i]!));
}

/** Out = op(A) · op(B) where op transposes when its flag is set; both operands given by value id. */
function mm(b: GradBuilder, x: string, y: string, ta: boolean, tb: boolean): string {
  return b.op('matmul', [x, y], { transpose_a: ta, transpose_b: tb });
}

defineOp({
  name: 'matmul',
  family: 'linalg',
  doc:
    'matrix product of float32 a [..., M, K] and b [..., K, N] -> [..., M, N]; `transpose_a`/`transpose_b` ' +
    'transpose the last two axes of an operand first; batch dims broadcast like NumPy',
  inputs: ['a', 'b'],
  attrs: { properties: { transpose_a: { type: 'boolean' }, transpose_b: { type: 'boolean' } } },
  shape: ([a, b], attrs, ctx) => {
    for (const [t, n] of [[a!, 'a'], [b!, 'b']] as const)
      if (t.shape.length < 2)
        ctx.fail('E_RANK', `matmul operand ${n} must have rank >= 2 (reshape vectors to [1, K] or [K, 1])`, 'rank >= 2', `${n} ${showShape(t.shape)}`);
    ctx.sameDtype([a!, b!]);
    const dtype = ctx.dtype(a!, ['float32'], 'a');
    const [ta, tb] = flags(attrs);
    const sa = a!.shape;
    const sb = b!.shape;
    const ra = sa.length;
    const rb = sb.length;
    const [m, ka]: Dim[] = ta ? [sa[ra - 1]!, sa[ra - 2]!] : [sa[ra - 2]!, sa[ra - 1]!];
    const [kb, n]: Dim[] = tb ? [sb[rb - 1]!, sb[rb - 2]!] : [sb[rb - 2]!, sb[rb - 1]!];
    const both = `a ${showShape(sa)}${ta ? ' (transposed)' : ''}, b ${showShape(sb)}${tb ? ' (transposed)' : ''}`;
    if (!dimEq(ka, kb))
      ctx.fail('E_SHAPE', `matmul inner dimensions differ (${ka} vs ${kb})`, 'a [..., M, K] and b [..., K, N] with the same K', both);
    let batch: Shape;
    try {
      batch = ctx.broadcast(sa.slice(0, -2), sb.slice(0, -2));
    } catch (e) {
      if (!isLoomError(e)) throw e;
      return ctx.fail('E_SHAPE', 'matmul batch dimensions are not broadcast-compatible', 'batch dims equal or 1 on each axis (NumPy broadcasting)', both);
    }
    return { dtype, shape: [...batch, m, n] };
  },
  kernel: (tf, [a, b], attrs, ctx) => {
    let [ta, tb] = flags(attrs);
    const out = ctx.outType.shape;
    return tf.tidy((): Tensor => {
      let A = a!;
      let B = b!;
      // tfjs-wasm multiplies with transpose flags 4-12x slower than after an explicit transpose
      // (measured at 64-256 wide); the copy costs far less.
      if (tf.getBackend() === 'wasm' && (ta || tb)) {
        const swap = (x: Tensor) => tf.transpose(x, [...Array(x.rank - 2).keys(), x.rank - 1, x.rank - 2]);
        if (ta) A = swap(A);
        if (tb) B = swap(B);
        ta = tb = false;
      }
      // [..., M, K] x [K, N]: fold the batch into the rows and do one 2-D product.
      if (B.rank === 2 && A.rank > 2 && !ta) {
        const y = tf.matMul(tf.reshape(A, [-1, A.shape[A.rank - 1]!]), B, false, tb);
        return tf.reshape(y, out);
      }
      const batch = out.slice(0, -2);
      const full = (x: tfType.Tensor): tfType.Tensor =>
        x.shape.length - 2 === batch.length && x.shape.slice(0, -2).every((d, i) => d === batch[i])
          ? x
          : tf.broadcastTo(x, [...batch, ...x.shape.slice(-2)]);
      // tfjs backends only broadcast a batch of 1 correctly, so the batches are made equal here.
      return tf.matMul(full(A), full(B), ta, tb);
    });
  },
  grad: (b, g) => {
    const [a, bb] = g.inputs as [string, string];
    const [ta, tb] = flags(g.attrs);
    const dy = g.dy;
    // Y = op(A)·op(B); each case is d(op(A)) = dY·op(B)ᵀ and d(op(B)) = op(A)ᵀ·dY, transposed back when op transposes.
    let ga: string;
    let gb: string;
    if (!ta && !tb) {
      ga = mm(b, dy, bb, false, true);
      gb = mm(b, a, dy, true, false);
    } else if (!ta && tb) {
      ga = mm(b, dy, bb, false, false);
      gb = mm(b, dy, a, true, false);
    } else if (ta && !tb) {
      ga = mm(b, bb, dy, false, true);
      gb = mm(b, a, dy, false, false);
    } else {
      ga = mm(b, bb, dy, true, true);
      gb = mm(b, dy, a, true, true);
    }
    const outBatch = b.type(g.output).shape.slice(0, -2);
    // Operands whose batch dims were broadcast get their gradient summed back down.
    const fit = (grad: string, x: string): string =>
      sameShape(b.type(x).shape.slice(0, -2), outBatch) ? grad : b.op('sum_to', [grad, x]);
    return [fit(ga, a), fit(gb, bb)];
  },
  fusion: 'matmul',
  cost: ([a, b], out, attrs) => {
    const [ta] = flags(attrs);
    const s = out.shape;
    const m = s[s.length - 2]!;
    const n = s[s.length - 1]!;
    const batch = sizeOf(s.slice(0, -2));
    const k = ta ? a!.shape[a!.shape.length - 2]! : a!.shape[a!.shape.length - 1]!;
    return { flops: 2 * batch * m * n * k, bytes: bytesOf(a!) + bytesOf(b!) + bytesOf(out) };
  },
});
