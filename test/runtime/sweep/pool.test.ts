/**
 * Running sweep jobs: one job in-process (fresh, skipped, resumed), and the local pool of worker
 * processes, whose runs must equal the same jobs run one by one in this process.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../runtime/backend.ts';
import type { IterationMetrics } from '../../../runtime/pipeline/metrics.ts';
import { runJob, type JobResult } from '../../../runtime/sweep/job.ts';
import { planSweep } from '../../../runtime/sweep/plan.ts';
import { runPool } from '../../../runtime/sweep/pool.ts';
import { loomErrAsync } from '../../helpers/loom-error.ts';
import { writeTinyPipeline } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await initBackend('cpu', () => {});
});

const dir = mkdtempSync(join(tmpdir(), 'loom-sweep-'));
writeTinyPipeline(dir);
// 2 x 2 configurations x 2 seeds = 8 runs of 4 iterations each.
const plan = planSweep({ sweep: 'tiny', pipeline: 'p.json', grid: { 'optimizer.lr': [2.5e-4, 1e-3], 'update.ent_coef': [0, 0.01] }, seeds: 2 }, join(dir, 'sweep.json'));
const root = (name: string) => join(dir, name);
/** A run's rows without the wall-clock column, as JSON (NaN reads null, as in metrics.jsonl). */
const rows = (ms: readonly IterationMetrics[]) => JSON.parse(JSON.stringify(ms.map(({ steps_per_sec: _s, ...m }) => m))) as unknown[];
const byId = (rs: readonly JobResult[]) => Object.fromEntries(rs.map((r) => [r.id, rows(r.metrics)]));

// Every job run one at a time in this process: the reference for the pool.
let reference: Record<string, unknown[]>;
beforeAll(async () => {
  const rs: JobResult[] = [];
  for (const job of plan.jobs) rs.push(await runJob(job, { outRoot: root('reference'), backend: 'cpu' }));
  expect(rs.map((r) => r.status)).toEqual(Array(8).fill('finished'));
  reference = byId(rs);
});

describe('one job', () => {
  const job = plan.jobs[0]!;

  it('runs afresh, then skips the finished run with the metrics it logged', async () => {
    const out = root('job');
    const a = await runJob(job, { outRoot: out, backend: 'cpu' });
    expect(a).toMatchObject({ id: job.id, status: 'finished', envSteps: 64 });
    expect(a.metrics).toHaveLength(4);
    const record = JSON.parse(readFileSync(join(out, job.dir, 'run.json'), 'utf8'));
    expect(record).toMatchObject({ status: 'finished', seed: 1, overrides: job.overrides, config: { optimizer: { lr: 2.5e-4 }, update: { ent_coef: 0 } } });
    const b = await runJob(job, { outRoot: out, backend: 'cpu' });
    expect(b.status).toBe('skipped');
    expect(rows(b.metrics)).toEqual(rows(a.metrics));
    expect(b.envSteps).toBe(64);
  });

  it('resumes a stopped run from its checkpoint to the same metrics as an uninterrupted one', async () => {
    const out = root('resume');
    let k = 0;
    const a = await runJob(job, { outRoot: out, backend: 'cpu', shouldStop: () => k++ >= 2 });
    expect(a.status).toBe('stopped');
    expect(a.metrics).toHaveLength(2);
    expect(existsSync(join(out, job.dir, 'checkpoint.json'))).toBe(true);
    const b = await runJob(job, { outRoot: out, backend: 'cpu' });
    expect(b.status).toBe('finished');
    expect(rows(b.metrics)).toEqual(reference[job.id]);
    // Resumed, not started over.
    expect(JSON.parse(readFileSync(join(out, job.dir, 'run.json'), 'utf8')).resumed_from).toEqual({ iteration: 2, global_step: 32 });
  });

  it('refuses a folder whose finished run has another configuration', async () => {
    const out = root('changed');
    await runJob(job, { outRoot: out, backend: 'cpu' });
    const e = await loomErrAsync(() => runJob({ ...job, overrides: ['optimizer.lr=0.5', 'update.ent_coef=0'] }, { outRoot: out, backend: 'cpu' }));
    expect(e.info.code).toBe('E_USAGE');
    expect(e.info.found).toContain('optimizer.lr');
    expect(e.info.message).toContain(`run ${job.id} of sweep tiny: the configuration differs`);
    expect(e.info.hint).toContain('--out');
  });
});

describe('the local pool', () => {
  it('runs 8 jobs on 2 processes to the metrics of single-process runs; running it again skips them all', async () => {
    const out = root('pool');
    const started: number[] = [];
    const r = await runPool(plan.jobs, { workers: 2, outRoot: out, backend: 'cpu', onStart: (_j, c) => started.push(c.running) });
    expect(r.stopped).toBe(false);
    expect(r.unfinished).toEqual([]);
    expect(r.results.map((x) => x.id)).toEqual(plan.jobs.map((j) => j.id));
    expect(r.results.map((x) => x.status)).toEqual(Array(8).fill('finished'));
    expect(byId(r.results)).toEqual(reference);
    // Two jobs ran at once (the count includes the job starting).
    expect(Math.max(...started)).toBe(2);
    const again = await runPool(plan.jobs, { workers: 2, outRoot: out, backend: 'cpu' });
    expect(again.results.map((x) => x.status)).toEqual(Array(8).fill('skipped'));
    expect(byId(again.results)).toEqual(reference);
  });

  it('stops on request with checkpoints, and the same sweep run again finishes it to the same metrics', async () => {
    const out = root('interrupted');
    let stop = false;
    const r = await runPool(plan.jobs, { workers: 2, outRoot: out, backend: 'cpu', shouldStop: () => stop, onResult: () => void (stop = true) });
    expect(r.stopped).toBe(true);
    expect(r.unfinished.length).toBeGreaterThan(0);
    expect(r.results.length).toBeLessThan(8);
    const resumed = await runPool(plan.jobs, { workers: 2, outRoot: out, backend: 'cpu' });
    expect(resumed.stopped).toBe(false);
    const status = Object.fromEntries(resumed.results.map((x) => [x.id, x.status]));
    for (const j of r.results) expect(status[j.id]).toBe(j.status === 'finished' ? 'skipped' : 'finished');
    expect(byId(resumed.results)).toEqual(reference);
  });

  it('a failing run stops the pool with its error', async () => {
    const bad = { ...plan.jobs[0]!, overrides: ['update.epochs="x"'] };
    const e = await loomErrAsync(() => runPool([bad], { workers: 1, outRoot: root('failing'), backend: 'cpu' }));
    expect(e.info.code).toBe('E_SCHEMA');
  });
});
