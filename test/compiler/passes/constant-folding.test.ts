/** Constant folding, alone and in the pipeline, against the interpreter (which computes in float32 with tfjs). */
import { describe, expect, it } from 'vitest';
import { constantFolding } from '../../../compiler/passes/constant-folding.ts';
import { compileGraph } from '../../../compiler/compile.ts';
import { compile, evaluate, expectSameOutputs, f32, load, opCount, type RawNode } from '../../helpers/grad.ts';

function constOf(g: ReturnType<typeof load>, id: string) {
  const n = g.nodes.find((x) => x.id === id)!;
  expect(n.op).toBe('const');
  return n;
}

describe('constant-folding', () => {
  it('folds scalar arithmetic like 1 - 0.99, rounded to float32 exactly as float32 kernels compute it', () => {
    const g = load({
      graph: 'scalar',
      inputs: { x: { shape: [2] } },
      nodes: [
        { id: 'c', op: 'sub', in: [1, 0.99] },
        { id: 'y', op: 'mul', in: ['x', 'c'] },
      ],
      outputs: { c: 'c', y: 'y' },
    });
    const out = constantFolding.run(g);
    // The literals are float32 tensors: 0.99 is stored as fround(0.99), and the difference of
    // two nearby float32 values is exact, so the interpreter's result is fround(1 - fround(0.99)).
    const expected = Math.fround(1 - Math.fround(0.99));
    expect(constOf(out, 'c').attrs).toEqual({ value: expected, dtype: 'float32' });
    expect(expected).not.toBe(Math.fround(1 - 0.99));
    // Bit-exact agreement with the interpreter on the unfolded graph.
    const r = expectSameOutputs(g, out, { x: f32([2], [3, -0.5]) }, {}, 0);
    expect(r.c!.values).toEqual([expected]);
    // The folded ops' literals are now dead (DCE removes them); only one op is folded here.
    expect(opCount(out, 'sub')).toBe(0);
    expect(opCount(out, 'mul')).toBe(1);
  });

  it('folds chains and transcendental ops bit-exactly, with values float32-rounded', () => {
    const nodes: RawNode[] = [
      { id: 'a', op: 'div', in: [1, 3] },
      { id: 'b', op: 'exp', in: ['a'] },
      { id: 'c', op: 'mul', in: ['b', 0.1] },
      { id: 'd', op: 'sqrt', in: ['c'] },
      { id: 'e', op: 'tanh', in: ['d'] },
      { id: 'f', op: 'add', in: ['e', 1e-8] },
    ];
    const g = load({ graph: 'chain', inputs: { x: { shape: [] } }, nodes: [...nodes, { id: 'y', op: 'add', in: ['x', 'f'] }], outputs: { f: 'f', y: 'y' } });
    const out = constantFolding.run(g);
    for (const n of nodes) expect(constOf(out, n.id).attrs.dtype).toBe('float32');
    const v = constOf(out, 'f').attrs.value as number;
    expect(Math.fround(v)).toBe(v);
    expectSameOutputs(g, out, { x: f32([], [2]) }, {}, 0);
  });

  it('folds tensors of equal shape and scalar-broadcast operands, elementwise', () => {
    const g = load({
      graph: 'vec',
      inputs: { x: { shape: [2, 2] } },
      nodes: [
        { id: 'k', op: 'const', attrs: { value: [[1, 2], [3, 4]] } },
        { id: 'm', op: 'const', attrs: { value: [[0.5, 0.25], [2, -1]] } },
        { id: 'p', op: 'mul', in: ['k', 'm'] },
        { id: 's', op: 'sub', in: ['p', 0.1] },
        { id: 'y', op: 'add', in: ['x', 's'] },
      ],
      outputs: { s: 's', y: 'y' },
    });
    const out = constantFolding.run(g);
    expect(constOf(out, 's').attrs.value).toEqual([
      [Math.fround(0.5 - Math.fround(0.1)), Math.fround(0.5 - Math.fround(0.1))],
      [Math.fround(6 - Math.fround(0.1)), Math.fround(-4 - Math.fround(0.1))],
    ]);
    expectSameOutputs(g, out, { x: f32([2, 2], [1, 2, 3, 4]) }, {}, 0);
  });

  it('folds int32 and bool results with their dtypes', () => {
    const g = load({
      graph: 'types',
      inputs: { x: { shape: [2] } },
      nodes: [
        { id: 'i', op: 'const', attrs: { value: [7, -3], dtype: 'int32' } },
        { id: 'j', op: 'const', attrs: { value: [2, 2], dtype: 'int32' } },
        { id: 'ij', op: 'mul', in: ['i', 'j'] },
        { id: 'fc', op: 'cast', in: ['ij'], attrs: { dtype: 'float32' } },
        { id: 'gt', op: 'greater', in: ['fc', 0] },
        { id: 'trunc', op: 'cast', in: [-2.7], attrs: { dtype: 'int32' } },
        { id: 'y', op: 'where', in: ['gt', 'x', 'fc'] },
      ],
      outputs: { ij: 'ij', gt: 'gt', trunc: 'trunc', y: 'y' },
    });
    const out = constantFolding.run(g);
    expect(constOf(out, 'ij').attrs).toEqual({ value: [14, -6], dtype: 'int32' });
    expect(constOf(out, 'gt').attrs).toEqual({ value: [true, false], dtype: 'bool' });
    expect(constOf(out, 'trunc').attrs).toEqual({ value: -2, dtype: 'int32' });
    const r = expectSameOutputs(g, out, { x: f32([2], [5, 6]) }, {}, 0);
    expect(r.y!.values).toEqual([5, -6]);
  });

  it('leaves broadcasting between non-scalar constants alone', () => {
    const g = load({
      graph: 'bcast',
      inputs: {},
      nodes: [
        { id: 'col', op: 'const', attrs: { value: [[1], [2], [3]] } },
        { id: 'row', op: 'const', attrs: { value: [[10, 20]] } },
        { id: 'outer', op: 'add', in: ['col', 'row'] },
      ],
      outputs: { outer: 'outer' },
    });
    const out = constantFolding.run(g);
    expect(out).toBe(g);
    expect(evaluate(out, {}).outer!.values).toEqual([11, 21, 12, 22, 13, 23]);
  });

  it('leaves large tensors alone', () => {
    const big = Array.from({ length: 5000 }, (_, i) => i);
    const g = load({
      graph: 'big',
      inputs: {},
      nodes: [
        { id: 'k', op: 'const', attrs: { value: big } },
        { id: 'y', op: 'mul', in: ['k', 2] },
      ],
      outputs: { y: 'y' },
    });
    const out = constantFolding.run(g);
    expect(out).toBe(g);
    expect(opCount(out, 'mul')).toBe(1);
  });

  it('does not fold ops with a non-constant input, or non-elementwise ops', () => {
    const g = load({
      graph: 'mixed',
      inputs: { x: { shape: [2] } },
      nodes: [
        { id: 'a', op: 'mul', in: ['x', 2] },
        { id: 'k', op: 'const', attrs: { value: [1, 2] } },
        { id: 's', op: 'sum', in: ['k'] },
      ],
      outputs: { a: 'a', s: 's' },
    });
    const out = constantFolding.run(g);
    expect(out).toBe(g);
  });

  it('in the pipeline: folding removes ops; the off switch keeps them; outputs agree', () => {
    const g = load({
      graph: 'pipe',
      inputs: { x: { shape: [3] } },
      nodes: [
        { id: 'lr', op: 'mul', in: [3e-4, 0.5] },
        { id: 'decay', op: 'sub', in: [1, 0.99] },
        { id: 'k', op: 'mul', in: ['lr', 'decay'] },
        { id: 'y', op: 'mul', in: ['x', 'k'] },
      ],
      outputs: { y: 'y' },
    });
    const on = compile(g);
    const off = compile(g, { disabled: new Set(['constant-folding']) });
    expect(opCount(on, 'mul')).toBe(1);
    expect(opCount(on, 'sub')).toBe(0);
    expect(opCount(off, 'mul')).toBe(3);
    expect(opCount(off, 'sub')).toBe(1);
    expect(compileGraph(g, { disabled: new Set(['constant-folding', 'fusion']) }).stages.find((s) => s.pass === 'constant-folding')!.skipped).toBe(true);
    const x = { x: f32([3], [1, -2, 1000]) };
    expectSameOutputs(g, on, x, {}, 0);
    expectSameOutputs(g, off, x, {}, 0);
  });
});
