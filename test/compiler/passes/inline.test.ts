/** The inline pass: `call` nodes replaced by the callee's body, checked against the interpreter's recursive calls. */
import { describe, expect, it } from 'vitest';
import { inline } from '../../../compiler/passes/inline.ts';
import type { IRGraph } from '../../../compiler/ir.ts';
import { compileGraph } from '../../../compiler/compile.ts';
import { compile, expectClose, expectSameOutputs, f32, load, opCount, uniform, type RawGraph } from '../../helpers/grad.ts';

/** y = tanh(x · w + b) with a symbolic batch N, and a reshape whose attribute names N. */
const LAYER: RawGraph = {
  graph: 'layer',
  inputs: { x: { shape: ['N', 4] } },
  params: { w: { shape: [4, 4] }, b: { shape: [4] } },
  nodes: [
    { id: 'mm', op: 'matmul', in: ['x', 'w'] },
    { id: 'pre', op: 'add', in: ['mm', 'b'] },
    { id: 'h', op: 'tanh', in: ['pre'] },
    { id: 'split', op: 'reshape', in: ['h'], attrs: { shape: ['N', 2, 2] } },
    { id: 'half', op: 'mul', in: ['h', 0.5] },
  ],
  outputs: { h: 'h', split: 'split', half: 'half' },
};

/** Calls LAYER (nested) with its own symbol M, binding w and hoisting b. */
const BLOCK: RawGraph = {
  graph: 'block',
  inputs: { x: { shape: ['M', 4] } },
  params: { w: { shape: [4, 4] } },
  nodes: [
    { id: 'inner', op: 'call', graph: 'layer.graph.json', in: { x: 'x' }, params: { w: 'w' } },
    { id: 'r', op: 'add', in: ['inner.h', 'x'] },
  ],
  outputs: { out: 'r', split: 'inner.split' },
};

const FILES = { 'layer.graph.json': LAYER, 'block.graph.json': BLOCK };

function caller(): IRGraph {
  return load(
    {
      graph: 'caller',
      inputs: { obs: { shape: ['B', 4] } },
      params: { shared: { shape: [4, 4] } },
      nodes: [
        { id: 'l1', op: 'call', graph: 'layer.graph.json', in: { x: 'obs' } },
        { id: 'l2', op: 'call', graph: 'layer.graph.json', in: { x: 'l1.h' }, params: { w: 'shared' } },
        { id: 'blk', op: 'call', graph: 'block.graph.json', in: { x: 'l2.half' }, params: { w: 'shared' } },
        { id: 'y', op: 'sub', in: ['blk.out', 'l1.half'] },
      ],
      outputs: { y: 'y', split: 'blk.split', direct: 'l2.h' },
    },
    FILES,
  );
}

const inputs = { obs: uniform([3, 4], -1, 1, 1) };
const params = {
  shared: uniform([4, 4], -0.7, 0.7, 2),
  'l1/w': uniform([4, 4], -0.7, 0.7, 3),
  'l1/b': uniform([4], -0.3, 0.3, 4),
  'l2/b': uniform([4], -0.3, 0.3, 5),
  'blk/inner/b': uniform([4], -0.3, 0.3, 6),
};

describe('inline', () => {
  it('replaces every call by the callee body, named "<call>/<node>" (nested: "<outer>/<inner>/<node>")', () => {
    const g = caller();
    const out = inline.run(g);
    expect(opCount(out, 'call')).toBe(0);
    const ids = out.nodes.map((n) => n.id);
    for (const id of ['l1/mm', 'l1/pre', 'l1/h', 'l2/h', 'blk/r', 'blk/inner/mm', 'blk/inner/h', 'y']) expect(ids).toContain(id);
    // Callee literals are renamed with their node ("half:1" -> "l1/half:1").
    expect(ids).toContain('l1/half:1');
    // Three calls of LAYER (one nested) inline its 5 nodes and 1 literal each; BLOCK adds one add.
    expect(opCount(out, 'tanh')).toBe(3);
    expect(opCount(out, 'matmul')).toBe(3);
    expect(out.nodes.length).toBe(3 * 6 + 1 + 1);
    // Ids stay unique.
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('wires callee inputs and params to the caller: bound params to the caller param, others to the hoisted "<call>/<param>"', () => {
    const out = inline.run(caller());
    const byId = new Map(out.nodes.map((n) => [n.id, n]));
    expect(byId.get('l1/mm')!.inputs).toEqual(['obs', 'l1/w']);
    expect(byId.get('l1/pre')!.inputs).toEqual(['l1/mm', 'l1/b']);
    expect(byId.get('l2/mm')!.inputs).toEqual(['l1/h', 'shared']);
    expect(byId.get('l2/pre')!.inputs).toEqual(['l2/mm', 'l2/b']);
    // Nested: BLOCK binds LAYER's w to its own w, which the caller binds to `shared`.
    expect(byId.get('blk/inner/mm')!.inputs).toEqual(['l2/half', 'shared']);
    expect(byId.get('blk/inner/pre')!.inputs).toEqual(['blk/inner/mm', 'blk/inner/b']);
    expect(out.params.map((p) => p.name).sort()).toEqual(['blk/inner/b', 'l1/b', 'l1/w', 'l2/b', 'shared']);
    // References to call outputs are rewritten, in nodes and in graph outputs.
    expect(byId.get('y')!.inputs).toEqual(['blk/r', 'l1/half']);
    expect(out.outputs).toEqual({ y: 'y', split: 'blk/inner/split', direct: 'l2/h' });
  });

  it("renames the callee's symbolic dims to the caller's, in types and in attributes", () => {
    const out = inline.run(caller());
    const byId = new Map(out.nodes.map((n) => [n.id, n]));
    expect(byId.get('l1/split')!.attrs.shape).toEqual(['B', 2, 2]);
    expect(byId.get('l1/split')!.type!.shape).toEqual(['B', 2, 2]);
    expect(byId.get('blk/inner/split')!.attrs.shape).toEqual(['B', 2, 2]);
    expect(byId.get('blk/r')!.type!.shape).toEqual(['B', 4]);
    for (const n of out.nodes) for (const d of n.type!.shape) expect(['N', 'M']).not.toContain(d);
  });

  it('renames to compound caller dims (a callee N bound to B*T)', () => {
    const g = load(
      {
        graph: 'flat',
        inputs: { x: { shape: ['B', 'T', 4] } },
        nodes: [
          { id: 'f', op: 'reshape', in: ['x'], attrs: { shape: ['B*T', 4] } },
          { id: 'l', op: 'call', graph: 'layer.graph.json', in: { x: 'f' } },
        ],
        outputs: { split: 'l.split' },
      },
      FILES,
    );
    const out = inline.run(g);
    const split = out.nodes.find((n) => n.id === 'l/split')!;
    expect(split.attrs.shape).toEqual(['B*T', 2, 2]);
    expect(split.type!.shape).toEqual(['B*T', 2, 2]);
    expectSameOutputs(g, out, { x: uniform([2, 3, 4], -1, 1, 9) }, { 'l/w': uniform([4, 4], -1, 1, 10), 'l/b': uniform([4], -1, 1, 11) });
  });

  it('keeps the callee symbols apart when caller and callee reuse names crosswise', () => {
    // The callee's N and K are bound to the caller's K and N: the substitution is simultaneous.
    const SWAP: RawGraph = {
      graph: 'swap',
      inputs: { a: { shape: ['N', 2] }, b: { shape: ['K', 2] } },
      nodes: [
        { id: 'ra', op: 'reshape', in: ['a'], attrs: { shape: [2, 'N'] } },
        { id: 'rb', op: 'reshape', in: ['b'], attrs: { shape: [2, 'K'] } },
      ],
      outputs: { ra: 'ra', rb: 'rb' },
    };
    const g = load(
      {
        graph: 'crosswise',
        inputs: { p: { shape: ['K', 2] }, q: { shape: ['N', 2] } },
        nodes: [{ id: 's', op: 'call', graph: 'swap.graph.json', in: { a: 'p', b: 'q' } }],
        outputs: { ra: 's.ra', rb: 's.rb' },
      },
      { 'swap.graph.json': SWAP },
    );
    const out = inline.run(g);
    const byId = new Map(out.nodes.map((n) => [n.id, n]));
    expect(byId.get('s/ra')!.attrs.shape).toEqual([2, 'K']);
    expect(byId.get('s/rb')!.attrs.shape).toEqual([2, 'N']);
    expectSameOutputs(g, out, { p: uniform([3, 2], -1, 1, 12), q: uniform([5, 2], -1, 1, 13) });
  });

  it('the inlined graph computes what the interpreter computes with recursive calls', () => {
    const g = caller();
    expectSameOutputs(g, inline.run(g), inputs, params);
    // Also at another batch size: the symbolic B survives inlining.
    expectSameOutputs(g, inline.run(g), { obs: uniform([5, 4], -1, 1, 7) }, params);
  });

  it('is the identity on graphs without calls', () => {
    const g = load({ graph: 'plain', inputs: { x: { shape: [2] } }, nodes: [{ id: 'e', op: 'exp', in: ['x'] }], outputs: { e: 'e' } });
    expect(inline.run(g)).toBe(g);
  });

  it('an output that is a callee input is wired straight to the caller value', () => {
    const PASS: RawGraph = { graph: 'pass', inputs: { v: { shape: [2] } }, nodes: [], outputs: { same: 'v' } };
    const g = load(
      { graph: 'through', inputs: { x: { shape: [2] } }, nodes: [{ id: 'c', op: 'call', graph: 'pass.graph.json', in: { v: 'x' } }, { id: 'n', op: 'neg', in: ['c.same'] }], outputs: { n: 'n', raw: 'c.same' } },
      { 'pass.graph.json': PASS },
    );
    const out = inline.run(g);
    expect(out.outputs).toEqual({ n: 'n', raw: 'x' });
    expect(out.nodes.find((n) => n.id === 'n')!.inputs).toEqual(['x']);
    expectSameOutputs(g, out, { x: f32([2], [1, -2]) });
  });

  /** A callee that differentiates its own loss with respect to its param and its input. */
  const GRADF: RawGraph = {
    graph: 'gradf',
    inputs: { x: { shape: [3] } },
    params: { w: { shape: [3] } },
    nodes: [
      { id: 'xw', op: 'mul', in: ['x', 'w'] },
      { id: 'th', op: 'tanh', in: ['xw'] },
      { id: 'l', op: 'sum', in: ['th'] },
      { id: 'g', op: 'grad', in: ['l'], attrs: { wrt: ['w', 'x'] } },
    ],
    outputs: { l: 'l', dw: 'g.w', dx: 'g.x' },
  };

  it("a grad inside a callee differentiates the callee's own loss, with params hoisted or bound to any caller value", () => {
    const g = load(
      {
        graph: 'outer',
        inputs: { a: { shape: [3] } },
        params: { p: { shape: [3] } },
        nodes: [
          { id: 'hoisted', op: 'call', graph: 'gradf.graph.json', in: { x: 'a' } },
          // The same caller value is both the callee's input and its param: the callee's
          // gradients hold the other one fixed, so dw = a * (1 - tanh^2(a * a)), not twice that.
          { id: 'twice', op: 'mul', in: ['p', 2] },
          { id: 'shared', op: 'call', graph: 'gradf.graph.json', in: { x: 'twice' }, params: { w: 'twice' } },
          { id: 'bound', op: 'call', graph: 'gradf.graph.json', in: { x: 'a' }, params: { w: 'shared.dw' } },
        ],
        outputs: { hl: 'hoisted.l', hdw: 'hoisted.dw', hdx: 'hoisted.dx', sdw: 'shared.dw', sdx: 'shared.dx', bdw: 'bound.dw', bl: 'bound.l' },
      },
      { 'gradf.graph.json': GRADF },
    );
    const ins = { a: f32([3], [0.3, -0.8, 1.1]) };
    const ps = { p: f32([3], [0.5, -0.2, 0.9]), 'hoisted/w': f32([3], [0.7, 0.1, -0.4]) };
    const ref = expectSameOutputs(g, compile(g), ins, ps, 1e-5);
    // Hand-computed for `shared` (x = w = 2p): d/dw sum tanh(x w) = x (1 - tanh^2(x w)).
    const want = [0.5, -0.2, 0.9].map((v) => 2 * v * (1 - Math.tanh(4 * v * v) ** 2));
    expectClose(ref.sdw!.values, want, 1e-5, 1e-6, 'shared.dw');
    expectClose(ref.sdx!.values, want, 1e-5, 1e-6, 'shared.dx');
  });

  it('off switch: compileGraph with inline disabled keeps the calls and still computes the same', () => {
    const g = caller();
    const { graph, stages } = compileGraph(g, { disabled: new Set(['inline', 'fusion']) });
    expect(stages.find((s) => s.pass === 'inline')!.skipped).toBe(true);
    expect(opCount(graph, 'call')).toBe(3);
    expectSameOutputs(g, graph, inputs, params);
    // With inlining on, no call is left and the result is unchanged.
    const full = compile(g);
    expect(opCount(full, 'call')).toBe(0);
    expectSameOutputs(g, full, inputs, params);
  });
});
