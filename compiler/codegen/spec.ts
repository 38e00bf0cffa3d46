/**
 * Lowering of a `fused` node, at concrete shapes, to a KernelSpec: a target-independent
 * description of one loop nest over the group's domain. The spec numbers its values and
 * carries each elementwise op's per-element kernel IR (from the registry), whose loads are
 * those numbers.
 */
import { substShape } from '../dims.ts';
import type { DType, IRNode, TensorType } from '../ir.ts';
import { broadcastStrides, rowStrides } from '../ops/registry.ts';
import { type Expr, type Reduction, instantiate, kir, loadsOf, mapLoads } from './kir.ts';
import { matmulFlags, reducerOf, roleOf, scalarOf } from './semantics.ts';

/** Where a load reads: a kernel input, or the result of the kernel's matmul prologue. */
export type BufferRef = { input: number } | { matmul: true };

export type SpecValue =
  /** Element of a buffer; `strides` per domain axis (0 = broadcast). */
  | { kind: 'load'; buffer: BufferRef; strides: number[]; dtype: DType }
  /** A scalar baked into the kernel. */
  | { kind: 'const'; value: number; dtype: DType }
  /** One elementwise op; `expr` loads the earlier values `args`. */
  | { kind: 'expr'; expr: Expr; args: number[]; dtype: DType }
  /** A reduction of value `arg`; `outStrides` per domain axis (0 on reduced axes). */
  | { kind: 'reduce'; arg: number; reducer: Reduction; outStrides: number[]; outSize: number; count: number; dtype: DType };

export interface SpecInput {
  dtype: DType;
  /** Element count (of the tensor as passed). */
  size: number;
}

export interface SpecOutput {
  value: number;
  dtype: DType;
  shape: number[];
}

export interface KernelSpec {
  /** Loop extents: the group's domain with its 1s removed (rank 0 = a single element). */
  domain: number[];
  inputs: SpecInput[];
  /**
   * A matmul computed before the loop by the host's product; a, b index `inputs`. With `bias`
   * (an input of one row, or with `biasPerMatrix` one row per matrix of a stacked product) and/or
   * `activation`, the product also applies what the group did next to its result,
   * act(a x b + bias), and the loop reads that (see LowerOptions.productEpilogue).
   */
  matmul?: { a: number; b: number; transposeA: boolean; transposeB: boolean; shape: number[]; bias?: number; biasPerMatrix?: boolean; activation?: ProductActivation };
  values: SpecValue[];
  outputs: SpecOutput[];
  /** Output written into the matmul result's buffer (every read of it is at the same index). */
  inPlace?: number;
  /** For messages: the fused node and its members. */
  label: string;
}

/** Activations a product may apply to its result (they match the group's elementwise ops of the same name). */
export type ProductActivation = 'tanh';
const PRODUCT_ACTIVATIONS: ReadonlySet<string> = new Set<ProductActivation>(['tanh']);

export interface LowerOptions {
  /**
   * The host's product applies what follows a matmul: an `add` of a one-row input (the bias; or
   * one row per matrix of a stacked product) that is the matmul's only reader, then an activation
   * (ProductActivation) that is the add's only reader, or the matmul's. Off (the default), the
   * loop computes them.
   */
  productEpilogue?: boolean;
}

/** How the fused node's inputs reach the kernel: a tensor argument, or a baked scalar. */
export type InputBinding = { kind: 'tensor'; index: number } | { kind: 'const'; value: number };

export interface LoweredKernel {
  spec: KernelSpec;
  /** One entry per fused node input. */
  bindings: InputBinding[];
}

/** Strides (per domain axis: the axes of `out` that are not 1) of a buffer of logical shape `buf` read by an op whose output has shape `out`. */
function domainStrides(buf: readonly number[], out: readonly number[]): number[] {
  return broadcastStrides(buf, out).filter((_s, k) => out[k] !== 1);
}

const sameShape = (x: readonly number[], y: readonly number[]) => x.length === y.length && x.every((d, k) => d === y[k]);

/**
 * How an addend of a product of shape `out` ([...batch, m, n]) is a bias the product can add: one
 * row for every matrix ([n], [1, n], [1, 1, n], ...), or one row per matrix of a stack
 * ([...batch, 1, n], as vmap makes of a per-seed bias); else undefined.
 */
function biasRows(t: { shape: number[]; dtype: DType }, out: readonly number[]): 'shared' | 'per matrix' | undefined {
  const r = t.shape.length;
  if (t.dtype !== 'float32' || r > out.length || t.shape[r - 1] !== out[out.length - 1]) return undefined;
  if (t.shape.slice(0, -1).every((d) => d === 1)) return 'shared';
  if (r === out.length && r > 2 && t.shape[r - 2] === 1 && sameShape(t.shape.slice(0, -2), out.slice(0, -2))) return 'per matrix';
  return undefined;
}

type Operand = { loop: number } | { buffer: BufferRef | { const: number; dtype: DType }; shape: number[]; dtype: DType };

/**
 * Lowers a fused node for concrete symbol bindings. `constants` gives the values of fused-node
 * inputs that are known scalars (they are baked into the kernel instead of passed).
 */
export function lowerFused(
  node: IRNode,
  env: ReadonlyMap<string, number>,
  inputTypes: readonly TensorType[],
  constants: ReadonlyMap<string, number> = new Map(),
  opts: LowerOptions = {},
): LoweredKernel {
  const body = node.body;
  if (!body || !node.outputTypes) throw new Error(`internal: ${node.id} is not a fused node`);
  const shape = (t: TensorType): number[] => substShape(t.shape, env) as number[];
  const members = new Map(body.map((b) => [b.id, b]));
  const typeOf = new Map<string, TensorType>();
  node.inputs.forEach((r, k) => typeOf.set(r, inputTypes[k]!));
  for (const b of body) typeOf.set(b.id, b.type!);

  // Matmul operands must be tensors; other known scalars are baked in.
  const matmulOperands = new Set(body.filter((b) => roleOf(b.op) === 'matmul').flatMap((b) => b.inputs));
  const inputs: SpecInput[] = [];
  const bindings: InputBinding[] = [];
  const operands = new Map<string, Operand>();
  node.inputs.forEach((r, k) => {
    const t = inputTypes[k]!;
    const s = shape(t);
    const c = constants.get(r);
    if (c !== undefined && !matmulOperands.has(r)) {
      bindings.push({ kind: 'const', value: c });
      operands.set(r, { buffer: { const: c, dtype: t.dtype }, shape: s, dtype: t.dtype });
    } else {
      bindings.push({ kind: 'tensor', index: inputs.length });
      operands.set(r, { buffer: { input: inputs.length }, shape: s, dtype: t.dtype });
      inputs.push({ dtype: t.dtype, size: s.reduce((a, b) => a * b, 1) });
    }
  });

  // The domain comes from any computing member.
  let domainShape: number[] | undefined;
  for (const b of body) {
    const role = roleOf(b.op);
    if (role === 'elementwise' || role === 'matmul') domainShape = shape(b.type!);
    else if (role === 'reduction') domainShape = shape(typeOf.get(b.inputs[reducerOf(b.op)!.dataInputs[0]!]!)!);
    if (domainShape) break;
  }
  if (!domainShape) throw new Error(`internal: fused node ${node.id} computes nothing`);
  const domain = domainShape.filter((d) => d !== 1);
  const rank = domain.length;

  const values: SpecValue[] = [];
  const loadIds = new Map<string, number>();
  const push = (v: SpecValue): number => {
    values.push(v);
    return values.length - 1;
  };
  /** The value index of operand `r` as read by an op whose output has shape `out`. */
  const read = (r: string, out: number[]): number => {
    const o = operands.get(r);
    if (!o) throw new Error(`internal: fused node ${node.id} reads unknown value ${r}`);
    if ('loop' in o) return o.loop;
    const buf = o.buffer;
    if ('const' in buf) {
      const key = `c:${buf.const}:${buf.dtype}`;
      if (!loadIds.has(key)) loadIds.set(key, push({ kind: 'const', value: buf.const, dtype: buf.dtype }));
      return loadIds.get(key)!;
    }
    const strides = domainStrides(o.shape, out);
    if (strides.length !== rank) throw new Error(`internal: fused node ${node.id}: ${r} read outside the domain`);
    const key = `${'input' in buf ? buf.input : 'mm'}:${strides.join(',')}`;
    if (!loadIds.has(key)) loadIds.set(key, push({ kind: 'load', buffer: buf, strides, dtype: o.dtype }));
    return loadIds.get(key)!;
  };

  // Readers of each value inside the group (exported values count as read outside it).
  const readers = new Map<string, IRNode[]>();
  for (const b of body) for (const r of b.inputs) readers.set(r, [...(readers.get(r) ?? []), b]);
  const exported = new Set(Object.keys(node.outputTypes));
  /** The one member reading `id`, if `id` has exactly one reader and is not exported. */
  const soleReader = (id: string): IRNode | undefined => {
    const rs = readers.get(id) ?? [];
    return rs.length === 1 && !exported.has(id) && new Set(rs[0]!.inputs).size === rs[0]!.inputs.length ? rs[0] : undefined;
  };
  /** Members whose value the product computes (bias add, activation): skipped by the loop. */
  const absorbed = new Set<string>();

  // Views of input tensors are known before the loop: a product's epilogue may read one that
  // comes after it in the body (vmap's per-seed bias, expanded to [K, 1, n] after the product).
  for (const b of body) {
    const src = roleOf(b.op) === 'view' ? operands.get(b.inputs[0]!) : undefined;
    if (src && !('loop' in src)) operands.set(b.id, { buffer: src.buffer, shape: shape(b.type!), dtype: src.dtype });
  }

  let matmul: KernelSpec['matmul'];
  for (const b of body) {
    if (absorbed.has(b.id)) continue;
    const role = roleOf(b.op);
    const out = shape(b.type!);
    if (role === 'view') {
      const src = operands.get(b.inputs[0]!)!;
      // A view of a loop value is the same value; a view of a tensor reads it with the view's shape.
      operands.set(b.id, 'loop' in src ? src : { buffer: src.buffer, shape: out, dtype: src.dtype });
    } else if (role === 'matmul') {
      const [a, bb] = b.inputs.map((r) => operands.get(r)!);
      if (!a || !bb || 'loop' in a || 'loop' in bb || !('input' in a.buffer) || !('input' in bb.buffer)) throw new Error(`internal: matmul operands of ${node.id} must be tensors`);
      matmul = { a: a.buffer.input, b: bb.buffer.input, ...matmulFlags(b.attrs), shape: out };
      // The member whose value the product's buffer holds: the matmul, or the epilogue it absorbs.
      let last = b.id;
      if (opts.productEpilogue) {
        const add = soleReader(last);
        const biasRef = add?.op === 'add' ? add.inputs.find((r) => r !== last) : undefined;
        const bias = biasRef === undefined ? undefined : operands.get(biasRef);
        const rows = bias && !('loop' in bias) ? biasRows(bias, out) : undefined;
        if (add && bias && !('loop' in bias) && 'input' in bias.buffer && rows && sameShape(shape(add.type!), out)) {
          matmul.bias = bias.buffer.input;
          if (rows === 'per matrix') matmul.biasPerMatrix = true;
          absorbed.add(add.id);
          last = add.id;
        }
        const act = soleReader(last);
        if (act && PRODUCT_ACTIVATIONS.has(act.op) && act.inputs.length === 1 && sameShape(shape(act.type!), out)) {
          matmul.activation = act.op as ProductActivation;
          absorbed.add(act.id);
          last = act.id;
        }
      }
      operands.set(last, { buffer: { matmul: true }, shape: out, dtype: 'float32' });
      operands.set(last, { loop: read(last, out) });
    } else if (role === 'elementwise') {
      // The body over the operands; an operand it does not load (zeros_like's) only gives the shape.
      const elem = scalarOf(b.op)!(b.inputs.map((r, k) => kir.load(k, typeOf.get(r)!.dtype)), b.attrs);
      const ids = new Map(loadsOf(elem).sort((x, y) => x - y).map((k) => [k, read(b.inputs[k]!, out)]));
      const expr = mapLoads(elem, (k, dtype) => kir.load(ids.get(k)!, dtype));
      operands.set(b.id, { loop: push({ kind: 'expr', expr, args: [...new Set(ids.values())], dtype: b.type!.dtype }) });
    } else if (role === 'reduction') {
      const red = reducerOf(b.op)!;
      const x = b.inputs[red.dataInputs[0]!]!;
      const xs = shape(typeOf.get(x)!);
      const arg = read(x, xs);
      const axes = new Set(red.axes(xs, out, b.attrs));
      // Output strides over the kept non-unit axes, in order.
      const kept = xs.map((d, k) => (d !== 1 && !axes.has(k) ? d : 1));
      const ks = rowStrides(kept);
      const outStrides: number[] = [];
      let count = 1;
      xs.forEach((d, k) => {
        if (d === 1) return;
        if (axes.has(k)) {
          outStrides.push(0);
          count *= d;
        } else outStrides.push(ks[k]!);
      });
      const outSize = out.reduce((p, d) => p * d, 1);
      operands.set(b.id, { loop: push({ kind: 'reduce', arg, reducer: instantiate(red, b.type!.dtype, count), outStrides, outSize, count, dtype: b.type!.dtype }) });
    } else throw new Error(`internal: op ${b.op} cannot be part of fused node ${node.id}`);
  }

  const outputs: SpecOutput[] = Object.keys(node.outputTypes).map((id) => {
    const o = operands.get(id);
    if (!o || !('loop' in o)) throw new Error(`internal: fused node ${node.id} exports ${id}, which it does not compute`);
    return { value: o.loop, dtype: members.get(id)!.type!.dtype, shape: shape(members.get(id)!.type!) };
  });

  let inPlace: number | undefined;
  if (matmul) {
    const mmValue = values.findIndex((v) => v.kind === 'load' && 'matmul' in v.buffer);
    const exportsMm = outputs.findIndex((o) => o.value === mmValue);
    // The matmul result itself, or else a domain-sized output, takes over the result's buffer.
    const k =
      exportsMm >= 0
        ? exportsMm
        : outputs.findIndex((o) => o.dtype === 'float32' && values[o.value]!.kind !== 'reduce' && o.shape.reduce((a, b) => a * b, 1) === matmul!.shape.reduce((a, b) => a * b, 1));
    if (k >= 0) inPlace = k;
  }
  const label = `${node.id} [${body.map((b) => b.op).join(' ')}]`;
  return { spec: { domain, inputs, matmul, values, outputs, inPlace, label }, bindings };
}
