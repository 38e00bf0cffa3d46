/**
 * Many seeds of a program pipeline (`loom train --seeds K`), measured side by side in one process
 * (wasm unless --backend): the PPO CartPole program's iteration for 1 seed, for K seeds vmapped
 * into one program (--seeds-mode vmap), and for K seeds one after another (--seeds-mode loop).
 * Each iteration is run as the program driver runs it: the state fed back, the metrics read.
 * Prints aggregate env steps/s (medians of several blocks after warm-up, the three in turn within
 * each block) by wall time and by process CPU time (steadier on a shared machine), then the milliseconds per iteration of each top-level node of the iteration graph
 * (ProgramOptions.profile: the rollout scan `roll`, the update scan `upd`, ...), for 1 seed and
 * for K seeds vmapped.
 *
 * --host N runs the vmapped program's library ops as host kernels up to N elements (default: the
 * executor's HOST_MAX_ELEMENTS, as `loom train` does): K seeds make every tensor K times larger.
 *
 * Usage: npm run bench:seeds [-- --k 8 --reps 5 --iterations 3 --host 65536 --backend wasm]
 */
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { initBackend } from '../runtime/backend.ts';
import { HOST_MAX_ELEMENTS } from '../runtime/exec.ts';
import { vmapGraph } from '../runtime/jit.ts';
import { initParams, type TensorMap } from '../runtime/interpreter.ts';
import { makeProgram, type Program } from '../runtime/pipeline/program.ts';
import { loadProgram, loadProgramGraphs, type ProgramGraphs } from '../runtime/program/config.ts';
import { initKey } from '../runtime/program/driver.ts';
import { benchArgs } from './args.ts';

const values = benchArgs('usage: npm run bench:seeds -- [--k K (default 8)] [--reps N (blocks, default 5)] [--iterations N (per block, default 3)] [--host N (host kernels of the vmapped program up to N elements)] [--backend wasm|cpu|tensorflow]', {
  k: { type: 'string', default: '8' },
  reps: { type: 'string', default: '5' },
  iterations: { type: 'string', default: '3' },
  host: { type: 'string', default: String(HOST_MAX_ELEMENTS) },
  backend: { type: 'string', default: 'wasm' },
});
const HOST = Number(values.host);
const K = Number(values.k);
const REPS = Number(values.reps);
const ITERS = Number(values.iterations);
await initBackend(values.backend, () => {});
const out = (s = '') => process.stdout.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const cfg = loadProgram(join(import.meta.dirname, '..', 'graphs', 'programs', 'ppo-cartpole', 'program.json'));
const graphs: ProgramGraphs = loadProgramGraphs(cfg);
const names = Object.keys(graphs.state);
const hyper: TensorMap = Object.fromEntries(
  graphs.iteration.inputs.filter((i) => !Object.hasOwn(graphs.state, i.name)).map((i) => [i.name, tf.scalar(Object.hasOwn(cfg.hyper, i.name) ? cfg.hyper[i.name]! : cfg.total_steps, i.type.dtype)]),
);

async function initState(seed: number): Promise<TensorMap> {
  const params = initParams(graphs.init, seed);
  const key = tf.tensor(initKey(seed), [2], 'int32');
  const made = await makeProgram(graphs.init, 'compiled').runAsync({ key }, params);
  tf.dispose([key, ...Object.values(params)]);
  return Object.fromEntries(names.map((k) => [k, made[k]!]));
}

/**
 * One iteration as the driver runs it: the next state kept, every metric read to the host. `sync`
 * runs it with `run`, which profiles (the host backends allow it).
 */
async function step(p: Program, state: TensorMap, sync = false): Promise<TensorMap> {
  const o = sync ? p({ ...state, ...hyper }, {}) : await p.runAsync({ ...state, ...hyper }, {});
  await Promise.all(graphs.metrics.map((m) => o[m]!.data()));
  tf.dispose(graphs.metrics.map((m) => o[m]!));
  tf.dispose(Object.values(state));
  return Object.fromEntries(names.map((k) => [k, o[k]!]));
}

const steps = await (async () => {
  const s = await initState(1);
  const o = await makeProgram(graphs.iteration, 'compiled').runAsync({ ...s, ...hyper }, {});
  const n = (await o.env_steps!.data())[0]!;
  tf.dispose([...Object.values(s), ...Object.values(o)]);
  return n;
})();

const profileSingle = new Map<string, number>();
const profileVmap = new Map<string, number>();
const single = makeProgram(graphs.iteration, 'compiled');
const singleProfiled = makeProgram(graphs.iteration, 'compiled', { profile: profileSingle });
const { graph: batchedGraph, fallbacks } = vmapGraph(graphs.iteration, { size: K, axes: Object.fromEntries(graphs.iteration.inputs.map((i) => [i.name, Object.hasOwn(graphs.state, i.name) ? (0 as const) : null])) });
const vmapped = makeProgram(batchedGraph, 'compiled', { hostMaxElements: HOST });
const vmappedProfiled = makeProgram(batchedGraph, 'compiled', { hostMaxElements: HOST, profile: profileVmap });

const seeds = Array.from({ length: K }, (_v, k) => k + 1);
let one = await initState(1);
let looped = await Promise.all(seeds.map(initState));
const per = await Promise.all(seeds.map(initState));
let stacked: TensorMap = Object.fromEntries(names.map((k) => [k, tf.stack(per.map((m) => m[k]!))]));
per.forEach((m) => tf.dispose(Object.values(m)));

out(`tensorloom seeds benchmark (node ${process.version}, backend ${tf.getBackend()}): PPO CartPole program, ${steps} env steps per seed per iteration`);
out(`medians of ${REPS} blocks of ${ITERS} iterations after 2 warm-up iterations; the three runners in turn within each block; vmapped host kernels up to ${HOST} elements`);
if (fallbacks.length) out(`vmap fell back to one op per seed at ${fallbacks.length} nodes: ${fallbacks.map((f) => f.node).join(', ')}`);
out();

const runners = {
  '1 seed': { seeds: 1, run: async () => void (one = await step(single, one)) },
  [`${K} seeds vmapped`]: { seeds: K, run: async () => void (stacked = await step(vmapped, stacked)) },
  [`${K} seeds looped`]: {
    seeds: K,
    run: async () => {
      for (let k = 0; k < K; k++) looped[k] = await step(single, looped[k]!);
    },
  },
};
const times: Record<string, number[]> = Object.fromEntries(Object.keys(runners).map((n) => [n, []]));
// Process CPU time as well: on a shared machine it moves far less than wall time.
const cpu: Record<string, number[]> = Object.fromEntries(Object.keys(runners).map((n) => [n, []]));
for (const r of Object.values(runners)) for (let i = 0; i < 2; i++) await r.run();
for (let rep = 0; rep < REPS; rep++) {
  for (const [name, r] of Object.entries(runners)) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < ITERS; i++) await r.run();
    const c = process.cpuUsage(c0);
    times[name]!.push(performance.now() - t0);
    cpu[name]!.push((c.user + c.system) / 1000);
  }
}
const rate = (name: string) => (runners[name]!.seeds * steps * ITERS) / (median(times[name]!) / 1000);
const cpuRate = (name: string) => (runners[name]!.seeds * steps * ITERS) / (median(cpu[name]!) / 1000);
out('aggregate env steps/s (all seeds together), by wall time and by process CPU time');
for (const name of Object.keys(runners))
  out(`  ${name.padEnd(20)} ${rate(name).toFixed(0).padStart(8)}   (${(median(times[name]!) / ITERS).toFixed(1)} ms per iteration)   CPU: ${cpuRate(name).toFixed(0).padStart(8)}   (${(median(cpu[name]!) / ITERS).toFixed(1)} ms per iteration)`);
const ratios = (r: (name: string) => number) => `vmapped / looped: ${(r(`${K} seeds vmapped`) / r(`${K} seeds looped`)).toFixed(2)}x; vmapped / 1 seed: ${(r(`${K} seeds vmapped`) / r('1 seed')).toFixed(2)}x`;
out(`  wall: ${ratios(rate)}`);
out(`  CPU:  ${ratios(cpuRate)}`);

// Where an iteration's time goes: milliseconds per top-level node, per iteration, over a few profiled iterations.
for (let i = 0; i < ITERS; i++) {
  one = await step(singleProfiled, one, true);
  stacked = await step(vmappedProfiled, stacked, true);
}
out();
out(`ms per iteration by top-level node (profiled, ${ITERS} iterations): 1 seed | ${K} seeds vmapped | vmapped / (${K} x 1 seed)`);
const rows = [...new Set([...profileSingle.keys(), ...profileVmap.keys()])].map((id) => ({ id, a: (profileSingle.get(id) ?? 0) / ITERS, b: (profileVmap.get(id) ?? 0) / ITERS }));
rows.sort((x, y) => y.b - x.b);
for (const r of rows.slice(0, 12)) out(`  ${r.id.padEnd(24)} ${r.a.toFixed(2).padStart(8)} ${r.b.toFixed(2).padStart(9)}   ${r.a > 0 ? (r.b / (K * r.a)).toFixed(2) : '-'}`);
const total = (m: Map<string, number>) => [...m.values()].reduce((s, x) => s + x, 0) / ITERS;
out(`  ${'total'.padEnd(24)} ${total(profileSingle).toFixed(2).padStart(8)} ${total(profileVmap).toFixed(2).padStart(9)}   ${(total(profileVmap) / (K * total(profileSingle))).toFixed(2)}`);

tf.dispose([...Object.values(one), ...Object.values(stacked), ...looped.flatMap((m) => Object.values(m)), ...Object.values(hyper)]);
