/**
 * Valid graphs: the inferred signature (symbolic dims through matmul, broadcasting and calls),
 * param hoisting and sharing across calls, grad output types, literals, defaults and the
 * topological order of nodes written out of order. Expected types are worked out by hand.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadGraph, loadGraphJson, memoryFiles } from '../../../compiler/frontend/load.ts';
import { showType, type IRGraph, type IRNode, type TensorType } from '../../../compiler/ir.ts';
import { getOp } from '../../../compiler/ops/index.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..', '..');
const FIX = join(ROOT, 'test', 'fixtures', 'frontend');
const V = '/virtual/load';

const has = (...ops: string[]) => ops.every((o) => getOp(o) !== undefined);

function node(g: IRGraph, id: string): IRNode {
  const n = g.nodes.find((x) => x.id === id);
  if (!n) throw new Error(`no node ${id}`);
  return n;
}

/** Type of a node, as "dtype[dims]". */
const typeOf = (g: IRGraph, id: string): string => showType(node(g, id).type!);
const outTypes = (n: IRNode): Record<string, string> => Object.fromEntries(Object.entries(n.outputTypes!).map(([k, t]) => [k, showType(t as TensorType)]));

function load(doc: object, files: Record<string, object | string> = {}, file = `${V}/main.graph.json`): IRGraph {
  return loadGraphJson(doc, file, { files: memoryFiles(files) });
}

/** Every node comes after the nodes it reads. */
function expectTopological(g: IRGraph): void {
  const seen = new Set<string>([...g.inputs.map((i) => i.name), ...g.params.map((p) => p.name)]);
  for (const n of g.nodes) {
    for (const ref of n.inputs) expect(seen.has(ref.split('.')[0]!), `${n.id} reads ${ref} before it is produced`).toBe(true);
    seen.add(n.id);
  }
}

const LIN = {
  graph: 'lin',
  inputs: { x: { shape: ['B', 3] } },
  params: { w: { shape: [3, 2], init: { normal: { std: 0.1 } } }, b: { shape: [2], init: 'zeros' } },
  nodes: [
    { id: 'h', op: 'matmul', in: ['x', 'w'] },
    { id: 'y', op: 'add', in: ['h', 'b'] },
  ],
  outputs: { y: 'y' },
};

describe('the example graph', () => {
  it('affine.graph.json: signature, node types and the literal', () => {
    const g = loadGraph(join(ROOT, 'graphs', 'examples', 'affine.graph.json'));
    expect(g.name).toBe('affine-tanh');
    expect(g.inputs.map((i) => [i.name, showType(i.type)])).toEqual([['x', 'float32[B, 3]']]);
    expect(g.params.map((p) => [p.name, showType(p.type), p.init])).toEqual([
      ['w', 'float32[3, 2]', { kind: 'constant', args: { value: 0.5 } }],
      ['b', 'float32[2]', { kind: 'zeros', args: {} }],
    ]);
    // [B,3]·[3,2] = [B,2]; + [2] broadcasts; tanh and * 0.5 keep the shape.
    expect(['h', 'z', 'a', 'y'].map((id) => typeOf(g, id))).toEqual(['float32[B, 2]', 'float32[B, 2]', 'float32[B, 2]', 'float32[B, 2]']);
    // The literal 0.5 became a scalar const node named after its node and slot, ordered first.
    expect(g.nodes[0]).toMatchObject({ id: 'y:1', op: 'const', inputs: [], attrs: { value: 0.5 } });
    expect(typeOf(g, 'y:1')).toBe('float32[]');
    expect(node(g, 'y').inputs).toEqual(['a', 'y:1']);
    expect(g.outputs).toEqual({ y: 'y' });
    expect(node(g, 'z').source).toEqual({ file: g.file, pointer: '/nodes/1' });
    expectTopological(g);
  });
});

describe('symbolic dims', () => {
  it('through matmul, broadcasting and canonical products', () => {
    const g = load({
      graph: 'dims',
      inputs: {
        x: { shape: ['T', 'B', 4] },
        col: { shape: ['B', 1] },
        row: { shape: ['K'] },
        flat: { shape: ['T*B', 2] },
        a: { shape: [1, 'B', 3, 4] },
        b: { shape: ['T', 1, 4, 5] },
      },
      params: { w: { shape: [4, 8] } },
      nodes: [
        { id: 'xw', op: 'matmul', in: ['x', 'w'] },
        { id: 'outer', op: 'mul', in: ['col', 'row'] },
        { id: 'f2', op: 'add', in: ['flat', 1] },
        { id: 'bmm', op: 'matmul', in: ['a', 'b'] },
        { id: 'bt', op: 'matmul', in: ['a', 'a'], attrs: { transpose_b: true } },
      ],
      outputs: { xw: 'xw', outer: 'outer', f2: 'f2', bmm: 'bmm', bt: 'bt' },
    });
    expect(typeOf(g, 'xw')).toBe('float32[T, B, 8]');
    // [B,1] * [K] -> [B,K]
    expect(typeOf(g, 'outer')).toBe('float32[B, K]');
    // "T*B" is written canonically, symbols sorted.
    expect(showType(g.inputs.find((i) => i.name === 'flat')!.type)).toBe('float32[B*T, 2]');
    expect(typeOf(g, 'f2')).toBe('float32[B*T, 2]');
    // batch dims [1,B] and [T,1] broadcast to [T,B]; [3,4]·[4,5] = [3,5]
    expect(typeOf(g, 'bmm')).toBe('float32[T, B, 3, 5]');
    // a·aᵀ: [3,4]·[4,3]
    expect(typeOf(g, 'bt')).toBe('float32[1, B, 3, 3]');
  });

  it.skipIf(!has('reshape', 'transpose', 'concat', 'random_uniform', 'where'))('through shape ops and random numbers (shapes.graph.json)', () => {
    const g = loadGraph(join(FIX, 'shapes.graph.json'));
    // [T,B,6] -> [T*B,2,3] -> perm [0,2,1] -> [B*T,3,2] -> concat axis 1 -> [B*T,6,2]
    expect(typeOf(g, 'r')).toBe('float32[B*T, 2, 3]');
    expect(typeOf(g, 't')).toBe('float32[B*T, 3, 2]');
    expect(typeOf(g, 'c')).toBe('float32[B*T, 6, 2]');
    expect(typeOf(g, 'e')).toBe('float32[1, B*T, 6, 2]');
    expect(typeOf(g, 'q')).toBe('float32[B*T, 6, 2]');
    expect(typeOf(g, 'key')).toBe('int32[2]');
    expect(typeOf(g, 'u')).toBe('float32[T, B]');
    expect(typeOf(g, 'wf')).toBe('float32[T, B]');
  });
});

describe('calls', () => {
  it('bind the callee symbol "B" to the caller dim "N"', () => {
    const g = load(
      {
        graph: 'c',
        inputs: { obs: { shape: ['N', 3] } },
        nodes: [{ id: 'l', op: 'call', graph: 'lin.graph.json', in: { x: 'obs' } }],
        outputs: { y: 'l.y' },
      },
      { [`${V}/lin.graph.json`]: LIN },
    );
    const l = node(g, 'l');
    expect(outTypes(l)).toEqual({ y: 'float32[N, 2]' });
    expect(l.bindings).toEqual({ x: 'obs' });
    expect(l.callee!.name).toBe('lin');
    // The callee keeps its own signature.
    expect(showType(l.callee!.inputs[0]!.type)).toBe('float32[B, 3]');
  });

  it('bind a symbol to a product of caller dims', () => {
    const g = load(
      {
        graph: 'c',
        inputs: { obs: { shape: ['T*N', 3] } },
        nodes: [{ id: 'l', op: 'call', graph: 'lin.graph.json', in: { x: 'obs' } }],
        outputs: { y: 'l.y' },
      },
      { [`${V}/lin.graph.json`]: LIN },
    );
    expect(outTypes(node(g, 'l'))).toEqual({ y: 'float32[N*T, 2]' });
  });

  it('bind one symbol consistently across several inputs', () => {
    const scale = {
      graph: 'scale',
      inputs: { x: { shape: ['B', 3] }, s: { shape: ['B', 1] } },
      nodes: [{ id: 'y', op: 'mul', in: ['x', 's'] }],
      outputs: { y: 'y' },
    };
    const g = load(
      {
        graph: 'c',
        inputs: { obs: { shape: ['N', 3] }, k: { shape: ['N', 1] } },
        nodes: [{ id: 's', op: 'call', graph: 'scale.graph.json', in: { x: 'obs', s: 'k' } }],
        outputs: { y: 's.y' },
      },
      { [`${V}/scale.graph.json`]: scale },
    );
    expect(outTypes(node(g, 's'))).toEqual({ y: 'float32[N, 3]' });
  });

  it('hoist callee params as "<call id>/<param>", one copy per call, with their initializers', () => {
    const g = load(
      {
        graph: 'c',
        inputs: { obs: { shape: ['N', 3] } },
        nodes: [
          { id: 'l1', op: 'call', graph: 'lin.graph.json', in: { x: 'obs' } },
          { id: 'l2', op: 'call', graph: 'lin.graph.json', in: { x: 'obs' } },
        ],
        outputs: { a: 'l1.y', b: 'l2.y' },
      },
      { [`${V}/lin.graph.json`]: LIN },
    );
    expect(g.params.map((p) => [p.name, showType(p.type), p.init.kind])).toEqual([
      ['l1/w', 'float32[3, 2]', 'normal'],
      ['l1/b', 'float32[2]', 'zeros'],
      ['l2/w', 'float32[3, 2]', 'normal'],
      ['l2/b', 'float32[2]', 'zeros'],
    ]);
    expect(g.params[0]!.init.args).toEqual({ std: 0.1 });
    // A call reads its bound inputs, then its params.
    expect(node(g, 'l1').inputs).toEqual(['obs', 'l1/w', 'l1/b']);
    expect(node(g, 'l2').inputs).toEqual(['obs', 'l2/w', 'l2/b']);
    // The same file is loaded once and shared.
    expect(node(g, 'l1').callee).toBe(node(g, 'l2').callee);
  });

  it('share params through "params" (caller.graph.json: l2 reuses l1/w)', () => {
    const g = loadGraph(join(FIX, 'caller.graph.json'));
    expect(g.params.map((p) => p.name)).toEqual(['l1/w', 'l1/b', 'l2/b']);
    expect(node(g, 'l2').inputs).toEqual(['obs', 'l1/w', 'l2/b']);
    expect(typeOf(g, 's')).toBe('float32[N, 2]');
    expect(typeOf(g, 'loss')).toBe('float32[]');
    // grad with respect to hoisted params: their types, named by the hoisted names
    expect(outTypes(node(g, 'g'))).toEqual({ 'l1/w': 'float32[3, 2]', 'l2/b': 'float32[2]' });
    expect(g.outputs).toMatchObject({ gw: 'g.l1/w', gb: 'g.l2/b' });
  });

  it('share a callee param with a param of the caller', () => {
    const g = load(
      {
        graph: 'c',
        inputs: { obs: { shape: ['N', 3] } },
        params: { mine: { shape: [3, 2], init: 'orthogonal' } },
        nodes: [{ id: 'l', op: 'call', graph: 'lin.graph.json', in: { x: 'obs' }, params: { w: 'mine' } }],
        outputs: { y: 'l.y' },
      },
      { [`${V}/lin.graph.json`]: LIN },
    );
    expect(g.params.map((p) => [p.name, p.init.kind])).toEqual([
      ['mine', 'orthogonal'],
      ['l/b', 'zeros'],
    ]);
    expect(node(g, 'l').inputs).toEqual(['obs', 'mine', 'l/b']);
  });

  it('hoist through nested calls and resolve relative paths from each file', () => {
    const mid = {
      graph: 'mid',
      inputs: { x: { shape: ['B', 3] } },
      nodes: [
        { id: 'inner', op: 'call', graph: '../lin.graph.json', in: { x: 'x' } },
        { id: 'act', op: 'tanh', in: ['inner.y'] },
      ],
      outputs: { out: 'act' },
    };
    const g = load(
      {
        graph: 'outer',
        inputs: { obs: { shape: ['N', 3] } },
        nodes: [{ id: 'm', op: 'call', graph: 'sub/mid.graph.json', in: { x: 'obs' } }],
        outputs: { y: 'm.out' },
      },
      { [`${V}/sub/mid.graph.json`]: mid, [`${V}/lin.graph.json`]: LIN },
    );
    expect(g.params.map((p) => p.name)).toEqual(['m/inner/w', 'm/inner/b']);
    expect(outTypes(node(g, 'm'))).toEqual({ out: 'float32[N, 2]' });
    expect(node(g, 'm').callee!.file).toBe(`${V}/sub/mid.graph.json`);
  });

  it('a number bound to a scalar input becomes a const named "<call id>:<input>"', () => {
    const scale = { graph: 'scale', inputs: { x: { shape: ['B'] }, k: { shape: [] } }, nodes: [{ id: 'y', op: 'mul', in: ['x', 'k'] }], outputs: { y: 'y' } };
    const g = load(
      { graph: 'c', inputs: { v: { shape: [5] } }, nodes: [{ id: 's', op: 'call', graph: 'scale.graph.json', in: { x: 'v', k: 2 } }], outputs: { y: 's.y' } },
      { [`${V}/scale.graph.json`]: scale },
    );
    expect(node(g, 's').bindings).toEqual({ x: 'v', k: 's:k' });
    expect(node(g, 's:k')).toMatchObject({ op: 'const', attrs: { value: 2 } });
    expect(outTypes(node(g, 's'))).toEqual({ y: 'float32[5]' });
  });
});

describe('grad', () => {
  it.skipIf(!has('log_softmax', 'softmax', 'one_hot', 'sum', 'mean'))('output types follow the params and inputs (policy-loss.graph.json)', () => {
    const g = loadGraph(join(FIX, 'policy-loss.graph.json'));
    expect(typeOf(g, 'logits')).toBe('float32[B, 3]');
    expect(typeOf(g, 'onehot')).toBe('float32[B, 3]');
    // sum over the last axis: [B,3] -> [B]; mean of everything -> []
    expect(typeOf(g, 'lp')).toBe('float32[B]');
    expect(typeOf(g, 'loss')).toBe('float32[]');
    expect(outTypes(node(g, 'g'))).toEqual({ w: 'float32[4, 3]', b: 'float32[3]' });
  });

  it.skipIf(!has('mean'))('with respect to an input keeps its symbolic shape', () => {
    const g = load({
      graph: 'gx',
      inputs: { x: { shape: ['B', 3] } },
      params: { w: { shape: [3, 2] } },
      nodes: [
        { id: 'h', op: 'matmul', in: ['x', 'w'] },
        { id: 'loss', op: 'mean', in: ['h'] },
        { id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: ['x', 'w'] } },
      ],
      outputs: { dx: 'g.x', dw: 'g.w' },
    });
    expect(outTypes(node(g, 'g'))).toEqual({ x: 'float32[B, 3]', w: 'float32[3, 2]' });
  });
});

describe('ordering, defaults and files', () => {
  it('nodes written out of order are sorted topologically, keeping their source pointers', () => {
    const g = load({
      graph: 'order',
      inputs: { x: { shape: [2] } },
      nodes: [
        { id: 'd', op: 'add', in: ['c', 'b'] },
        { id: 'c', op: 'tanh', in: ['b'] },
        { id: 'b', op: 'mul', in: ['a', 2] },
        { id: 'a', op: 'neg', in: ['x'] },
      ],
      outputs: { d: 'd' },
    });
    expect(g.nodes.map((n) => n.id)).toEqual(['b:1', 'a', 'b', 'c', 'd']);
    expectTopological(g);
    expect(node(g, 'a').source!.pointer).toBe('/nodes/3');
    expect(node(g, 'd').source!.pointer).toBe('/nodes/0');
  });

  it('defaults: float32 inputs and glorot_uniform params', () => {
    const g = load({
      graph: 'defaults',
      inputs: { x: { shape: [2, 3] }, m: { dtype: 'bool', shape: [] } },
      params: { w: { shape: [3] }, v: { shape: [3], init: { orthogonal: { gain: 2 } } }, u: { shape: [3], init: { uniform: { min: -1, max: 1 } } } },
      nodes: [],
      outputs: { x: 'x', w: 'w' },
    });
    expect(g.inputs.map((i) => showType(i.type))).toEqual(['float32[2, 3]', 'bool[]']);
    expect(g.params.map((p) => p.init)).toEqual([
      { kind: 'glorot_uniform', args: {} },
      { kind: 'orthogonal', args: { gain: 2 } },
      { kind: 'uniform', args: { min: -1, max: 1 } },
    ]);
    // Outputs may name inputs and params directly.
    expect(g.outputs).toEqual({ x: 'x', w: 'w' });
  });

  it('a file saved with a byte-order mark loads', () => {
    const text = '\ufeff' + JSON.stringify({ graph: 'bom', inputs: { x: { shape: [1] } }, nodes: [], outputs: { x: 'x' } });
    const g = loadGraph(`${V}/bom.graph.json`, { files: memoryFiles({ [`${V}/bom.graph.json`]: text }) });
    expect(g.name).toBe('bom');
  });

  it('lin.graph.json on disk has the signature of its in-memory twin', () => {
    const disk = loadGraph(join(FIX, 'lin.graph.json'));
    const mem = load(LIN);
    expect(disk.inputs.map((i) => showType(i.type))).toEqual(mem.inputs.map((i) => showType(i.type)));
    expect(disk.params.map((p) => [p.name, showType(p.type), p.init])).toEqual(mem.params.map((p) => [p.name, showType(p.type), p.init]));
    expect(typeOf(disk, 'y')).toBe('float32[B, 2]');
  });
});
