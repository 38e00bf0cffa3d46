/**
 * The shape of a `loom` subcommand. Commands are thin: they parse flags (node:util parseArgs,
 * strict, so unknown flags are errors), call compiler/runtime functions, and print.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LoomError } from '../compiler/errors.ts';
import { MAX_ELEMENTS } from '../compiler/dims.ts';
import { packagePath } from '../compiler/package-root.ts';
import { suggest } from '../compiler/suggest.ts';
import type { Invocation } from '../runtime/pipeline/run-record.ts';
import type { ProgressStream } from '../runtime/pipeline/progress.ts';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { description: string; valueName?: string };

/** `--backend B`, shared by the commands that run graphs. */
export const BACKEND_OPTION: OptionSpec = { type: 'string', description: 'tensorflow | webgpu | wasm | cpu (default: best available, never webgpu; also LOOM_BACKEND)', valueName: 'B' };

/** `--allow-path DIR`, shared by the commands that load graphs and pipelines. */
export const ALLOW_PATH_OPTION: OptionSpec = {
  type: 'string',
  multiple: true,
  description: "let files reference files under DIR (repeatable); otherwise only the working directory, the named file's folder and the shipped graphs",
  valueName: 'DIR',
};

/**
 * The folders that graphs and pipelines may reference besides the working directory and the named
 * file's folder: the shipped graph library and every `--allow-path DIR` (each must be a folder).
 */
export function allowedRoots(args: ParsedArgs): string[] {
  const dirs = (args.values['allow-path'] as string[] | undefined) ?? [];
  for (const d of dirs) {
    let isDir = false;
    try {
      isDir = statSync(d).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) throw new LoomError({ code: 'E_USAGE', message: `--allow-path ${d} is not a folder`, expected: 'an existing folder', found: d });
  }
  return [packagePath('graphs'), ...dirs.map((d) => resolve(d))];
}

/** `--set PATH=VALUE`, repeatable, shared by the commands that load pipelines. */
export const SET_OPTION: OptionSpec = {
  type: 'string',
  multiple: true,
  description: 'override a pipeline field after extends, e.g. --set optimizer.lr=1e-3 --set update.epochs=10 (repeatable; the value is JSON, or else text)',
  valueName: 'PATH=VALUE',
};

/** The `--set` values of a command line, in order. */
export function setFlags(args: ParsedArgs): string[] {
  const raw = args.values.set;
  return (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map(String);
}

/** What run.json records of a command line: the command, its positional arguments and its flags. */
export function invocation(command: string, args: ParsedArgs): Invocation {
  return { command, args: [...args.positionals], flags: { ...args.values } };
}

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /**
   * Stderr as is, for the redrawn progress line (carriage return, erase to end of line). Only
   * loom's own numbers go here; `out` and `err` escape control characters (see `main`).
   */
  live?(text: string): void;
}

/** Where train's and compare's progress goes: the `live` channel, redrawn in place when stderr is a terminal. */
export function progressStream(io: Io): ProgressStream {
  return { write: (t) => (io.live ?? io.err)(t), isTTY: Boolean(process.stderr.isTTY), columns: process.stderr.columns };
}

export interface Command {
  name: string;
  summary: string;
  /** e.g. "loom check FILE..." */
  usage: string;
  options: Record<string, OptionSpec>;
  /** Extra help text: examples, notes. */
  details?: string;
  run(args: ParsedArgs, io: Io): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export function helpText(c: Command): string {
  const lines = [`${c.usage}`, '', c.summary, ''];
  lines.push('Options:');
  for (const [name, o] of Object.entries(c.options)) {
    const flag = `--${name}${o.type === 'string' ? ` ${o.valueName ?? name.toUpperCase()}` : ''}`;
    lines.push(`  ${flag.padEnd(28)} ${o.description}`);
  }
  lines.push(`  ${'--help'.padEnd(28)} show this help`);
  if (c.details) lines.push('', c.details.trimEnd());
  return lines.join('\n') + '\n';
}

/** Parses argv for a command; bad flags become E_USAGE errors that point at the help. */
export function parseCommandArgs(c: Command, argv: string[]): ParsedArgs | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  const options: ParseArgsConfig['options'] = {};
  for (const [k, o] of Object.entries(c.options)) {
    const { description: _d, valueName: _v, ...rest } = o;
    options[k] = rest;
  }
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: r.values as ParsedArgs['values'], positionals: r.positionals };
  } catch (e) {
    const unknown = (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec((e as Error).message)?.[1] : undefined;
    if (unknown !== undefined) throw unknownFlag(c, unknown);
    throw new LoomError({ code: 'E_USAGE', message: (e as Error).message, hint: `run \`loom ${c.name} --help\`` });
  }
}

/** An unknown flag, with the nearest flag of the command when one is close ("did you mean --steps?"). */
function unknownFlag(c: Command, flag: string): LoomError {
  const names = [...Object.keys(c.options), 'help'];
  const near = flag.startsWith('--') ? suggest(flag.slice(2), names) : undefined;
  return new LoomError({
    code: 'E_USAGE',
    message: `loom ${c.name}: unknown option ${flag}`,
    expected: names.map((n) => `--${n}`).join(', '),
    found: flag,
    hint: near !== undefined ? `did you mean --${near}?` : `run \`loom ${c.name} --help\``,
  });
}

/**
 * Reads a numeric flag, with a clear error when it is not a finite number (or not an integer when
 * required). Integers are counts: without an explicit `max` they stop at the largest exact one, so
 * "1e99" is not taken as a count that later arithmetic silently rounds.
 */
export function numberFlag(args: ParsedArgs, name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  const raw = args.values[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  const bad = (why: string): never => {
    throw new LoomError({ code: 'E_USAGE', message: `--${name} ${why}`, found: String(raw) });
  };
  const max = opts.max ?? (opts.integer ? Number.MAX_SAFE_INTEGER : undefined);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v)) bad('must be a finite number');
  if (opts.integer && !Number.isInteger(v)) bad('must be an integer');
  if (opts.min !== undefined && v < opts.min) bad(`must be >= ${opts.min}`);
  if (max !== undefined && v > max) bad(`must be <= ${max}`);
  return v;
}

/** `--NAME NAME=N` pairs binding symbolic dims; each N is a size one tensor axis can have. */
export function dimFlags(args: ParsedArgs, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const d of (args.values[name] as string[] | undefined) ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(\d+)$/.exec(d);
    const n = m ? Number(m[2]) : NaN;
    if (!m || n < 1 || n > MAX_ELEMENTS)
      throw new LoomError({ code: 'E_USAGE', message: `--${name} takes NAME=N with N from 1 to ${MAX_ELEMENTS}`, found: d, hint: 'e.g. --dim B=64' });
    out.set(m[1]!, n);
  }
  return out;
}

/**
 * Ctrl-C for long runs: the first asks the run to stop at the end of its iteration (it saves a
 * checkpoint), the second exits at once. `release` removes the handler.
 */
export function interruptible(io: Io): { interrupted: () => boolean; release: () => void } {
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    io.err('\nloom: interrupted; saving a checkpoint after this iteration (Ctrl-C again to abort)\n');
  };
  process.on('SIGINT', onSigint);
  return { interrupted: () => interrupted, release: () => process.off('SIGINT', onSigint) };
}

/** Named scalars on one line, as `loom train` and `loom eval` print a program's metrics: "loss 0.5, mse -" (null: no value). */
export function formatScalars(m: Readonly<Record<string, number | null>>): string {
  return Object.entries(m).map(([k, v]) => `${k} ${v === null ? '-' : Number(v.toPrecision(6))}`).join(', ');
}
