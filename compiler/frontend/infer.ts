/** Shape and dtype inference over an IRGraph, with symbolic dims. */
import { canonDim, dimEq, isStatic, MAX_ELEMENTS, product, showShape, substDimSym, symbolsOf, type Dim } from '../dims.ts';
import { LoomError } from '../errors.ts';
import { showType, type IRGraph, type IRNode, type TensorType } from '../ir.ts';
import { getOp } from '../ops/index.ts';
import { makeShapeCtx } from './shape-ctx.ts';

/** Type of a value reference ("x", "node", "node.output") given the types known so far. */
export function refType(types: ReadonlyMap<string, TensorType>, nodes: ReadonlyMap<string, IRNode>, ref: string): TensorType {
  const dot = ref.indexOf('.');
  if (dot >= 0) {
    const n = nodes.get(ref.slice(0, dot));
    const t = n?.outputTypes?.[ref.slice(dot + 1)];
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
    const n: IRNode = { ...orig };
    const loc = { node: n.id, source: n.source, op: n.op };
    const ctx = makeShapeCtx(loc, bound);
    const inTypes = n.inputs.map((r) => refType(types, nodesById, r));
    if (n.op === 'call') inferCall(n, inTypes, ctx.fail);
    else if (n.op === 'grad') {
      const of = inTypes[0]!;
      if (of.dtype !== 'float32' || of.shape.length !== 0)
        ctx.fail('E_SHAPE', 'grad differentiates a scalar: reduce the value first (e.g. with mean or sum)', 'float32[]', showType(of));
      n.outputTypes = {};
      for (const w of n.attrs.wrt as string[]) {
        const wt = types.get(w)!;
        if (wt.dtype !== 'float32') ctx.fail('E_DTYPE', `cannot differentiate with respect to "${w}"`, 'a float32 param or input', showType(wt));
        n.outputTypes[w] = wt;
      }
    } else {
      const def = getOp(n.op)!;
      n.type = def.shape(inTypes, n.attrs, ctx);
      n.type = { dtype: n.type.dtype, shape: n.type.shape.map(canonDim) };
      checkNodeType(n, n.type, bound);
      types.set(n.id, n.type);
    }
    nodesById.set(n.id, n);
    return n;
  });
  for (const [name, ref] of Object.entries(g.outputs)) refType(types, nodesById, ref) && name;
  return { ...g, nodes };
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
  const size = product(t.shape);
  if (isStatic(size) && size > MAX_ELEMENTS)
    throw new LoomError({
      code: 'E_SIZE',
      message: `result of shape ${showShape(t.shape)} has ${size.toExponential(2)} elements, more than any backend can allocate`,
      file: n.source?.file,
      pointer: n.source?.pointer,
      node: n.id,
      expected: `at most ${MAX_ELEMENTS} elements`,
      found: String(size),
    });
}

/** Instantiates the callee's signature at the caller's argument types (binding its symbolic dims). */
function inferCall(n: IRNode, argTypes: TensorType[], fail: (code: 'E_SHAPE' | 'E_DTYPE', m: string, e?: string, f?: string) => never): void {
  const callee = n.callee!;
  const env = new Map<string, Dim>();
  callee.inputs.forEach((ci, k) => {
    const at = argTypes[k]!;
    const what = `argument "${ci.name}" of ${callee.name}`;
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
  callee.params.forEach((p, k) => {
    const at = argTypes[callee.inputs.length + k]!;
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
    n.outputTypes[o] = { dtype: t.dtype, shape: t.shape.map((d) => canonDim(substDimSym(d, env))) };
  }
}
