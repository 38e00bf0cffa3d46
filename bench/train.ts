/**
 * Training throughput, measured side by side in one process (wasm backend unless --backend):
 *  1. end-to-end PPO on CartPole-v1 with the CleanRL configuration (4 envs x 128 steps, 4 epochs x
 *     4 minibatches): env steps/s on the compiled executor and on the reference interpreter;
 *  2. the CartPole-v1 step graph alone for N = 1, 8 and 1024 envs;
 *  3. each variant pipeline (AM-PPO, PPO+AlphaGrad, GRPO, Hybrid GRPO) against plain PPO, per env step.
 * Each figure is the median of several timed blocks after warm-up; ratios are compiled/interpreted
 * (1, 2) and variant/PPO (3).
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../compiler/frontend/load.ts';
import { initBackend } from '../runtime/backend.ts';
import { loadPipeline } from '../runtime/pipeline/config.ts';
import { Trainer } from '../runtime/pipeline/driver.ts';
import { makeProgram, type Executor, type Program } from '../runtime/pipeline/program.ts';

const { values } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' }, reps: { type: 'string', default: '5' } } });
const REPS = Number(values.reps);
await initBackend(values.backend, () => {});
const out = (s: string) => process.stdout.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const EXECUTORS: Executor[] = ['compiled', 'interpret'];

out(`tensorloom training benchmark (node ${process.version}, backend ${tf.getBackend()}; medians of ${REPS} blocks after warm-up)\n`);

// 1. End to end: both trainers advance in turn, one iteration (512 env steps) per block.
const cfg = loadPipeline('graphs/pipelines/ppo-cartpole.json');
const trainers = Object.fromEntries(EXECUTORS.map((e) => [e, new Trainer(cfg, undefined, e)])) as Record<Executor, Trainer>;
const perIter = trainers.compiled.stepsPerIteration();
const times: Record<Executor, number[]> = { compiled: [], interpret: [] };
// Process CPU time per block as well: on a machine shared with other jobs it moves far less than wall time.
const cpuTimes: Record<Executor, number[]> = { compiled: [], interpret: [] };
for (const e of EXECUTORS) {
  trainers[e].init();
  for (let i = 0; i < 2; i++) trainers[e].iterate(); // warm-up: plans, kernels, JIT
}
for (let r = 0; r < REPS; r++)
  for (const e of EXECUTORS) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    trainers[e].iterate();
    const c = process.cpuUsage(c0);
    times[e].push(performance.now() - t0);
    cpuTimes[e].push((c.user + c.system) / 1000);
  }
for (const e of EXECUTORS) trainers[e].dispose();
const sps = (e: Executor) => perIter / (median(times[e]) / 1000);
const cpuSps = (e: Executor) => perIter / (median(cpuTimes[e]) / 1000);
out('1. PPO CartPole-v1 end to end (4 envs x 128 steps per iteration, update included)');
out(`   compiled ${sps('compiled').toFixed(0)} env steps/s   interpreter ${sps('interpret').toFixed(0)} env steps/s   -> compiled is ${(sps('compiled') / sps('interpret')).toFixed(2)}x faster`);
out(`   per CPU-second: compiled ${cpuSps('compiled').toFixed(0)}   interpreter ${cpuSps('interpret').toFixed(0)}   -> ${(cpuSps('compiled') / cpuSps('interpret')).toFixed(2)}x`);

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
