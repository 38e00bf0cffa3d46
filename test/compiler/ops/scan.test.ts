import { describe, expect, it } from 'vitest';
import { infer, run, t, tf } from '../../helpers/ops.ts';
import { getOp, type GradBuilder } from '../../../compiler/ops/registry.ts';
import { makeShapeCtx } from '../../../compiler/frontend/shape-ctx.ts';
import type { Attrs, DType, TensorType } from '../../../compiler/ir.ts';
import { LoomError } from '../../../compiler/errors.ts';

const f = (v: number[] | number[][], shape?: number[]) => tf.tensor(v, shape, 'float32');

describe('reverse_linear_scan', () => {
  it('computes x_t = a_t + c_t x_{t+1} from the end (hand-computed)', () => {
    // x3 = init = 10; x2 = 3 + 0.5*10 = 8; x1 = 2 + 0*8 = 2; x0 = 1 + 2*2 = 5
    const r = run('reverse_linear_scan', [f([1, 2, 3]), f([2, 0, 0.5]), tf.scalar(10)]);
    expect(r.shape).toEqual([3]);
    expect(r.values).toEqual([5, 2, 8]);
  });

  it('is GAE with a = delta, c = gamma*lambda*(1-done), per env column', () => {
    // 2 steps x 2 envs, gamma*lambda = 0.5; env 1 ends after step 0.
    const delta = [
      [1, 2],
      [3, 4],
    ];
    const c = [
      [0.5, 0],
      [0.5, 0.5],
    ];
    // env0: A1 = 3 + 0.5*0 = 3, A0 = 1 + 0.5*3 = 2.5; env1: A1 = 4, A0 = 2 + 0*4 = 2
    const r = run('reverse_linear_scan', [f(delta), f(c), f([0, 0])]);
    expect(r.values).toEqual([2.5, 2, 3, 4]);
  });

  it('handles T = 0 and checks shapes', () => {
    expect(run('reverse_linear_scan', [f([], [0, 2]), f([], [0, 2]), f([1, 2])]).shape).toEqual([0, 2]);
    expect(infer('reverse_linear_scan', [t(['T', 'N']), t(['T', 'N']), t(['N'])])).toEqual(t(['T', 'N']));
    expect(() => infer('reverse_linear_scan', [t(['T', 3]), t(['T', 3]), t([4])])).toThrow(LoomError);
    expect(() => infer('reverse_linear_scan', [t(['T', 3]), t(['T']), t([3])])).toThrow(/same shape/);
    expect(() => infer('reverse_linear_scan', [t([]), t([]), t([])])).toThrow(/time axis/);
  });

  it('cost counts a multiply-add per element', () => {
    const ty = { dtype: 'float32' as const, shape: [4, 3] };
    expect(getOp('reverse_linear_scan')!.cost([ty, ty, { dtype: 'float32', shape: [3] }], ty, {})).toEqual({ flops: 24, bytes: 48 * 3 + 12 });
  });
});

describe('linear_scan and time_shift', () => {
  it('linear_scan runs forwards from init (hand-computed)', () => {
    // x0 = 1 + 2*10 = 21; x1 = 2 + 0*21 = 2; x2 = 3 + 0.5*2 = 4
    expect(run('linear_scan', [f([1, 2, 3]), f([2, 0, 0.5]), tf.scalar(10)]).values).toEqual([21, 2, 4]);
  });
  it('time_shift moves rows by one and fills the edge', () => {
    const x = f([[1, 2], [3, 4], [5, 6]]);
    expect(run('time_shift', [x, f([9, 9])], { offset: 1 }).values).toEqual([3, 4, 5, 6, 9, 9]);
    expect(run('time_shift', [x, f([9, 9])], { offset: -1 }).values).toEqual([9, 9, 1, 2, 3, 4]);
  });
});

/** Float64 reference of both scans. */
function scanRef(a: number[], c: number[], init: number, reverse: boolean): number[] {
  const x = new Array<number>(a.length);
  let s = init;
  for (let k = 0; k < a.length; k++) {
    const i = reverse ? a.length - 1 - k : k;
    s = a[i]! + c[i]! * s;
    x[i] = s;
  }
  return x;
}

function eagerBuilder() {
  const vals = new Map<string, tf.Tensor>();
  let n = 0;
  const put = (x: tf.Tensor) => {
    vals.set(`v${n}`, x);
    return `v${n++}`;
  };
  const typeOf = (x: tf.Tensor): TensorType => ({ dtype: x.dtype as DType, shape: x.shape });
  const b: GradBuilder = {
    op(name: string, inputs: string[], attrs: Attrs = {}) {
      const def = getOp(name)!;
      const xs = inputs.map((i) => vals.get(i)!);
      const ty = def.shape(xs.map(typeOf), attrs, makeShapeCtx({ op: name }));
      return put(def.kernel(tf, xs, attrs, { outType: { dtype: ty.dtype, shape: ty.shape as number[] } }));
    },
    constant: (v: number, dtype: DType = 'float32') => put(tf.scalar(v, dtype)),
    type: (id: string) => typeOf(vals.get(id)!),
  };
  return { b, put, get: (id: string) => vals.get(id)!, dispose: () => vals.forEach((v) => v.dispose()) };
}

describe('scan gradient rules match central differences of a float64 reference', () => {
  const a = [0.3, -1.2, 0.7, 2.0];
  const c = [0.9, 0.0, -0.5, 0.8];
  const init = 1.5;
  const dy = [0.2, -0.4, 1.1, 0.6];
  for (const op of ['reverse_linear_scan', 'linear_scan'] as const) {
    it(op, () => {
      const reverse = op === 'reverse_linear_scan';
      const L = (aa: number[], cc: number[], ii: number) => scanRef(aa, cc, ii, reverse).reduce((s, x, i) => s + x * dy[i]!, 0);
      const h = 1e-4;
      const num = (bump: (d: number) => number) => (bump(h) - bump(-h)) / (2 * h);
      const da = a.map((_, j) => num((d) => L(a.map((v, k) => (k === j ? v + d : v)), c, init)));
      const dc = c.map((_, j) => num((d) => L(a, c.map((v, k) => (k === j ? v + d : v)), init)));
      const dinit = num((d) => L(a, c, init + d));

      const e = eagerBuilder();
      const ids = [e.put(f(a)), e.put(f(c)), e.put(tf.scalar(init))];
      const out = e.b.op(op, ids);
      const rule = getOp(op)!.grad!(e.b, { inputs: ids, output: out, attrs: {}, dy: e.put(f(dy)) });
      const got = rule.map((id) => Array.from(e.get(id!).dataSync()));
      got[0]!.forEach((v, k) => expect(v).toBeCloseTo(da[k]!, 3));
      got[1]!.forEach((v, k) => expect(v).toBeCloseTo(dc[k]!, 3));
      expect(e.get(rule[2]!).shape).toEqual([]);
      expect(got[2]![0]).toBeCloseTo(dinit, 3);
      e.dispose();
    });
  }
});
