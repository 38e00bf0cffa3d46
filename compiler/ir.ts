/**
 * The IR: one flat, topologically ordered list of single-output nodes over named values.
 * A value is named by a string: a graph input, a param, or a node id. Structural nodes
 * (`call`, `grad`) have several outputs, referenced as "node.output"; the frontend keeps them
 * for the reference interpreter and the inline / autodiff passes remove them.
 */
import type { Dim, Shape } from './dims.ts';

export type DType = 'float32' | 'int32' | 'bool';
export const DTYPES: readonly DType[] = ['float32', 'int32', 'bool'];

export interface TensorType {
  dtype: DType;
  shape: Shape;
}

export type AttrValue = number | string | boolean | null | AttrValue[] | { [k: string]: AttrValue };
export type Attrs = Record<string, AttrValue>;

/** Where a thing came from, for error messages. */
export interface SourceLoc {
  file: string;
  pointer: string;
}

export interface IRNode {
  id: string;
  op: string;
  inputs: string[];
  attrs: Attrs;
  /** Inferred result type (set by shape inference). */
  type?: TensorType;
  /** Structural nodes only: their named output types. */
  outputTypes?: Record<string, TensorType>;
  source?: SourceLoc;
  /** `call` only: the callee, already loaded. */
  callee?: IRGraph;
  /** `call` only: named inputs of the callee bound to caller values. */
  bindings?: Record<string, string>;
  /**
   * `fused` only (set by the fusion pass): the original nodes the fused kernel computes, in
   * order. Body nodes keep their ids; their inputs name body nodes or the fused node's inputs.
   * The values the rest of the graph reads are the fused node's outputs ("<fused id>.<body id>").
   */
  body?: IRNode[];
  /** Set by the liveness pass: values whose last use is this node, freed right after it runs. */
  free?: string[];
}

export interface ParamInit {
  kind: string;
  args: Record<string, number>;
}

export interface IRInput {
  name: string;
  type: TensorType;
  source?: SourceLoc;
}

export interface IRParam {
  name: string;
  type: TensorType;
  init: ParamInit;
  source?: SourceLoc;
}

export interface IRGraph {
  name: string;
  file: string;
  inputs: IRInput[];
  params: IRParam[];
  nodes: IRNode[];
  /** output name -> value name */
  outputs: Record<string, string>;
  outputSources?: Record<string, SourceLoc>;
}

export type { Dim, Shape };

export function showType(t: TensorType): string {
  return `${t.dtype}[${t.shape.join(', ')}]`;
}

/** Shallow-copies a graph with fresh node objects, so passes can stay pure. */
export function cloneGraph(g: IRGraph): IRGraph {
  return {
    ...g,
    inputs: g.inputs.map((i) => ({ ...i })),
    params: g.params.map((p) => ({ ...p })),
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], attrs: { ...n.attrs } })),
    outputs: { ...g.outputs },
  };
}

/**
 * JSON with object keys sorted at every level, for hashing attributes. Numbers JSON cannot
 * tell apart (Infinity, -Infinity and NaN all print as null; -0 prints as 0) get their own
 * spellings, so constants such as a folded -Infinity mask and a +Infinity never merge.
 */
export function stableStringify(v: unknown): string {
  if (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))) return `#${Object.is(v, -0) ? '-0' : String(v)}`;
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}
