/** Shape and dtype inference over an IRGraph, with symbolic dims. */
import { canonDim, dimEq, isStatic, MAX_ELEMENTS, product, showShape, substDimSym, symbolsOf, type Dim } from '../dims.ts';
import { LoomError, joinPointer, type ErrorCode } from '../errors.ts';
import { showType, type IRGraph, type IRNode, type TensorType } from '../ir.ts';
import { getOp } from '../ops/index.ts';
import { makeShapeCtx } from './shape-ctx.ts';

/** obj[k] = v as an own property even for k = "__proto__" (an assignment would set the prototype). */
export function setOwn<T>(obj: Record<string, T>, k: string, v: T): void {
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Type of a value reference ("x", "node", "node.output") given the types known so far. */
export function refType(types: ReadonlyMap<string, TensorType>, nodes: ReadonlyMap<string, IRNode>, ref: string): TensorType {
  const dot = ref.indexOf('.');
  if (dot >= 0) {
    const n = nodes.get(ref.slice(0, dot));
    const out = ref.slice(dot + 1);
    const t = n?.outputTypes && Object.hasOwn(n.outputTypes, out) ? n.outputTypes[out] : undefined;
    if (t) return t;
  }
  const t = types.get(ref);
  if (!t) throw new Error(`internal: no type for ${ref}`);
  return t;
}

/** Returns a copy of `g` with every node's type inferred; throws a LoomError on the first problem. */
export function inferGraph(g: IRGraph): IRGraph {
  const types = new Map<string, TensorType>();
  const nodesById = new Map<string, IRNode>();
  const bound = new Set<string>();
  for (const i of g.inputs) {
    types.set(i.name, i.type);
    for (const d of i.type.shape) for (const s of symbolsOf(d)) bound.add(s);
  }
  for (const p of g.params) types.set(p.name, p.type);

  const nodes = g.nodes.map((orig) => {
    try {
      return inferNode(orig);
    } catch (e) {
      // Errors raised below the shape context (compiler/dims) carry no location of their own.
      throw e instanceof LoomError ? e.at({ file: orig.source?.file, pointer: orig.source?.pointer, node: orig.id }) : e;
    }
  });
  function inferNode(orig: IRNode): IRNode {
    const n: IRNode = { ...orig };
    const loc = { node: n.id, source: n.source, op: n.op };
    const ctx = makeShapeCtx(loc, bound);
    const inTypes = n.inputs.map((r) => refType(types, nodesById, r));
    if (n.op === 'call') inferCall(n, inTypes);
    else if (n.op === 'scan') inferScan(n, inTypes, bound);
    else if (n.op === 'grad') {
      const of = inTypes[0]!;
      if (of.dtype !== 'float32' || of.shape.length !== 0)
        ctx.fail('E_SHAPE', 'the value to differentiate must be a float32 scalar: reduce it first (e.g. with mean or sum)', 'float32[]', showType(of));
      n.outputTypes = {};
      for (const w of n.attrs.wrt as string[]) {
        const wt = types.get(w)!;
        if (wt.dtype !== 'float32') ctx.fail('E_DTYPE', `cannot differentiate with respect to "${w}"`, 'a float32 param or input', showType(wt));
        setOwn(n.outputTypes, w, wt);
      }
    } else {
      const def = getOp(n.op)!;
      try {
        n.type = def.shape(inTypes, n.attrs, ctx);
      } catch (e) {
        throw explainShapeError(e, n, bound);
      }
      n.type = { dtype: n.type.dtype, shape: n.type.shape.map(canonDim) };
      checkNodeType(n, n.type, bound);
      types.set(n.id, n.type);
    }
    nodesById.set(n.id, n);
    return n;
  }
  // Every output must name a typed value (refType throws otherwise).
  for (const ref of Object.values(g.outputs)) refType(types, nodesById, ref);
  return { ...g, nodes };
}

/**
 * Element count of a shape with every symbol at 1: the smallest size it can have at run time
 * (a zero-sized batch aside), so ["B", 1e6, 1e6] is rejected as surely as [1e6, 1e6].
 */
export function minElements(shape: readonly Dim[]): number {
  const n = canonDim(product([...shape]));
  if (isStatic(n)) return n;
  const m = /^(\d+)\*/.exec(n);
  return m ? Number(m[1]) : 1;
}

/** Symbols named by dims written in a node's attributes (arrays of sizes such as `shape`) that no input binds. */
function unboundAttrSymbols(n: IRNode, bound: ReadonlySet<string>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(n.attrs))
    if (Array.isArray(v))
      for (const d of v)
        if (typeof d === 'string' && d.split('*').every((p) => /^\s*(\d+|[A-Za-z_][A-Za-z0-9_]*)\s*$/.test(p)))
          for (const s of symbolsOf(d.replace(/\s+/g, ''))) if (!bound.has(s) && !out.some(([, x]) => x === s)) out.push([k, s]);
  return out;
}

/**
 * Makes an op's shape error actionable where the op cannot know why: a size mismatch caused by an
 * attribute naming an unbound symbol is really an unbound dim, and a dtype clash with a number
 * literal (always a float32 scalar) needs a typed const rather than a cast.
 */
function explainShapeError(e: unknown, n: IRNode, bound: ReadonlySet<string>): unknown {
  if (!(e instanceof LoomError)) return e;
  if (e.info.code === 'E_SHAPE') {
    const unbound = unboundAttrSymbols(n, bound);
    if (unbound.length > 0) {
      const [attr, sym] = unbound[0]!;
      return new LoomError({
        code: 'E_UNBOUND_DIM',
        message: `${n.op}: attribute "${attr}" uses the dim "${sym}", which no graph input binds`,
        file: e.info.file,
        pointer: n.source ? joinPointer(n.source.pointer, 'attrs', attr) : e.info.pointer,
        node: n.id,
        expected: bound.size ? `dims bound by the inputs: ${[...bound].join(', ')}` : 'static sizes (no input has a symbolic dim)',
        found: sym,
        hint: `declare an input whose shape uses "${sym}", or use a static size (the op reported: ${e.info.message})`,
      });
    }
  }
  if (e.info.code === 'E_DTYPE' && e.info.hint === undefined && n.inputs.some((r) => r.startsWith(`${n.id}:`)))
    return new LoomError({
      ...e.info,
      hint: 'a number in "in" is a float32 scalar; for another dtype use a const node, e.g. {"id": "k", "op": "const", "attrs": {"value": 3, "dtype": "int32"}}',
    });
  return e;
}

function checkNodeType(n: IRNode, t: TensorType, bound: ReadonlySet<string>): void {
  for (const d of t.shape)
    for (const s of symbolsOf(d))
      if (!bound.has(s))
        throw new LoomError({
          code: 'E_UNBOUND_DIM',
          message: `symbolic dim "${s}" in the result ${showShape(t.shape)} is not bound by any graph input`,
          file: n.source?.file,
          pointer: n.source?.pointer,
          node: n.id,
          hint: `declare an input whose shape uses "${s}", or use a static size`,
        });
  const size = minElements(t.shape);
  if (size > MAX_ELEMENTS)
    throw new LoomError({
      code: 'E_SIZE',
      message: `result of shape ${showShape(t.shape)} has ${isStatic(product(t.shape)) ? '' : 'at least '}${size.toExponential(2)} elements, more than any backend can allocate`,
      file: n.source?.file,
      pointer: n.source?.pointer,
      node: n.id,
      expected: `at most ${MAX_ELEMENTS} elements`,
      found: String(size),
    });
}

/** Instantiates the callee's signature at the caller's argument types (binding its symbolic dims). */
function inferCall(n: IRNode, argTypes: TensorType[]): void {
  const callee = n.callee!;
  const env = new Map<string, Dim>();
  // Errors point at the binding itself (/in/<name> or /params/<name>), not just at the node.
  let pointer = n.source?.pointer;
  let literal = false;
  const fail = (code: ErrorCode, message: string, expected?: string, found?: string): never => {
    throw new LoomError({
      code,
      message: `call: ${message}`,
      file: n.source?.file,
      pointer,
      node: n.id,
      expected,
      found,
      hint: literal ? 'a number bound to a call input is a float32 scalar' : undefined,
    });
  };
  callee.inputs.forEach((ci, k) => {
    const at = argTypes[k]!;
    const what = `argument "${ci.name}" of ${callee.name}`;
    if (n.source) pointer = joinPointer(n.source.pointer, 'in', ci.name);
    literal = n.inputs[k]!.startsWith(`${n.id}:`);
    if (at.dtype !== ci.type.dtype) fail('E_DTYPE', `${what} has the wrong dtype`, showType(ci.type), showType(at));
    if (at.shape.length !== ci.type.shape.length) fail('E_SHAPE', `${what} has the wrong rank`, showType(ci.type), showType(at));
    ci.type.shape.forEach((d, i) => {
      const syms = symbolsOf(d);
      if (syms.length === 1 && d === syms[0] && !env.has(d as string)) env.set(d as string, at.shape[i]!);
      else if (!dimEq(substDimSym(d, env), at.shape[i]!))
        fail('E_SHAPE', `${what} has the wrong shape (axis ${i})`, showShape(ci.type.shape.map((x) => substDimSym(x, env))), showShape(at.shape));
    });
  });
  // Params are passed after the inputs; their shapes are static and must match exactly.
  literal = false;
  callee.params.forEach((p, k) => {
    const at = argTypes[callee.inputs.length + k]!;
    if (n.source) pointer = joinPointer(n.source.pointer, 'params', p.name);
    if (at.shape.length !== p.type.shape.length || !at.shape.every((d, i) => dimEq(d, p.type.shape[i]!)))
      fail('E_SHAPE', `param "${p.name}" of ${callee.name} is bound to a value of another shape`, showType(p.type), showType(at));
  });
  n.outputTypes = {};
  const calleeTypes = new Map<string, TensorType>();
  for (const i of callee.inputs) calleeTypes.set(i.name, i.type);
  for (const p of callee.params) calleeTypes.set(p.name, p.type);
  for (const cn of callee.nodes) if (cn.type) calleeTypes.set(cn.id, cn.type);
  const calleeNodes = new Map(callee.nodes.map((x) => [x.id, x]));
  for (const [o, ref] of Object.entries(callee.outputs)) {
    const t = refType(calleeTypes, calleeNodes, ref);
    setOwn(n.outputTypes, o, { dtype: t.dtype, shape: t.shape.map((d) => canonDim(substDimSym(d, env))) });
  }
}

/**
 * A scan's signature: carries (body inputs the body also outputs) keep their type from step to
 * step, xs lose their leading (time) axis in the body, ys gain one. Body symbols are bound from the
 * caller's arguments; every disagreement names the binding and shows expected vs found.
 */
function inferScan(n: IRNode, argTypes: TensorType[], bound: ReadonlySet<string>): void {
  const body = n.callee!;
  const xs = new Set((n.attrs.xs as string[] | undefined) ?? []);
  const env = new Map<string, Dim>();
  let pointer = n.source?.pointer;
  const fail = (code: ErrorCode, message: string, expected?: string, found?: string, hint?: string): never => {
    throw new LoomError({ code, message: `scan: ${message}`, file: n.source?.file, pointer, node: n.id, expected, found, hint });
  };
  const at = (...k: (string | number)[]) => (n.source ? joinPointer(n.source.pointer, ...k) : undefined);
  let length: Dim | undefined;
  if (n.attrs.length !== undefined) {
    length = canonDim(n.attrs.length as Dim);
    for (const s of symbolsOf(length))
      if (!bound.has(s)) {
        pointer = at('attrs', 'length');
        fail('E_UNBOUND_DIM', `"length" is the dim "${s}", which no input of this graph binds`, bound.size ? `one of ${[...bound].join(', ')}, or a number` : 'a number', s);
      }
  }
  const bindShape = (want: readonly Dim[], got: readonly Dim[], what: string, full: TensorType, wantFull: string) => {
    want.forEach((d, i) => {
      const syms = symbolsOf(d);
      if (syms.length === 1 && d === syms[0] && !env.has(d as string)) env.set(d as string, got[i]!);
      else if (!dimEq(substDimSym(d, env), got[i]!)) fail('E_SHAPE', `${what} has the wrong shape`, wantFull, showType(full));
    });
  };
  body.inputs.forEach((bi, k) => {
    const t = argTypes[k]!;
    pointer = at('in', bi.name);
    const sliced = xs.has(bi.name);
    const what = `${sliced ? 'xs' : Object.hasOwn(body.outputs, bi.name) ? 'carry' : 'input'} "${bi.name}" of the body ${body.name}`;
    const wantText = () => (sliced ? `${showType({ dtype: bi.type.dtype, shape: [length ?? 'T', ...bi.type.shape.map((d) => substDimSym(d, env))] })} (one step: ${showType(bi.type)})` : showType({ dtype: bi.type.dtype, shape: bi.type.shape.map((d) => substDimSym(d, env)) }));
    if (t.dtype !== bi.type.dtype) fail('E_DTYPE', `${what} has the wrong dtype`, wantText(), showType(t));
    if (t.shape.length !== bi.type.shape.length + (sliced ? 1 : 0))
      fail('E_SHAPE', `${what} has the wrong rank${sliced ? ' (xs carry a leading time axis)' : ''}`, wantText(), showType(t));
    if (sliced) {
      const lead = t.shape[0]!;
      if (length === undefined) length = lead;
      else if (!dimEq(length, lead)) fail('E_SHAPE', `xs "${bi.name}" has ${lead} steps on its leading axis, but the scan has ${length}`, `[${length}, ...]`, showType(t));
      bindShape(bi.type.shape, t.shape.slice(1), what, t, wantText());
    } else bindShape(bi.type.shape, t.shape, what, t, wantText());
  });
  body.params.forEach((p, k) => {
    const t = argTypes[body.inputs.length + k]!;
    pointer = at('params', p.name);
    if (t.shape.length !== p.type.shape.length || !t.shape.every((d, i) => dimEq(d, p.type.shape[i]!)))
      fail('E_SHAPE', `param "${p.name}" of the body ${body.name} is bound to a value of another shape`, showType(p.type), showType(t));
  });
  const T = length!;
  const bodyTypes = new Map<string, TensorType>();
  for (const i of body.inputs) bodyTypes.set(i.name, i.type);
  for (const p of body.params) bodyTypes.set(p.name, p.type);
  for (const bn of body.nodes) if (bn.type) bodyTypes.set(bn.id, bn.type);
  const bodyNodes = new Map(body.nodes.map((x) => [x.id, x]));
  n.outputTypes = {};
  for (const [o, ref] of Object.entries(body.outputs)) {
    const raw = refType(bodyTypes, bodyNodes, ref);
    const t: TensorType = { dtype: raw.dtype, shape: raw.shape.map((d) => canonDim(substDimSym(d, env))) };
    const k = body.inputs.findIndex((i) => i.name === o);
    if (k >= 0) {
      // A carry: what the body returns must be what it takes, or step t+1 would see another type.
      const init = argTypes[k]!;
      pointer = at('in', o);
      if (t.dtype !== init.dtype || t.shape.length !== init.shape.length || !t.shape.every((d, i) => dimEq(d, init.shape[i]!)))
        fail('E_SHAPE', `carry "${o}" changes type: the body ${body.name} takes ${showType(init)} and returns ${showType(t)}`, showType(init), showType(t), `the body's output "${o}" (${body.file}#${body.outputSources?.[o]?.pointer ?? '/outputs'}) must have the type of its input "${o}"`);
      setOwn(n.outputTypes, o, init);
    } else setOwn(n.outputTypes, o, { dtype: t.dtype, shape: [T, ...t.shape] });
  }
}
