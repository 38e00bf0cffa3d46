/**
 * Graphs that are large or expensive on purpose: every one must be checked promptly and either
 * pass or fail with a located LoomError, never overflow the stack or run out of memory.
 */
import { describe, expect, it } from 'vitest';
import { loadGraph, loadGraphJson, memoryFiles } from '../../../compiler/frontend/load.ts';
import { canonDim, dimMul } from '../../../compiler/dims.ts';
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

describe('call blow-up', () => {
  /** f0 calls f1 twice, f1 calls f2 twice, ...; the last file is a single node. */
  function doubling(levels: number): Record<string, object> {
    const files: Record<string, object> = {};
    for (let i = 0; i < levels; i++)
      files[`/virtual/calls/f${i}.graph.json`] = {
        graph: `f${i}`,
        inputs: { x: { shape: [2] } },
        nodes: [
          { id: 'a', op: 'call', graph: `f${i + 1}.graph.json`, in: { x: 'x' } },
          { id: 'b', op: 'call', graph: `f${i + 1}.graph.json`, in: { x: 'a.y' } },
        ],
        outputs: { y: 'b.y' },
      };
    files[`/virtual/calls/f${levels}.graph.json`] = { graph: 'leaf', inputs: { x: { shape: [2] } }, nodes: [{ id: 'n', op: 'neg', in: ['x'] }], outputs: { y: 'n' } };
    return files;
  }

  it('24 files, each calling the next twice, are E_SIZE at the call that crosses the bound', () => {
    const files = doubling(24);
    for (const doc of Object.values(files)) expect(JSON.stringify(doc).length).toBeLessThan(300);
    const e = loomErr(() => loadGraph('/virtual/calls/f0.graph.json', { files: memoryFiles(files) }));
    expect(e.info.code).toBe('E_SIZE');
    // 2^18 nodes is the first level over 250,000: f6's second call makes it so.
    expect(e.info.file).toMatch(/f6\.graph\.json$/);
    expect(e.info.pointer).toBe('/nodes/1/graph');
    expect(e.info.node).toBe('b');
    expect(e.info.message).toMatch(/graph f6 has 262144 nodes once its calls are inlined; this call adds 131072 of them/);
    expect(e.info.expected).toMatch(/at most 250000/);
    expect(e.info.hint).toMatch(/call/);
  });

  it('the same shape under the bound loads, with the callees loaded once', () => {
    const g = loadGraph('/virtual/calls/f0.graph.json', { files: memoryFiles(doubling(10)) });
    expect(g.nodes.map((n) => n.op)).toEqual(['call', 'call']);
  });
});

describe('shape coefficients', () => {
  const load = (doc: object) => loomErr(() => loadGraphJson(doc, FILE, { files: memoryFiles({}) }));

  it('an input dim whose coefficient is not a safe integer is E_SIZE at the dim', () => {
    const e = load({ graph: 'g', inputs: { x: { shape: ['99999999999999999999999*B'] } }, nodes: [{ id: 'y', op: 'neg', in: ['x'] }], outputs: { y: 'y' } });
    expect(e.info.code).toBe('E_SIZE');
    expect(e.info.pointer).toBe('/inputs/x/shape/0');
    expect(e.info.message).toMatch(/coefficient/);
    expect(e.info.found).toBe('99999999999999999999999');
    expect(e.info.expected).toMatch(/9007199254740991/);
  });

  it('a reshape to such a dim is E_SIZE at the node, not a new symbol', () => {
    const e = load({
      graph: 'g',
      inputs: { x: { shape: ['B', 2] } },
      nodes: [{ id: 'r', op: 'reshape', in: ['x'], attrs: { shape: ['99999999999999999999999*B'] } }],
      outputs: { y: 'r' },
    });
    expect(e.info.code).toBe('E_SIZE');
    expect(e.info.node).toBe('r');
    expect(e.info.pointer).toBe('/nodes/0');
  });

  it('a product of dims whose coefficient is no longer exact is E_SIZE, not a symbol "1e+23"', () => {
    const e = loomErr(() => dimMul('4294967296*B', 4294967296));
    expect(e.info.code).toBe('E_SIZE');
    expect(e.info.found).toBe('18446744073709551616');
    expect(canonDim('9007199254740991*B')).toBe('9007199254740991*B');
  });

  it('a static dim above the largest tensor is a schema error at the dim', () => {
    const e = load({ graph: 'g', params: { w: { shape: [0, 1e23] } }, nodes: [], outputs: { w: 'w' } });
    expect(e.info.code).toBe('E_SCHEMA');
    expect(e.info.pointer).toBe('/params/w/shape/1');
  });
});

describe('call depth', () => {
  /** f0 calls f1, which calls f2, ... down to a single node. */
  function nested(depth: number): Record<string, object> {
    const files: Record<string, object> = {};
    for (let i = 0; i < depth; i++)
      files[`/virtual/deep/f${i}.graph.json`] = { graph: `f${i}`, inputs: { x: { shape: [2] } }, nodes: [{ id: 'a', op: 'call', graph: `f${i + 1}.graph.json`, in: { x: 'x' } }], outputs: { y: 'a.y' } };
    files[`/virtual/deep/f${depth}.graph.json`] = { graph: 'leaf', inputs: { x: { shape: [2] } }, nodes: [{ id: 'n', op: 'neg', in: ['x'] }], outputs: { y: 'n' } };
    return files;
  }

  it('calls nested 3000 files deep are E_SIZE at the call that goes too deep, not a stack overflow', () => {
    const e = loomErr(() => loadGraph('/virtual/deep/f0.graph.json', { files: memoryFiles(nested(3000)) }));
    expect(e.info.code).toBe('E_SIZE');
    expect(e.info.file).toMatch(/f99\.graph\.json$/);
    expect(e.info.pointer).toBe('/nodes/0/graph');
    expect(e.info.node).toBe('a');
    expect(e.info.expected).toMatch(/at most 100 graph files/);
  });

  it('99 nested calls load', () => {
    expect(loadGraph('/virtual/deep/f0.graph.json', { files: memoryFiles(nested(99)) }).nodes).toHaveLength(1);
  });
});
