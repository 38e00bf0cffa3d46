/**
 * Shared harness for gradient and pass tests: builds graphs from JSON (with in-memory callee
 * files), evaluates them with the reference interpreter, and checks compiled gradients against
 * (a) the interpreter on the uncompiled graph (tfjs autodiff) and (b) central finite differences.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import '../../compiler/ops/index.ts';
import { compileGraph, type CompileOptions } from '../../compiler/compile.ts';
import { loadGraphJson, memoryFiles } from '../../compiler/frontend/load.ts';
import type { DType, IRGraph } from '../../compiler/ir.ts';
import { valueTypes } from '../../compiler/passes/util.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';

await tf.setBackend('cpu');

export { tf };

// ---------------------------------------------------------------------------- values

export interface Spec {
  shape: number[];
  values: number[];
  dtype?: DType;
}

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A small deterministic generator (LCG), so every run checks the same points. */
export function rng(seed: number): () => number {
  let s = (seed * 2654435761 + 12345) >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function f32(shape: number[], values: number[]): Spec {
  if (values.length !== size(shape)) throw new Error(`f32: ${values.length} values for shape [${shape}]`);
  return { shape, values, dtype: 'float32' };
}

export function i32(shape: number[], values: number[]): Spec {
  if (values.length !== size(shape)) throw new Error(`i32: ${values.length} values for shape [${shape}]`);
  return { shape, values, dtype: 'int32' };
}

export function bools(shape: number[], values: (0 | 1)[]): Spec {
  if (values.length !== size(shape)) throw new Error(`bools: ${values.length} values for shape [${shape}]`);
  return { shape, values, dtype: 'bool' };
}

/** Uniform values in [lo, hi). */
export function uniform(shape: number[], lo: number, hi: number, seed: number): Spec {
  const r = rng(seed);
  return f32(shape, Array.from({ length: size(shape) }, () => lo + (hi - lo) * r()));
}

/**
 * Distinct values spread evenly over [lo, hi] in a shuffled order: neighbours differ by
 * (hi - lo) / n, so there are no ties (max/min/maximum) within a finite-difference step.
 */
export function spread(shape: number[], lo: number, hi: number, seed: number): Spec {
  const n = size(shape);
  const vals = Array.from({ length: n }, (_, k) => lo + ((hi - lo) * (k + 0.5)) / n);
  const r = rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [vals[i], vals[j]] = [vals[j]!, vals[i]!];
  }
  return f32(shape, vals);
}

/** Uniform values in [lo, hi) with |v| >= gap (away from the kink of abs/relu/sign at 0). */
export function awayFromZero(shape: number[], lo: number, hi: number, seed: number, gap = 0.1): Spec {
  const r = rng(seed);
  const out: number[] = [];
  while (out.length < size(shape)) {
    const v = lo + (hi - lo) * r();
    if (Math.abs(v) >= gap) out.push(v);
  }
  return f32(shape, out);
}

export function toTensor(s: Spec): tf.Tensor {
  const dtype = s.dtype ?? 'float32';
  return tf.tensor(dtype === 'bool' ? s.values.map((v) => (v ? 1 : 0)) : s.values, s.shape, dtype);
}

export function toTensors(specs: Record<string, Spec>): TensorMap {
  return Object.fromEntries(Object.entries(specs).map(([k, s]) => [k, toTensor(s)]));
}

export function disposeAll(...maps: TensorMap[]): void {
  for (const m of maps) for (const t of Object.values(m)) t.dispose();
}

// ---------------------------------------------------------------------------- graphs

export interface RawNode {
  id: string;
  op: string;
  in?: (string | number)[] | Record<string, string | number>;
  attrs?: Record<string, unknown>;
  graph?: string;
  params?: Record<string, string>;
}

export interface RawGraph {
  graph: string;
  inputs?: Record<string, { dtype?: DType; shape: (number | string)[] }>;
  params?: Record<string, { shape: number[]; init?: unknown }>;
  nodes: RawNode[];
  outputs: Record<string, string>;
}

/** Where test graphs live; callee files are given relative to it. */
export const GRAPH_DIR = '/virtual/graphs';

/** Loads a graph JSON object; `files` maps callee paths (relative to GRAPH_DIR) to graph JSON. */
export function load(json: RawGraph, files: Record<string, RawGraph> = {}): IRGraph {
  const mem = Object.fromEntries(Object.entries(files).map(([k, v]) => [`${GRAPH_DIR}/${k}`, v as object]));
  return loadGraphJson(json, `${GRAPH_DIR}/${json.graph}.graph.json`, { files: memoryFiles(mem) });
}

/**
 * Passes whose output the reference interpreter cannot run: fusion turns groups into `fused`
 * nodes for generated kernels. The checks here are about the passes before it, so it is off.
 */
export const NOT_INTERPRETABLE: readonly string[] = ['fusion'];

/** compileGraph with every pass the interpreter can follow (plus any further `disabled`). */
export function compile(g: IRGraph, opts: CompileOptions = {}): IRGraph {
  const disabled = new Set([...NOT_INTERPRETABLE, ...(opts.disabled ?? [])]);
  return compileGraph(g, { ...opts, disabled }).graph;
}

export interface Evaluated {
  shape: number[];
  dtype: string;
  values: number[];
}

/** Runs the reference interpreter and returns plain arrays (nothing is left allocated). */
export function evaluate(g: IRGraph, inputs: Record<string, Spec>, params: Record<string, Spec> = {}): Record<string, Evaluated> {
  const ins = toTensors(inputs);
  const ps = toTensors(params);
  try {
    const out = interpret(g, ins, ps);
    const res = Object.fromEntries(
      Object.entries(out).map(([k, t]) => [k, { shape: t.shape, dtype: t.dtype, values: Array.from(t.dataSync()) }]),
    );
    disposeAll(out);
    return res;
  } finally {
    disposeAll(ins, ps);
  }
}

export function opCount(g: IRGraph, op: string): number {
  return g.nodes.filter((n) => n.op === op).length;
}

/**
 * Elementwise closeness: |a - b| <= rtol * |b| + atol * max(1, max|b|). The absolute part is
 * scaled by the largest reference value because equivalent float32 formulas differ by a few
 * ulps of their largest intermediate, not of each (possibly near-zero) result.
 */
export function expectClose(actual: number[], expected: number[], rtol: number, atol: number, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const scale = Math.max(1, ...expected.filter(Number.isFinite).map(Math.abs));
  const bad: string[] = [];
  actual.forEach((a, i) => {
    const e = expected[i]!;
    // Equal infinities and NaN against NaN count as matching.
    if (a === e || (Number.isNaN(a) && Number.isNaN(e))) return;
    if (!(Math.abs(a - e) <= rtol * Math.abs(e) + atol * scale)) bad.push(`[${i}] ${a} vs ${e}`);
  });
  expect(bad, `${what}: elements out of tolerance (actual vs expected)`).toEqual([]);
}

/** The optimized graph computes the same outputs as the original under the interpreter. */
export function expectSameOutputs(
  original: IRGraph,
  optimized: IRGraph,
  inputs: Record<string, Spec>,
  params: Record<string, Spec> = {},
  tol = 1e-6,
): Record<string, Evaluated> {
  const a = evaluate(original, inputs, params);
  const b = evaluate(optimized, inputs, params);
  expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
  for (const k of Object.keys(a)) {
    expect(b[k]!.shape, `output ${k}: shape`).toEqual(a[k]!.shape);
    expect(b[k]!.dtype, `output ${k}: dtype`).toEqual(a[k]!.dtype);
    expectClose(b[k]!.values, a[k]!.values, tol, tol, `output ${k}`);
  }
  return a;
}

// ---------------------------------------------------------------------------- gradient checks

export interface FdOptions {
  eps?: number;
  rtol?: number;
  atol?: number;
}

export interface GradCase {
  name: string;
  /** The registry op whose gradient rule this case exercises (coverage is checked against it). */
  op: string;
  inputs: Record<string, Spec>;
  params?: Record<string, Spec>;
  /** Forward nodes; the value `y` (default "y") is the one contracted with R. */
  nodes: RawNode[];
  y?: string;
  /** Default: every float32 input and param. */
  wrt?: string[];
  /**
   * Adds sum(w * A_w) for each wrt value to the loss. Needed where tfjs's tape does not connect
   * an input to the output (it is only read for its shape, or the op builds fresh tensors), in
   * which case tf.grads throws instead of returning zeros; A_w is a known, exact term.
   */
  anchor?: boolean;
  /** Callee graph files, relative to GRAPH_DIR. */
  files?: Record<string, RawGraph>;
  /** Finite-difference settings, or false to skip (non-smooth at the chosen point). */
  fd?: FdOptions | false;
  /**
   * false skips the comparison with tfjs autodiff, for ops whose reference kernel tfjs cannot
   * differentiate (host loops); finite differences are then the only reference.
   */
  oracle?: false;
}

export interface GradCheckResult {
  wrt: string[];
  /** Gradients from the compiled graph (autodiff pass), per wrt name. */
  compiled: Record<string, number[]>;
  /** Empty when the case skips the tfjs comparison. */
  reference: Record<string, number[]>;
  fd?: Record<string, number[]>;
  compiledGraph: IRGraph;
}

const R_NAME = 'gc_R';

/**
 * Defaults for the finite-difference comparison. The loss sum(y * R) is accumulated in float64
 * from float32 outputs, so its rounding error is about 6e-8 * sum|y * R| (<= ~1e-5 for these
 * O(1)-sized cases), which central differences divide by 2 * eps = 1e-2: ~1e-3 at worst.
 * Truncation is eps^2 / 6 * |f'''| ~ 4e-6 * |f'''|. atol 3e-3 (scaled by the largest gradient)
 * plus rtol 1e-2 covers both with margin, while a wrong rule (missing factor, sign, axis or
 * broadcast sum) is off by O(0.1..1) and fails.
 */
export const FD_DEFAULTS: Required<FdOptions> = { eps: 5e-3, rtol: 1e-2, atol: 3e-3 };

/** tfjs autodiff and the compiled rules evaluate equivalent float32 formulas: a few ulps apart. */
export const ORACLE_RTOL = 1e-4;
export const ORACLE_ATOL = 1e-5;

function isFloat(s: Spec): boolean {
  return (s.dtype ?? 'float32') === 'float32';
}

/** The forward graph: inputs and params of the case, output y as float32. */
function forwardGraph(c: GradCase): { json: RawGraph; yShape: number[] } {
  const y = c.y ?? 'y';
  const base: RawGraph = {
    graph: 'gradcheck',
    inputs: Object.fromEntries(Object.entries(c.inputs).map(([k, s]) => [k, { dtype: s.dtype ?? 'float32', shape: s.shape }])),
    // Names with a "/" are callee params hoisted by the loader ("<call id>/<param>"): given values only.
    params: Object.fromEntries(
      Object.entries(c.params ?? {})
        .filter(([k]) => !k.includes('/'))
        .map(([k, s]) => [k, { shape: s.shape, init: 'zeros' }]),
    ),
    nodes: c.nodes,
    outputs: { y },
  };
  const g = load(base, c.files);
  const t = valueTypes(g).get(y);
  if (!t) throw new Error(`${c.name}: no value ${y}`);
  const yShape = t.shape.map((d) => {
    if (typeof d !== 'number') throw new Error(`${c.name}: gradient checks need static shapes`);
    return d;
  });
  if (t.dtype === 'float32') return { json: base, yShape };
  const cast: RawNode = { id: 'gc_yf', op: 'cast', in: [y], attrs: { dtype: 'float32' } };
  return { json: { ...base, nodes: [...c.nodes, cast], outputs: { y: 'gc_yf' } }, yShape };
}

function anchorValues(w: string, spec: Spec, k: number): Spec {
  return uniform(spec.shape, -1, 1, 1000 + k + w.length);
}

/**
 * Compiles sum(y * R) (+ anchors) with a grad node through every pass, asserts no grad or call
 * node is left, and compares the gradients with tfjs autodiff on the uncompiled graph and with
 * central finite differences.
 */
export function checkGrad(c: GradCase): GradCheckResult {
  const all: Record<string, Spec> = { ...c.inputs, ...(c.params ?? {}) };
  const wrt = c.wrt ?? Object.keys(all).filter((k) => isFloat(all[k]!));
  if (wrt.length === 0) throw new Error(`${c.name}: nothing to differentiate`);
  const { json: fwd, yShape } = forwardGraph(c);
  const R = uniform(yShape, -1, 1, 7 + c.name.length);
  const anchors = c.anchor ? wrt.map((w, k) => anchorValues(w, all[w]!, k)) : [];

  const lossNodes: RawNode[] = [
    { id: 'gc_yr', op: 'mul', in: [fwd.outputs.y!, R_NAME] },
    { id: c.anchor ? 'gc_main' : 'gc_loss', op: 'sum', in: ['gc_yr'] },
  ];
  const anchorInputs: Record<string, Spec> = {};
  if (c.anchor) {
    const terms: string[] = ['gc_main'];
    wrt.forEach((w, k) => {
      anchorInputs[`gc_A${k}`] = anchors[k]!;
      lossNodes.push({ id: `gc_wa${k}`, op: 'mul', in: [w, `gc_A${k}`] }, { id: `gc_s${k}`, op: 'sum', in: [`gc_wa${k}`] });
      terms.push(`gc_s${k}`);
    });
    terms.slice(1).forEach((t, k) => lossNodes.push({ id: k === terms.length - 2 ? 'gc_loss' : `gc_acc${k}`, op: 'add', in: [k === 0 ? terms[0]! : `gc_acc${k - 1}`, t] }));
  }
  const outNames = wrt.map((_, k) => `d${k}`);
  const full: RawGraph = {
    ...fwd,
    inputs: {
      ...fwd.inputs,
      [R_NAME]: { shape: yShape },
      ...Object.fromEntries(Object.entries(anchorInputs).map(([k, s]) => [k, { shape: s.shape }])),
    },
    nodes: [...fwd.nodes, ...lossNodes, { id: 'gc_g', op: 'grad', in: ['gc_loss'], attrs: { wrt } }],
    outputs: { loss: 'gc_loss', ...Object.fromEntries(wrt.map((w, k) => [outNames[k]!, `gc_g.${w}`])) },
  };
  const g = load(full, c.files);
  const compiled = compile(g);
  expect(compiled.nodes.filter((n) => n.op === 'grad' || n.op === 'call').map((n) => n.id), `${c.name}: structural nodes left`).toEqual([]);

  const inputs = { ...c.inputs, [R_NAME]: R, ...anchorInputs };
  if (c.oracle === false && c.fd === false) throw new Error(`${c.name}: no reference to compare with`);
  const ref = c.oracle === false ? undefined : evaluate(g, inputs, c.params);
  const mine = evaluate(compiled, inputs, c.params);
  const result: GradCheckResult = { wrt, compiled: {}, reference: {}, compiledGraph: compiled };
  wrt.forEach((w, k) => {
    const o = outNames[k]!;
    expect(mine[o]!.shape, `${c.name}: d/d${w} shape`).toEqual(all[w]!.shape);
    result.compiled[w] = mine[o]!.values;
    if (!ref) return;
    result.reference[w] = ref[o]!.values;
    expectClose(mine[o]!.values, ref[o]!.values, ORACLE_RTOL, ORACLE_ATOL, `${c.name}: d/d${w} vs tfjs autodiff`);
  });
  if (ref) expectClose(mine.loss!.values, ref.loss!.values, 1e-6, 1e-6, `${c.name}: loss`);

  if (c.fd !== false) {
    const { eps, rtol, atol } = { ...FD_DEFAULTS, ...(c.fd ?? {}) };
    const fg = load(fwd, c.files);
    // Loss in float64 from float32 outputs, so only y's own rounding enters the differences.
    const loss = (vals: Record<string, Spec>): number => {
      const ins: Record<string, Spec> = {};
      const ps: Record<string, Spec> = {};
      for (const k of Object.keys(c.inputs)) ins[k] = vals[k]!;
      for (const k of Object.keys(c.params ?? {})) ps[k] = vals[k]!;
      const y = evaluate(fg, ins, ps).y!.values;
      let s = 0;
      y.forEach((v, i) => (s += v * R.values[i]!));
      wrt.forEach((w, k) => {
        if (c.anchor) vals[w]!.values.forEach((v, i) => (s += v * anchors[k]!.values[i]!));
      });
      return s;
    };
    result.fd = {};
    for (const w of wrt) {
      const base = all[w]!;
      const fd = base.values.map((_, j) => {
        const at = (delta: number) => {
          const vals = [...base.values];
          vals[j] = Math.fround(vals[j]! + delta);
          return { spec: { ...base, values: vals }, h: vals[j]! - base.values[j]! };
        };
        const p = at(eps);
        const m = at(-eps);
        // The step actually taken after rounding to float32, so it does not bias the quotient.
        return (loss({ ...all, [w]: p.spec }) - loss({ ...all, [w]: m.spec })) / (p.h - m.h);
      });
      result.fd[w] = fd;
      expectClose(result.compiled[w]!, fd, rtol, atol, `${c.name}: d/d${w} vs finite differences`);
    }
  }
  return result;
}
