import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { DEFAULT_MOE_CONFIG } from '../../compiler/cost/moe-graph.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';

await tf.setBackend('cpu');

describe('synthetic task: predict the scaled mean of the first feature section', () => {
  it('the SGD training graph drives the loss well below the constant-predictor level in 50 steps', () => {
    const g = loadGraph('graphs/moe/sectional-train.graph.json');
    const { L, d0, E } = DEFAULT_MOE_CONFIG;
    const s = d0 / E;
    let params: TensorMap = initParams(g, 1);
    const losses: number[] = [];
    for (let step = 0; step < 50; step++) {
      const x = tf.randomNormal([16, L, d0], 0, 1, 'float32', 100 + step);
      // Unit-variance target: sqrt(L*s) * mean(x[:, :, 0:s]); a constant predictor scores ~1.
      const target = tf.mul(tf.mean(tf.slice(x, [0, 0, 0], [-1, -1, s]), [1, 2]), Math.sqrt(L * s));
      const out = interpret(g, { x, target, lr: tf.scalar(0.05) }, params);
      losses.push(out.loss!.dataSync()[0]!);
      for (const t of Object.values(params)) t.dispose();
      params = Object.fromEntries(g.params.map((p) => [p.name, out[`new_${p.name}`]!]));
      x.dispose();
      target.dispose();
      out.loss!.dispose();
    }
    const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(tail).toBeLessThan(0.3 * head);
    expect(tail).toBeLessThan(0.5);
  });
});
