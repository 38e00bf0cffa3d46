/** Per-iteration metrics: JSON lines, a CSV with fixed columns, TensorBoard event files, and an SVG learning curve. */
import { FILE_LIMITS, tryReadUntrusted } from '../../compiler/frontend/files.ts';
import { csvLine, type CsvValue } from '../csv.ts';
import { appendOutput, outputPath, writeFileAtomic } from '../fs.ts';
import { learningCurveSpec, renderSvg } from '../plot.ts';
import { EventFileWriter, removeEventFiles } from '../tensorboard/event-file.ts';

export interface IterationMetrics {
  iteration: number;
  global_step: number;
  /**
   * States the executed trajectory visited, over all envs (group pipelines only: there
   * global_step also counts every branch step, G · horizon per visited state).
   */
  visited_states?: number;
  lr: number;
  /** Mean return / length of the episodes that finished in this iteration (null if none). */
  episodic_return: number | null;
  episodic_length: number | null;
  episodes: number;
  loss: number;
  pg_loss: number;
  v_loss: number;
  entropy: number;
  approx_kl: number;
  clipfrac: number;
  grad_norm: number;
  /** Fraction of this iteration's optimizer steps whose global grad norm exceeded update.max_grad_norm (spec am-ppo A6). */
  grad_clip_frac: number;
  explained_variance: number;
  steps_per_sec: number;
  /** AM-PPO controller after this iteration's full-batch update (absent without the transform). */
  alpha_ema?: number;
  s_ema?: number;
  /** The full-batch update's target steepness and observed saturation fraction. */
  alpha_hat?: number;
  s_obs?: number;
  /** L2 norm and Bessel std (+eps) of the raw full-batch advantages. */
  adv_norm?: number;
  adv_sigma?: number;
  /** Mean |A| of the raw and of the full-batch-modulated advantages. */
  adv_raw_abs?: number;
  adv_mod_abs?: number;
  /** Fraction of minibatch entries with |alpha * A / (N_mb + eps)| > tau, averaged over minibatches. */
  sat_mb?: number;
  /** Mean return of the evaluation after this iteration (eval.every; absent on other rows). */
  eval_return?: number | null;
}

export const METRIC_COLUMNS: (keyof IterationMetrics)[] = [
  'iteration', 'global_step', 'lr', 'episodic_return', 'episodic_length', 'episodes', 'loss', 'pg_loss', 'v_loss',
  'entropy', 'approx_kl', 'clipfrac', 'grad_norm', 'grad_clip_frac', 'explained_variance', 'steps_per_sec',
];

export const AMPPO_COLUMNS: (keyof IterationMetrics)[] = ['alpha_ema', 's_ema', 'alpha_hat', 's_obs', 'adv_norm', 'adv_sigma', 'adv_raw_abs', 'adv_mod_abs', 'sat_mb'];

export const GROUP_COLUMNS: (keyof IterationMetrics)[] = ['visited_states'];

export const EVAL_COLUMNS: (keyof IterationMetrics)[] = ['eval_return'];

/**
 * TensorBoard tags: CleanRL's names (cleanrl/ppo.py), so runs of both sit side by side in one
 * dashboard. A metric not listed here is logged as `loom/<name>`; the step is `global_step`.
 */
export const TENSORBOARD_TAGS: Partial<Record<keyof IterationMetrics, string>> = {
  lr: 'charts/learning_rate',
  episodic_return: 'charts/episodic_return',
  episodic_length: 'charts/episodic_length',
  steps_per_sec: 'charts/SPS',
  v_loss: 'losses/value_loss',
  pg_loss: 'losses/policy_loss',
  entropy: 'losses/entropy',
  approx_kl: 'losses/approx_kl',
  clipfrac: 'losses/clipfrac',
  explained_variance: 'losses/explained_variance',
};

/** A logged row: its step axes and, under its columns' names, numbers (null: no value). */
export type LoggedRow = { iteration: number; global_step: number };

const cell = (m: LoggedRow, k: string): unknown => (m as Record<string, unknown>)[k];

/** The scalars of a row for TensorBoard: every column but the step axes (iteration, env steps, visited states), where it has a number. */
export function tensorboardScalars(m: LoggedRow, columns: readonly string[]): [string, number][] {
  const out: [string, number][] = [];
  for (const k of columns) {
    const v = cell(m, k);
    // null (no episode finished) and non-finite values are null in metrics.jsonl too.
    if (k === 'iteration' || k === 'global_step' || k === 'visited_states' || typeof v !== 'number' || !Number.isFinite(v)) continue;
    out.push([TENSORBOARD_TAGS[k as keyof IterationMetrics] ?? `loom/${k}`, v]);
  }
  return out;
}

/** Episodes in the rolling mean that smooths learning curves. */
export const SMOOTHING_EPISODES = 20;

/**
 * The rolling mean return over the last `window` episodes, at every row (null before the first
 * episode). Rows hold the mean return of their episodes, not each return: a row counts as its
 * `episodes` episodes at that mean, and the oldest row in the window with the episodes that fit.
 */
export function rollingReturns(rows: readonly Pick<IterationMetrics, 'episodic_return' | 'episodes'>[], window: number): (number | null)[] {
  const recent: { k: number; ret: number }[] = [];
  let count = 0;
  return rows.map((r) => {
    if (r.episodic_return !== null) {
      const k = r.episodes > 0 ? r.episodes : 1;
      recent.push({ k, ret: r.episodic_return });
      count += k;
      while (count - recent[0]!.k >= window) count -= recent.shift()!.k;
    }
    if (!recent.length) return null;
    // Only the newest `window` episodes of the oldest row count.
    const excess = Math.max(0, count - window);
    let sum = -excess * recent[0]!.ret;
    for (const e of recent) sum += e.k * e.ret;
    return sum / (count - excess);
  });
}

/** The files a MetricsLog writes in its run folder. */
export const METRICS_FILES = ['metrics.jsonl', 'metrics.csv', 'learning-curve.svg'] as const;

/**
 * The rows of metrics.jsonl a resume keeps: complete rows, in order, up to the checkpoint's
 * iteration. After kill -9 the file may end in a partial line, or hold rows logged after the last
 * checkpoint; everything from the first such line on is dropped (those iterations are redone).
 * `dropped` says so in one line, or is null when nothing was dropped.
 */
export function rowsForResume<R extends { iteration: number } = IterationMetrics>(text: string, keepUpTo: number, file: string): { rows: R[]; dropped: string | null } {
  const lines = text.split('\n');
  // The text after the last newline is a row whose write was cut short (or nothing).
  const tail = lines.pop()!.trim() ? 1 : 0;
  const body = lines.filter((l) => l.trim());
  const rows: R[] = [];
  let past = 0;
  let unreadable = tail;
  for (let i = 0, prev = 0; i < body.length; i++) {
    const r = parseRow<R>(body[i]!);
    if (r === null || r.iteration <= prev) {
      unreadable += body.length - i;
      break;
    }
    prev = r.iteration;
    if (r.iteration > keepUpTo) past++;
    else rows.push(r);
  }
  if (past + unreadable === 0) return { rows, dropped: null };
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
  const why = [past ? n(past, 'row') + ' past the checkpoint' : '', unreadable ? n(unreadable, 'incomplete or unreadable line') + (unreadable > 1 ? ' (from the first on)' : '') : ''];
  return { rows, dropped: `resume: dropped ${past + unreadable === 1 ? 'the last line' : `the last ${past + unreadable} lines`} of ${file} (${why.filter(Boolean).join(', ')}); the run continues from the checkpoint at iteration ${keepUpTo}` };
}

function parseRow<R extends { iteration: number }>(line: string): R | null {
  let r: unknown;
  try {
    r = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return null;
  const it = (r as { iteration?: unknown }).iteration;
  return typeof it === 'number' && Number.isSafeInteger(it) && it >= 1 ? (r as R) : null;
}

/**
 * A run's metrics files: metrics.jsonl and metrics.csv (one row per logged iteration, in the given
 * columns), TensorBoard event files, and the learning curve. Both drivers write through it: a
 * pipeline's rows (IterationMetrics) and a program's rows, whose columns are its graph's metrics.
 */
export class MetricsLog<R extends LoggedRow = IterationMetrics> {
  readonly jsonl: string;
  readonly csv: string;
  readonly svg: string;
  /** What a resume dropped from metrics.jsonl, in one line; null if nothing. */
  readonly dropped: string | null = null;
  private rows: R[] = [];
  /** Null when the pipeline sets `logging.tensorboard: false`. */
  readonly events: EventFileWriter | null;

  /** `keepUpTo`: on resume, the checkpoint's iteration; later rows are dropped (they will be redone). */
  constructor(outDir: string, keepUpTo: number | null, private title: string, private columns: readonly string[] = METRIC_COLUMNS, tensorboard = true) {
    [this.jsonl, this.csv, this.svg] = METRICS_FILES.map((f) => outputPath(outDir, f)) as [string, string, string];
    const previous = keepUpTo === null ? undefined : tryReadUntrusted(this.jsonl, { what: 'metrics file', maxBytes: FILE_LIMITS.checkpoint });
    if (keepUpTo !== null && previous !== undefined) ({ rows: this.rows, dropped: this.dropped } = rowsForResume<R>(previous, keepUpTo, this.jsonl));
    // Both files are rewritten from the kept rows, so the CSV always matches the JSON lines.
    writeFileAtomic(this.jsonl, this.rows.map((r) => JSON.stringify(r) + '\n').join(''));
    writeFileAtomic(this.csv, [csvLine(columns), ...this.rows.map((r) => csvRow(r, columns))].join('\n') + '\n');
    // Event files are append-only: a fresh start removes those of an earlier run; a resume starts
    // a new file that tells TensorBoard to discard what earlier files hold past the kept rows.
    if (keepUpTo === null) removeEventFiles(outDir);
    this.events = tensorboard ? new EventFileWriter(outDir, keepUpTo === null ? {} : { restartStep: (this.rows.at(-1)?.global_step ?? -1) + 1 }) : null;
  }

  add(m: R): void {
    this.rows.push(m);
    appendOutput(this.jsonl, JSON.stringify(m) + '\n');
    appendOutput(this.csv, csvRow(m, this.columns) + '\n');
    this.events?.scalars(m.global_step, tensorboardScalars(m, this.columns));
  }

  all(): readonly R[] {
    return this.rows;
  }

  /**
   * Writes the learning curve: the rolling mean over the faint per-iteration means of
   * episodic_return, each row weighted by its `episodes` where it has that column. Rows without an
   * episodic_return column (a program that logs none) have no learning curve: nothing is written.
   */
  async plot(): Promise<void> {
    if (!this.columns.includes('episodic_return')) return;
    const returns = this.rows.map((r) => {
      const ret = cell(r, 'episodic_return');
      const episodes = cell(r, 'episodes');
      return { episodic_return: typeof ret === 'number' ? ret : null, episodes: typeof episodes === 'number' ? episodes : 0 };
    });
    const smooth = rollingReturns(returns, SMOOTHING_EPISODES);
    const points = this.rows.flatMap((r, i) => (returns[i]!.episodic_return === null ? [] : [{ step: r.global_step, raw: returns[i]!.episodic_return!, smooth: smooth[i]! }]));
    writeFileAtomic(this.svg, await renderSvg(learningCurveSpec({ title: this.title, points, window: SMOOTHING_EPISODES })));
  }
}

function csvRow(m: LoggedRow, columns: readonly string[]): string {
  return csvLine(columns.map((k) => cell(m, k) as CsvValue));
}
