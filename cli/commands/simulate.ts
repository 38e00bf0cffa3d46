/**
 * `loom simulate GRAPH --profile NAME|FILE`: compiles the graph and prices every kernel of the
 * program on a hardware profile with the roofline model (compiler/cost/simulate.ts).
 */
import { LoomError } from '../../compiler/errors.ts';
import { compileGraph, passNames, REQUIRED_PASSES } from '../../compiler/compile.ts';
import { PRECISIONS, type Precision } from '../../compiler/cost/profile.ts';
import type { SimResult } from '../../compiler/cost/simulate.ts';
import { MAX_ELEMENTS } from '../../compiler/dims.ts';
import { ALLOW_PATH_OPTION, allowedRoots, dimFlags, numberFlag, type Command, type ParsedArgs } from '../command.ts';

const usageError = (message: string, found?: string): never => {
  throw new LoomError({ code: 'E_USAGE', message, ...(found !== undefined ? { found } : {}), hint: 'run `loom simulate --help`' });
};

/** Seconds with a unit that keeps 3-4 significant digits readable. */
export function fmtTime(s: number): string {
  if (s === 0) return '0';
  if (s >= 1) return `${s.toPrecision(4)} s`;
  if (s >= 1e-3) return `${(s * 1e3).toPrecision(4)} ms`;
  if (s >= 1e-6) return `${(s * 1e6).toPrecision(4)} us`;
  return `${(s * 1e9).toPrecision(4)} ns`;
}

export function fmtBytes(b: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = b;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${b} B` : `${v.toPrecision(4)} ${units[u]}`;
}

function fmtCount(v: number): string {
  return v < 1e5 ? String(v) : v.toExponential(3);
}

export function formatSim(r: SimResult, all: boolean): string {
  const lines: string[] = [];
  lines.push(`simulated ${r.graph} on ${r.profile} (peak at ${r.precision}; time = max(flops/peak, bytes/bw) + overhead)`);
  const head = ['kernel', 'op', 'flops', 'bytes', 'time', 'bound'];
  const shown = all ? r.kernels : r.kernels.filter((k) => k.bound !== 'free');
  const rows = shown.map((k) => [k.id, k.ops > 1 ? `${k.op} (${k.ops} ops)` : k.op, fmtCount(k.flops), fmtCount(k.bytes), fmtTime(k.timeS), k.bound]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i < 2 || i === 5 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  lines.push('', fmt(head));
  for (const row of rows) lines.push(fmt(row));
  const hidden = r.kernels.length - shown.length;
  if (hidden) lines.push(`(${hidden} view op${hidden === 1 ? '' : 's'} with no cost hidden; --all shows them)`);
  lines.push('');
  lines.push(`total: ${r.total.kernels} kernels, ${fmtCount(r.total.flops)} flops, ${fmtCount(r.total.bytes)} bytes, ${fmtTime(r.total.timeS)}`);
  const b = r.byBound;
  lines.push(
    `bound: compute ${b.compute.kernels} (${fmtTime(b.compute.timeS)}), memory ${b.memory.kernels} (${fmtTime(b.memory.timeS)}), overhead ${b.overhead.kernels} (${fmtTime(b.overhead.timeS)})`,
  );
  const fits = r.fits === null ? '' : r.fits ? ', fits in device memory' : ', DOES NOT FIT in device memory';
  lines.push(`memory: peak ${fmtBytes(r.peakMemoryBytes)}${r.peakAt ? ` (at ${r.peakAt})` : ''}, resident params+inputs ${fmtBytes(r.residentBytes)}${fits}`);
  return lines.join('\n') + '\n';
}

function dimsFrom(args: ParsedArgs): Record<string, number> {
  const dims = Object.fromEntries(dimFlags(args, 'dim'));
  const batch = numberFlag(args, 'batch', { integer: true, min: 1, max: MAX_ELEMENTS });
  if (batch !== undefined) dims.B = batch;
  return dims;
}

export const simulate: Command = {
  name: 'simulate',
  summary: 'Roofline cost simulation of a compiled graph on a hardware profile: per-kernel flops, bytes, time and bound; peak memory.',
  usage: 'loom simulate GRAPH --profile NAME|FILE [--dim NAME=N]... [--batch N] [--precision P] [--disable-pass NAME]... [--all] [--json]',
  options: {
    profile: { type: 'string', valueName: 'NAME|FILE', description: 'hardware profile: h100, h200, or a JSON file (e.g. from `loom calibrate`)' },
    dim: { type: 'string', multiple: true, valueName: 'NAME=N', description: 'bind a symbolic dim, e.g. --dim B=64 (repeatable)' },
    batch: { type: 'string', valueName: 'N', description: 'shorthand for --dim B=N' },
    precision: { type: 'string', valueName: 'P', description: `which peak of the profile to use: ${PRECISIONS.join(', ')} (default float32)` },
    'disable-pass': { type: 'string', multiple: true, valueName: 'NAME', description: `switch a compiler pass off (${passNames().join(', ')})` },
    all: { type: 'boolean', description: 'also list view ops (reshape, expand_dims, squeeze), which cost nothing' },
    json: { type: 'boolean', description: 'print a machine-readable JSON object instead of the table' },
    'allow-path': ALLOW_PATH_OPTION,
  },
  details: `The graph is compiled (inline, autodiff, folding, simplify, cse, dce, fusion, liveness) and every
node of the program is one kernel; a fused node is one kernel whose flops are its body's and whose
bytes are only its external inputs and outputs. Bytes are counted at 4 per element (float32)
whatever --precision says. Peak memory: params and inputs resident, every other value alive from
its kernel to its last reader.

Examples:
  loom simulate graphs/moe/sectional.graph.json --profile h100 --batch 64
  loom simulate graphs/moe/sectional-train.graph.json --profile h200 --dim B=256 --precision bfloat16 --json
  loom simulate graphs/examples/mlp-loss-grad.graph.json --profile ./my-cpu.json --batch 1024`,
  async run(args, io) {
    const [file, ...extra] = args.positionals;
    if (!file) usageError('loom simulate needs a GRAPH file');
    if (extra.length) usageError(`unexpected argument "${extra[0]}"`);
    if (typeof args.values.profile !== 'string') usageError('--profile is required (h100, h200, or a profile file)');
    const precision = (args.values.precision as string | undefined) ?? 'float32';
    if (!(PRECISIONS as readonly string[]).includes(precision)) usageError(`unknown --precision; expected one of ${PRECISIONS.join(', ')}`, precision);
    const disabled = new Set((args.values['disable-pass'] as string[] | undefined) ?? []);
    for (const d of disabled) {
      if (!passNames().includes(d)) usageError(`unknown pass "${d}"`, d);
      if (REQUIRED_PASSES.has(d)) usageError(`pass "${d}" cannot be disabled: the simulator prices the compiled program`, d);
    }
    const dims = dimsFrom(args);
    const { loadProfile } = await import('../../compiler/cost/profile.ts');
    const { loadGraph } = await import('../../compiler/frontend/load.ts');
    const { simulate: simulateGraph } = await import('../../compiler/cost/simulate.ts');
    const profile = loadProfile(args.values.profile as string);
    const { graph } = compileGraph(loadGraph(file!, { roots: allowedRoots(args) }), { disabled });
    const r = simulateGraph(graph, profile, { dims, precision: precision as Precision });
    io.out(args.values.json === true ? JSON.stringify(r, null, 2) + '\n' : formatSim(r, args.values.all === true));
    return 0;
  },
};
