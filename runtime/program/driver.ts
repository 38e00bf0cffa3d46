/**
 * The program driver: runs a program pipeline (runtime/program/config.ts) without knowing which
 * algorithm it is. It makes the state with the init graph, runs the iteration graph until the
 * env_steps it reports reach total_steps, logs every metric the graph outputs, checkpoints the
 * state tensors, stops on non-finite state, and runs the evaluate graph at the end. All
 * randomness is graph code from the init key [0, seed], so a seed reproduces a run and a
 * checkpoint resumes it bit-identically on the same backend.
 */
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../../compiler/errors.ts';
import { displayPath } from '../../compiler/frontend/files.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { foldIn, seedKey, toInt32 } from '../../compiler/ops/threefry.ts';
import { ensureDir, outputPath, removeStaleTemps, writeFileAtomic } from '../fs.ts';
import { initParams, type TensorMap } from '../interpreter.ts';
import { loadGroup, matchCheckpoint, readChecksummed, saveGroup, validateBody, writeChecksummed, type SavedTensor } from '../pipeline/checkpoint.ts';
import { parseOverride } from '../pipeline/config.ts';
import { defaultExecutor, makeProgram, type Executor, type Program } from '../pipeline/program.ts';
import type { ProgressInfo } from '../pipeline/progress.ts';
import { checkRunFolder, endRecord, removeCheckpoint, RUN_FILE, startRecord, writeRunRecord, type Invocation } from '../pipeline/run-record.ts';
import { ENV_STEPS, EPISODES_INPUT, KEY_INPUT, loadProgramGraphs, outputAt, TOTAL_STEPS_INPUT, type ProgramConfig, type ProgramGraphs } from './config.ts';
import { metricValue, PROGRAM_METRICS_FILES, ProgramMetricsLog, type MetricRow } from './metrics.ts';

export const CHECKPOINT_FILE = 'checkpoint.json';
export const EVAL_FILE = 'eval.json';

export interface ProgramTrainOptions {
  outDir: string;
  resume?: boolean;
  /** Start over in a folder that holds a finished run or a checkpoint, or resume with another configuration. */
  force?: boolean;
  /** For run.json: the `--set` overrides the program was loaded with, and the command line. */
  overrides?: readonly string[];
  invocation?: Invocation;
  /** Stop (with a checkpoint) after this many iterations of this invocation. */
  maxIterations?: number;
  /** Checked between iterations; when true the run saves a checkpoint and returns. */
  shouldStop?: () => boolean;
  onProgress?: (p: ProgressInfo) => void;
  onStage?: (text: string) => void;
  /** Receives the metrics row of every iteration, logged to metrics.jsonl or not. */
  onMetrics?: (row: MetricRow) => void;
  /** The compiled executor (default, or LOOM_EXECUTOR) or the reference interpreter. */
  executor?: Executor;
  backend?: string;
  /** One-line notes for the user (stderr in the CLI). */
  log?: (line: string) => void;
}

export interface ProgramTrainResult {
  iterations: number;
  globalStep: number;
  stopped: boolean;
  metrics: readonly MetricRow[];
  /** The evaluate graph's outputs at the end (null values: NaN), or null when there was no evaluation. */
  eval: Record<string, number | null> | null;
  checkpoint: string;
  /** The final state tensors, owned by the caller. */
  state: TensorMap;
}

export interface ProgramCheckpointBody {
  format: 'loom-program-checkpoint';
  version: 1;
  /** The program's name (the field is called as in pipeline checkpoints, so both are matched alike). */
  pipeline: string;
  backend: string;
  iteration: number;
  global_step: number;
  tensors: { state: Record<string, SavedTensor> };
  host: { seed: number };
}

/** The key the init graph gets: jax.random.PRNGKey(seed). */
export function initKey(seed: number): [number, number] {
  return seedKey(seed);
}

/** The key the evaluate graph gets: jax.random.fold_in(PRNGKey(seed), 1), apart from the init key. */
export function evalKey(seed: number): [number, number] {
  return foldIn(seedKey(seed), 1);
}

const keyTensor = (k: [number, number]) => tf.tensor(toInt32(k), [2], 'int32');
const disposeMap = (m: TensorMap) => Object.values(m).forEach((t) => t.dispose());

/** Reads the checkpoint at `path` and checks it against the program's state; errors name the file. */
export function readProgramCheckpoint(path: string, cfg: ProgramConfig, graphs: Pick<ProgramGraphs, 'state'>): ProgramCheckpointBody {
  const body = readChecksummed(path);
  validateBody<ProgramCheckpointBody>(body, path, 'program-checkpoint.schema.json');
  matchCheckpoint(body, { pipeline: cfg.program, tensors: { state: graphs.state }, hostPresent: {}, hostLengths: {} }, path, displayPath(cfg.file));
  return body;
}

/**
 * The scalar inputs a graph declares beyond state: its key, hyper entries, total_steps and
 * eval.episodes, each as the dtype the input declares. Made once per run (and by bench/train.ts).
 */
export function scalarInputs(g: IRGraph, cfg: ProgramConfig, state: Readonly<Record<string, unknown>>, key: [number, number] | null): TensorMap {
  const out: TensorMap = {};
  for (const i of g.inputs) {
    if (i.name === KEY_INPUT && key !== null) out[i.name] = keyTensor(key);
    else if (Object.hasOwn(state, i.name)) continue;
    else {
      const v = Object.hasOwn(cfg.hyper, i.name) ? cfg.hyper[i.name]! : i.name === TOTAL_STEPS_INPUT ? cfg.total_steps : i.name === EPISODES_INPUT ? cfg.eval.episodes : NaN;
      out[i.name] = tf.scalar(v, i.type.dtype);
    }
  }
  return out;
}

/** The non-finite float32 state tensor with the first name in order, or null. */
async function nonFinite(state: TensorMap): Promise<string | null> {
  const names = Object.keys(state).filter((k) => state[k]!.dtype === 'float32');
  const flags = tf.tidy(() => names.map((k) => tf.logicalNot(tf.all(tf.isFinite(state[k]!)))));
  try {
    const bad = await Promise.all(flags.map((f) => f.data()));
    const i = bad.findIndex((b) => b[0] !== 0);
    return i < 0 ? null : names[i]!;
  } finally {
    tf.dispose(flags);
  }
}

async function readScalar(t: tf.Tensor): Promise<number> {
  return (await t.data())[0]!;
}

/** Runs (or resumes) a program pipeline to total_steps, or until maxIterations / shouldStop. */
export async function trainProgram(cfg: ProgramConfig, opts: ProgramTrainOptions): Promise<ProgramTrainResult> {
  // Before compiling anything, so an output folder that cannot be written fails at once.
  ensureDir(opts.outDir);
  removeStaleTemps(opts.outDir, [CHECKPOINT_FILE, EVAL_FILE, RUN_FILE, ...PROGRAM_METRICS_FILES]);
  checkRunFolder(opts.outDir, cfg, opts);
  const graphs = loadProgramGraphs(cfg, (opts.overrides ?? []).map(parseOverride));
  const executor = opts.executor ?? defaultExecutor();
  opts.onStage?.(`compiling ${graphs.evaluate ? 3 : 2} graphs`);
  const ckpt = outputPath(opts.outDir, CHECKPOINT_FILE);
  const backend = opts.backend ?? tf.getBackend();
  const iterate: Program = makeProgram(graphs.iteration, executor);
  const iterInputs = scalarInputs(graphs.iteration, cfg, graphs.state, null);

  let state: TensorMap = {};
  let iteration = 0;
  let globalStep = 0;
  let lastSaved: number | null = null;
  // Every exit from here on disposes the state and the scalar inputs; the result takes the state out.
  try {
    if (opts.resume) {
      const body = readProgramCheckpoint(ckpt, cfg, graphs);
      state = loadGroup(body.tensors.state);
      iteration = body.iteration;
      globalStep = body.global_step;
      lastSaved = iteration;
    } else {
      removeCheckpoint(opts.outDir);
      const params = initParams(graphs.init, cfg.seed);
      const inputs = scalarInputs(graphs.init, cfg, {}, initKey(cfg.seed));
      try {
        const made = await makeProgram(graphs.init, executor).runAsync(inputs, params);
        // Output order is the init graph's, whatever order the executor returns.
        state = Object.fromEntries(Object.keys(graphs.state).map((k) => [k, made[k]!]));
      } finally {
        disposeMap(inputs);
        disposeMap(params);
      }
      const bad = await nonFinite(state);
      if (bad !== null)
        throw new LoomError({ code: 'E_NUMERIC', message: `the init graph made state tensor "${bad}" with a non-finite value (NaN or Infinity)`, ...outputAt(graphs.init, bad), expected: 'finite values', hint: 'check the init graph and its hyper inputs' });
    }

    const columns = ['iteration', 'global_step', ...graphs.metrics, 'steps_per_sec'];
    const log = new ProgramMetricsLog(opts.outDir, opts.resume ? iteration : null, columns);
    if (log.dropped) opts.log?.(log.dropped + '\n');
    const save = async () => {
      await Promise.all(Object.values(state).map((t) => t.data()));
      const body: ProgramCheckpointBody = { format: 'loom-program-checkpoint', version: 1, pipeline: cfg.program, backend, iteration, global_step: globalStep, tensors: { state: saveGroup(state) }, host: { seed: cfg.seed } };
      writeChecksummed(ckpt, body);
      lastSaved = iteration;
    };
    const record = startRecord(cfg, { backend, overrides: opts.overrides, invocation: opts.invocation, ...(opts.resume ? { resumedFrom: { iteration, global_step: globalStep } } : {}) });
    writeRunRecord(opts.outDir, record);
    let done = 0;
    let stopped = false;
    let iterations = 0;
    try {
      while (globalStep < cfg.total_steps) {
        if (opts.shouldStop?.() || (opts.maxIterations !== undefined && done >= opts.maxIterations)) {
          stopped = true;
          break;
        }
        const t0 = performance.now();
        const out = await iterate.runAsync({ ...state, ...iterInputs }, {});
        const next: TensorMap = {};
        const row: MetricRow = { iteration: iteration + 1, global_step: 0 };
        try {
          for (const k of Object.keys(graphs.state)) next[k] = out[k]!;
          for (const m of graphs.metrics) row[m] = await readScalar(out[m]!);
        } finally {
          for (const m of graphs.metrics) out[m]!.dispose();
        }
        const bad = await nonFinite(next);
        const steps = row[ENV_STEPS] as number;
        const stepsOk = Number.isSafeInteger(steps) && steps > 0;
        if (bad !== null || !stepsOk) {
          disposeMap(next);
          if (bad !== null)
            throw new LoomError({
              code: 'E_NUMERIC',
              message: `state tensor "${bad}" became non-finite (NaN or Infinity) in iteration ${iteration + 1}; the run stops${lastSaved === null ? ' (it has no checkpoint yet)' : `, and its checkpoint of iteration ${lastSaved} is kept`}`,
              ...outputAt(graphs.iteration, bad),
              expected: 'finite values in every float32 state tensor',
              found: `a non-finite value in "${bad}" after iteration ${iteration + 1}`,
              hint: 'lower the step size (e.g. --set hyper.lr=...), or resume from the checkpoint with other hyperparameters (--resume --force)',
            });
          throw new LoomError({
            code: 'E_NUMERIC',
            message: `iteration ${iteration + 1} reported ${ENV_STEPS} = ${steps}; the driver counts env steps toward total_steps, so each iteration must take some`,
            ...outputAt(graphs.iteration, ENV_STEPS),
            expected: 'a positive whole number',
            found: String(steps),
          });
        }
        disposeMap(state);
        state = next;
        iteration++;
        done++;
        globalStep += steps;
        for (const m of graphs.metrics) row[m] = metricValue(row[m] as number);
        row.global_step = globalStep;
        row.steps_per_sec = steps / Math.max((performance.now() - t0) / 1000, 1e-9);
        iterations = iteration + Math.ceil((cfg.total_steps - globalStep) / steps);
        opts.onMetrics?.(row);
        const last = globalStep >= cfg.total_steps;
        if (iteration % cfg.logging.every === 0 || last) log.add(row);
        if (cfg.checkpoint.every > 0 && iteration % cfg.checkpoint.every === 0) await save();
        opts.onProgress?.({ iteration, iterations, globalStep, totalSteps: cfg.total_steps, recentReturn: null });
        // Lets signal handlers (Ctrl-C) and timers run between iterations.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await save();
      const finished = globalStep >= cfg.total_steps;
      const evaluation = finished && graphs.evaluate && cfg.eval.episodes > 0 ? await evaluate(graphs.evaluate, cfg, state, executor) : null;
      if (evaluation) writeFileAtomic(outputPath(opts.outDir, EVAL_FILE), JSON.stringify({ iteration, global_step: globalStep, ...evaluation }, null, 2) + '\n');
      writeRunRecord(opts.outDir, endRecord(record, finished ? 'finished' : 'stopped', { iterations: iteration, global_step: globalStep }));
      const result: ProgramTrainResult = { iterations: iteration, globalStep, stopped, metrics: log.all(), eval: evaluation, checkpoint: ckpt, state };
      state = {};
      return result;
    } catch (e) {
      try {
        writeRunRecord(opts.outDir, endRecord(record, 'failed', { iterations: iteration, global_step: globalStep }, e));
      } catch {
        // The error that stopped the run is the one to report.
      }
      throw e;
    }
  } finally {
    disposeMap(state);
    disposeMap(iterInputs);
  }
}

/** Runs the evaluate graph once on the state; its outputs as numbers (NaN as null). */
async function evaluate(g: IRGraph, cfg: ProgramConfig, state: TensorMap, executor: Executor): Promise<Record<string, number | null>> {
  const scalars = scalarInputs(g, cfg, state, evalKey(cfg.seed));
  const inputs: TensorMap = { ...scalars };
  for (const i of g.inputs) if (!(i.name in inputs)) inputs[i.name] = state[i.name]!;
  const out = await makeProgram(g, executor).runAsync(inputs, {});
  try {
    const r: Record<string, number | null> = {};
    for (const k of Object.keys(g.outputs)) r[k] = metricValue(await readScalar(out[k]!));
    return r;
  } finally {
    disposeMap(out);
    disposeMap(scalars);
  }
}
