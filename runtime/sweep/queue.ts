/**
 * Sweeps past one machine: every run is a BullMQ job on Redis, taken by `loom worker` processes
 * anywhere. The sweep enqueues its jobs (the job id is the run's id, so enqueueing again adds
 * nothing), then waits for their results: the JobResult comes back through Redis, or the rows are
 * read from a folder the workers share (`--results DIR`). A worker that dies leaves its job
 * stalled; another worker takes it and `runJob` resumes it from its checkpoint when the folder is
 * shared. Redis URLs carry passwords, so every message goes through `redact`.
 */
import { DelayedError, Queue, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { printable } from '../../compiler/text.ts';
import { LoomError } from '../../compiler/errors.ts';
import { packageVersion } from '../../compiler/package-root.ts';
import { readJobMetrics, jobDir, runJob, type JobResult, type SweepJob } from './job.ts';

/** The key prefix of every loom queue in Redis. */
export const QUEUE_PREFIX = 'loom';
/** Tries per job; a killed worker's job is retried on another. */
export const JOB_ATTEMPTS = 3;
/** How long a connection attempt may take before Redis is reported unreachable. */
const CONNECT_TIMEOUT_MS = 5000;

/** A parsed `--queue redis://[user:pass@]host:port[/db]` (or rediss:// for TLS). */
export interface QueueTarget {
  host: string;
  port: number;
  db: number;
  tls: boolean;
  username?: string;
  password?: string;
  /** The URL as printed: the password replaced by "***". */
  display: string;
}

const URL_EXPECTED = 'redis://[USER:PASSWORD@]HOST:PORT[/DB] or rediss://... (TLS); the password may also come from LOOM_REDIS_PASSWORD';

/** Parses a queue URL; the password may come from LOOM_REDIS_PASSWORD instead of the URL. */
export function parseQueueUrl(text: string, env: NodeJS.ProcessEnv = process.env): QueueTarget {
  const shown = redactUrl(text);
  const bad = (why: string, hint?: string): never => {
    throw new LoomError({ code: 'E_USAGE', message: `--queue ${shown}: ${why}`, expected: URL_EXPECTED, found: shown, hint: hint ?? 'e.g. --queue redis://127.0.0.1:6379/0' });
  };
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return bad('not a URL');
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') bad(`unsupported scheme "${u.protocol.replace(/:$/, '')}"`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) bad('no host');
  if (!u.port) bad('no port', 'name the port, e.g. redis://HOST:6379');
  const port = Number(u.port);
  const path = u.pathname.replace(/^\//, '');
  if (!/^\d*$/.test(path) || Number(path) > 15) bad(`"/${path}" is not a database number`, 'a database is a number from 0 to 15, e.g. redis://HOST:6379/0');
  if (u.search || u.hash) bad('query and fragment are not supported');
  const username = u.username ? decodeURIComponent(u.username) : undefined;
  const password = u.password ? decodeURIComponent(u.password) : env.LOOM_REDIS_PASSWORD || undefined;
  return { host, port, db: Number(path || 0), tls: u.protocol === 'rediss:', username, password, display: shown };
}

/**
 * The URL with its password replaced by "***". A text that does not parse loses everything between
 * "//" and its last "@", where a password would be.
 */
export function redactUrl(text: string): string {
  try {
    const u = new URL(text);
    // Other schemes parse an "a:b@c" as a path, with no password to find.
    if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error('not a Redis URL');
    if (u.password) u.password = '***';
    return u.href.replace(/\/$/, text.endsWith('/') ? '/' : '');
  } catch {
    return text.replace(/^([^/]*\/\/)?.*@/s, (_m, scheme: string | undefined) => `${scheme ?? ''}***@`);
  }
}

/** `text` with every occurrence of the target's password replaced by "***". */
export function redact(text: string, target: QueueTarget): string {
  return target.password ? text.split(target.password).join('***') : text;
}

/** The BullMQ queue of a sweep: its name with what Redis keys and BullMQ do not take replaced. */
export function queueName(sweep: string): string {
  return `sweep-${sweep.replace(/[^A-Za-z0-9._-]/g, '_')}`;
}

/** A run id as a BullMQ job id: ids may not hold ":" (nor be integers), so ":" and "%" are escaped. */
export function jobKey(id: string): string {
  const key = id.replace(/[%:]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
  return /^\d+$/.test(key) ? `run-${key}` : key;
}

function connection(t: QueueTarget, failFast: boolean): ConnectionOptions {
  return {
    host: t.host,
    port: t.port,
    db: t.db,
    ...(t.username !== undefined ? { username: t.username } : {}),
    ...(t.password !== undefined ? { password: t.password } : {}),
    ...(t.tls ? { tls: {} } : {}),
    connectTimeout: CONNECT_TIMEOUT_MS,
    // The first connection fails at once; a live one that drops retries for about a minute.
    retryStrategy: failFast ? () => null : (times: number) => (times > 30 ? null : Math.min(times * 500, 2000)),
    enableOfflineQueue: !failFast,
  };
}

/** A Redis failure as a LoomError naming the server (never the password), with what to do. */
export function connectionError(e: unknown, t: QueueTarget): LoomError {
  if (e instanceof LoomError) return e;
  const raw = String((e as Error)?.message ?? e);
  const msg = redact(raw, t);
  const where = `${t.host}:${t.port}`;
  if (/NOAUTH|WRONGPASS|invalid password|invalid username-password/i.test(raw))
    return new LoomError({
      code: 'E_IO',
      message: `Redis at ${where}: authentication failed`,
      found: msg,
      hint: 'give the password in the URL (redis://:PASSWORD@HOST:PORT) or in LOOM_REDIS_PASSWORD, and the user for an ACL user (redis://USER:PASSWORD@...)',
    });
  return new LoomError({
    code: 'E_IO',
    message: `cannot reach Redis at ${where}`,
    found: msg,
    hint: `check that redis-server runs there and accepts connections from this machine (bind, firewall); try \`redis-cli -h ${t.host} -p ${t.port} ping\``,
  });
}

/**
 * Connects to Redis once with a short timeout and no retries, so an unreachable server, a wrong
 * password or a server BullMQ cannot use is reported at once instead of retried forever.
 */
async function probe(t: QueueTarget): Promise<void> {
  const q = new Queue('probe', { prefix: QUEUE_PREFIX, connection: connection(t, true) });
  let failure: unknown;
  q.on('error', (e) => (failure ??= e));
  try {
    await q.waitUntilReady();
    await q.getJobCounts('waiting');
  } catch (e) {
    throw connectionError(failure ?? e, t);
  } finally {
    await q.close().catch(() => {});
  }
}

/** A sweep's queue, connected (or an E_IO error). Close it when done. */
async function openQueue(t: QueueTarget, sweep: string): Promise<Queue> {
  await probe(t);
  const q = new Queue(queueName(sweep), { prefix: QUEUE_PREFIX, connection: connection(t, false) });
  q.on('error', () => {}); // reconnections are retried; a lost server fails the next command
  return q;
}

/** What a job carries: the run, and whether its rows come back through Redis or a shared folder. */
export interface QueuedJob {
  job: SweepJob;
  results: 'redis' | 'folder';
}

/** Enqueues the sweep's jobs (those already queued are kept; failed ones are retried). Returns how many were new. */
export async function enqueueJobs(t: QueueTarget, jobs: readonly SweepJob[], opts: { results: 'redis' | 'folder' }): Promise<number> {
  if (!jobs.length) return 0;
  const q = await openQueue(t, jobs[0]!.sweep);
  try {
    let added = 0;
    for (const job of jobs) {
      const key = jobKey(job.id);
      const state = await q.getJobState(key);
      if (state === 'unknown') {
        const data: QueuedJob = { job, results: opts.results };
        await q.add(job.id, data, { jobId: key, attempts: JOB_ATTEMPTS, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: false, removeOnFail: false });
        added++;
      } else if (state === 'failed') {
        await (await q.getJob(key))?.retry('failed');
      }
    }
    return added;
  } catch (e) {
    throw connectionError(e, t);
  } finally {
    await q.close().catch(() => {});
  }
}

export interface WaitOptions {
  /** The folder the workers run into (`--results DIR`): rows are read from it, not from Redis. */
  resultsDir?: string;
  /** Milliseconds between looks at the queue. */
  pollMs?: number;
  /** Called after every look. */
  onStatus?: (s: SweepStatus) => void;
  shouldStop?: () => boolean;
}

/**
 * Waits until every job has finished or failed for good, and returns their results in the order
 * of `jobs`. Failures (a version mismatch, a run that errs on every try) are reported together,
 * once nothing is left running. Null when `shouldStop` ended the wait first.
 */
export async function waitForResults(t: QueueTarget, jobs: readonly SweepJob[], opts: WaitOptions = {}): Promise<JobResult[] | null> {
  if (!jobs.length) return [];
  const q = await openQueue(t, jobs[0]!.sweep);
  const results = new Map<string, JobResult>();
  const failed = new Map<string, string>();
  try {
    for (;;) {
      for (const job of jobs) {
        if (results.has(job.id) || failed.has(job.id)) continue;
        const key = jobKey(job.id);
        const state = await q.getJobState(key);
        if (state === 'unknown') throw new LoomError({ code: 'E_IO', message: `run ${job.id} is not in the queue ${queueName(job.sweep)} at ${t.host}:${t.port}`, hint: 'enqueue the sweep again (loom sweep ... --queue URL); a Redis without persistence loses its queues when it restarts' });
        if (state !== 'completed' && state !== 'failed') continue;
        const j = await q.getJob(key);
        if (!j) continue;
        if (state === 'failed') failed.set(job.id, redact(j.failedReason ?? 'unknown reason', t));
        else results.set(job.id, opts.resultsDir !== undefined ? fromFolder(job, j.returnvalue as JobResult, opts.resultsDir) : fromRedis(job, j.returnvalue as JobResult));
      }
      opts.onStatus?.(await queueStatus(t, jobs[0]!.sweep, q));
      if (results.size + failed.size === jobs.length) break;
      if (opts.shouldStop?.()) return null;
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
    }
  } catch (e) {
    throw connectionError(e, t);
  } finally {
    await q.close().catch(() => {});
  }
  if (failed.size) {
    const [first] = failed;
    const mismatch = [...failed.values()].some((r) => r.startsWith('version mismatch'));
    throw new LoomError({
      code: 'E_IO',
      message: `${failed.size} of ${jobs.length} runs of sweep ${jobs[0]!.sweep} failed`,
      found: `${first![0]}: ${first![1]}`,
      hint: mismatch ? `install loom ${packageVersion()} on every worker, as on the machine that runs the sweep` : 'see the failed runs with `loom sweep SWEEP.json --status --queue URL`; enqueueing the sweep again retries them',
    });
  }
  return jobs.map((j) => results.get(j.id)!);
}

/**
 * `loom sweep --queue`: enqueues the planned jobs and waits for their results (rows from
 * `resultsDir` when the workers share it, else from Redis), in the order of `jobs`.
 */
export async function sweepOnQueue(t: QueueTarget, jobs: readonly SweepJob[], opts: WaitOptions = {}): Promise<JobResult[] | null> {
  await enqueueJobs(t, jobs, { results: opts.resultsDir !== undefined ? 'folder' : 'redis' });
  return waitForResults(t, jobs, opts);
}

function fromRedis(job: SweepJob, r: JobResult): JobResult {
  if (!r.metrics.length && r.envSteps > 0)
    throw new LoomError({ code: 'E_USAGE', message: `run ${job.id} came back without metrics rows: the sweep was enqueued with results in a shared folder`, hint: 'wait with the same --results DIR the sweep was enqueued with' });
  return r;
}

function fromFolder(job: SweepJob, r: JobResult, dir: string): JobResult {
  const metrics = readJobMetrics(jobDir(job, dir));
  if (!metrics.length)
    throw new LoomError({
      code: 'E_IO',
      message: `run ${job.id} finished, but ${jobDir(job, dir)} holds no metrics`,
      hint: '--results DIR must be the folder the workers write (a shared folder, mounted on every worker and here); without a shared folder, leave --results out and the rows come back through Redis',
    });
  return { ...r, metrics };
}

/** Where a sweep's runs are. */
export interface SweepStatus {
  done: number;
  running: number;
  waiting: number;
  failed: number;
  /** Runs started more than once (a worker died, or a try failed). */
  retried: number;
  /** Seconds left: mean wall time of the finished runs, over the runs left, at the current parallelism; null before the first finishes. */
  etaSec: number | null;
}

/** Counts the runs of a sweep's queue by state. */
export async function queueStatus(t: QueueTarget, sweep: string, open?: Queue): Promise<SweepStatus> {
  const q = open ?? (await openQueue(t, sweep));
  try {
    const c = await q.getJobCounts('completed', 'active', 'waiting', 'delayed', 'prioritized', 'paused', 'failed');
    const all = await q.getJobs(['completed', 'active', 'waiting', 'delayed', 'prioritized', 'paused', 'failed']);
    const walls = all.filter((j) => j.finishedOn !== undefined && j.returnvalue).map((j) => (j.returnvalue as JobResult).wallSec);
    const waiting = (c.waiting ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0) + (c.paused ?? 0);
    const running = c.active ?? 0;
    const mean = walls.length ? walls.reduce((s, x) => s + x, 0) / walls.length : null;
    return {
      done: c.completed ?? 0,
      running,
      waiting,
      failed: c.failed ?? 0,
      retried: all.filter((j) => j.attemptsStarted > 1 || j.attemptsMade > 1).length,
      etaSec: mean === null ? null : (mean * (waiting + running)) / Math.max(1, running),
    };
  } catch (e) {
    throw connectionError(e, t);
  } finally {
    if (!open) await q.close();
  }
}

export function statusText(s: SweepStatus): string {
  const eta = s.etaSec === null ? '-' : `${Math.round(s.etaSec)}s`;
  return `${s.done} done, ${s.running} running, ${s.waiting} waiting, ${s.failed} failed, ${s.retried} retried; ETA ${eta}`;
}

export interface WorkerOptions {
  sweep: string;
  /** Where runs are written: the shared results folder, or a folder of this machine. */
  outRoot: string;
  /** True when outRoot is the shared `--results` folder (a sweep that reads rows from it needs one). */
  shared: boolean;
  backend?: string;
  allow?: readonly string[];
  /** Seconds without a lock renewal after which a job counts as stalled and goes to another worker. */
  lockSec?: number;
  log?: (line: string) => void;
}

/** A worker running one job at a time in this process. `close` stops the current run at a checkpoint and hands its job back. */
export interface RunningWorker {
  close(): Promise<void>;
}

/**
 * Takes the jobs of a sweep's queue one at a time. A job planned by another loom version fails
 * at once (runs would not be comparable); a job stopped by `close` goes back to the queue without
 * using up a try, and resumes from its checkpoint where the folder is shared.
 */
export async function startWorker(t: QueueTarget, opts: WorkerOptions): Promise<RunningWorker> {
  await probe(t);
  const log = opts.log ?? (() => {});
  // Once, before the first job: every run of this worker trains on the same backend.
  const { initBackend } = await import('../backend.ts');
  const backend = (await initBackend(opts.backend, (m) => log(m + '\n'))).name;
  let stopping = false;
  const lockMs = (opts.lockSec ?? 30) * 1000;
  const processor = async (job: Job<QueuedJob, JobResult>, token?: string): Promise<JobResult> => {
    const { job: run, results } = job.data;
    if (run.loomVersion !== packageVersion())
      throw new UnrecoverableError(`version mismatch: the sweep was planned by loom ${run.loomVersion}, this worker is loom ${packageVersion()}`);
    if (results === 'folder' && !opts.shared)
      throw new UnrecoverableError('this sweep reads its results from a shared folder; start the worker with --results DIR on that folder');
    log(`run ${printable(run.id)}: started (try ${job.attemptsStarted})\n`);
    const r = await runJob(run, { outRoot: opts.outRoot, backend, allow: opts.allow, shouldStop: () => stopping });
    if (r.status === 'stopped') {
      // Back to the queue, for this or another worker, without counting as a failed try.
      await job.moveToDelayed(Date.now(), token);
      log(`run ${printable(run.id)}: stopped at a checkpoint, back in the queue\n`);
      throw new DelayedError();
    }
    log(`run ${printable(run.id)}: ${r.status} (${r.envSteps} env steps, ${r.wallSec.toFixed(1)}s)\n`);
    return results === 'folder' ? { ...r, metrics: [] } : r;
  };
  const w = new Worker<QueuedJob, JobResult>(queueName(opts.sweep), processor, {
    prefix: QUEUE_PREFIX,
    connection: connection(t, false),
    concurrency: 1,
    lockDuration: lockMs,
    stalledInterval: Math.max(1000, lockMs / 2),
    maxStalledCount: JOB_ATTEMPTS - 1,
  });
  w.on('error', (e) => log(`worker: ${printable(redact(String((e as Error)?.message ?? e), t))}\n`));
  w.on('failed', (job, e) => job && log(`run ${printable(String(job.data.job.id))}: failed: ${printable(redact(e.message, t))}\n`));
  try {
    await w.waitUntilReady();
  } catch (e) {
    await w.close().catch(() => {});
    throw e;
  }
  return {
    close: async () => {
      stopping = true;
      await w.close();
    },
  };
}
