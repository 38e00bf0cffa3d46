/**
 * The vmap pass, checked against its definition: the batched graph computes, for every instance,
 * what the reference interpreter computes on that instance alone (the oracle), on the
 * interpreter and on the compiled executor, over the whole graph library and random graphs.
 */
import { relative } from 'node:path';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGraph, memoryFiles } from '../../../compiler/frontend/load.ts';
import type { IRGraph } from '../../../compiler/ir.ts';
import { autodiff } from '../../../compiler/passes/autodiff.ts';
import { inline } from '../../../compiler/passes/inline.ts';
import { vmap, vmapWithReport, type VmapSpec } from '../../../compiler/passes/vmap.ts';
import { compileProgram } from '../../../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../../../runtime/interpreter.ts';
import { inlineGraph } from '../../helpers/inline-graph.ts';
import { graphFiles, GRAPHS_ROOT, inputsFor, LONG_CLOSED_LOOP } from '../../helpers/library-graphs.ts';
import { loomErr } from '../../helpers/loom-error.ts';
import { buildGraph, instrArb, randomInputs } from '../../helpers/random-graph.ts';
import { main as vmapExample } from '../../../examples/vmap-seeds.ts';

const K = 3;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const prepare = (g: IRGraph): IRGraph => autodiff.run(inline.run(g));

/** Instance k of the deterministic library inputs: floats scaled, keys with their own seed, masks alternating. */
function instanceInputs(base: TensorMap, k: number): TensorMap {
  const out: TensorMap = {};
  for (const [name, t] of Object.entries(base)) {
    if (t.dtype === 'float32') out[name] = tf.mul(t, 1 + 0.25 * k);
    else if (t.dtype === 'int32' && t.shape.length === 1 && t.shape[0] === 2) out[name] = tf.tensor1d([1 + k, 7 + 3 * k], 'int32');
    else if (t.dtype === 'bool') out[name] = k % 2 === 1 ? tf.logicalNot(t) : tf.clone(t);
    else out[name] = tf.clone(t);
  }
  return out;
}

/** A small deterministic generator, so that the axes each graph gets are reproducible. */
function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

function expectClose(got: tf.Tensor, want: tf.Tensor, what: string, exact = false): void {
  expect(got.shape, what).toEqual(want.shape);
  expect(got.dtype, what).toBe(want.dtype);
  const a = got.dataSync();
  const b = want.dataSync();
  for (let i = 0; i < a.length; i++) {
    const tol = exact ? 0 : 1e-4 + 1e-4 * Math.abs(b[i]!);
    if (!(a[i] === b[i] || Math.abs(a[i]! - b[i]!) <= tol || (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)))) expect.fail(`${what}[${i}]: batched ${a[i]} vs alone ${b[i]}`);
  }
}

/**
 * Runs g on each instance alone through the interpreter and the vmapped graph on the batch
 * (interpreter, and the compiled executor when `compiled`), comparing every output.
 */
function checkVmap(
  g: IRGraph,
  instances: TensorMap[],
  params: TensorMap,
  axes: VmapSpec['axes'],
  o: { compiled?: boolean; exact?: boolean; size?: VmapSpec['size']; reference?: IRGraph } = {},
): void {
  const alone = instances.map((ins) => interpret(o.reference ?? g, ins, params));
  const batchedInputs: TensorMap = {};
  for (const i of g.inputs)
    batchedInputs[i.name] = axes[i.name] === 0 ? tf.stack(instances.map((ins) => ins[i.name]!)) : tf.clone(instances[0]![i.name]!);
  const vg = vmap(g, { size: o.size ?? instances.length, axes });
  const runs: [string, TensorMap][] = [['interpreter', interpret(vg, batchedInputs, params)]];
  if (o.compiled) runs.push(['compiled', compileProgram(vg, { log: () => {} }).run(batchedInputs, params)]);
  for (const [how, got] of runs) {
    for (const name of Object.keys(g.outputs)) {
      const want = tf.stack(alone.map((a) => a[name]!));
      expectClose(got[name]!, want, `${how} ${name}`, o.exact);
      want.dispose();
    }
    tf.dispose(Object.values(got));
  }
  tf.dispose([...alone.flatMap((a) => Object.values(a)), ...Object.values(batchedInputs)]);
}

/** Only these inputs differ between instances, so a shared input must be the same for all. */
function shareUnbatched(instances: TensorMap[], axes: VmapSpec['axes']): TensorMap[] {
  return instances.map((ins) => Object.fromEntries(Object.entries(ins).map(([k, v]) => [k, axes[k] === 0 ? v : instances[0]![k]!])));
}

/**
 * Besides the long closed-loop iterations, Hybrid GRPO's iteration (10 x 4 update steps, about 40 s
 * through the interpreter per instance) is left out: it has the ops of GRPO's iteration and its own
 * group step, both checked.
 */
const TOO_LONG = new Set([...LONG_CLOSED_LOOP, 'programs/hybrid-grpo-cartpole/iteration.graph.json']);

/**
 * Minibatch rows for update steps whose loss would see equal advantages with the library's all-zero
 * rows: their std is 0 and the normalised advantage is rounding noise divided by 1e-8.
 */
const DISTINCT_ROWS = /^programs\/amppo-[a-z_]+\/update-step\.graph\.json$/;
const distinctRows = (): TensorMap => ({ rows: tf.tensor1d([0, 1, 2], 'int32') });

describe('vmap over the graph library: K instances batched == each instance alone', () => {
  const files = graphFiles(GRAPHS_ROOT);
  it('finds the library', () => expect(files.length).toBeGreaterThan(40));
  for (const file of files) {
    const name = relative(GRAPHS_ROOT, file);
    if (TOO_LONG.has(name)) continue;
    it(name, () => {
      // The oracle runs the graph as written: calls recursively, grads by tfjs's own autodiff.
      const raw = loadGraph(file);
      const g = prepare(raw);
      const over = DISTINCT_ROWS.test(name) ? distinctRows() : {};
      const lib = inputsFor(g);
      tf.dispose(Object.keys(over).map((k) => lib[k]!));
      const base = { ...lib, ...over };
      const params = initParams(g, 3);
      const rnd = lcg(hash(name));
      // Two settings: every input batched, and a random subset shared.
      for (const mode of ['all', 'random'] as const) {
        const axes: VmapSpec['axes'] = Object.fromEntries(g.inputs.map((i) => [i.name, mode === 'all' || rnd() < 0.5 ? 0 : null]));
        const instances = shareUnbatched(
          Array.from({ length: K }, (_, k) => instanceInputs(base, k)),
          axes,
        );
        checkVmap(g, instances, params, axes, { compiled: mode === 'all', reference: raw });
        tf.dispose(instances.flatMap((ins, k) => Object.entries(ins).filter(([n]) => k === 0 || axes[n] === 0).map(([, v]) => v)));
      }
      tf.dispose([...Object.values(base), ...Object.values(params)]);
    });
  }
});

describe('vmap over random graphs', () => {
  it('agrees with each instance alone for random graphs and random axes', () => {
    fc.assert(
      fc.property(fc.array(instrArb, { minLength: 1, maxLength: 12 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), (instrs, picks) => {
        const g = prepare(inlineGraph(buildGraph(instrs)));
        const axes: VmapSpec['axes'] = Object.fromEntries(g.inputs.map((i, k) => [i.name, picks[k] ? 0 : null]));
        const instances = shareUnbatched(
          Array.from({ length: K }, (_, k) => randomInputs(2, 11 + k)),
          axes,
        );
        checkVmap(g, instances, {}, axes);
        tf.dispose(instances.flatMap((ins) => Object.values(ins)));
      }),
      { numRuns: 40, seed: 5 },
    );
  });
});

interface In {
  shape: number[];
  dtype?: 'float32' | 'int32' | 'bool';
  /** int32 values in [0, max) (indices, actions); keys are int32 [2]. */
  max?: number;
  key?: boolean;
}
interface OpCase {
  name: string;
  inputs: Record<string, In>;
  node: { op: string; in: (string | number)[]; attrs?: Record<string, unknown> };
}

function instanceValue(spec: In, seed: number): tf.Tensor {
  if (spec.key) return tf.tensor1d([seed, 100 + seed], 'int32');
  if (spec.dtype === 'int32') return tf.tidy(() => tf.cast(tf.floor(tf.randomUniform(spec.shape, 0, spec.max ?? 3, 'float32', seed)), 'int32'));
  if (spec.dtype === 'bool') return tf.tidy(() => tf.greater(tf.randomUniform(spec.shape, 0, 1, 'float32', seed), 0.5));
  return tf.randomUniform(spec.shape, -2, 2, 'float32', seed);
}

const f = (...shape: number[]): In => ({ shape });
const int = (max: number, ...shape: number[]): In => ({ shape, dtype: 'int32', max });
const KEY: In = { shape: [2], dtype: 'int32', key: true };

/** One case per batching rule and the ops it covers, each run with every subset of its inputs batched. */
const OP_CASES: OpCase[] = [
  { name: 'add (ranks differ)', inputs: { x: f(3), y: f(2, 3) }, node: { op: 'add', in: ['x', 'y'] } },
  { name: 'where', inputs: { c: { shape: [2, 3], dtype: 'bool' }, x: f(3), y: f(2, 1) }, node: { op: 'where', in: ['c', 'x', 'y'] } },
  { name: 'normal_log_prob', inputs: { x: f(2, 3), m: f(3), s: f(3) }, node: { op: 'normal_log_prob', in: ['x', 'm', 's'] } },
  { name: 'matmul', inputs: { a: f(4, 3), b: f(3, 2) }, node: { op: 'matmul', in: ['a', 'b'] } },
  { name: 'matmul (batch dims, transposed)', inputs: { a: f(2, 3, 4), b: f(2, 5, 3) }, node: { op: 'matmul', in: ['a', 'b'], attrs: { transpose_a: true, transpose_b: true } } },
  { name: 'sum over axes', inputs: { x: f(2, 3, 4) }, node: { op: 'sum', in: ['x'], attrs: { axes: [0, -1], keepdims: true } } },
  { name: 'mean over all', inputs: { x: f(2, 3) }, node: { op: 'mean', in: ['x'] } },
  { name: 'std', inputs: { x: f(2, 3) }, node: { op: 'std', in: ['x'], attrs: { axes: 1, ddof: 1 } } },
  { name: 'reduce_count', inputs: { x: f(2, 3) }, node: { op: 'reduce_count', in: ['x'], attrs: { axes: [1] } } },
  { name: 'argmax', inputs: { x: f(2, 3) }, node: { op: 'argmax', in: ['x'], attrs: { axis: 0 } } },
  { name: 'softmax', inputs: { x: f(2, 3) }, node: { op: 'softmax', in: ['x'], attrs: { axis: 0 } } },
  { name: 'log_softmax', inputs: { x: f(2, 3) }, node: { op: 'log_softmax', in: ['x'] } },
  { name: 'categorical_log_prob', inputs: { l: f(4, 3), a: int(3, 4) }, node: { op: 'categorical_log_prob', in: ['l', 'a'] } },
  { name: 'categorical_one_hot', inputs: { a: int(3, 4), l: f(4, 3) }, node: { op: 'categorical_one_hot', in: ['a', 'l'] } },
  { name: 'categorical_entropy', inputs: { l: f(4, 3) }, node: { op: 'categorical_entropy', in: ['l'] } },
  { name: 'one_hot', inputs: { i: int(4, 2, 3) }, node: { op: 'one_hot', in: ['i'], attrs: { depth: 4 } } },
  { name: 'reshape', inputs: { x: f(2, 3, 2) }, node: { op: 'reshape', in: ['x'], attrs: { shape: [-1, 2] } } },
  { name: 'expand_dims', inputs: { x: f(2, 3) }, node: { op: 'expand_dims', in: ['x'], attrs: { axis: 1 } } },
  { name: 'squeeze (all 1s)', inputs: { x: f(1, 3, 1) }, node: { op: 'squeeze', in: ['x'] } },
  { name: 'squeeze (axes)', inputs: { x: f(2, 1) }, node: { op: 'squeeze', in: ['x'], attrs: { axes: [-1] } } },
  { name: 'transpose', inputs: { x: f(2, 3, 4) }, node: { op: 'transpose', in: ['x'], attrs: { perm: [2, 0, 1] } } },
  { name: 'transpose (default)', inputs: { x: f(2, 3) }, node: { op: 'transpose', in: ['x'] } },
  { name: 'concat', inputs: { x: f(2, 3), y: f(2, 1) }, node: { op: 'concat', in: ['x', 'y'], attrs: { axis: -1 } } },
  { name: 'stack', inputs: { x: f(2, 3), y: f(2, 3) }, node: { op: 'stack', in: ['x', 'y'], attrs: { axis: 1 } } },
  { name: 'split_like', inputs: { x: f(2, 5), a: f(2, 2), b: f(2, 3) }, node: { op: 'split_like', in: ['x', 'a', 'b'], attrs: { axis: 1, index: 1 } } },
  { name: 'slice', inputs: { x: f(4, 3) }, node: { op: 'slice', in: ['x'], attrs: { begin: [1, 0], size: [2, -1] } } },
  { name: 'pad_like', inputs: { x: f(2, 2), l: f(4, 3) }, node: { op: 'pad_like', in: ['x', 'l'], attrs: { begin: [1, 1] } } },
  { name: 'tile', inputs: { x: f(2, 3) }, node: { op: 'tile', in: ['x'], attrs: { reps: [2, 1] } } },
  { name: 'gather', inputs: { x: f(4, 3), i: int(4, 5) }, node: { op: 'gather', in: ['x', 'i'] } },
  { name: 'gather (axis 1)', inputs: { x: f(2, 4, 3), i: int(4, 2, 2) }, node: { op: 'gather', in: ['x', 'i'], attrs: { axis: 1 } } },
  { name: 'gather (axis -1)', inputs: { x: f(2, 3), i: int(3, 4) }, node: { op: 'gather', in: ['x', 'i'], attrs: { axis: -1 } } },
  { name: 'scatter_add', inputs: { u: f(5, 3), i: int(4, 5), l: f(4, 3) }, node: { op: 'scatter_add', in: ['u', 'i', 'l'] } },
  { name: 'broadcast_to', inputs: { x: f(3) }, node: { op: 'broadcast_to', in: ['x'], attrs: { shape: [2, 3] } } },
  { name: 'broadcast_like', inputs: { x: f(3), l: f(2, 3) }, node: { op: 'broadcast_like', in: ['x', 'l'] } },
  { name: 'sum_to', inputs: { x: f(2, 4, 3), l: f(1, 3) }, node: { op: 'sum_to', in: ['x', 'l'] } },
  { name: 'ones_like', inputs: { x: f(2, 3) }, node: { op: 'ones_like', in: ['x'] } },
  { name: 'clip', inputs: { x: f(2, 3) }, node: { op: 'clip', in: ['x'], attrs: { min: -1, max: 0.5 } } },
  { name: 'cast', inputs: { x: f(2, 3) }, node: { op: 'cast', in: ['x'], attrs: { dtype: 'int32' } } },
  { name: 'reverse_linear_scan', inputs: { a: f(4, 2), c: f(4, 2), i: f(2) }, node: { op: 'reverse_linear_scan', in: ['a', 'c', 'i'] } },
  { name: 'linear_scan', inputs: { a: f(4), c: f(4), i: f() }, node: { op: 'linear_scan', in: ['a', 'c', 'i'] } },
  { name: 'time_shift', inputs: { x: f(4, 2), v: f(2) }, node: { op: 'time_shift', in: ['x', 'v'], attrs: { offset: -1 } } },
  { name: 'random_uniform', inputs: { k: KEY }, node: { op: 'random_uniform', in: ['k'], attrs: { shape: [2, 3], min: -1, max: 2 } } },
  { name: 'random_normal', inputs: { k: KEY }, node: { op: 'random_normal', in: ['k'], attrs: { shape: [5] } } },
  { name: 'random_uniform_like', inputs: { k: KEY, l: f(3, 2) }, node: { op: 'random_uniform_like', in: ['k', 'l'] } },
  { name: 'random_categorical', inputs: { k: KEY, l: f(4, 3) }, node: { op: 'random_categorical', in: ['k', 'l'] } },
  { name: 'random_split', inputs: { k: KEY }, node: { op: 'random_split', in: ['k'], attrs: { num: 3 } } },
  { name: 'random_fold_in', inputs: { k: KEY, d: int(100) }, node: { op: 'random_fold_in', in: ['k', 'd'] } },
  { name: 'random_permutation', inputs: { k: KEY }, node: { op: 'random_permutation', in: ['k'], attrs: { n: 7 } } },
  { name: 'random_int', inputs: { k: KEY }, node: { op: 'random_int', in: ['k'], attrs: { shape: [2, 3], max: 5 } } },
];

describe('vmap rules, op by op: every subset of inputs batched == each instance alone', () => {
  for (const c of OP_CASES) {
    it(c.name, () => {
      const g = prepare(
        inlineGraph({
          graph: 'op',
          inputs: Object.fromEntries(Object.entries(c.inputs).map(([n, s]) => [n, { shape: s.shape, ...(s.dtype ? { dtype: s.dtype } : {}) }])),
          nodes: [{ id: 'out', ...c.node }],
          outputs: { out: 'out' },
        }),
      );
      const names = Object.keys(c.inputs);
      for (let mask = 1; mask < 1 << names.length; mask++) {
        const axes: VmapSpec['axes'] = Object.fromEntries(names.map((n, j) => [n, mask & (1 << j) ? 0 : null]));
        const instances = Array.from({ length: K }, (_, k) =>
          Object.fromEntries(names.map((n, j) => [n, instanceValue(c.inputs[n]!, axes[n] === 0 ? 1 + 10 * j + k : 1 + 10 * j)])),
        );
        // Random numbers and integer results must be exactly the instance's own.
        const exact = c.node.op.startsWith('random_') || ['int32', 'bool'].includes(g.nodes.at(-1)!.type!.dtype);
        checkVmap(g, instances, {}, axes, { compiled: true, exact });
        tf.dispose(instances.flatMap((ins) => Object.values(ins)));
      }
      expect(vmapWithReport(g, { size: K, axes: Object.fromEntries(names.map((n) => [n, 0])) }).fallbacks.map((x) => x.op)).toEqual(
        c.node.op === 'scatter_add' ? ['scatter_add'] : [],
      );
    });
  }
});

describe('vmap of training graphs batches without falling back', () => {
  const cases: [string, string[]][] = [
    // PPO's loss and gradients: the minibatch per seed, the params per seed too (K seeds).
    ['algorithms/ppo-cartpole.loss.graph.json', []],
    ['algorithms/ppo-pendulum.loss.graph.json', []],
    // The env step: each seed its own envs and key; the step graph's constants shared.
    ['envs/cartpole.step.graph.json', []],
    // Adam: params, moments and step per seed; the hyperparameters shared.
    ['optimizers/adam.graph.json', ['lr', 'beta1', 'beta2', 'eps']],
  ];
  for (const [file, shared] of cases) {
    it(file, () => {
      const g = prepare(loadGraph(`${GRAPHS_ROOT}/${file}`));
      const axes = Object.fromEntries(g.inputs.map((i) => [i.name, shared.includes(i.name) ? null : 0] as const));
      expect(vmapWithReport(g, { size: 8, axes }).fallbacks).toEqual([]);
    });
  }

  it('reports the nodes that fall back, and they still compute each instance', () => {
    // AlphaGrad's segment sums scatter at per-seed indices: no single library call does that.
    const g = prepare(loadGraph(`${GRAPHS_ROOT}/optimizers/alphagrad.graph.json`));
    const axes = Object.fromEntries(g.inputs.map((i) => [i.name, 0] as const));
    expect(vmapWithReport(g, { size: 3, axes }).fallbacks).toEqual([{ node: 'alphagrad/seg_sumsq', op: 'scatter_add' }]);
  });
});

describe('vmap with a symbolic batch size', () => {
  const json = {
    graph: 'sym',
    inputs: { x: { shape: ['B', 3] }, w: { shape: [3, 2] }, key: { shape: [2], dtype: 'int32' } },
    nodes: [
      { id: 'h', op: 'matmul', in: ['x', 'w'] },
      { id: 'n', op: 'random_normal', in: ['key'], attrs: { shape: ['B', 2] } },
      { id: 'y', op: 'add', in: ['h', 'n'] },
      { id: 'm', op: 'mean', in: ['y'], attrs: { axes: [0] } },
      { id: 'c', op: 'reduce_count', in: ['y'] },
    ],
    outputs: { y: 'y', m: 'm', c: 'c' },
  };

  it('gives batched inputs the dim and runs for any size it is bound to', () => {
    const g = prepare(inlineGraph(json));
    const axes = { x: 0, key: 0, w: null } as const;
    const vg = vmap(g, { size: 'S', axes });
    expect(vg.inputs.map((i) => i.type.shape)).toEqual([['S', 'B', 3], [3, 2], ['S', 2]]);
    expect(Object.values(vg.outputs).map((r) => vg.nodes.find((n) => n.id === r)!.type!.shape)).toEqual([['S', 'B', 2], ['S', 2], ['S']]);
    for (const size of [1, 4]) {
      const instances = Array.from({ length: size }, (_, k) => ({
        x: tf.randomUniform([5, 3], -1, 1, 'float32', 3 + k),
        w: tf.randomUniform([3, 2], -1, 1, 'float32', 99),
        key: tf.tensor1d([k, 2 * k + 1], 'int32'),
      }));
      checkVmap(g, instances, {}, axes, { compiled: true, size: 'S' });
      tf.dispose(instances.flatMap((ins) => Object.values(ins)));
    }
  });

  it('refuses a fallback, which needs a static size, naming the node', () => {
    const g = prepare(
      inlineGraph({
        graph: 'scatter',
        inputs: { u: { shape: [4] }, i: { shape: [4], dtype: 'int32' }, l: { shape: [3] } },
        nodes: [{ id: 's', op: 'scatter_add', in: ['u', 'i', 'l'] }],
        outputs: { s: 's' },
      }),
    );
    const e = loomErr(() => vmap(g, { size: 'S', axes: { i: 0 } }));
    expect(e.info.node).toBe('s');
    expect(e.message).toMatch(/scatter_add.*static batch size/);
    expect(vmapWithReport(g, { size: 2, axes: { i: 0 } }).fallbacks).toEqual([{ node: 's', op: 'scatter_add' }]);
  });
});

describe('the vmap example (examples/vmap-seeds.ts)', () => {
  it('moves each seed\'s params by lr against the sign of its own gradient on the first Adam step', () => {
    const r = vmapExample();
    expect(r.fallbacks).toBe(0);
    const want = [
      [0.9, 2.1],
      [0.9, 2],
      [1.1, 1.9],
    ];
    r.params.forEach((p, k) => p.forEach((x, j) => expect(x).toBeCloseTo(want[k]![j]!, 5)));
  });
});

describe('vmap errors', () => {
  const g = () => prepare(inlineGraph({ graph: 'e', inputs: { x: { shape: [3] } }, nodes: [{ id: 'y', op: 'neg', in: ['x'] }], outputs: { y: 'y' } }));

  it('names an input that does not exist, with the ones that do', () => {
    const e = loomErr(() => vmap(g(), { size: 2, axes: { z: 0 } }));
    expect(e.message).toMatch(/no input "z"/);
    expect(e.info.expected).toBe('x');
  });

  it('refuses a size that is not a count or one dim name, and a dim the graph already uses', () => {
    expect(loomErr(() => vmap(g(), { size: 0, axes: { x: 0 } })).message).toMatch(/batch size/);
    expect(loomErr(() => vmap(g(), { size: '2*S', axes: { x: 0 } })).message).toMatch(/batch size/);
    const sym = prepare(inlineGraph({ graph: 's', inputs: { x: { shape: ['B'] } }, nodes: [{ id: 'y', op: 'neg', in: ['x'] }], outputs: { y: 'y' } }));
    expect(loomErr(() => vmap(sym, { size: 'B', axes: { x: 0 } })).message).toMatch(/already a dim/);
  });

  it('needs inlined graphs', () => {
    const called = inlineGraph({
      graph: 'c',
      inputs: { x: { shape: [3] } },
      nodes: [{ id: 'y', op: 'neg', in: ['x'] }, { id: 'g', op: 'grad', in: ['s'], attrs: { wrt: ['x'] } }, { id: 's', op: 'sum', in: ['y'] }],
      outputs: { y: 'y' },
    });
    expect(loomErr(() => vmap(called, { size: 2, axes: { x: 0 } })).info.hint).toMatch(/inline and autodiff/);
  });

  it('gather with batch_dims (made by vmap) has no gradient: differentiate first, then batch', () => {
    const gathered = inline.run(
      inlineGraph({
        graph: 'bd',
        inputs: { x: { shape: [2, 3] }, i: { shape: [2, 4], dtype: 'int32' } },
        nodes: [
          { id: 'y', op: 'gather', in: ['x', 'i'], attrs: { axis: 1, batch_dims: 1 } },
          { id: 's', op: 'sum', in: ['y'] },
          { id: 'g', op: 'grad', in: ['s'], attrs: { wrt: ['x'] } },
        ],
        outputs: { g: 'g.x' },
      }),
    );
    expect(loomErr(() => autodiff.run(gathered)).info.hint).toMatch(/then vmap/);
  });

  it('broadcasts outputs that no batched input reaches, and keeps shared inputs as they were', () => {
    const vg = vmap(g(), { size: 2, axes: {} });
    expect(vg.inputs[0]!.type.shape).toEqual([3]);
    const x = tf.tensor1d([1, 2, 3]);
    const y = interpret(vg, { x }, {}).y!;
    expect(y.arraySync()).toEqual([[-1, -2, -3], [-1, -2, -3]]);
    tf.dispose([x, y]);
  });
});

describe('vmap of K seeds on wasm, params per seed', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('the PPO loss and gradients compiled (stacks of weights in the own product) equal each seed alone', () => {
    const raw = loadGraph(`${GRAPHS_ROOT}/algorithms/ppo-cartpole.loss.graph.json`);
    const prepared = prepare(raw);
    // The params become inputs, as state tensors of a training program are, so that each seed has its own.
    const g: IRGraph = { ...prepared, inputs: [...prepared.inputs, ...prepared.params.map((p) => ({ name: p.name, type: p.type }))], params: [] };
    const shared = ['clip_coef', 'ent_coef', 'vf_coef', 'norm_adv', 'clip_vloss'];
    const axes = Object.fromEntries(g.inputs.map((i) => [i.name, shared.includes(i.name) ? null : 0] as const));
    const base = inputsFor(raw);
    const instances = Array.from({ length: K }, (_, k) => ({ ...instanceInputs(base, k), ...initParams(raw, 20 + k) }));
    checkVmap(g, shareUnbatched(instances, axes), {}, axes, { compiled: true });
    tf.dispose([...Object.values(base), ...instances.flatMap((ins) => Object.values(ins))]);
  });
});

describe('vmap of a scan: a scan of the vmapped body', () => {
  // One step: a carried state and key, a sliced input, a loop invariant, a param, a random draw and a stacked output.
  const step = {
    version: 1,
    graph: 'step',
    inputs: { h: { shape: [3] }, key: { shape: [2], dtype: 'int32' }, x: { shape: [3] }, scale: { shape: [] } },
    params: { w: { shape: [3, 3], init: { orthogonal: { gain: 1 } } } },
    nodes: [
      { id: 'keys', op: 'random_split', in: ['key'], attrs: { num: 2 } },
      { id: 'i0', op: 'const', attrs: { value: 0, dtype: 'int32' } },
      { id: 'i1', op: 'const', attrs: { value: 1, dtype: 'int32' } },
      { id: 'k0', op: 'gather', in: ['keys', 'i0'] },
      { id: 'k1', op: 'gather', in: ['keys', 'i1'] },
      { id: 'noise', op: 'random_normal', in: ['k1'], attrs: { shape: [3], std: 0.1 } },
      { id: 'row', op: 'expand_dims', in: ['h'], attrs: { axis: 0 } },
      { id: 'mm', op: 'matmul', in: ['row', 'w'] },
      { id: 'flat', op: 'squeeze', in: ['mm'], attrs: { axes: [0] } },
      { id: 'pre', op: 'add', in: ['flat', 'x'] },
      { id: 'act', op: 'tanh', in: ['pre'] },
      { id: 'h_next', op: 'add', in: ['act', 'noise'] },
      { id: 'y', op: 'mul', in: ['h_next', 'scale'] },
      { id: 'total', op: 'sum', in: ['y'] },
    ],
    outputs: { h: 'h_next', key: 'k0', y: 'y', total: 'total' },
  };
  // With `bindW`, the body's param is bound to an input of the caller, which may be batched (it then becomes a body input).
  const main = (reverse: boolean, bindW: boolean) => ({
    version: 1,
    graph: 'main',
    inputs: { h0: { shape: [3] }, key: { shape: [2], dtype: 'int32' }, xs: { shape: [4, 3] }, scale: { shape: [] }, ...(bindW ? { w: { shape: [3, 3] } } : {}) },
    nodes: [
      {
        id: 'loop',
        op: 'scan',
        graph: 'step.graph.json',
        in: { h: 'h0', key: 'key', x: 'xs', scale: 'scale' },
        ...(bindW ? { params: { w: 'w' } } : {}),
        attrs: { xs: ['x'], reverse },
      },
    ],
    outputs: { h: 'loop.h', key: 'loop.key', ys: 'loop.y', totals: 'loop.total' },
  });
  const load = (reverse: boolean, bindW = false) =>
    loadGraph('main.graph.json', { files: memoryFiles({ 'main.graph.json': main(reverse, bindW), 'step.graph.json': step }) });

  for (const [reverse, bindW] of [
    [false, false],
    [true, true],
  ] as const)
    it(`equals each instance alone for every subset of inputs batched (reverse ${reverse}, param ${bindW ? 'bound to an input' : 'hoisted'}), interpreted and compiled`, () => {
      const raw = load(reverse, bindW);
      const g = prepare(raw);
      const params = initParams(raw, 5);
      const names = g.inputs.map((i) => i.name);
      for (let mask = 1; mask < 1 << names.length; mask++) {
        const axes: VmapSpec['axes'] = Object.fromEntries(names.map((n, j) => [n, mask & (1 << j) ? 0 : null]));
        const value = (n: string, k: number): tf.Tensor => {
          const s = axes[n] === 0 ? k : 0;
          if (n === 'key') return tf.tensor1d([s, 3 + s], 'int32');
          if (n === 'scale') return tf.scalar(0.5 + s);
          return tf.randomUniform(n === 'xs' ? [4, 3] : n === 'w' ? [3, 3] : [3], -1, 1, 'float32', 40 + s + n.length);
        };
        const instances = Array.from({ length: K }, (_, k) => Object.fromEntries(names.map((n) => [n, value(n, k)])));
        checkVmap(g, instances, params, axes, { compiled: true, reference: raw });
        tf.dispose(instances.flatMap((ins) => Object.values(ins)));
      }
      expect(vmapWithReport(g, { size: K, axes: Object.fromEntries(names.map((n) => [n, 0])) }).fallbacks).toEqual([]);
      tf.dispose(Object.values(params));
    });

  it('runs with a symbolic batch size, and reports a fallback inside the body under the scan\'s id', () => {
    const g = prepare(load(false));
    const vg = vmap(g, { size: 'S', axes: { h0: 0, key: 0 } });
    expect(vg.nodes.find((n) => n.op === 'scan')!.outputTypes).toEqual({
      h: { dtype: 'float32', shape: ['S', 3] },
      key: { dtype: 'int32', shape: ['S', 2] },
      y: { dtype: 'float32', shape: [4, 'S', 3] },
      total: { dtype: 'float32', shape: [4, 'S'] },
    });
    const scatterStep = {
      version: 1,
      graph: 'sstep',
      inputs: { acc: { shape: [3] }, i: { shape: [2], dtype: 'int32' } },
      nodes: [
        { id: 'u', op: 'ones_like', in: ['i'] },
        { id: 'f', op: 'cast', in: ['u'], attrs: { dtype: 'float32' } },
        { id: 's', op: 'scatter_add', in: ['f', 'i', 'acc'] },
        { id: 'next', op: 'add', in: ['acc', 's'] },
      ],
      outputs: { acc: 'next' },
    };
    const sm = loadGraph('m.graph.json', {
      files: memoryFiles({
        'm.graph.json': { version: 1, graph: 'm', inputs: { a: { shape: [3] }, idx: { shape: [5, 2], dtype: 'int32' } }, nodes: [{ id: 'sc', op: 'scan', graph: 's.graph.json', in: { acc: 'a', i: 'idx' }, attrs: { xs: ['i'] } }], outputs: { a: 'sc.acc' } },
        's.graph.json': scatterStep,
      }),
    });
    expect(vmapWithReport(prepare(sm), { size: 2, axes: { idx: 0 } }).fallbacks).toEqual([{ node: 'sc/s', op: 'scatter_add' }]);
  });
});
