/**
 * Linear algebra: batched matrix multiplication with NumPy broadcasting of the batch dims.
 */
import { broadcastingBatch } from './batching.ts';
import { dimEq, dimMul, product, showShape, type Dim, type Shape } from '../dims.ts';
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

/** Whether permuting an array of `shape` into `order` moves data (the non-unit axes change order). */
function movesData(shape: readonly number[], order: readonly number[]): boolean {
  const live = order.filter((i) => shape[i] !== 1);
  return live.some((v, j) => j > 0 && v < live[j - 1]!);
}

/**
 * How the matmul kernel runs a product of concrete shapes, so that cost models can price exactly
 * what it does. When one operand's batch dims are broadcast against the other's (e.g. stacked
 * weights [E, s, t] against activations [B, E, L, s]), the broadcast axes (`folded`) of the full
 * operand are folded into its rows (`rows`: the broadcast operand is on the right) or columns
 * (`cols`: on the left), so one library call multiplies `matrices` = prod(kept) matrices of
 * [M', K] x [K, N'] instead of copying the broadcast operand out to the full batch: a transpose
 * of the full operand before and of the result after, each only when it moves data. `equal`: same
 * batches (a batched call over the whole batch, or a 2-D one); `broadcast`: both operands are
 * broadcast somewhere, and the kernel materialises them to the full batch first.
 */
export interface MatmulPlan {
  kind: 'rows' | 'cols' | 'equal' | 'broadcast';
  /** Output batch axes the broadcast operand has (rows/cols; unit axes included), and those folded into the product, both in order. */
  kept: number[];
  folded: number[];
  /** One product of the library call: [m, k] x [k, n] (the folded axes not included). */
  m: number;
  k: number;
  n: number;
  /** Matrices multiplied by the one library call (1: a 2-D product), and each one's rows and columns. */
  matrices: number;
  rows: number;
  cols: number;
  /** Copies made around the call: elements of each, and whether it is a transpose or a broadcast. */
  copies: { kind: 'transpose' | 'broadcast'; elements: number }[];
  /** The backend's library matmul is slow with transpose flags, so transposed operands are copied first (tfjs-wasm). */
  copyTransposed: boolean;
}

export function planMatmul(as: readonly number[], bs: readonly number[], ta: boolean, tb: boolean, out: readonly number[], copyTransposed: boolean): MatmulPlan {
  const nb = out.length - 2;
  const batch = out.slice(0, -2);
  const m = out[nb]!;
  const n = out[nb + 1]!;
  const k = ta ? as[as.length - 2]! : as[as.length - 1]!;
  const pad = (s: readonly number[]) => [...Array(nb - (s.length - 2)).fill(1), ...s.slice(0, -2)] as number[];
  const pa = pad(as);
  const pb = pad(bs);
  const prod = (xs: number[]) => xs.reduce((p, d) => p * d, 1);
  const size = (s: readonly number[]) => prod([...s]);
  const full = (p: number[]) => p.every((d, i) => d === batch[i]);
  const live = [...batch.keys()].filter((i) => batch[i]! > 1);
  const copies: MatmulPlan['copies'] = [];
  const nbatch = prod(batch);
  const fold = (kind: 'rows' | 'cols', small: number[]): MatmulPlan | undefined => {
    const kept = [...batch.keys()].filter((i) => small[i] === batch[i]);
    const folded = live.filter((i) => small[i] === 1);
    if (folded.length === 0) return undefined;
    const nf = prod(folded.map((i) => batch[i]!));
    const [fullShape, fullT, otherShape, otherT] = kind === 'rows' ? [as, ta, bs, tb] : [bs, tb, as, ta];
    const order = kind === 'rows' ? [...kept, ...folded, ...(fullT ? [nb + 1, nb] : [nb, nb + 1])] : [...kept, fullT ? nb + 1 : nb, ...folded, fullT ? nb : nb + 1];
    const spelt = [...batch, ...fullShape.slice(-2)];
    if (movesData(spelt, order)) copies.push({ kind: 'transpose', elements: size(fullShape) });
    if (otherT && copyTransposed) copies.push({ kind: 'transpose', elements: size(otherShape) });
    const yOrder = kind === 'rows' ? [...kept, ...folded, nb, nb + 1] : [...kept, nb, ...folded, nb + 1];
    const yShape = yOrder.map((i) => out[i]!);
    const back = [...Array(nb + 2).keys()].map((j) => yOrder.indexOf(j));
    if (movesData(yShape, back)) copies.push({ kind: 'transpose', elements: size(out) });
    const matrices = nbatch / nf;
    return { kind, kept, folded, m, k, n, matrices, rows: kind === 'rows' ? nf * m : m, cols: kind === 'cols' ? nf * n : n, copies, copyTransposed };
  };
  if (full(pa) && !full(pb)) return fold('rows', pb)!;
  if (full(pb) && !full(pa)) return fold('cols', pa)!;
  if (copyTransposed) {
    if (ta) copies.push({ kind: 'transpose', elements: size(as) });
    if (tb) copies.push({ kind: 'transpose', elements: size(bs) });
  }
  const base = { kept: [], folded: [], m, k, n, matrices: nbatch, rows: m, cols: n, copyTransposed };
  if (full(pa) && full(pb)) return { kind: 'equal', ...base, copies };
  for (const [s, p] of [[as, pa], [bs, pb]] as const)
    if (!full(p)) copies.push({ kind: 'broadcast', elements: size(s) + nbatch * size(s.slice(-2)) });
  return { kind: 'broadcast', ...base, copies };
}

const isUnit = (d: Dim): boolean => dimEq(d, 1);

/** movesData over symbolic shapes: only literal unit axes are known not to hold data. */
function movesDataSym(shape: Shape, order: readonly number[]): boolean {
  const live = order.filter((i) => !isUnit(shape[i]!));
  return live.some((v, j) => j > 0 && v < live[j - 1]!);
}

/**
 * The gradient of the operand whose batch dims are broadcast against the other's (a rank-2 weight
 * W[k, n] against X[..., m, k], or stacked weights [E, s, t] against [B, E, L, s]), as one product
 * with the broadcast (folded) batch axes merged into the contraction, e.g.
 * dW = reshape(X, [-1, k])ᵀ · reshape(dY, [-1, n]), instead of a product per batch entry followed by
 * sum_to: backends run one large product far faster than a batch of them (tfjs-wasm: about 10×).
 * Undefined when neither or both operands are broadcast.
 */
function foldedGrad(b: GradBuilder, a: string, bb: string, ta: boolean, tb: boolean, dy: string, batch: Shape): { side: 'a' | 'b'; grad: string } | undefined {
  const nb = batch.length;
  if (nb === 0) return undefined;
  const sa = b.type(a).shape;
  const sb = b.type(bb).shape;
  const pad = (s: Shape): Shape => [...Array<Dim>(nb - (s.length - 2)).fill(1), ...s.slice(0, -2)];
  const full = (p: Shape) => p.every((d, i) => dimEq(d, batch[i]!));
  const pa = pad(sa);
  const pb = pad(sb);
  let side: 'a' | 'b';
  if (full(pa) && !full(pb)) side = 'b';
  else if (full(pb) && !full(pa)) side = 'a';
  else return undefined;
  const small = side === 'b' ? pb : pa;
  const kept = [...batch.keys()].filter((i) => dimEq(small[i]!, batch[i]!));
  const folded = [...batch.keys()].filter((i) => !dimEq(small[i]!, batch[i]!));
  const keptDims = kept.map((i) => batch[i]!).filter((d) => !isUnit(d));
  const [r, c] = [nb, nb + 1];
  /**
   * One operand of the product, as [kept, outer, F·inner] (`outerFirst`) or [kept, F·inner, outer],
   * where F·inner merges the folded batch axes with the contracted axis `inner` (stored axes of the
   * operand spelt to rank nb + 2). A view when one layout needs no data movement (with a transpose
   * flag if it is the other layout than the product wants), else one transpose into the wanted one.
   */
  const operand = (x: string, outer: number, inner: number, outerFirst: boolean): { id: string; t: boolean } => {
    const sx = b.type(x).shape;
    const spelt: Shape = [...batch, ...sx.slice(-2)];
    const xs = sx.length === nb + 2 ? x : b.op('reshape', [x], { shape: spelt });
    const fi = dimMul(product(folded.map((i) => batch[i]!)), spelt[inner]!);
    const layouts = [
      { order: [...kept, outer, ...folded, inner], shape: [...keptDims, spelt[outer]!, fi] },
      { order: [...kept, ...folded, inner, outer], shape: [...keptDims, fi, spelt[outer]!] },
    ];
    const want = outerFirst ? 0 : 1;
    for (const j of [want, 1 - want])
      if (!movesDataSym(spelt, layouts[j]!.order)) return { id: b.op('reshape', [xs], { shape: layouts[j]!.shape }), t: j !== want };
    const moved = b.op('transpose', [xs], { perm: layouts[want]!.order });
    return { id: b.op('reshape', [moved], { shape: layouts[want]!.shape }), t: false };
  };
  // Stored axes of op(X)'s rows and columns.
  const [ra, ca] = ta ? [c, r] : [r, c];
  const [rb, cb] = tb ? [c, r] : [r, c];
  let left: { id: string; t: boolean };
  let right: { id: string; t: boolean };
  if (side === 'b') {
    // d(op(B)) = op(A)ᵀ·dY, contracted over the folded axes and m; op(B)ᵀ = dYᵀ·op(A).
    [left, right] = tb ? [operand(dy, c, r, true), operand(a, ca, ra, false)] : [operand(a, ca, ra, true), operand(dy, c, r, false)];
  } else {
    // d(op(A)) = dY·op(B)ᵀ, contracted over the folded axes and n; op(A)ᵀ = op(B)·dYᵀ.
    [left, right] = ta ? [operand(bb, rb, cb, true), operand(dy, r, c, false)] : [operand(dy, r, c, true), operand(bb, rb, cb, false)];
  }
  const grad = mm(b, left.id, right.id, left.t, right.t);
  const target = side === 'b' ? sb : sa;
  return { side, grad: sameShape(b.type(grad).shape, target) ? grad : b.op('reshape', [grad], { shape: target }) };
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
    const [ta, tb] = flags(attrs);
    const out = ctx.outType.shape;
    const plan = planMatmul(a!.shape, b!.shape, ta, tb, out, tf.getBackend() === 'wasm');
    return tf.tidy((): Tensor => {
      const swap = (x: Tensor) => tf.transpose(x, [...Array(x.rank - 2).keys(), x.rank - 1, x.rank - 2]);
      const nb = out.length - 2;
      const batch = out.slice(0, -2);
      const at = (axes: number[]) => axes.map((i) => batch[i]!);
      const prod = (xs: number[]) => xs.reduce((p, d) => p * d, 1);
      // Permutes x (rank nb + 2) into `order`, a copy only when the non-unit axes change order.
      const permute = (x: Tensor, order: number[]): Tensor => (movesData(x.shape, order) ? tf.transpose(x, order) : tf.reshape(x, order.map((i) => x.shape[i]!)));
      if (plan.kind === 'rows' || plan.kind === 'cols') {
        const { kept, folded } = plan;
        const k1 = prod(at(kept));
        const nf = prod(at(folded));
        // The full operand, its batch spelt out, permuted so the folded axes sit next to its rows (columns).
        const full = plan.kind === 'rows' ? a! : b!;
        const other = plan.kind === 'rows' ? b! : a!;
        const fullT = plan.kind === 'rows' ? ta : tb;
        let otherT = plan.kind === 'rows' ? tb : ta;
        const F = tf.reshape(full, [...batch, ...full.shape.slice(-2)]);
        let O = tf.reshape(other, [k1, ...other.shape.slice(-2)]);
        if (otherT && plan.copyTransposed) {
          O = swap(O);
          otherT = false;
        }
        const squeeze = (x: Tensor) => (k1 === 1 ? tf.reshape(x, x.shape.slice(1)) : x);
        let y: Tensor;
        let yOrder: number[];
        let yShape: number[];
        if (plan.kind === 'rows') {
          // [kept, folded, M, K] -> [K1, F*M, K]: the folded batch becomes more rows of one product per kept index.
          const A = tf.reshape(permute(F, [...kept, ...folded, ...(fullT ? [nb + 1, nb] : [nb, nb + 1])]), [k1, nf * plan.m, plan.k]);
          y = tf.matMul(squeeze(A), squeeze(O), false, otherT);
          yOrder = [...kept, ...folded, nb, nb + 1];
          yShape = [...at(kept), ...at(folded), plan.m, plan.n];
        } else {
          // [kept, K, folded, N] -> [K1, K, F*N]: the folded batch becomes more columns.
          const Bm = tf.reshape(permute(F, [...kept, fullT ? nb + 1 : nb, ...folded, fullT ? nb : nb + 1]), [k1, plan.k, nf * plan.n]);
          y = tf.matMul(squeeze(O), squeeze(Bm), otherT, false);
          yOrder = [...kept, nb, ...folded, nb + 1];
          yShape = [...at(kept), plan.m, ...at(folded), plan.n];
        }
        // y's axes are out's axes in yOrder; put them back in out's order.
        const back = [...Array(nb + 2).keys()].map((j) => yOrder.indexOf(j));
        return tf.reshape(permute(tf.reshape(y, yShape), back), out);
      }
      let A = a!;
      let B = b!;
      let [fa, fb] = [ta, tb];
      // tfjs-wasm multiplies with transpose flags 4-12x slower than after an explicit transpose
      // (measured at 64-256 wide); the copy costs far less.
      if (plan.copyTransposed) {
        if (fa) A = swap(A);
        if (fb) B = swap(B);
        fa = fb = false;
      }
      if (plan.kind === 'equal' && A.rank === 2 && B.rank === 2) return tf.matMul(A, B, fa, fb);
      if (plan.kind === 'equal') return tf.reshape(tf.matMul(tf.reshape(A, [-1, ...A.shape.slice(-2)]), tf.reshape(B, [-1, ...B.shape.slice(-2)]), fa, fb), out);
      // Both operands broadcast on some axis: tfjs backends only broadcast a batch of 1 correctly,
      // so the batches are made equal here.
      const full = (x: tfType.Tensor): tfType.Tensor =>
        x.shape.length - 2 === batch.length && x.shape.slice(0, -2).every((d, i) => d === batch[i]) ? x : tf.broadcastTo(x, [...batch, ...x.shape.slice(-2)]);
      return tf.matMul(full(A), full(B), fa, fb);
    });
  },
  grad: (b, g) => {
    const [a, bb] = g.inputs as [string, string];
    const [ta, tb] = flags(g.attrs);
    const dy = g.dy;
    const outBatch = b.type(g.output).shape.slice(0, -2);
    // Operands whose batch dims were broadcast get their gradient summed back down.
    const fit = (grad: string, x: string): string =>
      sameShape(b.type(x).shape.slice(0, -2), outBatch) ? grad : b.op('sum_to', [grad, x]);
    // Y = op(A)·op(B); each case is d(op(A)) = dY·op(B)ᵀ and d(op(B)) = op(A)ᵀ·dY, transposed back when op transposes.
    const gradA = (): string => {
      if (!ta) return mm(b, dy, bb, false, !tb);
      return tb ? mm(b, bb, dy, true, true) : mm(b, bb, dy, false, true);
    };
    const gradB = (): string => {
      if (!tb) return ta ? mm(b, a, dy, false, false) : mm(b, a, dy, true, false);
      return ta ? mm(b, dy, a, true, true) : mm(b, dy, a, true, false);
    };
    const folded = foldedGrad(b, a, bb, ta, tb, dy, outBatch);
    if (folded?.side === 'b') return [fit(gradA(), a), folded.grad];
    if (folded?.side === 'a') return [folded.grad, fit(gradB(), bb)];
    return [fit(gradA(), a), fit(gradB(), bb)];
  },
  // Batch dims broadcast like NumPy, as elementwise operands do.
  batch: broadcastingBatch,
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
