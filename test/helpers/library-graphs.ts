/** The graph library (every *.graph.json under graphs/) and deterministic inputs for its graphs. */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { loadGraph } from '../../compiler/frontend/load.ts';
import { symbolsOf } from '../../compiler/dims.ts';
import type { TensorMap } from '../../runtime/interpreter.ts';

export const GRAPHS_ROOT = join(import.meta.dirname, '..', '..', 'graphs');

/**
 * Whole iterations and evaluations of the programs on Acrobot, Pendulum and MountainCarContinuous:
 * hundreds of closed-loop env steps (8 envs x 256 on the continuous ones, then 10 epochs x 32
 * minibatches; group programs step every branch; evaluations run 10 episodes to the time limit). The
 * interpreter takes a minute or more over each, and on another executor or target (the compiled
 * product and kernels, webgpu's transcendental functions) rounding differences feed back through the
 * chaotic dynamics, so one run on random inputs cannot be compared at a tight tolerance. Their stage
 * bodies (rollout, group, branch, update and eval steps) are in the library and checked one step at a
 * time; ppo-acrobot's iteration and ppo-pendulum's evaluation are kept whole, and the CartPole programs
 * cover every algorithm's iteration; test/programs/shipped.test.ts runs every iteration on real state
 * with a stated tolerance.
 */
const CLOSED_LOOP = /^programs\/[a-z-]+-(acrobot|pendulum|mountaincar_continuous)\/(iteration|evaluate)\.graph\.json$/;
const KEPT_WHOLE = new Set(['programs/ppo-acrobot/iteration.graph.json', 'programs/ppo-pendulum/evaluate.graph.json']);

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

/** The library graphs (paths under graphs/) that the per-graph checks leave out: see CLOSED_LOOP. */
export const LONG_CLOSED_LOOP: ReadonlySet<string> = new Set(
  graphFiles()
    .map((f) => relative(GRAPHS_ROOT, f).split('\\').join('/'))
    .filter((name) => CLOSED_LOOP.test(name) && !KEPT_WHOLE.has(name)),
);
