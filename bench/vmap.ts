/**
 * vmap benchmark: PPO's CartPole loss and gradients (graphs/algorithms/ppo-cartpole.loss.graph.json,
 * minibatch 128) compiled for one seed, against the same graph vmapped over K seeds (every input
 * and param per seed, the coefficients shared), measured side by side in one process on wasm.
 * Prints the time per call of each and the throughput per seed of the batched program relative
 * to one seed alone: K seeds in one program pay one dispatch per op instead of K.
 *
 * Usage: npm run bench:vmap [-- --k 8 --batch 128 --reps 9 --host 65536]
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { loadGraph } from '../compiler/frontend/load.ts';
import type { IRGraph } from '../compiler/ir.ts';
import { autodiff } from '../compiler/passes/autodiff.ts';
import { inline } from '../compiler/passes/inline.ts';
import { vmapWithReport } from '../compiler/passes/vmap.ts';
import { initBackend } from '../runtime/backend.ts';
import { compileProgram, HOST_MAX_ELEMENTS } from '../runtime/exec.ts';
import { initParams, type TensorMap } from '../runtime/interpreter.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const K = opt('k', 8);
const B = opt('batch', 128);
const REPS = Math.max(5, opt('reps', 9));
const CALLS = opt('calls', 20);
/** Host kernels up to this many elements (the executor's default; K seeds make tensors K times larger). */
const HOST = opt('host', HOST_MAX_ELEMENTS);
const SHARED = ['clip_coef', 'ent_coef', 'vf_coef', 'norm_adv', 'clip_vloss'];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const out = (s = '') => process.stdout.write(s + '\n');

/** The params as inputs, so that each seed has its own (as state tensors of a training program). */
function paramsAsInputs(g: IRGraph): IRGraph {
  return { ...g, inputs: [...g.inputs, ...g.params.map((p) => ({ name: p.name, type: p.type, source: p.source }))], params: [] };
}

function seedInputs(g: IRGraph, params: TensorMap, seed: number): TensorMap {
  const ins: TensorMap = { ...params };
  ins.obs = tf.randomNormal([B, 4], 0, 1, 'float32', seed);
  ins.actions = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([B], 0, 1, 'float32', seed + 1), 0.5), 'int32'));
  for (const n of ['logp_old', 'advantages', 'returns', 'values_old']) ins[n] = tf.randomNormal([B], n === 'logp_old' ? -0.7 : 0, 0.3, 'float32', seed + n.length);
  const coef: Record<string, number> = { clip_coef: 0.2, ent_coef: 0.01, vf_coef: 0.5, norm_adv: 1, clip_vloss: 1 };
  for (const n of SHARED) ins[n] = tf.scalar(coef[n]!);
  for (const i of g.inputs) if (!ins[i.name]) throw new Error(`bench: no value for input ${i.name}`);
  return ins;
}

async function main(): Promise<void> {
  await initBackend('wasm', () => {});
  const raw = loadGraph(join(import.meta.dirname, '..', 'graphs', 'algorithms', 'ppo-cartpole.loss.graph.json'));
  const g = paramsAsInputs(autodiff.run(inline.run(raw)));
  const { graph: vg, fallbacks } = vmapWithReport(g, { size: K, axes: Object.fromEntries(g.inputs.map((i) => [i.name, SHARED.includes(i.name) ? null : 0])) });
  const perSeed = Array.from({ length: K }, (_, k) => seedInputs(g, initParams(raw, k), 10 * k + 1));
  const batched: TensorMap = {};
  for (const i of g.inputs) batched[i.name] = SHARED.includes(i.name) ? perSeed[0]![i.name]! : tf.stack(perSeed.map((s) => s[i.name]!));
  const opts = { log: () => {}, hostMaxElements: HOST };
  const one = compileProgram(g, opts);
  const many = compileProgram(vg, opts);
  const run = (p: typeof one, ins: TensorMap) => () => tf.dispose(Object.values(p.run(ins, {})));
  const fns: Record<string, () => void> = { one: run(one, perSeed[0]!), many: run(many, batched) };
  for (const f of Object.values(fns)) for (let i = 0; i < 5; i++) f();
  const times: Record<string, number[]> = { one: [], many: [] };
  for (let r = 0; r < REPS; r++)
    for (const [k, f] of Object.entries(fns)) {
      const t0 = performance.now();
      for (let i = 0; i < CALLS; i++) f();
      times[k]!.push((performance.now() - t0) / CALLS);
    }
  const t1 = median(times.one!);
  const tk = median(times.many!);
  out(`vmap benchmark (node ${process.version}, backend ${tf.getBackend()}, host kernels up to ${HOST} elements; medians of ${REPS} runs of ${CALLS} calls)`);
  out(`PPO CartPole loss + gradients, minibatch ${B}: ${g.nodes.length} nodes; vmapped over ${K} seeds: ${vg.nodes.length} nodes, ${fallbacks.length} fallbacks`);
  out(`  1 seed:                   ${t1.toFixed(3)} ms per call`);
  out(`  ${K} seeds in one program:  ${tk.toFixed(3)} ms per call (${(tk / K).toFixed(3)} ms per seed)`);
  out(`  throughput per seed, vmapped / alone: ${((t1 * K) / tk).toFixed(2)}x`);
}

await main();
