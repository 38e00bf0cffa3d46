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
    if (at.dtype !== p.type.dtype) fail('E_DTYPE', `param "${p.name}" of ${callee.name} is bound to a value that is not ${p.type.dtype}`, showType(p.type), showType(at));
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
