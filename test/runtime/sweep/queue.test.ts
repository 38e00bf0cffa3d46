/**
 * Sweeps on a real redis-server: the URL and its redaction, fail-fast connection and
 * authentication errors, the version check, and 8 runs over 2 `loom worker` processes, one of
 * them SIGKILLed mid-run, against the same jobs run in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { packageVersion } from '../../../compiler/package-root.ts';
import { runJob, type JobResult, type SweepJob } from '../../../runtime/sweep/job.ts';
import { enqueueJobs, jobKey, parseQueueUrl, QUEUE_PREFIX, queueName, queueStatus, redactUrl, startWorker, statusText, sweepOnQueue, waitForResults } from '../../../runtime/sweep/queue.ts';
import { loom } from '../../helpers/cli.ts';
import { loomErr, loomErrAsync } from '../../helpers/loom-error.ts';
import { freePort, REDIS_MISSING, startRedis, type RedisServer } from '../../helpers/redis.ts';
import { writeTinyPipeline } from '../../helpers/tiny-pipeline.ts';

const ROOT = join(import.meta.dirname, '../../..');

describe('queue URLs', () => {
  it('reads host, port, database, user, password and TLS', () => {
    expect(parseQueueUrl('redis://10.0.0.5:6380/3', {})).toMatchObject({ host: '10.0.0.5', port: 6380, db: 3, tls: false, password: undefined });
    expect(parseQueueUrl('rediss://ann:p%40ss@h.example:6379', {})).toMatchObject({ host: 'h.example', db: 0, tls: true, username: 'ann', password: 'p@ss', display: 'rediss://ann:***@h.example:6379' });
    expect(parseQueueUrl('redis://[::1]:6379', {}).host).toBe('::1');
  });

  it('takes the password from LOOM_REDIS_PASSWORD when the URL has none', () => {
    expect(parseQueueUrl('redis://h:1', { LOOM_REDIS_PASSWORD: 'envpw' }).password).toBe('envpw');
    expect(parseQueueUrl('redis://:urlpw@h:1', { LOOM_REDIS_PASSWORD: 'envpw' }).password).toBe('urlpw');
  });

  it.each([
    ['http://h:6379', 'unsupported scheme'],
    ['redis://h', 'no port'],
    ['redis://:hunter2@h', 'no port'],
    ['redis://:hunter2@h:6379/x', 'not a database number'],
    ['redis://h:6379/16', 'not a database number'],
    ['not a url hunter2', 'not a URL'],
  ])('%s is a usage error that never prints the password', (url, why) => {
    const e = loomErr(() => parseQueueUrl(url, {}));
    expect(e.code).toBe('E_USAGE');
    expect(e.message).toContain(why);
    if (url.includes(':hunter2@')) expect(e.message).not.toContain('hunter2');
  });

  it('redacts the password of any URL-like text', () => {
    expect(redactUrl('redis://u:pw@h:1/0')).toBe('redis://u:***@h:1/0');
    expect(redactUrl('redis://h:1')).toBe('redis://h:1');
    // An "@" inside the password, a "/" inside it (not a URL then), and no scheme at all.
    expect(redactUrl('redis://:p@ss@host:6379')).toBe('redis://:***@host:6379');
    expect(redactUrl('redis://u:pa/ss@host:6379')).toBe('redis://***@host:6379');
    expect(redactUrl('h:secret@x')).toBe('***@x');
  });

  it('escapes ":" in job ids, which BullMQ refuses', () => {
    expect(jobKey('a=1:2/s3')).toBe('a=1%3a2/s3');
    expect(jobKey('a=1%3a2/s3')).not.toBe(jobKey('a=1:2/s3'));
  });
});

describe('connection errors', () => {
  it('an unreachable server is E_IO naming host and port, not retried forever', async () => {
    const port = await freePort();
    const e = await loomErrAsync(() => queueStatus(parseQueueUrl(`redis://:hunter2@127.0.0.1:${port}`, {}), 's'));
    expect(e.code).toBe('E_IO');
    expect(e.message).toContain(`cannot reach Redis at 127.0.0.1:${port}`);
    expect(e.info.hint).toContain('redis-cli');
    expect(e.message).not.toContain('hunter2');
  });
});

// Never skipped silently: the reason is printed and names a skipped test.
if (REDIS_MISSING) {
  console.warn(`queue tests on a real redis-server skipped: ${REDIS_MISSING}`);
  it.skip(`on a real redis-server: skipped, ${REDIS_MISSING}`, () => {});
}

describe('loom worker', () => {
  it('a bad URL or a missing flag is a usage error (exit 2); an unreachable server exits 1; neither prints a password or a stack', async () => {
    const bad = await loom('worker', '--queue', 'redis://:hunter2@h/0', '--sweep', 's');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('error[E_USAGE]: --queue redis://:***@h/0: no port');
    expect((await loom('worker', '--queue', 'redis://h:1')).err).toContain('needs --sweep NAME');
    expect((await loom('worker', '--sweep', 's')).code).toBe(2);
    const port = await freePort();
    const down = await loom('worker', '--queue', `redis://:hunter2@127.0.0.1:${port}`, '--sweep', 's');
    expect(down.code).toBe(1);
    expect(down.err).toContain(`error[E_IO]: cannot reach Redis at 127.0.0.1:${port}`);
    for (const r of [bad, down]) {
      expect(r.err).not.toContain('hunter2');
      expect(r.err).not.toMatch(/\n\s+at /);
    }
  });
});

describe.skipIf(REDIS_MISSING !== null)('on a real redis-server', () => {
  let redis: RedisServer;
  let dir: string;
  beforeAll(async () => {
    redis = await startRedis({ password: 'hunter2' });
    dir = mkdtempSync(join(tmpdir(), 'loom-queue-'));
  });
  afterAll(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const url = (pw = 'hunter2') => `redis://:${pw}@127.0.0.1:${redis.port}`;

  it.each([['a wrong password', 'wrong'], ['no password', '']])('%s is E_IO "authentication failed", the password redacted', async (_, pw) => {
    const e = await loomErrAsync(() => queueStatus(parseQueueUrl(pw ? url(pw) : redis.url, {}), 's'));
    expect(e.code).toBe('E_IO');
    expect(e.message).toContain('authentication failed');
    expect(e.message).not.toContain('hunter2');
    if (pw) expect(e.message).not.toContain(pw);
  });

  function jobs(sweep: string, pipeline: string, n: number, version = packageVersion()): SweepJob[] {
    return Array.from({ length: n }, (_, i) => {
      const config = `optimizer.lr=${i % 2 ? '0.001' : '0.0005'}`;
      const seed = 1 + Math.floor(i / 2);
      return { sweep, id: `${config}/s${seed}`, config, pipeline, overrides: [config], seed, dir: `${config}/s${seed}`, loomVersion: version };
    });
  }

  it('a job planned by another loom version fails on the worker, and the sweep says which versions', async () => {
    const t = parseQueueUrl(url(), {});
    const pipeline = writeTinyPipeline(dir);
    const js = jobs('versions', pipeline, 1, '0.0.0-elsewhere');
    await enqueueJobs(t, js, { results: 'redis' });
    const w = await startWorker(t, { sweep: 'versions', outRoot: join(dir, 'w'), shared: false, backend: 'cpu' });
    try {
      const e = await loomErrAsync(() => waitForResults(t, js, { pollMs: 100 }));
      expect(e.code).toBe('E_IO');
      expect(e.message).toContain('1 of 1 runs of sweep versions failed');
      expect(e.message).toContain(`version mismatch: the sweep was planned by loom 0.0.0-elsewhere, this worker is loom ${packageVersion()}`);
      expect(e.info.hint).toContain(`install loom ${packageVersion()}`);
    } finally {
      await w.close();
    }
    expect(existsSync(join(dir, 'w'))).toBe(false);
  });

  it('results come back through Redis, equal to the same jobs run here', async () => {
    const t = parseQueueUrl(url(), {});
    const pipeline = writeTinyPipeline(dir, { total_steps: 64 });
    const js = jobs('via-redis', pipeline, 2);
    expect(await enqueueJobs(t, js, { results: 'redis' })).toBe(2);
    expect(await enqueueJobs(t, js, { results: 'redis' })).toBe(0);
    const w = await startWorker(t, { sweep: 'via-redis', outRoot: join(dir, 'via-redis-w'), shared: false, backend: 'cpu' });
    let got: JobResult[] | null;
    const seen: string[] = [];
    try {
      got = await sweepOnQueue(t, js, { pollMs: 100, onStatus: (st) => seen.push(statusText(st)) });
    } finally {
      await w.close();
    }
    for (const [i, job] of js.entries()) {
      const ref = await runJob(job, { outRoot: join(dir, 'via-redis-ref'), backend: 'cpu' });
      expect(got![i]!.id).toBe(job.id);
      expect(got![i]!.metrics.length).toBe(4);
      expect(comparable(got![i]!)).toEqual(comparable(ref));
    }
    expect(seen.at(-1)).toMatch(/^2 done, 0 running, 0 waiting, 0 failed, 0 retried; ETA 0s$/);
  });

  it('Ctrl-C stops a worker process at a checkpoint and hands its run back to the queue, where the next worker resumes it', async () => {
    const t = parseQueueUrl(url(), {});
    const pipeline = writeTinyPipeline(dir, { total_steps: 16 * 300, checkpoint: { every: 1 } });
    const [job] = jobs('interrupted', pipeline, 1);
    const shared = join(dir, 'interrupted');
    await enqueueJobs(t, [job!], { results: 'folder' });
    const c = spawn(process.execPath, [join(ROOT, 'bin', 'loom.js'), 'worker', '--queue', url(), '--sweep', 'interrupted', '--results', shared, '--backend', 'cpu'], {
      cwd: ROOT,
      env: { ...process.env, LOOM_FROM_SOURCES: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    c.stderr!.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((resolve) => c.once('exit', resolve));
    try {
      await new Promise<void>((resolve) => {
        const look = () => (existsSync(join(shared, job!.dir, 'checkpoint.json')) ? resolve() : setTimeout(look, 20));
        look();
      });
      c.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (c.exitCode === null) c.kill('SIGKILL');
    }
    expect(log).toContain(`run ${job!.id}: stopped at a checkpoint, back in the queue`);
    expect(log).not.toContain('hunter2');
    const q = new Queue(queueName('interrupted'), { prefix: QUEUE_PREFIX, connection: { host: '127.0.0.1', port: redis.port, password: 'hunter2' } });
    try {
      const queued = (await q.getJob(jobKey(job!.id)))!;
      expect(['delayed', 'waiting']).toContain(await queued.getState());
      expect(queued.attemptsMade).toBe(0);
    } finally {
      await q.close();
    }
    const w = await startWorker(t, { sweep: 'interrupted', outRoot: shared, shared: true, backend: 'cpu' });
    let got: JobResult[] | null;
    try {
      got = await waitForResults(t, [job!], { resultsDir: shared, pollMs: 100 });
    } finally {
      await w.close();
    }
    const record = JSON.parse(readFileSync(join(shared, job!.dir, 'run.json'), 'utf8')) as { status: string; resumed_from?: { iteration: number } };
    expect(record.status).toBe('finished');
    expect(record.resumed_from!.iteration).toBeGreaterThan(0);
    const ref = await runJob(job!, { outRoot: join(dir, 'interrupted-ref'), backend: 'cpu' });
    expect(comparable(got![0]!)).toEqual(comparable(ref));
  });

  it('--concurrency 2 trains 2 runs at once, in 2 processes, and Ctrl-C hands both back', async () => {
    const t = parseQueueUrl(url(), {});
    const pipeline = writeTinyPipeline(dir, { total_steps: 16 * 1000, checkpoint: { every: 1 } });
    const js = jobs('parallel', pipeline, 2);
    const shared = join(dir, 'parallel');
    await enqueueJobs(t, js, { results: 'folder' });
    const c = spawn(process.execPath, [join(ROOT, 'bin', 'loom.js'), 'worker', '--queue', url(), '--sweep', 'parallel', '--results', shared, '--backend', 'cpu', '--concurrency', '2'], {
      cwd: ROOT,
      env: { ...process.env, LOOM_FROM_SOURCES: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    c.stderr!.on('data', (d) => (log += d));
    const exited = new Promise<number | null>((resolve) => c.once('exit', resolve));
    const running = (j: SweepJob) => existsSync(join(shared, j.dir, 'checkpoint.json')) && (JSON.parse(readFileSync(join(shared, j.dir, 'run.json'), 'utf8')) as { status: string }).status === 'running';
    try {
      // Both runs train at the same time: one process taking one run at a time never gets here.
      await new Promise<void>((resolve) => {
        const look = () => (js.every(running) ? resolve() : setTimeout(look, 20));
        look();
      });
      c.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      if (c.exitCode === null) c.kill('SIGKILL');
    }
    for (const j of js) expect(log).toContain(`run ${j.id}: stopped at a checkpoint, back in the queue`);
    expect(log).not.toContain('hunter2');
    expect((await queueStatus(t, 'parallel')).waiting).toBe(2);
  });

  it('8 runs over 2 worker processes, one SIGKILLed mid-run: its run resumes on the other, and every run equals the same job run here', async () => {
    const t = parseQueueUrl(url(), {});
    // 150 iterations with a checkpoint after each: long enough to be killed mid-run.
    const pipeline = writeTinyPipeline(dir, { total_steps: 16 * 150, checkpoint: { every: 1 } });
    const js = jobs('killed', pipeline, 8);
    const shared = join(dir, 'shared');
    await enqueueJobs(t, js, { results: 'folder' });
    const workers: ChildProcess[] = [];
    const logs: string[] = [];
    const spawnWorker = (k: number) => {
      const c = spawn(process.execPath, [join(ROOT, 'bin', 'loom.js'), 'worker', '--queue', `redis://127.0.0.1:${redis.port}`, '--sweep', 'killed', '--results', shared, '--backend', 'cpu', '--lock-sec', '4'], {
        cwd: ROOT,
        env: { ...process.env, LOOM_FROM_SOURCES: '1', LOOM_REDIS_PASSWORD: 'hunter2' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      logs[k] = '';
      c.stderr!.on('data', (d) => (logs[k] += d));
      workers.push(c);
      return c;
    };
    try {
      const a = spawnWorker(0);
      spawnWorker(1);
      // Kill worker 0 once its first run has written a checkpoint, while it trains.
      const victim = await new Promise<SweepJob>((resolve) => {
        const look = () => {
          const id = /run (\S+): started/.exec(logs[0]!)?.[1];
          const job = js.find((j) => j.id === id);
          if (job && existsSync(join(shared, job.dir, 'checkpoint.json'))) resolve(job);
          else setTimeout(look, 20);
        };
        look();
      });
      a.kill('SIGKILL');
      const record = () => JSON.parse(readFileSync(join(shared, victim.dir, 'run.json'), 'utf8')) as { status: string; resumed_from?: { iteration: number } };
      expect(record().status).toBe('running');

      const got = await waitForResults(t, js, { resultsDir: shared, pollMs: 200 });
      expect(got!.map((r) => r.id)).toEqual(js.map((j) => j.id));
      // The killed run was taken by the other worker and continued from its checkpoint.
      expect(logs[1]).toContain(`run ${victim.id}: started (try 2)`);
      expect(record()).toMatchObject({ status: 'finished' });
      expect(record().resumed_from!.iteration).toBeGreaterThan(0);
      const q = new Queue(queueName('killed'), { prefix: QUEUE_PREFIX, connection: { host: '127.0.0.1', port: redis.port, password: 'hunter2' } });
      try {
        expect((await q.getJob(jobKey(victim.id)))!.attemptsStarted).toBe(2);
      } finally {
        await q.close();
      }
      const status = await queueStatus(t, 'killed');
      expect(status).toMatchObject({ done: 8, running: 0, waiting: 0, failed: 0, retried: 1, etaSec: 0 });

      for (const [i, job] of js.entries()) {
        const ref = await runJob(job, { outRoot: join(dir, 'killed-ref'), backend: 'cpu' });
        expect(got![i]!.metrics.length).toBe(150);
        expect(comparable(got![i]!), job.id).toEqual(comparable(ref));
      }
    } finally {
      for (const c of workers) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
  });
});

/** A result's metrics without the wall-clock column, which differs from run to run. */
function comparable(r: JobResult): unknown[] {
  return r.metrics.map(({ steps_per_sec: _s, ...row }) => row);
}
