/**
 * A sweep's report: per configuration, `loom compare`'s summary over its seeds; a ranking of the
 * configurations by the sweep's metric, with 95% CIs over seeds (Student t, as compare); the
 * parameter-sensitivity figure and the mean learning curves. sweep.md, sweep.csv, sweep.json,
 * sensitivity.svg and curves.svg, each written atomically.
 */
import { basename } from 'node:path';
import { printable } from '../../compiler/text.ts';
import { areaUnderCurve, curvesSvg, finalReturn, markdownCell, markdownTable, meanCI, stepsToThreshold, summarise, type MeanCI, type PipelineSummary } from '../compare.ts';
import { csvLine } from '../csv.ts';
import { BOOTSTRAP_REPS } from '../stats.ts';
import { ensureDir, outputPath, removeStaleTemps, writeFileAtomic } from '../fs.ts';
import type { IterationMetrics } from '../pipeline/metrics.ts';
import { renderSvg, sensitivitySpec, type SensitivityPanel } from '../plot.ts';
import type { JobResult } from './job.ts';
import type { SweepConfig, SweepMetric, SweepPlan } from './plan.ts';

export const METRIC_TITLES: Record<SweepMetric, string> = {
  final_return: 'final return',
  auc: 'mean return over training',
  steps_to_threshold: 'env steps to the threshold',
};

/** Whether a larger value of the metric is better. */
const higherIsBetter = (m: SweepMetric) => m !== 'steps_to_threshold';

/**
 * One run's value of the metric. final_return: compare's final return; auc: the mean of the
 * learning curve over all iterations where it has a value; steps_to_threshold: the first env step
 * where the curve reaches the threshold, or the run's whole budget when it never does (so a
 * configuration is not ranked on the seeds that happened to succeed).
 */
export function metricValue(metrics: readonly IterationMetrics[], metric: SweepMetric, threshold: number | null): number | null {
  if (metric === 'final_return') return finalReturn(metrics);
  if (metric === 'auc') return areaUnderCurve(metrics);
  if (threshold === null) return null;
  return stepsToThreshold(metrics, threshold) ?? metrics.at(-1)?.global_step ?? null;
}

export interface RankedConfig {
  rank: number;
  config: SweepConfig;
  /** The metric over the configuration's finished seeds. */
  metric: MeanCI;
  perSeed: { seed: number; value: number | null }[];
  summary: PipelineSummary;
}

/**
 * The configurations with finished runs, best first by the mean of the metric over their seeds
 * (configurations without a value last; ties keep the plan's order).
 */
export function rankConfigs(plan: SweepPlan, results: readonly JobResult[]): RankedConfig[] {
  const byId = new Map(results.filter((r) => r.status !== 'stopped').map((r) => [r.id, r]));
  const ranked = plan.configs.flatMap((config) => {
    const runs = plan.jobs.filter((j) => j.config === config.id).flatMap((j) => {
      const r = byId.get(j.id);
      return r ? [{ seed: j.seed, metrics: r.metrics, wallSec: r.wallSec, envSteps: r.envSteps }] : [];
    });
    if (!runs.length) return [];
    const perSeed = runs.map((r) => ({ seed: r.seed, value: metricValue(r.metrics, plan.metric, plan.threshold) }));
    const metric = meanCI(perSeed.flatMap((s) => (s.value === null ? [] : [s.value])));
    return [{ rank: 0, config, metric, perSeed, summary: summarise(config.id, runs, plan.threshold) }];
  });
  const sign = higherIsBetter(plan.metric) ? -1 : 1;
  ranked.sort((a, b) => (a.metric.mean === null ? 1 : 0) - (b.metric.mean === null ? 1 : 0) || (a.metric.mean === null || b.metric.mean === null ? 0 : sign * (a.metric.mean - b.metric.mean)));
  ranked.forEach((r, i) => (r.rank = i + 1));
  return ranked;
}

const num = (x: number | null, d = 1) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(d));
const meanText = (m: MeanCI, d: number) => (m.mean === null ? '-' : m.ci95 === null ? num(m.mean, d) : `${num(m.mean, d)} ± ${num(m.ci95, d)}`);
const valueCell = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** The ranking as a markdown table: rank, configuration, each swept value, the metric (mean ± 95% CI) and its seeds. */
export function rankingTable(plan: SweepPlan, ranked: readonly RankedConfig[]): string {
  const digits = plan.metric === 'steps_to_threshold' ? 0 : 1;
  const head = ['rank', 'configuration', ...plan.params.map((p) => p.path), `${METRIC_TITLES[plan.metric]} (mean ± 95% CI)`, 'seeds'];
  const lines = [`| ${head.map(markdownCell).join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of ranked) lines.push(`| ${[String(r.rank), r.config.id, ...plan.params.map((p) => valueCell(r.config.values[p.path])), meanText(r.metric, digits), String(r.metric.n)].map(markdownCell).join(' | ')} |`);
  return lines.join('\n') + '\n';
}

export const SWEEP_CSV_COLUMNS = ['rank', 'configuration', 'metric', 'metric_mean', 'metric_ci95', 'metric_n', 'final_return_mean', 'final_return_ci95', 'wall_sec_per_seed', 'env_steps_per_sec'];

/** One row per ranked configuration; the swept fields' values follow `configuration`. */
export function rankingCsv(plan: SweepPlan, ranked: readonly RankedConfig[]): string {
  const [rank, config, ...rest] = SWEEP_CSV_COLUMNS;
  const lines = [csvLine([rank, config, ...plan.params.map((p) => p.path), ...rest])];
  for (const r of ranked) {
    const values = plan.params.map((p) => {
      const v = r.config.values[p.path];
      return typeof v === 'number' || typeof v === 'string' ? v : JSON.stringify(v);
    });
    const s = r.summary;
    lines.push(csvLine([r.rank, r.config.id, ...values, plan.metric, r.metric.mean, r.metric.ci95, r.metric.n, s.finalReturn.mean, s.finalReturn.ci95, s.wallSec, s.envStepsPerSec]));
  }
  return lines.join('\n') + '\n';
}

export function sweepTitle(plan: SweepPlan): string {
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
  return `${plan.sweep}: ${n(plan.configs.length, 'configuration')} x ${n(plan.seeds.length, 'seed')}${plan.steps !== undefined ? `, ${plan.steps} steps` : ''}`;
}

/** Per swept field (or the configurations, when nothing is swept), each configuration's point: its value, and the metric's mean and CI bar. */
export function sensitivityPanels(plan: SweepPlan, ranked: readonly RankedConfig[]): SensitivityPanel[] {
  return (plan.params.length ? plan.params : [{ path: 'configuration', label: 'configuration', log: false }]).map((p) => ({
    param: p.path,
    log: p.log,
    points: ranked.flatMap((r) => {
      if (r.metric.mean === null) return [];
      const v = plan.params.length ? r.config.values[p.path] : r.config.id;
      const h = r.metric.ci95 ?? 0;
      // As compare's bands: the t interval can reach past every seed when seeds are few; no seed went there.
      const seeds = r.perSeed.flatMap((q) => (q.value === null ? [] : [q.value]));
      return [{ x: typeof v === 'number' ? v : valueCell(v), mean: r.metric.mean, lo: Math.max(r.metric.mean - h, Math.min(...seeds)), hi: Math.min(r.metric.mean + h, Math.max(...seeds)) }];
    }),
  }));
}

export function sensitivitySvg(plan: SweepPlan, ranked: readonly RankedConfig[]): Promise<string> {
  const panels = sensitivityPanels(plan, ranked);
  return renderSvg(
    sensitivitySpec({
      title: sweepTitle(plan),
      subtitle: [`${METRIC_TITLES[plan.metric]} of each configuration against each swept field`, "point: mean over seeds; bar: its 95% CI (Student t), clipped to the seeds' range"],
      yTitle: METRIC_TITLES[plan.metric],
      panels,
    }),
  );
}

export interface ReportFiles {
  markdown: string;
  csv: string;
  json: string;
  sensitivity: string;
  curves: string;
}

export const REPORT_FILES = ['sweep.md', 'sweep.csv', 'sweep.json', 'sensitivity.svg', 'curves.svg'] as const;

/** Writes the report of `results` into `outRoot`; returns the ranking and the files. */
export async function writeReport(plan: SweepPlan, results: readonly JobResult[], outRoot: string): Promise<{ ranked: RankedConfig[]; files: ReportFiles }> {
  ensureDir(outRoot);
  removeStaleTemps(outRoot, [...REPORT_FILES]);
  const [markdown, csv, json, sensitivity, curves] = REPORT_FILES.map((f) => outputPath(outRoot, f)) as [string, string, string, string, string];
  const ranked = rankConfigs(plan, results);
  const title = sweepTitle(plan);
  const summaries = ranked.map((r) => r.summary);
  const how = `Ranked by ${METRIC_TITLES[plan.metric]}${plan.metric === 'steps_to_threshold' ? ` (threshold ${plan.threshold}; a run that never reaches it counts its whole budget; fewer is better)` : ''}: mean over seeds, 95% CI with Student t. Final return: mean of the learning curve over the last 10% of iterations. Per configuration, as in loom compare: the final return's IQM (25% trimmed mean) and mean with stratified bootstrap 95% CIs (${BOOTSTRAP_REPS} replicates, fixed seed) and its mean ± Student t CI; AUC: mean of the learning curve over all iterations.`;
  writeFileAtomic(markdown, `# ${printable(title)}\n\nBase pipeline: ${printable(basename(plan.pipeline))}. ${how}\n\n${rankingTable(plan, ranked)}\n## Per configuration\n\n${markdownTable(summaries, plan.threshold)}`);
  writeFileAtomic(csv, rankingCsv(plan, ranked));
  const doc = {
    sweep: plan.sweep,
    pipeline: plan.pipeline,
    metric: plan.metric,
    threshold: plan.threshold,
    seeds: plan.seeds,
    steps: plan.steps ?? null,
    params: plan.params,
    ranking: ranked.map((r) => ({ rank: r.rank, configuration: r.config.id, values: r.config.values, metric: r.metric, per_seed: r.perSeed })),
    results: summaries,
  };
  writeFileAtomic(json, JSON.stringify(doc, null, 2) + '\n');
  writeFileAtomic(sensitivity, await sensitivitySvg(plan, ranked));
  writeFileAtomic(curves, await curvesSvg(summaries, title));
  return { ranked, files: { markdown, csv, json, sensitivity, curves } };
}
