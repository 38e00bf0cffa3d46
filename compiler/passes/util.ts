/** Small helpers shared by passes: value types, use counts and reference rewriting. */
import type { IRGraph, IRNode, TensorType } from '../ir.ts';

export function valueTypes(g: IRGraph): Map<string, TensorType> {
  const m = new Map<string, TensorType>();
  for (const i of g.inputs) m.set(i.name, i.type);
  for (const p of g.params) m.set(p.name, p.type);
  for (const n of g.nodes) {
    if (n.type) m.set(n.id, n.type);
    if (n.outputTypes) for (const [o, t] of Object.entries(n.outputTypes)) m.set(`${n.id}.${o}`, t);
  }
  return m;
}

/** Rewrites references (node inputs and graph outputs) through `map`, following chains. */
export function rewriteRefs(g: IRGraph, map: ReadonlyMap<string, string>): IRGraph {
  if (map.size === 0) return g;
  const follow = (r: string): string => {
    let cur = r;
    for (let i = 0; i < 1000 && map.has(cur); i++) cur = map.get(cur)!;
    return cur;
  };
  return {
    ...g,
    nodes: g.nodes.map((n) => (n.inputs.some((r) => map.has(r)) ? { ...n, inputs: n.inputs.map(follow) } : n)),
    outputs: Object.fromEntries(Object.entries(g.outputs).map(([k, r]) => [k, follow(r)])),
  };
}

export function useCounts(g: IRGraph): Map<string, number> {
  const uses = new Map<string, number>();
  const add = (r: string) => uses.set(r, (uses.get(r) ?? 0) + 1);
  for (const n of g.nodes) n.inputs.forEach(add);
  Object.values(g.outputs).forEach(add);
  return uses;
}

export function nodeMap(g: IRGraph): Map<string, IRNode> {
  return new Map(g.nodes.map((n) => [n.id, n]));
}

export function sameType(a: TensorType | undefined, b: TensorType | undefined): boolean {
  return !!a && !!b && a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => String(d) === String(b.shape[i]));
}

export { stableStringify } from '../ir.ts';
