/**
 * A program run's metrics rows, whose columns are iteration, global_step, the iteration graph's
 * metrics in its order, and steps_per_sec. They are written by the classic runs' MetricsLog
 * (runtime/pipeline/metrics.ts): metrics.jsonl, metrics.csv, TensorBoard event files and the
 * learning curve. A metric of NaN ("no value this iteration") or ±Infinity is null.
 */

export interface MetricRow {
  iteration: number;
  global_step: number;
  [metric: string]: number | null;
}

/** A metric value as logged: non-finite values (NaN: no value this iteration) are null. */
export function metricValue(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}
