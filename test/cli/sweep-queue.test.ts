/**
 * `loom sweep --queue`: the same sweep through Redis and two `loom worker` processes gives the same
 * runs, ranking and tables as the local pool; `--status` reports it done.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loom } from '../helpers/cli.ts';
import { REDIS_MISSING, startRedis, type RedisServer } from '../helpers/redis.ts';
import { writeTinyPipeline } from '../helpers/tiny-pipeline.ts';

const ROOT = join(import.meta.dirname, '..', '..');

if (REDIS_MISSING) {
  console.warn(`loom sweep --queue tests skipped: ${REDIS_MISSING}`);
  it.skip(`loom sweep --queue: skipped, ${REDIS_MISSING}`, () => {});
}

describe.skipIf(REDIS_MISSING !== null)('loom sweep --queue', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('runs on two workers and writes the report the local pool writes, run for run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-sweep-queue-'));
    writeTinyPipeline(dir);
    const file = join(dir, 'sweep.json');
    writeFileSync(file, JSON.stringify({ sweep: 'qtiny', pipeline: 'p.json', grid: { 'optimizer.lr': [1e-4, 1e-3], 'update.ent_coef': [0, 0.01] }, seeds: 2, budget: { steps: 480 } }));
    const workers: ChildProcess[] = [0, 1].map(() =>
      spawn(process.execPath, [join(ROOT, 'bin', 'loom.js'), 'worker', '--queue', redis.url, '--sweep', 'qtiny', '--backend', 'cpu', '--allow-path', dir], {
        cwd: dir,
        env: { ...process.env, LOOM_FROM_SOURCES: '1' },
        stdio: 'ignore',
      }),
    );
    try {
      const q = await loom('sweep', file, '--queue', redis.url, '--out', join(dir, 'queued'), '--backend', 'cpu');
      expect(q.code, q.err).toBe(0);
      const status = await loom('sweep', file, '--queue', redis.url, '--status');
      expect(status.out).toContain('8 done, 0 running, 0 waiting, 0 failed');
    } finally {
      for (const w of workers) w.kill('SIGTERM');
    }
    const l = await loom('sweep', file, '--workers', '2', '--out', join(dir, 'local'), '--backend', 'cpu');
    expect(l.code, l.err).toBe(0);
    // The ranking and every configuration's numbers; the wall-time columns differ by nature.
    type Ranking = { ranking: { rank: number; configuration: string; values: unknown; metric: unknown; per_seed: unknown }[] };
    const table = (d: string) => JSON.parse(readFileSync(join(dir, d, 'sweep.json'), 'utf8')) as Ranking;
    const strip = (t: Ranking) => t.ranking;
    expect(strip(table('queued'))).toEqual(strip(table('local')));
    expect(strip(table('queued'))).toHaveLength(4);
    // The runs differ between configurations, so equal tables are not equal by accident.
    expect(new Set(strip(table('local')).map((r) => JSON.stringify(r.per_seed))).size).toBeGreaterThan(1);
    // And the ranking table as written, but for its wall-time columns.
    const csv = (d: string) => readFileSync(join(dir, d, 'sweep.csv'), 'utf8').trim().split('\n').map((l) => l.split(',').slice(0, -2).join(','));
    expect(csv('queued')).toEqual(csv('local'));
  }, 180_000);
});
