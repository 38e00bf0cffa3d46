/**
 * The shape of a `loom` subcommand. Commands are thin: they parse flags (node:util parseArgs,
 * strict, so unknown flags are errors), call compiler/runtime functions, and print.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { LoomError } from '../compiler/errors.ts';
import { suggest } from '../compiler/suggest.ts';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>[string] & { description: string; valueName?: string };

/** `--backend B`, shared by the commands that run graphs. */
export const BACKEND_OPTION: OptionSpec = { type: 'string', description: 'tensorflow | wasm | cpu (default: best available; also LOOM_BACKEND)', valueName: 'B' };

export interface Io {
  out(text: string): void;
  err(text: string): void;
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

/** Reads a numeric flag, with a clear error when it is not a finite number (or not an integer when required). */
export function numberFlag(args: ParsedArgs, name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  const raw = args.values[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  const bad = (why: string): never => {
    throw new LoomError({ code: 'E_USAGE', message: `--${name} ${why}`, found: String(raw) });
  };
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v)) bad('must be a finite number');
  if (opts.integer && !Number.isInteger(v)) bad('must be an integer');
  if (opts.min !== undefined && v < opts.min) bad(`must be >= ${opts.min}`);
  if (opts.max !== undefined && v > opts.max) bad(`must be <= ${opts.max}`);
  return v;
}
