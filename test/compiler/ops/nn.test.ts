import { describe, expect, it } from 'vitest';
import { infer, run, t, tf } from '../../helpers/ops.ts';
import { getOp } from '../../../compiler/ops/registry.ts';
import { evalExpr, kir } from '../../../compiler/codegen/kir.ts';
import { analytic, close, gradCheck, loomErr } from '../../helpers/eager-grad.ts';

/** Plain-JS softmax of one row: the independent reference. */
function softmaxRow(row: number[]): number[] {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const LN3 = Math.log(3);
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

describe('nn: softmax and log_softmax', () => {
  it('match hand values on the last axis', () => {
    close(run('softmax', [tf.tensor1d([0, LN3])]).values, [0.25, 0.75]);
    close(run('log_softmax', [tf.tensor1d([0, LN3])]).values, [Math.log(0.25), Math.log(0.75)]);
    close(run('softmax', [tf.tensor1d([1000, 1000])]).values, [0.5, 0.5]);
    close(run('log_softmax', [tf.tensor1d([-1000, 0])]).values, [-1000, 0]);
  });
  it('work along a non-last axis', () => {
    const x = tf.tensor2d([[0, 0], [LN3, 0]]);
    close(run('softmax', [x], { axis: 0 }).values, [0.25, 0.5, 0.75, 0.5]);
    close(run('log_softmax', [x], { axis: -2 }).values, [Math.log(0.25), Math.log(0.5), Math.log(0.75), Math.log(0.5)]);
    // [2, 3, 2] along axis 1 against the JS reference.
    const v = [0.1, -2, 1.5, 0.3, 2.2, -0.4, 1, 1, 0, 3, -1, 0.5];
    const got = run('softmax', [tf.tensor3d(v, [2, 3, 2])], { axis: 1 });
    expect(got.shape).toEqual([2, 3, 2]);
    const want = new Array<number>(12);
    for (let i = 0; i < 2; i++)
      for (let k = 0; k < 2; k++) {
        const idx = [0, 1, 2].map((j) => i * 6 + j * 2 + k);
        softmaxRow(idx.map((q) => v[q]!)).forEach((p, j) => (want[idx[j]!] = p));
      }
    close(got.values, want);
  });
  it('infer shapes and reject bad inputs', () => {
    expect(infer('softmax', [t(['B', 'K'])], { axis: 0 }).shape).toEqual(['B', 'K']);
    const r = loomErr(() => infer('softmax', [t([])]));
    expect(r.info.code).toBe('E_RANK');
    expect(r.info.found).toBe('a scalar');
    const a = loomErr(() => infer('log_softmax', [t(['B', 4])], { axis: 2 }));
    expect(a.info.code).toBe('E_AXIS');
    expect(a.info.message).toMatch(/axis 2 is out of range/);
    expect(loomErr(() => infer('softmax', [t([4], 'int32')])).info.code).toBe('E_DTYPE');
  });
  it('gradients match finite differences', () => {
    const x = tf.tensor2d([[0.3, -1.2, 2.0], [1.1, 0.4, -0.7]]);
    gradCheck('softmax', [x]);
    gradCheck('softmax', [x], { axis: 0 });
    gradCheck('log_softmax', [x]);
    gradCheck('log_softmax', [x], { axis: -2 });
  });
});

describe('nn: categorical distributions', () => {
  const logits = () => tf.tensor2d([[0, LN3], [0, 0]]);
  it('categorical_log_prob gathers log_softmax at the actions', () => {
    const r = run('categorical_log_prob', [logits(), tf.tensor1d([1, 0], 'int32')]);
    expect(r.shape).toEqual([2]);
    close(r.values, [Math.log(0.75), Math.log(0.5)]);
    // A single distribution with a scalar action.
    close(run('categorical_log_prob', [tf.tensor1d([0, LN3]), tf.scalar(0, 'int32')]).values, [Math.log(0.25)]);
  });
  it('masked (-inf) logits give finite log-probs and entropies', () => {
    const l = tf.tensor2d([[0, -Infinity, LN3]]);
    close(run('categorical_log_prob', [l, tf.tensor1d([2], 'int32')]).values, [Math.log(0.75)]);
    close(run('categorical_entropy', [l]).values, [-(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75))]);
    close(run('categorical_entropy', [tf.tensor1d([0, -Infinity])]).values, [0]);
  });
  it('categorical_entropy matches -sum p log p', () => {
    const r = run('categorical_entropy', [logits()]);
    expect(r.shape).toEqual([2]);
    close(r.values, [-(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75)), Math.log(2)]);
  });
  it('categorical_one_hot takes K from the logits', () => {
    const r = run('categorical_one_hot', [tf.tensor1d([2, 0], 'int32'), tf.zeros([2, 3])]);
    expect(r.dtype).toBe('float32');
    expect(r.values).toEqual([0, 0, 1, 1, 0, 0]);
    expect(infer('categorical_one_hot', [t(['B'], 'int32'), t(['B', 'K'])]).shape).toEqual(['B', 'K']);
  });
  it('infer symbolic shapes', () => {
    expect(infer('categorical_log_prob', [t(['B', 'T', 4]), t(['B', 'T'], 'int32')]).shape).toEqual(['B', 'T']);
    expect(infer('categorical_entropy', [t(['B', 4])]).shape).toEqual(['B']);
  });
  it('reject mismatched actions', () => {
    const d = loomErr(() => infer('categorical_log_prob', [t(['B', 4]), t(['B'])]));
    expect(d.info.code).toBe('E_DTYPE');
    expect(d.info.message).toMatch(/actions/);
    expect(d.info.expected).toBe('int32');
    const r = loomErr(() => infer('categorical_log_prob', [t(['B', 4]), t(['B', 4], 'int32')]));
    expect(r.info.code).toBe('E_RANK');
    expect(r.info.expected).toBe('rank 1');
    const s = loomErr(() => infer('categorical_log_prob', [t(['B', 4]), t(['T'], 'int32')]));
    expect(s.info.code).toBe('E_SHAPE');
    expect(s.info.message).toMatch(/actions axis 0/);
    expect([s.info.expected, s.info.found]).toEqual(['B', 'T']);
    expect(loomErr(() => infer('categorical_entropy', [t([])])).info.code).toBe('E_RANK');
  });
  it('gradients match finite differences; actions get none', () => {
    const l = tf.tensor2d([[0.3, -1.2, 2.0], [1.1, 0.4, -0.7]]);
    const acts = tf.tensor1d([2, 0], 'int32');
    gradCheck('categorical_log_prob', [l, acts]);
    expect(analytic('categorical_log_prob', [l, acts], {})[1]).toBeNull();
    gradCheck('categorical_entropy', [l]);
  });
  it('entropy gradient is finite with masked logits', () => {
    const g = analytic('categorical_entropy', [tf.tensor1d([0, -Infinity, LN3])], {}, [1])[0]!;
    expect(g.every(Number.isFinite)).toBe(true);
    expect(Math.abs(g[1]!)).toBe(0);
    // -p_j (log p_j + H) for p = [.25, .75].
    const h = -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75));
    close([g[0]!, g[2]!], [-0.25 * (Math.log(0.25) + h), -0.75 * (Math.log(0.75) + h)]);
  });
});

describe('nn: normal_log_prob', () => {
  it('matches the Gaussian log density', () => {
    close(run('normal_log_prob', [tf.scalar(1), tf.scalar(0), tf.scalar(0)]).values, [-0.5 - HALF_LOG_2PI]);
    // sigma = 2: -(2 - 1)^2 / 8 - ln 2 - log(2 pi) / 2.
    close(run('normal_log_prob', [tf.scalar(2), tf.scalar(1), tf.scalar(Math.log(2))]).values, [-0.125 - Math.log(2) - HALF_LOG_2PI]);
  });
  it('broadcasts its inputs', () => {
    const r = run('normal_log_prob', [tf.tensor2d([[0], [1]]), tf.tensor1d([0, 1, 2]), tf.scalar(0)]);
    expect(r.shape).toEqual([2, 3]);
    const want = [0, 1].flatMap((x) => [0, 1, 2].map((m) => -((x - m) ** 2) / 2 - HALF_LOG_2PI));
    close(r.values, want);
    expect(infer('normal_log_prob', [t(['B', 2]), t([2]), t([2])]).shape).toEqual(['B', 2]);
    const e = loomErr(() => infer('normal_log_prob', [t(['B', 2]), t([3]), t([2])]));
    expect(e.info.code).toBe('E_SHAPE');
    expect(e.info.message).toMatch(/broadcast/);
  });
  it('its scalar expression agrees with the kernel', () => {
    const expr = getOp('normal_log_prob')!.scalar!([0, 1, 2].map((k) => kir.load(k, 'float32')), {});
    const f = (x: number, m: number, s: number) => evalExpr(expr, [x, m, s]);
    const cases: [number, number, number][] = [[1, 0, 0], [2, 1, Math.log(2)], [-0.3, 0.7, -1.1]];
    for (const [x, m, s] of cases) close([f(x, m, s)], run('normal_log_prob', [tf.scalar(x), tf.scalar(m), tf.scalar(s)]).values);
    expect(getOp('normal_log_prob')!.fusion).toBe('elementwise');
  });
  it('gradients match finite differences, summed over broadcast axes', () => {
    gradCheck('normal_log_prob', [tf.tensor2d([[0.2, -0.5, 1.3], [0.9, 0.1, -1.4]]), tf.tensor1d([0.1, -0.2, 0.4]), tf.tensor2d([[-0.3], [0.5]])]);
  });
  it('kernels do not leak or dispose inputs', () => {
    const l = tf.tensor2d([[0.3, -1.2, 2.0], [1.1, 0.4, -0.7]]);
    const a = tf.tensor1d([2, 0], 'int32');
    const before = tf.memory().numTensors;
    run('softmax', [l], { axis: 0 });
    run('log_softmax', [l]);
    run('categorical_log_prob', [l, a]);
    run('categorical_entropy', [l]);
    run('categorical_one_hot', [a, l]);
    run('normal_log_prob', [l, l, l]);
    expect(tf.memory().numTensors).toBe(before);
    expect(l.isDisposed || a.isDisposed).toBe(false);
  });
});
