/**
 * The public API of tensorloom: load and check graphs and pipelines, run graphs, train and compare
 * pipelines, train program pipelines, solve for the optimal expert count of a sectional MoE layer, and simulate a graph on
 * a hardware profile. Everything else is internal. Examples: docs/api.md.
 */
import { loadGraph } from './compiler/frontend/load.ts';
import { signature } from './compiler/inspect.ts';
import type { IRGraph } from './compiler/ir.ts';
import { LoomError } from './compiler/errors.ts';
import { tf } from './runtime/backend.ts';
import { compileProgram } from './runtime/exec.ts';
import { syncReadable } from './runtime/host-memory.ts';
import { initParams, interpret } from './runtime/interpreter.ts';
import { isPipelineFile, loadPipeline, loadPipelineGraphs, pipelineGraphsByRole, type PipelineConfig } from './runtime/pipeline/config.ts';
import { trainAsync, type TrainOptions, type TrainResult } from './runtime/pipeline/driver.ts';
import { evaluatePolicy, openPolicy } from './runtime/pipeline/policy.ts';
import { isProgramFile, loadProgram, loadProgramGraphs, type ProgramConfig } from './runtime/program/config.ts';
import { trainProgram as runProgram, trainProgramSeeds as runProgramSeeds, type ProgramSeedsOptions, type ProgramTrainOptions, type ProgramTrainResult, type SeedRunResult } from './runtime/program/driver.ts';
import { inputsFromJson, tensorToJson } from './runtime/tensor-json.ts';

export { LoomError, isLoomError, type ErrorCode, type ErrorInfo } from './compiler/errors.ts';
export type { DType, IRGraph, TensorType } from './compiler/ir.ts';
export { loadGraph, loadPipeline, type PipelineConfig, loadProgram, type ProgramConfig };
export type { ProgramSeedsOptions, ProgramTrainOptions, SeedsMode } from './runtime/program/driver.ts';
export type { MetricRow } from './runtime/program/metrics.ts';
/** The graph library that ships with tensorloom (nets, envs, algorithms, optimizers, pipelines, examples). */
export { GRAPHS_DIR } from './runtime/pipeline/config.ts';
export { initBackend, BACKENDS, type BackendChoice, type BackendName } from './runtime/backend.ts';
export type { TrainOptions } from './runtime/pipeline/driver.ts';
export type { IterationMetrics } from './runtime/pipeline/metrics.ts';
export type { ProgressInfo } from './runtime/pipeline/progress.ts';
export { compare, type ComparedConfig, type CompareOptions, type CompareResult, type PipelineSummary } from './runtime/compare.ts';
export { optimalExperts, type MoeParams, type ExpertsResult, type Reduction, type PreCost } from './compiler/cost/moe.ts';
export { simulate, type SimResult, type SimOptions, type KernelCost } from './compiler/cost/simulate.ts';
export { loadProfile, shippedProfiles, type Profile } from './compiler/cost/profile.ts';
export { compileGraph, type CompileOptions, type StageReport } from './compiler/compile.ts';
/** Host envs: simulators written in TypeScript (or wasm), stepped from the host; see docs/environments.md. */
export { registerHostEnv, unregisterHostEnv, hostEnvNames, loadHostEnv, type HostEnv, type HostEnvDefinition, type HostStep, type ActionSpace, type JsonValue } from './runtime/host-env/host-env.ts';

/** What `check` found valid: a graph with its inferred signature, a pipeline with its graphs, or a program pipeline with its state and metrics. */
export type CheckResult =
  | { kind: 'graph'; graph: IRGraph; signature: string }
  | { kind: 'pipeline'; pipeline: PipelineConfig; graphs: number }
  | { kind: 'program'; program: ProgramConfig; state: string[]; metrics: string[] };

/**
 * Validates a graph file, a pipeline file with every graph it names, or a program pipeline with
 * its graphs and the contract between them (what `loom check` does).
 * Throws a `LoomError` naming the file, JSON pointer and node of the first problem.
 */
export function check(file: string): CheckResult {
  if (isProgramFile(file)) {
    const program = loadProgram(file);
    const g = loadProgramGraphs(program);
    return { kind: 'program', program, state: Object.keys(g.state), metrics: g.metrics };
  }
  if (isPipelineFile(file)) {
    const pipeline = loadPipeline(file);
    return { kind: 'pipeline', pipeline, graphs: pipelineGraphsByRole(loadPipelineGraphs(pipeline)).size };
  }
  const graph = loadGraph(file);
  return { kind: 'graph', graph, signature: signature(graph) };
}

/** A tensor as nested arrays (numbers; booleans for `bool`). */
export type NestedArray = number | boolean | NestedArray[];

export interface RunGraphOptions {
  /** Input name -> nested array. `int32[2]` inputs left out are RNG keys derived from `seed`. */
  inputs?: Record<string, NestedArray>;
  /** Seeds param initialisation and the RNG keys of inputs left out (default 0). */
  seed?: number;
  /** `true` (default): the compiled executor (fused, generated kernels); `false`: the reference interpreter. */
  compiled?: boolean;
}

/**
 * Evaluates a graph (an `IRGraph` or a graph file) once with freshly initialised params on the
 * active backend (call `initBackend` first to choose one) and returns its outputs as nested arrays.
 * Every tensor it makes is released before it returns.
 */
export function runGraph(graph: IRGraph | string, opts: RunGraphOptions = {}): Record<string, NestedArray> {
  if (!syncReadable(tf.getBackend()))
    throw new LoomError({ code: 'E_BACKEND', message: `runGraph returns its outputs synchronously, which the ${tf.getBackend()} backend cannot read`, hint: 'run the graph with `loom run --backend webgpu`, or choose another backend' });
  const g = typeof graph === 'string' ? loadGraph(graph) : graph;
  const seed = opts.seed ?? 0;
  const inputs = inputsFromJson(g, opts.inputs ?? {}, '(runGraph inputs)', seed);
  const params = initParams(g, seed);
  try {
    const outs = opts.compiled === false ? interpret(g, inputs, params) : compileProgram(g, { log: () => {} }).run(inputs, params);
    const json: Record<string, NestedArray> = {};
    for (const [k, t] of Object.entries(outs)) {
      json[k] = tensorToJson(t) as NestedArray;
      t.dispose();
    }
    return json;
  } finally {
    tf.dispose([...Object.values(inputs), ...Object.values(params)]);
  }
}

/** What `train` returns: the run's metrics, evaluation and checkpoint path. */
export type TrainSummary = Omit<TrainResult, 'params'>;

export interface TrainPipelineOptions extends TrainOptions {
  /** Overrides the pipeline's seed. */
  seed?: number;
  /** Overrides total_steps (env steps over all envs). */
  steps?: number;
}

/**
 * Trains a pipeline (a `PipelineConfig` or a pipeline file) into `outDir`: metrics.jsonl,
 * metrics.csv, learning-curve.svg and checkpoint.json, then the pipeline's evaluation.
 * `onMetrics` receives the metrics row of every iteration; `onProgress` a progress summary.
 * Call `initBackend` first to choose the backend.
 */
export async function train(pipeline: PipelineConfig | string, opts: TrainPipelineOptions): Promise<TrainSummary> {
  const cfg = typeof pipeline === 'string' ? loadPipeline(pipeline) : { ...pipeline };
  if (opts.seed !== undefined) cfg.seed = opts.seed;
  if (opts.steps !== undefined) cfg.total_steps = opts.steps;
  const result = await trainAsync(cfg, opts);
  // The final params are tensors of the backend; they are in the checkpoint file.
  const { params, ...summary } = result;
  tf.dispose(Object.values(params));
  return summary;
}

export interface EvaluateOptions {
  /** Episodes to play (default: the pipeline's `eval.episodes`, or 10 when that is 0). */
  episodes?: number;
  /** Seed of the episodes (default: the run's seed, which reproduces the run's final evaluation). */
  seed?: number;
  /** `true`: act with `action_mode`; `false`: sample actions. Default: the pipeline's `eval.deterministic` (true unless it says otherwise, as in Stable-Baselines3). */
  deterministic?: boolean;
  /** The pipeline file, where the checkpoint does not record it or it has moved. */
  pipeline?: string;
  /** Folders the pipeline's graphs may be read from besides the defaults (the CLI's `--allow-path`). */
  allow?: string[];
}

/**
 * Plays episodes with a trained policy, `target` being a run folder (its checkpoint.json, or
 * `RUN/best`) or a checkpoint file, as `loom eval` does, and returns each episode's return.
 * For a MuJoCo run, `await loadHostEnv(name)` first.
 */
export function evaluate(target: string, opts: EvaluateOptions = {}): number[] {
  const policy = openPolicy(target, { pipeline: opts.pipeline, allow: opts.allow });
  return evaluatePolicy(policy, {
    episodes: opts.episodes ?? (policy.cfg.eval.episodes || 10),
    seed: opts.seed ?? policy.cfg.seed,
    deterministic: opts.deterministic ?? policy.cfg.eval.deterministic,
  });
}

/** What `trainProgram` returns: the run's metrics rows, evaluation and checkpoint path. */
export type ProgramSummary = Omit<ProgramTrainResult, 'state'>;

/**
 * Trains a program pipeline (a `ProgramConfig` or a program file) into `outDir`: metrics.jsonl,
 * metrics.csv, checkpoint.json, run.json, then its evaluate graph's outputs. `onMetrics` receives
 * the metrics row of every iteration. Call `initBackend` first to choose the backend.
 */
export async function trainProgram(program: ProgramConfig | string, opts: ProgramTrainOptions): Promise<ProgramSummary> {
  const cfg = typeof program === 'string' ? loadProgram(program) : { ...program };
  const { state, ...summary } = await runProgram(cfg, opts);
  // The final state tensors are in the checkpoint file.
  tf.dispose(Object.values(state));
  return summary;
}

/** What `trainProgramSeeds` returns for each seed: its run's metrics rows, evaluation, checkpoint path and folder. */
export type SeedSummary = Omit<SeedRunResult, 'state'>;

/**
 * Trains a program pipeline for several seeds (`seeds`), each into `outDir/seed-<s>` with the files a
 * single-seed run writes. By default (`mode: 'vmap'`) the iteration graph is vmapped over the seeds
 * and runs once per iteration for all of them; `mode: 'loop'` runs them one after another.
 * `onMetrics` receives every row with its seed.
 */
export async function trainProgramSeeds(program: ProgramConfig | string, opts: ProgramSeedsOptions): Promise<SeedSummary[]> {
  const cfg = typeof program === 'string' ? loadProgram(program) : { ...program };
  const runs = await runProgramSeeds(cfg, opts);
  return runs.map(({ state, ...summary }) => {
    // The final state tensors are in each seed's checkpoint file.
    tf.dispose(Object.values(state));
    return summary;
  });
}
