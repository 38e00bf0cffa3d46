/**
 * `loom experts`: the optimal expert count for a sectional MoE layer (spec Part A), with the
 * cost table, a JSON form for scripts, and the cost curve as SVG.
 */
import { LoomError } from '../../compiler/errors.ts';
import { parseJsonText, readUntrusted } from '../../compiler/frontend/files.ts';
import { optimalExperts, type ExpertsResult, type MoeParams, type PreCost, type Reduction } from '../../compiler/cost/moe.ts';
import { profileFile } from '../../compiler/cost/profile.ts';
import { writeFileAtomic } from '../../runtime/fs.ts';
import { numberFlag, type Command, type Io, type ParsedArgs } from '../command.ts';

const usageError = (message: string, found?: string): never => {
  throw new LoomError({ code: 'E_USAGE', message, ...(found !== undefined ? { found } : {}), hint: 'run `loom experts --help`' });
};

/** `fixed:RHO`, `coupled` or `coupled:ceil`. */
export function parseReduction(raw: string): { reduction: Reduction; ceil: boolean } {
  if (raw === 'coupled') return { reduction: { kind: 'coupled' }, ceil: false };
  if (raw === 'coupled:ceil') return { reduction: { kind: 'coupled' }, ceil: true };
  const m = /^fixed:(.+)$/.exec(raw);
  if (m) {
    const rho = Number(m[1]);
    if (m[1]!.trim() === '' || !Number.isFinite(rho) || rho < 1) usageError('--reduction fixed:RHO needs a finite RHO >= 1', raw);
    return { reduction: { kind: 'fixed', rho }, ceil: false };
  }
  return usageError('--reduction must be fixed:RHO, coupled or coupled:ceil', raw);
}

/** `pooling`, `none` or `A,B` (fixed pre-expert QKV and attention counts). */
export function parsePre(raw: string): PreCost {
  if (raw === 'pooling' || raw === 'none') return { kind: raw };
  const parts = raw.split(',');
  const nums = parts.map((x) => Number(x));
  if (parts.length === 2 && parts.every((x) => x.trim() !== '') && nums.every((v) => Number.isFinite(v) && v >= 0)) {
    return { kind: 'fixed', A: nums[0]!, B: nums[1]! };
  }
  return usageError('--pre must be pooling, none, or A,B (two non-negative numbers)', raw);
}

interface ProfileMoe {
  w0?: number;
  w1?: number;
  w2?: number;
}

/**
 * Reads the `moe` overhead coefficients of a hardware profile, {"moe": {"w1": number, "w2": number}},
 * given by shipped name (`h100`) or by file.
 */
export function readProfile(nameOrFile: string): ProfileMoe {
  const file = profileFile(nameOrFile);
  const json = parseJsonText(readUntrusted(file, { what: 'profile' }), file);
  const moe = typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>).moe : undefined;
  if (typeof moe !== 'object' || moe === null || Array.isArray(moe)) {
    throw new LoomError({ code: 'E_SCHEMA', message: 'profile has no "moe" object', file, pointer: '/moe', expected: '{"moe": {"w1": number, "w2": number}}' });
  }
  const out: ProfileMoe = {};
  for (const k of ['w0', 'w1', 'w2'] as const) {
    const v = (moe as Record<string, unknown>)[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new LoomError({ code: 'E_SCHEMA', message: `profile field moe.${k} must be a non-negative number`, file, pointer: `/moe/${k}`, found: JSON.stringify(v) });
    }
    out[k] = v;
  }
  return out;
}

/** Integers print exactly; other values with 6 significant digits. */
function num(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
}

function paramsFromArgs(args: ParsedArgs): MoeParams {
  const d0 = numberFlag(args, 'd0', { integer: true, min: 1 });
  const L = numberFlag(args, 'L', { integer: true, min: 1 });
  if (d0 === undefined) usageError('--d0 is required');
  if (L === undefined) usageError('--L is required');
  const red = parseReduction(typeof args.values.reduction === 'string' ? args.values.reduction : 'fixed:4');
  const profile = typeof args.values.profile === 'string' ? readProfile(args.values.profile) : {};
  const w2 = numberFlag(args, 'w2', { min: 0 }) ?? profile.w2;
  if (w2 === undefined) usageError('--w2 is required (or give --profile NAME|FILE with moe.w2)');
  const p: MoeParams = {
    d0: d0!,
    L: L!,
    reduction: red.reduction,
    c_att: numberFlag(args, 'c-att', { min: 0 }) ?? 1,
    m: numberFlag(args, 'm', { min: 0 }) ?? 0,
    w0: numberFlag(args, 'w0', { min: 0 }) ?? profile.w0 ?? 0,
    w1: numberFlag(args, 'w1', { min: 0 }) ?? profile.w1 ?? 0,
    w2: w2!,
    Emin: numberFlag(args, 'emin', { integer: true, min: 1 }) ?? 1,
    Emax: numberFlag(args, 'emax', { integer: true, min: 1 }) ?? d0!,
    sMin: numberFlag(args, 'smin', { integer: true, min: 1 }) ?? 1,
  };
  const heads = numberFlag(args, 'heads', { integer: true, min: 1 });
  if (heads !== undefined) p.heads = heads;
  if (red.ceil) p.ceil = true;
  if (typeof args.values.pre === 'string') p.pre = parsePre(args.values.pre);
  return p;
}

function describeReduction(r: ExpertsResult): string {
  const red = r.params.reduction;
  if (red.kind === 'fixed') return `variant F: fixed L' = ceil(L/rho) = ${r.Lp} (rho = ${red.rho})`;
  return `variant C: coupled L' = ${r.params.ceil ? 'ceil(L/E)' : 'L/E'}`;
}

function describePre(pre: PreCost): string {
  if (pre.kind === 'fixed') return `fixed A_pre=${num(pre.A)} B_pre=${num(pre.B)}`;
  return pre.kind;
}

export function formatText(r: ExpertsResult): string {
  const p = r.params;
  const F = r.variant === 'fixed';
  const lines: string[] = [];
  lines.push(`sectional MoE expert count (${describeReduction(r)})`);
  lines.push(
    `inputs:  L=${p.L} d0=${p.d0} c_att=${num(p.c_att)} m=${num(p.m)} w0=${num(p.w0)} w1=${num(p.w1)} w2=${num(p.w2)} pre-expert cost=${describePre(p.pre)}`,
  );
  const cons = [`${p.Emin} <= E <= ${p.Emax}`, 'E | d0', `s >= ${p.sMin}`];
  if (p.heads !== undefined) cons.push(`${p.heads} | s`);
  if (!F && !p.ceil) cons.push('E | L');
  lines.push(`feasible: ${cons.join(', ')} (${r.table.length} values)`);
  const relax = p.ceil ? " (relaxation; J uses ceil(L/E))" : '';
  if (F) lines.push(`objective: J(E) = K/E + w1*E + w2*E^2, K = ${num(r.K)}`);
  else if (r.P > 0) lines.push(`objective: J(E) = P/E + K2/E^2 + w1*E + w2*E^2, P = ${num(r.P)} (pooling at L' = L/E), K2 = ${num(r.K)}${relax}`);
  else lines.push(`objective: J(E) = K2/E^2 + w1*E + w2*E^2, K2 = ${num(r.K)}${relax}`);
  lines.push('J(E) = C_sect(E) minus its E-independent terms, so E* maximises S(E) = C_trad - C_sect(E)');
  const how = r.continuousMethod === 'unbounded' ? 'J decreases without bound (w1 = w2 = 0)' : r.continuousMethod;
  lines.push(`continuous optimum: E = ${r.continuous === Infinity ? 'Infinity' : num(r.continuous)} (${how})`);
  const br = r.candidates.map((c) => `${c.E} (J=${num(c.J)})`).join(', ');
  lines.push(`integer optimum: E* = ${r.E}, s = d0/E* = ${r.s}  [${r.method === 'bracket' ? `bracketing pair ${br}` : `scan of F; bracketing pair ${br}`}]`);
  lines.push(`J(E*) = ${num(r.cost)}   J(1) = ${num(r.J1)}`);
  lines.push(`C_trad = ${num(r.traditional.total)}   C_sect(E*) = ${num(r.total)}   S(E*) = ${num(r.savings)}`);
  lines.push(r.beneficial ? `sectioning pays: yes (saves ${num((100 * r.savings) / r.traditional.total)}% of the traditional block)` : `sectioning pays: no: ${r.reason}`);
  lines.push('');
  const head = ['', 'E', 's', 'J(E)', 'C_sect(E)', 'S(E)'];
  const rows = r.table.map((t) => [t.E === r.E ? '*' : '', String(t.E), String(t.s), num(t.J), num(t.total), num(t.savings)]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  lines.push(fmt(head));
  for (const row of rows) lines.push(fmt(row));
  lines.push('(* = optimum)');
  return lines.join('\n') + '\n';
}

export function toJson(r: ExpertsResult): object {
  return {
    variant: r.variant,
    params: r.params,
    K: r.K,
    P: r.P,
    ...(r.Lp !== undefined ? { Lp: r.Lp } : {}),
    continuous: r.continuous === Infinity ? null : r.continuous,
    continuousMethod: r.continuousMethod,
    E: r.E,
    s: r.s,
    J: r.cost,
    J1: r.J1,
    total: r.total,
    traditional: r.traditional,
    savings: r.savings,
    beneficial: r.beneficial,
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    method: r.method,
    candidates: r.candidates,
    table: r.table,
  };
}

export async function costCurveSvg(r: ExpertsResult): Promise<string> {
  // vega loads only when a figure is asked for.
  const { costCurveSpec, renderSvg } = await import('../../runtime/plot.ts');
  const p = r.params;
  // Log-log: J spans orders of magnitude over the divisors of d0; a linear y axis flattens the optimum.
  return renderSvg(
    costCurveSpec({
      title: `Sectional MoE cost J(E), d0=${p.d0}, L=${p.L}`,
      xTitle: 'experts E (log scale)',
      yTitle: 'J(E), E-dependent MACs (log scale)',
      points: r.table.map((t) => ({ x: t.E, y: t.J })),
      optimum: { x: r.E, y: r.cost, label: `E* = ${r.E}` },
    }),
  );
}

export const experts: Command = {
  name: 'experts',
  summary: 'Optimal expert count for a sectional MoE layer: closed form, constrained integer optimum, cost table and curve.',
  usage:
    'loom experts --d0 N --L N [--reduction fixed:RHO|coupled] [--c-att N] [--m N] [--w0 N] [--w1 N] [--w2 N] [--emin N] [--emax N] [--smin N] [--heads N] [--pre pooling|none|A,B] [--profile NAME|FILE] [--json] [--svg FILE]',
  options: {
    d0: { type: 'string', valueName: 'N', description: 'embedding width (required)' },
    L: { type: 'string', valueName: 'N', description: 'input sequence length (required)' },
    reduction: {
      type: 'string',
      valueName: 'KIND',
      description: "fixed:RHO (L' = ceil(L/RHO), default fixed:4), coupled (L' = L/E) or coupled:ceil",
    },
    'c-att': { type: 'string', valueName: 'N', description: 'attention multiplier: 1 = QK^T only, 2 = also AV (default 1)' },
    m: { type: 'string', valueName: 'N', description: 'expert FFN expansion ratio, 0 = no FFN (default 0)' },
    w0: { type: 'string', valueName: 'N', description: 'constant overhead (default 0; does not move E*)' },
    w1: { type: 'string', valueName: 'N', description: 'overhead per expert (default 0)' },
    w2: { type: 'string', valueName: 'N', description: 'overhead per expert squared (required unless --profile gives it)' },
    emin: { type: 'string', valueName: 'N', description: 'smallest admissible E (default 1)' },
    emax: { type: 'string', valueName: 'N', description: 'largest admissible E, e.g. devices (default d0)' },
    smin: { type: 'string', valueName: 'N', description: 'smallest section width s = d0/E (default 1)' },
    heads: { type: 'string', valueName: 'N', description: 'expert head count; must divide s' },
    pre: { type: 'string', valueName: 'MODEL', description: 'pre-expert block cost: pooling (default), none, or A,B' },
    profile: { type: 'string', valueName: 'NAME|FILE', description: 'hardware profile (shipped name such as h100, or a JSON file) with {"moe": {"w1": n, "w2": n}}' },
    json: { type: 'boolean', description: 'print a machine-readable JSON object instead of text' },
    svg: { type: 'string', valueName: 'FILE', description: 'write the cost curve J(E) (log-log) to FILE as SVG' },
  },
  details: `Cost model (MACs per sequence, spec Part A): experts cost 3*L'*d0^2/E (QKV) + 2m*L'*d0^2/E (FFN)
+ c_att*L'^2*d0 (attention), plus overhead w0 + w1*E + w2*E^2. E* minimises J(E), the E-dependent
part of the whole sectional cost C_sect(E), over E dividing d0 within the constraints (ties go to
the smaller E), so E* is also the E of the largest saving S(E) = C_trad - C_sect(E) against one
full-width traditional block 3*L*d0^2 + c_att*L^2*d0. With --reduction coupled (L' = L/E) and
--pre pooling, the pooling block's cost L'*d0^2 + c_att*L'*L*d0 = P/E also depends on E and is part
of J. The reduction, the pre-expert cost and the overhead form are reconstructions and can be
changed with --reduction, --pre and --w0/--w1/--w2. With the default --pre pooling the sectional
layer contains a full traditional layer, so it never saves; --pre none compares the expert stage alone.

A profile is a JSON file such as {"moe": {"w1": 500000, "w2": 100000}}; explicit --w0/--w1/--w2
flags override it.

Examples:
  loom experts --d0 4096 --L 2048 --w2 1e7                    # E* = 8 (continuous 10.88)
  loom experts --d0 768 --L 1024 --w1 5e5 --w2 1e5            # E* = 12: divisors of 768
  loom experts --d0 1024 --L 4096 --reduction coupled --w2 1e8 # E* = 4
  loom experts --d0 512 --L 64 --reduction coupled --m 4 --w2 1e3 # E* = 32: pooling falls as L/E
  loom experts --d0 4096 --L 2048 --w2 1e7 --emax 8 --heads 64 --json
  loom experts --d0 4096 --L 2048 --profile h100 --svg runs/cost.svg`,
  async run(args: ParsedArgs, io: Io): Promise<number> {
    if (args.positionals.length > 0) usageError(`unexpected argument "${args.positionals[0]}"`);
    const r = optimalExperts(paramsFromArgs(args));
    if (typeof args.values.svg === 'string') {
      writeFileAtomic(args.values.svg, await costCurveSvg(r));
    }
    if (args.values.json === true) io.out(JSON.stringify(toJson(r), null, 2) + '\n');
    else {
      io.out(formatText(r));
      if (typeof args.values.svg === 'string') io.out(`wrote ${args.values.svg}\n`);
    }
    return 0;
  },
};
