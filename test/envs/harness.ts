/** Runs env graph files with the reference interpreter and returns plain arrays. */
import * as tf from '@tensorflow/tfjs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadGraph } from '../../compiler/frontend/load.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { initParams, interpret } from '../../runtime/interpreter.ts';

await tf.setBackend('cpu');

export const ENV_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../graphs/envs');

const cache = new Map<string, IRGraph>();
export function graph(file: string): IRGraph {
  let g = cache.get(file);
  if (!g) cache.set(file, (g = loadGraph(join(ENV_DIR, file))));
  return g;
}

export interface Out {
  shape: number[];
  dtype: string;
  values: number[];
}

type In = { values: number[]; shape: number[]; dtype: 'float32' | 'int32' | 'bool' };

/** Evaluates one graph file; every tensor is released before returning. */
export function runGraph(file: string, inputs: Record<string, In>): Record<string, Out> {
  const g = graph(file);
  const ins: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) ins[k] = tf.tensor(v.values, v.shape, v.dtype);
  const params = initParams(g, 0);
  try {
    const outs = interpret(g, ins, params);
    const res: Record<string, Out> = {};
    for (const [k, t] of Object.entries(outs)) {
      res[k] = { shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) };
      t.dispose();
    }
    return res;
  } finally {
    tf.dispose([...Object.values(ins), ...Object.values(params)]);
  }
}

export const f32 = (values: number[], shape: number[]): In => ({ values, shape, dtype: 'float32' });
export const i32 = (values: number[], shape: number[]): In => ({ values, shape, dtype: 'int32' });
export const key = (a: number, b: number): In => i32([a, b], [2]);

/** Rows of a [N, K] result. */
export function rows(o: Out): number[][] {
  const [n, k] = o.shape as [number, number];
  return Array.from({ length: n }, (_, i) => o.values.slice(i * k, (i + 1) * k));
}

export interface StepResult {
  state: number[][];
  t: number[];
  obs: number[][];
  reward: number[];
  terminated: boolean[];
  truncated: boolean[];
  finalObs: number[][];
}

/** One step of `<env>.step.graph.json` on a batch of states. */
export function step(env: string, state: number[][], t: number[], action: number[] | number[][], k: In = key(0, 7)): StepResult {
  const n = state.length;
  const discrete = typeof action[0] === 'number';
  const act = discrete ? i32(action as number[], [n]) : f32((action as number[][]).flat(), [n, (action[0] as number[]).length]);
  const o = runGraph(`${env}.step.graph.json`, { state: f32(state.flat(), [n, state[0]!.length]), t: i32(t, [n]), action: act, key: k });
  return {
    state: rows(o.state!),
    t: o.t!.values,
    obs: rows(o.obs!),
    reward: o.reward!.values,
    terminated: o.terminated!.values.map((v) => v === 1),
    truncated: o.truncated!.values.map((v) => v === 1),
    finalObs: rows(o.final_obs!),
  };
}

export interface ResetResult {
  state: number[][];
  t: number[];
  obs: number[][];
}

export function reset(env: string, n: number, k: In): ResetResult {
  const o = runGraph(`${env}.reset.graph.json`, { key: k, like: i32(new Array<number>(n).fill(0), [n]) });
  return { state: rows(o.state!), t: o.t!.values, obs: rows(o.obs!) };
}

/** float32 values computed in float32 vs a float64 reference. */
export function expectClose(actual: number[], expected: number[], abs = 1e-5, rel = 1e-5, what = ''): void {
  expect(actual.length, what).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    const tol = abs + rel * Math.abs(e);
    if (!(Math.abs(a - e) <= tol)) throw new Error(`${what}[${i}]: got ${a}, expected ${e} (tolerance ${tol.toExponential(2)})`);
  });
}

/** Rounds to float32, like the graph's input tensors. */
export const r32 = (xs: number[]): number[] => xs.map(Math.fround);

/** The next float32 above / below a value. */
export function nextUp32(v: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setFloat32(0, v);
  const bits = b.getInt32(0);
  b.setInt32(0, v >= 0 ? bits + 1 : bits - 1);
  return b.getFloat32(0);
}
export const nextDown32 = (v: number): number => -nextUp32(-v);
