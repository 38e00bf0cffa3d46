import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { compileGraph } from '../../compiler/compile.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';

await tf.setBackend('cpu');
const startTensors = tf.memory().numTensors;
afterAll(() => expect(tf.memory().numTensors).toBe(startTensors));

// Every algorithm-variant graph goes through all passes; with fusion off (fused kernels need the compiled-program
// executor) the optimised program runs on the reference interpreter and must compute what the source graph computes.
const NO_FUSION = { disabled: new Set(['fusion']) };
const cases: [string, () => TensorMap][] = [
  ['graphs/algorithms/amppo/update.graph.json', () => ({ A: tf.tensor1d([0.3, -1.2, 0.8, 2.5, -0.1]), alpha_ema: tf.scalar(3), s_ema: tf.scalar(0.2) })],
  ['graphs/algorithms/amppo/modulate.graph.json', () => ({ A: tf.tensor1d([0.3, -1.2, 0.8]), alpha_ema: tf.scalar(30) })],
  ['graphs/algorithms/grpo/advantage.graph.json', () => ({ rewards: tf.tensor2d([[0.9, 0.1, 0.5, 0.3], [1, 1, 1, 1]]) })],
  ['graphs/algorithms/grpo/loss.graph.json', () => ({ logp: tf.tensor1d([-1, -0.5]), logp_old: tf.tensor1d([-1.3, -0.2]), adv: tf.tensor1d([1, -0.5]), logp_ref: tf.tensor1d([-0.9, -0.6]) })],
  ['graphs/algorithms/kl.graph.json', () => ({ logp_theta: tf.tensor1d([-0.2, -1]), logp_ref: tf.tensor1d([-0.9, -1]) })],
  ['graphs/algorithms/hybrid-grpo/advantage.graph.json', () => ({ R: tf.tensor2d([[1, 0.5, -0.2, 0]]), V_s: tf.tensor1d([0.3]), V_next: tf.tensor2d([[0.4, 0.2, 0.1, 0]]), done: tf.tensor2d([[0, 1, 0, 0]]) })],
  ['graphs/algorithms/hybrid-grpo/reward-norm.graph.json', () => ({ R: tf.tensor2d([[1, 2], [3, 4]]), mu: tf.scalar(0.5), m2: tf.scalar(2) })],
  ['graphs/optimizers/alphagrad.graph.json', () => ({ param: tf.tensor1d([1, 2, 3]), grad: tf.tensor1d([0.1, -0.2, 0.3]), buf: tf.tensor1d([0.5, 0.5, 0.5]), segment: tf.tensor1d([0, 0, 1], 'int32'), step: tf.scalar(2, 'int32'), lr: tf.scalar(0.01) })],
];

describe('algorithm graphs compile', () => {
  for (const [file, inputs] of cases)
    it(file, () => {
      const g = loadGraph(resolve(file));
      expect(compileGraph(g).graph.nodes.length).toBeGreaterThan(0);
      const c = compileGraph(g, NO_FUSION).graph;
      const x = inputs();
      const a = interpret(g, x, {});
      const b = interpret(c, x, {});
      expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
      for (const k of Object.keys(a)) {
        expect(b[k]!.shape, k).toEqual(a[k]!.shape);
        const av = Array.from(a[k]!.dataSync());
        Array.from(b[k]!.dataSync()).forEach((v, i) => expect(Math.abs(v - av[i]!), `${k}[${i}]`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(av[i]!))));
      }
      tf.dispose([...Object.values(x), ...Object.values(a), ...Object.values(b)]);
    });
});
