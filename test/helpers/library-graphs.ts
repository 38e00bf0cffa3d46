/** The graph library (every *.graph.json under graphs/) and deterministic inputs for its graphs. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { loadGraph } from '../../compiler/frontend/load.ts';
import { symbolsOf } from '../../compiler/dims.ts';
import type { TensorMap } from '../../runtime/interpreter.ts';

export const GRAPHS_ROOT = join(import.meta.dirname, '..', '..', 'graphs');

/**
 * Whole PPO iterations of the continuous-control programs: 8 envs x 256 closed-loop steps, then 10
 * epochs x 32 minibatches. The interpreter takes minutes over them, and on another target (webgpu's
 * transcendental functions) the policy's rounding differences feed back through 256 steps of the
 * dynamics, so one run on random inputs cannot be compared at a tight tolerance. Their rollout and
 * update bodies are in the library and checked one step at a time; ppo-acrobot's iteration covers the
 * same ops whole; test/programs/shipped.test.ts runs these iterations on real state with a stated
 * tolerance.
 */
export const LONG_CLOSED_LOOP = new Set(['programs/ppo-pendulum/iteration.graph.json', 'programs/ppo-mountaincar_continuous/iteration.graph.json']);

export function graphFiles(dir: string = GRAPHS_ROOT): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? graphFiles(p) : f.endsWith('.graph.json') ? [p] : [];
  });
}

/** Deterministic inputs: small positive floats (valid for logs and scales), index 0, false, and RNG keys. */
export function inputsFor(g: ReturnType<typeof loadGraph>): TensorMap {
  const out: TensorMap = {};
  let seed = 1;
  for (const i of g.inputs) {
    const shape = i.type.shape.map((d) => (typeof d === 'number' ? d : symbolsOf(d).reduce((a) => a * 3, 1))) as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    if (i.type.dtype === 'float32') {
      const v = Float32Array.from({ length: n }, (_, k) => 0.05 + 0.9 * (((k + 1) * 0.618034 * seed) % 1));
      out[i.name] = tf.tensor(v, shape, 'float32');
    } else if (i.type.dtype === 'int32') {
      out[i.name] = shape.length === 1 && shape[0] === 2 ? tf.tensor1d([seed, 7], 'int32') : tf.zeros(shape, 'int32');
    } else out[i.name] = tf.zeros(shape, 'bool');
    seed++;
  }
  return out;
}
