/**
 * Inlining of `call`: the callee's nodes are copied into the caller under the prefix
 * "<call id>/", its inputs and params wired to the call's arguments, references to
 * "<call id>.<output>" rewritten, and symbolic dims in attributes renamed to the caller's.
 */
import { substDimSym, symbolsOf, type Dim } from '../dims.ts';
import { inferGraph } from '../frontend/infer.ts';
import type { AttrValue, Attrs, IRGraph, IRNode } from '../ir.ts';
import type { Pass } from './pass.ts';
import { rewriteRefs } from './util.ts';

function renameDimsInAttrs(attrs: Attrs, env: ReadonlyMap<string, Dim>): Attrs {
  if (env.size === 0) return attrs;
  const syms = new Set(env.keys());
  const visit = (v: AttrValue): AttrValue => {
    if (typeof v === 'string' && /^([0-9]+\*)?[A-Za-z_]\w*(\*[A-Za-z_]\w*)*$/.test(v) && symbolsOf(v).every((s) => syms.has(s)))
      return substDimSym(v, env);
    if (Array.isArray(v)) return v.map(visit);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, visit(x)]));
    return v;
  };
  return Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, visit(v)]));
}

function inlineGraph(g: IRGraph): IRGraph {
  if (!g.nodes.some((n) => n.op === 'call')) return g;
  const types = new Map<string, Dim[]>();
  for (const i of g.inputs) types.set(i.name, i.type.shape);
  for (const p of g.params) types.set(p.name, p.type.shape);
  const out: IRNode[] = [];
  const replace = new Map<string, string>();
  for (const n of g.nodes) {
    if (n.type) types.set(n.id, n.type.shape);
    if (n.outputTypes) for (const [o, t] of Object.entries(n.outputTypes)) types.set(`${n.id}.${o}`, t.shape);
    if (n.op !== 'call') {
      out.push(n);
      continue;
    }
    const callee = inlineGraph(n.callee!);
    const prefix = `${n.id}/`;
    const local = new Map<string, string>();
    callee.inputs.forEach((ci, k) => local.set(ci.name, n.inputs[k]!));
    callee.params.forEach((p, k) => local.set(p.name, n.inputs[callee.inputs.length + k]!));
    // Bind the callee's symbols to the caller's dims, as inference did.
    const env = new Map<string, Dim>();
    callee.inputs.forEach((ci, k) => {
      const argShape = types.get(n.inputs[k]!) ?? [];
      ci.type.shape.forEach((d, i) => {
        if (typeof d === 'string' && symbolsOf(d).length === 1 && d === symbolsOf(d)[0] && !env.has(d) && argShape[i] !== undefined) env.set(d, argShape[i]!);
      });
    });
    const ref = (r: string): string => {
      const dot = r.indexOf('.');
      const base = dot >= 0 ? r.slice(0, dot) : r;
      if (local.has(base) && dot < 0) return local.get(base)!;
      return prefix + r;
    };
    for (const cn of callee.nodes) {
      const type = cn.type && { ...cn.type, shape: cn.type.shape.map((d) => substDimSym(d, env)) };
      // A scan's only dim-valued attribute is its length (its xs are body input names, not dims).
      const attrs = cn.op === 'scan' ? { ...cn.attrs, ...(cn.attrs.length === undefined ? {} : renameDimsInAttrs({ length: cn.attrs.length }, env)) } : renameDimsInAttrs(cn.attrs, env);
      out.push({ ...cn, id: prefix + cn.id, inputs: cn.inputs.map(ref), attrs, type });
      if (type) types.set(prefix + cn.id, type.shape);
    }
    for (const [o, r] of Object.entries(callee.outputs)) replace.set(`${n.id}.${o}`, ref(r));
  }
  return rewriteRefs({ ...g, nodes: out }, replace);
}

export const inline: Pass = {
  name: 'inline',
  doc: 'replace every call by the body of the called graph',
  run(g) {
    if (!g.nodes.some((n) => n.op === 'call')) return g;
    return inferGraph(inlineGraph(g));
  },
};
