/**
 * A program run's metrics: metrics.jsonl and metrics.csv with one row per logged iteration, whose
 * columns are iteration, global_step, the iteration graph's metrics in its order, and steps_per_sec.
 * A metric of NaN ("no value this iteration") or ±Infinity is null in both files.
 */
import { FILE_LIMITS, tryReadUntrusted } from '../../compiler/frontend/files.ts';
import { csvLine } from '../csv.ts';
import { appendOutput, outputPath, writeFileAtomic } from '../fs.ts';
import { rowsForResume } from '../pipeline/metrics.ts';

export interface MetricRow {
  iteration: number;
  global_step: number;
  [metric: string]: number | null;
}

export const PROGRAM_METRICS_FILES = ['metrics.jsonl', 'metrics.csv'] as const;

export class ProgramMetricsLog {
  readonly jsonl: string;
  readonly csv: string;
  /** What a resume dropped from metrics.jsonl, in one line; null if nothing. */
  readonly dropped: string | null = null;
  private rows: MetricRow[] = [];

  /** `keepUpTo`: on resume, the checkpoint's iteration; later rows are dropped (they will be redone). */
  constructor(outDir: string, keepUpTo: number | null, private columns: readonly string[]) {
    [this.jsonl, this.csv] = PROGRAM_METRICS_FILES.map((f) => outputPath(outDir, f)) as [string, string];
    const previous = keepUpTo === null ? undefined : tryReadUntrusted(this.jsonl, { what: 'metrics file', maxBytes: FILE_LIMITS.checkpoint });
    if (keepUpTo !== null && previous !== undefined) ({ rows: this.rows, dropped: this.dropped } = rowsForResume<MetricRow>(previous, keepUpTo, this.jsonl));
    // Both files are rewritten from the kept rows, so the CSV always matches the JSON lines.
    writeFileAtomic(this.jsonl, this.rows.map((r) => JSON.stringify(r) + '\n').join(''));
    writeFileAtomic(this.csv, [csvLine(columns), ...this.rows.map((r) => this.csvRow(r))].join('\n') + '\n');
  }

  add(row: MetricRow): void {
    this.rows.push(row);
    appendOutput(this.jsonl, JSON.stringify(row) + '\n');
    appendOutput(this.csv, this.csvRow(row) + '\n');
  }

  all(): readonly MetricRow[] {
    return this.rows;
  }

  private csvRow(r: MetricRow): string {
    return csvLine(this.columns.map((k) => r[k]));
  }
}

/** A metric value as logged: non-finite values (NaN: no value this iteration) are null. */
export function metricValue(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
