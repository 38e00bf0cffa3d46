/**
 * Reverse-mode autodiff as a graph transform: every `grad` node becomes explicit gradient
 * nodes built from the registry's gradient rules, and "<grad id>.<wrt>" references are
 * rewritten to them. Runs after inlining (the rules see only registry ops).
 */
import { canonDim } from '../dims.ts';
import { LoomError } from '../errors.ts';
import { makeShapeCtx } from '../frontend/shape-ctx.ts';
import type { Attrs, DType, IRGraph, IRNode, TensorType } from '../ir.ts';
import { getOp, type GradBuilder } from '../ops/registry.ts';
import type { Pass } from './pass.ts';
import { rewriteRefs, valueTypes } from './util.ts';

/** Node ids that lie on a path from any of `from` to `to`. */
function between(nodes: IRNode[], from: ReadonlySet<string>, to: string): Set<string> {
  const reach = new Set<string>(from);
  for (const n of nodes)
    if (n.op !== 'stop_gradient' && n.inputs.some((r) => reach.has(r))) {
      reach.add(n.id);
      // A structural node (scan) is read through its outputs, "<id>.<output>".
      for (const o of Object.keys(n.outputTypes ?? {})) reach.add(`${n.id}.${o}`);
    }
  const onPath = new Set<string>();
  if (!reach.has(to)) return onPath;
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const stack = [to];
  while (stack.length) {
    const id = stack.pop()!;
    if (onPath.has(id) || !reach.has(id)) continue;
    onPath.add(id);
    const n = byId.get(id) ?? byId.get(id.slice(0, Math.max(0, id.indexOf('.'))));
    if (n) {
      onPath.add(n.id);
      for (const r of n.inputs) stack.push(r);
    }
  }
  return onPath;
}

function expandGrad(g: IRGraph, gradNode: IRNode, types: Map<string, TensorType>): { nodes: IRNode[]; replace: Map<string, string> } {
  const wrt = gradNode.attrs.wrt as string[];
  const of = gradNode.inputs[0]!;
  const fwd = g.nodes.slice(0, g.nodes.indexOf(gradNode));
  const relevant = between(fwd, new Set(wrt), of);
  const created: IRNode[] = [];
  let counter = 0;
  const b: GradBuilder = {
    op(name: string, inputs: string[], attrs: Attrs = {}): string {
      const def = getOp(name);
      if (!def) throw new Error(`internal: gradient rule uses unknown op ${name}`);
      const id = `${gradNode.id}/${counter++}`;
      const node: IRNode = { id, op: name, inputs, attrs, source: gradNode.source };
      const ctx = makeShapeCtx({ node: gradNode.id, source: gradNode.source, op: name });
      const t = def.shape(inputs.map((r) => types.get(r)!), attrs, ctx);
      node.type = { dtype: t.dtype, shape: t.shape.map(canonDim) };
      types.set(id, node.type);
      created.push(node);
      return id;
    },
    constant(value: number, dtype: DType = 'float32'): string {
      return b.op('const', [], { value, dtype });
    },
    type: (v) => types.get(v)!,
  };

  const grads = new Map<string, string>();
  const accumulate = (v: string, dv: string) => {
    const prev = grads.get(v);
    grads.set(v, prev === undefined ? dv : b.op('add', [prev, dv]));
  };
  if (relevant.has(of) || wrt.includes(of)) accumulate(of, b.op('ones_like', [of]));
  for (let i = fwd.length - 1; i >= 0; i--) {
    const n = fwd[i]!;
    if (!relevant.has(n.id)) continue;
    if (n.op === 'scan')
      throw new LoomError({
        code: 'E_UNSUPPORTED',
        message: `cannot differentiate through the scan "${n.id}": grad through scan is not supported`,
        file: gradNode.source?.file,
        pointer: gradNode.source?.pointer,
        node: gradNode.id,
        hint: 'take the gradient inside the scan body (a grad node in the body graph), or wrap the scan output in stop_gradient',
      });
    const dy = grads.get(n.id);
    if (dy === undefined) continue;
    const def = getOp(n.op);
    if (!def?.grad) {
      throw new LoomError({
        code: 'E_UNKNOWN_OP',
        message: `cannot differentiate through ${n.op} (node "${n.id}"): the op has no gradient rule`,
        file: gradNode.source?.file,
        pointer: gradNode.source?.pointer,
        node: gradNode.id,
        hint: 'wrap the value in stop_gradient if no gradient should flow through it',
      });
    }
    const dxs = def.grad(b, { inputs: n.inputs, output: n.id, attrs: n.attrs, dy });
    n.inputs.forEach((x, k) => {
      const dx = dxs[k];
      if (dx && (relevant.has(x) || wrt.includes(x))) accumulate(x, dx);
    });
  }
  const replace = new Map<string, string>();
  for (const w of wrt) replace.set(`${gradNode.id}.${w}`, grads.get(w) ?? b.op('zeros_like', [w]));
  return { nodes: created, replace };
}

export const autodiff: Pass = {
  name: 'autodiff',
  doc: 'expand grad nodes into explicit reverse-mode gradient nodes',
  run(g) {
    if (!g.nodes.some((n) => n.op === 'grad')) return g;
    if (g.nodes.some((n) => n.op === 'call')) throw new Error('internal: autodiff needs inlined graphs');
    let cur = g;
    // One grad at a time, in order, so a later grad can differentiate an earlier one's result.
    for (;;) {
      const gradNode = cur.nodes.find((n) => n.op === 'grad');
      if (!gradNode) return cur;
      const types = valueTypes(cur);
      const { nodes, replace } = expandGrad(cur, gradNode, types);
      const idx = cur.nodes.indexOf(gradNode);
      cur = rewriteRefs({ ...cur, nodes: [...cur.nodes.slice(0, idx), ...nodes, ...cur.nodes.slice(idx + 1)] }, replace);
    }
  },
};
