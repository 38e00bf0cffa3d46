/**
 * One run of a sweep, as every executor runs it (the local pool's workers, a queue's workers, a
 * test in-process): the base pipeline with the job's overrides, seed and budget, in its own folder
 * under the sweep's output folder. A folder that holds a finished run is skipped, one that holds a
 * checkpoint is resumed, anything else starts afresh; run.json keeps a changed sweep from mixing
 * runs of different configurations in one folder.
 */
import { isLoomError, LoomError } from '../../compiler/errors.ts';
import { FILE_LIMITS, tryReadUntrusted } from '../../compiler/frontend/files.ts';
import { existsSync } from 'node:fs';
import { outputPath } from '../fs.ts';
import { readCheckpoint } from '../pipeline/checkpoint.ts';
import { loadPipeline, parseOverride, withEnv, type PipelineConfig } from '../pipeline/config.ts';
import { trainAsync } from '../pipeline/driver.ts';
import { rowsForResume, type IterationMetrics } from '../pipeline/metrics.ts';
import { evaluatePolicy } from '../pipeline/policy.ts';
import type { ProgressInfo } from '../pipeline/progress.ts';
import { checkRunFolder, type Invocation, type RunRecord } from '../pipeline/run-record.ts';
import * as tf from '@tensorflow/tfjs';

/** One run of a sweep: a base pipeline with overrides and a seed, in its own folder under the sweep's output. */
export interface SweepJob {
  /** Sweep name. */
  sweep: string;
  /** Stable id, e.g. "lr=0.001,ent_coef=0.01/s3" (also the folder, relative: config/s<seed>). */
  id: string;
  /** The configuration's id (without the seed), e.g. "lr=0.001,ent_coef=0.01". */
  config: string;
  /** Absolute path of the base pipeline file. */
  pipeline: string;
  /** --set PATH=VALUE texts, in order (seed excluded). */
  overrides: string[];
  seed: number;
  /** total_steps override (budget). */
  steps?: number;
  /** Run folder relative to the sweep output folder. */
  dir: string;
  /** packageVersion() of whoever planned it. */
  loomVersion: string;
  /** The env as `--env` gives it (a Gymnasium id or a name under graphs/envs). */
  env?: string;
  /**
   * Keep the pipeline's evaluation and report the final one: the run is configured exactly as
   * `loom train PIPELINE --seed S --steps N` configures it, so a folder of either is reused by the
   * other (`loom compare`). Without it, evaluation is off (sweeps).
   */
  evaluate?: boolean;
  /** The command line its run.json records (default: the sweep and the job's id). */
  invocation?: Invocation;
}

export interface JobResult {
  id: string;
  /** skipped: the folder already held a finished run. */
  status: 'finished' | 'stopped' | 'skipped';
  /** Every metrics row of the run (from metrics.jsonl when skipped). */
  metrics: IterationMetrics[];
  wallSec: number;
  envSteps: number;
  /** Mean return of the final deterministic evaluation (jobs with `evaluate`; null without episodes). */
  evalReturn?: number | null;
}

export interface RunJobOptions {
  outRoot: string;
  backend?: string;
  /** Folders given with --allow-path. */
  allow?: readonly string[];
  shouldStop?: () => boolean;
  onProgress?: (p: ProgressInfo) => void;
  onStage?: (text: string) => void;
}

/** The job's run folder: its relative `dir`, confined to the sweep's output folder. */
export function jobDir(job: SweepJob, outRoot: string): string {
  return outputPath(outRoot, ...job.dir.split('/'));
}

/**
 * The pipeline a job runs, built as `loom train` builds it (file, --set, --env, --seed, --steps).
 * Sweeps turn evaluation off: they rank on the training curve, and every run is configured alike.
 */
export function jobConfig(job: SweepJob, allow: readonly string[] = []): PipelineConfig {
  const loaded = loadPipeline(job.pipeline, { allow, overrides: job.overrides.map(parseOverride) });
  const cfg = { ...(job.env === undefined ? loaded : withEnv(loaded, job.env)), seed: job.seed, ...(job.steps !== undefined ? { total_steps: job.steps } : {}) };
  return job.evaluate ? cfg : { ...cfg, eval: { ...cfg.eval, episodes: 0, every: 0 } };
}

/**
 * Resume's check: a finished run or a checkpoint in the job's folder must come from this very
 * configuration (a changed sweep file can give other values the same id); returns its record.
 */
export function checkJobFolder(job: SweepJob, dir: string, cfg: PipelineConfig): RunRecord | null {
  try {
    return checkRunFolder(dir, cfg, { resume: true });
  } catch (e) {
    if (!isLoomError(e) || e.code !== 'E_USAGE') throw e;
    const what = job.invocation?.command === 'compare' ? 'the pipeline or the flags differ from those of this run' : 'the sweep file changed since this run';
    throw new LoomError({ ...e.info, message: `run ${job.id} of ${job.invocation?.command === 'compare' ? 'loom compare' : `sweep ${job.sweep}`}: ${e.info.message.replace(/^--resume: /, '')}`, hint: `${what}; write to another folder with --out, or remove ${dir} to run it again` });
  }
}

/** The metrics rows of a run folder (none when it has no metrics.jsonl), up to `upTo` iterations. */
export function readJobMetrics(dir: string, upTo = Number.MAX_SAFE_INTEGER): IterationMetrics[] {
  const file = outputPath(dir, 'metrics.jsonl');
  // A long run's log outgrows the cap on documents; it is bounded as checkpoints are.
  const text = tryReadUntrusted(file, { what: 'metrics file', maxBytes: FILE_LIMITS.checkpoint });
  return text === undefined ? [] : rowsForResume(text, upTo, file).rows;
}

const meanOf = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/**
 * The result of the finished run in `dir` (recorded by `prior`), as a skipped job. A job with
 * `evaluate` replays the run's final evaluation from its last checkpoint (the one the evaluation
 * used: the same episodes, seed and actions), since run.json does not record it.
 */
export function finishedResult(job: SweepJob, dir: string, cfg: PipelineConfig, prior: RunRecord): JobResult {
  const rows = readJobMetrics(dir, prior.iterations);
  if (rows.length === 0) throw new LoomError({ code: 'E_IO', message: `${dir} holds a finished run without metrics`, file: outputPath(dir, 'metrics.jsonl'), hint: `remove ${dir} to run it again` });
  const wallSec = prior.ended ? (Date.parse(prior.ended) - Date.parse(prior.started)) / 1000 : 0;
  const r: JobResult = { id: job.id, status: 'skipped', metrics: rows, wallSec: Number.isFinite(wallSec) ? wallSec : 0, envSteps: prior.global_step ?? rows[rows.length - 1]!.global_step };
  if (!job.evaluate) return r;
  if (cfg.eval.episodes === 0) return { ...r, evalReturn: null };
  const file = outputPath(dir, 'checkpoint.json');
  const returns = evaluatePolicy({ file, body: readCheckpoint(file, 'policy'), cfg }, { episodes: cfg.eval.episodes, seed: cfg.seed, deterministic: cfg.eval.deterministic });
  return { ...r, evalReturn: meanOf(returns) };
}

/**
 * Runs (or resumes from its checkpoint, or skips when finished) one job in outRoot/job.dir.
 * `cfg`: the configuration jobConfig would build, when the caller has it already.
 */
export async function runJob(job: SweepJob, opts: RunJobOptions, cfg: PipelineConfig = jobConfig(job, opts.allow)): Promise<JobResult> {
  const dir = jobDir(job, opts.outRoot);
  const prior = checkJobFolder(job, dir, cfg);
  if (prior?.status === 'finished') return finishedResult(job, dir, cfg, prior);
  const t0 = performance.now();
  const r = await trainAsync(cfg, {
    outDir: dir,
    resume: existsSync(outputPath(dir, 'checkpoint.json')),
    backend: opts.backend,
    overrides: job.overrides,
    invocation: job.invocation ?? { command: 'sweep', args: [job.sweep, job.id], flags: {} },
    shouldStop: opts.shouldStop,
    onProgress: opts.onProgress,
    onStage: opts.onStage,
  });
  tf.dispose(Object.values(r.params));
  const result: JobResult = { id: job.id, status: r.stopped ? 'stopped' : 'finished', metrics: [...r.metrics], wallSec: (performance.now() - t0) / 1000, envSteps: r.globalStep };
  return job.evaluate && !r.stopped ? { ...result, evalReturn: r.eval?.meanReturn ?? null } : result;
}
