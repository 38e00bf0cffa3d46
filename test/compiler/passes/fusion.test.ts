import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '../../../compiler/ops/index.ts';
import type { IRGraph, IRNode } from '../../../compiler/ir.ts';
import { fusion } from '../../../compiler/passes/fusion.ts';
import { compileProgram } from '../../../runtime/exec.ts';
import { interpret } from '../../../runtime/interpreter.ts';
import { inlineGraph as load } from '../../helpers/inline-graph.ts';

await tf.setBackend('cpu');

const fusedNodes = (g: IRGraph): IRNode[] => g.nodes.filter((n) => n.op === 'fused');
const bodyIds = (n: IRNode): string[] => n.body!.map((b) => b.id);

/** Runs the graph compiled with and without code generation and interpreted; all three must agree. */
function agree(g: IRGraph, inputs: Record<string, tf.Tensor>, tol = 1e-6): void {
  const ref = interpret(g, inputs, {});
  for (const codegen of [true, false]) {
    const out = compileProgram(g, { codegen, disabled: new Set(['constant-folding', 'simplify', 'cse']) }).run(inputs, {});
    expect(Object.keys(out).sort()).toEqual(Object.keys(ref).sort());
    for (const k of Object.keys(ref)) {
      expect(out[k]!.shape).toEqual(ref[k]!.shape);
      expect(out[k]!.dtype).toEqual(ref[k]!.dtype);
      const a = out[k]!.dataSync();
      const b = ref[k]!.dataSync();
      for (let i = 0; i < b.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(b[i]!)));
    }
    tf.dispose(Object.values(out));
  }
  tf.dispose(Object.values(ref));
}

describe('fusion pass', () => {
  it('fuses an elementwise chain with broadcasting into one node that keeps its body', () => {
    const g = load({
      graph: 'chain',
      inputs: { x: { shape: ['B', 3] }, b: { shape: [3] } },
      nodes: [
        { id: 'z', op: 'add', in: ['x', 'b'] },
        { id: 't', op: 'tanh', in: ['z'] },
        { id: 'y', op: 'mul', in: ['t', 'x'] },
      ],
      outputs: { y: 'y' },
    });
    const f = fusion.run(g);
    const fused = fusedNodes(f);
    expect(fused).toHaveLength(1);
    expect(bodyIds(fused[0]!)).toEqual(['z', 't', 'y']);
    expect(fused[0]!.body!.map((b) => b.op)).toEqual(['add', 'tanh', 'mul']);
    expect(fused[0]!.inputs.sort()).toEqual(['b', 'x']);
    expect(Object.keys(fused[0]!.outputTypes!)).toEqual(['y']);
    expect(f.outputs.y).toBe(`${fused[0]!.id}.y`);
    // The pass is pure: the input graph is untouched.
    expect(g.nodes.map((n) => n.op)).toEqual(['add', 'tanh', 'mul']);
    agree(g, { x: tf.tensor2d([[0.5, -1, 2], [3, 0.25, -0.75]]), b: tf.tensor1d([0.1, 0.2, -0.3]) });
  });

  it('exports a member that is also read outside its group', () => {
    const g = load({
      graph: 'multi',
      inputs: { x: { shape: [4] } },
      nodes: [
        { id: 'e', op: 'exp', in: ['x'] },
        { id: 'n', op: 'neg', in: ['e'] },
        { id: 'r', op: 'reshape', in: ['e'], attrs: { shape: [2, 2] } },
        { id: 't', op: 'transpose', in: ['r'] },
      ],
      outputs: { n: 'n', t: 't' },
    });
    const f = fusion.run(g);
    const [fn] = fusedNodes(f);
    expect(bodyIds(fn!)).toEqual(['e', 'n']);
    expect(Object.keys(fn!.outputTypes!).sort()).toEqual(['e', 'n']);
    expect(f.nodes.find((n) => n.id === 'r')!.inputs).toEqual([`${fn!.id}.e`]);
    agree(g, { x: tf.tensor1d([0, 1, -1, 0.5]) });
  });

  it('fuses an elementwise producer into a reduction with keepdims, and nothing that reads the reduction', () => {
    const g = load({
      graph: 'softmax-ish',
      inputs: { x: { shape: ['B', 4] } },
      nodes: [
        { id: 'e', op: 'exp', in: ['x'] },
        { id: 's', op: 'sum', in: ['e'], attrs: { axes: [1], keepdims: true } },
        { id: 'p', op: 'div', in: ['e', 's'] },
      ],
      outputs: { p: 'p', s: 's' },
    });
    const f = fusion.run(g);
    const fused = fusedNodes(f);
    expect(fused).toHaveLength(1);
    expect(bodyIds(fused[0]!)).toEqual(['e', 's']);
    expect(fused[0]!.attrs.kind).toBe('reduction');
    const p = f.nodes.find((n) => n.id === 'p')!;
    expect(p.inputs).toEqual([`${fused[0]!.id}.e`, `${fused[0]!.id}.s`]);
    agree(g, { x: tf.tensor2d([[1, 2, 3, 4], [-1, 0, 1, 0.5], [0, 0, 0, 0]]) });
  });

  it('fuses reductions over leading, middle and all axes', () => {
    for (const [axes, keepdims] of [[[0], false], [[1], true], [[0, 2], false], [null, false]] as const) {
      const g = load({
        graph: 'red',
        inputs: { x: { shape: [2, 3, 4] }, y: { shape: [4] } },
        nodes: [
          { id: 'm', op: 'mul', in: ['x', 'y'] },
          { id: 'r', op: 'max', in: ['m'], attrs: axes === null ? { keepdims } : { axes: [...axes], keepdims } },
          { id: 'q', op: 'mean', in: ['m'], attrs: axes === null ? { keepdims } : { axes: [...axes], keepdims } },
        ],
        outputs: { r: 'r', q: 'q' },
      });
      expect(fusedNodes(fusion.run(g))).toHaveLength(1);
      const x = tf.tensor3d(Array.from({ length: 24 }, (_v, i) => Math.sin(i * 1.7)), [2, 3, 4]);
      agree(g, { x, y: tf.tensor1d([1, -2, 0.5, 3]) });
    }
  });

  it('takes a matmul with its bias and activation epilogue', () => {
    const g = load({
      graph: 'dense',
      inputs: { x: { shape: ['B', 3] }, w: { shape: [3, 2] }, b: { shape: [2] } },
      nodes: [
        { id: 'h', op: 'matmul', in: ['x', 'w'] },
        { id: 'z', op: 'add', in: ['h', 'b'] },
        { id: 'a', op: 'tanh', in: ['z'] },
      ],
      outputs: { a: 'a' },
    });
    const f = fusion.run(g);
    const [fn] = fusedNodes(f);
    expect(fn!.attrs.kind).toBe('matmul');
    expect(bodyIds(fn!)).toEqual(['h', 'z', 'a']);
    agree(g, { x: tf.tensor2d([[1, 2, 3], [0.5, -1, 0], [0, 0, 1]]), w: tf.tensor2d([[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]]), b: tf.tensor1d([0.05, -0.05]) }, 1e-5);
  });

  it('takes a stacked matmul (vmap of a layer) with its epilogue and reductions; leaves a broadcast batch to the library', () => {
    const g = load({
      graph: 'stacked',
      inputs: { x: { shape: [2, 'B', 3] }, w: { shape: [2, 3, 4] }, b: { shape: [2, 4] }, dy: { shape: [2, 'B', 4] }, v: { shape: [1, 4, 4] } },
      nodes: [
        { id: 'h', op: 'matmul', in: ['x', 'w'] },
        { id: 'bb', op: 'expand_dims', in: ['b'], attrs: { axis: 1 } },
        { id: 'z', op: 'add', in: ['h', 'bb'] },
        { id: 'a', op: 'tanh', in: ['z'] },
        // The backward patterns: an input gradient times the activation's derivative, summed over rows (a bias gradient) ...
        { id: 'gi', op: 'matmul', in: ['dy', 'w'], attrs: { transpose_b: true } },
        { id: 'gm', op: 'mul', in: ['gi', 'x'] },
        { id: 'gs', op: 'sum', in: ['gm'], attrs: { axes: [1], keepdims: true } },
        // ... and a weight gradient (transposed left operand) with a scale.
        { id: 'gw', op: 'matmul', in: ['x', 'dy'], attrs: { transpose_a: true } },
        { id: 'gw2', op: 'mul', in: ['gw', 'gw'] },
        // Leading dims that broadcast (2 against 1) are not a stack the product walks.
        { id: 'p', op: 'matmul', in: ['a', 'v'] },
        { id: 'q', op: 'neg', in: ['p'] },
      ],
      outputs: { a: 'a', gs: 'gs', gw2: 'gw2', q: 'q' },
    });
    const f = fusion.run(g);
    const byMatmul = (id: string) => fusedNodes(f).find((n) => bodyIds(n).includes(id));
    expect(byMatmul('h')!.attrs.kind).toBe('matmul');
    expect(bodyIds(byMatmul('h')!)).toEqual(['h', 'bb', 'z', 'a']);
    expect(bodyIds(byMatmul('gi')!)).toEqual(['gi', 'gm', 'gs']);
    expect(bodyIds(byMatmul('gw')!)).toEqual(['gw', 'gw2']);
    expect(byMatmul('p')).toBeUndefined();
    expect(f.nodes.find((n) => n.id === 'p')?.op).toBe('matmul');
    const r = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);
    agree(g, { x: r([2, 5, 3], 1), w: r([2, 3, 4], 2), b: r([2, 4], 3), dy: r([2, 5, 4], 4), v: r([1, 4, 4], 5) }, 1e-5);
  });

  it('never fuses around a path through an unfused node (groups stay convex)', () => {
    const g = load({
      graph: 'convex',
      inputs: { x: { shape: [3, 3] } },
      nodes: [
        { id: 'e', op: 'exp', in: ['x'] },
        { id: 't', op: 'transpose', in: ['e'] },
        { id: 'c', op: 'add', in: ['e', 't'] },
        { id: 'd', op: 'neg', in: ['c'] },
      ],
      outputs: { d: 'd' },
    });
    const f = fusion.run(g);
    for (const n of fusedNodes(f)) expect(bodyIds(n).includes('e') && bodyIds(n).includes('c')).toBe(false);
    expect(fusedNodes(f).map(bodyIds)).toEqual([['c', 'd']]);
    agree(g, { x: tf.tensor2d([[0, 1, 2], [3, 4, 5], [6, 7, 8]].map((r) => r.map((v) => v / 8))) });
  });

  it('relabels through views: expand_dims of a reduction feeds a broadcast in the next group', () => {
    const g = load({
      graph: 'views',
      inputs: { x: { shape: ['B', 3] }, v: { shape: ['B'] } },
      nodes: [
        { id: 'vv', op: 'expand_dims', in: ['v'], attrs: { axis: 1 } },
        { id: 'm', op: 'mul', in: ['x', 'vv'] },
        { id: 'n', op: 'neg', in: ['m'] },
        { id: 'r', op: 'reshape', in: ['n'], attrs: { shape: [-1] } },
      ],
      outputs: { r: 'r' },
    });
    const f = fusion.run(g);
    const [fn] = fusedNodes(f);
    // The view of the input is absorbed as an input adapter; the reshape of the result is not.
    expect(bodyIds(fn!)).toEqual(['vv', 'm', 'n']);
    expect(fn!.inputs.sort()).toEqual(['v', 'x']);
    agree(g, { x: tf.tensor2d([[1, 2, 3], [4, 5, 6]]), v: tf.tensor1d([2, -1]) });
  });

  it('leaves single ops and opaque ops alone', () => {
    const g = load({
      graph: 'single',
      inputs: { x: { shape: [2, 2] } },
      nodes: [
        { id: 'a', op: 'tanh', in: ['x'] },
        { id: 't', op: 'transpose', in: ['a'] },
      ],
      outputs: { t: 't' },
    });
    expect(fusion.run(g)).toBe(g);
  });

  it('merges independent groups over the same domain', () => {
    const g = load({
      graph: 'horizontal',
      inputs: { x: { shape: [5] }, y: { shape: [5] } },
      nodes: [
        { id: 'a', op: 'sin', in: ['x'] },
        { id: 'b', op: 'neg', in: ['a'] },
        { id: 'c', op: 'cos', in: ['y'] },
        { id: 'd', op: 'abs', in: ['c'] },
      ],
      outputs: { b: 'b', d: 'd' },
    });
    const fused = fusedNodes(fusion.run(g));
    expect(fused).toHaveLength(1);
    expect(bodyIds(fused[0]!)).toEqual(['a', 'b', 'c', 'd']);
    agree(g, { x: tf.tensor1d([0, 1, 2, 3, 4]), y: tf.tensor1d([4, 3, 2, 1, 0]) });
  });
});
