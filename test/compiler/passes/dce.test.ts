/** Dead-code elimination, alone and in the pipeline, against the interpreter. */
import { describe, expect, it } from 'vitest';
import { dce } from '../../../compiler/passes/dce.ts';
import { compileGraph } from '../../../compiler/compile.ts';
import { compile, expectSameOutputs, f32, load, opCount, uniform } from '../../helpers/grad.ts';

describe('dce', () => {
  it('removes nodes no output depends on, transitively, and keeps the live ones in order', () => {
    const g = load({
      graph: 'dead',
      inputs: { x: { shape: [3] } },
      params: { w: { shape: [3] } },
      nodes: [
        { id: 'a', op: 'mul', in: ['x', 'w'] },
        { id: 'dead1', op: 'exp', in: ['a'] },
        { id: 'dead2', op: 'sum', in: ['dead1'] },
        { id: 'b', op: 'tanh', in: ['a'] },
        { id: 'dead3', op: 'add', in: ['b', 1] },
      ],
      outputs: { b: 'b' },
    });
    const out = dce.run(g);
    expect(out.nodes.map((n) => n.id)).toEqual(['a', 'b']);
    // The signature stays: inputs and params are kept even where unused.
    expect(out.inputs).toEqual(g.inputs);
    expect(out.params).toEqual(g.params);
    expectSameOutputs(g, out, { x: f32([3], [1, -2, 0.5]) }, { w: f32([3], [0.5, 0.25, -1]) });
  });

  it('keeps every output, including outputs that name an input or a param directly', () => {
    const g = load({
      graph: 'direct',
      inputs: { x: { shape: [2] } },
      params: { w: { shape: [2] } },
      nodes: [
        { id: 'n', op: 'neg', in: ['x'] },
        { id: 'unused', op: 'neg', in: ['w'] },
      ],
      outputs: { x: 'x', w: 'w', n: 'n', again: 'n' },
    });
    const out = dce.run(g);
    expect(out.nodes.map((n) => n.id)).toEqual(['n']);
    expect(out.outputs).toEqual(g.outputs);
    expectSameOutputs(g, out, { x: f32([2], [1, 2]) }, { w: f32([2], [3, 4]) });
  });

  it('follows references to multi-output nodes ("node.output") and drops unused literals', () => {
    const g = load({
      graph: 'multi',
      inputs: { x: { shape: [3] } },
      nodes: [
        { id: 'sq', op: 'square', in: ['x'] },
        { id: 'l', op: 'sum', in: ['sq'] },
        { id: 'g', op: 'grad', in: ['l'], attrs: { wrt: ['x'] } },
        { id: 'lit', op: 'mul', in: ['x', 7] },
      ],
      outputs: { dx: 'g.x' },
    });
    const out = dce.run(g);
    expect(out.nodes.map((n) => n.id)).toEqual(['sq', 'l', 'g']);
    expectSameOutputs(g, out, { x: f32([3], [1, -2, 3]) });
  });

  it('is the identity when everything is live', () => {
    const g = load({ graph: 'live', inputs: { x: { shape: [2] } }, nodes: [{ id: 'e', op: 'exp', in: ['x'] }], outputs: { e: 'e' } });
    expect(dce.run(g)).toBe(g);
  });

  it('in the pipeline: drops the forward nodes only the gradient would not need; off switch keeps them', () => {
    // After autodiff, the loss value itself is dead when only gradients are outputs.
    const g = load({
      graph: 'train',
      inputs: { x: { shape: [2, 3] }, w: { shape: [3, 2] } },
      nodes: [
        { id: 'h', op: 'matmul', in: ['x', 'w'] },
        { id: 'unused', op: 'softmax', in: ['h'] },
        { id: 'sq', op: 'square', in: ['h'] },
        { id: 'l', op: 'sum', in: ['sq'] },
        { id: 'g', op: 'grad', in: ['l'], attrs: { wrt: ['w'] } },
      ],
      outputs: { dw: 'g.w' },
    });
    const on = compile(g);
    const off = compile(g, { disabled: new Set(['dce']) });
    expect(opCount(on, 'softmax')).toBe(0);
    expect(opCount(off, 'softmax')).toBe(1);
    expect(on.nodes.length).toBeLessThan(off.nodes.length);
    const { stages } = compileGraph(g, { disabled: new Set(['dce', 'fusion']) });
    expect(stages.find((s) => s.pass === 'dce')!.skipped).toBe(true);
    const inputs = { x: uniform([2, 3], -1, 1, 1), w: uniform([3, 2], -1, 1, 2) };
    expectSameOutputs(g, on, inputs, {}, 1e-5);
    expectSameOutputs(g, off, inputs, {}, 1e-5);
  });
});
