import { describe, expect, it } from 'vitest';
import { tf } from '../../helpers/ops.ts';
import { expectHostMatches, runHost } from '../../helpers/host-kernel.ts';
import { allOps } from '../../../compiler/ops/registry.ts';
import type { Attrs } from '../../../compiler/ir.ts';

/** Deterministic values: a 32-bit LCG, so failures reproduce. */
function gen(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Floats in [-3, 3) rounded to 1/64, so ties and exact sums occur now and then. */
function floats(shape: number[], seed: number): tf.Tensor {
  const r = gen(seed);
  return tf.tensor(Array.from({ length: sizeOf(shape) }, () => Math.round((r() * 6 - 3) * 64) / 64), shape, 'float32');
}

/** Small integers in [-4, 4]: many ties. */
function ints(shape: number[], seed: number): tf.Tensor {
  const r = gen(seed);
  return tf.tensor(Array.from({ length: sizeOf(shape) }, () => Math.floor(r() * 9) - 4), shape, 'int32');
}

/** Shapes with the axes attributes legal for them (undefined = all axes). */
const CASES: { shape: number[]; axes: (number | number[] | undefined)[] }[] = [
  { shape: [], axes: [undefined, []] },
  { shape: [5], axes: [undefined, 0, -1, []] },
  { shape: [3, 4], axes: [undefined, 0, 1, -1, -2, [0, 1], [-1, 0], []] },
  { shape: [2, 3, 4], axes: [undefined, 0, 1, 2, -2, [0, 2], [2, 0], [1, 2], [0, 1], [-3, -1, 1]] },
  { shape: [2, 1, 3, 2], axes: [undefined, 1, [0, 3], [1, 2], [-4, -2, -1]] },
];

function axesAttrs(axes: number | number[] | undefined, keepdims: boolean): Attrs {
  const a: Attrs = {};
  if (axes !== undefined) a.axes = axes;
  if (keepdims) a.keepdims = true;
  return a;
}

/** Every (shape, axes, keepdims) case for one reduction and one data maker. */
function sweep(op: string, make: (shape: number[], seed: number) => tf.Tensor, extra: Attrs = {}): void {
  let seed = 1;
  for (const { shape, axes } of CASES)
    for (const ax of axes)
      for (const keep of [false, true]) {
        const x = make(shape, seed++);
        expectHostMatches(op, [x], { ...axesAttrs(ax, keep), ...extra });
        x.dispose();
      }
}

const REDUCTIONS = ['sum', 'mean', 'max', 'min', 'prod', 'logsumexp', 'variance', 'std'];
const INT_REDUCTIONS = ['sum', 'max', 'min', 'prod'];
const NN = ['softmax', 'log_softmax', 'categorical_log_prob', 'categorical_one_hot', 'categorical_entropy', 'normal_log_prob'];
/** Every op of the reduce and nn families that this file checks; all have host kernels. */
const COVERED = [...REDUCTIONS, 'argmax', 'argmin', 'reduce_count', ...NN];

describe('host kernels: reduce and nn families', () => {
  it('every reduce and nn op has a host kernel and is covered here', () => {
    const ops = allOps().filter((o) => o.family === 'reduce' || o.family === 'nn');
    expect(ops.map((o) => o.name).sort()).toEqual([...COVERED].sort());
    expect(ops.filter((o) => !o.host).map((o) => o.name)).toEqual([]);
  });
});

describe('host kernels: reductions', () => {
  for (const op of REDUCTIONS)
    it(`${op} over all shapes, axes and keepdims (float32)`, () => sweep(op, floats));

  for (const op of INT_REDUCTIONS)
    it(`${op} on int32 stays int32 and matches exactly`, () => {
      sweep(op, ints);
      expect(runHost(op, [tf.tensor1d([1, 2], 'int32')]).dtype).toBe('int32');
    });

  it('variance and std with ddof 0 and 1', () => {
    for (const op of ['variance', 'std']) for (const ddof of [0, 1]) sweep(op, floats, { ddof });
  });

  it('variance centres on the float32 mean: a large offset and a small spread', () => {
    const x = tf.tensor2d([
      [10000.1, 10000.2, 10000.3, 10000.7],
      [-4096.5, -4096.25, -4096.125, -4096.0625],
    ]);
    for (const op of ['variance', 'std']) for (const ddof of [0, 1]) expectHostMatches(op, [x], { axes: -1, ddof });
    // Here the float32 mean (the kernel's sum of x / n) is off the exact mean by enough to move
    // the variance beyond float32 rounding, so the host must centre on the same value.
    const wide = tf.tensor1d([1000000.0625, 1000000.125, 1000000.3125, 1000000.5625, 1000001, 1000000.0625, 999999.9375]);
    for (const op of ['variance', 'std']) for (const ddof of [0, 1]) expectHostMatches(op, [wide], { ddof });
  });

  it('ddof 1 over a single element divides 0 by 0 (NaN), as the kernel does', () => {
    const x = tf.tensor2d([[1], [2]]);
    expectHostMatches('variance', [x], { axes: 1, ddof: 1 });
    expect(Number.isNaN(runHost('std', [x], { axes: 1, ddof: 1 }).data[0])).toBe(true);
  });

  it('NaN and infinities follow the kernels (NaN wins max/min; -inf slices give NaN logsumexp)', () => {
    const n = Number.NaN;
    const inf = Number.POSITIVE_INFINITY;
    const x = tf.tensor2d([
      [1, n, 3, 2],
      [n, 5, 4, 7],
      [-inf, -inf, -inf, -inf],
      [-inf, 0, -inf, 1],
      [inf, 2, 1, 0],
      [3, 3, 3, 3],
    ]);
    for (const op of REDUCTIONS)
      for (const axes of [1, 0, undefined]) expectHostMatches(op, [x], axes === undefined ? {} : { axes });
  });

  it('logsumexp is stable for large magnitudes', () => {
    const x = tf.tensor2d([[1000, 1000, 999], [-1000, -1001, -1000.5]]);
    expectHostMatches('logsumexp', [x], { axes: 1 });
    expectHostMatches('logsumexp', [x], { axes: 0, keepdims: true });
  });

  it('int32 sums and products wrap as the kernel stores them', () => {
    const big = tf.tensor1d([2147483647, 1], 'int32');
    // 2^31 - 1 + 1 wraps to -2^31 in int32.
    expect(Array.from(runHost('sum', [big]).data)).toEqual([-2147483648]);
    expectHostMatches('sum', [big]);
    const p = tf.tensor2d([[100000, 100000, 7], [65536, 65536, 3]], [2, 3], 'int32');
    // 7e10 mod 2^32 = 1280523264; 3 * 2^32 mod 2^32 = 0.
    expect(Array.from(runHost('prod', [p], { axes: 1 }).data)).toEqual([1280523264, 0]);
    expectHostMatches('prod', [p], { axes: 1 });
    expectHostMatches('prod', [p], { axes: 0 });
  });

  it('reductions over an empty axis', () => {
    const x = tf.zeros([0, 3]);
    for (const op of ['sum', 'mean', 'max', 'min', 'prod', 'logsumexp', 'variance', 'std']) {
      expectHostMatches(op, [x], { axes: 0 });
      expectHostMatches(op, [x], { axes: [0], keepdims: true });
    }
    // Sum over nothing is 0; mean, as tfjs computes it (sum of x / n), is 0 too.
    expect(Array.from(runHost('sum', [x], { axes: 0 }).data)).toEqual([0, 0, 0]);
  });

  it('reduce_count reads the shape', () => {
    for (const { shape, axes } of CASES)
      for (const ax of axes) {
        const x = floats(shape, 3);
        expectHostMatches('reduce_count', [x], ax === undefined ? {} : { axes: ax });
        const want = ax === undefined ? sizeOf(shape) : [ax].flat().reduce((p, a) => p * shape[a < 0 ? a + shape.length : a]!, 1);
        expect(Array.from(runHost('reduce_count', [x], ax === undefined ? {} : { axes: ax }).data)).toEqual([want]);
        x.dispose();
      }
  });
});

describe('host kernels: argmax / argmin', () => {
  const shapes: number[][] = [[1], [5], [3, 4], [2, 3, 4], [2, 1, 3]];
  for (const op of ['argmax', 'argmin'])
    it(`${op} over every axis, keepdims, float32 and int32`, () => {
      let seed = 100;
      for (const shape of shapes)
        for (let axis = -shape.length; axis < shape.length; axis++)
          for (const keepdims of [false, true])
            for (const make of [floats, ints]) {
              const x = make(shape, seed++);
              expectHostMatches(op, [x], keepdims ? { axis, keepdims } : { axis });
              x.dispose();
            }
      // Default axis -1.
      expectHostMatches(op, [ints([3, 4], 7)]);
    });

  it('ties pick the first index; NaN never wins (strict comparisons, as tfjs)', () => {
    const n = Number.NaN;
    const x = tf.tensor2d([
      [1, 3, 3, 0],
      [2, 2, 2, 2],
      [n, 1, 5, 5],
      [0, n, -1, -1],
    ]);
    expect(Array.from(runHost('argmax', [x]).data)).toEqual([1, 0, 0, 0]);
    expect(Array.from(runHost('argmin', [x]).data)).toEqual([3, 0, 0, 2]);
    for (const op of ['argmax', 'argmin']) for (const axis of [0, 1]) expectHostMatches(op, [x], { axis });
    const xi = tf.tensor2d([[4, 4, -2, -2], [0, 1, 1, 0]], [2, 4], 'int32');
    for (const op of ['argmax', 'argmin']) for (const axis of [0, -1]) expectHostMatches(op, [xi], { axis });
  });
});

describe('host kernels: nn', () => {
  const ninf = Number.NEGATIVE_INFINITY;

  for (const op of ['softmax', 'log_softmax'])
    it(`${op} along every axis (default -1)`, () => {
      let seed = 200;
      for (const shape of [[1], [5], [3, 4], [2, 3, 4], [2, 1, 3]]) {
        const x = floats(shape, seed++);
        expectHostMatches(op, [x]);
        for (let axis = -shape.length; axis < shape.length; axis++) expectHostMatches(op, [x], { axis });
        x.dispose();
      }
    });

  it('softmax / log_softmax with masked (-inf) entries, an all -inf row and large logits', () => {
    const x = tf.tensor2d([
      [0, ninf, 1, 2],
      [ninf, ninf, ninf, ninf],
      [1000, 1001, 999, 1000],
      [ninf, 3, ninf, ninf],
    ]);
    for (const op of ['softmax', 'log_softmax']) for (const axis of [-1, 0]) expectHostMatches(op, [x], { axis });
    // Masked entries have probability 0 and log-probability -inf.
    const p = runHost('softmax', [x]).data;
    expect(p[1]).toBe(0);
    expect(p[13]).toBe(1);
    expect(runHost('log_softmax', [x]).data[1]).toBe(ninf);
  });

  it('categorical_log_prob: batch shapes, masked logits, out-of-range actions', () => {
    const logits = tf.tensor2d([
      [0, ninf, 1, 2],
      [0.5, 0.25, -1, 3],
      [ninf, 3, ninf, ninf],
      [1000, 1001, 999, 1000],
      [2, 2, 2, 2],
    ]);
    // Row 0 picks a masked action (-inf); rows 3 and 4 pick out-of-range actions (a zero one-hot row gives 0).
    const actions = tf.tensor1d([1, 3, 1, -1, 4], 'int32');
    expectHostMatches('categorical_log_prob', [logits, actions]);
    const got = runHost('categorical_log_prob', [logits, actions]).data;
    expect(got[0]).toBe(ninf);
    expect(got[2]).toBe(0);
    expect(got[3]).toBe(0);
    expect(got[4]).toBe(0);
    expectHostMatches('categorical_log_prob', [logits, tf.tensor1d([2, 0, 1, 1, 3], 'int32')]);

    const l3 = floats([2, 3, 5], 300);
    const a3 = tf.tensor2d([[0, 4, 2], [1, 3, 0]], [2, 3], 'int32');
    expectHostMatches('categorical_log_prob', [l3, a3]);
    // Rank-1 logits: the actions are a scalar.
    expectHostMatches('categorical_log_prob', [floats([6], 301), tf.scalar(5, 'int32')]);
  });

  it('categorical_log_prob with one category is log 1 = 0 (tfjs oneHot rejects depth 1, so checked by hand)', () => {
    const got = runHost('categorical_log_prob', [tf.tensor2d([[3.5], [-2]]), tf.tensor1d([0, 0], 'int32')]);
    expect(Array.from(got.data)).toEqual([0, 0]);
  });

  it('categorical_one_hot: rows of K with zero rows for out-of-range actions', () => {
    const logits = tf.zeros([5, 4]);
    const actions = tf.tensor1d([1, 3, 0, -1, 4], 'int32');
    expectHostMatches('categorical_one_hot', [actions, logits]);
    expect(Array.from(runHost('categorical_one_hot', [actions, logits]).data)).toEqual([
      0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expectHostMatches('categorical_one_hot', [tf.tensor2d([[0, 4, 2], [1, 3, 0]], [2, 3], 'int32'), tf.zeros([2, 3, 5])]);
    expectHostMatches('categorical_one_hot', [tf.scalar(2, 'int32'), tf.zeros([3])]);
  });

  it('categorical_entropy: batch shapes, masked logits contribute 0, degenerate rows', () => {
    const n = Number.NaN;
    const logits = tf.tensor2d([
      [0, ninf, 1, 2],
      [ninf, ninf, ninf, ninf],
      [ninf, 3, ninf, ninf],
      [1000, 1001, 999, 1000],
      [2, 2, 2, 2],
      [n, 0, 1, 2],
      [Number.POSITIVE_INFINITY, 0, 1, 2],
    ]);
    expectHostMatches('categorical_entropy', [logits]);
    const h = runHost('categorical_entropy', [logits]).data;
    // Uniform over 4: log 4. One live category: 0. The masked one in row 0 adds nothing.
    expect(h[4]).toBeCloseTo(Math.log(4), 6);
    expect(Math.abs(h[2]!)).toBe(0);
    const e = [0, 1, 2].map((v) => Math.exp(v));
    const z = e.reduce((a, b) => a + b, 0);
    expect(h[0]).toBeCloseTo(-e.reduce((s, v) => s + (v / z) * Math.log(v / z), 0), 6);
    expectHostMatches('categorical_entropy', [floats([2, 3, 5], 400)]);
    expectHostMatches('categorical_entropy', [floats([6], 401)]);
    expectHostMatches('categorical_entropy', [floats([3, 1], 402)]);
  });

  it('normal_log_prob with NumPy broadcasting of x, mean and log_std', () => {
    const combos: [number[], number[], number[]][] = [
      [[4, 3], [4, 3], [4, 3]],
      [[4, 3], [3], []],
      [[4, 1], [1, 3], [3]],
      [[], [], []],
      [[2, 1, 3], [4, 1], [1, 4, 3]],
      [[], [2, 3], [2, 1]],
      [[5], [5], [1]],
    ];
    let seed = 500;
    for (const [sx, sm, ss] of combos)
      expectHostMatches('normal_log_prob', [floats(sx, seed++), floats(sm, seed++), floats(ss, seed++)]);
    // Hand value: x = mean gives -log_std - log(2 pi) / 2.
    const got = runHost('normal_log_prob', [tf.scalar(1), tf.scalar(1), tf.scalar(0.5)]).data[0]!;
    expect(got).toBeCloseTo(-0.5 - 0.5 * Math.log(2 * Math.PI), 6);
  });
});
