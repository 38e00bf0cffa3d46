import { describe, expect, it } from 'vitest';
import { infer, run, t, tf } from '../../helpers/ops.ts';
import { getOp } from '../../../compiler/ops/registry.ts';
import type { Attrs } from '../../../compiler/ir.ts';
import { analytic, close, gradCheck, loomErr } from '../../helpers/eager-grad.ts';

const X = () => tf.tensor2d([[1, 5, 3], [4, 2, 6]]);

describe('reduce: reference kernels', () => {
  it('sum over all, one, negative and several axes, with keepdims', () => {
    const x = X();
    expect(run('sum', [x]).values).toEqual([21]);
    expect(run('sum', [x]).shape).toEqual([]);
    expect(run('sum', [x], { axes: 0 }).values).toEqual([5, 7, 9]);
    expect(run('sum', [x], { axes: -1 }).values).toEqual([9, 12]);
    const k = run('sum', [x], { axes: [1], keepdims: true });
    expect(k.shape).toEqual([2, 1]);
    expect(k.values).toEqual([9, 12]);
    const all = run('sum', [x], { axes: [-1, 0], keepdims: true });
    expect(all.shape).toEqual([1, 1]);
    expect(all.values).toEqual([21]);
    // An explicit empty list reduces nothing (NumPy's axis=()).
    expect(run('sum', [x], { axes: [] }).values).toEqual([1, 5, 3, 4, 2, 6]);
  });
  it('sum keeps int32', () => {
    const r = run('sum', [tf.tensor1d([1, 2, 7], 'int32')]);
    expect(r.dtype).toBe('int32');
    expect(r.values).toEqual([10]);
  });
  it('mean, max, min, prod', () => {
    const x = X();
    expect(run('mean', [x], { axes: 1 }).values).toEqual([3, 4]);
    expect(run('mean', [x]).values).toEqual([3.5]);
    expect(run('max', [x], { axes: 0 }).values).toEqual([4, 5, 6]);
    expect(run('max', [x]).values).toEqual([6]);
    expect(run('min', [x], { axes: -1, keepdims: true }).values).toEqual([1, 2]);
    expect(run('prod', [x], { axes: 1 }).values).toEqual([15, 48]);
  });
  it('logsumexp is stable for large inputs', () => {
    const r = run('logsumexp', [tf.tensor2d([[0, Math.log(3)], [1000, 1000]])], { axes: 1 });
    close(r.values, [Math.log(4), 1000 + Math.log(2)]);
    close(run('logsumexp', [tf.tensor1d([-1000, -1000])]).values, [-1000 + Math.log(2)]);
  });
  it('variance and std with ddof 0 and 1', () => {
    const x = tf.tensor2d([[1, 2, 3, 4], [2, 2, 2, 2]]);
    // Row 0: mean 2.5, squared deviations sum to 5.
    close(run('variance', [x], { axes: 1 }).values, [1.25, 0]);
    close(run('variance', [x], { axes: 1, ddof: 1 }).values, [5 / 3, 0]);
    close(run('std', [x], { axes: -1 }).values, [Math.sqrt(1.25), 0]);
    close(run('std', [x], { axes: 1, ddof: 1 }).values, [Math.sqrt(5 / 3), 0]);
    const all = run('variance', [x], { keepdims: true });
    expect(all.shape).toEqual([1, 1]);
    // Mean of all 8 is 2.25; squared deviations: 1.5625 + .0625 + .5625 + 3.0625 + 4 * .0625 = 5.5.
    close(all.values, [5.5 / 8]);
    // variance along axis 0: columns [1,2], [2,2], [3,2], [4,2].
    close(run('variance', [x], { axes: 0 }).values, [0.25, 0, 0.25, 1]);
  });
  it('argmax / argmin pick the first of tied values', () => {
    const x = tf.tensor2d([[1, 3, 3], [2, 2, 1]]);
    const r = run('argmax', [x]);
    expect(r.dtype).toBe('int32');
    expect(r.values).toEqual([1, 0]);
    expect(run('argmin', [x], { axis: -1 }).values).toEqual([0, 2]);
    expect(run('argmax', [X()], { axis: 0 }).values).toEqual([1, 0, 1]);
    const k = run('argmax', [X()], { axis: 0, keepdims: true });
    expect(k.shape).toEqual([1, 3]);
    expect(k.values).toEqual([1, 0, 1]);
    expect(run('argmin', [tf.tensor1d([3, -1, 7], 'int32')]).values).toEqual([1]);
  });
  it('reduce_count counts the reduced elements from the runtime shape', () => {
    const x = tf.zeros([2, 3, 5]);
    expect(run('reduce_count', [x]).values).toEqual([30]);
    expect(run('reduce_count', [x], { axes: [0, -1] }).values).toEqual([10]);
  });
  it('kernels do not leak or dispose inputs', () => {
    const x = tf.tensor2d([[1, 2, 3, 4], [2, 2, 2, 7]]);
    const before = tf.memory().numTensors;
    for (const op of ['sum', 'mean', 'max', 'prod', 'logsumexp', 'variance', 'std', 'argmax', 'reduce_count'])
      run(op, [x], op === 'argmax' ? { keepdims: true } : { axes: 1, keepdims: true });
    expect(tf.memory().numTensors).toBe(before);
    expect(x.isDisposed).toBe(false);
  });
});

describe('reduce: shape inference', () => {
  it('drops or keeps reduced symbolic dims', () => {
    expect(infer('sum', [t(['B', 'T', 4])], { axes: 1 }).shape).toEqual(['B', 4]);
    expect(infer('mean', [t(['B', 'T', 4])], { axes: 1, keepdims: true }).shape).toEqual(['B', 1, 4]);
    expect(infer('max', [t(['B', 'T', 4])], { axes: [-1, 0] }).shape).toEqual(['T']);
    expect(infer('std', [t(['B', 'T'])]).shape).toEqual([]);
    expect(infer('argmax', [t(['B', 6])]).shape).toEqual(['B']);
    expect(infer('argmin', [t(['B', 6])], { axis: 0, keepdims: true })).toEqual({ dtype: 'int32', shape: [1, 6] });
    expect(infer('sum', [t(['B'], 'int32')]).dtype).toBe('int32');
  });
  it('rejects duplicate axes', () => {
    const e = loomErr(() => infer('sum', [t(['B', 3])], { axes: [1, -1] }));
    expect(e.info.code).toBe('E_AXIS');
    expect(e.info.message).toMatch(/listed twice/);
    expect(e.info.expected).toBe('distinct axes');
    expect(e.info.found).toBe('[1,-1]');
  });
  it('rejects out-of-range axes', () => {
    const e = loomErr(() => infer('mean', [t(['B', 3])], { axes: [0, 2] }));
    expect(e.info.code).toBe('E_AXIS');
    expect(e.info.message).toMatch(/axis 2 is out of range for a rank-2/);
    expect(e.info.expected).toBe('axes in [-2, 1]');
    expect(loomErr(() => infer('argmax', [t([2, 3])], { axis: -3 })).info.code).toBe('E_AXIS');
    expect(loomErr(() => infer('variance', [t([2, 3])], { axes: -3 })).info.code).toBe('E_AXIS');
  });
  it('rejects wrong dtypes and ranks', () => {
    const e = loomErr(() => infer('mean', [t([3], 'int32')]));
    expect(e.info.code).toBe('E_DTYPE');
    expect(e.info.expected).toBe('float32');
    expect(loomErr(() => infer('sum', [t([3], 'bool')])).info.code).toBe('E_DTYPE');
    const r = loomErr(() => infer('argmax', [t([])]));
    expect(r.info.code).toBe('E_RANK');
    expect(r.info.message).toMatch(/rank >= 1/);
  });
  it('costs one flop per input element and bytes in + out', () => {
    const c = getOp('sum')!.cost([{ dtype: 'float32', shape: [4, 5] }], { dtype: 'float32', shape: [4] }, { axes: 1 });
    expect(c).toEqual({ flops: 20, bytes: (20 + 4) * 4 });
    expect(getOp('sum')!.fusion).toBe('reduction');
  });
});

describe('reduce: gradients', () => {
  const x = () => tf.tensor2d([[0.3, -1.2, 2.0], [1.1, 0.4, -0.7]]);
  it('sum and mean match finite differences', () => {
    for (const attrs of [{}, { axes: 1 }, { axes: [0], keepdims: true }, { axes: [-1, 0] }] as Attrs[]) {
      gradCheck('sum', [x()], attrs);
      gradCheck('mean', [x()], attrs);
    }
  });
  it('mean divides by the reduced count', () => {
    expect(analytic('mean', [x()], { axes: 0 }, [2, 4, 6])[0]).toEqual([1, 2, 3, 1, 2, 3]);
  });
  it('max / min route dy to the extremum, shared among ties', () => {
    gradCheck('max', [x()], { axes: 1 });
    gradCheck('min', [x()], { axes: 0, keepdims: true });
    const tied = tf.tensor2d([[1, 3, 3], [2, 5, 1]]);
    expect(analytic('max', [tied], { axes: 1 }, [1, 2])[0]).toEqual([0, 0.5, 0.5, 0, 2, 0]);
    expect(analytic('min', [tied], {}, [4])[0]).toEqual([2, 0, 0, 0, 0, 2]);
  });
  it('prod handles zeros', () => {
    gradCheck('prod', [x()], { axes: 1 });
    const z = tf.tensor2d([[2, 0, 3], [0, 0, 3], [2, 4, 5]]);
    // Row 0: only the zero gets the product of the others (6); row 1: two zeros -> all 0.
    expect(analytic('prod', [z], { axes: 1 }, [1, 1, 1])[0]).toEqual([0, 6, 0, 0, 0, 0, 20, 10, 8]);
  });
  it('logsumexp, variance and std match finite differences', () => {
    for (const attrs of [{ axes: 1 }, { keepdims: true }, { axes: 0, ddof: 1 }] as Attrs[]) {
      gradCheck('logsumexp', [x()], attrs);
      gradCheck('variance', [x()], attrs);
      gradCheck('std', [x()], attrs);
    }
  });
  it('std of a constant slice has a zero gradient, not NaN', () => {
    const g = analytic('std', [tf.tensor1d([2, 2, 2])], {}, [1])[0]!;
    expect(g).toEqual([0, 0, 0]);
  });
  it('integer inputs and arg-reductions have no gradient', () => {
    expect(analytic('sum', [tf.tensor1d([1, 2], 'int32')], {})).toEqual([null]);
    expect(analytic('argmax', [x()], {})).toEqual([null]);
    expect(analytic('argmin', [x()], { axis: 0 })).toEqual([null]);
  });
});
