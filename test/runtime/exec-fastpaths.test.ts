/**
 * The compiled executor's fast paths, against the reference interpreter: generated kernels called
 * directly (kernelRunner), library ops recorded once and replayed on the backend (with their
 * fallbacks), and a lone transposed matmul run as a one-member generated kernel. Each runs on the
 * cpu and wasm backends, several times (record, then replay), with new values and new shapes,
 * and keeps tensor and backend-buffer counts flat.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../../compiler/ops/index.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { compileProgram, type Program, type ProgramOptions } from '../../runtime/exec.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { buffers, dispatched } from '../helpers/engine.ts';
import { mismatch } from '../helpers/mismatch.ts';
import { inlineGraph as load } from '../helpers/inline-graph.ts';

await tf.setBackend('cpu');

// Host kernels off: these tests cover the paths library ops take without them (test/runtime/exec-host.test.ts covers them).
const quiet: ProgramOptions = { log: () => {}, hostMaxElements: 0 };
/** Every node a library op: the replay path is taken for all of them. */
const NO_FUSION: ProgramOptions = { ...quiet, disabled: new Set(['fusion']) };
/** Identity-like nodes survive too (simplify and CSE would remove or merge them). */
const RAW: ProgramOptions = { ...quiet, disabled: new Set(['fusion', 'simplify', 'cse']) };

/** Runs the program and the interpreter on the same inputs; returns their mismatch, outputs freed. */
function against(prog: Program, g: IRGraph, inputs: TensorMap): number {
  const out = prog.run(inputs, {});
  const ref = interpret(g, inputs, {});
  const m = mismatch(out, ref);
  tf.dispose([...Object.values(out), ...Object.values(ref)]);
  return m;
}

/** Runs alternating input sets: every run matches the interpreter, and tensor and buffer counts stay flat. */
function expectFlatRepeats(prog: Program, g: IRGraph, sets: TensorMap[]): void {
  expect(against(prog, g, sets[0]!)).toBeLessThan(1e-5);
  const tensors = tf.memory().numTensors;
  const held = buffers();
  for (let i = 0; i < 4; i++) expect(against(prog, g, sets[i % sets.length]!)).toBeLessThan(1e-5);
  expect(tf.memory().numTensors).toBe(tensors);
  expect(buffers()).toBe(held);
}

const uniform = (shape: number[], seed: number, lo = -2, hi = 2) => tf.randomUniform(shape, lo, hi, 'float32', seed);
const ints = (shape: number[], hi: number, seed: number) => tf.randomUniform(shape, 0, hi, 'int32', seed);
const sameInts = (x: tf.Tensor, lo: number, hi: number) => Array.from(x.dataSync()).every((v) => Number.isInteger(v) && v >= lo && v < hi);

// ---------------------------------------------------------------------------- hoisted lone matmul

describe('a lone transposed matmul of constants (evaluated while planning)', () => {
  // First in the file: its one-member kernel must not have been loaded by an earlier plan. On
  // wasm, where lone matmuls run as kernels with the own product.
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });
  it('plans and matches the hand-computed product', () => {
    const a = [
      [1, 2, 0, -1, 3, 1],
      [0, 1, 2, 2, -1, 1],
      [3, 0, 1, 1, 1, -2],
      [1, 1, 1, 0, 2, 1],
    ];
    const b = [
      [1, 0, 2, 1, -1],
      [0, 1, 1, 3, 2],
      [2, -1, 0, 1, 1],
      [1, 1, 1, 1, 1],
    ];
    const g = load({
      graph: 'hoisted-lone-matmul',
      inputs: { idx: { dtype: 'int32', shape: [2] } },
      nodes: [
        { id: 'a', op: 'const', attrs: { value: a } },
        { id: 'b', op: 'const', attrs: { value: b } },
        // Consumed by an opaque op only, so no fusion group takes it in.
        { id: 'm', op: 'matmul', in: ['a', 'b'], attrs: { transpose_a: true } },
        { id: 'y', op: 'gather', in: ['m', 'idx'] },
      ],
      outputs: { y: 'y' },
    });
    // m = aᵀ b, [6, 5]; rows 5 and 0 of it.
    const m = a[0]!.map((_v, i) => b[0]!.map((_w, j) => a.reduce((s, row, k) => s + row[i]! * b[k]![j]!, 0)));
    const idx = tf.tensor1d([5, 0], 'int32');
    try {
      const prog = compileProgram(g, quiet);
      const out = prog.run({ idx }, {});
      expect(prog.kernels({ idx })).toHaveLength(1);
      expect(out.y!.arraySync()).toEqual([m[5], m[0]]);
      tf.dispose(Object.values(out));
    } finally {
      idx.dispose();
    }
  });
});

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`compiled executor fast paths on ${backend}`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
    });
    afterAll(async () => {
      await tf.setBackend('cpu');
    });

    // ------------------------------------------------------------------------ replay

    const policy = load({
      graph: 'replayed-library-ops',
      inputs: { x: { shape: ['B', 3] }, a: { dtype: 'int32', shape: ['B'] }, idx: { dtype: 'int32', shape: [5] } },
      nodes: [
        { id: 'ls', op: 'log_softmax', in: ['x'] },
        { id: 'lp', op: 'categorical_log_prob', in: ['x', 'a'] },
        { id: 'en', op: 'categorical_entropy', in: ['x'] },
        { id: 'st', op: 'stack', in: ['lp', 'en'], attrs: { axis: 1 } },
        // ls is both an output and an intermediate that g reads.
        { id: 'g', op: 'gather', in: ['ls', 'idx'] },
      ],
      outputs: { ls: 'ls', st: 'st', g: 'g' },
    });
    const policyInputs = (b: number, seed: number): TensorMap => ({ x: uniform([b, 3], seed), a: ints([b], 3, seed + 1), idx: ints([5], b, seed + 2) });

    for (const [label, opts] of [
      ['library ops only', NO_FUSION],
      ['fusion on', quiet],
    ] as const) {
      it(`records, then replays library ops like the interpreter (${label}): new values, new shapes, flat memory`, () => {
        const prog = compileProgram(policy, opts);
        const first = policyInputs(4, 10);
        const second = policyInputs(4, 20);
        const wide = policyInputs(6, 30);
        try {
          expect(sameInts(first.a!, 0, 3) && sameInts(first.idx!, 0, 4)).toBe(true);
          // First call records.
          expect(against(prog, policy, first)).toBeLessThan(1e-5);
          const tensors = tf.memory().numTensors;
          const held = buffers();
          // Later calls replay: no kernel goes through the engine's dispatcher.
          let out: TensorMap = {};
          expect(dispatched(() => (out = prog.run(first, {})))).toEqual([]);
          const ref = interpret(policy, first, {});
          expect(mismatch(out, ref)).toBeLessThan(1e-5);
          tf.dispose([...Object.values(out), ...Object.values(ref)]);
          for (let i = 0; i < 3; i++) {
            expect(against(prog, policy, second)).toBeLessThan(1e-5);
            expect(against(prog, policy, first)).toBeLessThan(1e-5);
            expect(tf.memory().numTensors).toBe(tensors);
          }
          expect(buffers()).toBe(held);
          // A new batch size is a new plan, recorded afresh, then replayed.
          const misses = prog.stats.misses;
          expect(against(prog, policy, wide)).toBeLessThan(1e-5);
          expect(prog.stats.misses).toBe(misses + 1);
          expect(against(prog, policy, wide)).toBeLessThan(1e-5);
          // Back to the first shape: its plan (and recording) is reused.
          expect(against(prog, policy, second)).toBeLessThan(1e-5);
          expect(prog.stats.misses).toBe(misses + 1);
          expect(tf.memory().numTensors).toBe(tensors);
          expect(buffers()).toBe(held);
        } finally {
          tf.dispose([...Object.values(first), ...Object.values(second), ...Object.values(wide)]);
        }
      });
    }

    it('keeps outputs that share an intermediate (or its buffer) readable after the call and after each other is freed', () => {
      const g = load({
        graph: 'replayed-aliases',
        inputs: { x: { shape: [2, 3] } },
        nodes: [
          { id: 'e', op: 'exp', in: ['x'] },
          // Views of e: on cpu they share its buffer.
          { id: 'r', op: 'reshape', in: ['e'], attrs: { shape: [3, 2] } },
          { id: 'c', op: 'cast', in: ['e'], attrs: { dtype: 'float32' } },
          { id: 'ls', op: 'log_softmax', in: ['e'] },
          { id: 's', op: 'sum', in: ['ls'], attrs: { axes: [1] } },
        ],
        outputs: { r: 'r', c: 'c', s: 's' },
      });
      const prog = compileProgram(g, RAW);
      const xs = [tf.tensor2d([[0, 1, 2], [-1, 0.5, 3]]), tf.tensor2d([[2, 2, 2], [0, -3, 1]])];
      try {
        tf.dispose(Object.values(prog.run({ x: xs[0]! }, {})));
        const tensors = tf.memory().numTensors;
        const held = buffers();
        for (let i = 0; i < 4; i++) {
          const x = xs[i % 2]!;
          const ex = Array.from(x.dataSync()).map((v) => Math.fround(Math.exp(v)));
          const out = prog.run({ x }, {});
          // Free one view before reading the others.
          out.c!.dispose();
          expect(out.r!.shape).toEqual([3, 2]);
          Array.from(out.r!.dataSync()).forEach((v, k) => expect(v).toBeCloseTo(ex[k]!, 4));
          const ref = interpret(g, { x }, {});
          expect(mismatch({ s: out.s! }, { s: ref.s! })).toBeLessThan(1e-5);
          out.r!.dispose();
          out.s!.dispose();
          tf.dispose(Object.values(ref));
          expect(Array.from(x.dataSync())).toEqual(Array.from(xs[i % 2]!.dataSync()));
          expect(tf.memory().numTensors).toBe(tensors);
        }
        expect(buffers()).toBe(held);
      } finally {
        tf.dispose(xs);
      }
    });

    // ------------------------------------------------------------------------ fallbacks

    it('keeps ops that read on the host or make their own tensors on the ordinary path, correct on every call', () => {
      const g = load({
        graph: 'host-readers',
        inputs: {
          key: { dtype: 'int32', shape: [2] },
          logits: { shape: ['B', 4] },
          a: { shape: [5, 'B'] },
          c: { shape: [5, 'B'] },
          init: { shape: ['B'] },
        },
        nodes: [
          { id: 'cat', op: 'random_categorical', in: ['key', 'logits'] },
          { id: 'u', op: 'random_uniform', in: ['key'], attrs: { shape: ['B', 2] } },
          { id: 'ret', op: 'reverse_linear_scan', in: ['a', 'c', 'init'] },
          { id: 'sd', op: 'std', in: ['logits'], attrs: { axes: [1] } },
          // A replayable op reading a fallback op's result.
          { id: 'lp', op: 'categorical_log_prob', in: ['logits', 'cat'] },
        ],
        outputs: { cat: 'cat', u: 'u', ret: 'ret', sd: 'sd', lp: 'lp' },
      });
      const inputs = (b: number, seed: number): TensorMap => ({
        key: tf.tensor1d([seed, 17 * seed + 3], 'int32'),
        logits: uniform([b, 4], seed),
        a: uniform([5, b], seed + 1),
        c: uniform([5, b], seed + 2, 0, 1),
        init: uniform([b], seed + 3),
      });
      for (const opts of [NO_FUSION, quiet]) {
        const prog = compileProgram(g, opts);
        const sets = [inputs(3, 1), inputs(3, 2), inputs(3, 3)];
        try {
          expect(against(prog, g, sets[0]!)).toBeLessThan(1e-5);
          const tensors = tf.memory().numTensors;
          const held = buffers();
          const samples = new Set<string>();
          for (let i = 0; i < 6; i++) {
            const s = sets[i % 3]!;
            // The sampled actions change with the key: a frozen recording would repeat them.
            const out = prog.run(s, {});
            samples.add(Array.from(out.u!.dataSync()).join(','));
            const ref = interpret(g, s, {});
            expect(Array.from(out.cat!.dataSync())).toEqual(Array.from(ref.cat!.dataSync()));
            expect(mismatch(out, ref)).toBeLessThan(1e-5);
            tf.dispose([...Object.values(out), ...Object.values(ref)]);
            expect(tf.memory().numTensors).toBe(tensors);
          }
          expect(samples.size).toBe(3);
          expect(buffers()).toBe(held);
          // std really runs through tfjs's ops (Sqrt), unless fused; the categorical sample is a host loop.
          const names = dispatched(() => tf.dispose(Object.values(prog.run(sets[1]!, {}))));
          if (opts === NO_FUSION) expect(names).toContain('Sqrt');
          // A new batch size: a new plan, still correct.
          const wide = inputs(5, 9);
          expect(against(prog, g, wide)).toBeLessThan(1e-5);
          expect(against(prog, g, wide)).toBeLessThan(1e-5);
          tf.dispose(Object.values(wide));
        } finally {
          tf.dispose(sets.flatMap((s) => Object.values(s)));
        }
      }
    });

    it('runs identity-like ops (same-shape reshape, squeeze of nothing, same-dtype cast, identity, stop_gradient) correctly and frees nothing it borrowed', () => {
      const g = load({
        graph: 'identity-like',
        inputs: { x: { shape: [2, 3] }, k: { dtype: 'int32', shape: [4] } },
        nodes: [
          { id: 'r', op: 'reshape', in: ['x'], attrs: { shape: [2, 3] } },
          { id: 'q', op: 'squeeze', in: ['x'], attrs: { axes: [] } },
          { id: 'c', op: 'cast', in: ['x'], attrs: { dtype: 'float32' } },
          { id: 'i', op: 'identity', in: ['x'] },
          { id: 'sg', op: 'stop_gradient', in: ['x'] },
          { id: 'ki', op: 'cast', in: ['k'], attrs: { dtype: 'int32' } },
          { id: 'y', op: 'neg', in: ['r'] },
        ],
        outputs: { r: 'r', q: 'q', c: 'c', i: 'i', sg: 'sg', ki: 'ki', y: 'y' },
      });
      // Every node survives compilation (nothing simplified away or merged).
      const prog = compileProgram(g, RAW);
      expect(prog.graph.nodes.map((n) => n.op).sort()).toEqual(['cast', 'cast', 'identity', 'neg', 'reshape', 'squeeze', 'stop_gradient']);
      const sets = [
        { x: tf.tensor2d([[1, 2, 3], [4, 5, 6]]), k: tf.tensor1d([1, -2, 3, 0], 'int32') },
        { x: tf.tensor2d([[-1, 0, 7], [0.5, 9, -3]]), k: tf.tensor1d([8, 8, -1, 5], 'int32') },
      ];
      try {
        tf.dispose(Object.values(prog.run(sets[0]!, {})));
        const tensors = tf.memory().numTensors;
        const held = buffers();
        for (let i = 0; i < 5; i++) {
          const s = sets[i % 2]!;
          const xv = Array.from(s.x.dataSync());
          const kv = Array.from(s.k.dataSync());
          const out = prog.run(s, {});
          // Freeing outputs one by one leaves the others (and the inputs) intact.
          for (const name of ['r', 'q', 'c', 'i', 'sg']) {
            expect(out[name]!.shape).toEqual([2, 3]);
            expect(Array.from(out[name]!.dataSync()), name).toEqual(xv);
            out[name]!.dispose();
          }
          expect(out.ki!.dtype).toBe('int32');
          expect(Array.from(out.ki!.dataSync())).toEqual(kv);
          expect(Array.from(out.y!.dataSync())).toEqual(xv.map((v) => -v));
          tf.dispose([out.ki!, out.y!]);
          expect(Array.from(s.x.dataSync())).toEqual(xv);
          expect(Array.from(s.k.dataSync())).toEqual(kv);
          expect(tf.memory().numTensors).toBe(tensors);
        }
        expect(buffers()).toBe(held);
      } finally {
        tf.dispose(sets.flatMap((s) => [s.x, s.k]));
      }
    });

    it('replays an op correctly when its first call got the same tensor for two different inputs', () => {
      const g = load({
        graph: 'shared-first-input',
        inputs: { x: { shape: [3] }, y: { shape: [3] } },
        nodes: [
          { id: 's', op: 'stack', in: ['x', 'y'] },
          { id: 'd', op: 'sub', in: ['x', 'y'] },
        ],
        outputs: { s: 's', d: 'd' },
      });
      const prog = compileProgram(g, NO_FUSION);
      // E.g. optimizer moments both started from one zeros tensor.
      const z = tf.tensor1d([1, 2, 3]);
      const x = tf.tensor1d([1, 1, 1]);
      const y = tf.tensor1d([5, 6, 7]);
      try {
        expect(against(prog, g, { x: z, y: z })).toBe(0);
        const out = prog.run({ x, y }, {});
        expect(out.s!.arraySync()).toEqual([
          [1, 1, 1],
          [5, 6, 7],
        ]);
        expect(Array.from(out.d!.dataSync())).toEqual([-4, -5, -6]);
        tf.dispose(Object.values(out));
      } finally {
        tf.dispose([z, x, y]);
      }
    });

    // ------------------------------------------------------------------------ generated kernels

    it('calls fused kernels directly; their outputs are ordinary tracked tensors', () => {
      const g = load({
        graph: 'fused-direct',
        inputs: { x: { shape: ['B', 3] }, w: { shape: [3] } },
        nodes: [
          { id: 'm', op: 'mul', in: ['x', 'w'] },
          { id: 'p', op: 'add', in: ['m', 1] },
          { id: 't', op: 'tanh', in: ['p'] },
          { id: 's', op: 'sum', in: ['t'], attrs: { axes: [1] } },
        ],
        outputs: { t: 't', s: 's' },
      });
      const prog = compileProgram(g, quiet);
      expect(prog.graph.nodes.some((n) => n.op === 'fused')).toBe(true);
      const sets = [
        { x: uniform([4, 3], 1), w: uniform([3], 2) },
        { x: uniform([4, 3], 3), w: uniform([3], 4) },
      ];
      try {
        expect(against(prog, g, sets[0]!)).toBeLessThan(1e-5);
        const tensors = tf.memory().numTensors;
        const held = buffers();
        for (let i = 0; i < 4; i++) {
          let out: TensorMap = {};
          expect(dispatched(() => (out = prog.run(sets[i % 2]!, {})))).toEqual([]);
          expect(out.t).toBeInstanceOf(tf.Tensor);
          expect(tf.memory().numTensors).toBe(tensors + 2);
          // Usable by tfjs ops like any tensor.
          const again = tf.sum(out.t!, 1);
          expect(mismatch({ s: again }, { s: out.s! })).toBeLessThan(1e-5);
          const ref = interpret(g, sets[i % 2]!, {});
          expect(mismatch(out, ref)).toBeLessThan(1e-5);
          tf.dispose([again, ...Object.values(out), ...Object.values(ref)]);
        }
        // Made inside a tidy scope, they are freed by it like any op's result.
        tf.tidy(() => {
          prog.run(sets[0]!, {});
        });
        expect(tf.memory().numTensors).toBe(tensors);
        expect(buffers()).toBe(held);
      } finally {
        tf.dispose(sets.flatMap((s) => [s.x, s.w]));
      }
    });

    // ------------------------------------------------------------------------ plan buffers

    // Intermediates that only generated and host kernels touch are plan buffers, overwritten on
    // every run; outputs stay fresh tensors. A matmul's right operand may be one only where the
    // kernels own their product: the library's wasm product caches packed right operands by
    // tensor id, so rewriting one in place would give stale products.
    const buffered = load({
      graph: 'plan-buffers',
      inputs: { x: { shape: [6, 3] }, y: { shape: [6, 4] }, q: { shape: [2, 6] }, w: { shape: [3, 4] }, w2: { shape: [4, 2] } },
      nodes: [
        { id: 'h', op: 'matmul', in: ['x', 'w'] },
        { id: 't', op: 'tanh', in: ['h'] },
        // t feeds the next product as its left operand: a plan buffer with the own product.
        { id: 'z', op: 'matmul', in: ['t', 'w2'] },
        { id: 'v', op: 'tanh', in: ['z'] },
        // e is this product's right operand: a plan buffer only with the own product.
        { id: 'e', op: 'softmax', in: ['y'] },
        { id: 'p', op: 'matmul', in: ['q', 'e'] },
        { id: 'gw', op: 'tanh', in: ['p'] },
        { id: 's', op: 'sum', in: ['v'], attrs: { axes: [0] } },
        { id: 'u', op: 'exp', in: ['s'] },
      ],
      outputs: { gw: 'gw', u: 'u' },
    });
    const bufferedInputs = (seed: number): TensorMap => ({
      x: uniform([6, 3], seed),
      y: uniform([6, 4], seed + 1),
      q: uniform([2, 6], seed + 2),
      w: uniform([3, 4], seed + 3),
      w2: uniform([4, 2], seed + 4),
    });

    for (const wasmProduct of [true, false])
    it(`keeps outputs of earlier runs intact, matches the interpreter on every run, and allocates nothing per run (wasmProduct ${wasmProduct})`, () => {
      // Host kernels on: buffers are limited to the same small sizes.
      const prog = compileProgram(buffered, { log: () => {}, wasmProduct });
      const fresh = compileProgram(buffered, { log: () => {}, reuseBuffers: false, wasmProduct });
      const sets = [1, 2, 3].map((k) => bufferedInputs(10 * k));
      try {
        const first = prog.run(sets[0]!, {});
        // The library's matmul result is its own tensor, so t is a buffer only with the own product.
        expect(prog.buffers(sets[0]!)).toBe(backend === 'wasm' && wasmProduct ? 2 : 0);
        expect(fresh.buffers(sets[0]!)).toBe(0);
        const firstValues = Object.fromEntries(Object.entries(first).map(([k, v]) => [k, Array.from(v.dataSync())]));
        const tensors = tf.memory().numTensors;
        const held = buffers();
        for (let i = 0; i < 6; i++) {
          const set = sets[i % 3]!;
          const out = prog.run(set, {});
          const ref = interpret(buffered, set, {});
          const plain = fresh.run(set, {});
          expect(mismatch(out, ref)).toBeLessThan(1e-5);
          for (const k of Object.keys(out)) expect(Array.from(out[k]!.dataSync()), k).toEqual(Array.from(plain[k]!.dataSync()));
          tf.dispose([...Object.values(out), ...Object.values(ref), ...Object.values(plain)]);
        }
        expect(tf.memory().numTensors).toBe(tensors);
        expect(buffers()).toBe(held);
        for (const [k, v] of Object.entries(first)) expect(Array.from(v.dataSync()), k).toEqual(firstValues[k]);
        tf.dispose(Object.values(first));
      } finally {
        tf.dispose(sets.flatMap((x) => Object.values(x)));
      }
    });

    // ------------------------------------------------------------------------ matmul prologue

    // Fused matmul kernels call the backend's product directly (on wasm, the module's export),
    // at the shapes of an RL policy: one row, a 4-env rollout, a minibatch.
    for (const [as, bs] of [
      [[1, 3], [3, 4]],
      [[4, 64], [64, 4]],
      [[128, 5], [5, 4]],
    ] as const) {
      it(`runs matmul + bias + tanh as one kernel like the interpreter: [${as}] x [${bs}]`, () => {
        const g = load({
          graph: 'matmul-epilogue',
          inputs: { a: { shape: [...as] }, b: { shape: [...bs] }, c: { shape: [4] } },
          nodes: [
            { id: 'm', op: 'matmul', in: ['a', 'b'] },
            { id: 'z', op: 'add', in: ['m', 'c'] },
            { id: 'y', op: 'tanh', in: ['z'] },
          ],
          outputs: { y: 'y' },
        });
        const prog = compileProgram(g, quiet);
        const sets = [0, 1].map((k) => ({ a: uniform([...as], 10 * k + 1), b: uniform([...bs], 10 * k + 2), c: uniform([4], 10 * k + 3) }));
        try {
          expect(prog.graph.nodes.map((n) => n.op)).toEqual(['fused']);
          expectFlatRepeats(prog, g, sets);
        } finally {
          tf.dispose(sets.flatMap((x) => Object.values(x)));
        }
      });
    }

    // ------------------------------------------------------------------------ lone transposed matmul

    for (const [ta, tb, as, bs] of [
      [false, false, [3, 4], [4, 2]],
      [true, false, [4, 3], [4, 2]],
      [false, true, [3, 4], [2, 4]],
      [true, true, [4, 3], [2, 4]],
    ] as const) {
      // A kernel only where the kernels own their product (wasm); elsewhere the library op.
      const asKernel = backend === 'wasm';
      it(`runs a lone matmul (transpose_a ${ta}, transpose_b ${tb}) ${asKernel ? 'as one generated kernel' : 'as the library op'}, with and without fusion`, () => {
        const g = load({
          graph: 'lone-matmul',
          inputs: { a: { shape: [...as] }, b: { shape: [...bs] } },
          nodes: [{ id: 'm', op: 'matmul', in: ['a', 'b'], attrs: { transpose_a: ta, transpose_b: tb } }],
          outputs: { m: 'm' },
        });
        for (const opts of [quiet, NO_FUSION]) {
          const prog = compileProgram(g, opts);
          const sets = [0, 1].map((k) => ({ a: uniform([...as], 10 * k + 1), b: uniform([...bs], 10 * k + 2) }));
          try {
            expect(prog.graph.nodes.map((n) => n.op)).toEqual(['matmul']);
            expect(prog.kernels(sets[0]!)).toHaveLength(asKernel ? 1 : 0);
            expectFlatRepeats(prog, g, sets);
            // Hand-computed for one case: op(a) op(b) from the raw values.
            const out = prog.run(sets[1]!, {});
            const A = sets[1]!.a.arraySync() as number[][];
            const B = sets[1]!.b.arraySync() as number[][];
            const at = (i: number, k: number) => (ta ? A[k]![i]! : A[i]![k]!);
            const bt = (k: number, j: number) => (tb ? B[j]![k]! : B[k]![j]!);
            const K = ta ? as[0] : as[1];
            const got = out.m!.arraySync() as number[][];
            expect(out.m!.shape).toEqual([3, 2]);
            for (let i = 0; i < 3; i++)
              for (let j = 0; j < 2; j++) {
                let s = 0;
                for (let k = 0; k < K; k++) s += at(i, k) * bt(k, j);
                expect(got[i]![j]!).toBeCloseTo(s, 4);
              }
            tf.dispose(Object.values(out));
          } finally {
            tf.dispose(sets.flatMap((s) => [s.a, s.b]));
          }
        }
      });
    }

    it('computes the weight gradient of a matmul (a lone transposed matmul) like the interpreter, fusion on', () => {
      const g = load({
        graph: 'matmul-weight-grad',
        inputs: { x: { shape: ['B', 3] }, w: { shape: [3, 2] }, t: { shape: ['B', 2] } },
        nodes: [
          { id: 'h', op: 'matmul', in: ['x', 'w'] },
          { id: 'p', op: 'mul', in: ['h', 't'] },
          { id: 'l', op: 'sum', in: ['p'] },
          { id: 'g', op: 'grad', in: ['l'], attrs: { wrt: ['w'] } },
        ],
        // h: the forward product, also an intermediate of the gradient's graph.
        outputs: { dw: 'g.w', h: 'h' },
      });
      for (const opts of [quiet, NO_FUSION]) {
        const prog = compileProgram(g, opts);
        // xᵀ · dy stays outside any fusion group.
        expect(prog.graph.nodes.some((n) => n.op === 'matmul' && n.attrs.transpose_a === true)).toBe(true);
        const sets = [0, 1].map((k) => ({ x: uniform([5, 3], k + 1), w: uniform([3, 2], k + 2), t: uniform([5, 2], k + 3) }));
        const wide = { x: uniform([7, 3], 5), w: uniform([3, 2], 6), t: uniform([7, 2], 7) };
        try {
          expectFlatRepeats(prog, g, sets);
          // dw = xᵀ t, by hand.
          const out = prog.run(wide, {});
          const X = wide.x.arraySync() as number[][];
          const T = wide.t.arraySync() as number[][];
          const dw = out.dw!.arraySync() as number[][];
          for (let i = 0; i < 3; i++)
            for (let j = 0; j < 2; j++)
              expect(dw[i]![j]!).toBeCloseTo(
                X.reduce((s, row, b) => s + row[i]! * T[b]![j]!, 0),
                4,
              );
          tf.dispose(Object.values(out));
          expect(against(prog, g, wide)).toBeLessThan(1e-5);
        } finally {
          tf.dispose([...sets.flatMap((s) => Object.values(s)), ...Object.values(wide)]);
        }
      }
    });
  });
}
