/**
 * `loom compare`: runs several pipelines over the same seeds and summarises each over its seeds,
 * with rliable's statistics (runtime/stats.ts): the final return's interquartile mean and mean with
 * stratified bootstrap 95% CIs, and its mean ± Student t CI; the area under the learning curve; the
 * final deterministic evaluation; the probability of improvement over a baseline pipeline, with a
 * Mann–Whitney p-value adjusted by Holm–Bonferroni; steps to a return threshold, wall time, env
 * steps/s; and, when a group pipeline (several env steps per visited state) is in the table, the
 * final return at equal visited states. Runs are the sweep's jobs, run on the local pool or in this
 * process: finished runs (also those of `loom train`) are reused and stopped ones resumed. A
 * program pipeline's seeds run as one vmapped program (runtime/program/compare.ts).
 * Markdown, CSV and JSON tables, the mean learning curves and the performance profiles; every file
 * is written atomically.
 */
import { basename, resolve } from 'node:path';
import { LoomError } from '../compiler/errors.ts';
import { packageVersion } from '../compiler/package-root.ts';
import { printable } from '../compiler/text.ts';
import { csvLine } from './csv.ts';
import { ensureDir, outputPath, removeStaleTemps, writeFileAtomic } from './fs.ts';
import { bandedCurvesSpec, profilesSpec, renderSvg } from './plot.ts';
import { parseOverride, stepsPerVisitedState, type PipelineConfig } from './pipeline/config.ts';
import { rollingReturns, SMOOTHING_EPISODES, type IterationMetrics } from './pipeline/metrics.ts';
import type { ProgressInfo } from './pipeline/progress.ts';
import type { Invocation } from './pipeline/run-record.ts';
import { BOOTSTRAP_REPS, BOOTSTRAP_SEED, bootstrapCI, grid, holm, iqm, mannWhitneyP, meanOfAll, performanceProfile, probabilityOfImprovement, type Estimate, type ProfilePoint } from './stats.ts';
import { checkJobFolder, finishedResult, jobDir, runJob, type JobResult, type SweepJob } from './sweep/job.ts';
import { runPool } from './sweep/pool.ts';
import type { ProgramConfig } from './program/config.ts';
import { checkReadout, programFolders, readProgramRuns, runProgramFolders, type ProgramReadout } from './program/compare.ts';

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

/** What the statistics read of a metrics row: a pipeline's row, or a program's row with its return metric (runtime/program/compare.ts). */
export type CurveRow = Pick<IterationMetrics, 'global_step' | 'episodic_return' | 'episodes' | 'visited_states'>;

/**
 * A run's learning curve on its iteration grid: the mean return of the episodes that finished in
 * each iteration, carried forward through iterations where none finished (null before the first).
 */
export function curve(metrics: readonly CurveRow[]): { step: number; ret: number | null }[] {
  let last: number | null = null;
  return metrics.map((m) => {
    if (m.episodic_return !== null) last = m.episodic_return;
    return { step: m.global_step, ret: last };
  });
}

/** Final return of a run: the mean of its curve over the last 10% of iterations (at least one). */
export function finalReturn(metrics: readonly CurveRow[]): number | null {
  const c = curve(metrics);
  const k = Math.max(1, Math.ceil(c.length / 10));
  const tail = c.slice(-k).map((p) => p.ret).filter((r): r is number => r !== null);
  return tail.length ? tail.reduce((a, b) => a + b, 0) / tail.length : null;
}

/** The first env step at which the curve reaches `threshold`, or null. */
export function stepsToThreshold(metrics: readonly CurveRow[], threshold: number): number | null {
  return curve(metrics).find((p) => p.ret !== null && p.ret >= threshold)?.step ?? null;
}

/**
 * Area under a run's learning curve, normalised: the mean of its curve over the iterations of its
 * env-step grid where the curve has a value (from the first finished episode on).
 */
export function areaUnderCurve(metrics: readonly CurveRow[]): number | null {
  const rets = curve(metrics).flatMap((p) => (p.ret === null ? [] : [p.ret]));
  return rets.length ? rets.reduce((a, b) => a + b, 0) / rets.length : null;
}

/** The states a row's run had visited: its visited_states, or for a run that does not log them, its env steps over the steps per visited state. */
export const visitedStates = (m: CurveRow, stepsPerState: number): number => m.visited_states ?? m.global_step / stepsPerState;

/** The final return of a run cut at `states` visited states (the rows up to there), or null when no row is that early. */
export function finalReturnAtVisited(metrics: readonly CurveRow[], states: number, stepsPerState: number): number | null {
  const rows = metrics.filter((m) => visitedStates(m, stepsPerState) <= states);
  return rows.length ? finalReturn(rows) : null;
}

export interface SeedRun {
  seed: number;
  metrics: readonly CurveRow[];
  wallSec: number;
  envSteps: number;
  /** Mean return of the run's final deterministic evaluation (absent or null: not evaluated). */
  evalReturn?: number | null;
  /** Env steps per visited state (default 1). */
  stepsPerVisitedState?: number;
}

/** Per run: the scores the statistics are taken over. */
export interface RunScores {
  seed: number;
  finalReturn: number | null;
  auc: number | null;
  evalReturn: number | null;
  envSteps: number;
  visitedStates: number;
  wallSec: number;
}

/** A statistic of the seeds' scores: interquartile mean and mean, each with its stratified bootstrap 95% percentile CI. */
export interface Robust {
  n: number;
  iqm: Estimate | null;
  mean: Estimate | null;
}

export interface PipelineSummary {
  pipeline: string;
  seeds: number;
  /** Final return: mean ± 95% CI with Student t. */
  finalReturn: MeanCI;
  /** Final return: IQM and mean with bootstrap CIs. */
  final: Robust;
  /** Area under the learning curve (areaUnderCurve) over the seeds. */
  auc: Robust;
  /** Final deterministic evaluation over the seeds that were evaluated (n 0 when none). */
  evalReturn: Robust;
  /** Mean env steps to the threshold over the seeds that reached it; `reached` of `seeds`. */
  stepsToThreshold: { mean: number | null; reached: number } | null;
  /** Mean wall time per seed, seconds. */
  wallSec: number;
  envStepsPerSec: number;
  /** Env steps per visited state: 1, or G · horizon for a group pipeline. */
  stepsPerVisitedState: number;
  perRun: RunScores[];
  /**
   * Against the table's baseline (set by relateRows; null on the baseline's row): P(this run's final
   * return > a baseline run's) with its CI, and the two-sided Mann–Whitney p-value, raw and Holm-adjusted.
   */
  vsBaseline: { baseline: string; poi: Estimate | null; p: number | null; pHolm: number | null } | null;
  /** Final return at the table's common budget of visited states (set by relateRows when a group pipeline is in the table). */
  atVisited: ({ states: number } & Robust) | null;
  /**
   * Over the seeds, at each iteration: the mean of their rolling mean returns (over the last
   * SMOOTHING_EPISODES episodes) with its 95% CI [lo, hi], clipped to the seeds' range; `raw`, the
   * mean of their unsmoothed curves; `n`, the seeds with a value.
   */
  curve: { step: number; mean: number; lo: number; hi: number; raw: number; n: number }[];
}

const present = (xs: readonly (number | null)[]) => xs.filter((x): x is number => x !== null);

/** IQM and mean of scores with their bootstrap CIs (one task: the runs of one pipeline). */
export function robust(xs: readonly (number | null)[], reps = BOOTSTRAP_REPS): Robust {
  const v = present(xs);
  return { n: v.length, iqm: bootstrapCI([v], iqm, { reps }), mean: bootstrapCI([v], meanOfAll, { reps }) };
}

export function summarise(pipeline: string, runs: readonly SeedRun[], threshold: number | null, o: { reps?: number } = {}): PipelineSummary {
  const perRun: RunScores[] = runs.map((r) => {
    const k = r.stepsPerVisitedState ?? 1;
    const last = r.metrics.at(-1);
    return { seed: r.seed, finalReturn: finalReturn(r.metrics), auc: areaUnderCurve(r.metrics), evalReturn: r.evalReturn ?? null, envSteps: r.envSteps, visitedStates: last ? visitedStates(last, k) : 0, wallSec: r.wallSec };
  });
  const finals = present(perRun.map((r) => r.finalReturn));
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
  const len = curves.length ? Math.min(...curves.map((c) => c.length)) : 0;
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
    final: robust(finals, o.reps),
    auc: robust(perRun.map((r) => r.auc), o.reps),
    evalReturn: robust(perRun.map((r) => r.evalReturn), o.reps),
    stepsToThreshold: stt,
    wallSec: runs.length ? wall / runs.length : 0,
    envStepsPerSec: wall > 0 ? steps / wall : 0,
    stepsPerVisitedState: runs[0]?.stepsPerVisitedState ?? 1,
    perRun,
    vsBaseline: null,
    atVisited: null,
    curve: pts,
  };
}

/**
 * Sets what relates the rows of one table: each row's probability of improvement over the
 * baseline row and its Mann–Whitney p-value (Holm-adjusted over the table's comparisons), and,
 * when some pipeline takes several env steps per visited state, every row's final return at the
 * fewest visited states any run of the table reached. Returns the number of comparisons.
 */
export function relateRows(rows: PipelineSummary[], runs: readonly (readonly SeedRun[])[], baseline: number, o: { reps?: number } = {}): number {
  const base = rows[baseline]!;
  const finals = (r: PipelineSummary) => present(r.perRun.map((x) => x.finalReturn));
  const others = rows.flatMap((r, i) => (i === baseline ? [] : [r]));
  const raw = others.map((r) => mannWhitneyP(finals(r), finals(base)));
  const adjusted = holm(raw);
  others.forEach((r, i) => (r.vsBaseline = { baseline: base.pipeline, poi: probabilityOfImprovement([finals(r)], [finals(base)], { reps: o.reps }), p: raw[i]!, pHolm: adjusted[i]! }));
  if (rows.some((r) => r.stepsPerVisitedState > 1)) {
    const states = Math.min(...rows.flatMap((r) => r.perRun.map((x) => x.visitedStates)));
    rows.forEach((r, i) => (r.atVisited = { states, ...robust(runs[i]!.map((x) => finalReturnAtVisited(x.metrics, states, x.stepsPerVisitedState ?? 1)), o.reps) }));
  }
  return raw.filter((p) => p !== null).length;
}

const fmt = (x: number | null, d = 1) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(d));
/** An estimate as `value [lo, hi]`. */
const est = (e: Estimate | null, d = 1) => (e === null ? '-' : `${fmt(e.value, d)} [${fmt(e.lo, d)}, ${fmt(e.hi, d)}]`);
/** A p-value: 3 significant digits, or `< 0.001`. */
const pText = (p: number | null) => (p === null ? '-' : p < 0.001 ? '< 0.001' : p.toPrecision(2));
/** A pipeline name as one markdown cell: on one line, with no `|` that would end the cell. */
export const markdownCell = (s: string) => printable(s).replace(/\|/g, '\\|');

/**
 * The table: per pipeline the final return (IQM and mean with bootstrap CIs, and mean ± Student t
 * CI), the AUC's IQM, the evaluation's IQM (when a run was evaluated), the probability of
 * improvement over the baseline and its Holm-adjusted p (when a row has a baseline), steps to the
 * threshold, wall time and env steps/s.
 */
export function markdownTable(rows: readonly PipelineSummary[], threshold: number | null): string {
  const evaluated = rows.some((r) => r.evalReturn.n > 0);
  const baseline = rows.find((r) => r.vsBaseline)?.vsBaseline?.baseline;
  const head = [
    'pipeline',
    'seeds',
    'final return IQM [95% CI]',
    'final return mean [95% CI]',
    'mean ± 95% CI (t)',
    'AUC IQM [95% CI]',
    ...(evaluated ? ['eval return IQM [95% CI]'] : []),
    ...(baseline !== undefined ? [`P(> ${markdownCell(baseline)}) [95% CI]`, 'p (Holm)'] : []),
    ...(threshold !== null ? [`steps to ${threshold} (reached)`] : []),
    'wall s / seed',
    'env steps/s',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const f = r.finalReturn;
    const cells = [
      markdownCell(r.pipeline),
      String(r.seeds),
      est(r.final.iqm),
      est(r.final.mean),
      f.mean === null ? '-' : f.ci95 === null ? fmt(f.mean) : `${fmt(f.mean)} ± ${fmt(f.ci95)}`,
      est(r.auc.iqm),
      ...(evaluated ? [est(r.evalReturn.iqm)] : []),
      ...(baseline !== undefined ? (r.vsBaseline ? [est(r.vsBaseline.poi, 2), pText(r.vsBaseline.pHolm)] : ['(baseline)', '-']) : []),
      ...(r.stepsToThreshold ? [`${fmt(r.stepsToThreshold.mean, 0)} (${r.stepsToThreshold.reached}/${r.seeds})`] : []),
      fmt(r.wallSec),
      fmt(r.envStepsPerSec, 0),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

/** The rows at equal visited states (relateRows set atVisited), or '' when the table has none. */
export function visitedTable(rows: readonly PipelineSummary[]): string {
  const states = rows[0]?.atVisited?.states;
  if (states === undefined) return '';
  const head = ['pipeline', 'env steps per visited state', 'visited states per run', `final return at ${fmt(states, 0)} visited states: IQM [95% CI]`, 'mean [95% CI]'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const v = r.perRun.map((x) => x.visitedStates);
    lines.push(`| ${[markdownCell(r.pipeline), String(r.stepsPerVisitedState), fmt(v.reduce((a, b) => a + b, 0) / Math.max(1, v.length), 0), est(r.atVisited?.iqm ?? null), est(r.atVisited?.mean ?? null)].join(' | ')} |`);
  }
  return lines.join('\n') + '\n';
}

const csvNum = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? null : x);
const estCells = (e: Estimate | null | undefined) => [csvNum(e?.value), csvNum(e?.lo), csvNum(e?.hi)];
export const CSV_COLUMNS = [
  'pipeline', 'seeds', 'final_return_mean', 'final_return_ci95', 'final_return_n', 'steps_to_threshold_mean', 'threshold_reached', 'wall_sec_per_seed', 'env_steps_per_sec',
  'final_return_iqm', 'final_return_iqm_lo', 'final_return_iqm_hi', 'final_return_mean_lo', 'final_return_mean_hi',
  'auc_iqm', 'auc_iqm_lo', 'auc_iqm_hi', 'auc_mean', 'auc_mean_lo', 'auc_mean_hi',
  'eval_return_n', 'eval_return_iqm', 'eval_return_iqm_lo', 'eval_return_iqm_hi', 'eval_return_mean', 'eval_return_mean_lo', 'eval_return_mean_hi',
  'baseline', 'poi', 'poi_lo', 'poi_hi', 'p_mann_whitney', 'p_holm',
  'steps_per_visited_state', 'visited_states', 'final_return_at_visited_iqm', 'final_return_at_visited_iqm_lo', 'final_return_at_visited_iqm_hi',
];

export function csvTable(rows: readonly PipelineSummary[]): string {
  const lines = [csvLine(CSV_COLUMNS)];
  for (const r of rows) {
    const b = r.vsBaseline;
    lines.push(
      csvLine([
        r.pipeline, r.seeds, csvNum(r.finalReturn.mean), csvNum(r.finalReturn.ci95), r.finalReturn.n, csvNum(r.stepsToThreshold?.mean ?? null), r.stepsToThreshold ? r.stepsToThreshold.reached : null, csvNum(r.wallSec), csvNum(r.envStepsPerSec),
        ...estCells(r.final.iqm), csvNum(r.final.mean?.lo), csvNum(r.final.mean?.hi),
        ...estCells(r.auc.iqm), ...estCells(r.auc.mean),
        r.evalReturn.n, ...estCells(r.evalReturn.iqm), ...estCells(r.evalReturn.mean),
        b?.baseline ?? null, ...estCells(b?.poi), csvNum(b?.p), csvNum(b?.pHolm),
        r.stepsPerVisitedState, csvNum(r.atVisited?.states), ...estCells(r.atVisited?.iqm),
      ]),
    );
  }
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

/** Thresholds of the performance profiles: from the lowest to the highest final return of any run. */
const PROFILE_POINTS = 101;

/** Each row's performance profile of the final return, on one τ grid over every run's final return. */
export function profiles(rows: readonly PipelineSummary[], o: { reps?: number } = {}): { name: string; points: ProfilePoint[] }[] {
  const all = rows.flatMap((r) => present(r.perRun.map((x) => x.finalReturn)));
  if (!all.length) return [];
  const taus = grid(Math.min(...all), Math.max(...all), PROFILE_POINTS);
  return rows.map((r) => ({ name: `${r.pipeline} (${r.seeds} seeds)`, points: performanceProfile([present(r.perRun.map((x) => x.finalReturn))], taus, o) }));
}

export function profilesSvg(rows: readonly PipelineSummary[], title: string, o: { reps?: number } = {}): Promise<string> {
  return renderSvg(
    profilesSpec({
      title,
      subtitle: ['fraction of runs whose final return exceeds τ (rliable performance profile)', `band: stratified bootstrap 95% CI (${o.reps ?? BOOTSTRAP_REPS} replicates)`],
      xTitle: 'final return τ',
      series: profiles(rows, o),
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
  /** The `--set` texts the pipelines were loaded with: recorded in run.json, applied again by pool workers. */
  overrides?: readonly string[];
  /** The `--env` the pipelines were loaded with, applied again by pool workers. */
  env?: string;
  /** Folders given with --allow-path (pool workers load the pipeline files again). */
  allow?: readonly string[];
  invocation?: Invocation;
  /** Run on the local pool with this many worker processes; absent: in this process, one run at a time. */
  workers?: number;
  /** Run nothing: tabulate the finished runs in outDir (runs not finished there are left out and named). */
  reportOnly?: boolean;
  /** The pipeline the others are compared with (default: the first). */
  baseline?: string;
  /** Bootstrap replicates (default BOOTSTRAP_REPS). */
  reps?: number;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
  /** In-process runs only: a run's iterations and what it does before its first one. */
  onProgress?: (label: string, p: ProgressInfo) => void;
  onStage?: (label: string, text: string) => void;
  /** Asked between iterations (Ctrl-C): running runs save a checkpoint and compare stops. */
  shouldStop?: () => boolean;
  /** Program pipelines: the metric that is the learning curve and the evaluation output that is the eval return. */
  readout?: ProgramReadout;
}

export interface CompareResult {
  rows: PipelineSummary[];
  files: { markdown: string; csv: string; json: string; svg: string; profiles: string };
  /** Comparisons against the baseline that have a p-value (Holm adjusts over these). */
  comparisons: number;
  /** The runs that shouldStop stopped (each keeps a checkpoint); no tables were written. */
  stopped?: { label: string; dir: string; iteration: number }[];
  /** With reportOnly: the runs not finished in outDir, left out of the tables. */
  missing?: string[];
}

export const COMPARE_FILES = ['compare.md', 'compare.csv', 'compare.json', 'compare.svg', 'profiles.svg'] as const;

/** What compare runs: pipelines, program pipelines (runtime/program), or a mix. */
export type ComparedConfig = PipelineConfig | ProgramConfig;

const isProgram = (c: ComparedConfig): c is ProgramConfig => 'program' in c;

/**
 * Runs every pipeline over every seed (each run in DIR/<pipeline>/s<seed>, configured exactly as
 * `loom train PIPELINE --seed S --steps N --out DIR/<pipeline>/s<seed>` configures it; finished
 * runs are reused, stopped ones resumed) and writes the tables and figures. A program pipeline's
 * seeds run as `loom train PROGRAM --seeds K --out DIR/<program>` runs them, one vmapped program
 * in this process (after the pipelines' runs), each seed in DIR/<program>/seed-<s>.
 */
export async function compare(pipelines: readonly ComparedConfig[], opts: CompareOptions): Promise<CompareResult> {
  const threshold = opts.threshold ?? null;
  const [markdown, csv, json, svg, profilesFile] = COMPARE_FILES.map((f) => outputPath(opts.outDir, f)) as [string, string, string, string, string];
  const files = { markdown, csv, json, svg, profiles: profilesFile };
  // A folder that cannot be written fails now, not after the runs; compare is its only writer.
  ensureDir(opts.outDir);
  removeStaleTemps(opts.outDir, [...COMPARE_FILES]);
  const names = new Set<string>();
  const version = packageVersion();
  const uniqueName = (base: string) => {
    let name = base;
    for (let i = 2; names.has(name); i++) name = `${base}-${i}`;
    names.add(name);
    return name;
  };
  const programs: { name: string; cfg: ProgramConfig; dir: string }[] = [];
  const plan = pipelines.map((entry) => {
    if (isProgram(entry)) {
      const name = uniqueName(entry.program);
      programs.push({ name, cfg: entry, dir: outputPath(opts.outDir, name) });
      return { name, runs: [], program: programs.length - 1 };
    }
    const base = entry;
    const name = uniqueName(base.pipeline);
    const runs = opts.seeds.map((seed) => {
      const cfg: PipelineConfig = { ...base, seed };
      const job: SweepJob = {
        sweep: 'compare',
        id: `${name}/s${seed}`,
        config: name,
        pipeline: resolve(base.file),
        overrides: [...(opts.overrides ?? [])],
        seed,
        steps: base.total_steps,
        dir: `${name}/s${seed}`,
        loomVersion: version,
        ...(opts.env !== undefined ? { env: opts.env } : {}),
        evaluate: true,
        ...(opts.invocation ? { invocation: opts.invocation } : {}),
      };
      return { seed, cfg, job, label: `${printable(name)} seed ${seed}`, dir: jobDir(job, opts.outDir) };
    });
    return { name, runs, program: undefined };
  });
  const baseline = opts.baseline === undefined ? 0 : plan.findIndex((p) => p.name === opts.baseline);
  if (baseline < 0) throw new LoomError({ code: 'E_USAGE', message: `--baseline ${printable(opts.baseline!)} is not one of the compared pipelines`, expected: plan.map((p) => printable(p.name)).join(', '), found: printable(opts.baseline!), hint: "name a pipeline by its \"pipeline\" field (a repeated one reads <name>-2, ...)" });
  // Every run folder (and what compare reads of each program) is checked before the first run, not when its turn comes hours later.
  const priors = new Map(plan.flatMap((p) => p.runs).map((r) => [r.job.id, checkJobFolder(r.job, r.dir, r.cfg)]));
  const programOverrides = (opts.overrides ?? []).map(parseOverride);
  for (const p of programs) checkReadout(p.cfg, p.name, opts.readout ?? {}, programOverrides);
  const folders = programs.map((p) => programFolders(p.cfg, p.name, p.dir, opts.seeds));
  const results = new Map<string, JobResult>();
  const stopped: NonNullable<CompareResult['stopped']> = [];
  const missing: string[] = [];
  const runs = plan.flatMap((p) => p.runs);
  const byId = new Map(runs.map((r) => [r.job.id, r]));
  // A program's seeds have no time of their own (they ran as one program): wallSec undefined.
  const done = (label: string, r: { status: JobResult['status']; wallSec?: number; metrics: readonly CurveRow[]; evalReturn?: number | null }) => {
    const ev = r.evalReturn === undefined || r.evalReturn === null ? '' : `, eval return ${fmt(r.evalReturn)}`;
    opts.log?.(`${label}: ${r.status === 'skipped' ? 'already finished' : r.wallSec === undefined ? 'done' : `done in ${r.wallSec.toFixed(1)} s`}, final return ${fmt(finalReturn(r.metrics))}${ev}\n`);
  };
  const finishedSeeds = (k: number) => folders[k]!.filter((f) => f.prior?.status === 'finished').map((f) => f.seed);
  if (opts.reportOnly) {
    for (const r of runs) {
      const prior = priors.get(r.job.id);
      if (prior?.status === 'finished') results.set(r.job.id, finishedResult(r.job, r.dir, r.cfg, prior));
      else missing.push(r.job.id);
    }
    programs.forEach((p, k) => folders[k]!.forEach((f) => f.prior?.status !== 'finished' && missing.push(`${p.name}/seed-${f.seed}`)));
    if (results.size === 0 && programs.every((_p, k) => !finishedSeeds(k).length)) throw new LoomError({ code: 'E_USAGE', message: `${opts.outDir} holds no finished run of these pipelines and seeds`, expected: `finished runs in ${opts.outDir}/<pipeline>/s<seed>${programs.length ? ` or ${opts.outDir}/<program>/seed-<s>` : ''}`, hint: 'run the same command without --report-only to make them' });
  } else if (opts.workers === undefined || !runs.length) {
    for (const r of runs) {
      if (priors.get(r.job.id)?.status !== 'finished') opts.log?.(`${r.label}: start\n`);
      const res = await runJob(r.job, { outRoot: opts.outDir, backend: opts.backend, allow: opts.allow, shouldStop: opts.shouldStop, onProgress: (p) => opts.onProgress?.(r.label, p), onStage: (t) => opts.onStage?.(r.label, t) }, r.cfg);
      if (res.status === 'stopped') return { rows: [], files, comparisons: 0, stopped: [{ label: r.label, dir: r.dir, iteration: res.metrics.at(-1)?.iteration ?? 0 }] };
      results.set(r.job.id, res);
      done(r.label, res);
    }
  } else {
    const pool = await runPool(
      runs.map((r) => r.job),
      {
        workers: opts.workers,
        outRoot: opts.outDir,
        backend: opts.backend,
        allow: opts.allow,
        shouldStop: opts.shouldStop,
        onStart: (job) => {
          if (priors.get(job.id)?.status !== 'finished') opts.log?.(`${byId.get(job.id)!.label}: start\n`);
        },
        onResult: (job, res) => {
          if (res.status !== 'stopped') done(byId.get(job.id)!.label, res);
        },
      },
    );
    for (const res of pool.results) {
      const r = byId.get(res.id)!;
      if (res.status === 'stopped') stopped.push({ label: r.label, dir: r.dir, iteration: res.metrics.at(-1)?.iteration ?? 0 });
      else results.set(res.id, res);
    }
    if (pool.stopped) return { rows: [], files, comparisons: 0, stopped };
  }
  const programRuns: SeedRun[][] = [];
  for (const [k, p] of programs.entries()) {
    if (!opts.reportOnly) {
      const label = `${printable(p.name)} seeds`;
      const halted = await runProgramFolders(p.cfg, p.name, p.dir, folders[k]!, {
        backend: opts.backend,
        overrides: opts.overrides,
        invocation: opts.invocation,
        shouldStop: opts.shouldStop,
        log: opts.log,
        onProgress: (x) => opts.onProgress?.(label, x),
        onStage: (t) => opts.onStage?.(label, t),
      });
      if (halted.length) return { rows: [], files, comparisons: 0, stopped: halted.map((h) => ({ label: `${printable(p.name)} seed ${h.seed}`, dir: h.dir, iteration: h.iteration })) };
    }
    const read = readProgramRuns(folders[k]!, opts.readout ?? {});
    if (!opts.reportOnly) for (const r of read) done(`${printable(p.name)} seed ${r.seed}`, { status: finishedSeeds(k).includes(r.seed) ? 'skipped' : 'finished', metrics: r.metrics, evalReturn: r.evalReturn });
    programRuns.push(read);
  }
  const kept = plan.map((p) => ({
    name: p.name,
    runs: p.program !== undefined ? programRuns[p.program]! : p.runs.flatMap((r): SeedRun[] => {
      const res = results.get(r.job.id);
      return res ? [{ seed: r.seed, metrics: res.metrics, wallSec: res.wallSec, envSteps: res.envSteps, evalReturn: res.evalReturn ?? null, stepsPerVisitedState: stepsPerVisitedState(r.cfg) }] : [];
    }),
  }));
  const rows = kept.map((k) => summarise(k.name, k.runs, threshold, { reps: opts.reps }));
  const comparisons = relateRows(rows, kept.map((k) => k.runs), baseline, { reps: opts.reps });
  // A program names no env: its name stands in for one in the title.
  const titled = pipelines.map((p) => ({ env: { name: isProgram(p) ? p.program : p.env.name }, total_steps: p.total_steps }));
  const env = [...new Set(titled.map((p) => p.env.name))].join(', ');
  const steps = pipelines[0]?.total_steps ?? 0;
  const title = compareTitle(titled, opts.seeds.length);
  const reps = opts.reps ?? BOOTSTRAP_REPS;
  writeFileAtomic(files.markdown, compareMarkdown(title, rows, threshold, { baseline: plan[baseline]!.name, comparisons, reps, missing }));
  writeFileAtomic(files.csv, csvTable(rows));
  const doc = { env, steps, seeds: opts.seeds, threshold, baseline: plan[baseline]!.name, comparisons, correction: 'holm', bootstrap: { reps, seed: BOOTSTRAP_SEED, interval: 'percentile 95%' }, ...(missing.length ? { missing } : {}), results: rows };
  writeFileAtomic(files.json, JSON.stringify(doc, null, 2) + '\n');
  writeFileAtomic(files.svg, await curvesSvg(rows, title));
  writeFileAtomic(files.profiles, await profilesSvg(rows, title, { reps: opts.reps }));
  return { rows, files, comparisons, ...(missing.length ? { missing } : {}) };
}

/** compare.md: how to read it, the table, and the table at equal visited states when it has one. */
export function compareMarkdown(title: string, rows: readonly PipelineSummary[], threshold: number | null, o: { baseline: string; comparisons: number; reps: number; missing?: readonly string[] }): string {
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
  const how = [
    'Final return: the mean of a run\'s learning curve over its last 10% of iterations. AUC: the mean of its learning curve over all its iterations (normalised area under the curve).',
    `IQM: interquartile mean over seeds (the 25% trimmed mean, as rliable); IQM and mean with stratified bootstrap 95% percentile CIs (${o.reps} replicates, seed ${BOOTSTRAP_SEED}); mean ± 95% CI (t): Student t over seeds.`,
    ...(rows.some((r) => r.evalReturn.n > 0) ? ['Eval return: the final deterministic evaluation of each run (the pipeline\'s `eval` settings).'] : []),
    ...(rows.length < 2 ? [] : [`P(> ${printable(o.baseline)}): probability that a run of the pipeline has a higher final return than a run of the baseline (ties count 1/2), with its bootstrap CI. p: two-sided Mann–Whitney U test of the final returns against the baseline, Holm–Bonferroni adjusted over the table's ${n(o.comparisons, 'comparison')}.`]),
  ];
  const visited = visitedTable(rows);
  const missing = o.missing?.length ? `\nNot finished in this folder, left out: ${o.missing.map((m) => printable(m)).join(', ')}.\n` : '';
  const atVisited = visited ? `\n## At equal visited states\n\nGroup pipelines simulate several env steps per visited state; here every run is cut at the fewest visited states any run reached, and its final return is taken up to there (- where a pipeline's first iteration already visits more).\n\n${visited}` : '';
  return `# ${printable(title)}\n\n${how.join('\n')}\n${missing}\n${markdownTable(rows, threshold)}${atVisited}`;
}
