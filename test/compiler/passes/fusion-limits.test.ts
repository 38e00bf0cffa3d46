/** Fusion on a long elementwise chain: bounded kernels, every node in exactly one of them. */
import { describe, expect, it } from 'vitest';
import { compileGraph } from '../../../compiler/compile.ts';
import { loadGraphJson, memoryFiles } from '../../../compiler/frontend/load.ts';

describe('fusion of a long chain', () => {
  it('splits a chain of 2000 exp/tanh ops into kernels of at most 512 ops, in order', () => {
    const len = 2000;
    const nodes = Array.from({ length: len }, (_, i) => ({ id: `n${i}`, op: i % 2 ? 'tanh' : 'exp', in: [i === 0 ? 'x' : `n${i - 1}`] }));
    const g = loadGraphJson({ graph: 'chain', inputs: { x: { shape: ['B', 2] } }, nodes, outputs: { y: `n${len - 1}` } }, '/virtual/chain.graph.json', { files: memoryFiles({}) });
    const { graph } = compileGraph(g);
    const fused = graph.nodes.filter((n) => n.op === 'fused');
    expect(fused.map((n) => n.body!.length)).toEqual([512, 512, 512, 464]);
    expect(fused.flatMap((n) => n.body!.map((b) => b.id))).toEqual(nodes.map((n) => n.id));
  });
});
