import { describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.ts';
import { compileGraph } from '../../../compiler/compile.ts';
import type { IRGraph } from '../../../compiler/ir.ts';
import { lastUses, liveness, producedRefs } from '../../../compiler/passes/liveness.ts';
import { loadJson, mlpTrainStepJson } from '../../../bench/graphs.ts';
import { inlineGraph as load } from '../../helpers/inline-graph.ts';

const freeOf = (g: IRGraph) => Object.fromEntries(g.nodes.map((n) => [n.id, n.free ?? []]));

describe('liveness pass', () => {
  it('frees each intermediate after its last reader, never inputs, params or outputs', () => {
    const g = load({
      graph: 'live',
      inputs: { x: { shape: [3] } },
      params: { w: { shape: [3], init: 'ones' } },
      nodes: [
        { id: 'a', op: 'mul', in: ['x', 'w'] }, // read by b and d
        { id: 'b', op: 'exp', in: ['a'] }, // read by c
        { id: 'c', op: 'neg', in: ['b'] }, // an output, also read by d
        { id: 'u', op: 'sin', in: ['x'] }, // read by nobody
        { id: 'd', op: 'add', in: ['a', 'c'] },
      ],
      outputs: { c: 'c', d: 'd' },
    });
    const free = freeOf(liveness.run(g));
    expect(free).toEqual({ a: [], b: [], c: ['b'], u: ['u'], d: ['a'] });
  });

  it('tracks the outputs of fused nodes by reference', () => {
    const g = load({
      graph: 'live-fused',
      inputs: { x: { shape: [4] } },
      nodes: [
        { id: 'e', op: 'exp', in: ['x'] },
        { id: 'n', op: 'neg', in: ['e'] },
        { id: 'r', op: 'reshape', in: ['e'], attrs: { shape: [2, 2] } },
        { id: 't', op: 'transpose', in: ['r'] },
      ],
      outputs: { n: 'n', t: 't' },
    });
    const out = compileGraph(g).graph;
    const fusedId = out.nodes.find((n) => n.op === 'fused')!.id;
    const free = freeOf(out);
    // e is read by r only (outside the group); n is an output; r dies at t.
    expect(free.r).toEqual([`${fusedId}.e`]);
    expect(free.t).toEqual(['r']);
    expect(free[fusedId]).toEqual([]);
  });

  it('frees every intermediate of the MLP train step exactly once', () => {
    const g = compileGraph(loadJson(mlpTrainStepJson(), 'mlp')).graph;
    const keep = new Set([...g.inputs.map((i) => i.name), ...g.params.map((p) => p.name), ...Object.values(g.outputs)]);
    const produced = g.nodes.flatMap(producedRefs).filter((r) => !keep.has(r));
    const freed = g.nodes.flatMap((n) => n.free ?? []);
    expect([...freed].sort()).toEqual([...produced].sort());
    expect(new Set(freed).size).toBe(freed.length);
    // Each value is freed no earlier than its last reader.
    const at = new Map<string, number>();
    g.nodes.forEach((n, i) => (n.free ?? []).forEach((r) => at.set(r, i)));
    g.nodes.forEach((n, i) => n.inputs.forEach((r) => at.has(r) && expect(at.get(r)!).toBeGreaterThanOrEqual(i)));
    expect(lastUses(g)).toEqual(g.nodes.map((n) => n.free));
  });
});
