/**
 * Env steps/s of each program of tools/ppo-programs.ts (PPO, AM-PPO and PPO + AlphaGrad on Acrobot,
 * Pendulum, MountainCarContinuous) and of the group programs (GRPO, GRPO with the KL penalty, Hybrid GRPO) against the classic Trainer on the pipeline it equals, in one process (wasm backend unless
 * --backend). The two take turns, one iteration each, so that a load that changes during the run
 * weighs on both alike: the classic Trainer's iterate(), and the program's compiled iteration graph
 * fed its state and hyperparameters as the program driver feeds them. The figure is the median over
 * the iterations after the first (which compiles).
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../runtime/backend.ts';
import { initParams, type TensorMap } from '../runtime/interpreter.ts';
import { GRAPHS_DIR, loadPipeline, withEnv } from '../runtime/pipeline/config.ts';
import { Trainer } from '../runtime/pipeline/driver.ts';
import { makeProgram } from '../runtime/pipeline/program.ts';
import { loadProgram, loadProgramGraphs } from '../runtime/program/config.ts';
import { PROGRAMS } from '../tools/ppo-programs.ts';
import { GROUP_PROGRAMS } from '../tools/group-programs.ts';
import { benchArgs } from './args.ts';

const values = benchArgs('usage: npm run bench:programs -- [--backend wasm|cpu|tensorflow] [--iterations N (of each, default 6)] [--only NAME,... (default all)]', {
  backend: { type: 'string', default: 'wasm' },
  iterations: { type: 'string', default: '6' },
  only: { type: 'string', default: '' },
});
/** The generated PPO-family and group programs, then the hand-written group programs, each with the classic pipeline it equals. */
const SPECS: { name: string; pipeline: string; env?: string }[] = [
  ...PROGRAMS,
  ...GROUP_PROGRAMS,
  { name: 'grpo-cartpole', pipeline: 'pipelines/grpo-cartpole.json' },
  { name: 'grpo-kl-cartpole', pipeline: 'pipelines/grpo-kl-cartpole.json' },
  { name: 'hybrid-grpo-cartpole', pipeline: 'pipelines/hybrid-grpo-cartpole.json' },
];
const only = values.only ? values.only.split(',') : null;
const K = Number(values.iterations);
await initBackend(values.backend, () => {});
const out = (s: string) => process.stdout.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

out(`Programs against the classic Trainer (node ${process.version}, backend ${tf.getBackend()}; median env steps/s of iterations 2..${K}, taking turns)\n`);
out('program                        classic    program   program/classic');
for (const spec of SPECS.filter((sp) => !only || only.includes(sp.name))) {
  let cfg = loadPipeline(join(GRAPHS_DIR, spec.pipeline));
  if (spec.env) cfg = withEnv(cfg, spec.env);
  const trainer = new Trainer(cfg, undefined, 'compiled');
  trainer.init();
  const file = loadProgram(join(GRAPHS_DIR, 'programs', spec.name, 'program.json'));
  const graphs = loadProgramGraphs(file);
  const init = graphs.init;
  const iteration = makeProgram(graphs.iteration, 'compiled');
  const initValues = initParams(init, file.seed);
  const key = tf.tensor([0, file.seed], [2], 'int32');
  // Each graph gets the hyper entries it reads (AM-PPO's init reads alpha_init and s_init).
  const hyperOf = (g: typeof init): TensorMap =>
    Object.fromEntries(Object.entries({ ...file.hyper, total_steps: file.total_steps }).filter(([k]) => g.inputs.some((i) => i.name === k)).map(([k, v]) => [k, tf.scalar(v)]));
  const initHyper = hyperOf(init);
  let state = makeProgram(init, 'compiled')({ key, ...initHyper }, initValues);
  tf.dispose([key, ...Object.values(initValues), ...Object.values(initHyper)]);
  const hyper = hyperOf(graphs.iteration);
  const steps = trainer.stepsPerIteration();
  const classic: number[] = [];
  const program: number[] = [];
  for (let i = 0; i < K; i++) {
    classic.push(trainer.iterate().steps_per_sec);
    const t0 = performance.now();
    const next = iteration({ ...state, ...hyper }, {});
    // Read every output, as the driver reads the metrics and checks the state.
    for (const t of Object.values(next)) t.dataSync();
    program.push(steps / ((performance.now() - t0) / 1000));
    tf.dispose(Object.entries(next).filter(([k]) => !(k in state)).map(([, t]) => t));
    tf.dispose(Object.values(state));
    state = Object.fromEntries(Object.keys(state).map((k) => [k, next[k]!]));
  }
  tf.dispose([...Object.values(state), ...Object.values(hyper)]);
  trainer.dispose();
  const [c, p] = [median(classic.slice(1)), median(program.slice(1))];
  out(`${spec.name.padEnd(30)} ${c.toFixed(0).padStart(7)}   ${p.toFixed(0).padStart(7)}   ${(p / c).toFixed(2)}`);
}
