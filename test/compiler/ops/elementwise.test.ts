import { describe, expect, it } from 'vitest';
import { LoomError } from '../../../compiler/errors.ts';
import { infer, run, t, tf } from '../../helpers/ops.ts';

const X = [-2, -0.5, 0, 0.25, 3];
const P = [0.5, 1, 2, 4, 9]; // positive inputs for log, sqrt, ...

/** op -> [input values, expected values computed by hand / with float64 Math]. */
const UNARY: Record<string, [number[], number[]]> = {
  neg: [X, [2, 0.5, -0, -0.25, -3]],
  abs: [X, [2, 0.5, 0, 0.25, 3]],
  sign: [X, [-1, -1, 0, 1, 1]],
  exp: [X, X.map(Math.exp)],
  log: [P, [Math.log(0.5), 0, Math.log(2), Math.log(4), Math.log(9)]],
  log1p: [P, P.map(Math.log1p)],
  sqrt: [P, [Math.SQRT1_2, 1, Math.SQRT2, 2, 3]],
  rsqrt: [P, [Math.SQRT2, 1, Math.SQRT1_2, 0.5, 1 / 3]],
  square: [X, [4, 0.25, 0, 0.0625, 9]],
  reciprocal: [P, [2, 1, 0.5, 0.25, 1 / 9]],
  tanh: [X, X.map(Math.tanh)],
  sigmoid: [X, X.map((x) => 1 / (1 + Math.exp(-x)))],
  softplus: [X, X.map((x) => Math.log(1 + Math.exp(x)))],
  relu: [X, [0, 0, 0, 0.25, 3]],
  sin: [X, X.map(Math.sin)],
  cos: [X, X.map(Math.cos)],
  floor: [X, [-2, -1, 0, 0, 3]],
  ceil: [X, [-2, -0, 0, 1, 3]],
  stop_gradient: [X, X],
  identity: [X, X],
  zeros_like: [X, [0, 0, 0, 0, 0]],
  ones_like: [X, [1, 1, 1, 1, 1]],
};

describe('unary elementwise ops: reference kernels and scalar expressions', () => {
  for (const [op, [input, expected]] of Object.entries(UNARY)) {
    it(`${op}`, () => {
      const r = run(op, [tf.tensor1d(input)]);
      expect(r.shape).toEqual([5]);
      r.values.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
    });
  }

  it('keep the input shape, including symbolic dims, and reject the wrong dtype', () => {
    expect(infer('tanh', [t(['B', 'T', 3])])).toEqual(t(['B', 'T', 3]));
    expect(infer('abs', [t([2], 'int32')])).toEqual(t([2], 'int32'));
    expect(() => infer('tanh', [t([2], 'int32')])).toThrow(/x has the wrong dtype/);
    expect(() => infer('exp', [t([2], 'bool')])).toThrow(LoomError);
  });
});

describe('binary elementwise ops', () => {
  const cases: [string, number[], number[], number[]][] = [
    ['add', [1, 2], [10, 20], [11, 22]],
    ['sub', [1, 2], [10, 20], [-9, -18]],
    ['mul', [1.5, -2], [4, 3], [6, -6]],
    ['div', [1, -3], [4, 2], [0.25, -1.5]],
    ['pow', [2, 9], [3, 0.5], [8, 3]],
    ['maximum', [1, -5], [0, -6], [1, -5]],
    ['minimum', [1, -5], [0, -6], [0, -6]],
    ['mod', [7, -7], [3, 3], [1, 2]],
  ];
  for (const [op, a, b, expected] of cases)
    it(`${op}`, () => {
      const r = run(op, [tf.tensor1d(a), tf.tensor1d(b)]);
      r.values.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
    });

  it('broadcast like NumPy: [2,3] + [3], [2,1] * [1,3], and scalars', () => {
    expect(run('add', [tf.tensor2d([[1, 2, 3], [4, 5, 6]]), tf.tensor1d([10, 20, 30])]).values).toEqual([11, 22, 33, 14, 25, 36]);
    const outer = run('mul', [tf.tensor2d([[1], [2]]), tf.tensor2d([[1, 10, 100]])]);
    expect(outer.shape).toEqual([2, 3]);
    expect(outer.values).toEqual([1, 10, 100, 2, 20, 200]);
    expect(run('sub', [tf.scalar(1), tf.tensor1d([1, 2, 3])]).values).toEqual([0, -1, -2]);
  });

  it('infer broadcast shapes with symbolic dims and reject incompatible ones', () => {
    expect(infer('mul', [t(['B', 1]), t([1, 4])]).shape).toEqual(['B', 4]);
    expect(infer('add', [t(['B', 'T', 4]), t(['T', 1])]).shape).toEqual(['B', 'T', 4]);
    expect(infer('add', [t([]), t(['N'])]).shape).toEqual(['N']);
    const err = (() => {
      try {
        infer('add', [t(['B', 3]), t([4])]);
      } catch (e) {
        return e as LoomError;
      }
    })()!;
    expect(err.info.code).toBe('E_SHAPE');
    expect(err.info.message).toMatch(/not broadcast-compatible \(axis -1 has 3 vs 4\)/);
    expect(err.info.found).toBe('[B, 3] and [4]');
    expect(() => infer('add', [t(['B']), t(['T'])])).toThrow(/not broadcast-compatible/);
  });

  it('require matching dtypes and a numeric dtype', () => {
    expect(() => infer('add', [t([2]), t([2], 'int32')])).toThrow(/inputs must share a dtype/);
    expect(() => infer('div', [t([2], 'int32'), t([2], 'int32')])).toThrow(/wrong dtype/);
    expect(infer('add', [t([2], 'int32'), t([2], 'int32')]).dtype).toBe('int32');
  });
});

describe('comparisons and logical ops', () => {
  const a = [1, 2, 3];
  const b = [3, 2, 1];
  const expected: Record<string, number[]> = {
    equal: [0, 1, 0],
    not_equal: [1, 0, 1],
    less: [1, 0, 0],
    less_equal: [1, 1, 0],
    greater: [0, 0, 1],
    greater_equal: [0, 1, 1],
  };
  for (const [op, want] of Object.entries(expected))
    it(`${op} returns bool`, () => {
      const r = run(op, [tf.tensor1d(a), tf.tensor1d(b)]);
      expect(r.dtype).toBe('bool');
      expect(r.values).toEqual(want);
    });

  it('logical_and, logical_or, logical_not on bools only', () => {
    const p = tf.tensor1d([1, 1, 0, 0], 'bool');
    const q = tf.tensor1d([1, 0, 1, 0], 'bool');
    expect(run('logical_and', [p, q]).values).toEqual([1, 0, 0, 0]);
    expect(run('logical_or', [p, q]).values).toEqual([1, 1, 1, 0]);
    expect(run('logical_not', [p]).values).toEqual([0, 0, 1, 1]);
    expect(() => infer('logical_and', [t([2]), t([2])])).toThrow(/wrong dtype/);
  });
});

describe('where, clip, cast', () => {
  it('where broadcasts cond, x and y', () => {
    const c = tf.tensor2d([[1], [0]], [2, 1], 'bool');
    const r = run('where', [c, tf.tensor2d([[1, 2, 3], [4, 5, 6]]), tf.scalar(-1)]);
    expect(r.shape).toEqual([2, 3]);
    expect(r.values).toEqual([1, 2, 3, -1, -1, -1]);
    expect(infer('where', [t(['B', 1], 'bool'), t([1, 3]), t([])]).shape).toEqual(['B', 3]);
    expect(() => infer('where', [t([2]), t([2]), t([2])])).toThrow(/cond has the wrong dtype/);
    expect(() => infer('where', [t([2], 'bool'), t([2]), t([2], 'int32')])).toThrow(/share a dtype/);
  });

  it('clip clamps to [min, max] and rejects min > max', () => {
    expect(run('clip', [tf.tensor1d([-3, 0.5, 7])], { min: -1, max: 2 }).values).toEqual([-1, 0.5, 2]);
    const e = (() => {
      try {
        infer('clip', [t([2])], { min: 2, max: 1 });
      } catch (x) {
        return x as LoomError;
      }
    })()!;
    expect(e.info.code).toBe('E_ATTR');
    expect(e.info.found).toBe('min=2, max=1');
  });

  it('cast converts between float32, int32 and bool', () => {
    const i = run('cast', [tf.tensor1d([-1.7, 0.2, 2.9])], { dtype: 'int32' });
    expect(i.dtype).toBe('int32');
    expect(i.values).toEqual([-1, 0, 2]);
    expect(run('cast', [tf.tensor1d([0, 2, -1])], { dtype: 'bool' }).values).toEqual([0, 1, 1]);
    expect(run('cast', [tf.tensor1d([1, 0], 'bool')], { dtype: 'float32' }).values).toEqual([1, 0]);
  });
});

describe('const', () => {
  it('builds tensors from nested literals with their inferred shape and dtype', () => {
    const r = run('const', [], { value: [[1, 2], [3, 4]] });
    expect(r.shape).toEqual([2, 2]);
    expect(r.values).toEqual([1, 2, 3, 4]);
    expect(run('const', [], { value: 7, dtype: 'int32' }).dtype).toBe('int32');
    expect(infer('const', [], { value: true }).dtype).toBe('bool');
    expect(() => infer('const', [], { value: [[1, 2], [3]] })).toThrow(/rectangular/);
    expect(() => infer('const', [], { value: [1.5], dtype: 'int32' })).toThrow(/must hold integers/);
  });
});
