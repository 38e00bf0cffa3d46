import { describe, expect, it } from 'vitest';
import { infer, run, t, tf } from '../../helpers/ops.ts';
import { eagerBuilder } from '../../helpers/eager-grad.ts';
import { getOp, type GradBuilder } from '../../../compiler/ops/registry.ts';
import { kir } from '../../../compiler/codegen/kir.ts';
import { makeShapeCtx } from '../../../compiler/frontend/shape-ctx.ts';
import type { Attrs, DType } from '../../../compiler/ir.ts';
import { loomErr } from '../../helpers/loom-error.ts';

const i32 = (v: number[] | number[][], shape?: number[]) => tf.tensor(v, shape, 'int32');

/**
 * A GradBuilder that evaluates every op eagerly with the registry's own shape rules and
 * kernels, so a gradient rule can be compared with tfjs autodiff of the forward kernel.
 */

/**
 * Checks op's gradient rule against tfjs autodiff of its kernel, for the inputs listed in
 * `wrt` (the others must get null), with a random cotangent dy.
 */
function checkGrad(op: string, inputs: tf.Tensor[], attrs: Attrs, wrt: number[]): void {
  const def = getOp(op)!;
  const e = eagerBuilder();
  const ids = inputs.map((x) => e.put(x));
  const out = e.b.op(op, ids, attrs);
  const y = e.get(out);
  const dy = e.put(tf.randomNormal(y.shape, 0, 1, 'float32', 7));
  const rule = def.grad!(e.b, { inputs: ids, output: out, attrs, dy });
  expect(rule.length).toBe(inputs.length);
  const outType = { dtype: y.dtype as DType, shape: y.shape };
  const ref = tf.grads((...xs: tf.Tensor[]) => {
    const all = inputs.map((x, i) => (wrt.includes(i) ? xs[wrt.indexOf(i)]! : x));
    return tf.sum(tf.mul(def.kernel(tf, all, attrs, { outType }), e.get(dy)));
  })(wrt.map((i) => inputs[i]!));
  inputs.forEach((x, i) => {
    if (!wrt.includes(i)) return expect(rule[i]).toBeNull();
    const got = e.get(rule[i]!);
    const want = ref[wrt.indexOf(i)]!;
    expect(got.shape).toEqual(x.shape);
    const g = Array.from(got.dataSync());
    const w = Array.from(want.dataSync());
    g.forEach((v, k) => expect(v).toBeCloseTo(w[k]!, 4));
  });
  ref.forEach((r) => r.dispose());
  e.dispose();
}

describe('reshape', () => {
  it('keeps row-major order and infers -1', () => {
    const r = run('reshape', [tf.tensor2d([[1, 2, 3], [4, 5, 6]])], { shape: [3, -1] });
    expect(r.shape).toEqual([3, 2]);
    expect(r.values).toEqual([1, 2, 3, 4, 5, 6]);
  });
  it('infers symbolic shapes', () => {
    expect(infer('reshape', [t(['B', 'T', 4])], { shape: [-1, 4] }).shape).toEqual(['B*T', 4]);
    expect(infer('reshape', [t(['B', 'T', 4])], { shape: ['B', 'T*4'] }).shape).toEqual(['B', '4*T']);
    expect(infer('reshape', [t(['B*T', 4])], { shape: ['B', -1, 4] }).shape).toEqual(['B', 'T', 4]);
    expect(infer('reshape', [t(['B', 6])], { shape: [-1, 3] }).shape).toEqual(['2*B', 3]);
  });
  it('rejects an element-count mismatch with expected/found', () => {
    const e = loomErr(() => infer('reshape', [t([2, 3])], { shape: [4] }));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/element count \(6 -> 4\)/);
    expect(e.info.expected).toBe('a shape with 6 elements');
    expect(e.info.found).toBe('[4] (4 elements)');
    expect(loomErr(() => infer('reshape', [t(['B', 4])], { shape: ['T', 4] })).code).toBe('E_SHAPE');
  });
  it('rejects a -1 that cannot be inferred', () => {
    const e = loomErr(() => infer('reshape', [t(['B', 3])], { shape: [-1, 2] }));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/cannot infer the -1/);
  });
  it('rejects malformed shapes', () => {
    expect(loomErr(() => infer('reshape', [t([4])], { shape: [-1, -1] })).message).toMatch(/at most one -1/);
    expect(loomErr(() => infer('reshape', [t([4])], { shape: [-2, -2] })).code).toBe('E_ATTR');
    const e = loomErr(() => infer('reshape', [t(['B'])], { shape: ['B+1'] }));
    expect(e.code).toBe('E_ATTR');
    expect(e.message).toMatch(/not a valid symbolic dim/);
  });
});

describe('transpose', () => {
  it('reverses axes by default', () => {
    const r = run('transpose', [tf.tensor2d([[1, 2, 3], [4, 5, 6]])]);
    expect(r.shape).toEqual([3, 2]);
    expect(r.values).toEqual([1, 4, 2, 5, 3, 6]);
  });
  it('applies an explicit perm, negative axes included', () => {
    // x[i][j][k] = 100i + 10j + k, shape [2, 3, 2]; out[j][i][k] = x[i][j][k].
    const x = tf.tensor3d([[[0, 1], [10, 11], [20, 21]], [[100, 101], [110, 111], [120, 121]]]);
    const r = run('transpose', [x], { perm: [1, -3, -1] });
    expect(r.shape).toEqual([3, 2, 2]);
    expect(r.values).toEqual([0, 1, 100, 101, 10, 11, 110, 111, 20, 21, 120, 121]);
  });
  it('infers symbolic shapes', () => {
    expect(infer('transpose', [t(['B', 'T', 4])], { perm: [2, 0, 1] }).shape).toEqual([4, 'B', 'T']);
  });
  it('rejects bad perms', () => {
    const dup = loomErr(() => infer('transpose', [t([2, 3])], { perm: [0, 0] }));
    expect(dup.code).toBe('E_ATTR');
    expect(dup.message).toMatch(/not a permutation/);
    const range = loomErr(() => infer('transpose', [t([2, 3])], { perm: [0, 2] }));
    expect(range.code).toBe('E_AXIS');
    expect(range.message).toMatch(/axis 2 is out of range/);
    const len = loomErr(() => infer('transpose', [t([2, 3])], { perm: [1, 0, 2] }));
    expect(len.code).toBe('E_ATTR');
    expect(len.message).toMatch(/perm has 3 entries but x has rank 2/);
  });
});

describe('concat', () => {
  it('joins along an axis, negative axes included', () => {
    const r0 = run('concat', [tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6]])], { axis: 0 });
    expect(r0.shape).toEqual([3, 2]);
    expect(r0.values).toEqual([1, 2, 3, 4, 5, 6]);
    const r1 = run('concat', [tf.tensor2d([[1], [2]]), tf.tensor2d([[3, 4], [5, 6]])], { axis: -1 });
    expect(r1.shape).toEqual([2, 3]);
    expect(r1.values).toEqual([1, 3, 4, 2, 5, 6]);
    expect(run('concat', [tf.tensor1d([7, 8])], { axis: 0 }).values).toEqual([7, 8]);
  });
  it('infers symbolic shapes', () => {
    expect(infer('concat', [t(['B', 3]), t(['B', 5])], { axis: 1 }).shape).toEqual(['B', 8]);
    expect(infer('concat', [t(['B', 4]), t(['B', 4]), t(['2*B', 4])], { axis: 0 }).shape).toEqual(['4*B', 4]);
  });
  it('rejects mismatched inputs', () => {
    const other = loomErr(() => infer('concat', [t([2, 3]), t([2, 4])], { axis: 0 }));
    expect(other.code).toBe('E_SHAPE');
    expect(other.message).toMatch(/axis 1: dimensions differ/);
    const sym = loomErr(() => infer('concat', [t(['B', 4]), t(['T', 4])], { axis: 0 }));
    expect(sym.code).toBe('E_SHAPE');
    expect(sym.message).toMatch(/B \+ T is not a single symbolic dim/);
    expect(loomErr(() => infer('concat', [t([2, 3]), t([2, 3], 'int32')], { axis: 0 })).code).toBe('E_DTYPE');
    expect(loomErr(() => infer('concat', [t([2, 3]), t([3])], { axis: 0 })).code).toBe('E_RANK');
    expect(loomErr(() => infer('concat', [t([2, 3]), t([2, 3])], { axis: 2 })).code).toBe('E_AXIS');
  });
});

describe('stack', () => {
  it('stacks along a new axis', () => {
    const r0 = run('stack', [tf.tensor1d([1, 2]), tf.tensor1d([3, 4])], { axis: 0 });
    expect(r0.shape).toEqual([2, 2]);
    expect(r0.values).toEqual([1, 2, 3, 4]);
    const r1 = run('stack', [tf.tensor1d([1, 2]), tf.tensor1d([3, 4]), tf.tensor1d([5, 6])], { axis: -1 });
    expect(r1.shape).toEqual([2, 3]);
    expect(r1.values).toEqual([1, 3, 5, 2, 4, 6]);
  });
  it('infers symbolic shapes and rejects mismatches', () => {
    expect(infer('stack', [t(['B', 4]), t(['B', 4])], { axis: 1 }).shape).toEqual(['B', 2, 4]);
    expect(loomErr(() => infer('stack', [t(['B', 4]), t(['B', 5])], { axis: 0 })).code).toBe('E_SHAPE');
    expect(loomErr(() => infer('stack', [t([4]), t([4])], { axis: 2 })).code).toBe('E_AXIS');
  });
});

describe('slice', () => {
  // x[i][j] = 4i + j, shape [3, 4]
  const x = () => tf.tensor2d([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]);
  it('takes a block, with -1 to the end', () => {
    const r = run('slice', [x()], { begin: [1, 1], size: [2, -1] });
    expect(r.shape).toEqual([2, 3]);
    expect(r.values).toEqual([5, 6, 7, 9, 10, 11]);
    expect(run('slice', [x()], { begin: [2, 3], size: [1, 1] }).values).toEqual([11]);
    expect(run('slice', [x()], { begin: [0, 4], size: [-1, -1] }).shape).toEqual([3, 0]);
  });
  it('allows symbolic dims with begin 0 and -1, or an explicit size', () => {
    expect(infer('slice', [t(['B', 4])], { begin: [0, 1], size: [-1, 2] }).shape).toEqual(['B', 2]);
    expect(infer('slice', [t(['B', 4])], { begin: [1, 0], size: [3, -1] }).shape).toEqual([3, 4]);
    const e = loomErr(() => infer('slice', [t(['B', 4])], { begin: [1, 0], size: [-1, -1] }));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/cannot slice the symbolic dim B from 1 to the end/);
  });
  it('rejects out-of-range slices', () => {
    const past = loomErr(() => infer('slice', [t([3, 4])], { begin: [1, 2], size: [2, 3] }));
    expect(past.code).toBe('E_SHAPE');
    expect(past.message).toMatch(/runs past the end \(axis 1: begin 2, size 3 on a dim of 4\)/);
    expect(past.info.found).toBe('2 + 3 = 5');
    expect(loomErr(() => infer('slice', [t([3, 4])], { begin: [4, 0], size: [-1, -1] })).message).toMatch(/begins past the end/);
    expect(loomErr(() => infer('slice', [t([3, 4])], { begin: [-1, 0], size: [1, 1] })).message).toMatch(/begins before the start/);
    const len = loomErr(() => infer('slice', [t([3, 4])], { begin: [0], size: [1] }));
    expect(len.code).toBe('E_ATTR');
    expect(len.message).toMatch(/one entry per axis of x \(rank 2\)/);
  });
});

describe('pad_like and split_like (adjoints of slice and concat)', () => {
  it('pad_like places x inside zeros', () => {
    const r = run('pad_like', [tf.tensor2d([[1, 2]]), tf.zeros([2, 3])], { begin: [1, 1] });
    expect(r.shape).toEqual([2, 3]);
    expect(r.values).toEqual([0, 0, 0, 0, 1, 2]);
    expect(loomErr(() => infer('pad_like', [t([1, 2]), t([2, 3])], { begin: [1, 2] })).code).toBe('E_SHAPE');
  });
  it('split_like takes the index-th part', () => {
    const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    const r = run('split_like', [x, tf.zeros([2, 1]), tf.zeros([2, 2])], { axis: 1, index: 1 });
    expect(r.shape).toEqual([2, 2]);
    expect(r.values).toEqual([2, 3, 5, 6]);
    expect(infer('split_like', [t(['2*B', 4]), t(['B', 4]), t(['B', 4])], { axis: 0, index: 1 }).shape).toEqual(['B', 4]);
    expect(loomErr(() => infer('split_like', [t([3, 4]), t([1, 4]), t([1, 4])], { axis: 0, index: 0 })).code).toBe('E_SHAPE');
    expect(loomErr(() => infer('split_like', [t([2, 4]), t([1, 4]), t([1, 4])], { axis: 0, index: 2 })).code).toBe('E_ATTR');
  });
});

describe('tile', () => {
  it('repeats along each axis', () => {
    const r = run('tile', [tf.tensor2d([[1, 2]])], { reps: [2, 2] });
    expect(r.shape).toEqual([2, 4]);
    expect(r.values).toEqual([1, 2, 1, 2, 1, 2, 1, 2]);
  });
  it('infers symbolic shapes and checks reps', () => {
    expect(infer('tile', [t(['B', 3])], { reps: [2, 1] }).shape).toEqual(['2*B', 3]);
    expect(loomErr(() => infer('tile', [t([2, 3])], { reps: [2] })).code).toBe('E_ATTR');
    expect(loomErr(() => infer('tile', [t([2, 3])], { reps: [0, 1] })).message).toMatch(/reps must be >= 1/);
  });
});

describe('gather', () => {
  it('gathers rows (axis 0 by default)', () => {
    const r = run('gather', [tf.tensor2d([[1, 2], [3, 4], [5, 6]]), i32([2, 0, 2])]);
    expect(r.shape).toEqual([3, 2]);
    expect(r.values).toEqual([5, 6, 1, 2, 5, 6]);
  });
  it('gathers along a negative axis with matrix indices', () => {
    const r = run('gather', [tf.tensor2d([[1, 2, 3], [4, 5, 6]]), i32([[2, 0], [1, 1]])], { axis: -1 });
    expect(r.shape).toEqual([2, 2, 2]);
    expect(r.values).toEqual([3, 1, 2, 2, 6, 4, 5, 5]);
  });
  it('drops the axis for scalar indices', () => {
    const r = run('gather', [tf.tensor2d([[1, 2], [3, 4]]), tf.scalar(1, 'int32')], { axis: 1 });
    expect(r.shape).toEqual([2]);
    expect(r.values).toEqual([2, 4]);
  });
  it('infers symbolic shapes and rejects bad inputs', () => {
    expect(infer('gather', [t(['B', 'T', 4]), t(['N', 2], 'int32')], { axis: 1 }).shape).toEqual(['B', 'N', 2, 4]);
    const dt = loomErr(() => infer('gather', [t([3, 4]), t([2])]));
    expect(dt.code).toBe('E_DTYPE');
    expect(dt.message).toMatch(/indices has the wrong dtype/);
    expect(loomErr(() => infer('gather', [t([3, 4]), t([2], 'int32')], { axis: 2 })).code).toBe('E_AXIS');
    expect(loomErr(() => infer('gather', [t([]), t([2], 'int32')])).code).toBe('E_RANK');
  });
});

describe('scatter_add', () => {
  it('accumulates rows, repeated indices summed', () => {
    const u = tf.tensor2d([[1, 2], [3, 4], [5, 6]]);
    const r = run('scatter_add', [u, i32([2, 0, 2]), tf.zeros([4, 2])], { axis: 0 });
    expect(r.shape).toEqual([4, 2]);
    expect(r.values).toEqual([3, 4, 0, 0, 6, 8, 0, 0]);
  });
  it('accumulates along an inner axis', () => {
    // like [2, 3]; updates [2, 2] go to columns 2 and 2 of each row.
    const r = run('scatter_add', [tf.tensor2d([[1, 2], [3, 4]]), i32([2, 2]), tf.ones([2, 3])], { axis: 1 });
    expect(r.values).toEqual([0, 0, 3, 0, 0, 7]);
  });
  it('checks that updates are shaped like a gather output', () => {
    const e = loomErr(() => infer('scatter_add', [t([3, 3]), t([3], 'int32'), t([4, 2])], { axis: 0 }));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/updates axis 1: dimensions differ/);
  });
});

describe('one_hot', () => {
  it('encodes as float32 with on/off values', () => {
    const r = run('one_hot', [i32([0, 2, 1])], { depth: 3 });
    expect(r.dtype).toBe('float32');
    expect(r.shape).toEqual([3, 3]);
    expect(r.values).toEqual([1, 0, 0, 0, 0, 1, 0, 1, 0]);
    const s = run('one_hot', [i32([[1], [-1]])], { depth: 2, on: 5, off: -1 });
    expect(s.shape).toEqual([2, 1, 2]);
    expect(s.values).toEqual([-1, 5, -1, -1]);
  });
  it('infers symbolic shapes and rejects bad inputs', () => {
    expect(infer('one_hot', [t(['B', 'T'], 'int32')], { depth: 6 })).toEqual({ dtype: 'float32', shape: ['B', 'T', 6] });
    expect(loomErr(() => infer('one_hot', [t([3])], { depth: 3 })).code).toBe('E_DTYPE');
    expect(loomErr(() => infer('one_hot', [t([3], 'int32')], { depth: 0 })).message).toMatch(/depth must be >= 1/);
  });
});

describe('expand_dims and squeeze', () => {
  it('expand_dims inserts a 1, negative axes counted in the result', () => {
    const r = run('expand_dims', [tf.tensor2d([[1, 2, 3], [4, 5, 6]])], { axis: 1 });
    expect(r.shape).toEqual([2, 1, 3]);
    expect(r.values).toEqual([1, 2, 3, 4, 5, 6]);
    expect(infer('expand_dims', [t(['B', 3])], { axis: -1 }).shape).toEqual(['B', 3, 1]);
    expect(infer('expand_dims', [t(['B', 3])], { axis: 0 }).shape).toEqual([1, 'B', 3]);
    expect(infer('expand_dims', [t(['B', 3])], { axis: 2 }).shape).toEqual(['B', 3, 1]);
    expect(loomErr(() => infer('expand_dims', [t(['B', 3])], { axis: 3 })).code).toBe('E_AXIS');
  });
  it('squeeze removes 1s', () => {
    const r = run('squeeze', [tf.tensor3d([[[1], [2]]])]);
    expect(r.shape).toEqual([2]);
    expect(r.values).toEqual([1, 2]);
    expect(infer('squeeze', [t([1, 2, 1])], { axes: [-1] }).shape).toEqual([1, 2]);
    expect(infer('squeeze', [t(['B', 1])]).shape).toEqual(['B']);
  });
  it('squeeze rejects non-1 axes', () => {
    const e = loomErr(() => infer('squeeze', [t([1, 2, 1])], { axes: [1] }));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/cannot squeeze axis 1 of \[1, 2, 1\]: its size is 2/);
    expect(loomErr(() => infer('squeeze', [t(['B', 1])], { axes: [0] })).message).toMatch(/symbolic, not known to be 1/);
    expect(loomErr(() => infer('squeeze', [t([1, 1])], { axes: [2] })).code).toBe('E_AXIS');
  });
});

describe('broadcast_to, broadcast_like, sum_to', () => {
  it('broadcast_to follows NumPy rules', () => {
    const r = run('broadcast_to', [tf.tensor1d([1, 2, 3])], { shape: [2, 3] });
    expect(r.values).toEqual([1, 2, 3, 1, 2, 3]);
    expect(run('broadcast_to', [tf.tensor2d([[1], [2]])], { shape: [2, 3] }).values).toEqual([1, 1, 1, 2, 2, 2]);
    expect(infer('broadcast_to', [t(['B', 1])], { shape: ['B', 4] }).shape).toEqual(['B', 4]);
    const e = loomErr(() => infer('broadcast_to', [t([3])], { shape: [2, 4] }));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/cannot broadcast \[3\] to \[2, 4\]/);
    expect(loomErr(() => infer('broadcast_to', [t([2, 3])], { shape: [3] })).code).toBe('E_SHAPE');
  });
  it('broadcast_to needs new symbols to be bound by a graph input', () => {
    const def = getOp('broadcast_to')!;
    const ctx = (bound: string[]) => makeShapeCtx({ op: 'broadcast_to' }, new Set(bound));
    expect(def.shape([t([1, 4])], { shape: ['B', 4] }, ctx(['B'])).shape).toEqual(['B', 4]);
    const e = loomErr(() => def.shape([t([1, 4])], { shape: ['B', 4] }, ctx([])));
    expect(e.code).toBe('E_UNBOUND_DIM');
    expect(e.message).toMatch(/mentions the symbol B, which no graph input binds/);
    expect(loomErr(() => infer('slice', [t([5, 4])], { begin: [0, 0], size: ['N', -1] })).code).toBe('E_UNBOUND_DIM');
  });
  it("broadcast_like takes like's shape", () => {
    const r = run('broadcast_like', [tf.tensor2d([[1], [2]]), tf.zeros([3, 2, 2], 'int32')]);
    expect(r.shape).toEqual([3, 2, 2]);
    expect(r.values).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]);
    expect(infer('broadcast_like', [t([1]), t(['T*B', 2])]).shape).toEqual(['B*T', 2]);
    expect(loomErr(() => infer('broadcast_like', [t([3]), t([2])])).code).toBe('E_SHAPE');
  });
  it('sum_to sums leading axes and axes of size 1 in like', () => {
    const x = () => tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    expect(run('sum_to', [x(), tf.zeros([3])]).values).toEqual([5, 7, 9]);
    const rows = run('sum_to', [x(), tf.zeros([2, 1])]);
    expect(rows.shape).toEqual([2, 1]);
    expect(rows.values).toEqual([6, 15]);
    expect(run('sum_to', [x(), tf.zeros([])]).values).toEqual([21]);
    expect(run('sum_to', [x(), tf.zeros([2, 3])]).values).toEqual([1, 2, 3, 4, 5, 6]);
    const x3 = tf.tensor3d([[[1, 2, 3], [4, 5, 6]], [[10, 20, 30], [40, 50, 60]]]);
    const r3 = run('sum_to', [x3, tf.zeros([1, 3])]);
    expect(r3.shape).toEqual([1, 3]);
    expect(r3.values).toEqual([55, 77, 99]);
  });
  it("sum_to's type is like's shape with float32", () => {
    expect(infer('sum_to', [t(['B', 'T', 4]), t(['T', 1])])).toEqual({ dtype: 'float32', shape: ['T', 1] });
    expect(loomErr(() => infer('sum_to', [t([2, 3], 'int32'), t([3])])).code).toBe('E_DTYPE');
    const e = loomErr(() => infer('sum_to', [t([2, 3]), t([2])]));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/cannot sum \[2, 3\] down to \[2\]/);
  });
});

describe('kernels', () => {
  it('neither dispose their inputs nor leak', () => {
    const cases: [string, () => tf.Tensor[], Attrs][] = [
      ['reshape', () => [tf.ones([2, 3])], { shape: [-1] }],
      ['transpose', () => [tf.ones([2, 3])], {}],
      ['concat', () => [tf.ones([2, 3])], { axis: 0 }],
      ['slice', () => [tf.ones([2, 3])], { begin: [0, 0], size: [-1, -1] }],
      ['gather', () => [tf.ones([2, 3]), i32([1])], {}],
      ['scatter_add', () => [tf.ones([2, 3]), i32([1, 1]), tf.ones([2, 3])], { axis: 0 }],
      ['sum_to', () => [tf.ones([2, 3]), tf.ones([2, 3])], {}],
      ['sum_to', () => [tf.ones([2, 3]), tf.ones([1])], {}],
      ['squeeze', () => [tf.ones([1, 3])], {}],
      ['broadcast_to', () => [tf.ones([3])], { shape: [3] }],
    ];
    for (const [op, make, attrs] of cases) {
      const inputs = make();
      const before = tf.memory().numTensors;
      run(op, inputs, attrs);
      expect(tf.memory().numTensors, op).toBe(before);
      for (const x of inputs) expect(x.isDisposed, op).toBe(false);
      inputs.forEach((x) => x.dispose());
    }
  });
});

describe('registry entries', () => {
  it('have docs, fusion classes and costs', () => {
    const views = ['reshape', 'expand_dims', 'squeeze'];
    const all = [...views, 'transpose', 'concat', 'stack', 'slice', 'pad_like', 'split_like', 'tile', 'gather', 'scatter_add', 'one_hot', 'broadcast_to', 'broadcast_like', 'sum_to'];
    for (const name of all) {
      const def = getOp(name)!;
      expect(def.family).toBe('shape');
      expect(def.doc.length).toBeGreaterThan(10);
      const fusion = views.includes(name) ? 'view' : name.startsWith('broadcast_') ? 'elementwise' : name === 'sum_to' ? 'reduction' : 'opaque';
      expect(def.fusion).toBe(fusion);
    }
    // broadcast_* are elementwise copies; sum_to reduces the axes a broadcast expanded.
    expect(getOp('broadcast_like')!.scalar!([kir.load(0, 'float32'), kir.load(1, 'float32')], {})).toEqual(kir.load(0, 'float32'));
    expect(getOp('sum_to')!.reducer!.axes([2, 5, 4], [5, 1], {})).toEqual([0, 2]);
    // gather of 3 rows of 4 floats with 3 int32 indices: reads indices + rows, writes rows.
    const c = getOp('gather')!.cost([{ dtype: 'float32', shape: [10, 4] }, { dtype: 'int32', shape: [3] }], { dtype: 'float32', shape: [3, 4] }, {});
    expect(c).toEqual({ flops: 0, bytes: 12 + 2 * 48 });
    const s = getOp('sum_to')!.cost([{ dtype: 'float32', shape: [5, 4] }, { dtype: 'float32', shape: [4] }], { dtype: 'float32', shape: [4] }, {});
    expect(s).toEqual({ flops: 20, bytes: 80 + 16 });
  });
});

describe('gradient rules agree with tfjs autodiff of the kernels', () => {
  const r = (shape: number[], seed = 1) => tf.randomNormal(shape, 0, 1, 'float32', seed);
  it('views and transpose', () => {
    checkGrad('reshape', [r([2, 3, 4])], { shape: [6, -1] }, [0]);
    checkGrad('expand_dims', [r([2, 3])], { axis: -2 }, [0]);
    checkGrad('squeeze', [r([2, 1, 3, 1])], {}, [0]);
    checkGrad('transpose', [r([2, 3, 4])], { perm: [2, 0, 1] }, [0]);
    checkGrad('transpose', [r([2, 3, 4])], {}, [0]);
  });
  it('concat, stack, slice, tile', () => {
    checkGrad('concat', [r([2, 3], 1), r([2, 1], 2), r([2, 2], 3)], { axis: -1 }, [0, 1, 2]);
    checkGrad('stack', [r([2, 3], 1), r([2, 3], 2)], { axis: 1 }, [0, 1]);
    checkGrad('slice', [r([3, 4])], { begin: [1, 1], size: [2, -1] }, [0]);
    checkGrad('tile', [r([2, 3])], { reps: [3, 2] }, [0]);
  });
  it('gather, scatter_add and the gradient helpers', () => {
    checkGrad('gather', [r([4, 3]), i32([[3, 0], [3, 3]])], { axis: 0 }, [0]);
    checkGrad('gather', [r([2, 4, 3]), i32([1, 1, 2])], { axis: -2 }, [0]);
    checkGrad('scatter_add', [r([2, 3]), i32([1, 1, 0]), tf.zeros([2, 2])], { axis: 1 }, [0]);
    checkGrad('pad_like', [r([1, 2]), tf.zeros([3, 3])], { begin: [2, 0] }, [0]);
    checkGrad('split_like', [r([2, 5]), tf.zeros([2, 2]), tf.zeros([2, 3])], { axis: 1, index: 1 }, [0]);
  });
  it('broadcasting ops', () => {
    checkGrad('broadcast_to', [r([3, 1])], { shape: [2, 3, 4] }, [0]);
    checkGrad('broadcast_like', [r([1, 4]), tf.zeros([3, 4])], {}, [0]);
    checkGrad('sum_to', [r([2, 3, 4]), tf.zeros([3, 1])], {}, [0]);
  });
  it('one_hot has no gradient', () => {
    const def = getOp('one_hot')!;
    const e = eagerBuilder();
    const idx = e.put(i32([1]));
    const out = e.b.op('one_hot', [idx], { depth: 2 });
    expect(def.grad!(e.b, { inputs: [idx], output: out, attrs: { depth: 2 }, dy: out })).toEqual([null]);
    e.dispose();
  });
});
