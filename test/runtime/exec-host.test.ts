/**
 * Host kernels in the compiled executor: on cpu and wasm, library ops with a registry `host`
 * kernel run on the backend's memory without engine dispatch when their tensors are small. Each
 * program matches the reference interpreter, matches itself with host kernels off (exactly for
 * integer and random outputs), keeps tensor and buffer counts flat, and falls back to the library
 * kernel above the size limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { getOp } from '../../compiler/ops/index.ts';
import { compileProgram, type ProgramOptions } from '../../runtime/exec.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { buffers, dispatched } from '../helpers/engine.ts';
import { mismatch } from '../helpers/mismatch.ts';
import { inlineGraph as load } from '../helpers/inline-graph.ts';

await tf.setBackend('cpu');

/** Fusion off: every node is a library op, so each takes the host path. */
const HOST: ProgramOptions = { log: () => {}, disabled: new Set(['fusion']) };
const LIBRARY: ProgramOptions = { ...HOST, hostMaxElements: 0 };

/** Counts calls of these ops' host kernels (wrapped before a program is planned) until restore(). */
function countHostCalls(ops: string[]): { counts: Record<string, number>; restore(): void } {
  const counts: Record<string, number> = {};
  const saved = ops.map((op) => {
    const def = getOp(op)!;
    const host = def.host!;
    counts[op] = 0;
    def.host = (...args) => {
      counts[op]!++;
      host(...args);
    };
    return () => (def.host = host);
  });
  return { counts, restore: () => saved.forEach((r) => r()) };
}

const uniform = (shape: number[], seed: number) => tf.randomUniform(shape, -2, 2, 'float32', seed);
const ints = (shape: number[], hi: number, seed: number) => tf.randomUniform(shape, 0, hi, 'int32', seed);

const policy = load({
  graph: 'host-policy',
  inputs: { x: { shape: ['B', 3] }, a: { dtype: 'int32', shape: ['B'] }, key: { dtype: 'int32', shape: [2] } },
  nodes: [
    { id: 'ls', op: 'log_softmax', in: ['x'] },
    { id: 'lp', op: 'categorical_log_prob', in: ['x', 'a'] },
    { id: 'en', op: 'categorical_entropy', in: ['x'] },
    { id: 'st', op: 'stack', in: ['lp', 'en'], attrs: { axis: 1 } },
    { id: 'col', op: 'gather', in: ['st', 'one'], attrs: { axis: 1 } },
    { id: 'one', op: 'const', attrs: { value: 1, dtype: 'int32' } },
    { id: 'm', op: 'mean', in: ['col'] },
    { id: 'sd', op: 'std', in: ['col'], attrs: { ddof: 1 } },
    { id: 'sample', op: 'random_categorical', in: ['key', 'x'] },
    { id: 'noise', op: 'random_uniform', in: ['key'], attrs: { shape: ['B', 2], min: -0.5, max: 0.5 } },
    { id: 'sq', op: 'squeeze', in: ['r'], attrs: { axes: [1] } },
    { id: 'r', op: 'reshape', in: ['lp'], attrs: { shape: ['B', 1] } },
  ],
  outputs: { ls: 'ls', st: 'st', m: 'm', sd: 'sd', sample: 'sample', noise: 'noise', sq: 'sq' },
});
const inputs = (b: number, seed: number): TensorMap => ({ x: uniform([b, 3], seed), a: ints([b], 3, seed + 1), key: tf.tensor1d([seed, 7 * seed + 1], 'int32') });
const EXACT = ['sample', 'noise'];

for (const backend of ['cpu', 'wasm']) {
  describe(`host kernels in compiled programs on ${backend}`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
    });
    afterAll(async () => {
      await tf.setBackend('cpu');
    });

    it('match the interpreter, and the library path exactly for random and integer outputs', () => {
      const host = compileProgram(policy, HOST);
      const lib = compileProgram(policy, LIBRARY);
      for (const [b, seed] of [
        [4, 1],
        [4, 2],
        [7, 3],
      ] as const) {
        const ins = inputs(b, seed);
        const got = host.run(ins, {});
        const ref = interpret(policy, ins, {});
        const viaLib = lib.run(ins, {});
        try {
          expect(mismatch(got, ref)).toBeLessThan(1e-5);
          for (const k of EXACT) expect(Array.from(got[k]!.dataSync()), k).toEqual(Array.from(viaLib[k]!.dataSync()));
          expect(got.sample!.dtype).toBe('int32');
        } finally {
          tf.dispose([...Object.values(ins), ...Object.values(got), ...Object.values(ref), ...Object.values(viaLib)]);
        }
      }
    });

    it('run every op through its host kernel, dispatch nothing through the engine, and keep tensor and buffer counts flat', () => {
      const ops = ['log_softmax', 'categorical_log_prob', 'categorical_entropy', 'stack', 'gather', 'mean', 'std', 'random_categorical', 'random_uniform', 'reshape', 'squeeze'];
      const calls = countHostCalls(ops);
      const ins = inputs(5, 4);
      try {
        // A limit of its own: this plan is built after the host kernels are wrapped.
        const prog = compileProgram(policy, { ...HOST, hostMaxElements: 1 << 20 });
        tf.dispose(Object.values(prog.run(ins, {})));
        const tensors = tf.memory().numTensors;
        const held = buffers();
        const names = dispatched(() => {
          for (let i = 0; i < 3; i++) tf.dispose(Object.values(prog.run(ins, {})));
        });
        expect(names).toEqual([]);
        expect(calls.counts).toEqual(Object.fromEntries(ops.map((op) => [op, 4])));
        expect(tf.memory().numTensors).toBe(tensors);
        expect(buffers()).toBe(held);
      } finally {
        calls.restore();
        tf.dispose(Object.values(ins));
      }
    });

    it('run the host kernels of ops that only move data (slice, concat, stack) at any size, unless host kernels are off', () => {
      const moves = load({
        graph: 'host-moves',
        inputs: { x: { shape: ['B', 3] } },
        nodes: [
          { id: 'tail', op: 'slice', in: ['x'], attrs: { begin: [0, 1], size: [-1, 2] } },
          { id: 'cat', op: 'concat', in: ['x', 'tail'], attrs: { axis: 1 } },
          { id: 'st', op: 'stack', in: ['tail', 'tail'], attrs: { axis: 0 } },
          { id: 'ls', op: 'log_softmax', in: ['cat'] },
        ],
        outputs: { cat: 'cat', st: 'st', ls: 'ls' },
      });
      const ops = ['slice', 'concat', 'stack', 'log_softmax'];
      for (const [limit, want] of [
        [4, { slice: 1, concat: 1, stack: 1, log_softmax: 0 }],
        [0, { slice: 0, concat: 0, stack: 0, log_softmax: 0 }],
      ] as const) {
        const calls = countHostCalls(ops);
        const ins = { x: uniform([6, 3], 8) };
        try {
          const prog = compileProgram(moves, { ...HOST, hostMaxElements: limit });
          const out = prog.run(ins, {});
          const ref = interpret(moves, ins, {});
          expect(mismatch(out, ref)).toBe(0);
          tf.dispose([...Object.values(out), ...Object.values(ref)]);
          expect(calls.counts, `limit ${limit}`).toEqual(want);
        } finally {
          calls.restore();
          tf.dispose(Object.values(ins));
        }
      }
    });

    it('leave ops above the size limit to the library kernels', () => {
      // 4 x 3 logits: log_softmax reads 12 and writes 12 elements, over a limit of 16; mean reads 4, writes 1.
      const calls = countHostCalls(['log_softmax', 'mean']);
      try {
        const prog = compileProgram(policy, { ...HOST, hostMaxElements: 16 });
        const ins = inputs(4, 5);
        const out = prog.run(ins, {});
        const ref = interpret(policy, ins, {});
        expect(mismatch(out, ref)).toBeLessThan(1e-5);
        tf.dispose([...Object.values(ins), ...Object.values(out), ...Object.values(ref)]);
        expect(calls.counts).toEqual({ log_softmax: 0, mean: 1 });
      } finally {
        calls.restore();
      }
    });
  });
}
