/**
 * `loom compare`: runs several pipelines over the same seeds (sequentially) and summarises them:
 * final return mean ± 95% CI (Student t), steps to a return threshold, wall time, env steps/s,
 * and one SVG of the mean learning curves (rolling means over episodes) with shaded 95% CI bands
 * clipped to the seeds' range. Markdown, CSV and JSON tables; every file is written atomically.
 */
import { basename } from 'node:path';
import { printable } from '../compiler/text.ts';
import { csvLine } from './csv.ts';
import { ensureDir, outputPath, removeStaleTemps, writeFileAtomic } from './fs.ts';
import { bandedCurvesSpec, renderSvg } from './plot.ts';
import { trainAsync } from './pipeline/driver.ts';
import type { PipelineConfig } from './pipeline/config.ts';
import { rollingReturns, SMOOTHING_EPISODES, type IterationMetrics } from './pipeline/metrics.ts';
import type { ProgressInfo } from './pipeline/progress.ts';
import { checkRunFolder, type Invocation } from './pipeline/run-record.ts';
import * as tf from '@tensorflow/tfjs';

/** Two-sided 95% quantiles t_{0.975, df} for df = 1..30. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086,
  2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** t_{0.975, df}; beyond the table, the Cornish-Fisher expansion (error < 1e-3 for df > 30). */
export function tQuantile975(df: number): number {
  if (df < 1) return NaN;
  if (df <= 30) return T975[df - 1]!;
  const z = 1.959964;
  return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df * df);
}

export interface MeanCI {
  n: number;
  mean: number | null;
  /** Half-width of the 95% CI: t_{0.975, n-1} · s / √n with the sample (n − 1) std; null when n < 2. */
  ci95: number | null;
}

export function meanCI(xs: readonly number[]): MeanCI {
  const n = xs.length;
  if (n === 0) return { n, mean: null, ci95: null };
  const m = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean: m, ci95: null };
  const s = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
  return { n, mean: m, ci95: (tQuantile975(n - 1) * s) / Math.sqrt(n) };
}

/**
 * A run's learning curve on its iteration grid: the mean return of the episodes that finished in
 * each iteration, carried forward through iterations where none finished (null before the first).
 */
export function curve(metrics: readonly IterationMetrics[]): { step: number; ret: number | null }[] {
  let last: number | null = null;
  return metrics.map((m) => {
    if (m.episodic_return !== null) last = m.episodic_return;
    return { step: m.global_step, ret: last };
  });
}

/** Final return of a run: the mean of its curve over the last 10% of iterations (at least one). */
export function finalReturn(metrics: readonly IterationMetrics[]): number | null {
  const c = curve(metrics);
  const k = Math.max(1, Math.ceil(c.length / 10));
  const tail = c.slice(-k).map((p) => p.ret).filter((r): r is number => r !== null);
  return tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : null;
}

/** The first env step at which the curve reaches `threshold`, or null. */
export function stepsToThreshold(metrics: readonly IterationMetrics[], threshold: number): number | null {
  return curve(metrics).find((p) => p.ret !== null && p.ret >= threshold)?.step ?? null;
}

export interface SeedRun {
  seed: number;
  metrics: IterationMetrics[];
  wallSec: number;
  envSteps: number;
}

export interface PipelineSummary {
  pipeline: string;
  seeds: number;
  finalReturn: MeanCI;
  /** Mean env steps to the threshold over the seeds that reached it; `reached` of `seeds`. */
  stepsToThreshold: { mean: number | null; reached: number } | null;
  /** Mean wall time per seed, seconds. */
  wallSec: number;
  envStepsPerSec: number;
  /**
   * Over the seeds, at each iteration: the mean of their rolling mean returns (over the last
   * SMOOTHING_EPISODES episodes) with its 95% CI [lo, hi], clipped to the seeds' range; `raw`, the
   * mean of their unsmoothed curves; `n`, the seeds with a value.
   */
  curve: { step: number; mean: number; lo: number; hi: number; raw: number; n: number }[];
}

export function summarise(pipeline: string, runs: readonly SeedRun[], threshold: number | null): PipelineSummary {
  const finals = runs.map((r) => finalReturn(r.metrics)).filter((x): x is number => x !== null);
  let stt: PipelineSummary['stepsToThreshold'] = null;
  if (threshold !== null) {
    const hit = runs.map((r) => stepsToThreshold(r.metrics, threshold)).filter((x): x is number => x !== null);
    stt = { mean: hit.length ? hit.reduce((a, b) => a + b, 0) / hit.length : null, reached: hit.length };
  }
  const wall = runs.reduce((a, r) => a + r.wallSec, 0);
  const steps = runs.reduce((a, r) => a + r.envSteps, 0);
  // Seeds of one pipeline share the iteration grid; points use the seeds that have a value there.
  const curves = runs.map((r) => curve(r.metrics));
  const smooth = runs.map((r) => rollingReturns(r.metrics, SMOOTHING_EPISODES));
  const len = Math.min(...curves.map((c) => c.length));
  const pts: PipelineSummary['curve'] = [];
  const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);
  for (let i = 0; i < len; i++) {
    // A seed has a rolling mean exactly where its raw curve has a value: from its first episode on.
    const vals = nums(smooth.map((c) => c[i]!));
    if (!vals.length) continue;
    const s = meanCI(vals);
    const h = s.ci95 ?? 0;
    // The t interval can reach past every seed when seeds are few; no seed went there.
    const lo = Math.max(s.mean! - h, Math.min(...vals));
    const hi = Math.min(s.mean! + h, Math.max(...vals));
    pts.push({ step: curves[0]![i]!.step, mean: s.mean!, lo, hi, raw: meanCI(nums(curves.map((c) => c[i]!.ret))).mean!, n: vals.length });
  }
  return {
    pipeline,
    seeds: runs.length,
    finalReturn: meanCI(finals),
    stepsToThreshold: stt,
    wallSec: runs.length ? wall / runs.length : 0,
    envStepsPerSec: wall > 0 ? steps / wall : 0,
    curve: pts,
  };
}

const fmt = (x: number | null, d = 1) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(d));
/** A pipeline name as one markdown cell: on one line, with no `|` that would end the cell. */
export const markdownCell = (s: string) => printable(s).replace(/\|/g, '\\|');

export function markdownTable(rows: readonly PipelineSummary[], threshold: number | null): string {
  const head = ['pipeline', 'seeds', 'final return (mean ± 95% CI)', ...(threshold !== null ? [`steps to ${threshold} (reached)`] : []), 'wall s / seed', 'env steps/s'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const f = r.finalReturn;
    const cells = [
      markdownCell(r.pipeline),
      String(r.seeds),
      f.mean === null ? '-' : f.ci95 === null ? fmt(f.mean) : `${fmt(f.mean)} ± ${fmt(f.ci95)}`,
      ...(r.stepsToThreshold ? [`${fmt(r.stepsToThreshold.mean, 0)} (${r.stepsToThreshold.reached}/${r.seeds})`] : []),
      fmt(r.wallSec),
      fmt(r.envStepsPerSec, 0),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

const csvNum = (x: number | null) => (x === null || !Number.isFinite(x) ? null : x);
export const CSV_COLUMNS = ['pipeline', 'seeds', 'final_return_mean', 'final_return_ci95', 'final_return_n', 'steps_to_threshold_mean', 'threshold_reached', 'wall_sec_per_seed', 'env_steps_per_sec'];

export function csvTable(rows: readonly PipelineSummary[]): string {
  const lines = [csvLine(CSV_COLUMNS)];
  for (const r of rows)
    lines.push(
      csvLine([r.pipeline, r.seeds, csvNum(r.finalReturn.mean), csvNum(r.finalReturn.ci95), r.finalReturn.n, csvNum(r.stepsToThreshold?.mean ?? null), r.stepsToThreshold ? r.stepsToThreshold.reached : null, csvNum(r.wallSec), csvNum(r.envStepsPerSec)]),
    );
  return lines.join('\n') + '\n';
}

export function curvesSvg(rows: readonly PipelineSummary[], title: string): Promise<string> {
  return renderSvg(
    bandedCurvesSpec({
      title,
      subtitle: [`solid: mean over seeds of the rolling mean over the last ${SMOOTHING_EPISODES} episodes`, "band: its 95% CI, clipped to the seeds' range; faint: unsmoothed mean"],
      yTitle: 'episodic return',
      series: rows.map((r) => ({ name: `${r.pipeline} (${r.seeds} seeds)`, points: r.curve })),
    }),
  );
}

/** The figure and table title: every environment and budget among the pipelines, in order. */
export function compareTitle(pipelines: readonly { env: { name: string }; total_steps: number }[], seeds: number): string {
  const uniq = (xs: string[]) => [...new Set(xs)].join(', ');
  return `${uniq(pipelines.map((p) => p.env.name))}: ${seeds} seeds, ${uniq(pipelines.map((p) => String(p.total_steps)))} steps`;
}

export interface CompareOptions {
  outDir: string;
  seeds: readonly number[];
  threshold?: number | null;
  backend?: string;
  /** Start over in run folders that hold finished runs or checkpoints. */
  force?: boolean;
  /** For each run's run.json: the `--set` overrides and the command line. */
  overrides?: readonly string[];
  invocation?: Invocation;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
  onProgress?: (label: string, p: ProgressInfo) => void;
  /** What a run does before its first iteration (see TrainOptions.onStage). */
  onStage?: (label: string, text: string) => void;
  /** Asked between iterations (Ctrl-C): the current run saves a checkpoint and compare stops. */
  shouldStop?: () => boolean;
}

export interface CompareResult {
  rows: PipelineSummary[];
  files: { markdown: string; csv: string; json: string; svg: string };
  /** The run that shouldStop stopped (its folder holds a checkpoint); no tables were written. */
  stopped?: { label: string; dir: string; iteration: number };
}

/** Runs every pipeline over every seed (sequentially; each run in DIR/<pipeline>/s<seed>) and writes the tables and plot. */
export async function compare(pipelines: readonly PipelineConfig[], opts: CompareOptions): Promise<CompareResult> {
  const threshold = opts.threshold ?? null;
  const files = {
    markdown: outputPath(opts.outDir, 'compare.md'),
    csv: outputPath(opts.outDir, 'compare.csv'),
    json: outputPath(opts.outDir, 'compare.json'),
    svg: outputPath(opts.outDir, 'compare.svg'),
  };
  // A folder that cannot be written fails now, not after the runs; compare is its only writer.
  ensureDir(opts.outDir);
  removeStaleTemps(opts.outDir, Object.values(files).map((f) => basename(f)));
  const rows: PipelineSummary[] = [];
  const names = new Set<string>();
  const plan = pipelines.map((base) => {
    let name = base.pipeline;
    for (let i = 2; names.has(name); i++) name = `${base.pipeline}-${i}`;
    names.add(name);
    const runs = opts.seeds.map((seed) => {
      const cfg: PipelineConfig = { ...base, seed, eval: { ...base.eval, episodes: 0, every: 0 }, checkpoint: { every: 0 } };
      return { seed, cfg, dir: outputPath(opts.outDir, name, `s${seed}`) };
    });
    return { name, runs };
  });
  // Every run folder is checked before the first run, not when its turn comes hours later.
  for (const { runs } of plan) for (const r of runs) checkRunFolder(r.dir, r.cfg, { force: opts.force });
  for (const { name, runs: planned } of plan) {
    const runs: SeedRun[] = [];
    for (const { seed, cfg, dir } of planned) {
      const label = `${printable(name)} seed ${seed}`;
      opts.log?.(`${label}: start\n`);
      const t0 = performance.now();
      const r = await trainAsync(cfg, {
        outDir: dir,
        backend: opts.backend,
        force: opts.force,
        overrides: opts.overrides,
        invocation: opts.invocation,
        shouldStop: opts.shouldStop,
        onProgress: (p) => opts.onProgress?.(label, p),
        onStage: (t) => opts.onStage?.(label, t),
      });
      const wallSec = (performance.now() - t0) / 1000;
      tf.dispose(Object.values(r.params));
      if (r.stopped) return { rows, files, stopped: { label, dir, iteration: r.iterations } };
      runs.push({ seed, metrics: [...r.metrics], wallSec, envSteps: r.globalStep });
      const fr = finalReturn(r.metrics);
      opts.log?.(`${label}: done in ${wallSec.toFixed(1)} s, final return ${fmt(fr)}\n`);
    }
    rows.push(summarise(name, runs, threshold));
  }
  const env = [...new Set(pipelines.map((p) => p.env.name))].join(', ');
  const steps = pipelines[0]?.total_steps ?? 0;
  const title = compareTitle(pipelines, opts.seeds.length);
  writeFileAtomic(files.markdown, `# ${printable(title)}\n\nFinal return: mean of the learning curve over the last 10% of iterations, per seed; 95% CI with Student t.\n\n${markdownTable(rows, threshold)}`);
  writeFileAtomic(files.csv, csvTable(rows));
  writeFileAtomic(files.json, JSON.stringify({ env, steps, seeds: opts.seeds, threshold, results: rows }, null, 2) + '\n');
  writeFileAtomic(files.svg, await curvesSvg(rows, title));
  return { rows, files };
}
