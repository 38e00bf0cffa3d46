/**
 * The reference interpreter: one tfjs op per node, no optimisation, `call` evaluated
 * recursively and `grad` by tfjs's own autodiff. It is the oracle every compiled program is
 * tested against, so it stays simple on purpose.
 */
import * as tf from '@tensorflow/tfjs';
import { isStatic, MAX_ELEMENTS, showShape, substShape, symbolsOf, type Dim } from '../compiler/dims.ts';
import { LoomError } from '../compiler/errors.ts';
import { showType, type DType, type IRGraph, type IRNode, type TensorType } from '../compiler/ir.ts';
import { getOp } from '../compiler/ops/index.ts';
import { initialValues } from './init.ts';

export type TensorMap = Record<string, tf.Tensor>;

/** Creates the graph's params from a seed (same seed, same values, on every backend). */
export function initParams(g: IRGraph, seed: number): TensorMap {
  const out: TensorMap = {};
  for (const p of g.params) out[p.name] = tf.tensor(initialValues(p, seed), p.type.shape as number[], 'float32');
  return out;
}

/** Binds symbolic dims from the actual inputs, checking dtypes and shapes. */
export function bindInputs(g: IRGraph, inputs: Record<string, { dtype: string; shape: number[] }>): Map<string, number> {
  const env = new Map<string, number>();
  for (const i of g.inputs) {
    const x = inputs[i.name];
    const err = (message: string, found: string) =>
      new LoomError({ code: 'E_INPUT', message, file: i.source?.file, pointer: i.source?.pointer, expected: showType(i.type), found });
    if (!x) throw err(`missing input "${i.name}"`, 'nothing');
    if (x.dtype !== i.type.dtype) throw err(`input "${i.name}" has the wrong dtype`, `${x.dtype}[${x.shape.join(', ')}]`);
    if (x.shape.length !== i.type.shape.length) throw err(`input "${i.name}" has the wrong rank`, `${x.dtype}[${x.shape.join(', ')}]`);
    i.type.shape.forEach((d, k) => {
      const actual = x.shape[k]!;
      if (isStatic(d)) {
        if (d !== actual) throw err(`input "${i.name}" has the wrong size on axis ${k}`, `${x.dtype}[${x.shape.join(', ')}]`);
        return;
      }
      const syms = symbolsOf(d);
      if (syms.length === 1 && d === syms[0] && !env.has(d)) env.set(d, actual);
    });
    const resolved = substShape(i.type.shape, env);
    resolved.forEach((d, k) => {
      if (d !== x.shape[k])
        throw err(`input "${i.name}" disagrees with the other inputs on axis ${k} (${i.type.shape[k]} = ${d})`, `${x.dtype}[${x.shape.join(', ')}]`);
    });
  }
  for (const k of Object.keys(inputs))
    if (!g.inputs.some((i) => i.name === k))
      throw new LoomError({ code: 'E_INPUT', message: `unexpected input "${k}"`, file: g.file, expected: g.inputs.map((i) => i.name).join(', ') || 'no inputs', found: k });
  return env;
}

export function concreteType(t: TensorType, env: ReadonlyMap<string, number>, n?: IRNode): { dtype: DType; shape: number[] } {
  const shape = substShape(t.shape, env);
  if (!shape.every(isStatic)) throw new Error(`internal: unbound dims in ${showShape(t.shape)}`);
  const size = (shape as number[]).reduce((a, b) => a * b, 1);
  if (size > MAX_ELEMENTS)
    throw new LoomError({
      code: 'E_SIZE',
      message: `with these inputs, the result ${showShape(shape)} would have ${size.toExponential(2)} elements`,
      file: n?.source?.file,
      pointer: n?.source?.pointer,
      node: n?.id,
      expected: `at most ${MAX_ELEMENTS} elements`,
    });
  return { dtype: t.dtype, shape: shape as number[] };
}

/**
 * Evaluates the graph. Returns new tensors owned by the caller; nothing else survives.
 * `params` must hold every param of the graph (see initParams).
 */
export function interpret(g: IRGraph, inputs: TensorMap, params: TensorMap): TensorMap {
  const env = bindInputs(g, inputs);
  for (const p of g.params)
    if (!params[p.name]) throw new LoomError({ code: 'E_INPUT', message: `missing param "${p.name}"`, file: p.source?.file, pointer: p.source?.pointer });
  return tf.tidy(() => {
    const values = evaluate(g, env, { ...inputs, ...params }, undefined);
    const out: TensorMap = {};
    // Clone so that an output naming an input or param is still a tensor the caller owns.
    for (const [name, ref] of Object.entries(g.outputs)) out[name] = tf.clone(values(ref));
    return out;
  });
}

/**
 * Evaluates nodes lazily (only what is needed), memoised. `overrides` replaces values, which
 * is how `grad` re-runs the forward pass as a function of the differentiated values.
 */
function evaluate(g: IRGraph, env: ReadonlyMap<string, number>, leaves: TensorMap, overrides: TensorMap | undefined): (ref: string) => tf.Tensor {
  const nodes = new Map(g.nodes.map((n) => [n.id, n]));
  const memo = new Map<string, tf.Tensor | TensorMap>();
  const get = (ref: string): tf.Tensor => {
    if (overrides?.[ref]) return overrides[ref]!;
    const dot = ref.indexOf('.');
    if (dot >= 0) {
      const owner = ref.slice(0, dot);
      const outs = run(owner) as TensorMap;
      return outs[ref.slice(dot + 1)]!;
    }
    if (leaves[ref]) return leaves[ref]!;
    return run(ref) as tf.Tensor;
  };
  /** The node a reference needs evaluated first, if any. */
  const pending = (ref: string): string | undefined => {
    if (overrides?.[ref]) return undefined;
    const dot = ref.indexOf('.');
    const owner = dot >= 0 ? ref.slice(0, dot) : ref;
    if (dot < 0 && leaves[ref]) return undefined;
    return memo.has(owner) ? undefined : owner;
  };
  // Producers are evaluated before their consumers with an explicit stack: a chain of 100k nodes
  // would exhaust the call stack if each node evaluated its inputs recursively.
  const run = (id: string): tf.Tensor | TensorMap => {
    const todo = [id];
    while (todo.length > 0) {
      const top = todo[todo.length - 1]!;
      if (memo.has(top)) {
        todo.pop();
        continue;
      }
      const before = todo.length;
      const n = nodes.get(top);
      // grad evaluates its input itself, as a function of the values it differentiates.
      for (const r of n && n.op !== 'grad' ? n.inputs : []) {
        const p = pending(r);
        if (p !== undefined) todo.push(p);
      }
      if (todo.length === before) {
        todo.pop();
        evalNode(top);
      }
    }
    return memo.get(id)!;
  };
  const evalNode = (id: string): void => {
    const n = nodes.get(id);
    if (!n) throw new Error(`internal: no value ${id}`);
    let result: tf.Tensor | TensorMap;
    if (n.op === 'call') result = runCall(n, n.inputs.map(get));
    else if (n.op === 'scan') result = runScan(n, n.inputs.map(get), env);
    else if (n.op === 'grad') result = runGrad(g, n, env, leaves, overrides);
    else {
      const def = getOp(n.op)!;
      const outType = concreteType(n.type!, env, n);
      result = def.kernel(tf, n.inputs.map(get), n.attrs, { outType });
      if (result.shape.join(',') !== outType.shape.join(',') || result.dtype !== outType.dtype)
        throw new Error(`internal: kernel ${n.op} returned ${result.dtype}[${result.shape}] for ${showType(outType)} at node ${n.id}`);
    }
    memo.set(id, result);
  };
  return get;
}

function runCall(n: IRNode, args: tf.Tensor[]): TensorMap {
  const callee = n.callee!;
  const leaves: TensorMap = {};
  callee.inputs.forEach((ci, k) => (leaves[ci.name] = args[k]!));
  callee.params.forEach((p, k) => (leaves[p.name] = args[callee.inputs.length + k]!));
  const env = bindInputs(callee, Object.fromEntries(callee.inputs.map((ci) => [ci.name, leaves[ci.name]!])));
  const get = evaluate(callee, env, leaves, undefined);
  const out: TensorMap = {};
  for (const [name, ref] of Object.entries(callee.outputs)) out[name] = get(ref);
  return out;
}

/** The steps of a scan: the (possibly reversed) step order and the roles of the body's inputs and outputs. */
export function scanLayout(n: IRNode): { xs: Set<string>; carries: string[]; ys: string[]; reverse: boolean } {
  const body = n.callee!;
  const xs = new Set((n.attrs.xs as string[] | undefined) ?? []);
  const carries = body.inputs.filter((i) => Object.hasOwn(body.outputs, i.name)).map((i) => i.name);
  const ys = Object.keys(body.outputs).filter((o) => !carries.includes(o));
  return { xs, carries, ys, reverse: n.attrs.reverse === true };
}

/** Runs a scan step by step: each step evaluates the body on the carries, one slice of each xs and the invariants. */
function runScan(n: IRNode, args: tf.Tensor[], callerEnv: ReadonlyMap<string, number>): TensorMap {
  const body = n.callee!;
  const { xs, carries, ys, reverse } = scanLayout(n);
  const fixed: TensorMap = {};
  body.inputs.forEach((bi, k) => (fixed[bi.name] = args[k]!));
  body.params.forEach((p, k) => (fixed[p.name] = args[body.inputs.length + k]!));
  const T = xs.size > 0 ? fixed[[...xs][0]!]!.shape[0]! : scanLength(n, callerEnv);
  let carry: TensorMap = Object.fromEntries(carries.map((c) => [c, fixed[c]!]));
  const stepsOut: TensorMap[] = new Array(T);
  for (let s = 0; s < T; s++) {
    const t = reverse ? T - 1 - s : s;
    const leaves: TensorMap = { ...fixed, ...carry };
    for (const x of xs) leaves[x] = tf.gather(fixed[x]!, t);
    const env = bindInputs(body, Object.fromEntries(body.inputs.map((bi) => [bi.name, leaves[bi.name]!])));
    const get = evaluate(body, env, leaves, undefined);
    const out: TensorMap = {};
    for (const [name, ref] of Object.entries(body.outputs)) out[name] = get(ref);
    carry = Object.fromEntries(carries.map((c) => [c, out[c]!]));
    stepsOut[t] = out;
  }
  const result: TensorMap = { ...carry };
  for (const y of ys) {
    result[y] = T > 0 ? tf.stack(stepsOut.map((o) => o[y]!)) : tf.zeros(concreteType(n.outputTypes![y]!, callerEnv, n).shape, n.outputTypes![y]!.dtype);
  }
  return result;
}

/** A scan's length when it has no xs: a number, or a dim the caller's inputs bind. */
export function scanLength(n: IRNode, env: ReadonlyMap<string, number>): number {
  const len = substShape([n.attrs.length as Dim], env)[0]!;
  if (!isStatic(len)) throw new Error(`internal: scan ${n.id}: unbound length ${len}`);
  return len;
}

function runGrad(g: IRGraph, n: IRNode, env: ReadonlyMap<string, number>, leaves: TensorMap, overrides: TensorMap | undefined): TensorMap {
  const wrt = n.attrs.wrt as string[];
  const base = wrt.map((w) => overrides?.[w] ?? leaves[w]!);
  const f = (...xs: tf.Tensor[]): tf.Scalar => {
    const o: TensorMap = { ...overrides };
    wrt.forEach((w, k) => (o[w] = xs[k]!));
    return evaluate(g, env, leaves, o)(n.inputs[0]!) as tf.Scalar;
  };
  // Params the scalar does not depend on get zero gradients (tfjs would throw).
  const connected = wrt.map((w) => dependsOn(g, n.inputs[0]!, w));
  const idx = connected.flatMap((c, k) => (c ? [k] : []));
  const gradsOf = (ks: number[]): tf.Tensor[] =>
    tf.grads((...xs: tf.Tensor[]) => f(...wrt.map((_, k) => (ks.includes(k) ? xs[ks.indexOf(k)]! : base[k]!))))(ks.map((k) => base[k]!));
  const out: TensorMap = {};
  let grads: (tf.Tensor | undefined)[];
  try {
    grads = idx.length ? gradsOf(idx) : [];
  } catch (e) {
    // A value read only for its shape (a `like` input) is connected in the graph but not on
    // tfjs's tape, and tfjs refuses the whole call: differentiate one value at a time instead.
    if (!/Cannot compute gradient/.test((e as Error).message)) throw e;
    grads = idx.map((k) => {
      try {
        return gradsOf([k])[0];
      } catch (e2) {
        if (!/Cannot compute gradient/.test((e2 as Error).message)) throw e2;
        return undefined;
      }
    });
  }
  wrt.forEach((w, k) => (out[w] = (connected[k] ? grads[idx.indexOf(k)] : undefined) ?? tf.zerosLike(base[k]!)));
  return out;
}

/** Whether value `ref` depends on `leaf` (through nodes of g). */
export function dependsOn(g: IRGraph, ref: string, leaf: string): boolean {
  const nodes = new Map(g.nodes.map((n) => [n.id, n]));
  const seen = new Set<string>();
  const stack = [ref.split('.')[0]!];
  while (stack.length) {
    const v = stack.pop()!;
    if (v === leaf) return true;
    if (seen.has(v)) continue;
    seen.add(v);
    const n = nodes.get(v);
    if (!n) continue;
    if (n.op === 'stop_gradient') continue;
    if (n.op === 'grad') continue; // gradients of gradients are not supported by the interpreter
    for (const i of n.inputs) stack.push(i.split('.')[0]!);
  }
  return false;
}
