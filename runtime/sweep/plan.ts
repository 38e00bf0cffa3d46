/**
 * Sweep files: validation (schema, the base pipeline's place, every swept value against the
 * pipeline as `--set` would apply it) and deterministic expansion into jobs, one per configuration
 * and seed. Grid points are the cartesian product in key order; random samples come from Threefry
 * keyed by the file's seed, so a sweep file always plans the same runs, on any machine.
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isLoomError, joinPointer, LoomError } from '../../compiler/errors.ts';
import { assertAllowed, assertDocumentKind, parseJsonText, readUntrusted } from '../../compiler/frontend/files.ts';
import { assertValid, schemaValidator } from '../../compiler/frontend/schema.ts';
import { randomBits, seedKey, uniformOpen } from '../../compiler/ops/threefry.ts';
import { packageVersion } from '../../compiler/package-root.ts';
import { loadPipeline, parseOverride, pipelineRoots } from '../pipeline/config.ts';
import type { SweepJob } from './job.ts';

export type SweepMetric = 'final_return' | 'auc' | 'steps_to_threshold';

/** A swept field: its dotted path, the short name ids use, and whether its axis is logarithmic. */
export interface SweepParam {
  path: string;
  label: string;
  /** log_uniform, or a list of positive numbers spanning a factor of 10 or more. */
  log: boolean;
}

export interface SweepConfig {
  /** Also the folder of its runs: safe as a file name, unique in the sweep. */
  id: string;
  /** Dotted path -> value, for every swept field. */
  values: Record<string, unknown>;
}

export interface SweepPlan {
  file: string;
  sweep: string;
  /** Absolute path of the base pipeline. */
  pipeline: string;
  params: SweepParam[];
  configs: SweepConfig[];
  seeds: number[];
  steps?: number;
  metric: SweepMetric;
  threshold: number | null;
  /** The `overrides` every run gets, as --set texts. */
  common: string[];
  jobs: SweepJob[];
}

/** At most this many runs (configurations x seeds) in one sweep. */
export const MAX_SWEEP_RUNS = 10000;
/** At most this many values in one grid range. */
const MAX_RANGE_VALUES = 1000;
/** Folder names of configurations are cut to this length. */
const MAX_ID_LENGTH = 120;

interface SweepJson {
  sweep: string;
  pipeline: string;
  overrides?: Record<string, unknown>;
  grid?: Record<string, unknown[] | { range: { min: number; max: number; step: number } }>;
  random?: { samples: number; seed?: number; params: Record<string, { uniform?: [number, number]; log_uniform?: [number, number]; choice?: unknown[] }> };
  seeds?: number | number[];
  budget?: { steps?: number; max_runs?: number };
  metric?: SweepMetric;
  threshold?: number;
}

export function loadSweep(file: string, opts: { allow?: readonly string[] } = {}): SweepPlan {
  return planSweep(parseJsonText(readUntrusted(file, { what: 'sweep' }), file), file, opts);
}

/** Checks a sweep document and expands it into configurations and jobs. */
export function planSweep(json: unknown, file: string, opts: { allow?: readonly string[] } = {}): SweepPlan {
  assertDocumentKind(json, file, 'sweep', ['sweep']);
  assertValid(schemaValidator('sweep.schema.json'), json, file, '', 'sweep');
  const s = json as SweepJson;
  const fail = (pointer: string, message: string, more: { expected?: string; found?: string; hint?: string } = {}): never => {
    throw new LoomError({ code: 'E_SCHEMA', message, file, pointer, ...more });
  };
  const pipeline = resolve(dirname(resolve(file)), s.pipeline);
  const roots = pipelineRoots(file, opts.allow);
  assertAllowed(pipeline, roots, { what: 'base pipeline', written: s.pipeline, file, pointer: '/pipeline' });
  if (!existsSync(pipeline)) throw new LoomError({ code: 'E_IO', message: `base pipeline ${pipeline} does not exist`, file, pointer: '/pipeline', found: s.pipeline, hint: 'the path is relative to the sweep file' });

  const common = Object.entries(s.overrides ?? {}).map(([path, v]) => ({ path, text: overrideText(path, v), pointer: joinPointer('/overrides', path) }));
  // Each value alone, then each configuration whole: an error names the value that causes it, or
  // the field's key when the pipeline has no such field (that error comes from the override, not from a file).
  const check = (texts: string[], pointer: string, keyPointer = pointer) => {
    try {
      loadPipeline(pipeline, { allow: opts.allow, overrides: texts.map(parseOverride) });
    } catch (e) {
      throw relocate(e, file, isLoomError(e) && e.info.file === undefined ? keyPointer : pointer);
    }
  };
  for (const c of common) check([c.text], c.pointer);
  const commonTexts = common.map((c) => c.text);

  // Every swept field, with its values (grid) or per-sample draws (random), in key order.
  const params: (SweepParam & { values: unknown[]; pointers: string[]; key: string; random: boolean })[] = [];
  for (const [path, spec] of Object.entries(s.grid ?? {})) {
    const at = joinPointer('/grid', path);
    let values: unknown[];
    if (Array.isArray(spec)) values = spec;
    else {
      const { min, max, step } = spec.range;
      if (max < min) fail(joinPointer(at, 'range'), `range ${path}: max is below min`, { expected: 'min <= max', found: `min ${min}, max ${max}` });
      const n = Math.floor((max - min) / step + 1e-9) + 1;
      if (n > MAX_RANGE_VALUES) throw new LoomError({ code: 'E_SIZE', message: `range ${path} has ${n} values`, file, pointer: joinPointer(at, 'range'), expected: `at most ${MAX_RANGE_VALUES}`, hint: 'use a larger step' });
      // Rounded to 12 digits, so 0.1 + 2 * 0.1 reads 0.3 in ids and run records.
      values = Array.from({ length: n }, (_, i) => Number((min + i * step).toPrecision(12)));
    }
    const pointers = Array.isArray(spec) ? values.map((_, i) => joinPointer(at, i)) : values.map(() => joinPointer(at, 'range'));
    const nums = values.filter((v): v is number => typeof v === 'number');
    const log = Array.isArray(spec) && nums.length === values.length && nums.every((v) => v > 0) && Math.max(...nums) >= 10 * Math.min(...nums);
    params.push({ path, label: path, log, values, pointers, key: at, random: false });
  }
  const samples = s.random?.samples ?? 0;
  if (s.random) {
    const entries = Object.entries(s.random.params);
    const u = uniformOpen(randomBits(seedKey(s.random.seed ?? 0), samples * entries.length));
    for (const [j, [path, d]] of entries.entries()) {
      const at = joinPointer('/random/params', path);
      if (params.some((p) => p.path === path)) fail(at, `${path} is both in grid and in random`, { hint: 'sweep each field one way' });
      const draw = (i: number) => u[i * entries.length + j]!;
      let values: unknown[];
      let pointers: string[];
      if (d.choice) {
        const choice = d.choice;
        values = Array.from({ length: samples }, (_, i) => choice[Math.min(choice.length - 1, Math.floor(draw(i) * choice.length))]);
        pointers = values.map((v) => joinPointer(at, 'choice', choice.indexOf(v)));
      } else {
        const kind = d.uniform ? 'uniform' : 'log_uniform';
        const [a, b] = (d.uniform ?? d.log_uniform)!;
        if (!(a < b)) fail(joinPointer(at, kind), `${kind} ${path}: the interval is empty`, { expected: '[a, b] with a < b', found: `[${a}, ${b}]` });
        if (kind === 'log_uniform' && !(a > 0)) fail(joinPointer(at, kind, 0), `log_uniform ${path}: the lower bound must be positive`, { expected: '0 < a < b', found: String(a) });
        values = Array.from({ length: samples }, (_, i) => (kind === 'uniform' ? a + (b - a) * draw(i) : Math.exp(Math.log(a) + (Math.log(b) - Math.log(a)) * draw(i))));
        pointers = values.map(() => joinPointer(at, kind));
      }
      params.push({ path, label: path, log: Boolean(d.log_uniform), values, pointers, key: at, random: true });
    }
  }
  // Ids name a field by its last key when no other swept field ends the same way.
  for (const p of params) {
    const last = p.path.split('.').pop()!;
    if (params.filter((q) => q.path.split('.').pop() === last).length === 1) p.label = last;
  }
  for (const p of params) {
    const seen = new Set<string>();
    for (const [i, v] of p.values.entries()) {
      const t = overrideText(p.path, v);
      if (seen.has(t)) continue;
      seen.add(t);
      check([...commonTexts, t], p.pointers[i]!, p.key);
    }
  }

  // Configurations: grid points (first key slowest), each with every random sample.
  const grid = params.filter((p) => !p.random);
  const random = params.filter((p) => p.random);
  let points: unknown[][] = [[]];
  for (const p of grid) points = points.flatMap((pt) => p.values.map((v) => [...pt, v]));
  if (random.length) points = points.flatMap((pt) => Array.from({ length: samples }, (_, i) => [...pt, ...random.map((p) => p.values[i])]));
  const ordered = [...grid, ...random];
  const seeds = typeof s.seeds === 'number' ? Array.from({ length: s.seeds }, (_, i) => i + 1) : (s.seeds ?? [1]);
  const runs = points.length * seeds.length;
  if (runs > MAX_SWEEP_RUNS) throw new LoomError({ code: 'E_SIZE', message: `the sweep plans ${runs} runs (${points.length} configurations x ${seeds.length} seeds)`, file, pointer: '', expected: `at most ${MAX_SWEEP_RUNS} runs`, hint: 'sweep fewer values, or split the sweep' });
  const maxRuns = s.budget?.max_runs;
  if (maxRuns !== undefined && runs > maxRuns) fail('/budget/max_runs', `the sweep plans ${runs} runs (${points.length} configurations x ${seeds.length} seeds), more than budget.max_runs`, { expected: `at most ${maxRuns} runs`, found: String(runs), hint: 'sweep fewer values or seeds, or raise budget.max_runs' });

  const taken = new Set<string>();
  const configs: SweepConfig[] = points.map((pt) => {
    const text = ordered.length ? ordered.map((p, i) => `${p.label}=${valueText(pt[i], p.random)}`).join(',') : 'base';
    const id = uniqueName(folderName(text), taken);
    return { id, values: Object.fromEntries(ordered.map((p, i) => [p.path, pt[i]])) };
  });
  for (const c of configs) if (ordered.length > 1) check([...commonTexts, ...ordered.map((p) => overrideText(p.path, c.values[p.path]))], ordered.some((p) => p.random) ? '/random' : '/grid');
  const steps = s.budget?.steps;
  const version = packageVersion();
  const jobs: SweepJob[] = configs.flatMap((c) =>
    seeds.map((seed) => ({
      sweep: s.sweep,
      id: `${c.id}/s${seed}`,
      config: c.id,
      pipeline,
      overrides: [...commonTexts, ...ordered.map((p) => overrideText(p.path, c.values[p.path]))],
      seed,
      ...(steps !== undefined ? { steps } : {}),
      dir: `${c.id}/s${seed}`,
      loomVersion: version,
    })),
  );
  return {
    file,
    sweep: s.sweep,
    pipeline,
    params: ordered.map(({ path, label, log }) => ({ path, label, log })),
    configs,
    seeds,
    ...(steps !== undefined ? { steps } : {}),
    metric: s.metric ?? 'final_return',
    threshold: s.threshold ?? null,
    common: commonTexts,
    jobs,
  };
}

/** The --set text of a field and a value: the value as JSON, so parseOverride reads it back exactly. */
const overrideText = (path: string, v: unknown) => `${path}=${JSON.stringify(v)}`;

/** A value as ids show it: random draws to 4 significant digits, everything else as written. */
function valueText(v: unknown, drawn: boolean): string {
  if (typeof v === 'number') return String(drawn ? Number(v.toPrecision(4)) : v);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/**
 * A configuration's text as a folder name: letters, digits and `._=,+-` are kept, anything else
 * becomes `_`; no `..`, no leading dot or dash, at most MAX_ID_LENGTH characters.
 */
export function folderName(text: string): string {
  let s = text.replace(/[^A-Za-z0-9._=,+-]/g, '_').replace(/\.{2,}/g, '_');
  if (/^[.-]/.test(s)) s = '_' + s;
  return s.slice(0, MAX_ID_LENGTH) || '_';
}

/** `name`, or `name_2`, `name_3`, ... : the first not yet taken (ids that sanitise alike stay apart). */
function uniqueName(name: string, taken: Set<string>): string {
  let out = name;
  for (let i = 2; taken.has(out); i++) out = `${name}_${i}`;
  taken.add(out);
  return out;
}

/** An error of the base pipeline under a swept value, moved to the sweep file's pointer that set it. */
function relocate(e: unknown, file: string, pointer: string): unknown {
  if (!isLoomError(e)) return e;
  const message = e.info.message.replace(/^--set [^:]*: /, '');
  const where = e.info.file !== undefined && e.info.file !== file ? ` (the pipeline${e.info.pointer ? ` at ${e.info.pointer}` : ''})` : '';
  return new LoomError({ ...e.info, file, pointer, node: undefined, message: `${message}${where}`, hint: e.info.hint?.startsWith('the value comes from --set') ? 'change this value in the sweep file' : e.info.hint });
}
