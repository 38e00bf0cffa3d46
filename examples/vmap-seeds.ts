/**
 * vmap: one Adam step for K = 3 seeds in one program. Each seed has its own params, gradients,
 * moments and step count (batched, axis 0); the hyperparameters are shared (null).
 *
 *   node bin/run-ts.js examples/vmap-seeds.ts
 *
 * (vmap is a compiler pass, used from a checkout: it is not part of the package's public API.)
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { loadGraph } from '../compiler/frontend/load.ts';
import { vmapGraph } from '../compiler/compile.ts';
import { compileProgram } from '../runtime/exec.ts';

export function main(): { params: number[][]; fallbacks: number; shapes: string[] } {
  const adam = loadGraph(join(import.meta.dirname, '..', 'graphs', 'optimizers', 'adam.graph.json'));
  const { graph, fallbacks } = vmapGraph(adam, {
    size: 3,
    axes: { params: 0, grads: 0, m: 0, v: 0, step: 0, lr: null, beta1: null, beta2: null, eps: null },
  });
  const out = compileProgram(graph, { log: () => {} }).run(
    {
      params: tf.tensor2d([[1, 2], [1, 2], [1, 2]]), // 3 seeds x P = 2
      grads: tf.tensor2d([[0.5, -1], [2, 0], [-3, 1]]),
      m: tf.zeros([3, 2]),
      v: tf.zeros([3, 2]),
      step: tf.tensor1d([0, 0, 0], 'int32'),
      lr: tf.scalar(0.1),
      beta1: tf.scalar(0.9),
      beta2: tf.scalar(0.999),
      eps: tf.scalar(1e-8),
    },
    {},
  );
  return {
    params: out.params!.arraySync() as number[][],
    fallbacks: fallbacks.length,
    shapes: graph.inputs.map((i) => `${i.name}: [${i.type.shape.join(', ')}]`),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await tf.setBackend('cpu');
  const r = main();
  console.log(r.shapes.join('\n'));
  // The first Adam step moves each param by lr against the sign of its gradient (0 where it is 0).
  console.log('params after one step, per seed:', JSON.stringify(r.params.map((p) => p.map((x) => Number(x.toFixed(4))))));
  console.log('nodes that fell back to one op per seed:', r.fallbacks);
}
