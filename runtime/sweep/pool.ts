/**
 * The local executor of sweeps: a pool of worker processes on this machine (default: one per
 * core), each running one job at a time through `runJob`. Processes rather than threads, because
 * each run owns a TensorFlow.js engine. Stopping (Ctrl-C) stops handing out jobs and asks every
 * running job to stop after its iteration with a checkpoint, so running the sweep again resumes it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LoomError } from '../../compiler/errors.ts';
import type { JobResult, SweepJob } from './job.ts';
import type { FromWorker, ToWorker } from './worker.ts';

export interface PoolOptions {
  /** Worker processes (default: os.availableParallelism()); never more than there are jobs. */
  workers?: number;
  outRoot: string;
  backend?: string;
  allow?: readonly string[];
  /** Polled while jobs run (Ctrl-C): when true, no job starts and running ones stop with a checkpoint. */
  shouldStop?: () => boolean;
  onStart?: (job: SweepJob, counts: PoolCounts) => void;
  onResult?: (job: SweepJob, result: JobResult, counts: PoolCounts) => void;
}

export interface PoolCounts {
  /** Jobs finished or skipped. */
  done: number;
  running: number;
  /** Jobs not started yet. */
  left: number;
}

export interface PoolResult {
  /** The result of every job that ran or was skipped, in the order of `jobs` (stopped ones included). */
  results: JobResult[];
  stopped: boolean;
  /** The jobs that are not finished: stopped (they have a checkpoint) or not started. */
  unfinished: SweepJob[];
}

/** How often shouldStop is polled. */
const STOP_POLL_MS = 100;

/**
 * The worker entry and how to start it: the compiled worker.js from dist/, or worker.ts through
 * tsx when loom runs from its sources (as bin/loom.js chooses).
 */
function workerEntry(): { file: string; execArgv: string[] } {
  const fromSources = import.meta.url.endsWith('.ts');
  const file = fileURLToPath(new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url));
  if (!fromSources) return { file, execArgv: [] };
  const tsx = createRequire(import.meta.url).resolve('tsx');
  return { file, execArgv: ['--import', pathToFileURL(tsx).href] };
}

/** Runs `jobs` on a pool of worker processes; resolves when every worker has exited. */
export function runPool(jobs: readonly SweepJob[], opts: PoolOptions): Promise<PoolResult> {
  const queue = [...jobs];
  const results = new Map<string, JobResult>();
  const running = new Map<ChildProcess, SweepJob>();
  const n = Math.max(1, Math.min(opts.workers ?? availableParallelism(), jobs.length));
  let stopping = false;
  let failure: unknown;
  const counts = (): PoolCounts => ({ done: [...results.values()].filter((r) => r.status !== 'stopped').length, running: running.size, left: queue.length });
  const { file, execArgv } = workerEntry();

  return new Promise((resolve, reject) => {
    if (!jobs.length) return resolve({ results: [], stopped: false, unfinished: [] });
    let alive = 0;
    const stopAll = () => {
      if (stopping) return;
      stopping = true;
      for (const w of running.keys()) w.send({ type: 'stop' } satisfies ToWorker);
    };
    const poll = setInterval(() => {
      if (opts.shouldStop?.()) stopAll();
    }, STOP_POLL_MS);
    const next = (w: ChildProcess) => {
      const job = stopping ? undefined : queue.shift();
      if (!job) {
        w.disconnect();
        return;
      }
      running.set(w, job);
      opts.onStart?.(job, counts());
      w.send({ type: 'run', job, outRoot: opts.outRoot, backend: opts.backend, allow: [...(opts.allow ?? [])] } satisfies ToWorker);
    };
    const finish = () => {
      clearInterval(poll);
      if (failure !== undefined) return reject(failure);
      const ordered = jobs.flatMap((j) => results.get(j.id) ?? []);
      const unfinished = jobs.filter((j) => { const r = results.get(j.id); return !r || r.status === 'stopped'; });
      resolve({ results: ordered, stopped: unfinished.length > 0, unfinished });
    };
    for (let i = 0; i < n; i++) {
      // stdout is the sweep's own output; workers report through IPC. Their stderr is the user's.
      const w = fork(file, [], { execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], serialization: 'advanced' });
      alive++;
      w.on('message', (m: FromWorker) => {
        const job = running.get(w);
        if (!job) return;
        running.delete(w);
        if (m.type === 'result') {
          results.set(job.id, m.result);
          if (m.result.status === 'stopped') stopAll();
          opts.onResult?.(job, m.result, counts());
        } else {
          // A failed run stops the sweep: the others stop with checkpoints, the error is reported.
          failure ??= m.loom ? new LoomError(m.loom) : new Error(`sweep run ${job.id} failed in its worker:\n${m.message}`);
          stopAll();
        }
        next(w);
      });
      let ended = false;
      // A process that could not start emits 'error' and no 'exit': it must still count as ended.
      const end = () => {
        if (ended) return;
        ended = true;
        if (--alive === 0) finish();
      };
      w.on('error', (e) => {
        failure ??= e;
        stopAll();
        if (w.pid === undefined) end();
      });
      w.on('exit', (code, signal) => {
        const job = running.get(w);
        if (job) {
          running.delete(w);
          failure ??= new LoomError({ code: 'E_IO', message: `the worker process running ${job.id} ended (${signal ?? `exit code ${code}`}) before the run did`, hint: 'run the sweep again: it resumes from the last checkpoint' });
          stopAll();
        }
        end();
      });
      next(w);
    }
  });
}
