/** Per-iteration metrics: JSON lines, a CSV with fixed columns, and an SVG learning curve. */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { csvLine } from '../csv.ts';
import { writeFileAtomic } from '../fs.ts';
import { lineChart } from '../plot.ts';

export interface IterationMetrics {
  iteration: number;
  global_step: number;
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
}

export const METRIC_COLUMNS: (keyof IterationMetrics)[] = [
  'iteration', 'global_step', 'lr', 'episodic_return', 'episodic_length', 'episodes', 'loss', 'pg_loss', 'v_loss',
  'entropy', 'approx_kl', 'clipfrac', 'grad_norm', 'explained_variance', 'steps_per_sec',
];

export const AMPPO_COLUMNS: (keyof IterationMetrics)[] = ['alpha_ema', 's_ema', 'alpha_hat', 's_obs', 'adv_norm', 'adv_sigma', 'adv_raw_abs', 'adv_mod_abs', 'sat_mb'];

export class MetricsLog {
  readonly jsonl: string;
  readonly csv: string;
  readonly svg: string;
  private rows: IterationMetrics[] = [];

  /** `keepUpTo`: on resume, rows after the checkpoint's iteration are dropped (they will be redone). */
  constructor(outDir: string, keepUpTo: number | null, private title: string, private columns: (keyof IterationMetrics)[] = METRIC_COLUMNS) {
    this.jsonl = join(outDir, 'metrics.jsonl');
    this.csv = join(outDir, 'metrics.csv');
    this.svg = join(outDir, 'learning-curve.svg');
    if (keepUpTo !== null && existsSync(this.jsonl))
      this.rows = readFileSync(this.jsonl, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as IterationMetrics)
        .filter((r) => r.iteration <= keepUpTo);
    writeFileAtomic(this.jsonl, this.rows.map((r) => JSON.stringify(r) + '\n').join(''));
    writeFileAtomic(this.csv, [columns.join(','), ...this.rows.map((r) => csvRow(r, columns))].join('\n') + '\n');
  }

  add(m: IterationMetrics): void {
    this.rows.push(m);
    appendFileSync(this.jsonl, JSON.stringify(m) + '\n');
    appendFileSync(this.csv, csvRow(m, this.columns) + '\n');
  }

  all(): readonly IterationMetrics[] {
    return this.rows;
  }

  plot(): void {
    const points = this.rows.filter((r) => r.episodic_return !== null).map((r) => [r.global_step, r.episodic_return!] as [number, number]);
    writeFileAtomic(
      this.svg,
      lineChart({ title: this.title, xLabel: 'env steps', yLabel: 'episodic return', series: [{ name: 'mean return of finished episodes', points }] }),
    );
  }
}

function csvRow(m: IterationMetrics, columns: (keyof IterationMetrics)[]): string {
  return csvLine(columns.map((k) => m[k]));
}
