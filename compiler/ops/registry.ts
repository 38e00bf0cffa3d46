/**
 * The op registry. Every op is defined exactly once, in compiler/ops/<family>.ts, with its
 * signature, attribute schema, shape+dtype rule, reference kernel (one tfjs call), gradient
 * rule, fusion class and cost. Everything else (frontend, passes, interpreter, codegen,
 * simulator) reads this table and never switches on op names.
 */
import type * as tfType from '@tensorflow/tfjs';
import type { Dim, Shape } from '../dims.ts';
import type { Attrs, DType, TensorType } from '../ir.ts';
import type { Expr, ReducerBody } from '../codegen/kir.ts';

export type Tensor = tfType.Tensor;

/** How the fusion pass may group an op. */
export type FusionClass =
  | 'elementwise' // out[i] = f(in_0[bcast(i)], ...): fuses into chains
  | 'reduction' // reduces axes of one input: may absorb an elementwise producer chain
  | 'matmul' // may take an elementwise epilogue (bias, activation)
  | 'view' // reshape-like, free on contiguous data
  | 'opaque'; // library kernel, never fused

/** Helpers a shape rule uses; their failures carry the node's location. */
export interface ShapeCtx {
  /** Throws an E_SHAPE (or other code) error for the current node. */
  fail(code: 'E_SHAPE' | 'E_DTYPE' | 'E_RANK' | 'E_AXIS' | 'E_ATTR' | 'E_UNBOUND_DIM', message: string, expected?: string, found?: string): never;
  /** NumPy broadcasting of any number of shapes. */
  broadcast(...shapes: Shape[]): Shape;
  /** Requires a == b (symbolic dims are unified with static ones); returns the more static one. */
  unify(a: Dim, b: Dim, what: string): Dim;
  /** Normalises a possibly negative axis for a given rank, or fails with E_AXIS. */
  axis(axis: number, rank: number): number;
  /** Requires a dtype from a set. */
  dtype(t: TensorType, allowed: readonly DType[], what: string): DType;
  /** Requires that all inputs share a dtype, returning it. */
  sameDtype(ts: TensorType[]): DType;
  /** Symbols bound so far (from graph inputs), for attrs that mention dims. */
  isBound(symbol: string): boolean;
}

/** Graph-building API handed to gradient rules. Values are named by string ids. */
export interface GradBuilder {
  op(name: string, inputs: string[], attrs?: Attrs): string;
  constant(value: number, dtype?: DType): string;
  type(value: string): TensorType;
}

export interface GradArgs {
  inputs: string[];
  output: string;
  attrs: Attrs;
  /** The gradient flowing into the output, same shape as the output. */
  dy: string;
}

/**
 * Graph-building API handed to batching rules (the vmap pass). Types of batched values include
 * the leading batch axis of size `size`.
 */
export interface BatchBuilder {
  op(name: string, inputs: string[], attrs?: Attrs): string;
  type(value: string): TensorType;
  /** The batch size (static or a symbolic dim). */
  readonly size: Dim;
  /** An unbatched value repeated along a new leading batch axis. */
  materialize(value: string): string;
  /** A batched value with size-1 axes inserted after the batch axis up to a per-instance rank of `rank`. */
  padRank(value: string, rank: number): string;
}

export interface BatchArgs {
  /** The node's op (rules shared by several ops rebuild it). */
  op: string;
  inputs: string[];
  /** Which inputs carry the leading batch axis (at least one does). */
  batched: boolean[];
  attrs: Attrs;
  /** The op's output type for one instance. */
  outType: TensorType;
}

/**
 * The batched form of one node: its value and whether it carries the batch axis (a value that
 * depends on the batched inputs only through their shapes, such as reduce_count, does not).
 * null: the op has no batched form for these inputs, and vmap falls back to one op per instance.
 */
export type BatchResult = { value: string; batched: boolean } | null;

export interface Cost {
  flops: number;
  /** Bytes read plus bytes written by a standalone kernel. */
  bytes: number;
}

/** Row-major host memory of a tensor (bool as 0/1 bytes). */
export type HostArray = Float32Array | Int32Array | Uint8Array;

/** A tensor in host memory: its data and concrete shape. */
export interface HostTensor {
  data: HostArray;
  shape: readonly number[];
  dtype: DType;
}

export interface KernelCtx {
  /** The statically inferred output type, with all dims bound. */
  outType: { dtype: DType; shape: number[] };
}

export interface OpDef {
  name: string;
  family: string;
  doc: string;
  /** Input names, for messages and docs; `variadic` allows any count >= minInputs. */
  inputs: readonly string[];
  variadic?: boolean;
  minInputs?: number;
  /** JSON Schema (object) of the attributes; unknown attributes are rejected. */
  attrs: { properties: Record<string, object>; required?: string[] };
  shape(inputs: TensorType[], attrs: Attrs, ctx: ShapeCtx): TensorType;
  /** Reference kernel: tfjs calls only. Must not dispose its inputs. */
  kernel(tf: typeof tfType, inputs: Tensor[], attrs: Attrs, ctx: KernelCtx): Tensor;
  /** Gradients w.r.t. each input (null where none flows, e.g. integer inputs). */
  grad?(b: GradBuilder, a: GradArgs): (string | null)[];
  /**
   * Host kernel: the op on host arrays, writing every element of `out.data` (which holds
   * arbitrary values on entry; its shape and dtype are the inferred output type). Compiled
   * programs run it instead of `kernel` on backends whose memory the host addresses (cpu, wasm)
   * when the tensors are small: a loop over a few hundred elements costs less than the library
   * kernels' dispatch. Must agree with `kernel`: exactly for integer and bool outputs, to float32
   * rounding for float ones.
   */
  host?(ins: readonly HostTensor[], out: HostTensor, attrs: Attrs): void;
  /**
   * `host` only moves data (copies of contiguous runs), which costs what the library's kernel
   * costs at any size, so compiled programs run it whatever the tensors' size. (The wasm library's
   * slice of a strided region reads its whole input back to the host first.)
   */
  hostAtAnySize?: boolean;
  fusion: FusionClass;
  /** For 'elementwise' ops: one element of the result as kernel IR over the operands (loads), built with `kir`. */
  scalar?(args: Expr[], attrs: Attrs): Expr;
  /** For 'reduction' ops that generated kernels can compute: how elements combine. */
  reducer?: Reducer;
  cost(inputs: ConcreteType[], out: ConcreteType, attrs: Attrs): Cost;
  /**
   * Batching rule for vmap: the node over inputs of which some carry a leading batch axis.
   * Absent, a default follows from the fusion class and attributes (see batchRuleOf in
   * ops/batching.ts); ops with neither fall back to one op per instance.
   */
  batch?(b: BatchBuilder, a: BatchArgs): BatchResult;
  /** Ops with hidden state or randomness are never folded or CSE'd. */
  pure?: boolean;
  /**
   * The reference kernel reads its inputs' values on the host (dataSync). Where a backend's
   * tensors cannot be read synchronously (webgpu), programs await those reads before it runs.
   */
  readsHost?: boolean;
}

/** How a reduction combines the elements of its reduced axes, for generated kernels (kernel IR). */
export interface Reducer extends ReducerBody {
  /** Reduced axes of the data input, from concrete shapes. */
  axes(inShape: readonly number[], outShape: readonly number[], attrs: Attrs): number[];
  /** Indices of the inputs whose values are read (the others only give a shape). */
  dataInputs: readonly number[];
}

export interface ConcreteType {
  dtype: DType;
  shape: number[];
}

const registry = new Map<string, OpDef>();

export function defineOp(def: OpDef): OpDef {
  if (registry.has(def.name)) throw new Error(`op "${def.name}" defined twice`);
  registry.set(def.name, { pure: true, ...def });
  return def;
}

export function getOp(name: string): OpDef | undefined {
  return registry.get(name);
}

export function allOps(): OpDef[] {
  return [...registry.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Row-major element strides of a shape. */
export function rowStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let i = shape.length - 1, acc = 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Strides into a tensor of `shape` for each axis of `to`, which it broadcasts to (NumPy rules): 0 along new and size-1 axes. */
export function broadcastStrides(shape: readonly number[], to: readonly number[]): number[] {
  const st = rowStrides(shape);
  const lead = to.length - shape.length;
  return to.map((_d, i) => (i < lead || shape[i - lead] === 1 ? 0 : st[i - lead]!));
}

export function bytesOf(t: ConcreteType): number {
  return sizeOf(t.shape) * 4;
}

/** Cost of an op that reads every input once and writes its output once, `flopsPerElem` per output element. */
export function streamingCost(flopsPerElem: number) {
  return (inputs: ConcreteType[], out: ConcreteType): Cost => ({
    flops: flopsPerElem * sizeOf(out.shape),
    bytes: inputs.reduce((s, t) => s + bytesOf(t), 0) + bytesOf(out),
  });
}
