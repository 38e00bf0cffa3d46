/**
 * The matmul gradient rule for an operand broadcast over the other's batch dims: its gradient is one
 * product with the broadcast batch folded into the contraction. Checked against tfjs autodiff and
 * central finite differences (checkGrad), and for the structure it emits (no batched product
 * followed by sum_to).
 */
import { describe, expect, it } from 'vitest';
import { checkGrad, uniform, type GradCase } from '../../helpers/grad.ts';
import { getOp, type GradBuilder } from '../../../compiler/ops/registry.ts';
import { makeShapeCtx } from '../../../compiler/frontend/shape-ctx.ts';
import type { Attrs, TensorType } from '../../../compiler/ir.ts';
import type { Shape } from '../../../compiler/dims.ts';

const flagSets: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

/** Stored shape of an operand whose op() is [rows, cols] with batch dims `batch`. */
function stored(batch: number[], rows: number, cols: number, t: boolean): number[] {
  return [...batch, ...(t ? [cols, rows] : [rows, cols])];
}

function mmCase(name: string, sa: number[], sb: number[], ta: boolean, tb: boolean, seed: number): GradCase {
  return {
    name: `${name}: [${sa}]${ta ? 'ᵀ' : ''} x [${sb}]${tb ? 'ᵀ' : ''}`,
    op: 'matmul',
    inputs: { a: uniform(sa, -1, 1, seed), b: uniform(sb, -1, 1, seed + 1) },
    nodes: [{ id: 'y', op: 'matmul', in: ['a', 'b'], attrs: { transpose_a: ta, transpose_b: tb } }],
  };
}

const cases: GradCase[] = [];
flagSets.forEach(([ta, tb], i) => {
  // X [2, 3, m=3, k=4] against a rank-2 weight W [k=4, n=5] on the right ...
  cases.push(mmCase('batched x with a rank-2 weight', stored([2, 3], 3, 4, ta), stored([], 4, 5, tb), ta, tb, 300 + 10 * i));
  // ... and W [m=5, k=3] on the left of X [2, k=3, n=4].
  cases.push(mmCase('rank-2 weight against a batched x', stored([], 5, 3, ta), stored([2], 3, 4, tb), ta, tb, 400 + 10 * i));
  // Stacked expert weights [E=3, s=4, t=2] against activations [B=2, E=3, L=5, s=4], both sides.
  cases.push(mmCase('stacked weights on the right', stored([2, 3], 5, 4, ta), stored([3], 4, 2, tb), ta, tb, 500 + 10 * i));
  cases.push(mmCase('stacked weights on the left', stored([3], 2, 4, ta), stored([2, 3], 4, 5, tb), ta, tb, 600 + 10 * i));
  // A broadcast axis after a kept one ([3, 1] against [3, 2]) and a kept unit axis ([1, 1] against [2, 1]).
  cases.push(mmCase('folded inner batch axis', stored([3, 2], 2, 3, ta), stored([3, 1], 3, 4, tb), ta, tb, 700 + 10 * i));
  cases.push(mmCase('kept unit batch axis', stored([2, 1], 3, 2, ta), stored([1, 1], 2, 3, tb), ta, tb, 800 + 10 * i));
});

describe('matmul gradient with a broadcast operand matches tfjs autodiff and finite differences', () => {
  for (const c of cases) it(c.name, () => void checkGrad(c));
});

interface Emitted {
  op: string;
  inputs: TensorType[];
  out: TensorType;
  attrs: Attrs;
}

/** Runs only shape rules (symbolic dims allowed) and records every op the gradient rule emits. */
function record(sa: Shape, sb: Shape, attrs: Attrs): { emitted: Emitted[]; grads: TensorType[] } {
  const types = new Map<string, TensorType>();
  const emitted: Emitted[] = [];
  let n = 0;
  const b: GradBuilder = {
    op(name, inputs, at = {}) {
      const ins = inputs.map((i) => types.get(i)!);
      const out = getOp(name)!.shape(ins, at, makeShapeCtx({ op: name }));
      const id = `v${n++}`;
      types.set(id, out);
      emitted.push({ op: name, inputs: ins, out, attrs: at });
      return id;
    },
    constant() {
      throw new Error('unexpected constant');
    },
    type: (id) => types.get(id)!,
  };
  types.set('a', { dtype: 'float32', shape: sa });
  types.set('b', { dtype: 'float32', shape: sb });
  const y = b.op('matmul', ['a', 'b'], attrs);
  emitted.length = 0;
  types.set('dy', types.get(y)!);
  const gs = getOp('matmul')!.grad!(b, { inputs: ['a', 'b'], output: y, attrs, dy: 'dy' });
  return { emitted, grads: gs.map((g) => types.get(g!)!) };
}

describe('matmul gradient structure', () => {
  it('folds a symbolic batch into one 2-D product for a rank-2 weight, without sum_to or copies', () => {
    const { emitted, grads } = record(['B', 'T', 4], [4, 5], {});
    expect(grads.map((g) => g.shape)).toEqual([['B', 'T', 4], [4, 5]]);
    expect(emitted.map((e) => e.op)).not.toContain('sum_to');
    expect(emitted.map((e) => e.op)).not.toContain('transpose');
    const dW = emitted.filter((e) => e.op === 'matmul').find((e) => e.inputs.every((t) => t.shape.length === 2))!;
    expect(dW.inputs.map((t) => t.shape)).toEqual([['B*T', 4], ['B*T', 5]]);
    expect(dW.attrs).toEqual({ transpose_a: true, transpose_b: false });
  });

  it('keeps the weight transposed when transpose_b is set', () => {
    const { emitted, grads } = record(['B', 3, 4], [5, 4], { transpose_b: true });
    expect(grads[1]!.shape).toEqual([5, 4]);
    const dW = emitted.find((e) => e.op === 'matmul' && e.out.shape.length === 2)!;
    expect(dW.inputs.map((t) => t.shape)).toEqual([['3*B', 5], ['3*B', 4]]);
    expect(dW.attrs).toEqual({ transpose_a: true, transpose_b: false });
  });

  it('folds the broadcast batch of stacked weights into the rows of an E-batched product (one transpose per operand)', () => {
    const { emitted, grads } = record(['B', 3, 5, 4], [3, 4, 2], {});
    expect(grads.map((g) => g.shape)).toEqual([['B', 3, 5, 4], [3, 4, 2]]);
    expect(emitted.map((e) => e.op)).not.toContain('sum_to');
    expect(emitted.filter((e) => e.op === 'transpose').map((e) => e.attrs.perm)).toEqual([
      [1, 3, 0, 2],
      [1, 0, 2, 3],
    ]);
    const dW = emitted.find((e) => e.op === 'matmul' && e.out.shape.length === 3)!;
    expect(dW.inputs.map((t) => t.shape)).toEqual([[3, 4, '5*B'], [3, '5*B', 2]]);
    expect(dW.attrs).toEqual({ transpose_a: false, transpose_b: false });
  });

  it('leaves operands broadcast on both sides to the batched product and sum_to', () => {
    const { emitted } = record([2, 1, 3, 4], [3, 4, 2], {});
    expect(emitted.filter((e) => e.op === 'sum_to')).toHaveLength(2);
  });
});
