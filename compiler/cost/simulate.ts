/**
 * Roofline cost simulator: walks a compiled program (one kernel per node, in program order) and
 * prices each kernel on a hardware profile with the op registry's FLOP and byte counts:
 *
 *   time = max(flops / peak, bytes / bandwidth) + kernelOverhead
 *   bound = whichever of compute, memory, overhead is largest.
 *
 * View ops (reshape, expand_dims, squeeze) only relabel a buffer and cost nothing. A fused node
 * (the fusion pass's output: a node carrying a `body`) is one kernel whose FLOPs are the sum of
 * its body's FLOPs and whose bytes are only its external inputs and outputs (the intermediates
 * stay in registers). Peak memory comes from liveness over the program order: params and inputs
 * stay resident, every other value lives from its definition to its last use (views alias their
 * source), graph outputs live to the end.
 */
import { isStatic, showShape, substShape, symbolsOf } from '../dims.ts';
import { LoomError } from '../errors.ts';
import type { IRGraph, IRNode, TensorType } from '../ir.ts';
import { getOp } from '../ops/index.ts';
import { sizeOf, type ConcreteType } from '../ops/registry.ts';
import { peakFor, type Precision, type Profile } from './profile.ts';

export type Bound = 'compute' | 'memory' | 'overhead' | 'free';

export interface KernelCost {
  id: string;
  op: string;
  /** Number of ops in the kernel (1 unless fused). */
  ops: number;
  flops: number;
  bytes: number;
  computeS: number;
  memoryS: number;
  overheadS: number;
  timeS: number;
  bound: Bound;
}

export interface SimResult {
  graph: string;
  profile: string;
  precision: Precision;
  kernels: KernelCost[];
  total: { flops: number; bytes: number; timeS: number; kernels: number };
  byBound: Record<Bound, { kernels: number; timeS: number }>;
  /** Bytes of params and inputs (resident for the whole program). */
  residentBytes: number;
  /** Largest number of bytes alive at once (resident included), and the kernel where it happens. */
  peakMemoryBytes: number;
  peakAt: string | null;
  /** Whether the peak fits the profile's memory capacity (null when the profile has none). */
  fits: boolean | null;
}

export interface SimOptions {
  /** Values of symbolic dims, e.g. {B: 64}. */
  dims?: Record<string, number>;
  /** Which peak of the profile to use; default float32. Bytes are always counted at 4 per element. */
  precision?: Precision;
}

/** A fused node's member nodes (set by the fusion pass), when it is one. */
export function fusedBody(n: IRNode): IRNode[] | undefined {
  return Array.isArray(n.body) ? n.body : undefined;
}

function bytes(t: ConcreteType): number {
  return sizeOf(t.shape) * 4;
}

export function simulate(g: IRGraph, profile: Profile, opts: SimOptions = {}): SimResult {
  const precision = opts.precision ?? 'float32';
  const peak = peakFor(profile, precision);
  const env = new Map(Object.entries(opts.dims ?? {}));

  const concrete = (t: TensorType, where: string): ConcreteType => {
    const shape = substShape(t.shape, env);
    if (!shape.every(isStatic)) {
      const missing = [...new Set(shape.filter((d) => !isStatic(d)).flatMap((d) => symbolsOf(d)))].filter((s) => !env.has(s));
      throw new LoomError({
        code: 'E_UNBOUND_DIM',
        message: `cannot price ${where}: its shape ${showShape(t.shape)} has unbound dims ${missing.join(', ')}`,
        file: g.file,
        expected: 'every symbolic dim bound',
        hint: `bind them, e.g. ${missing.map((m) => `--dim ${m}=64`).join(' ')}`,
      });
    }
    return { dtype: t.dtype, shape: shape as number[] };
  };

  // Types of every value of the outer program.
  const types = new Map<string, TensorType>();
  for (const i of g.inputs) types.set(i.name, i.type);
  for (const p of g.params) types.set(p.name, p.type);
  for (const n of g.nodes) {
    if (n.type) types.set(n.id, n.type);
    for (const [k, t] of Object.entries(n.outputTypes ?? {})) types.set(`${n.id}.${k}`, t);
  }
  const typeOf = (ref: string, local?: Map<string, TensorType>): TensorType => {
    const t = local?.get(ref) ?? types.get(ref);
    if (!t) throw new Error(`internal: simulate: no type for value "${ref}"`);
    return t;
  };

  const opCost = (n: IRNode, local?: Map<string, TensorType>): { flops: number; bytes: number; view: boolean } => {
    const def = getOp(n.op);
    if (!def) throw new Error(`internal: simulate: op "${n.op}" (node ${n.id}) is neither in the registry nor fused`);
    if (!n.type) throw new Error(`internal: simulate: node ${n.id} has no inferred type`);
    const ins = n.inputs.map((r) => concrete(typeOf(r, local), `input ${r} of node ${n.id}`));
    const c = def.cost(ins, concrete(n.type, `node ${n.id}`), n.attrs);
    return { ...c, view: def.fusion === 'view' };
  };

  const kernels: KernelCost[] = [];
  // Values that depend on constants only are computed once, when a program is planned, not per run.
  const planTime = new Set<string>();
  for (const n of g.nodes) {
    const body = fusedBody(n);
    let flops: number;
    let nbytes: number;
    let ops = 1;
    let free = false;
    const pure = (body ?? [n]).every((b) => getOp(b.op)?.pure !== false);
    if (pure && n.inputs.every((r) => planTime.has(r.split('.')[0]!))) {
      planTime.add(n.id);
      kernels.push({ id: n.id, op: n.op, ops: body?.length ?? 1, flops: 0, bytes: 0, computeS: 0, memoryS: 0, overheadS: 0, timeS: 0, bound: 'free' });
      continue;
    }
    if (body) {
      // Body nodes read each other (by id) or the fused node's inputs (outer values).
      const local = new Map<string, TensorType>();
      flops = 0;
      for (const b of body) {
        flops += opCost(b, local).flops;
        if (b.type) local.set(b.id, b.type);
      }
      ops = body.length;
      const outs = n.outputTypes ? Object.values(n.outputTypes) : n.type ? [n.type] : [];
      nbytes =
        n.inputs.reduce((s, r) => s + bytes(concrete(typeOf(r), `input ${r} of node ${n.id}`)), 0) +
        outs.reduce((s, t) => s + bytes(concrete(t, `node ${n.id}`)), 0);
    } else {
      const c = opCost(n);
      flops = c.flops;
      nbytes = c.bytes;
      free = c.view && c.flops === 0 && c.bytes === 0;
    }
    const computeS = flops / peak;
    const memoryS = nbytes / profile.memoryBandwidth;
    const overheadS = free ? 0 : profile.kernelOverhead;
    const timeS = free ? 0 : Math.max(computeS, memoryS) + overheadS;
    const bound: Bound = free ? 'free' : computeS >= memoryS && computeS >= overheadS ? 'compute' : memoryS >= overheadS ? 'memory' : 'overhead';
    kernels.push({ id: n.id, op: n.op, ops, flops, bytes: nbytes, computeS, memoryS, overheadS, timeS, bound });
  }

  const byBound: SimResult['byBound'] = { compute: { kernels: 0, timeS: 0 }, memory: { kernels: 0, timeS: 0 }, overhead: { kernels: 0, timeS: 0 }, free: { kernels: 0, timeS: 0 } };
  for (const k of kernels) {
    byBound[k.bound].kernels++;
    byBound[k.bound].timeS += k.timeS;
  }
  const total = {
    flops: kernels.reduce((s, k) => s + k.flops, 0),
    bytes: kernels.reduce((s, k) => s + k.bytes, 0),
    timeS: kernels.reduce((s, k) => s + k.timeS, 0),
    kernels: kernels.filter((k) => k.bound !== 'free').length,
  };
  const mem = peakMemory(g, (t, w) => bytes(concrete(t, w)));
  return {
    graph: g.name,
    profile: profile.name,
    precision,
    kernels,
    total,
    byBound,
    residentBytes: mem.resident,
    peakMemoryBytes: mem.peak,
    peakAt: mem.at,
    fits: profile.memoryCapacity === undefined ? null : mem.peak <= profile.memoryCapacity,
  };
}

/**
 * Peak bytes alive at once over the program order. A node's output is allocated when it runs
 * and freed after its last reader; while a node runs, its inputs and its output are all alive.
 */
export function peakMemory(g: IRGraph, sizeOfType: (t: TensorType, where: string) => number): { resident: number; peak: number; at: string | null } {
  let resident = 0;
  for (const v of [...g.inputs, ...g.params]) resident += sizeOfType(v.type, v.name);
  const index = new Map(g.nodes.map((n, i) => [n.id, i]));
  // Views share their source's buffer: account the bytes to the root value.
  const root = new Map<string, string>();
  const rootOf = (ref: string): string => root.get(ref.split('.')[0]!) ?? ref.split('.')[0]!;
  const own = new Map<string, number>();
  for (const n of g.nodes) {
    const isView = !fusedBody(n) && getOp(n.op)?.fusion === 'view';
    if (isView && n.inputs.length) root.set(n.id, rootOf(n.inputs[0]!));
    else {
      const outs = n.outputTypes ? Object.values(n.outputTypes) : n.type ? [n.type] : [];
      own.set(n.id, outs.reduce((s, t) => s + sizeOfType(t, `node ${n.id}`), 0));
    }
  }
  const last = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    for (const r of n.inputs) {
      const v = rootOf(r);
      if (own.has(v)) last.set(v, Math.max(last.get(v) ?? -1, i));
    }
  });
  for (const ref of Object.values(g.outputs)) {
    const v = rootOf(ref);
    if (own.has(v)) last.set(v, g.nodes.length);
  }
  // delta[i]: bytes allocated at step i; freed[i]: bytes released after step i.
  const alloc = new Array<number>(g.nodes.length + 1).fill(0);
  const freed = new Array<number>(g.nodes.length + 1).fill(0);
  for (const [v, b] of own) {
    const d = index.get(v)!;
    alloc[d]! += b;
    freed[Math.max(d, last.get(v) ?? d)]! += b;
  }
  let cur = resident;
  let peak = resident;
  let at: string | null = null;
  g.nodes.forEach((n, i) => {
    cur += alloc[i]!;
    if (cur > peak) {
      peak = cur;
      at = n.id;
    }
    cur -= freed[i]!;
  });
  return { resident, peak, at };
}
