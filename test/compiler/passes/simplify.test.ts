/** Algebraic simplification, alone and in the pipeline, against the interpreter. */
import { describe, expect, it } from 'vitest';
import { simplify } from '../../../compiler/passes/simplify.ts';
import { compileGraph } from '../../../compiler/compile.ts';
import type { IRGraph } from '../../../compiler/ir.ts';
import { loadGraphJson } from '../../../compiler/frontend/load.ts';
import { compile, expectSameOutputs, load, opCount, uniform, type RawGraph, type RawNode } from '../../helpers/grad.ts';

const x23 = { x: uniform([2, 3], -2, 2, 1) };

/** One graph y = <nodes> over x [2, 3], output y. */
function graph(nodes: RawNode[], outputs: Record<string, string> = { y: 'y' }, inputs: RawGraph['inputs'] = { x: { shape: [2, 3] } }): IRGraph {
  return load({ graph: 'simp', inputs, nodes, outputs });
}

describe('simplify: identities', () => {
  const identities: [string, RawNode[]][] = [
    ['x * 1', [{ id: 'y', op: 'mul', in: ['x', 1] }]],
    ['1 * x', [{ id: 'y', op: 'mul', in: [1, 'x'] }]],
    ['x + 0', [{ id: 'y', op: 'add', in: ['x', 0] }]],
    ['0 + x', [{ id: 'y', op: 'add', in: [0, 'x'] }]],
    ['x - 0', [{ id: 'y', op: 'sub', in: ['x', 0] }]],
    ['x / 1', [{ id: 'y', op: 'div', in: ['x', 1] }]],
    ['x * ones [3] (broadcasts to x\'s own shape)', [{ id: 'k', op: 'const', attrs: { value: [1, 1, 1] } }, { id: 'y', op: 'mul', in: ['x', 'k'] }]],
    ['neg(neg(x))', [{ id: 'n', op: 'neg', in: ['x'] }, { id: 'y', op: 'neg', in: ['n'] }]],
    ['identity(x)', [{ id: 'y', op: 'identity', in: ['x'] }]],
    ['cast to the same dtype', [{ id: 'y', op: 'cast', in: ['x'], attrs: { dtype: 'float32' } }]],
    ['reshape to the same shape', [{ id: 'y', op: 'reshape', in: ['x'], attrs: { shape: [2, 3] } }]],
    ['transpose(transpose(x))', [{ id: 't', op: 'transpose', in: ['x'] }, { id: 'y', op: 'transpose', in: ['t'] }]],
    ['transpose(transpose(x)) with negative perms', [{ id: 't', op: 'transpose', in: ['x'], attrs: { perm: [-1, 0] } }, { id: 'y', op: 'transpose', in: ['t'], attrs: { perm: [1, -2] } }]],
  ];
  for (const [name, nodes] of identities)
    it(`${name} -> x`, () => {
      const g = graph([...nodes, { id: 'z', op: 'exp', in: ['y'] }], { y: 'y', z: 'z' });
      const out = simplify.run(g);
      expect(out.outputs.y).toBe('x');
      expect(out.nodes.find((n) => n.id === 'z')!.inputs).toEqual(['x']);
      expect(out.nodes.some((n) => n.id === 'y')).toBe(false);
      expectSameOutputs(g, out, x23, {}, 0);
    });
});

describe('simplify: rewrites that must not change the type', () => {
  const kept: [string, RawNode[], RawGraph['inputs']][] = [
    ['x [3] * ones [2, 3] (the result broadcasts)', [{ id: 'k', op: 'const', attrs: { value: [[1, 1, 1], [1, 1, 1]] } }, { id: 'y', op: 'mul', in: ['x', 'k'] }], { x: { shape: [3] } }],
    ['zeros [2, 3] + x [3]', [{ id: 'k', op: 'const', attrs: { value: [[0, 0, 0], [0, 0, 0]] } }, { id: 'y', op: 'add', in: ['k', 'x'] }], { x: { shape: [3] } }],
    ['x [3] - zeros [2, 1]', [{ id: 'k', op: 'const', attrs: { value: [[0], [0]] } }, { id: 'y', op: 'sub', in: ['x', 'k'] }], { x: { shape: [3] } }],
    ['x [3] / ones [2, 1]', [{ id: 'k', op: 'const', attrs: { value: [[1], [1]] } }, { id: 'y', op: 'div', in: ['x', 'k'] }], { x: { shape: [3] } }],
    ['0 - x (not x)', [{ id: 'y', op: 'sub', in: [0, 'x'] }], { x: { shape: [3] } }],
    ['1 / x (not x)', [{ id: 'y', op: 'div', in: [1, 'x'] }], { x: { shape: [3] } }],
    ['x * 2', [{ id: 'y', op: 'mul', in: ['x', 2] }], { x: { shape: [3] } }],
    ['x * [1, 2, 1] (not all ones)', [{ id: 'k', op: 'const', attrs: { value: [1, 2, 1] } }, { id: 'y', op: 'mul', in: ['x', 'k'] }], { x: { shape: [3] } }],
    ['cast to another dtype', [{ id: 'c', op: 'cast', in: ['x'], attrs: { dtype: 'int32' } }, { id: 'y', op: 'cast', in: ['c'], attrs: { dtype: 'float32' } }], { x: { shape: [3] } }],
  ];
  for (const [name, nodes, inputs] of kept)
    it(`${name} is kept`, () => {
      const g = graph(nodes, { y: 'y' }, inputs);
      const out = simplify.run(g);
      expect(out.outputs.y).toBe('y');
      expect(out.nodes.map((n) => n.op)).toEqual(g.nodes.map((n) => n.op));
      expectSameOutputs(g, out, { x: uniform([3], -2, 2, 2) }, {}, 0);
    });
});

describe('simplify: chains', () => {
  it('composes two transposes that are not inverse into one', () => {
    const g = load({
      graph: 'tt',
      inputs: { x: { shape: [2, 3, 4] } },
      nodes: [
        { id: 't1', op: 'transpose', in: ['x'], attrs: { perm: [1, 2, 0] } },
        { id: 'y', op: 'transpose', in: ['t1'], attrs: { perm: [0, 2, 1] } },
      ],
      outputs: { y: 'y' },
    });
    const out = dceOnly(simplify.run(g));
    expect(opCount(out, 'transpose')).toBe(1);
    const y = out.nodes.find((n) => n.id === 'y')!;
    expect(y.inputs).toEqual(['x']);
    // out[i] = t1[perm2[i]] = x[perm1[perm2[i]]]: [1, 2, 0] after [0, 2, 1] is [1, 0, 2].
    expect(y.attrs.perm).toEqual([1, 0, 2]);
    expectSameOutputs(g, out, { x: uniform([2, 3, 4], -1, 1, 3) }, {}, 0);
  });

  it('composes transposes written with negative axes and default perms', () => {
    const g = load({
      graph: 'tneg',
      inputs: { x: { shape: [2, 3, 4] } },
      nodes: [
        { id: 't1', op: 'transpose', in: ['x'], attrs: { perm: [-1, 0, 1] } },
        { id: 't2', op: 'transpose', in: ['t1'], attrs: { perm: [2, -3, 1] } },
        { id: 'y', op: 'transpose', in: ['t2'] },
      ],
      outputs: { y: 'y' },
    });
    const out = dceOnly(simplify.run(g));
    expect(opCount(out, 'transpose')).toBe(1);
    expectSameOutputs(g, out, { x: uniform([2, 3, 4], -1, 1, 4) }, {}, 0);
  });

  it('collapses reshape chains into one reshape of the source, and to nothing when they come back', () => {
    const g = load({
      graph: 'rr',
      inputs: { x: { shape: [2, 3, 4] } },
      nodes: [
        { id: 'r1', op: 'reshape', in: ['x'], attrs: { shape: [6, 4] } },
        { id: 'r2', op: 'reshape', in: ['r1'], attrs: { shape: [24] } },
        { id: 'y', op: 'reshape', in: ['r2'], attrs: { shape: [4, -1] } },
        { id: 'back1', op: 'reshape', in: ['x'], attrs: { shape: [-1] } },
        { id: 'back', op: 'reshape', in: ['back1'], attrs: { shape: [2, 3, 4] } },
        { id: 'z', op: 'add', in: ['back', 'x'] },
      ],
      outputs: { y: 'y', z: 'z' },
    });
    const once = simplify.run(g);
    const y = once.nodes.find((n) => n.id === 'y')!;
    expect(y.inputs).toEqual(['x']);
    expect(y.type!.shape).toEqual([4, 6]);
    // Running to a fixed point removes the reshape that returns to x's own shape.
    const fixed = dceOnly(simplify.run(once));
    expect(fixed.nodes.find((n) => n.id === 'z')!.inputs).toEqual(['x', 'x']);
    expect(opCount(fixed, 'reshape')).toBe(1);
    expectSameOutputs(g, once, { x: uniform([2, 3, 4], -1, 1, 5) }, {}, 0);
    expectSameOutputs(g, fixed, { x: uniform([2, 3, 4], -1, 1, 5) }, {}, 0);
  });

  it('neg(neg(neg(x))) keeps exactly one neg', () => {
    const g = graph([
      { id: 'a', op: 'neg', in: ['x'] },
      { id: 'b', op: 'neg', in: ['a'] },
      { id: 'y', op: 'neg', in: ['b'] },
    ]);
    const out = dceOnly(simplify.run(g));
    expect(opCount(out, 'neg')).toBe(1);
    expectSameOutputs(g, out, x23, {}, 0);
  });

  it('is the identity on graphs with nothing to simplify', () => {
    const g = graph([{ id: 'y', op: 'exp', in: ['x'] }]);
    expect(simplify.run(g)).toBe(g);
  });

  it('in the pipeline: simplification drops ops; the off switch keeps them; outputs agree', () => {
    const g = graph([
      { id: 'a', op: 'mul', in: ['x', 1] },
      { id: 'b', op: 'add', in: ['a', 0] },
      { id: 'c', op: 'neg', in: ['b'] },
      { id: 'd', op: 'neg', in: ['c'] },
      { id: 't', op: 'transpose', in: ['d'] },
      { id: 'u', op: 'transpose', in: ['t'] },
      { id: 'y', op: 'tanh', in: ['u'] },
    ]);
    const on = compile(g);
    const off = compile(g, { disabled: new Set(['simplify']) });
    expect(on.nodes.map((n) => n.op)).toEqual(['tanh']);
    expect(opCount(off, 'neg')).toBe(2);
    expect(opCount(off, 'transpose')).toBe(2);
    expect(compileGraph(g, { disabled: new Set(['simplify', 'fusion']) }).stages.find((s) => s.pass === 'simplify')!.skipped).toBe(true);
    expectSameOutputs(g, on, x23, {}, 0);
    expectSameOutputs(g, off, x23, {}, 0);
  });
});

/** Removes nodes no output reads (what the dce pass does), to count what simplify left live. */
function dceOnly(g: IRGraph): IRGraph {
  const live = new Set<string>(Object.values(g.outputs));
  for (let i = g.nodes.length - 1; i >= 0; i--) if (live.has(g.nodes[i]!.id)) for (const r of g.nodes[i]!.inputs) live.add(r);
  return { ...g, nodes: g.nodes.filter((n) => live.has(n.id)) };
}

describe('simplify: a slice of one index whose reshape drops that axis', () => {
  const x = { x: uniform([3, 2, 4], -2, 2, 3) };
  const sliced = (begin: number[], size: (number | string)[], shape: number[]) =>
    load({
      graph: 'row',
      inputs: { x: { shape: [3, 2, 4] } },
      nodes: [
        { id: 's', op: 'slice', in: ['x'], attrs: { begin, size } },
        { id: 'y', op: 'reshape', in: ['s'], attrs: { shape } },
        { id: 'z', op: 'exp', in: ['y'] },
      ],
      outputs: { y: 'y', z: 'z' },
    });

  for (const [begin, size, shape, axis] of [
    [[1, 0, 0], [1, 2, 4], [2, 4], 0],
    [[2, 0, 0], [1, -1, -1], [2, 4], 0],
    [[0, 1, 0], [3, 1, 4], [3, 4], 1],
    [[0, 0, 3], [-1, 2, 1], [3, 2], 2],
  ] as const)
    it(`slice begin ${begin.join(',')} size ${size.join(',')} to [${shape.join(', ')}] is a gather of index ${begin[axis]} along axis ${axis}`, () => {
      const g = sliced([...begin], [...size], [...shape]);
      const out = dceOnly(simplify.run(g));
      expect(out.nodes.map((n) => n.op).sort()).toEqual(['const', 'exp', 'gather']);
      const y = out.nodes.find((n) => n.id === 'y')!;
      expect(y.attrs).toEqual({ axis });
      expect(out.nodes.find((n) => n.id === y.inputs[1])!.attrs).toEqual({ value: begin[axis], dtype: 'int32' });
      expectSameOutputs(g, out, x, {}, 0);
    });

  it('keeps an int32 slice (an RNG key row): rewritten, the key rows broke the programs on webgpu', () => {
    const g = loadGraphJson(
      {
        graph: 'key-row',
        inputs: { keys: { dtype: 'int32', shape: [3, 2] } },
        nodes: [
          { id: 's', op: 'slice', in: ['keys'], attrs: { begin: [1, 0], size: [1, 2] } },
          { id: 'k', op: 'reshape', in: ['s'], attrs: { shape: [2] } },
        ],
        outputs: { k: 'k' },
      },
      'key-row.graph.json',
    );
    expect(simplify.run(g).nodes.map((n) => n.op)).toEqual(['slice', 'reshape']);
  });

  for (const [what, begin, size, shape] of [
    ['two indices', [1, 0, 0], [2, 2, 4], [4, 4]],
    ['part of another axis', [1, 0, 0], [1, 2, 3], [2, 3]],
    ['a reshape that does not drop the axis', [1, 0, 0], [1, 2, 4], [8]],
  ] as const)
    it(`keeps a slice of ${what}`, () => {
      const g = sliced([...begin], [...size], [...shape]);
      const out = simplify.run(g);
      expect(out.nodes.map((n) => n.op)).toEqual(['slice', 'reshape', 'exp']);
      expectSameOutputs(g, out, x, {}, 0);
    });
});
