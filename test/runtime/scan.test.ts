/**
 * The `scan` op: loading and its errors, the reference interpreter against hand-computed loops,
 * and the compiled executor against the interpreter (wasm and cpu), with no tensor leaks.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../../compiler/ops/index.ts';
import { loadGraph, memoryFiles } from '../../compiler/frontend/load.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { mismatch } from '../helpers/mismatch.ts';
import { loomErr } from '../helpers/loom-error.ts';

await tf.setBackend('cpu');

/** Running sum: carry acc [N], xs x [N]; ys: the running sum doubled and the step's input. */
const cumsumBody = {
  graph: 'cumsum-step',
  inputs: { acc: { shape: ['N'] }, x: { shape: ['N'] } },
  nodes: [
    { id: 'next', op: 'add', in: ['acc', 'x'] },
    { id: 'twice', op: 'mul', in: ['next', 2] },
  ],
  outputs: { acc: 'next', doubled: 'twice', seen: 'x' },
};

function cumsumMain(reverse: boolean, extra: Record<string, unknown> = {}) {
  return {
    graph: 'cumsum',
    inputs: { init: { shape: ['N'] }, xs: { shape: ['T', 'N'] } },
    nodes: [{ id: 'loop', op: 'scan', graph: 'cumsum-step.graph.json', in: { acc: 'init', x: 'xs' }, attrs: { xs: ['x'], reverse, ...extra } }],
    outputs: { final: 'loop.acc', doubled: 'loop.doubled', seen: 'loop.seen' },
  };
}

function load(files: Record<string, object>, main = 'main.graph.json'): IRGraph {
  return loadGraph(main, { files: memoryFiles(files) });
}

function values(m: TensorMap): Record<string, number[]> {
  return Object.fromEntries(Object.entries(m).map(([k, t]) => [k, Array.from(t.dataSync())]));
}

function disposeAll(m: TensorMap): void {
  for (const t of Object.values(m)) t.dispose();
}

const XS = [
  [1, 2, 3],
  [10, 20, 30],
  [100, 200, 300],
  [1000, 2000, 3000],
];

/** The running sum of XS from `init`, in the order the scan visits the rows, by hand. */
function handCumsum(init: number[], reverse: boolean): { final: number[]; doubled: number[][] } {
  const order = reverse ? [3, 2, 1, 0] : [0, 1, 2, 3];
  let acc = [...init];
  const doubled: number[][] = [[], [], [], []];
  for (const t of order) {
    acc = acc.map((a, j) => a + XS[t]![j]!);
    doubled[t] = acc.map((a) => 2 * a);
  }
  return { final: acc, doubled };
}

describe('scan: the reference interpreter', () => {
  for (const reverse of [false, true])
    it(`runs the body step by step over the xs (reverse: ${reverse}), carrying the state and stacking ys at their step's index`, () => {
      const g = load({ 'main.graph.json': cumsumMain(reverse), 'cumsum-step.graph.json': cumsumBody });
      const out = values(interpret(g, { init: tf.tensor([0.5, -1, 2]), xs: tf.tensor(XS) }, {}));
      const want = handCumsum([0.5, -1, 2], reverse);
      expect(out.final).toEqual(want.final);
      expect(out.doubled).toEqual(want.doubled.flat());
      expect(out.seen).toEqual(XS.flat());
      expect(g.nodes.find((n) => n.id === 'loop')!.outputTypes).toEqual({
        acc: { dtype: 'float32', shape: ['N'] },
        doubled: { dtype: 'float32', shape: ['T', 'N'] },
        seen: { dtype: 'float32', shape: ['T', 'N'] },
      });
    });
});

/** A random walk with no xs: carries a key and a position, length given as a dim the caller binds. */
const walkBody = {
  graph: 'walk-step',
  inputs: { key: { dtype: 'int32', shape: [2] }, pos: { shape: ['N'] }, scale: { shape: [] } },
  params: { drift: { shape: [1], init: 'ones' } },
  nodes: [
    { id: 'keys', op: 'random_split', in: ['key'], attrs: { num: 2 } },
    { id: 'k0', op: 'slice', in: ['keys'], attrs: { begin: [0, 0], size: [1, 2] } },
    { id: 'k1', op: 'slice', in: ['keys'], attrs: { begin: [1, 0], size: [1, 2] } },
    { id: 'k0i', op: 'reshape', in: ['k0'], attrs: { shape: [2] } },
    { id: 'k1i', op: 'reshape', in: ['k1'], attrs: { shape: [2] } },
    { id: 'noise', op: 'random_normal', in: ['k1i'], attrs: { shape: ['N'] } },
    { id: 'step', op: 'mul', in: ['noise', 'scale'] },
    { id: 'moved', op: 'add', in: ['pos', 'step'] },
    { id: 'drifted', op: 'add', in: ['moved', 'drift'] },
  ],
  outputs: { key: 'k0i', pos: 'drifted', noise: 'noise' },
};

const walkMain = {
  graph: 'walk',
  inputs: { key: { dtype: 'int32', shape: [2] }, pos: { shape: ['N'] }, scale: { shape: [] }, steps: { shape: ['T'] } },
  nodes: [{ id: 'walk', op: 'scan', graph: 'walk-step.graph.json', in: { key: 'key', pos: 'pos', scale: 'scale' }, params: { drift: 'drift' }, attrs: { length: 'T' } }],
  params: { drift: { shape: [1], init: 'zeros' } },
  outputs: { key: 'walk.key', pos: 'walk.pos', noise: 'walk.noise' },
};

describe('scan: loop-invariant inputs, params, a symbolic length, no xs', () => {
  it('equals calling the body T times by hand with the interpreter', () => {
    const files = { 'main.graph.json': walkMain, 'walk-step.graph.json': walkBody };
    const g = load(files);
    const body = loadGraph('walk-step.graph.json', { files: memoryFiles(files) });
    const drift = tf.tensor([0.25]);
    const inputs = { key: tf.tensor([0, 7], [2], 'int32'), pos: tf.tensor([1, 2]), scale: tf.scalar(0.5), steps: tf.zeros([5]) };
    const out = values(interpret(g, inputs, { drift }));
    let state: TensorMap = { key: inputs.key, pos: inputs.pos };
    const noise: number[] = [];
    for (let t = 0; t < 5; t++) {
      const o = interpret(body, { ...state, scale: inputs.scale }, { drift });
      noise.push(...o.noise!.dataSync());
      state = { key: o.key!, pos: o.pos! };
    }
    expect(out.pos).toEqual(Array.from(state.pos!.dataSync()));
    expect(out.key).toEqual(Array.from(state.key!.dataSync()));
    expect(out.noise).toEqual(noise);
    expect(out.noise!.length).toBe(10);
  });
});

describe('scan: the compiled executor against the interpreter', () => {
  for (const backend of ['cpu', 'wasm'])
    it(`matches on ${backend}, forwards and reversed, and leaks nothing over repeated runs`, async () => {
      await tf.setBackend(backend);
      try {
        for (const reverse of [false, true]) {
          const g = load({ 'main.graph.json': cumsumMain(reverse), 'cumsum-step.graph.json': cumsumBody });
          const inputs = { init: tf.tensor([0.5, -1, 2]), xs: tf.tensor(XS) };
          const prog = compileProgram(g);
          const ref = interpret(g, inputs, {});
          const first = prog.run(inputs, {});
          expect(values(first)).toEqual(values(ref));
          disposeAll(first);
          const before = tf.memory().numTensors;
          for (let k = 0; k < 3; k++) disposeAll(prog.run(inputs, {}));
          expect(tf.memory().numTensors).toBe(before);
          disposeAll(ref);
          disposeAll(inputs);
        }
        const files = { 'main.graph.json': walkMain, 'walk-step.graph.json': walkBody };
        const g = load(files);
        const inputs = { key: tf.tensor([3, 1], [2], 'int32'), pos: tf.tensor([1, 2, 3]), scale: tf.scalar(0.5), steps: tf.zeros([6]) };
        const params = { drift: tf.tensor([0.125]) };
        const ref = interpret(g, inputs, params);
        const prog = compileProgram(g);
        const out = prog.run(inputs, params);
        expect(mismatch(out, ref)).toBeLessThan(1e-6);
        expect(values(out).key).toEqual(values(ref).key);
        disposeAll(out);
        const before = tf.memory().numTensors;
        disposeAll(prog.run(inputs, params));
        expect(tf.memory().numTensors).toBe(before);
      } finally {
        await tf.setBackend('cpu');
      }
    });

  for (const backend of ['cpu', 'wasm'])
    it(`writes its carries and ys into the loop's own tensors after the first step, which later runs leave intact (${backend})`, async () => {
      await tf.setBackend(backend);
      try {
        const g = load({ 'main.graph.json': walkMain, 'walk-step.graph.json': walkBody });
        const prog = compileProgram(g);
        const params = { drift: tf.tensor([0.125]) };
        const inputsFor = (T: number) => ({ key: tf.tensor([T, 5], [2], 'int32'), pos: tf.tensor([1, -2, 3]), scale: tf.scalar(0.5), steps: tf.zeros([T]) });
        // Odd and even step counts end on either tensor of a carry's pair.
        const runs = [1, 2, 3, 8, 24].map((T) => ({ T, inputs: inputsFor(T) }));
        const made: number[] = [];
        const kept = runs.map(({ inputs }) => {
          const probe = tf.scalar(0);
          const out = prog.run(inputs, params);
          const after = tf.scalar(0);
          made.push(after.id - probe.id - 1);
          tf.dispose([probe, after]);
          return out;
        });
        // Each result, checked after every run: no later run wrote into a tensor it handed out.
        runs.forEach(({ inputs }, i) => {
          const ref = interpret(g, inputs, params);
          expect(mismatch(kept[i]!, ref), `T = ${runs[i]!.T}`).toBeLessThan(1e-6);
          expect(values(kept[i]!).key).toEqual(values(ref).key);
          disposeAll(ref);
        });
        // Tensors made per step, between 8 and 24 steps: the 3 outputs of a step need no fresh ones.
        expect((made[4]! - made[3]!) / 16).toBeLessThan(1);
        kept.forEach(disposeAll);
        runs.forEach(({ inputs }) => disposeAll(inputs));
        params.drift.dispose();
      } finally {
        await tf.setBackend('cpu');
      }
    });

  it('runs zero steps: the carries come back unchanged and the ys are empty', () => {
    const g = load({ 'main.graph.json': cumsumMain(false), 'cumsum-step.graph.json': cumsumBody });
    const inputs = { init: tf.tensor([4, 5, 6]), xs: tf.zeros([0, 3]) };
    for (const out of [interpret(g, inputs, {}), compileProgram(g).run(inputs, {})]) {
      expect(values(out).final).toEqual([4, 5, 6]);
      expect(out.doubled!.shape).toEqual([0, 3]);
    }
  });

  it('takes gradients inside its body: T steps of gradient descent on a quadratic, checked by hand', () => {
    // Each step: loss = sum((w - target)^2), w <- w - lr * dloss/dw = w - 2 lr (w - target).
    const body = {
      graph: 'gd-step',
      inputs: { w: { shape: [3] }, target: { shape: [3] }, lr: { shape: [] } },
      nodes: [
        { id: 'd', op: 'sub', in: ['w', 'target'] },
        { id: 'sq', op: 'square', in: ['d'] },
        { id: 'loss', op: 'sum', in: ['sq'] },
        { id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: ['w'] } },
        { id: 'stepv', op: 'mul', in: ['g.w', 'lr'] },
        { id: 'w2', op: 'sub', in: ['w', 'stepv'] },
      ],
      outputs: { w: 'w2', loss: 'loss' },
    };
    const main = {
      graph: 'gd',
      inputs: { w: { shape: [3] }, target: { shape: [3] }, lr: { shape: [] } },
      nodes: [{ id: 'fit', op: 'scan', graph: 'gd-step.graph.json', in: { w: 'w', target: 'target', lr: 'lr' }, attrs: { length: 4 } }],
      outputs: { w: 'fit.w', losses: 'fit.loss' },
    };
    const g = load({ 'main.graph.json': main, 'gd-step.graph.json': body });
    const inputs = { w: tf.tensor([1, -2, 3]), target: tf.tensor([0, 1, 1]), lr: tf.scalar(0.25) };
    let w = [1, -2, 3];
    const losses: number[] = [];
    for (let t = 0; t < 4; t++) {
      losses.push(w.reduce((a, x, j) => a + (x - [0, 1, 1][j]!) ** 2, 0));
      w = w.map((x, j) => x - 0.5 * (x - [0, 1, 1][j]!));
    }
    for (const out of [interpret(g, inputs, {}), compileProgram(g).run(inputs, {})]) {
      const v = values(out);
      v.w!.forEach((x, j) => expect(x).toBeCloseTo(w[j]!, 6));
      v.losses!.forEach((x, j) => expect(x).toBeCloseTo(losses[j]!, 5));
    }
  });

  it('nests: a scan whose body holds a scan, inside a called graph with its own length dim', () => {
    const inner = {
      graph: 'inner',
      inputs: { acc: { shape: [] }, x: { shape: [] } },
      nodes: [{ id: 's', op: 'add', in: ['acc', 'x'] }],
      outputs: { acc: 's' },
    };
    const outer = {
      graph: 'outer-step',
      inputs: { total: { shape: [] }, row: { shape: ['K'] } },
      nodes: [
        { id: 'rowsum', op: 'scan', graph: 'inner.graph.json', in: { acc: 0, x: 'row' }, attrs: { xs: ['x'] } },
        { id: 'sq', op: 'square', in: ['rowsum.acc'] },
        { id: 't', op: 'add', in: ['total', 'sq'] },
      ],
      outputs: { total: 't', rowsum: 'rowsum.acc' },
    };
    const sub = {
      graph: 'sub',
      inputs: { m: { shape: ['R', 'C'] } },
      nodes: [{ id: 'rows', op: 'scan', graph: 'outer-step.graph.json', in: { total: 0, row: 'm' }, attrs: { xs: ['row'], length: 'R' } }],
      outputs: { total: 'rows.total', sums: 'rows.rowsum' },
    };
    const main = {
      graph: 'main',
      inputs: { m: { shape: ['A', 'B'] } },
      nodes: [{ id: 'c', op: 'call', graph: 'sub.graph.json', in: { m: 'm' } }],
      outputs: { total: 'c.total', sums: 'c.sums' },
    };
    const g = load({ 'main.graph.json': main, 'sub.graph.json': sub, 'outer-step.graph.json': outer, 'inner.graph.json': inner });
    const m = tf.tensor([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    for (const out of [interpret(g, { m }, {}), compileProgram(g).run({ m }, {})]) {
      expect(values(out).sums).toEqual([3, 7, 11]);
      expect(values(out).total).toEqual([9 + 49 + 121]);
    }
  });
});

describe('scan: errors name the file, the JSON pointer and the node', () => {
  const files = (main: object, body: object = cumsumBody) => ({ 'main.graph.json': main, 'cumsum-step.graph.json': body });
  const withNode = (patch: Record<string, unknown>, inputs?: Record<string, unknown>) => ({
    ...cumsumMain(false),
    ...(inputs ? { inputs } : {}),
    nodes: [{ ...cumsumMain(false).nodes[0], ...patch }],
  });

  it('a carry whose type the body changes', () => {
    const body = { ...cumsumBody, nodes: [...cumsumBody.nodes, { id: 'wide', op: 'concat', in: ['next', 'next'], attrs: { axis: 0 } }], outputs: { acc: 'wide', doubled: 'twice', seen: 'x' } };
    const e = loomErr(() => load(files(cumsumMain(false), body)));
    expect(e.info).toMatchObject({ code: 'E_SHAPE', file: 'main.graph.json', pointer: '/nodes/0/in/acc', node: 'loop', expected: 'float32[N]', found: 'float32[2*N]' });
    expect(e.info.message).toMatch(/carry "acc" changes type/);
  });

  it('an xs without its time axis, and xs of different lengths', () => {
    const e = loomErr(() => load(files(withNode({}, { init: { shape: ['N'] }, xs: { shape: ['N'] } }))));
    expect(e.info).toMatchObject({ code: 'E_SHAPE', pointer: '/nodes/0/in/x', node: 'loop', found: 'float32[N]' });
    expect(e.info.message).toMatch(/leading time axis/);
    const e2 = loomErr(() => load(files(withNode({ attrs: { xs: ['x'], length: 5 } }, { init: { shape: [3] }, xs: { shape: [4, 3] } }))));
    expect(e2.info).toMatchObject({ code: 'E_SHAPE', pointer: '/nodes/0/in/x', node: 'loop' });
    expect(e2.info.message).toMatch(/4 steps .* but the scan has 5/);
  });

  it('a dtype mismatch on a carry', () => {
    const e = loomErr(() => load(files(withNode({}, { init: { dtype: 'int32', shape: ['N'] }, xs: { shape: ['T', 'N'] } }))));
    expect(e.info).toMatchObject({ code: 'E_DTYPE', pointer: '/nodes/0/in/acc', node: 'loop', found: 'int32[N]' });
  });

  it('attributes: no length and no xs, an unknown attribute, xs naming no input or naming a carry, an unbound length', () => {
    const noLen = loomErr(() => load(files(withNode({ attrs: {}, in: { acc: 'init', x: 'init' } }))));
    expect(noLen.info).toMatchObject({ code: 'E_ATTR', pointer: '/nodes/0/attrs', node: 'loop' });
    const unknown = loomErr(() => load(files(withNode({ attrs: { xs: ['x'], revers: true } }))));
    expect(unknown.info).toMatchObject({ code: 'E_ATTR', pointer: '/nodes/0/attrs/revers', hint: 'did you mean "reverse"?' });
    const notInput = loomErr(() => load(files(withNode({ attrs: { xs: ['xx'] } }))));
    expect(notInput.info).toMatchObject({ code: 'E_ATTR', pointer: '/nodes/0/attrs/xs/0', hint: 'did you mean "x"?' });
    const carry = loomErr(() => load(files(withNode({ attrs: { xs: ['acc', 'x'] } }))));
    expect(carry.info).toMatchObject({ code: 'E_ATTR', pointer: '/nodes/0/attrs/xs/0' });
    const unbound = loomErr(() => load(files(withNode({ attrs: { length: 'Q' }, in: { acc: 'init', x: 'init' } }))));
    expect(unbound.info).toMatchObject({ code: 'E_UNBOUND_DIM', pointer: '/nodes/0/attrs/length', node: 'loop', found: 'Q' });
  });

  it('a missing body file and an unbound body input', () => {
    const missing = loomErr(() => load({ 'main.graph.json': withNode({ graph: 'nope.graph.json' }) }));
    expect(missing.info).toMatchObject({ code: 'E_IMPORT', pointer: '/nodes/0/graph', node: 'loop' });
    const unbound = loomErr(() => load(files(withNode({ in: { acc: 'init' } }))));
    expect(unbound.info).toMatchObject({ code: 'E_ARITY', pointer: '/nodes/0/in', node: 'loop' });
    expect(unbound.info.message).toMatch(/scan of cumsum-step does not bind its input "x"/);
  });

  it('grad through a scan is a clear error at the grad node', () => {
    const main = {
      graph: 'g',
      inputs: { init: { shape: [3] }, xs: { shape: [4, 3] } },
      nodes: [
        { id: 'loop', op: 'scan', graph: 'cumsum-step.graph.json', in: { acc: 'init', x: 'xs' }, attrs: { xs: ['x'] } },
        { id: 'total', op: 'sum', in: ['loop.acc'] },
        { id: 'd', op: 'grad', in: ['total'], attrs: { wrt: ['init'] } },
      ],
      outputs: { d: 'd.init' },
    };
    const e = loomErr(() => compileProgram(load(files(main))));
    expect(e.info).toMatchObject({ code: 'E_UNSUPPORTED', pointer: '/nodes/2', node: 'd' });
    expect(e.info.message).toMatch(/through the scan "loop"/);
  });
});

describe('scan: the shipped example graphs/examples/fit-line.graph.json', () => {
  it('is 50 steps of gradient descent, step for step what a hand-written loop computes', () => {
    const g = loadGraph('graphs/examples/fit-line.graph.json');
    const x = [0, 1, 2, 3];
    const y = [1, 3, 5, 7];
    let w = 0;
    let b = 0;
    const losses: number[] = [];
    for (let t = 0; t < 50; t++) {
      const err = x.map((xi, i) => w * xi + b - y[i]!);
      losses.push(err.reduce((a, e) => a + e * e, 0) / 4);
      const dw = err.reduce((a, e, i) => a + (2 * e * x[i]!) / 4, 0);
      const db = err.reduce((a, e) => a + (2 * e) / 4, 0);
      w -= 0.1 * dw;
      b -= 0.1 * db;
    }
    const inputs = { x: tf.tensor(x), y: tf.tensor(y), lr: tf.scalar(0.1) };
    for (const out of [interpret(g, inputs, {}), compileProgram(g).run(inputs, {})]) {
      expect(out.w!.dataSync()[0]).toBeCloseTo(w, 4);
      expect(out.b!.dataSync()[0]).toBeCloseTo(b, 4);
      Array.from(out.losses!.dataSync()).forEach((l, t) => expect(l).toBeCloseTo(losses[t]!, 4));
    }
    expect(w).toBeCloseTo(2, 2);
  });
});

describe('scan: the stages a graph is composed of', () => {
  it('lists every called and scanned graph by the path of nodes that reaches it', async () => {
    const { stageGraphs } = await import('../../compiler/inspect.ts');
    const inner = { graph: 'inner', inputs: { acc: { shape: [] }, x: { shape: [] } }, nodes: [{ id: 's', op: 'add', in: ['acc', 'x'] }], outputs: { acc: 's' } };
    const outer = {
      graph: 'outer-step',
      inputs: { total: { shape: [] }, row: { shape: [2] } },
      nodes: [
        { id: 'rowsum', op: 'scan', graph: 'inner.graph.json', in: { acc: 0, x: 'row' }, attrs: { xs: ['x'] } },
        { id: 't', op: 'add', in: ['total', 'rowsum.acc'] },
      ],
      outputs: { total: 't' },
    };
    const main = {
      graph: 'main',
      inputs: { m: { shape: [3, 2] } },
      nodes: [{ id: 'rows', op: 'scan', graph: 'outer-step.graph.json', in: { total: 0, row: 'm' }, attrs: { xs: ['row'] } }],
      outputs: { total: 'rows.total' },
    };
    const g = load({ 'main.graph.json': main, 'outer-step.graph.json': outer, 'inner.graph.json': inner });
    const stages = stageGraphs(g, 'iteration');
    expect([...stages].map(([k, v]) => `${k}: ${v.name}`)).toEqual(['iteration: main', 'rows: outer-step', 'rows > rowsum: inner']);
  });
});

describe('profile: where the time of a run goes', () => {
  it('adds each top-level step under its node id, a scan as one entry with its body steps under it, and only when asked', () => {
    const g = loadGraph('graphs/examples/fit-line.graph.json');
    const inputs = { x: tf.tensor([0, 1, 2, 3]), y: tf.tensor([1, 3, 5, 7]), lr: tf.scalar(0.1) };
    const profile = new Map<string, number>();
    const prog = compileProgram(g, { profile });
    const out = prog.run(inputs, {});
    const scan = prog.graph.nodes.find((n) => n.op === 'scan')!;
    const bodyIds = new Set(compileProgram(scan.callee!).graph.nodes.map((n) => n.id));
    const inner = [...profile.keys()].filter((k) => k !== 'fit');
    expect(profile.has('fit')).toBe(true);
    expect(inner).toContain('fit > (xs)');
    expect(inner).toContain('fit > (ys)');
    const steps = inner.filter((k) => k !== 'fit > (xs)' && k !== 'fit > (ys)');
    expect(steps.length).toBeGreaterThan(0);
    for (const k of steps) expect(bodyIds.has(k.slice('fit > '.length)), k).toBe(true);
    // The body's steps are parts of the scan's loop.
    expect(inner.reduce((a, k) => a + profile.get(k)!, 0)).toBeLessThanOrEqual(profile.get('fit')!);
    const plain = compileProgram(g).run(inputs, {});
    expect(values(plain)).toEqual(values(out));
  });
});

describe('scan: fusion around a scan', () => {
  it('does not fuse a node before the scan with one that reads the scan (the fused graph would have a cycle)', () => {
    const body = { graph: 'inc', inputs: { acc: { shape: [] } }, nodes: [{ id: 's', op: 'mul', in: ['acc', 3] }], outputs: { acc: 's' } };
    const main = {
      graph: 'around',
      inputs: { x: { shape: [] } },
      nodes: [
        { id: 'a', op: 'mul', in: ['x', 2] },
        { id: 'loop', op: 'scan', graph: 'inc.graph.json', in: { acc: 'a' }, attrs: { length: 3 } },
        { id: 'b', op: 'add', in: ['loop.acc', 1] },
        { id: 'c', op: 'add', in: ['b', 'x'] },
      ],
      outputs: { c: 'c' },
    };
    const g = load({ 'main.graph.json': main, 'inc.graph.json': body });
    const x = { x: tf.scalar(0.5) };
    expect(values(compileProgram(g).run(x, {})).c).toEqual([0.5 * 2 * 27 + 1 + 0.5]);
    expect(values(interpret(g, x, {})).c).toEqual([0.5 * 2 * 27 + 1 + 0.5]);
  });
});
