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
import { loadPipeline, parseOverride, type PipelineConfig } from '../pipeline/config.ts';
import { trainAsync } from '../pipeline/driver.ts';
import { rowsForResume, type IterationMetrics } from '../pipeline/metrics.ts';
import type { ProgressInfo } from '../pipeline/progress.ts';
import { checkRunFolder, type RunRecord } from '../pipeline/run-record.ts';
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
}

export interface JobResult {
  id: string;
  /** skipped: the folder already held a finished run. */
  status: 'finished' | 'stopped' | 'skipped';
  /** Every metrics row of the run (from metrics.jsonl when skipped). */
  metrics: IterationMetrics[];
  wallSec: number;
  envSteps: number;
}

export interface RunJobOptions {
  outRoot: string;
  backend?: string;
  /** Folders given with --allow-path. */
  allow?: readonly string[];
  shouldStop?: () => boolean;
  onProgress?: (p: ProgressInfo) => void;
}

/** The job's run folder: its relative `dir`, confined to the sweep's output folder. */
export function jobDir(job: SweepJob, outRoot: string): string {
  return outputPath(outRoot, ...job.dir.split('/'));
}

/**
 * The pipeline a job runs. As in `loom compare`, evaluation is off: sweeps rank on the training
 * curve, and every run of a sweep is configured alike.
 */
export function jobConfig(job: SweepJob, allow: readonly string[] = []): PipelineConfig {
  const cfg = loadPipeline(job.pipeline, { allow, overrides: job.overrides.map(parseOverride) });
  return { ...cfg, seed: job.seed, ...(job.steps !== undefined ? { total_steps: job.steps } : {}), eval: { ...cfg.eval, episodes: 0, every: 0 } };
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
    throw new LoomError({ ...e.info, message: `run ${job.id} of sweep ${job.sweep}: ${e.info.message.replace(/^--resume: /, '')}`, hint: `the sweep file changed since this run; write to another folder with --out, or remove ${dir} to run it again` });
  }
}

/** The metrics rows of a run folder (none when it has no metrics.jsonl), up to `upTo` iterations. */
export function readJobMetrics(dir: string, upTo = Number.MAX_SAFE_INTEGER): IterationMetrics[] {
  const file = outputPath(dir, 'metrics.jsonl');
  // A long run's log outgrows the cap on documents; it is bounded as checkpoints are.
  const text = tryReadUntrusted(file, { what: 'metrics file', maxBytes: FILE_LIMITS.checkpoint });
  return text === undefined ? [] : rowsForResume(text, upTo, file).rows;
}

/** Runs (or resumes from its checkpoint, or skips when finished) one job in outRoot/job.dir. */
export async function runJob(job: SweepJob, opts: RunJobOptions): Promise<JobResult> {
  const dir = jobDir(job, opts.outRoot);
  const cfg = jobConfig(job, opts.allow);
  const prior = checkJobFolder(job, dir, cfg);
  if (prior?.status === 'finished') {
    const rows = readJobMetrics(dir, prior.iterations);
    if (rows.length === 0) throw new LoomError({ code: 'E_IO', message: `${dir} holds a finished run without metrics`, file: outputPath(dir, 'metrics.jsonl'), hint: `remove ${dir} to run it again` });
    const wallSec = prior.ended ? (Date.parse(prior.ended) - Date.parse(prior.started)) / 1000 : 0;
    return { id: job.id, status: 'skipped', metrics: rows, wallSec: Number.isFinite(wallSec) ? wallSec : 0, envSteps: prior.global_step ?? rows[rows.length - 1]!.global_step };
  }
  const t0 = performance.now();
  const r = await trainAsync(cfg, {
    outDir: dir,
    resume: existsSync(outputPath(dir, 'checkpoint.json')),
    backend: opts.backend,
    overrides: job.overrides,
    invocation: { command: 'sweep', args: [job.sweep, job.id], flags: {} },
    shouldStop: opts.shouldStop,
    onProgress: opts.onProgress,
  });
  tf.dispose(Object.values(r.params));
  return { id: job.id, status: r.stopped ? 'stopped' : 'finished', metrics: [...r.metrics], wallSec: (performance.now() - t0) / 1000, envSteps: r.globalStep };
}
