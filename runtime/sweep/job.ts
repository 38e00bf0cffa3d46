/**
 * One run of a sweep: the base pipeline with the job's overrides, seed and budget, trained in its
 * own folder. The local pool and the Redis workers both run jobs through `runJob`, so a job gives
 * the same run folder and the same numbers wherever it runs.
 */
import { existsSync } from 'node:fs';
import { FILE_LIMITS, tryReadUntrusted } from '../../compiler/frontend/files.ts';
import { outputPath } from '../fs.ts';
import { loadPipeline, parseOverride } from '../pipeline/config.ts';
import { rowsForResume, type IterationMetrics } from '../pipeline/metrics.ts';
import type { ProgressInfo } from '../pipeline/progress.ts';
import { readRunRecord } from '../pipeline/run-record.ts';

/** One run of a sweep: a base pipeline with overrides and a seed, in its own folder under the sweep's output. */
export interface SweepJob {
  /** The sweep's name. */
  sweep: string;
  /** Stable id, e.g. "lr=0.001,ent_coef=0.01/s3"; also the folder, relative: config/s<seed>. */
  id: string;
  /** The configuration's id (without the seed). */
  config: string;
  /** Absolute path of the base pipeline file. */
  pipeline: string;
  /** `--set PATH=VALUE` texts, in order (the seed excluded). */
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
  allow?: readonly string[];
  shouldStop?: () => boolean;
  onProgress?: (p: ProgressInfo) => void;
}

/** The run folder of `job` under `outRoot` (confined to it: the id comes from a sweep file). */
export function jobDir(job: SweepJob, outRoot: string): string {
  return outputPath(outRoot, ...job.dir.split('/'));
}

/** Every metrics row in a run folder's metrics.jsonl (none when it has no such file). */
export function readJobMetrics(dir: string): IterationMetrics[] {
  const file = outputPath(dir, 'metrics.jsonl');
  // A long run's log outgrows the cap on documents; it is bounded as checkpoints are.
  const text = tryReadUntrusted(file, { what: 'metrics log', maxBytes: FILE_LIMITS.checkpoint });
  return text === undefined ? [] : rowsForResume(text, Number.MAX_SAFE_INTEGER, file).rows;
}

/** Runs (or resumes from its checkpoint, or skips when finished) one job in outRoot/job.dir. */
export async function runJob(job: SweepJob, opts: RunJobOptions): Promise<JobResult> {
  const started = Date.now();
  const dir = jobDir(job, opts.outRoot);
  const prior = readRunRecord(dir);
  if (prior?.status === 'finished') {
    const metrics = readJobMetrics(dir);
    return { id: job.id, status: 'skipped', metrics, wallSec: 0, envSteps: metrics.at(-1)?.global_step ?? 0 };
  }
  const overrides = job.overrides.map(parseOverride);
  const cfg = loadPipeline(job.pipeline, { allow: opts.allow, overrides });
  cfg.seed = job.seed;
  if (job.steps !== undefined) cfg.total_steps = job.steps;
  const [{ initBackend }, { trainAsync }] = await Promise.all([import('../backend.ts'), import('../pipeline/driver.ts')]);
  const backend = await initBackend(opts.backend, () => {});
  // A job that was interrupted (a killed worker) continues from its checkpoint when the folder is shared.
  const resume = existsSync(outputPath(dir, 'checkpoint.json'));
  const r = await trainAsync(cfg, { outDir: dir, resume, overrides: overrides.map((o) => o.text), invocation: { command: 'sweep', args: [job.sweep, job.id], flags: {} }, shouldStop: opts.shouldStop, onProgress: opts.onProgress, backend: backend.name });
  Object.values(r.params).forEach((t) => t.dispose());
  // From the file, so a resumed run reports its rows from before the interruption too.
  return { id: job.id, status: r.stopped ? 'stopped' : 'finished', metrics: readJobMetrics(dir), wallSec: (Date.now() - started) / 1000, envSteps: r.globalStep };
}
