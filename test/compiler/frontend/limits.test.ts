/**
 * Graphs that are large or expensive on purpose: every one must be checked promptly and either
 * pass or fail with a located LoomError, never overflow the stack or run out of memory.
 */
import { describe, expect, it } from 'vitest';
import { loadGraphJson, memoryFiles } from '../../../compiler/frontend/load.ts';
import { loomErr } from '../../helpers/loom-error.ts';

const FILE = '/virtual/limits/main.graph.json';

/** x -> n0 -> n1 -> ... -> n(len-1); with `cycle`, n0 also reads the last node. */
function chain(len: number, cycle = false): object {
  const nodes = Array.from({ length: len }, (_, i) => ({ id: `n${i}`, op: 'neg', in: [i === 0 ? 'x' : `n${i - 1}`] }));
  if (cycle) nodes[0]!.in = [`n${len - 1}`];
  return { graph: 'chain', inputs: { x: { shape: ['B', 2] } }, nodes, outputs: { y: `n${len - 1}` } };
}

describe('long chains', () => {
  it('a chain of 100k nodes checks', () => {
    const g = loadGraphJson(chain(100_000), FILE, { files: memoryFiles({}) });
    expect(g.nodes).toHaveLength(100_000);
    // Ordered producer before consumer.
    expect(g.nodes[0]!.id).toBe('n0');
    expect(g.nodes[99_999]!.id).toBe('n99999');
  });

  it('a cycle of 100k nodes is E_CYCLE naming its ends in dataflow order', () => {
    const e = loomErr(() => loadGraphJson(chain(100_000, true), FILE, { files: memoryFiles({}) }));
    expect(e.info.code).toBe('E_CYCLE');
    const cyc = /cycle: (.*)$/.exec(e.info.message)![1]!.split(' -> ');
    expect(cyc).toHaveLength(22);
    expect(cyc[10]).toBe('... (99980 more of 100000 nodes)');
    expect(cyc[0]).toBe(cyc[21]);
    const k = Number(cyc[0]!.slice(1));
    for (const i of [0, 1, 2, 8]) expect(cyc[i + 1]).toBe(`n${(k + i + 1) % 100_000}`);
    expect(cyc[20]).toBe(`n${(k + 99_999) % 100_000}`);
    expect(e.info.node).toBe(cyc[0]);
    expect(e.info.pointer).toBe(`/nodes/${k}`);
  });
});
