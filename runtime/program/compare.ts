/**
 * A program pipeline's seeds in `loom compare`: they run as `loom train PROGRAM --seeds K --out
 * DIR/<name>` runs them (one vmapped program; each seed's run in DIR/<name>/seed-<s>), finished
 * seeds are reused and stopped ones resumed, and the report reads every seed back from its folder:
 * the learning curve from one metric of metrics.jsonl, the evaluation from one output in eval.json.
 * The statistics themselves are runtime/compare.ts's, shared with pipelines.
 */
import { existsSync } from 'node:fs';
import { isLoomError, LoomError } from '../../compiler/errors.ts';
import { FILE_LIMITS, parseJsonText, tryReadUntrusted } from '../../compiler/frontend/files.ts';
import { suggest } from '../../compiler/frontend/schema.ts';
import { printable } from '../../compiler/text.ts';
import type { CurveRow, SeedRun } from '../compare.ts';
import { outputPath } from '../fs.ts';
import { readChecksummed } from '../pipeline/checkpoint.ts';
import type { Override } from '../pipeline/config.ts';
import { rowsForResume } from '../pipeline/metrics.ts';
import type { ProgressInfo } from '../pipeline/progress.ts';
import { checkRunFolder, readRunRecord, type Invocation, type RunRecord } from '../pipeline/run-record.ts';
import { loadProgramGraphs, type ProgramConfig } from './config.ts';
import { CHECKPOINT_FILE, EVAL_FILE, seedDir, trainProgramSeeds } from './driver.ts';
import type { MetricRow } from './metrics.ts';

/** The metric read as a program's return (the column the PPO programs log) and the evaluation output read as its eval return. */
export const DEFAULT_RETURN_METRIC = 'episodic_return';
export const DEFAULT_EVAL_OUTPUT = 'return_mean';

export interface ProgramReadout {
  /** The iteration graph's metric that is the learning curve (default episodic_return). */
  metric?: string;
  /** The evaluate graph's output that is the eval return (default return_mean). */
  evalOutput?: string;
}

/** One seed's folder as compare found it: finished (reused), resumable from a checkpoint at `resumeAt`, or to start. */
export interface ProgramSeedFolder {
  seed: number;
  dir: string;
  cfg: ProgramConfig;
  prior: RunRecord<ProgramConfig> | null;
  /** The iteration of the seed's checkpoint, or null when it has none. */
  resumeAt: number | null;
}

/**
 * Checks that the program logs `metric` and that its evaluate graph (if any) outputs `evalOutput`,
 * before anything runs; the error lists what it has instead.
 */
export function checkReadout(cfg: ProgramConfig, name: string, o: ProgramReadout, overrides: readonly Override[] = []): void {
  const graphs = loadProgramGraphs(cfg, overrides);
  const metric = o.metric ?? DEFAULT_RETURN_METRIC;
  const evalOutput = o.evalOutput ?? DEFAULT_EVAL_OUTPUT;
  const miss = (what: string, flag: string, wanted: string, have: readonly string[]) => {
    const near = suggest(wanted, [...have]);
    return new LoomError({
      code: 'E_USAGE',
      message: `program ${printable(name)} has no ${what} "${printable(wanted)}" for loom compare to read`,
      file: cfg.file,
      expected: `one of: ${have.join(', ')}`,
      found: printable(wanted),
      hint: near ? `did you mean ${flag} ${near}?` : `name the one to compare with ${flag} NAME`,
    });
  };
  if (!graphs.metrics.includes(metric)) throw miss('metric', '--metric', metric, graphs.metrics);
  if (graphs.evaluate && cfg.eval.episodes > 0 && !Object.hasOwn(graphs.evaluate.outputs, evalOutput)) throw miss('evaluation output', '--eval-metric', evalOutput, Object.keys(graphs.evaluate.outputs));
}

/**
 * Each seed's folder under `dir` (DIR/<name>): checked as a resume checks it, so that a folder of
 * another configuration is an error now rather than after the other runs.
 */
export function programFolders(cfg: ProgramConfig, name: string, dir: string, seeds: readonly number[]): ProgramSeedFolder[] {
  return seeds.map((seed) => {
    const d = seedDir(dir, seed);
    const c: ProgramConfig = { ...cfg, seed };
    let prior: RunRecord<ProgramConfig> | null;
    try {
      prior = checkRunFolder<ProgramConfig>(d, c, { resume: true });
    } catch (e) {
      if (!isLoomError(e) || e.code !== 'E_USAGE') throw e;
      throw new LoomError({ ...e.info, message: `run ${printable(name)}/seed-${seed} of loom compare: ${e.info.message.replace(/^--resume: /, '')}`, hint: `the program or the flags differ from those of this run; write to another folder with --out, or remove ${d} to run it again` });
    }
    const ckpt = outputPath(d, CHECKPOINT_FILE);
    const resumeAt = prior?.status !== 'finished' && existsSync(ckpt) ? checkpointIteration(ckpt) : null;
    return { seed, dir: d, cfg: c, prior, resumeAt };
  });
}

function checkpointIteration(file: string): number {
  const body = readChecksummed(file);
  const it = (body as { iteration?: unknown } | null)?.iteration;
  if (typeof it !== 'number') throw new LoomError({ code: 'E_IO', message: `checkpoint ${file} records no iteration`, file, hint: `remove ${file} to run that seed again from the start` });
  return it;
}

export interface ProgramRunOptions {
  backend?: string;
  overrides?: readonly string[];
  invocation?: Invocation;
  shouldStop?: () => boolean;
  log?: (line: string) => void;
  onProgress?: (p: ProgressInfo) => void;
  onStage?: (text: string) => void;
}

/**
 * Runs the seeds that are not finished: those at the same point (no checkpoint, or checkpoints
 * of one iteration) as one vmapped program each. Returns the seeds that shouldStop stopped.
 */
export async function runProgramFolders(cfg: ProgramConfig, name: string, dir: string, folders: readonly ProgramSeedFolder[], o: ProgramRunOptions): Promise<{ seed: number; dir: string; iteration: number }[]> {
  const groups = new Map<number | null, number[]>();
  for (const f of folders) if (f.prior?.status !== 'finished') groups.set(f.resumeAt, [...(groups.get(f.resumeAt) ?? []), f.seed]);
  const stopped: { seed: number; dir: string; iteration: number }[] = [];
  for (const [at, seeds] of groups) {
    if (o.shouldStop?.()) break;
    const s = seeds.length > 1 ? 's' : '';
    o.log?.(`${printable(name)} seed${s} ${seeds.join(', ')}: ${at === null ? 'start' : `resume from iteration ${at}`} (one program vmapped over ${seeds.length} seed${s})\n`);
    const runs = await trainProgramSeeds(cfg, {
      outDir: dir,
      seeds,
      resume: at !== null,
      backend: o.backend,
      overrides: o.overrides,
      invocation: o.invocation,
      shouldStop: o.shouldStop,
      log: o.log,
      onProgress: o.onProgress,
      onStage: o.onStage,
    });
    for (const r of runs) {
      Object.values(r.state).forEach((t) => t.dispose());
      if (r.stopped) stopped.push({ seed: r.seed, dir: r.outDir, iteration: r.iterations });
    }
  }
  return stopped;
}

/** A program's metrics row as a learning-curve row: `metric` is the return; episodes counts the episodes behind it (1 when not logged). */
export function curveRow(row: MetricRow, metric: string): CurveRow {
  const episodes = row.episodes;
  return { global_step: row.global_step, episodic_return: row[metric] ?? null, episodes: typeof episodes === 'number' && episodes > 0 ? episodes : 1 };
}

/**
 * The finished seeds' runs, read back from their folders: metrics.jsonl (up to the iterations
 * run.json records), eval.json and run.json. A seed's wall time is its share of the program: the
 * time the program's seeds spent running (overlapping runs counted once) over their number.
 */
export function readProgramRuns(folders: readonly ProgramSeedFolder[], o: ProgramReadout): SeedRun[] {
  const metric = o.metric ?? DEFAULT_RETURN_METRIC;
  const evalOutput = o.evalOutput ?? DEFAULT_EVAL_OUTPUT;
  const done = folders.flatMap((f) => {
    const rec = readRunRecord<ProgramConfig>(f.dir);
    return rec?.status === 'finished' ? [{ f, rec }] : [];
  });
  const share = sharedWall(done.map((d) => d.rec)) / Math.max(1, done.length);
  return done.map(({ f, rec }) => {
    const file = outputPath(f.dir, 'metrics.jsonl');
    const text = tryReadUntrusted(file, { what: 'metrics file', maxBytes: FILE_LIMITS.checkpoint });
    const rows = text === undefined ? [] : rowsForResume<MetricRow>(text, rec.iterations ?? Number.MAX_SAFE_INTEGER, file).rows;
    if (!rows.length) throw new LoomError({ code: 'E_IO', message: `${f.dir} holds a finished run without metrics`, file, hint: `remove ${f.dir} to run it again` });
    return { seed: f.seed, metrics: rows.map((r) => curveRow(r, metric)), wallSec: share, envSteps: rec.global_step ?? rows.at(-1)!.global_step, evalReturn: evalValue(f.dir, evalOutput) };
  });
}

/** The evaluation output of a seed's eval.json, or null when the run was not evaluated (or the value was NaN). */
function evalValue(dir: string, output: string): number | null {
  const file = outputPath(dir, EVAL_FILE);
  const text = tryReadUntrusted(file, { what: 'evaluation file' });
  if (text === undefined) return null;
  const json = parseJsonText(text, file);
  const v = json && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>)[output] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Seconds during which at least one of the runs was running (the union of their started..ended spans). */
export function sharedWall(records: readonly Pick<RunRecord<ProgramConfig>, 'started' | 'ended'>[]): number {
  const spans = records
    .map((r) => [Date.parse(r.started), r.ended === undefined ? NaN : Date.parse(r.ended)] as const)
    .filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b) && b >= a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total / 1000;
}
