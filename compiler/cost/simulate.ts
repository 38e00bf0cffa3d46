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
 *
 * A profile's optional `rates` (measured by `loom calibrate`) refine kernel classes that run far
 * from the roofline on some backends, each falling back to the plain roofline when absent:
 * - a matmul is priced as the op registry's kernel runs it (planMatmul in compiler/ops/linalg.ts):
 *   one library call of `matrices` products; a single one is a 2-D product at the peak, more run
 *   at `batchedMatmul` (by the size of one right-hand matrix): matrices * perMatrix + flops / rate;
 *   `freshOperand` adds seconds per element of a 2-D product's right-hand matrix when the backend
 *   has not seen that tensor before (it is computed in the run, or the kernel's own copy; a param
 *   is packed once and reused by every later run);
 * - `matmulCopies`: the copies that kernel makes around the call (transposes that fold a broadcast
 *   operand's batch into the other's rows, explicit broadcasts) are extra kernels at the
 *   `transpose` / `broadcast` rates; `matmulCopiesTransposed`: the backend also copies transposed
 *   operands first (tfjs-wasm); `ownProduct2d`: rank-2 float32 products run as the executor's own
 *   product instead (wasm), at the peak with neither packing nor copies;
 * - unfused transpose, broadcast (broadcast_to, broadcast_like, tile) and reduction kernels move
 *   their bytes at `transpose`, `broadcast` and `reduction` instead of `memoryBandwidth`.
 * These copies mirror what the op registry's matmul kernel does (compiler/ops/linalg.ts).
 */
import { isStatic, showShape, substShape, symbolsOf } from '../dims.ts';
import { LoomError } from '../errors.ts';
import type { IRGraph, IRNode, TensorType } from '../ir.ts';
import { getOp } from '../ops/index.ts';
import { sizeOf, type ConcreteType } from '../ops/registry.ts';
import { planMatmul } from '../ops/linalg.ts';
import { batchedMatmulPerMatrix, batchedMatmulRate, peakFor, type Precision, type Profile } from './profile.ts';

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
  /** Extra kernels the op's lowering issues (operand copies before a matmul), and their time (overheads included). */
  copies: number;
  copyS: number;
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

const BROADCAST_OPS = new Set(['broadcast_to', 'broadcast_like', 'tile']);

/** Seconds of an op's arithmetic and of the operand copies its lowering adds, on the profile's measured rates. */
interface Priced {
  computeS: number;
  /** Bytes/s its own traffic moves at. */
  bandwidth: number;
  copies: number;
  copyS: number;
}

/**
 * Prices one op (unfused, or one member of a fused body) beyond its FLOP and byte counts: which
 * throughput its arithmetic runs at and which copies its lowering adds.
 */
export function priceOp(
  op: string,
  ins: ConcreteType[],
  out: ConcreteType,
  attrs: IRNode['attrs'],
  flops: number,
  profile: Profile,
  peak: number,
  /** The right operand is computed in this run (not a param or a plan-time constant), so the backend has not packed it before. */
  rhsComputed = true,
): Priced {
  const r = profile.rates ?? {};
  const bw = profile.memoryBandwidth;
  if (op === 'matmul') {
    const [a, b] = ins as [ConcreteType, ConcreteType];
    // The executor's own 2-D product reads every operand where it lies: no packing, no copies.
    if (r.ownProduct2d && a.shape.length === 2 && b.shape.length === 2 && a.dtype === 'float32') return { computeS: flops / peak, bandwidth: bw, copies: 0, copyS: 0 };
    const plan = planMatmul(a.shape, b.shape, attrs.transpose_a === true, attrs.transpose_b === true, out.shape, r.matmulCopiesTransposed === true);
    let copies = 0;
    let copyS = 0;
    if (r.matmulCopies)
      for (const c of plan.copies) {
        copies++;
        // A transpose reads and writes every element; a broadcast's count already is read + write.
        const moved = c.kind === 'transpose' ? 2 * c.elements * 4 : c.elements * 4;
        copyS += moved / (c.kind === 'transpose' ? (r.transpose ?? bw) : (r.broadcast ?? bw)) + profile.kernelOverhead;
      }
    // One library call of a single matrix is a 2-D product, at the peak, plus packing its right-hand
    // matrix when the backend has not seen that tensor (computed in this run, or the kernel's copy).
    if (plan.matrices === 1) {
      const rhsCopied = (attrs.transpose_b === true && plan.copyTransposed) || plan.kind === 'cols';
      const pack = r.freshOperand && (rhsComputed || rhsCopied) ? r.freshOperand * plan.k * plan.cols : 0;
      return { computeS: flops / peak + pack, bandwidth: bw, copies, copyS };
    }
    // The measured batched figures are float32; other precisions scale the rate with their peak.
    const rhs = plan.k * plan.cols;
    const rate = batchedMatmulRate(profile, rhs) * (peak / profile.peakFlops.float32);
    return { computeS: plan.matrices * batchedMatmulPerMatrix(profile, rhs) + flops / Math.min(rate, peak), bandwidth: bw, copies, copyS };
  }
  const def = getOp(op);
  const bandwidth =
    op === 'transpose' ? (r.transpose ?? bw) : BROADCAST_OPS.has(op) ? (r.broadcast ?? bw) : def?.fusion === 'reduction' ? (r.reduction ?? bw) : bw;
  return { computeS: flops / peak, bandwidth, copies: 0, copyS: 0 };
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

  const paramNames = new Set(g.params.map((p) => p.name));
  // Values that depend on constants only are computed once, when a program is planned, not per run.
  const planTime = new Set<string>();
  const opCost = (n: IRNode, local?: Map<string, TensorType>): { flops: number; bytes: number; view: boolean } & Priced => {
    const def = getOp(n.op);
    if (!def) throw new Error(`internal: simulate: op "${n.op}" (node ${n.id}) is neither in the registry nor fused`);
    if (!n.type) throw new Error(`internal: simulate: node ${n.id} has no inferred type`);
    const ins = n.inputs.map((r) => concrete(typeOf(r, local), `input ${r} of node ${n.id}`));
    const out = concrete(n.type, `node ${n.id}`);
    const c = def.cost(ins, out, n.attrs);
    const rhs = n.op === 'matmul' ? n.inputs[1]! : '';
    const rhsComputed = local?.has(rhs) === true || !(paramNames.has(rhs) || planTime.has(rhs.split('.')[0]!));
    return { ...c, view: def.fusion === 'view', ...priceOp(n.op, ins, out, n.attrs, c.flops, profile, peak, rhsComputed) };
  };

  const kernels: KernelCost[] = [];
  for (const n of g.nodes) {
    const body = fusedBody(n);
    let flops: number;
    let nbytes: number;
    let ops = 1;
    let free = false;
    let computeS = 0;
    let bandwidth = profile.memoryBandwidth;
    let copies = 0;
    let copyS = 0;
    const pure = (body ?? [n]).every((b) => getOp(b.op)?.pure !== false);
    if (pure && n.inputs.every((r) => planTime.has(r.split('.')[0]!))) {
      planTime.add(n.id);
      kernels.push({ id: n.id, op: n.op, ops: body?.length ?? 1, flops: 0, bytes: 0, computeS: 0, memoryS: 0, overheadS: 0, copies: 0, copyS: 0, timeS: 0, bound: 'free' });
      continue;
    }
    if (body) {
      // Body nodes read each other (by id) or the fused node's inputs (outer values).
      const local = new Map<string, TensorType>();
      flops = 0;
      for (const b of body) {
        const c = opCost(b, local);
        flops += c.flops;
        computeS += c.computeS;
        copies += c.copies;
        copyS += c.copyS;
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
      computeS = c.computeS;
      bandwidth = c.bandwidth;
      copies = c.copies;
      copyS = c.copyS;
    }
    const memoryS = nbytes / bandwidth;
    const overheadS = free ? 0 : profile.kernelOverhead;
    const timeS = free ? 0 : Math.max(computeS, memoryS) + overheadS + copyS;
    // Operand copies are memory traffic: they count on the memory side when naming the bound.
    const memSide = memoryS + copyS;
    const bound: Bound = free ? 'free' : computeS >= memSide && computeS >= overheadS ? 'compute' : memSide >= overheadS ? 'memory' : 'overhead';
    kernels.push({ id: n.id, op: n.op, ops, flops, bytes: nbytes, computeS, memoryS, overheadS, copies, copyS, timeS, bound });
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
    kernels: kernels.filter((k) => k.bound !== 'free').length + kernels.reduce((s, k) => s + k.copies, 0),
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
