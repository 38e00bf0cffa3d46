/**
 * A program's init + iterations against the classic Trainer on the pipeline it reproduces: the
 * real program.json (its hyper entries) and the real pipeline file, both from the same seed, the
 * program's graphs run by the interpreter or the compiled executor. Every state tensor the caller
 * maps to the Trainer and every metric the iteration outputs is compared after each iteration.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { IRGraph } from '../../compiler/ir.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { Trainer } from '../../runtime/pipeline/driver.ts';
import { loadPipeline, type PipelineConfig } from '../../runtime/pipeline/config.ts';
import { loadProgram, loadProgramGraphs } from '../../runtime/program/config.ts';
import { expectClose } from './grad.ts';

/** A state tensor's reference value on the Trainer after the same number of iterations. */
export type StateRef = (t: Trainer) => number[];
const values = (t: tf.Tensor) => Array.from(t.dataSync());

/** The CartPole agent's param names, in its graph file's order. */
const CARTPOLE_PARAMS = Object.keys(
  (JSON.parse(readFileSync(resolve('graphs/algorithms/agents/cartpole.agent.graph.json'), 'utf8')) as { params: Record<string, unknown> }).params,
);

/** The state every CartPole program shares with PPO's, by its name in the program. */
export function cartpoleStateRefs(): Record<string, StateRef> {
  return ppoStateRefs(CARTPOLE_PARAMS);
}

/**
 * The state a PPO-family program shares with PPO's, for an agent with these param names: params,
 * envs, key, episode trackers, iteration counter, and the running normalisation statistics it keeps.
 */
export function ppoStateRefs(params: readonly string[], norm: { obs: boolean; reward: boolean } = { obs: false, reward: false }): Record<string, StateRef> {
  return {
    ...Object.fromEntries(params.map((p) => [p, (t: Trainer) => values(t.params[`agent/${p}`]!)])),
    env_state: (t) => values(t.env.state!),
    env_t: (t) => values(t.env.t!),
    obs: (t) => values(t.env.obs!),
    key: (t) => Array.from(Int32Array.from(t.host.key)),
    ep_return: (t) => t.host.epReturn,
    ep_length: (t) => t.host.epLength,
    iterations_done: (t) => [t.iteration],
    ...(norm.obs ? OBS_NORM_STATE_REFS : {}),
    ...(norm.reward ? RETURN_NORM_STATE_REFS : {}),
  };
}

/** Adam's state, for programs that keep it as opt_m, opt_v and opt_step. */
export const ADAM_STATE_REFS: Record<string, StateRef> = {
  opt_m: (t) => values(t.optState.m!),
  opt_v: (t) => values(t.optState.v!),
  opt_step: (t) => values(t.optState.step!),
};
/** The running observation statistics, for programs that normalise observations. */
export const OBS_NORM_STATE_REFS: Record<string, StateRef> = {
  obs_mean: (t) => t.host.obsStat!.mean,
  obs_var: (t) => t.host.obsStat!.var_,
  obs_count: (t) => [t.host.obsStat!.count],
};
/** The running discounted return and its statistics, for programs that normalise rewards. */
export const RETURN_NORM_STATE_REFS: Record<string, StateRef> = {
  ret_acc: (t) => t.host.retAcc,
  ret_mean: (t) => t.host.retStat!.mean,
  ret_var: (t) => t.host.retStat!.var_,
  ret_count: (t) => [t.host.retStat!.count],
};
/** Adam's second moment holds squares of gradients: its small entries carry more float32 rounding. */
export const ADAM_RTOL = { opt_m: 1e-3, opt_v: 1e-3 };

export interface ProgramVsTrainer {
  program: string;
  pipeline: string;
  executor: 'interpret' | 'compiled';
  iterations: number;
  seed: number;
  /** Hyper entries replacing the program file's, and the pipeline's config changed to match. */
  hyper?: Record<string, number>;
  pipelineConfig?: (cfg: PipelineConfig) => PipelineConfig;
  /** Every state tensor of the program, each against the Trainer's (exact for int32 state, else to rtol). */
  state: Record<string, StateRef>;
  /** Relative tolerance per state tensor or metric (default 1e-4), for values that drift with float32 rounding. */
  rtol?: Record<string, number>;
  /** The relative tolerance of the tensors and metrics rtol does not name (default 1e-4). */
  defaultRtol?: number;
  /** Absolute tolerance per state tensor or metric, as a fraction of its largest entry (default 1e-6). */
  atol?: Record<string, number>;
  /** Changes the initial state of both alike (after init), e.g. to start the envs somewhere; returns the program's state. */
  prepare?: (state: TensorMap, trainer: Trainer) => TensorMap;
  /** Extra checks on each iteration's outputs, e.g. that a variant's path was taken. */
  check?: (out: TensorMap, row: Record<string, number | null>, trainer: Trainer, cfg: PipelineConfig) => void;
}

/** Runs the comparison; returns the metric rows of the program, iteration by iteration. */
export function expectProgramMatchesTrainer(o: ProgramVsTrainer): Record<string, number>[] {
  const loaded = loadProgram(o.program);
  const pcfg = { ...loaded, hyper: { ...loaded.hyper, ...o.hyper } };
  const graphs = loadProgramGraphs(pcfg);
  const cfg: PipelineConfig = (o.pipelineConfig ?? ((c) => c))({ ...loadPipeline(o.pipeline), seed: o.seed });
  const trainer = new Trainer(cfg, undefined, o.executor);
  trainer.init();
  const run = (g: IRGraph, inputs: TensorMap, params: TensorMap = {}): TensorMap => (o.executor === 'interpret' ? interpret(g, inputs, params) : compileProgram(g).run(inputs, params));
  const hyperFor = (g: IRGraph): TensorMap => {
    const out: TensorMap = {};
    for (const i of g.inputs) {
      if (i.name in pcfg.hyper) out[i.name] = tf.scalar(pcfg.hyper[i.name]!, i.type.dtype);
      else if (i.name === 'total_steps') out[i.name] = tf.scalar(pcfg.total_steps);
    }
    return out;
  };
  // Both count the same iterations for lr annealing.
  expect(Math.floor(pcfg.total_steps / trainer.stepsPerIteration())).toBe(trainer.iterations);
  expect(Object.keys(o.state).sort()).toEqual(Object.keys(graphs.state).sort());
  const initParamValues = initParams(graphs.init, o.seed);
  const key = tf.tensor([0, o.seed], [2], 'int32');
  const initHyper = hyperFor(graphs.init);
  let state = run(graphs.init, { key, ...initHyper }, initParamValues);
  if (o.prepare) state = o.prepare(state, trainer);
  const hyper = hyperFor(graphs.iteration);
  const rows: Record<string, number>[] = [];
  const tol = (k: string) => o.rtol?.[k] ?? o.defaultRtol ?? 1e-4;
  const atol = (k: string) => o.atol?.[k] ?? 1e-6;
  for (let it = 1; it <= o.iterations; it++) {
    const row = trainer.iterate() as unknown as Record<string, number | null>;
    const out = run(graphs.iteration, { ...state, ...hyper });
    for (const [name, ref] of Object.entries(o.state)) {
      const got = values(out[name]!);
      if (out[name]!.dtype === 'int32') expect(got, `iteration ${it}: ${name}`).toEqual(ref(trainer));
      else expectClose(got, ref(trainer), tol(name), atol(name), `iteration ${it}: ${name}`);
    }
    const mrow: Record<string, number> = {};
    for (const k of graphs.metrics) {
      const got = values(out[k]!)[0]!;
      mrow[k] = got;
      const want = k === 'env_steps' ? trainer.stepsPerIteration() : row[k];
      expect(want, `the Trainer logs no metric ${k}`).not.toBeUndefined();
      if (want === null || Number.isNaN(want)) expect(got, k).toBeNaN();
      // lr to float32 precision: annealing moves it by 1 part in 976 per iteration.
      else if (k === 'lr') expect(Math.abs(got - want!) / want!, k).toBeLessThan(1e-6);
      else expectClose([got], [want!], tol(k), atol(k), `iteration ${it}: ${k}`);
    }
    o.check?.(out, row, trainer, cfg);
    rows.push(mrow);
    tf.dispose(Object.values(state));
    state = Object.fromEntries(Object.keys(graphs.state).map((k) => [k, out[k]!]));
    tf.dispose(graphs.metrics.map((k) => out[k]!));
  }
  tf.dispose([...Object.values(state), ...Object.values(hyper), ...Object.values(initHyper), ...Object.values(initParamValues), key]);
  trainer.dispose();
  return rows;
}
