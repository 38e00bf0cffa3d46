/** A sweep's report: metrics per run, the ranking with CIs over seeds (by hand), and its files. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { IterationMetrics } from '../../../runtime/pipeline/metrics.ts';
import type { JobResult } from '../../../runtime/sweep/job.ts';
import { planSweep } from '../../../runtime/sweep/plan.ts';
import { metricValue, rankConfigs, sensitivityPanels, writeReport } from '../../../runtime/sweep/report.ts';
import { marks, parseSvg, texts } from '../../helpers/svg.ts';
import { writeTinyPipeline } from '../../helpers/tiny-pipeline.ts';

const dir = mkdtempSync(join(tmpdir(), 'loom-report-'));
writeTinyPipeline(dir);
const sweep = (over: Record<string, unknown> = {}) => planSweep({ sweep: 's', pipeline: 'p.json', grid: { 'optimizer.lr': [0.001, 0.01, 0.1] }, seeds: 3, ...over }, join(dir, 'sweep.json'));

/** Ten iterations of 100 steps; `rets` are the returns of iterations 1.. (null: no episode ended). */
const run = (rets: (number | null)[]): IterationMetrics[] =>
  Array.from({ length: 10 }, (_, i) => {
    const ret = i < rets.length ? rets[i]! : rets[rets.length - 1]!;
    return { iteration: i + 1, global_step: (i + 1) * 100, lr: 0, episodic_return: ret, episodic_length: ret, episodes: ret === null ? 0 : 1, loss: 0, pg_loss: 0, v_loss: 0, entropy: 0, approx_kl: 0, clipfrac: 0, grad_norm: 0, grad_clip_frac: 0, explained_variance: 0, steps_per_sec: 0 };
  });
const result = (id: string, metrics: IterationMetrics[]): JobResult => ({ id, status: 'finished', metrics, wallSec: 2, envSteps: 1000 });

// Final returns per seed (constant curves): lr=0.001: 10, 20, 30; lr=0.01: 40, 50, 60; lr=0.1: 5, 5 (third seed unfinished).
const finals: Record<string, number[]> = { 'lr=0.001': [10, 20, 30], 'lr=0.01': [40, 50, 60], 'lr=0.1': [5, 5] };
const results = (plan: ReturnType<typeof sweep>) =>
  plan.jobs.flatMap((j) => {
    const v = finals[j.config]![j.seed - 1];
    return v === undefined ? [] : [result(j.id, run([v]))];
  });

describe('metrics of a run', () => {
  const ms = run([null, null, 10, 30, 50, 70, 90, 110, 130, 150]);
  it('final return, mean return over training, steps to a threshold (or the whole budget)', () => {
    // Last 10% = the last iteration.
    expect(metricValue(ms, 'final_return', null)).toBe(150);
    // Mean over the 8 iterations with a value: (10 + 30 + ... + 150) / 8 = 640 / 8.
    expect(metricValue(ms, 'auc', null)).toBe(80);
    expect(metricValue(ms, 'steps_to_threshold', 60)).toBe(600);
    expect(metricValue(ms, 'steps_to_threshold', 1000)).toBe(1000);
  });
});

describe('ranking', () => {
  it('by final return, best first, with t-based CIs over seeds computed by hand', () => {
    const plan = sweep();
    const r = rankConfigs(plan, results(plan));
    expect(r.map((x) => [x.rank, x.config.id])).toEqual([[1, 'lr=0.01'], [2, 'lr=0.001'], [3, 'lr=0.1']]);
    // 40, 50, 60: mean 50, s = 10, half-width t(0.975, 2) * 10 / sqrt(3) = 4.303 * 5.7735 = 24.843
    expect(r[0]!.metric.mean).toBe(50);
    expect(r[0]!.metric.ci95!).toBeCloseTo(24.843, 3);
    expect(r[1]!.metric.mean).toBe(20);
    // 5, 5: mean 5, s = 0, half-width 0; two seeds only.
    expect(r[2]!.metric).toEqual({ n: 2, mean: 5, ci95: 0 });
    expect(r[0]!.perSeed).toEqual([{ seed: 1, value: 40 }, { seed: 2, value: 50 }, { seed: 3, value: 60 }]);
    expect(r[0]!.summary.finalReturn.mean).toBe(50);
  });

  it('steps to a threshold: fewer is better', () => {
    const plan = sweep({ metric: 'steps_to_threshold', threshold: 15 });
    // lr=0.001 reaches 15 only with seeds 2 and 3 (at step 100), seed 1 counts its budget (1000):
    // mean 400; lr=0.01 reaches it at 100 with every seed; lr=0.1 never: 1000.
    const r = rankConfigs(plan, results(plan));
    expect(r.map((x) => [x.config.id, x.metric.mean])).toEqual([['lr=0.01', 100], ['lr=0.001', 400], ['lr=0.1', 1000]]);
  });

  it('stopped runs do not count; configurations without runs are left out', () => {
    const plan = sweep();
    const rs = results(plan).map((x) => (x.id.startsWith('lr=0.01/') ? { ...x, status: 'stopped' as const } : x));
    expect(rankConfigs(plan, rs).map((x) => x.config.id)).toEqual(['lr=0.001', 'lr=0.1']);
  });
});

describe('sensitivity', () => {
  it("one point per configuration at its value; the CI bar clipped to the seeds' range", () => {
    const plan = sweep();
    const [panel] = sensitivityPanels(plan, rankConfigs(plan, results(plan)));
    expect(panel).toMatchObject({ param: 'optimizer.lr', log: true });
    // lr=0.01: 50 ± 24.84 reaches past the seeds (40..60); lr=0.1: 5 ± 0.
    expect(panel!.points).toEqual([{ x: 0.01, mean: 50, lo: 40, hi: 60 }, { x: 0.001, mean: 20, lo: 10, hi: 30 }, { x: 0.1, mean: 5, lo: 5, hi: 5 }]);
  });
});

describe('files', () => {
  it('writes the ranking as markdown, CSV and JSON, and the sensitivity figure on a log axis', async () => {
    const plan = sweep();
    const out = join(dir, 'out');
    const { files } = await writeReport(plan, results(plan), out);
    const md = readFileSync(files.markdown, 'utf8');
    expect(md).toContain('| 1 | lr=0.01 | 0.01 | 50.0 ± 24.8 | 3 |');
    expect(md).toContain('## Per configuration');
    const csv = readFileSync(files.csv, 'utf8').split('\n');
    expect(csv[0]).toBe('rank,configuration,optimizer.lr,metric,metric_mean,metric_ci95,metric_n,final_return_mean,final_return_ci95,wall_sec_per_seed,env_steps_per_sec');
    expect(csv[1]!.startsWith('1,lr=0.01,0.01,final_return,50,24.84')).toBe(true);
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    expect(json.ranking[0]).toMatchObject({ rank: 1, configuration: 'lr=0.01', values: { 'optimizer.lr': 0.01 } });
    const svg = parseSvg(readFileSync(files.sensitivity, 'utf8'));
    // Three configurations: three points and three CI bars.
    expect(marks(svg, 'symbol').flat()).toHaveLength(3);
    expect(marks(svg, 'rule').flat()).toHaveLength(3);
    // Log ticks: each decade is labelled (a linear axis reads 0.00, 0.02, ...).
    const labels = texts(svg, 'role-axis-label');
    expect(labels).toEqual(expect.arrayContaining(['0.001', '0.01', '0.1']));
    expect(texts(svg, 'role-axis-title')).toEqual(expect.arrayContaining(['optimizer.lr', 'final return']));
    expect(readFileSync(files.curves, 'utf8')).toContain('<svg');
  });
});
