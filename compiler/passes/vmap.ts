/**
 * vmap: maps a graph over a new leading batch axis. Inputs named with axis 0 gain a leading axis
 * of `size`; the others and all params are shared; every output carries the axis (a value that
 * does not depend on a batched input is broadcast there). Its first use is K seeds of a training
 * program in one program: state tensors batched, hyperparameters shared.
 *
 * Each node whose inputs carry the axis is rewritten by its op's batching rule (OpDef.batch, or
 * the default of its class, see ops/batching.ts) into ops over the whole batch; nodes that do not
 * depend on a batched input stay as they are, unbatched. An op without a rule for its inputs falls
 * back to one op per instance (slice, apply, stack): correct, but as slow as K separate programs,
 * so the pass reports those nodes (VmapResult.fallbacks). A scan becomes a scan of its vmapped body.
 *
 * Runs on inlined, differentiated graphs (no call or grad nodes): gradients are taken before
 * batching, which per-instance gradients of a batched loss equal.
 */
import { canonDim, isStatic, symbolsOf, type Dim } from '../dims.ts';
import { LoomError } from '../errors.ts';
import { inferGraph } from '../frontend/infer.ts';
import { makeShapeCtx } from '../frontend/shape-ctx.ts';
import { showType, type Attrs, type IRGraph, type IRInput, type IRNode, type TensorType } from '../ir.ts';
import { batchRuleOf } from '../ops/batching.ts';
import { getOp, type BatchBuilder } from '../ops/registry.ts';
import { autodiff } from './autodiff.ts';
import { inline } from './inline.ts';

export interface VmapSpec {
  /** The batch size: a number, or a dim name bound by the batched inputs. */
  size: Dim;
  /** Per input: 0 batches it along a new leading axis; null or absent shares it. */
  axes: Record<string, 0 | null>;
}

export interface VmapResult {
  graph: IRGraph;
  /** Nodes (ids of the input graph) that ran one op per instance for want of a batching rule. */
  fallbacks: { node: string; op: string }[];
}

export function vmap(g: IRGraph, spec: VmapSpec): IRGraph {
  return vmapWithReport(g, spec).graph;
}

export function vmapWithReport(g: IRGraph, spec: VmapSpec): VmapResult {
  const size = canonDim(spec.size);
  const err = (message: string, o: { node?: IRNode; expected?: string; found?: string; hint?: string } = {}) =>
    new LoomError({
      code: 'E_ATTR',
      message: `vmap: ${message}`,
      file: o.node?.source?.file ?? g.file,
      pointer: o.node?.source?.pointer,
      node: o.node?.id,
      expected: o.expected,
      found: o.found,
      hint: o.hint,
    });
  if (typeof size === 'number' ? !(Number.isInteger(size) && size >= 1) : symbolsOf(size).length !== 1 || size !== symbolsOf(size)[0])
    throw err('the batch size must be an integer >= 1 or one dim name', { expected: 'e.g. 8 or "K"', found: String(spec.size) });
  for (const [name, ax] of Object.entries(spec.axes)) {
    if (!g.inputs.some((i) => i.name === name))
      throw err(`no input "${name}" to batch`, { expected: g.inputs.map((i) => i.name).join(', ') || 'no inputs', found: name });
    if (ax !== 0 && ax !== null) throw err(`input "${name}" has the axis ${JSON.stringify(ax)}`, { expected: '0 (batched) or null (shared)', found: String(ax) });
  }
  if (typeof size === 'string' && g.inputs.some((i) => i.type.shape.some((d) => symbolsOf(d).includes(size))))
    throw err(`the batch size "${size}" is already a dim of the graph`, { hint: 'name the batch axis with a dim the graph does not use' });
  for (const n of g.nodes)
    if (n.op === 'call' || n.op === 'grad')
      throw err(`node "${n.id}" is a ${n.op}: vmap runs on inlined, differentiated graphs`, { node: n, hint: 'run the inline and autodiff passes first' });

  const isBatched = (name: string) => spec.axes[name] === 0;
  const inputs: IRInput[] = g.inputs.map((i) => (isBatched(i.name) ? { ...i, type: { ...i.type, shape: [size, ...i.type.shape] } } : { ...i }));
  const bound = new Set(inputs.flatMap((i) => i.type.shape.flatMap((d) => symbolsOf(d))));
  if (typeof size === 'string' && !inputs.some((i) => isBatched(i.name)))
    throw err(`the symbolic batch size "${size}" needs at least one batched input to bind it`);

  const types = new Map<string, TensorType>();
  for (const i of inputs) types.set(i.name, i.type);
  for (const p of g.params) types.set(p.name, p.type);
  /** Old value -> new value, and whether the new value carries the batch axis. */
  const map = new Map<string, string>();
  const batched = new Set<string>();
  for (const i of g.inputs) map.set(i.name, i.name);
  for (const p of g.params) map.set(p.name, p.name);
  for (const i of g.inputs) if (isBatched(i.name)) batched.add(i.name);

  const out: IRNode[] = [];
  const fallbacks: VmapResult['fallbacks'] = [];
  const taken = new Set<string>([...g.inputs.map((i) => i.name), ...g.params.map((p) => p.name), ...g.nodes.map((n) => n.id)]);
  let current: IRNode | undefined;
  let counter = 0;

  const emit = (op: string, ins: string[], attrs: Attrs, id?: string): string => {
    const def = getOp(op);
    if (!def) throw new Error(`internal: batching rule uses unknown op ${op}`);
    let nid = id;
    if (nid === undefined) {
      do nid = `${current?.id ?? 'vmap'}/vmap${counter++}`;
      while (taken.has(nid));
      taken.add(nid);
    }
    const ctx = makeShapeCtx({ node: current?.id ?? nid, source: current?.source, op }, bound);
    const t = def.shape(
      ins.map((r) => types.get(r)!),
      attrs,
      ctx,
    );
    const node: IRNode = { id: nid, op, inputs: ins, attrs, type: { dtype: t.dtype, shape: t.shape.map(canonDim) }, source: current?.source };
    types.set(nid, node.type!);
    out.push(node);
    return nid;
  };
  const builder: BatchBuilder = {
    op: (name, ins, attrs = {}) => emit(name, ins, attrs),
    type: (v) => types.get(v)!,
    size,
    materialize: (v) => emit('broadcast_to', [v], { shape: [size, ...types.get(v)!.shape] }),
    padRank: (v, rank) => {
      let cur = v;
      while (types.get(cur)!.shape.length - 1 < rank) cur = emit('expand_dims', [cur], { axis: 1 });
      return cur;
    },
  };

  /** One op per instance: slice every batched input, apply the op, stack the results. */
  const fallback = (n: IRNode, ins: string[], inBatched: boolean[]): string => {
    if (!isStatic(size))
      throw err(`op ${n.op} (node "${n.id}") has no batching rule for these inputs, and one op per instance needs a static batch size`, {
        node: n,
        found: `size ${size}`,
        hint: 'give the batch size as a number, or add a `batch` rule to the op in compiler/ops',
      });
    fallbacks.push({ node: n.id, op: n.op });
    const parts: string[] = [];
    for (let k = 0; k < size; k++) {
      const args = ins.map((x, i) => {
        if (!inBatched[i]) return x;
        const r = types.get(x)!.shape.length;
        const one = emit('slice', [x], { begin: [k, ...Array<number>(r - 1).fill(0)], size: [1, ...Array<number>(r - 1).fill(-1)] });
        return emit('squeeze', [one], { axes: [0] });
      });
      parts.push(emit(n.op, args, n.attrs));
    }
    return emit('stack', parts, { axis: 0 });
  };

  /**
   * A scan batches as a scan of the vmapped body: every carry batched (an unbatched initial value
   * is repeated, since the body may mix batched values into it), batched xs and invariants batched
   * in the body. The time axis stays first outside the body, so batched xs [size, T, ...] enter as
   * [T, size, ...] and ys [T, size, ...] leave as [size, T, ...]. A param bound to a batched value
   * becomes a body input, since vmap shares params.
   */
  const batchScan = (n: IRNode, ins: string[], inBatched: boolean[]): void => {
    const body = n.callee!;
    const xs = new Set((n.attrs.xs as string[] | undefined) ?? []);
    const nIn = body.inputs.length;
    const movedParams = body.params.filter((_p, k) => inBatched[nIn + k]);
    const keptParams = body.params.filter((_p, k) => !inBatched[nIn + k]);
    const prepared = autodiff.run(inline.run(body));
    const asInputs: IRGraph = {
      ...prepared,
      inputs: [...prepared.inputs, ...movedParams.map((p) => ({ name: p.name, type: p.type, source: p.source }))],
      params: keptParams,
    };
    const bodyAxes: VmapSpec['axes'] = {};
    const newIns: string[] = [];
    body.inputs.forEach((bi, k) => {
      const carry = Object.hasOwn(body.outputs, bi.name);
      let v = ins[k]!;
      if (carry || inBatched[k]) {
        bodyAxes[bi.name] = 0;
        if (!inBatched[k]) v = builder.materialize(v);
        else if (xs.has(bi.name)) v = swapLead(v);
      }
      newIns.push(v);
    });
    movedParams.forEach((p) => {
      bodyAxes[p.name] = 0;
      newIns.push(ins[nIn + body.params.indexOf(p)]!);
    });
    keptParams.forEach((p) => newIns.push(ins[nIn + body.params.indexOf(p)]!));
    let inner: VmapResult;
    try {
      inner = vmapWithReport(asInputs, { size, axes: bodyAxes });
    } catch (e) {
      if (e instanceof LoomError && !e.info.node) throw err(`the body ${body.name} of scan "${n.id}" cannot be batched: ${e.info.message}`, { node: n, hint: e.info.hint });
      throw e;
    }
    fallbacks.push(...inner.fallbacks.map((f) => ({ node: `${n.id}/${f.node}`, op: f.op })));
    const outputTypes: Record<string, TensorType> = {};
    for (const [o, t] of Object.entries(n.outputTypes!)) {
      const carry = body.inputs.some((i) => i.name === o);
      outputTypes[o] = { dtype: t.dtype, shape: carry ? [size, ...t.shape] : [t.shape[0]!, size, ...t.shape.slice(1)] };
    }
    const bindings = Object.fromEntries(body.inputs.map((bi, k) => [bi.name, newIns[k]!]));
    for (const p of movedParams) bindings[p.name] = newIns[body.inputs.length + movedParams.indexOf(p)]!;
    out.push({ ...n, inputs: newIns, attrs: { ...n.attrs }, callee: inner.graph, bindings, outputTypes });
    for (const [o, t] of Object.entries(outputTypes)) {
      const ref = `${n.id}.${o}`;
      types.set(ref, t);
      const carry = body.inputs.some((i) => i.name === o);
      map.set(ref, carry ? ref : swapLead(ref));
      batched.add(ref);
    }
  };
  /** [a, b, ...] -> [b, a, ...]: between the batch axis and a scan's time axis. */
  const swapLead = (v: string): string => {
    const r = types.get(v)!.shape.length;
    return emit('transpose', [v], { perm: [1, 0, ...[...Array(r).keys()].slice(2)] });
  };

  for (const n of g.nodes) {
    current = n;
    counter = 0;
    const ins = n.inputs.map((r) => map.get(r) ?? r);
    const inBatched = n.inputs.map((r) => batched.has(r));
    if (!inBatched.some(Boolean)) {
      out.push({ ...n, inputs: ins, attrs: { ...n.attrs } });
      if (n.type) types.set(n.id, n.type);
      map.set(n.id, n.id);
      for (const [o, t] of Object.entries(n.outputTypes ?? {})) {
        types.set(`${n.id}.${o}`, t);
        map.set(`${n.id}.${o}`, `${n.id}.${o}`);
      }
      continue;
    }
    if (n.op === 'scan') {
      batchScan(n, ins, inBatched);
      continue;
    }
    const def = getOp(n.op);
    if (!def) throw err(`node "${n.id}" has the op ${n.op}, which vmap cannot batch`, { node: n, hint: 'only registry ops (after inline and autodiff) can be batched' });
    const rule = batchRuleOf(def);
    const res = rule?.(builder, { op: n.op, inputs: ins, batched: inBatched, attrs: n.attrs, outType: n.type! }) ?? null;
    const value = res ? res.value : fallback(n, ins, inBatched);
    const isB = res ? res.batched : true;
    const want: TensorType = { dtype: n.type!.dtype, shape: isB ? [size, ...n.type!.shape] : n.type!.shape };
    const got = types.get(value)!;
    if (got.dtype !== want.dtype || got.shape.length !== want.shape.length)
      throw new Error(`internal: the batching rule of ${n.op} gave ${showType(got)} for ${showType(want)} at node ${n.id}`);
    map.set(n.id, value);
    if (isB) batched.add(n.id);
  }
  current = undefined;
  const outputs: Record<string, string> = {};
  for (const [name, ref] of Object.entries(g.outputs)) {
    const v = map.get(ref) ?? ref;
    outputs[name] = batched.has(ref) ? v : builder.materialize(v);
  }
  const graph = inferGraph({ ...g, inputs, params: g.params.map((p) => ({ ...p })), nodes: out, outputs });
  return { graph, fallbacks };
}
