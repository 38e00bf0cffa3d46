/**
 * The program driver: runs a program pipeline (runtime/program/config.ts) without knowing which
 * algorithm it is. It makes the state with the init graph, runs the iteration graph until the
 * env_steps it reports reach total_steps, logs every metric the graph outputs, checkpoints the
 * state tensors, stops on non-finite state, and runs the evaluate graph at the end. All
 * randomness is graph code from the init key [0, seed], so a seed reproduces a run and a
 * checkpoint resumes it bit-identically on the same backend.
 */
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../../compiler/errors.ts';
import { displayPath } from '../../compiler/frontend/files.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { foldIn, seedKey, toInt32 } from '../../compiler/ops/threefry.ts';
import { ensureDir, outputPath, removeStaleTemps, writeFileAtomic } from '../fs.ts';
import { initParams, type TensorMap } from '../interpreter.ts';
import { vmapGraph } from '../jit.ts';
import { loadGroup, matchCheckpoint, readChecksummed, saveGroup, validateBody, writeChecksummed, type SavedTensor } from '../pipeline/checkpoint.ts';
import { parseOverride } from '../pipeline/config.ts';
import { defaultExecutor, makeProgram, type Executor, type Program } from '../pipeline/program.ts';
import type { ProgressInfo } from '../pipeline/progress.ts';
import { checkRunFolder, endRecord, removeCheckpoint, RUN_FILE, startRecord, writeRunRecord, type RunControl } from '../pipeline/run-record.ts';
import { checkSeeds, ENV_STEPS, EPISODES_INPUT, KEY_INPUT, loadProgramGraphs, outputAt, TOTAL_STEPS_INPUT, type ProgramConfig, type ProgramGraphs } from './config.ts';
import { METRICS_FILES, MetricsLog } from '../pipeline/metrics.ts';
import { metricValue, type MetricRow } from './metrics.ts';

export const CHECKPOINT_FILE = 'checkpoint.json';
export const EVAL_FILE = 'eval.json';

export interface ProgramTrainOptions extends RunControl {
  /** Receives the metrics row of every iteration, logged to metrics.jsonl or not, with the seed whose row it is. */
  onMetrics?: (row: MetricRow, seed: number) => void;
  /** The compiled executor (default, or LOOM_EXECUTOR) or the reference interpreter. */
  executor?: Executor;
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

/** Reads the checkpoint at `path` and checks it against the program's state; errors name the file. `purpose` words them. */
export function readProgramCheckpoint(path: string, cfg: ProgramConfig, graphs: Pick<ProgramGraphs, 'state'>, purpose: 'resume' | 'policy' = 'resume'): ProgramCheckpointBody {
  const body = readChecksummed(path, purpose);
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

/**
 * The first seed (lane) with a non-finite float32 state tensor, and that tensor (the first name
 * in order), or null. The state holds `lanes` seeds stacked on a leading axis, or one seed unstacked.
 */
async function nonFinite(state: TensorMap, lanes: number): Promise<{ lane: number; name: string } | null> {
  const names = Object.keys(state).filter((k) => state[k]!.dtype === 'float32');
  const flags = tf.tidy(() => names.map((k) => tf.logicalNot(tf.all(tf.isFinite(tf.reshape(state[k]!, [lanes, state[k]!.size / lanes])), 1))));
  try {
    const bad = await Promise.all(flags.map((f) => f.data()));
    for (let lane = 0; lane < lanes; lane++) {
      const i = bad.findIndex((b) => b[lane] !== 0);
      if (i >= 0) return { lane, name: names[i]! };
    }
    return null;
  } finally {
    tf.dispose(flags);
  }
}

async function readScalar(t: tf.Tensor): Promise<number> {
  return (await t.data())[0]!;
}

/** How a run of several seeds executes: one vmapped program over all of them, or one run after another. */
export type SeedsMode = 'vmap' | 'loop';

export interface ProgramSeedsOptions extends ProgramTrainOptions {
  /** The seeds; each seed's run writes to `outDir/seed-<seed>` what a single-seed run writes. */
  seeds: readonly number[];
  /** 'vmap' (default): the iteration graph vmapped over the seeds, run once per iteration; 'loop': the seeds one after another (the reference). */
  mode?: SeedsMode;
}

/** One seed's run within a run of several seeds. */
export interface SeedRunResult extends ProgramTrainResult {
  seed: number;
  outDir: string;
}

/** The folder of one seed's run inside the folder of a run of several seeds. */
export function seedDir(outDir: string, seed: number): string {
  return outputPath(outDir, `seed-${seed}`);
}

/** Runs (or resumes) a program pipeline to total_steps, or until maxIterations / shouldStop. */
export async function trainProgram(cfg: ProgramConfig, opts: ProgramTrainOptions): Promise<ProgramTrainResult> {
  const [r] = await runSeeds(cfg, [cfg.seed], [opts.outDir], { ...opts, batched: false, named: false });
  const { seed: _s, outDir: _o, ...result } = r!;
  return result;
}

/**
 * Runs (or resumes) a program pipeline for several seeds: seed s starts from key [0, s] and params
 * initialised from s, and writes into outDir/seed-<s> exactly the files a single-seed run writes,
 * its checkpoint included (so it can be resumed alone, or with the others). By default the
 * iteration graph is vmapped over the seeds (state batched, hyperparameters shared) and runs once
 * per iteration for all of them; mode 'loop' runs the seeds one after another.
 */
export async function trainProgramSeeds(cfg: ProgramConfig, opts: ProgramSeedsOptions): Promise<SeedRunResult[]> {
  checkSeeds(opts.seeds);
  const dirs = opts.seeds.map((s) => seedDir(opts.outDir, s));
  if ((opts.mode ?? 'vmap') === 'vmap') return runSeeds(cfg, opts.seeds, dirs, { ...opts, batched: true, named: true });
  const results: SeedRunResult[] = [];
  try {
    let before = 0;
    for (const [k, seed] of opts.seeds.entries()) {
      // Ctrl-C stops the seeds not yet run as well; --max-iterations applies to each seed.
      if (k > 0 && opts.shouldStop?.()) break;
      // A seed the interrupted run never reached has nothing to resume: it starts.
      const resume = Boolean(opts.resume) && (existsSync(outputPath(dirs[k]!, CHECKPOINT_FILE)) || existsSync(outputPath(dirs[k]!, RUN_FILE)));
      const total = cfg.total_steps * opts.seeds.length;
      const [r] = await runSeeds({ ...cfg, seed }, [seed], [dirs[k]!], {
        ...opts,
        resume,
        batched: false,
        named: true,
        ...(opts.onProgress ? { onProgress: (p: ProgressInfo) => opts.onProgress!({ ...p, globalStep: before + p.globalStep, totalSteps: total }) } : {}),
      });
      results.push(r!);
      before += r!.globalStep;
    }
    return results;
  } catch (e) {
    for (const r of results) disposeMap(r.state);
    throw e;
  }
}

/** Each seed's state: slices of the stacked state (fresh tensors), or the one seed's state itself. */
function laneStates(state: TensorMap, lanes: number, batched: boolean): TensorMap[] {
  if (!batched) return [state];
  const per: TensorMap[] = Array.from({ length: lanes }, () => ({}));
  for (const [k, t] of Object.entries(state)) tf.unstack(t).forEach((s, i) => (per[i]![k] = s));
  return per;
}

/** The seeds' states stacked on a new leading axis, in the order of the state tensors. */
function stackLanes(per: readonly TensorMap[], names: readonly string[]): TensorMap {
  return Object.fromEntries(names.map((k) => [k, tf.stack(per.map((m) => m[k]!))]));
}

/**
 * The iteration graph batched over `lanes` seeds: every state input on a new leading axis, the
 * hyperparameters and total_steps shared. Its metrics come out as [lanes] vectors.
 */
function vmappedIteration(graphs: ProgramGraphs, lanes: number, log?: (line: string) => void): IRGraph {
  const axes = Object.fromEntries(graphs.iteration.inputs.map((i) => [i.name, Object.hasOwn(graphs.state, i.name) ? (0 as const) : null]));
  const { graph, fallbacks } = vmapGraph(graphs.iteration, { size: lanes, axes });
  if (fallbacks.length)
    log?.(`vmap: ${fallbacks.length} node${fallbacks.length > 1 ? 's' : ''} of the iteration graph run once per seed for want of a batching rule: ${fallbacks.map((f) => `${f.node} (${f.op})`).join(', ')}\n`);
  return graph;
}

interface Lane {
  seed: number;
  cfg: ProgramConfig;
  outDir: string;
  ckpt: string;
  lastSaved: number | null;
}

/**
 * The driver's loop over one or several seeds. `batched`: the seeds' state is stacked and the
 * iteration graph vmapped over it; otherwise there is exactly one seed. `named`: the run is one of
 * several seeds, so errors name the seed.
 */
async function runSeeds(cfg: ProgramConfig, seeds: readonly number[], dirs: readonly string[], opts: ProgramTrainOptions & { batched: boolean; named: boolean }): Promise<SeedRunResult[]> {
  const K = seeds.length;
  const { batched } = opts;
  const lanes: Lane[] = seeds.map((seed, k) => ({ seed, cfg: { ...cfg, seed }, outDir: dirs[k]!, ckpt: outputPath(dirs[k]!, CHECKPOINT_FILE), lastSaved: null }));
  const tag = (k: number) => (opts.named ? `seed ${seeds[k]}: ` : '');
  // Before compiling anything, so an output folder that cannot be written fails at once.
  for (const l of lanes) {
    ensureDir(l.outDir);
    removeStaleTemps(l.outDir, [CHECKPOINT_FILE, EVAL_FILE, RUN_FILE, ...METRICS_FILES]);
    checkRunFolder(l.outDir, l.cfg, opts);
  }
  const graphs = loadProgramGraphs(cfg, (opts.overrides ?? []).map(parseOverride));
  const executor = opts.executor ?? defaultExecutor();
  opts.onStage?.(`compiling ${graphs.evaluate ? 3 : 2} graphs${batched ? ` (the iteration vmapped over ${K} seeds)` : ''}`);
  const backend = opts.backend ?? tf.getBackend();
  const iterate: Program = makeProgram(batched ? vmappedIteration(graphs, K, opts.log) : graphs.iteration, executor);
  const iterInputs = scalarInputs(graphs.iteration, cfg, graphs.state, null);
  const names = Object.keys(graphs.state);

  let state: TensorMap = {};
  let iteration = 0;
  let globalStep = 0;
  // Every exit from here on disposes the state and the scalar inputs; the result takes the state out.
  try {
    if (opts.resume) {
      const bodies = lanes.map((l) => readProgramCheckpoint(l.ckpt, l.cfg, graphs));
      const off = bodies.findIndex((b) => b.iteration !== bodies[0]!.iteration || b.global_step !== bodies[0]!.global_step);
      if (off >= 0)
        throw new LoomError({
          code: 'E_USAGE',
          message: `--resume: the seeds' checkpoints are at different points, so they cannot continue as one program`,
          file: lanes[off]!.ckpt,
          expected: `iteration ${bodies[0]!.iteration} (${bodies[0]!.global_step} env steps), as seed ${seeds[0]}'s checkpoint`,
          found: `iteration ${bodies[off]!.iteration} (${bodies[off]!.global_step} env steps) in seed ${seeds[off]}'s checkpoint`,
          hint: 'resume them one after another with --seeds-mode loop, or each alone with --seed S --out DIR/seed-S',
        });
      const groups = bodies.map((b) => loadGroup(b.tensors.state));
      state = batched ? stackLanes(groups, names) : groups[0]!;
      if (batched) groups.forEach(disposeMap);
      iteration = bodies[0]!.iteration;
      globalStep = bodies[0]!.global_step;
      for (const l of lanes) l.lastSaved = iteration;
    } else {
      for (const l of lanes) removeCheckpoint(l.outDir);
      const init = makeProgram(graphs.init, executor);
      const made: TensorMap[] = [];
      try {
        for (const l of lanes) {
          const params = initParams(graphs.init, l.seed);
          const inputs = scalarInputs(graphs.init, cfg, {}, initKey(l.seed));
          try {
            const out = await init.runAsync(inputs, params);
            // Output order is the init graph's, whatever order the executor returns.
            made.push(Object.fromEntries(names.map((k) => [k, out[k]!])));
          } finally {
            disposeMap(inputs);
            disposeMap(params);
          }
        }
        state = batched ? stackLanes(made, names) : made.pop()!;
      } finally {
        made.forEach(disposeMap);
      }
      const bad = await nonFinite(state, K);
      if (bad !== null)
        throw new LoomError({ code: 'E_NUMERIC', message: `${tag(bad.lane)}the init graph made state tensor "${bad.name}" with a non-finite value (NaN or Infinity)`, ...outputAt(graphs.init, bad.name), expected: 'finite values', hint: 'check the init graph and its hyper inputs' });
    }

    const columns = ['iteration', 'global_step', ...graphs.metrics, 'steps_per_sec'];
    const logs = lanes.map((l) => new MetricsLog<MetricRow>(l.outDir, opts.resume ? iteration : null, `${cfg.program} (seed ${l.seed})`, columns, cfg.logging.tensorboard ?? true));
    for (const [k, log] of logs.entries()) if (log.dropped) opts.log?.(tag(k) + log.dropped + '\n');
    const save = async () => {
      const per = laneStates(state, K, batched);
      try {
        for (const [k, l] of lanes.entries()) {
          await Promise.all(Object.values(per[k]!).map((t) => t.data()));
          const body: ProgramCheckpointBody = { format: 'loom-program-checkpoint', version: 1, pipeline: cfg.program, backend, iteration, global_step: globalStep, tensors: { state: saveGroup(per[k]!) }, host: { seed: l.seed } };
          writeChecksummed(l.ckpt, body);
          l.lastSaved = iteration;
        }
      } finally {
        if (batched) per.forEach(disposeMap);
      }
    };
    const records = lanes.map((l) => startRecord(l.cfg, { backend, overrides: opts.overrides, invocation: opts.invocation, ...(opts.resume ? { resumedFrom: { iteration, global_step: globalStep } } : {}) }));
    lanes.forEach((l, k) => writeRunRecord(l.outDir, records[k]!));
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
        // Per metric, one value per seed: the vmapped graph's metrics are [K] vectors.
        const values: Record<string, ArrayLike<number>> = {};
        try {
          for (const k of names) next[k] = out[k]!;
          for (const m of graphs.metrics) values[m] = (await out[m]!.data()) as Float32Array;
        } finally {
          for (const m of graphs.metrics) out[m]!.dispose();
        }
        const bad = await nonFinite(next, K);
        const steps = Array.from(values[ENV_STEPS]!);
        const badSteps = steps.findIndex((s) => !(Number.isSafeInteger(s) && s > 0));
        const uneven = steps.findIndex((s) => s !== steps[0]);
        if (bad !== null || badSteps >= 0 || uneven >= 0) {
          disposeMap(next);
          const kept = lanes[0]!.lastSaved;
          if (bad !== null)
            throw new LoomError({
              code: 'E_NUMERIC',
              message: `${tag(bad.lane)}state tensor "${bad.name}" became non-finite (NaN or Infinity) in iteration ${iteration + 1}; the run ${K > 1 ? `of all ${K} seeds stops` : 'stops'}${kept === null ? ` (it has no checkpoint yet)` : K > 1 ? `, and their checkpoints of iteration ${kept} are kept` : `, and its checkpoint of iteration ${kept} is kept`}`,
              ...outputAt(graphs.iteration, bad.name),
              expected: 'finite values in every float32 state tensor',
              found: `a non-finite value in "${bad.name}"${opts.named ? ` of seed ${seeds[bad.lane]}` : ''} after iteration ${iteration + 1}`,
              hint: 'lower the step size (e.g. --set hyper.lr=...), or resume from the checkpoint with other hyperparameters (--resume --force)',
            });
          if (badSteps >= 0)
            throw new LoomError({
              code: 'E_NUMERIC',
              message: `${tag(badSteps)}iteration ${iteration + 1} reported ${ENV_STEPS} = ${steps[badSteps]}; the driver counts env steps toward total_steps, so each iteration must take some`,
              ...outputAt(graphs.iteration, ENV_STEPS),
              expected: 'a positive whole number',
              found: String(steps[badSteps]),
            });
          throw new LoomError({
            code: 'E_NUMERIC',
            message: `iteration ${iteration + 1} reported ${ENV_STEPS} = ${steps[0]} for seed ${seeds[0]} but ${steps[uneven]} for seed ${seeds[uneven]}; seeds vmapped into one program take their iterations together, so their env steps must agree`,
            ...outputAt(graphs.iteration, ENV_STEPS),
            expected: `${steps[0]} for every seed`,
            found: `${steps[uneven]} for seed ${seeds[uneven]}`,
            hint: 'run the seeds one after another with --seeds-mode loop',
          });
        }
        disposeMap(state);
        state = next;
        iteration++;
        done++;
        globalStep += steps[0]!;
        const sec = Math.max((performance.now() - t0) / 1000, 1e-9);
        iterations = iteration + Math.ceil((cfg.total_steps - globalStep) / steps[0]!);
        const last = globalStep >= cfg.total_steps;
        for (const [k, l] of lanes.entries()) {
          const row: MetricRow = { iteration, global_step: globalStep };
          for (const m of graphs.metrics) row[m] = metricValue(values[m]![k]!);
          // Each seed's own env steps over the iteration's time: a vmapped seed's share of the program.
          row.steps_per_sec = steps[k]! / sec;
          opts.onMetrics?.(row, l.seed);
          if (iteration % cfg.logging.every === 0 || last) logs[k]!.add(row);
        }
        if (cfg.checkpoint.every > 0 && iteration % cfg.checkpoint.every === 0) await save();
        // Aggregate over the seeds: the bar's env steps/s is the program's.
        opts.onProgress?.({ iteration, iterations, globalStep: globalStep * K, totalSteps: cfg.total_steps * K, recentReturn: null });
        // Lets signal handlers (Ctrl-C) and timers run between iterations.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await save();
      // Once, at the end, as a pipeline run draws it: rendering takes tens of milliseconds.
      for (const log of logs) await log.plot();
      const finished = globalStep >= cfg.total_steps;
      const evaluations: (Record<string, number | null> | null)[] = lanes.map(() => null);
      if (finished && graphs.evaluate && cfg.eval.episodes > 0) {
        const evalProgram = makeProgram(graphs.evaluate, executor);
        const per = laneStates(state, K, batched);
        try {
          for (const [k, l] of lanes.entries()) {
            const e = await evaluate(evalProgram, graphs.evaluate, l.cfg, per[k]!);
            writeFileAtomic(outputPath(l.outDir, EVAL_FILE), JSON.stringify({ iteration, global_step: globalStep, ...e }, null, 2) + '\n');
            evaluations[k] = e;
          }
        } finally {
          if (batched) per.forEach(disposeMap);
        }
      }
      lanes.forEach((l, k) => writeRunRecord(l.outDir, endRecord(records[k]!, finished ? 'finished' : 'stopped', { iterations: iteration, global_step: globalStep })));
      const finalStates = laneStates(state, K, batched);
      if (batched) disposeMap(state);
      state = {};
      return lanes.map((l, k) => ({ seed: l.seed, outDir: l.outDir, iterations: iteration, globalStep, stopped, metrics: logs[k]!.all(), eval: evaluations[k]!, checkpoint: l.ckpt, state: finalStates[k]! }));
    } catch (e) {
      for (const [k, l] of lanes.entries()) {
        try {
          writeRunRecord(l.outDir, endRecord(records[k]!, 'failed', { iterations: iteration, global_step: globalStep }, e));
        } catch {
          // The error that stopped the run is the one to report.
        }
      }
      throw e;
    }
  } finally {
    disposeMap(state);
    disposeMap(iterInputs);
  }
}

/**
 * Runs the evaluate graph once on one seed's state, with the evaluation key of cfg.seed and
 * cfg.eval.episodes; its outputs as numbers (NaN as null). The end of a run and `loom eval` both use it.
 */
export async function evaluate(p: Program, g: IRGraph, cfg: ProgramConfig, state: TensorMap): Promise<Record<string, number | null>> {
  const scalars = scalarInputs(g, cfg, state, evalKey(cfg.seed));
  const inputs: TensorMap = { ...scalars };
  for (const i of g.inputs) if (!(i.name in inputs)) inputs[i.name] = state[i.name]!;
  const out = await p.runAsync(inputs, {});
  try {
    const r: Record<string, number | null> = {};
    for (const k of Object.keys(g.outputs)) r[k] = metricValue(await readScalar(out[k]!));
    return r;
  } finally {
    disposeMap(out);
    disposeMap(scalars);
  }
}
