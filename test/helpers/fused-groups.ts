/**
 * Fused groups as test cases for kernel targets: each fused node of a compiled graph with random
 * inputs and the reference interpreter's results for its exported values (the group's ops run
 * one by one, on the active tfjs backend), plus a generator of random elementwise chains.
 */
import * as tf from '@tensorflow/tfjs';
import '../../compiler/ops/index.ts';
import { roleOf } from '../../compiler/codegen/semantics.ts';
import { lowerFused, type KernelSpec } from '../../compiler/codegen/spec.ts';
import { compileGraph } from '../../compiler/compile.ts';
import { substShape } from '../../compiler/dims.ts';
import type { DType, IRGraph, IRNode, TensorType } from '../../compiler/ir.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';

/** A tiny seeded generator (LCG), so every run tests the same chains. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Each fused node of a compiled graph with the types of its inputs. */
export function fusedNodes(g: IRGraph): { node: IRNode; inputTypes: TensorType[] }[] {
  const types = new Map<string, TensorType>();
  for (const i of g.inputs) types.set(i.name, i.type);
  for (const p of g.params) types.set(p.name, p.type);
  const out: { node: IRNode; inputTypes: TensorType[] }[] = [];
  for (const n of g.nodes) {
    if (n.type) types.set(n.id, n.type);
    if (n.outputTypes) for (const [k, t] of Object.entries(n.outputTypes)) types.set(`${n.id}.${k}`, t);
    if (n.op === 'fused') out.push({ node: n, inputTypes: n.inputs.map((r) => types.get(r)!) });
  }
  return out;
}

function randomTensor(t: TensorType, env: ReadonlyMap<string, number>, next: () => number): tf.Tensor {
  const shape = substShape(t.shape, env) as number[];
  const n = shape.reduce((a, b) => a * b, 1);
  if (t.dtype === 'bool') return tf.tensor(Array.from({ length: n }, () => (next() < 0.5 ? 1 : 0)), shape, 'bool');
  if (t.dtype === 'int32') return tf.tensor(Array.from({ length: n }, () => Math.floor(next() * 4)), shape, 'int32');
  return tf.tensor(Array.from({ length: n }, () => next() * 3 - 1.5), shape, 'float32');
}

/** A fused group at concrete sizes, with inputs and the interpreter's outputs. */
export interface GroupCase {
  /** For messages: the graph, the node and its ops. */
  label: string;
  spec: KernelSpec;
  /** Values of the spec's inputs, in order (bool as 0/1). */
  inputs: { values: number[]; shape: number[]; dtype: DType }[];
  /** The product the spec's matmul computes, when it has one. */
  product?: Float32Array;
  /** The interpreter's value of each spec output, in order. */
  want: ArrayLike<number>[];
}

/**
 * Compiles `g`, and for each fused node draws random inputs (seeded), runs the node's ops in the
 * interpreter (renamed inputs: "fused#0.h" would name a node's output) and lowers the node.
 */
export function groupCases(g: IRGraph, env: ReadonlyMap<string, number>, seed: number, what: string): GroupCase[] {
  const { graph } = compileGraph(g);
  return fusedNodes(graph).map(({ node, inputTypes }) => {
    const next = rng(seed++);
    const names = new Map([...new Set(node.inputs)].map((r, k) => [r, `in_${k}`]));
    const tensors: TensorMap = {};
    node.inputs.forEach((r, k) => (tensors[names.get(r)!] ??= randomTensor(inputTypes[k]!, env, next)));
    const exported = Object.keys(node.outputTypes!);
    const product = node.body!.find((b) => roleOf(b.op) === 'matmul')?.id;
    const sub: IRGraph = {
      name: `${what}:${node.id}`,
      file: g.file,
      inputs: [...names].map(([r, name]) => ({ name, type: inputTypes[node.inputs.indexOf(r)]! })),
      params: [],
      nodes: node.body!.map((b) => ({ ...b, inputs: b.inputs.map((r) => names.get(r) ?? r) })),
      outputs: Object.fromEntries([...exported, ...(product ? [product] : [])].map((id) => [id, id])),
    };
    const ref = interpret(sub, tensors, {});
    const { spec, bindings } = lowerFused(node, env, inputTypes);
    const inputs = spec.inputs.map((_inp, k) => {
      const t = tensors[names.get(node.inputs[bindings.findIndex((b) => b.kind === 'tensor' && b.index === k)]!)!]!;
      return { values: Array.from(t.dataSync()), shape: t.shape, dtype: t.dtype as DType };
    });
    const c: GroupCase = {
      label: `${what} ${node.id} (${node.body!.map((b) => b.op).join(' ')})`,
      spec,
      inputs,
      product: product ? new Float32Array(ref[product]!.dataSync()) : undefined,
      want: exported.map((id) => ref[id]!.dataSync().slice()),
    };
    tf.dispose([...Object.values(tensors), ...Object.values(ref)]);
    return c;
  });
}

/** The worst |gpu - ref| / (1 + |ref|) with where it is (NaNs and infinities must agree; integers exactly). */
export function mismatch(got: ArrayLike<number>, want: ArrayLike<number>, dtype: DType): { err: number; at: string } {
  if (got.length !== want.length) return { err: Infinity, at: `length ${got.length}, want ${want.length}` };
  let worst = { err: 0, at: '' };
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    const bad = dtype !== 'float32' ? g !== w : Number.isNaN(w) || !Number.isFinite(w) ? !Object.is(g, w) : false;
    const err = bad ? Infinity : dtype === 'float32' ? Math.abs(g - w) / (1 + Math.abs(w)) : 0;
    if (err > worst.err) worst = { err, at: `[${i}] = ${g}, want ${w}` };
  }
  return worst;
}



interface Val {
  ref: string;
  shape: (string | number)[];
  dtype: DType;
  /** Computed with correctly rounded f32 operations only (add, mul, ...) from inputs: safe to floor or compare. */
  exact: boolean;
}
const bshape = (a: Val['shape'], b: Val['shape']): Val['shape'] => {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_v, i) => {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    return x === 1 ? y : x;
  });
};

/** A random graph of elementwise ops with broadcasting over [A, B], [B], [A, 1], [] inputs, maybe ending in a reduction. */
export function randomChain(seed: number): Record<string, unknown> {
  const next = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const vals: Val[] = [
    { ref: 'x', shape: ['A', 'B'], dtype: 'float32', exact: true },
    { ref: 'y', shape: ['B'], dtype: 'float32', exact: true },
    { ref: 'z', shape: ['A', 1], dtype: 'float32', exact: true },
    { ref: 's', shape: [], dtype: 'float32', exact: true },
    { ref: 'k', shape: ['A', 'B'], dtype: 'int32', exact: true },
    { ref: 'm', shape: ['B'], dtype: 'bool', exact: true },
  ];
  const nodes: Record<string, unknown>[] = [];
  let id = 0;
  const add = (op: string, ins: (string | number)[], shape: Val['shape'], dtype: DType, exact: boolean, attrs?: Record<string, unknown>): Val => {
    const ref = `n${id++}`;
    nodes.push(attrs ? { id: ref, op, in: ins, attrs } : { id: ref, op, in: ins });
    const v = { ref, shape, dtype, exact };
    vals.push(v);
    return v;
  };
  const of = (dt: DType, exact = false) => vals.filter((v) => v.dtype === dt && (!exact || v.exact));
  const steps = 3 + Math.floor(next() * 6);
  for (let i = 0; i < steps; i++) {
    const a = pick(of('float32'));
    const b = pick(of('float32'));
    switch (Math.floor(next() * 9)) {
      case 0:
        add(pick(['tanh', 'sigmoid', 'sin', 'cos', 'softplus', 'exp', 'square']), [a.ref], a.shape, 'float32', false);
        break;
      case 1:
        add(pick(['neg', 'abs', 'relu']), [a.ref], a.shape, 'float32', a.exact);
        break;
      case 2:
        add(pick(['add', 'sub', 'mul', 'maximum', 'minimum']), [a.ref, b.ref], bshape(a.shape, b.shape), 'float32', a.exact && b.exact);
        break;
      case 3: {
        // Ops with a restricted domain, on a safe operand: log, sqrt, rsqrt, log1p of 0.5 + |b|; division and pow by it.
        const d = add('add', [0.5, add('abs', [b.ref], b.shape, 'float32', b.exact).ref], b.shape, 'float32', b.exact);
        const op = pick(['log', 'sqrt', 'rsqrt', 'log1p', 'reciprocal', 'div', 'pow', 'pow_int']);
        if (op === 'div') add('div', [a.ref, d.ref], bshape(a.shape, d.shape), 'float32', false);
        else if (op === 'pow') add('pow', [d.ref, add('clip', [a.ref], a.shape, 'float32', a.exact, { min: -2, max: 2 }).ref], bshape(a.shape, d.shape), 'float32', false);
        else if (op === 'pow_int') add('pow', [a.ref, 3], a.shape, 'float32', false);
        else add(op, [d.ref], d.shape, 'float32', false);
        break;
      }
      case 4: {
        // Comparisons and logic on exact values, then a select.
        const ea = pick(of('float32', true));
        const eb = pick(of('float32', true));
        const c = add(pick(['greater', 'less_equal', 'equal', 'not_equal']), [ea.ref, eb.ref], bshape(ea.shape, eb.shape), 'bool', true);
        const bools = of('bool');
        const m = pick(bools);
        const l = next() < 0.5 ? add(pick(['logical_and', 'logical_or']), [c.ref, m.ref], bshape(c.shape, m.shape), 'bool', true) : add('logical_not', [c.ref], c.shape, 'bool', true);
        add('where', [l.ref, a.ref, b.ref], bshape(l.shape, bshape(a.shape, b.shape)), 'float32', a.exact && b.exact);
        break;
      }
      case 5: {
        // Discontinuous ops on exact values: floor, ceil, sign, mod by an exact positive divisor.
        const e = pick(of('float32', true));
        const op = pick(['floor', 'ceil', 'sign', 'mod']);
        if (op === 'mod') add('mod', [e.ref, 0.75], e.shape, 'float32', false);
        else add(op, [e.ref], e.shape, 'float32', true);
        break;
      }
      case 6: {
        // Through int32: trunc(4 * e), integer arithmetic with k, back to float.
        const e = pick(of('float32', true));
        const m = add('mul', [e.ref, 4], e.shape, 'float32', true);
        const n = add('cast', [m.ref], m.shape, 'int32', true, { dtype: 'int32' });
        const k = pick(of('int32'));
        const j = add(pick(['add', 'sub', 'mul', 'maximum', 'minimum']), [n.ref, k.ref], bshape(n.shape, k.shape), 'int32', true);
        const r = next() < 0.5 ? add(pick(['neg', 'abs', 'square', 'relu', 'sign']), [j.ref], j.shape, 'int32', true) : j;
        add('cast', [r.ref], r.shape, 'float32', true, { dtype: 'float32' });
        break;
      }
      case 7:
        add('clip', [a.ref], a.shape, 'float32', a.exact, { min: -1, max: 1.5 });
        break;
      case 8:
        add('cast', [add('greater', [a.ref, 0], a.shape, 'bool', a.exact).ref], a.shape, 'float32', a.exact, { dtype: 'float32' });
        break;
    }
  }
  const made = vals.slice(6).filter((v) => v.dtype !== 'bool' || next() < 0.3);
  const last = made[made.length - 1]!;
  const outs: Val[] = [last, pick(made)];
  if (next() < 0.5 && last.dtype !== 'bool') {
    // A reduction of the last value over one axis or all.
    const op = pick(last.dtype === 'float32' ? ['sum', 'mean', 'max', 'min'] : ['sum', 'max', 'min']);
    const r = last.shape.length;
    const axes = r === 0 || next() < 0.3 ? undefined : [Math.floor(next() * r)];
    const keepdims = next() < 0.5;
    const shape = last.shape.flatMap((d, i) => (!axes || axes.includes(i) ? (keepdims ? [1] : []) : [d]));
    outs.push(add(op, [last.ref], shape, last.dtype, false, axes ? { axes, keepdims } : { keepdims }));
  }
  return {
    graph: `chain-${seed}`,
    inputs: {
      x: { shape: ['A', 'B'] },
      y: { shape: ['B'] },
      z: { shape: ['A', 1] },
      s: { shape: [] },
      k: { dtype: 'int32', shape: ['A', 'B'] },
      m: { dtype: 'bool', shape: ['B'] },
    },
    nodes,
    outputs: Object.fromEntries([...new Set(outs.map((v) => v.ref))].map((r, i) => [`o${i}`, r])),
  };
}
