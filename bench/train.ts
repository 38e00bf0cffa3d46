/**
 * Training throughput, measured side by side in one process (wasm backend unless --backend):
 *  1. end-to-end PPO on CartPole-v1 with the CleanRL configuration (4 envs x 128 steps, 4 epochs x
 *     4 minibatches): env steps/s of the compiled trainer alone, then side by side the compiled
 *     executor (as is; with the library's matmul instead of the own wasm product; without host
 *     kernels and plan buffers) and the reference interpreter;
 *  2. the CartPole-v1 step graph alone for N = 1, 8 and 1024 envs;
 *  3. each variant pipeline (AM-PPO, PPO+AlphaGrad, GRPO, Hybrid GRPO) against plain PPO, per env step.
 * Each figure is the median of several timed blocks after warm-up; ratios are compiled/interpreted
 * (1, 2) and variant/PPO (3).
 */
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../compiler/frontend/load.ts';
import { initBackend } from '../runtime/backend.ts';
import { loadPipeline } from '../runtime/pipeline/config.ts';
import { Trainer } from '../runtime/pipeline/driver.ts';
import { makeProgram, type Executor, type Program } from '../runtime/pipeline/program.ts';
import { benchArgs } from './args.ts';

const values = benchArgs('usage: npm run bench:train -- [--backend wasm|cpu|tensorflow] [--reps N (timed blocks per figure, default 5)]', {
  backend: { type: 'string', default: 'wasm' },
  reps: { type: 'string', default: '5' },
});
const REPS = Number(values.reps);
await initBackend(values.backend, () => {});
const out = (s: string) => process.stdout.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const EXECUTORS: Executor[] = ['compiled', 'interpret'];

out(`tensorloom training benchmark (node ${process.version}, backend ${tf.getBackend()}; medians of ${REPS} blocks after warm-up)\n`);

const cfg = loadPipeline('graphs/pipelines/ppo-cartpole.json');

// 1. End to end. First the compiled trainer alone, as `loom train` runs it: blocks of 10
// iterations (5,120 env steps). Then the trainers side by side, one iteration per block in turn:
// the compiled executor as is, with the library's matmul, and without host kernels and plan
// buffers; and the interpreter.
{
  const alone = new Trainer(cfg, undefined, 'compiled');
  alone.init();
  for (let i = 0; i < 3; i++) alone.iterate(); // warm-up: plans, kernels, JIT
  const blocks: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 10; i++) alone.iterate();
    blocks.push(performance.now() - t0);
  }
  alone.dispose();
  const perBlock = 10 * alone.stepsPerIteration();
  out('1. PPO CartPole-v1 end to end (4 envs x 128 steps per iteration, update included)');
  out(`   compiled trainer alone: ${(perBlock / (median(blocks) / 1000)).toFixed(0)} env steps/s (median of ${REPS} blocks of 10 iterations; fastest ${(perBlock / (Math.min(...blocks) / 1000)).toFixed(0)})`);
}
const RUNNERS = {
  compiled: () => new Trainer(cfg, undefined, 'compiled'),
  'compiled, library matmul': () => new Trainer(cfg, undefined, 'compiled', { wasmProduct: false }),
  'compiled, no host kernels': () => new Trainer(cfg, undefined, 'compiled', { hostMaxElements: 0, reuseBuffers: false }),
  interpreter: () => new Trainer(cfg, undefined, 'interpret'),
};
type Runner = keyof typeof RUNNERS;
const runners = Object.keys(RUNNERS) as Runner[];
const trainers = Object.fromEntries(runners.map((r) => [r, RUNNERS[r]()])) as Record<Runner, Trainer>;
const perIter = trainers.compiled.stepsPerIteration();
const times = Object.fromEntries(runners.map((r) => [r, [] as number[]])) as Record<Runner, number[]>;
// Process CPU time per block as well: on a machine shared with other jobs it moves far less than wall time.
const cpuTimes = Object.fromEntries(runners.map((r) => [r, [] as number[]])) as Record<Runner, number[]>;
for (const r of runners) {
  trainers[r].init();
  for (let i = 0; i < 2; i++) trainers[r].iterate(); // warm-up: plans, kernels, JIT
}
for (let rep = 0; rep < REPS; rep++)
  for (const r of runners) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    trainers[r].iterate();
    const c = process.cpuUsage(c0);
    times[r].push(performance.now() - t0);
    cpuTimes[r].push((c.user + c.system) / 1000);
  }
for (const r of runners) trainers[r].dispose();
const sps = (r: Runner) => perIter / (median(times[r]) / 1000);
const cpuSps = (r: Runner) => perIter / (median(cpuTimes[r]) / 1000);
out('   side by side, one iteration each in turn:');
out(`   ${'trainer'.padEnd(27)} ${'env steps/s'.padStart(11)} ${'vs interpreter'.padStart(15)} ${'per CPU-s'.padStart(10)} ${'vs interpreter'.padStart(15)}`);
for (const r of runners)
  out(`   ${r.padEnd(27)} ${sps(r).toFixed(0).padStart(11)} ${(sps(r) / sps('interpreter')).toFixed(2).padStart(14)}x ${cpuSps(r).toFixed(0).padStart(10)} ${(cpuSps(r) / cpuSps('interpreter')).toFixed(2).padStart(14)}x`);
out(`   host kernels and plan buffers: ${(sps('compiled') / sps('compiled, no host kernels')).toFixed(2)}x (wall), ${(cpuSps('compiled') / cpuSps('compiled, no host kernels')).toFixed(2)}x (CPU)`);
if (tf.getBackend() === 'wasm')
  out(`   own wasm product over the library matmul: ${(sps('compiled') / sps('compiled, library matmul')).toFixed(2)}x (wall), ${(cpuSps('compiled') / cpuSps('compiled, library matmul')).toFixed(2)}x (CPU)`);

// 2. The environment alone.
out('\n2. CartPole-v1 step graph alone (actions all 1, auto-reset included)');
const stepGraph = loadGraph('graphs/envs/cartpole.step.graph.json');
const resetGraph = loadGraph('graphs/envs/cartpole.reset.graph.json');
for (const n of [1, 8, 1024]) {
  const res: Record<string, number> = {};
  const progs = Object.fromEntries(EXECUTORS.map((e) => [e, makeProgram(stepGraph, e)])) as Record<Executor, Program>;
  const reset = makeProgram(resetGraph, 'compiled');
  const key = tf.tensor1d([0, 1], 'int32');
  const like = tf.zeros([n], 'int32');
  const start = reset({ key, like }, {});
  const action = tf.ones([n], 'int32');
  const states: Record<Executor, { state: tf.Tensor; t: tf.Tensor }> = {
    compiled: { state: tf.clone(start.state!), t: tf.clone(start.t!) },
    interpret: { state: tf.clone(start.state!), t: tf.clone(start.t!) },
  };
  const steps = 200;
  const block = (e: Executor) => {
    for (let i = 0; i < steps; i++) {
      const o = progs[e]({ state: states[e].state, t: states[e].t, action, key }, {});
      tf.dispose([states[e].state, states[e].t]);
      states[e] = { state: o.state!, t: o.t! };
      for (const [k, v] of Object.entries(o)) if (k !== 'state' && k !== 't') v.dispose();
    }
    states[e].state.dataSync(); // the work is done once the state can be read
  };
  const ts: Record<Executor, number[]> = { compiled: [], interpret: [] };
  for (const e of EXECUTORS) block(e);
  for (let r = 0; r < REPS; r++)
    for (const e of EXECUTORS) {
      const t0 = performance.now();
      block(e);
      ts[e].push(performance.now() - t0);
    }
  for (const e of EXECUTORS) res[e] = (n * steps) / (median(ts[e]) / 1000);
  out(`   N = ${String(n).padEnd(5)} compiled ${res.compiled!.toFixed(0).padStart(9)} env steps/s   interpreter ${res.interpret!.toFixed(0).padStart(9)} env steps/s   -> ${(res.compiled! / res.interpret!).toFixed(2)}x`);
  tf.dispose([key, like, action, ...Object.values(start), ...Object.values(states).flatMap((s) => [s.state, s.t])]);
}

// 3. The variants against plain PPO, per env step, on the compiled executor: one iteration of each in
// turn per block (group variants count every simulated branch step, as their training runs do).
out('\n3. Variants on CartPole-v1 against plain PPO, compiled executor (env steps/s; ratio to PPO)');
const VARIANTS = ['ppo', 'amppo', 'ppo-alphagrad', 'grpo', 'hybrid-grpo'];
const variantTrainers = VARIANTS.map((v) => new Trainer(loadPipeline(`graphs/pipelines/${v}-cartpole.json`), undefined, 'compiled'));
const variantTimes = VARIANTS.map(() => [] as number[]);
for (const t of variantTrainers) {
  t.init();
  for (let i = 0; i < 2; i++) t.iterate();
}
for (let r = 0; r < REPS; r++)
  variantTrainers.forEach((t, k) => {
    const t0 = performance.now();
    t.iterate();
    variantTimes[k]!.push(performance.now() - t0);
  });
const variantSps = variantTrainers.map((t, k) => t.stepsPerIteration() / (median(variantTimes[k]!) / 1000));
VARIANTS.forEach((v, k) => out(`   ${(v + '-cartpole').padEnd(24)} ${variantSps[k]!.toFixed(0).padStart(7)} env steps/s   ${(variantSps[k]! / variantSps[0]!).toFixed(2)}x PPO`));
for (const t of variantTrainers) t.dispose();
