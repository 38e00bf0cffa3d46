import { describe, expect, it } from 'vitest';
import { infer, run, t, tf } from '../../helpers/ops.ts';

describe('elementwise ops', () => {
  it('add broadcasts like NumPy', () => {
    const r = run('add', [tf.tensor2d([[1, 2, 3], [4, 5, 6]]), tf.tensor1d([10, 20, 30])]);
    expect(r.shape).toEqual([2, 3]);
    expect(r.values).toEqual([11, 22, 33, 14, 25, 36]);
  });
  it('infers symbolic broadcast shapes', () => {
    expect(infer('mul', [t(['B', 1]), t([1, 4])]).shape).toEqual(['B', 4]);
  });
  it('rejects incompatible shapes', () => {
    expect(() => infer('add', [t(['B', 3]), t([4])])).toThrow(/not broadcast-compatible/);
  });
});
