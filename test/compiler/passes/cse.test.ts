/** Common-subexpression elimination, alone and in the pipeline, against the interpreter. */
import { describe, expect, it } from 'vitest';
import { cse } from '../../../compiler/passes/cse.ts';
import { constantFolding } from '../../../compiler/passes/constant-folding.ts';
import { defineOp, streamingCost } from '../../../compiler/ops/registry.ts';
import { compileGraph } from '../../../compiler/compile.ts';
import { compile, evaluate, expectSameOutputs, f32, load, opCount, uniform } from '../../helpers/grad.ts';

// A test-only op with hidden state: CSE must never merge two of its calls.
defineOp({
  name: 'test_impure_copy',
  family: 'test',
  doc: 'identity, declared impure (test only)',
  inputs: ['x'],
  attrs: { properties: {} },
  shape: ([x]) => x!,
  kernel: (tf, [x]) => tf.clone(x!),
  fusion: 'opaque',
  cost: streamingCost(0),
  pure: false,
});

const xy = { x: uniform([2, 3], -1, 1, 1), y: uniform([2, 3], -1, 1, 2) };

describe('cse', () => {
  it('merges identical pure nodes, then their (now identical) consumers', () => {
    const g = load({
      graph: 'dup',
      inputs: { x: { shape: [2, 3] } },
      nodes: [
        { id: 'e1', op: 'exp', in: ['x'] },
        { id: 'e2', op: 'exp', in: ['x'] },
        { id: 's1', op: 'sum', in: ['e1'], attrs: { axes: 1 } },
        { id: 's2', op: 'sum', in: ['e2'], attrs: { axes: 1 } },
        { id: 'd', op: 'sub', in: ['s1', 's2'] },
      ],
      outputs: { d: 'd', s2: 's2' },
    });
    const out = cse.run(g);
    expect(opCount(out, 'exp')).toBe(1);
    expect(opCount(out, 'sum')).toBe(1);
    expect(out.nodes.find((n) => n.id === 'd')!.inputs).toEqual(['s1', 's1']);
    expect(out.outputs).toEqual({ d: 'd', s2: 's1' });
    const r = expectSameOutputs(g, out, { x: xy.x });
    expect(r.d!.values).toEqual([0, 0]);
  });

  it('keeps nodes whose attributes differ, and merges ones that differ only in key order', () => {
    const g = load({
      graph: 'attrs',
      inputs: { a: { shape: [2, 3] }, b: { shape: [3, 2] } },
      nodes: [
        { id: 's0', op: 'sum', in: ['a'], attrs: { axes: 0 } },
        { id: 's1', op: 'sum', in: ['a'], attrs: { axes: 1 } },
        { id: 'k0', op: 'sum', in: ['a'], attrs: { axes: 0, keepdims: true } },
        { id: 'm1', op: 'matmul', in: ['a', 'b'], attrs: { transpose_a: false, transpose_b: false } },
        { id: 'm2', op: 'matmul', in: ['a', 'b'], attrs: { transpose_b: false, transpose_a: false } },
        { id: 'm3', op: 'matmul', in: ['a', 'b'], attrs: { transpose_a: true, transpose_b: true } },
      ],
      outputs: { s0: 's0', s1: 's1', k0: 'k0', m1: 'm1', m2: 'm2', m3: 'm3' },
    });
    const out = cse.run(g);
    expect(opCount(out, 'sum')).toBe(3);
    expect(opCount(out, 'matmul')).toBe(2);
    expect(out.outputs.m2).toBe('m1');
    expectSameOutputs(g, out, { a: uniform([2, 3], -1, 1, 3), b: uniform([3, 2], -1, 1, 4) });
  });

  it('does not merge the same op on different inputs, or with inputs in another order', () => {
    const g = load({
      graph: 'inputs',
      inputs: { x: { shape: [2, 3] }, y: { shape: [2, 3] } },
      nodes: [
        { id: 'ex', op: 'exp', in: ['x'] },
        { id: 'ey', op: 'exp', in: ['y'] },
        { id: 'd1', op: 'sub', in: ['x', 'y'] },
        { id: 'd2', op: 'sub', in: ['y', 'x'] },
      ],
      outputs: { ex: 'ex', ey: 'ey', d1: 'd1', d2: 'd2' },
    });
    const out = cse.run(g);
    expect(out).toBe(g);
    expectSameOutputs(g, out, xy);
  });

  it('merges equal literal constants (same value and dtype) but not different ones', () => {
    const g = load({
      graph: 'lits',
      inputs: { x: { shape: [3] } },
      nodes: [
        { id: 'a', op: 'mul', in: ['x', 2] },
        { id: 'b', op: 'mul', in: ['x', 2] },
        { id: 'c', op: 'mul', in: ['x', 3] },
        { id: 'i', op: 'const', attrs: { value: 2, dtype: 'int32' } },
        { id: 'ci', op: 'cast', in: ['i'], attrs: { dtype: 'float32' } },
        { id: 'd', op: 'mul', in: ['x', 'ci'] },
      ],
      outputs: { a: 'a', b: 'b', c: 'c', d: 'd' },
    });
    const out = cse.run(g);
    // a:1 and b:1 (both float 2) merge, so a and b merge; 3 and the int32 2 stay.
    expect(opCount(out, 'const')).toBe(3);
    expect(opCount(out, 'mul')).toBe(3);
    expect(out.outputs.b).toBe('a');
    expectSameOutputs(g, out, { x: f32([3], [1, -2, 0.5]) });
  });

  it('keeps constants that differ only in infinities, NaN or the sign of zero', () => {
    // 1/0, -1/0, 0/0 fold to Infinity, -Infinity and NaN; JSON would print all three as null.
    const g = load({
      graph: 'special',
      inputs: { x: { shape: [2] } },
      nodes: [
        { id: 'pinf', op: 'div', in: [1, 0] },
        { id: 'ninf', op: 'div', in: [-1, 0] },
        { id: 'nan', op: 'div', in: [0, 0] },
        { id: 'nz', op: 'neg', in: [0] },
        { id: 'a', op: 'minimum', in: ['x', 'pinf'] },
        { id: 'b', op: 'maximum', in: ['x', 'ninf'] },
        { id: 'c', op: 'add', in: ['x', 'nan'] },
        // 1 / -0 = -Infinity, 1 / 0 = Infinity.
        { id: 'd', op: 'div', in: [1, 'nz'] },
        { id: 'e', op: 'div', in: [1, 0] },
        { id: 'de', op: 'add', in: ['d', 'e'] },
      ],
      outputs: { a: 'a', b: 'b', c: 'c', d: 'd', de: 'de' },
    });
    const folded = constantFolding.run(g);
    const out = cse.run(folded);
    const x = f32([2], [1.5, -2]);
    const r = expectSameOutputs(g, out, { x });
    expect(r.a!.values).toEqual([1.5, -2]);
    expect(r.b!.values).toEqual([1.5, -2]);
    expect(r.c!.values.every(Number.isNaN)).toBe(true);
    expect(r.d!.values).toEqual([-Infinity]);
    expect(r.de!.values.every(Number.isNaN)).toBe(true);
  });

  it('never merges impure ops', () => {
    const g = load({
      graph: 'impure',
      inputs: { x: { shape: [2] } },
      nodes: [
        { id: 'p', op: 'test_impure_copy', in: ['x'] },
        { id: 'q', op: 'test_impure_copy', in: ['x'] },
      ],
      outputs: { p: 'p', q: 'q' },
    });
    expect(opCount(cse.run(g), 'test_impure_copy')).toBe(2);
  });

  it('does not merge structural nodes (two grads of the same loss stay, and still evaluate)', () => {
    const g = load({
      graph: 'grads',
      inputs: { x: { shape: [2] } },
      nodes: [
        { id: 'l', op: 'sum', in: ['x'] },
        { id: 'g1', op: 'grad', in: ['l'], attrs: { wrt: ['x'] } },
        { id: 'g2', op: 'grad', in: ['l'], attrs: { wrt: ['x'] } },
      ],
      outputs: { a: 'g1.x', b: 'g2.x' },
    });
    const out = cse.run(g);
    expect(opCount(out, 'grad')).toBe(2);
    expectSameOutputs(g, out, { x: f32([2], [1, 2]) });
  });

  it('in the pipeline: duplicated gradient subgraphs collapse; switching cse off keeps them', () => {
    // Two grads of the same loss expand into identical nodes; CSE makes them one.
    const json = {
      graph: 'twice',
      inputs: { x: { shape: [2, 3] }, w: { shape: [3, 2] } },
      nodes: [
        { id: 'h', op: 'matmul', in: ['x', 'w'] },
        { id: 't', op: 'tanh', in: ['h'] },
        { id: 'l', op: 'sum', in: ['t'] },
        { id: 'g1', op: 'grad', in: ['l'], attrs: { wrt: ['w'] } },
        { id: 'g2', op: 'grad', in: ['l'], attrs: { wrt: ['w'] } },
        { id: 'd', op: 'sub', in: ['g1.w', 'g2.w'] },
      ],
      outputs: { d: 'd', gw: 'g1.w' },
    };
    const g = load(json);
    const on = compile(g);
    const off = compile(g, { disabled: new Set(['cse']) });
    expect(opCount(on, 'matmul')).toBeLessThan(opCount(off, 'matmul'));
    expect(on.nodes.length).toBeLessThan(off.nodes.length);
    const stage = compileGraph(g, { disabled: new Set(['cse', 'fusion']) }).stages.find((s) => s.pass === 'cse')!;
    expect(stage.skipped).toBe(true);
    const inputs = { x: uniform([2, 3], -1, 1, 5), w: uniform([3, 2], -1, 1, 6) };
    for (const c of [on, off]) expectSameOutputs(g, c, inputs, {}, 1e-5);
    expect(evaluate(on, inputs).d!.values).toEqual([0, 0, 0, 0, 0, 0]);
  });
});
