/**
 * Training throughput, measured side by side in one process (wasm backend unless --backend):
 *  1. end-to-end PPO on CartPole-v1 with the CleanRL configuration (4 envs x 128 steps, 4 epochs x
 *     4 minibatches): env steps/s of the compiled trainer alone, then side by side the compiled
 *     executor (as is; with the library's matmul instead of the own wasm product; without host
 *     kernels and plan buffers) and the reference interpreter;
 *  2. the CartPole-v1 step graph alone for N = 1, 8 and 1024 envs;
 *  3. each variant pipeline (AM-PPO, PPO+AlphaGrad, GRPO, Hybrid GRPO) against plain PPO, per env step;
 *  4. whole-program PPO CartPole (graphs/programs/ppo-cartpole/, one compiled program per iteration):
 *     env steps/s of the compiled iteration program, the reference interpreter on the same graph and
 *     the classic Trainer side by side, and where an iteration's time goes (ProgramOptions.profile).
 * Each figure is the median of several timed blocks after warm-up; ratios are compiled/interpreted
 * (1, 2, 4), variant/PPO (3) and program/Trainer (4).
 */
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../compiler/frontend/load.ts';
import { initBackend } from '../runtime/backend.ts';
import { initParams, type TensorMap } from '../runtime/interpreter.ts';
import { loadPipeline } from '../runtime/pipeline/config.ts';
import { loadProgram, loadProgramGraphs } from '../runtime/program/config.ts';
import { initKey, scalarInputs } from '../runtime/program/driver.ts';
import { Trainer } from '../runtime/pipeline/driver.ts';
import { makeProgram, type Executor, type Program } from '../runtime/pipeline/program.ts';
import { benchArgs } from './args.ts';

const values = benchArgs('usage: npm run bench:train -- [--backend wasm|cpu|tensorflow] [--reps N (timed blocks per figure, default 5)] [--sections 1,2,3,4 (default all)]', {
  backend: { type: 'string', default: 'wasm' },
  reps: { type: 'string', default: '5' },
  sections: { type: 'string', default: '1,2,3,4' },
});
const REPS = Number(values.reps);
const SECTIONS = new Set(values.sections.split(',').map((x) => x.trim()));
await initBackend(values.backend, () => {});
const out = (s: string) => process.stdout.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const EXECUTORS: Executor[] = ['compiled', 'interpret'];

out(`tensorloom training benchmark (node ${process.version}, backend ${tf.getBackend()}; medians of ${REPS} blocks after warm-up)\n`);

const cfg = loadPipeline('graphs/pipelines/ppo-cartpole.json');

if (SECTIONS.has('1')) {
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
}

// 2. The environment alone.
if (SECTIONS.has('2')) {
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
}

// 3. The variants against plain PPO, per env step, on the compiled executor: one iteration of each in
// turn per block (group variants count every simulated branch step, as their training runs do).
if (SECTIONS.has('3')) {
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
}

// 4. The whole PPO iteration as one program: the compiled executor and the reference interpreter
// run the same iteration graph from the same init state, one iteration each in turn per block, with
// the classic Trainer beside them; then the compiled iteration's steps from ProgramOptions.profile.
if (SECTIONS.has('4')) {
  out('\n4. whole-program PPO CartPole (graphs/programs/ppo-cartpole: one iteration graph per 512 env steps)');
  const pcfg = loadProgram('graphs/programs/ppo-cartpole/program.json');
  const graphs = loadProgramGraphs(pcfg);
  const profile = new Map<string, number>();
  const makeState = (): TensorMap => {
    const params = initParams(graphs.init, pcfg.seed);
    const inputs = scalarInputs(graphs.init, pcfg, {}, initKey(pcfg.seed));
    const made = makeProgram(graphs.init, 'compiled')(inputs, params);
    tf.dispose([...Object.values(params), ...Object.values(inputs)]);
    return made;
  };
  const iterInputs = scalarInputs(graphs.iteration, pcfg, graphs.state, null);
  type Side = 'program, compiled' | 'program, interpreter' | 'classic Trainer';
  const stateOf: Partial<Record<Side, TensorMap>> = {};
  const programs: Partial<Record<Side, Program>> = {
    'program, compiled': makeProgram(graphs.iteration, 'compiled'),
    'program, interpreter': makeProgram(graphs.iteration, 'interpret'),
  };
  const classic = new Trainer(cfg, undefined, 'compiled');
  classic.init();
  let stepsPerIter = 0;
  /** One iteration; the state is read back (as the driver reads its metrics) so the work is done. */
  const iterate = (side: Side) => {
    if (side === 'classic Trainer') return classic.iterate();
    const o = programs[side]!({ ...stateOf[side]!, ...iterInputs }, {});
    stepsPerIter = o.env_steps!.dataSync()[0]!;
    tf.dispose(Object.values(stateOf[side]!));
    stateOf[side] = Object.fromEntries(Object.keys(graphs.state).map((k) => [k, o[k]!]));
    for (const [k, t] of Object.entries(o)) if (!Object.hasOwn(graphs.state, k)) t.dispose();
  };
  const sides: Side[] = ['program, compiled', 'program, interpreter', 'classic Trainer'];
  stateOf['program, compiled'] = makeState();
  stateOf['program, interpreter'] = makeState();
  for (const side of sides) for (let i = 0; i < 2; i++) iterate(side); // warm-up: plans, kernels, JIT
  const ptimes = Object.fromEntries(sides.map((r) => [r, [] as number[]])) as Record<Side, number[]>;
  // Process CPU time as well, steadier than wall time on a shared machine.
  const pcpu = Object.fromEntries(sides.map((r) => [r, [] as number[]])) as Record<Side, number[]>;
  for (let rep = 0; rep < REPS; rep++)
    for (const side of sides) {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      iterate(side);
      const c = process.cpuUsage(c0);
      ptimes[side].push(performance.now() - t0);
      pcpu[side].push((c.user + c.system) / 1000);
    }
  // The breakdown apart from the timed blocks (a clock read per step): the same plans, profiled.
  programs['program, compiled'] = makeProgram(graphs.iteration, 'compiled', { profile });
  iterate('program, compiled');
  profile.clear();
  const profiled = REPS;
  for (let rep = 0; rep < profiled; rep++) iterate('program, compiled');
  const psps = (r: Side) => (r === 'classic Trainer' ? classic.stepsPerIteration() : stepsPerIter) / (median(ptimes[r]) / 1000);
  const cpuMs = (r: Side) => median(pcpu[r]);
  out(`   ${'runner'.padEnd(22)} ${'env steps/s'.padStart(11)} ${'ms/iteration'.padStart(13)} ${'fastest'.padStart(8)} ${'vs interpreter'.padStart(15)} ${'vs Trainer'.padStart(11)} ${'CPU ms/iteration'.padStart(17)} ${'vs Trainer'.padStart(11)}`);
  for (const r of sides)
    out(`   ${r.padEnd(22)} ${psps(r).toFixed(0).padStart(11)} ${median(ptimes[r]).toFixed(2).padStart(13)} ${Math.min(...ptimes[r]).toFixed(2).padStart(8)} ${(psps(r) / psps('program, interpreter')).toFixed(2).padStart(14)}x ${(psps(r) / psps('classic Trainer')).toFixed(2).padStart(10)}x ${cpuMs(r).toFixed(2).padStart(17)} ${(cpuMs('classic Trainer') / cpuMs(r)).toFixed(2).padStart(10)}x`);
  // The profile holds the compiled iteration's top-level steps (a scan's whole loop under its id)
  // and, under `<scan id> > `, the steps of the scans' bodies.
  const top = [...profile].filter(([k]) => !k.includes(' > '));
  const total = top.reduce((a, [, ms]) => a + ms, 0);
  const roll = profile.get('roll') ?? 0;
  const upd = profile.get('upd') ?? 0;
  const per = (ms: number) => (ms / profiled).toFixed(2);
  out(`   compiled iteration, mean ms per iteration over ${profiled} profiled ones: rollout scan ${per(roll)}, GAE and the rest ${per(total - roll - upd)}, update scan ${per(upd)}; total ${per(total)}`);
  const rest = top.filter(([k]) => k !== 'roll' && k !== 'upd').sort((a, b) => b[1] - a[1]).slice(0, 3);
  out(`   largest of the rest: ${rest.map(([k, ms]) => `${k} ${per(ms)} ms`).join(', ')}`);
  // The program's fixed scan lengths: 128 rollout steps; 4 epochs x 4 minibatches.
  for (const [scan, T] of [['roll', 128], ['upd', 16]] as const) {
    const inner = [...profile].filter(([k]) => k.startsWith(`${scan} > `));
    const bookkeeping = (profile.get(scan) ?? 0) - inner.reduce((a, [, ms]) => a + ms, 0);
    const us = (ms: number) => ((ms / profiled / T) * 1000).toFixed(1);
    const largest = inner.sort((a, b) => b[1] - a[1]).slice(0, 6);
    out(`   ${scan} body, us per step (${T} steps): ${largest.map(([k, ms]) => `${k.slice(scan.length + 3)} ${us(ms)}`).join(', ')}; run bookkeeping ${us(bookkeeping)}`);
  }
  classic.dispose();
  for (const side of sides) if (stateOf[side]) tf.dispose(Object.values(stateOf[side]!));
  tf.dispose(Object.values(iterInputs));
}
