import { describe, expect, it } from 'vitest';
import { tf } from '../../helpers/ops.ts';
import { expectHostMatches, runHost } from '../../helpers/host-kernel.ts';
import { allOps, getOp } from '../../../compiler/ops/registry.ts';
import type { DType } from '../../../compiler/ir.ts';

/** Deterministic, distinct-looking values: floats with fractions and signs, ints with signs, bools mixed. */
function seq(shape: number[], dtype: DType = 'float32', salt = 0): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, (_x, i) => {
    const h = (i * 37 + salt * 11 + 5) % 101;
    return dtype === 'float32' ? h / 7 - 6.5 : dtype === 'int32' ? h - 50 : h % 3 === 0 ? 1 : 0;
  });
  return tf.tensor(v, shape, dtype);
}

const i32 = (v: number | number[] | number[][], shape?: number[]) => tf.tensor(v, shape, 'int32');
const DTYPES: DType[] = ['float32', 'int32', 'bool'];

describe('host kernels of shape ops match the reference kernels', () => {
  it('reshape', () => {
    for (const dt of DTYPES) {
      expectHostMatches('reshape', [seq([2, 3, 4], dt)], { shape: [4, -1] });
      expectHostMatches('reshape', [seq([24], dt)], { shape: [2, 3, 2, 2] });
      expectHostMatches('reshape', [seq([], dt)], { shape: [1, 1] });
      expectHostMatches('reshape', [seq([1, 1], dt)], { shape: [] });
    }
    expectHostMatches('reshape', [seq([0, 3])], { shape: [3, 0] });
  });

  it('expand_dims', () => {
    for (const dt of DTYPES) {
      expectHostMatches('expand_dims', [seq([], dt)], { axis: 0 });
      expectHostMatches('expand_dims', [seq([5], dt)], { axis: -1 });
      expectHostMatches('expand_dims', [seq([2, 3, 4], dt)], { axis: 1 });
      expectHostMatches('expand_dims', [seq([2, 3, 4], dt)], { axis: -4 });
    }
  });

  it('squeeze', () => {
    for (const dt of DTYPES) {
      expectHostMatches('squeeze', [seq([1, 3, 1, 2], dt)]);
      expectHostMatches('squeeze', [seq([1, 3, 1, 2], dt)], { axes: [-2] });
      expectHostMatches('squeeze', [seq([1, 1], dt)]);
      expectHostMatches('squeeze', [seq([4, 1], dt)], { axes: [1] });
    }
  });

  it('transpose', () => {
    for (const dt of DTYPES) {
      expectHostMatches('transpose', [seq([2, 3, 4], dt)]);
      expectHostMatches('transpose', [seq([2, 3, 4], dt)], { perm: [1, 0, 2] });
      expectHostMatches('transpose', [seq([2, 3, 4], dt)], { perm: [-1, 0, 1] });
      expectHostMatches('transpose', [seq([5], dt)]);
    }
    expectHostMatches('transpose', [seq([])]);
    expectHostMatches('transpose', [seq([2, 3, 4, 5])], { perm: [3, 1, 0, 2] });
    expectHostMatches('transpose', [seq([3, 1, 2])], { perm: [2, 1, 0] });
    expectHostMatches('transpose', [seq([3, 0, 2])], { perm: [2, 1, 0] });
  });

  it('concat', () => {
    for (const dt of DTYPES) {
      expectHostMatches('concat', [seq([2, 3, 4], dt), seq([2, 1, 4], dt, 1), seq([2, 2, 4], dt, 2)], { axis: 1 });
      expectHostMatches('concat', [seq([2, 3], dt), seq([1, 3], dt, 1)], { axis: 0 });
      expectHostMatches('concat', [seq([2, 3, 4], dt), seq([2, 3, 1], dt, 1)], { axis: -1 });
      expectHostMatches('concat', [seq([3], dt), seq([4], dt, 1)], { axis: 0 });
    }
    expectHostMatches('concat', [seq([2, 3])], { axis: -1 });
    expectHostMatches('concat', [seq([2, 0]), seq([2, 3], 'float32', 1)], { axis: 1 });
  });

  it('concat, reshape and slice copy long contiguous runs whole (flat parameter vectors)', () => {
    for (const dt of DTYPES) {
      // Runs of 16 and more elements are block copies; shorter ones between them still go element by element.
      expectHostMatches('concat', [seq([256], dt), seq([3], dt, 1), seq([4096], dt, 2), seq([16], dt, 3)], { axis: 0 });
      expectHostMatches('concat', [seq([3, 20], dt), seq([3, 2], dt, 1), seq([3, 17], dt, 2)], { axis: 1 });
      expectHostMatches('concat', [seq([2, 9], dt), seq([5, 9], dt, 1)], { axis: 0 });
      expectHostMatches('reshape', [seq([4096], dt)], { shape: [64, 64] });
      expectHostMatches('slice', [seq([9155], dt)], { begin: [320], size: [4096] });
      expectHostMatches('slice', [seq([9155], dt)], { begin: [9154], size: [1] });
      expectHostMatches('slice', [seq([5, 40], dt)], { begin: [1, 3], size: [3, 20] });
      expectHostMatches('slice', [seq([3, 4, 30], dt)], { begin: [1, 1, 0], size: [2, 2, -1] });
    }
  });

  it('stack', () => {
    for (const dt of DTYPES) {
      expectHostMatches('stack', [seq([2, 3], dt), seq([2, 3], dt, 1), seq([2, 3], dt, 2)]);
      expectHostMatches('stack', [seq([2, 3], dt), seq([2, 3], dt, 1)], { axis: 1 });
      expectHostMatches('stack', [seq([2, 3], dt), seq([2, 3], dt, 1)], { axis: -1 });
      expectHostMatches('stack', [seq([], dt), seq([], dt, 1), seq([], dt, 2)], { axis: -1 });
    }
    expectHostMatches('stack', [seq([2, 3, 4])], { axis: 2 });
  });

  it('slice', () => {
    for (const dt of DTYPES) {
      expectHostMatches('slice', [seq([4, 5, 6], dt)], { begin: [1, 0, 2], size: [2, -1, 3] });
      expectHostMatches('slice', [seq([7], dt)], { begin: [2], size: [4] });
      expectHostMatches('slice', [seq([3, 4], dt)], { begin: [0, 3], size: [-1, -1] });
    }
    expectHostMatches('slice', [seq([3, 4])], { begin: [1, 2], size: [0, 2] });
  });

  it('tile', () => {
    for (const dt of DTYPES) {
      expectHostMatches('tile', [seq([3], dt)], { reps: [4] });
      expectHostMatches('tile', [seq([2, 3], dt)], { reps: [2, 3] });
      expectHostMatches('tile', [seq([2, 1, 3], dt)], { reps: [1, 4, 2] });
    }
    expectHostMatches('tile', [seq([2, 3])], { reps: [1, 1] });
  });

  it('gather', () => {
    for (const dt of DTYPES) {
      expectHostMatches('gather', [seq([5, 3], dt), i32([4, 0, 4, 2])]);
      expectHostMatches('gather', [seq([2, 5, 3], dt), i32([[1, 3], [4, 1], [0, 0]])], { axis: 1 });
      expectHostMatches('gather', [seq([2, 5, 3], dt), i32([2, 0])], { axis: -1 });
      // A scalar index removes the axis.
      expectHostMatches('gather', [seq([2, 5, 3], dt), i32(3)], { axis: 1 });
      expectHostMatches('gather', [seq([6], dt), i32(5)]);
    }
    expectHostMatches('gather', [seq([4, 2]), i32([], [0])]);
    expectHostMatches('gather', [seq([3, 2]), i32([2, 0], [2, 1, 1])], { axis: 0 });
  });

  it('gather rejects out-of-range indices, as the reference does', () => {
    for (const idx of [i32([0, 3]), i32([-1])]) {
      const x = seq([3, 2]);
      expect(() => runHost('gather', [x, idx])).toThrow(/index value/);
      expect(() => getOp('gather')!.kernel(tf, [x, idx], {}, { outType: { dtype: 'float32', shape: [idx.size, 2] } })).toThrow(/index value/);
    }
  });

  it('one_hot', () => {
    expectHostMatches('one_hot', [i32([0, 2, 1, 3])], { depth: 4 });
    // Out-of-range and negative indices give all `off`.
    expectHostMatches('one_hot', [i32([[0, 5], [-1, 2]])], { depth: 3, on: 2.5, off: -0.25 });
    expectHostMatches('one_hot', [i32(1)], { depth: 3 });
    expectHostMatches('one_hot', [i32([3, 0, 1, 2, 3, 0], [2, 1, 3])], { depth: 4, on: 0.1 });
    expectHostMatches('one_hot', [i32([], [0])], { depth: 2 });
  });

  it('broadcast_to', () => {
    for (const dt of DTYPES) {
      expectHostMatches('broadcast_to', [seq([3], dt)], { shape: [2, 3] });
      expectHostMatches('broadcast_to', [seq([2, 1, 3], dt)], { shape: [4, 2, 5, 3] });
      expectHostMatches('broadcast_to', [seq([], dt)], { shape: [2, 2] });
      expectHostMatches('broadcast_to', [seq([3, 1], dt)], { shape: [3, 4] });
    }
    expectHostMatches('broadcast_to', [seq([2, 3])], { shape: [2, 3] });
    expectHostMatches('broadcast_to', [seq([1])], { shape: [3, 1, 2] });
  });

  it('broadcast_like', () => {
    for (const dt of DTYPES) {
      expectHostMatches('broadcast_like', [seq([1, 4], dt), seq([3, 4], 'float32')]);
      expectHostMatches('broadcast_like', [seq([2, 1, 1], dt), seq([5, 2, 3, 2], 'int32')]);
      expectHostMatches('broadcast_like', [seq([], dt), seq([3])]);
    }
  });

  it('sum_to', () => {
    const x = seq([2, 3, 4]);
    expectHostMatches('sum_to', [x, seq([3, 1])]);
    expectHostMatches('sum_to', [x, seq([1, 1, 1])]);
    expectHostMatches('sum_to', [x, seq([])]);
    expectHostMatches('sum_to', [x, seq([2, 1, 4])]);
    expectHostMatches('sum_to', [x, seq([1, 3, 1])]);
    expectHostMatches('sum_to', [x, seq([4])]);
    expectHostMatches('sum_to', [x, seq([2, 3, 4])]);
    expectHostMatches('sum_to', [seq([5, 1, 3]), seq([1, 3])]);
    expectHostMatches('sum_to', [seq([]), seq([])]);
    expectHostMatches('sum_to', [seq([0, 3]), seq([1, 3])]);
  });

  it('sum_to by hand', () => {
    // [[1, 2, 3], [4, 5, 6]] summed to [1, 3] and to [2, 1].
    const x = tf.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(Array.from(runHost('sum_to', [x, seq([1, 3])]).data)).toEqual([5, 7, 9]);
    expect(Array.from(runHost('sum_to', [x, seq([2, 1])]).data)).toEqual([6, 15]);
    expect(Array.from(runHost('sum_to', [x, seq([])]).data)).toEqual([21]);
  });

  it('split_like', () => {
    for (const dt of DTYPES) {
      const x = seq([2, 6, 3], dt);
      const likes = [seq([2, 1, 3]), seq([2, 3, 3]), seq([2, 2, 3])];
      for (const index of [0, 1, 2]) expectHostMatches('split_like', [x, ...likes], { axis: 1, index });
      expectHostMatches('split_like', [x, seq([2, 6, 1]), seq([2, 6, 2])], { axis: -1, index: 1 });
    }
  });

  it('pad_like', () => {
    for (const dt of ['float32', 'int32'] as DType[]) {
      expectHostMatches('pad_like', [seq([2, 3], dt), seq([4, 5])], { begin: [1, 2] });
      expectHostMatches('pad_like', [seq([2, 1, 3], dt), seq([3, 2, 3])], { begin: [0, 1, 0] });
      expectHostMatches('pad_like', [seq([4], dt), seq([4])], { begin: [0] });
    }
  });

  it('scatter_add', () => {
    for (const dt of ['float32', 'int32'] as DType[]) {
      // Repeated indices accumulate.
      expectHostMatches('scatter_add', [seq([4, 3], dt), i32([2, 0, 2, 4]), seq([5, 3])]);
      expectHostMatches('scatter_add', [seq([2, 2, 2, 3], dt), i32([[1, 3], [3, 3]]), seq([2, 4, 3])], { axis: 1 });
      expectHostMatches('scatter_add', [seq([2, 3], dt), i32(1), seq([2, 5, 3])], { axis: -2 });
    }
    // Out-of-range indices contribute nothing.
    expectHostMatches('scatter_add', [seq([3]), i32([0, 7, -1]), seq([2])]);
  });

  it('covers every shape op that has a host kernel', () => {
    const covered = [
      'reshape', 'expand_dims', 'squeeze', 'transpose', 'concat', 'stack', 'slice', 'tile', 'gather', 'one_hot',
      'broadcast_to', 'broadcast_like', 'sum_to', 'split_like', 'pad_like', 'scatter_add',
    ];
    const withHost = allOps()
      .filter((o) => o.family === 'shape' && o.host)
      .map((o) => o.name);
    expect([...covered].sort()).toEqual([...withHost].sort());
  });
});
