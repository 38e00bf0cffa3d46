/**
 * Measures this machine on the active tfjs backend and builds a hardware profile for the
 * simulator: peak float32 matmul throughput (best of a few square sizes), streaming bandwidth
 * (elementwise add over large tensors: 2 reads + 1 write per element), and the per-kernel
 * dispatch overhead (a tiny add). It also measures the kernel classes that can run far from those
 * figures (profile `rates`): batched matmuls (per-matrix cost and throughput of stacked m x s by
 * s x s products at a few s, as the sectional-MoE experts use), the extra cost of a 2-D product whose right
 * operand is new to the backend, and transpose, broadcast and reduction copies. Every figure is the median of repeated timed batches after a
 * warm-up; each batch ends by awaiting a read of its last result (`await data()`, never `dataSync`,
 * which throws on webgpu in Node): on webgpu the calls only queue GPU work, and the read returns
 * once the queue has run, so the batch's time includes the GPU's.
 */
import { hostname, totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { deriveMoeOverhead, validateProfile, type BatchedMatmulPoint, type Profile } from '../compiler/cost/profile.ts';
import { activeAdapter, describeAdapter } from './backend.ts';
import { ownsProducts } from './jit.ts';

export interface CalibrateOptions {
  /** Fewer sizes and repeats (for tests and smoke runs). */
  quick?: boolean;
  /** Progress lines. */
  log?: (msg: string) => void;
}

export interface Measurement {
  what: string;
  size: number;
  /** Median seconds per op. */
  seconds: number;
  /** FLOP/s or bytes/s, where it applies. */
  rate?: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Seconds per call of `op` over one batch of `inner` calls that syncs once, at the end. */
async function timeBatch(op: () => tf.Tensor, inner: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  let last: tf.Tensor | undefined;
  for (let i = 0; i < inner; i++) {
    last?.dispose();
    last = op();
  }
  await last!.data();
  last!.dispose();
  return Number(process.hrtime.bigint() - t0) / 1e9 / inner;
}

/** Median over `repeats` batches of the seconds per call of `op` (a batch runs it `inner` times and syncs once). */
export async function timeOp(op: () => tf.Tensor, inner: number, repeats: number, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await timeBatch(op, inner);
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) times.push(await timeBatch(op, inner));
  return median(times);
}

/** Runs the measurements on the active backend and returns a validated profile. */
export async function calibrate(opts: CalibrateOptions = {}): Promise<Profile> {
  const log = opts.log ?? (() => {});
  await tf.ready();
  const backend = tf.getBackend();
  const repeats = opts.quick ? 3 : 9;
  const measured: Measurement[] = [];

  // Dispatch overhead: a one-element add does no work, so its time is the fixed cost of a kernel.
  const a1 = tf.tensor1d([1]);
  const b1 = tf.tensor1d([2]);
  const overhead = await timeOp(() => tf.add(a1, b1), opts.quick ? 200 : 2000, repeats);
  a1.dispose();
  b1.dispose();
  measured.push({ what: 'dispatch', size: 1, seconds: overhead });
  log(`dispatch overhead: ${(overhead * 1e6).toFixed(2)} us per kernel`);

  // Matmul throughput: 2 n^3 flops per n x n product; the best size approximates the peak.
  let peak = 0;
  for (const n of opts.quick ? [64, 128] : [64, 128, 256, 512]) {
    const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
    const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
    const inner = Math.max(1, Math.round((opts.quick ? 2e7 : 2e8) / (2 * n ** 3)));
    const s = await timeOp(() => tf.matMul(a, b), inner, repeats);
    const rate = (2 * n ** 3) / Math.max(s - overhead, s / 100);
    measured.push({ what: 'matmul', size: n, seconds: s, rate });
    peak = Math.max(peak, rate);
    log(`matmul ${n}x${n}: ${(s * 1e3).toFixed(3)} ms, ${(rate / 1e9).toFixed(2)} GFLOP/s`);
    a.dispose();
    b.dispose();
  }

  // Streaming bandwidth: x + y over n elements moves 12 n bytes.
  let bw = 0;
  for (const n of opts.quick ? [1 << 18] : [1 << 18, 1 << 20, 1 << 22]) {
    const x = tf.randomNormal([n], 0, 1, 'float32', 3);
    const y = tf.randomNormal([n], 0, 1, 'float32', 4);
    const inner = Math.max(1, Math.round((opts.quick ? 4e6 : 4e7) / n));
    const s = await timeOp(() => tf.add(x, y), inner, repeats);
    const rate = (12 * n) / Math.max(s - overhead, s / 100);
    measured.push({ what: 'elementwise-add', size: n, seconds: s, rate });
    bw = Math.max(bw, rate);
    log(`add ${n}: ${(s * 1e3).toFixed(3)} ms, ${(rate / 1e9).toFixed(2)} GB/s`);
    x.dispose();
    y.dispose();
  }

  // Batched matmul [n, m, s] x [n, s, s] (equal batches, so one library call): on tfjs-wasm each
  // matrix of the batch carries a fixed cost beside its arithmetic, so the time per call is fitted
  // as launch + n * (perMatrix + 2 m s^2 / rate). Two batch counts give the slope per matrix (the
  // launch cancels), and that slope at two row counts m separates perMatrix from the rate.
  const batched: BatchedMatmulPoint[] = [];
  const work = opts.quick ? 2e6 : 2e7;
  const [mLo, mHi] = [16, 128];
  // The time per added matrix at m = mLo and mHi rows. The four shapes are timed round-robin and
  // each slope is the median over rounds of that round's difference, so a slow spell of a shared
  // machine (which only adds time) hits both ends of a difference alike instead of skewing it.
  const slopesAt = async (sz: number): Promise<[number, number]> => {
    const shapes = [mLo, mHi].map((m) => {
      const per = 2 * m * sz * sz;
      const n2 = Math.max(8, Math.min(512, Math.round(work / per)));
      const n1 = Math.max(2, Math.round(n2 / 4));
      const inner = Math.max(1, Math.round(work / (n2 * per)));
      const ops = [n1, n2].map((n) => {
        const a = tf.randomNormal([n, m, sz], 0, 1, 'float32', 5);
        const b = tf.randomNormal([n, sz, sz], 0, 1, 'float32', 6);
        return { n, a, b, op: () => tf.matMul(a, b), times: [] as number[] };
      });
      return { m, per, n1, n2, inner, ops, slopes: [] as number[] };
    });
    for (let round = 0; round < repeats + 2; round++)
      for (const sh of shapes) {
        const t1 = await timeBatch(sh.ops[0]!.op, sh.inner);
        const t2 = await timeBatch(sh.ops[1]!.op, sh.inner);
        if (round < 2) continue;
        sh.ops[0]!.times.push(t1);
        sh.ops[1]!.times.push(t2);
        sh.slopes.push((t2 - t1) / (sh.n2 - sh.n1));
      }
    return shapes.map((sh) => {
      for (const o of sh.ops) {
        const sec = median(o.times);
        measured.push({ what: `batched-matmul ${o.n}x${sh.m}x${sz}x${sz}`, size: sz, seconds: sec, rate: (o.n * sh.per) / Math.max(sec - overhead, sec / 100) });
        tf.dispose([o.a, o.b]);
      }
      // Noise can make the difference non-positive; a matrix never costs less than its arithmetic at the peak.
      return Math.max(median(sh.slopes), sh.per / peak);
    }) as [number, number];
  };
  for (const sz of opts.quick ? [16, 64] : [8, 16, 32, 64, 128, 256]) {
    const [lo, hi] = await slopesAt(sz);
    // slope(m) = perMatrix + m * 2 s^2 / rate, a line in m through the two points.
    let g = (hi - lo) / (mHi - mLo);
    let perMatrix = lo - mLo * g;
    if (g <= 0) {
      // The rows added no measurable time: all of it is per matrix.
      g = (2 * sz * sz) / peak;
      perMatrix = Math.max(0, lo - mLo * g);
    } else if (perMatrix < 0) {
      perMatrix = 0;
      g = hi / mHi;
    }
    const rate = Math.min((2 * sz * sz) / g, peak);
    batched.push({ rhsElements: sz * sz, rate, perMatrix });
    log(`batched matmul [n,m,${sz}]x[n,${sz},${sz}]: ${(perMatrix * 1e6).toFixed(2)} us per matrix + ${(rate / 1e9).toFixed(2)} GFLOP/s`);
  }

  // Packing a new right operand: a 2-D [128, 256] x [256, 256] product with the same right tensor
  // every call against one with a tensor just computed (x + 0, whose own time is subtracted). The
  // three are timed round-robin and the figure is the median over rounds of that round's
  // difference per right-hand element.
  const [pm, pk, pn] = [128, 256, 256];
  const pa = tf.randomNormal([pm, pk], 0, 1, 'float32', 9);
  const pb = tf.randomNormal([pk, pn], 0, 1, 'float32', 10);
  const zero = tf.scalar(0);
  const packOps = [
    () => tf.matMul(pa, pb),
    () => tf.add(pb, zero),
    () => {
      const b = tf.add(pb, zero);
      const y = tf.matMul(pa, b);
      b.dispose();
      return y;
    },
  ];
  const packInner = opts.quick ? 2 : 10;
  const extra: number[] = [];
  for (let round = 0; round < repeats + 2; round++) {
    const [reused, add, fresh] = [await timeBatch(packOps[0]!, packInner), await timeBatch(packOps[1]!, packInner), await timeBatch(packOps[2]!, packInner)];
    if (round >= 2) extra.push((fresh - add - reused) / (pk * pn));
  }
  tf.dispose([pa, pb, zero]);
  const freshOperand = Math.max(0, median(extra));
  measured.push({ what: `fresh-operand ${pm}x${pk}x${pn}`, size: pk * pn, seconds: freshOperand * pk * pn });
  log(`fresh right operand [${pm},${pk}]x[${pk},${pn}]: ${(freshOperand * 1e9).toFixed(2)} ns per element`);

  // Copies, in bytes read + written per second, over a [8, 128, 128] tensor (2 MiB, about the size
  // of the stacked expert weights): transposing the last two axes, broadcasting [1, 128, 128] up
  // to it, and summing it down over the first axis.
  const copyRate = async (what: string, op: () => tf.Tensor, nbytes: number): Promise<number> => {
    const s = await timeOp(op, opts.quick ? 2 : 5, repeats);
    const rate = nbytes / Math.max(s - overhead, s / 100);
    measured.push({ what, size: 8 * 128 * 128, seconds: s, rate });
    log(`${what} [8,128,128]: ${(s * 1e3).toFixed(3)} ms, ${(rate / 1e9).toFixed(3)} GB/s`);
    return rate;
  };
  const big = tf.randomNormal([8, 128, 128], 0, 1, 'float32', 7);
  const one = tf.randomNormal([1, 128, 128], 0, 1, 'float32', 8);
  const nBig = 8 * 128 * 128 * 4;
  const transposeRate = await copyRate('transpose', () => tf.transpose(big, [0, 2, 1]), 2 * nBig);
  const broadcastRate = await copyRate('broadcast', () => tf.broadcastTo(one, [8, 128, 128]), nBig + nBig / 8);
  const reductionRate = await copyRate('reduction', () => tf.sum(big, 0), nBig + nBig / 8);
  big.dispose();
  one.dispose();

  // On webgpu the machine that matters is the adapter (a software one is a CPU, not a GPU).
  const adapter = backend === 'webgpu' ? activeAdapter() : undefined;
  const profile: Profile = {
    name: `calibrated-${backend}`,
    description: `Measured by \`loom calibrate\` on ${hostname()} with the tfjs ${backend} backend${adapter ? ` (${describeAdapter(adapter)})` : ''} (float32 only).`,
    source: `loom calibrate, ${new Date().toISOString()}, backend ${backend}, medians of ${repeats} timed batches after warm-up`,
    peakFlops: { float32: peak },
    memoryBandwidth: bw,
    kernelOverhead: overhead,
    memoryCapacity: totalmem(),
    moe: deriveMoeOverhead(overhead, peak),
    rates: {
      batchedMatmul: batched,
      freshOperand,
      transpose: transposeRate,
      broadcast: broadcastRate,
      reduction: reductionRate,
      // What the op registry's matmul kernel does (planMatmul in compiler/ops/linalg.ts): on wasm
      // it copies transposed operands first, and on every backend it folds or broadcasts unequal batches.
      matmulCopiesTransposed: backend === 'wasm',
      // Rank-2 products of the compiled executor are its own on wasm (runtime/wasm-gemm.ts).
      ownProduct2d: ownsProducts(backend),
      matmulCopies: true,
    },
    measured: { backend, measurements: measured as unknown as Record<string, unknown>[] } as Record<string, unknown>,
  };
  return validateProfile(JSON.parse(JSON.stringify(profile)), '<calibrate>');
}
