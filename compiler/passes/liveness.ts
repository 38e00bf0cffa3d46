/**
 * Liveness / memory planning: marks on every node the values whose last use it is, so the
 * executor frees each intermediate right after its last reader (instead of holding every
 * tensor until the program ends). Graph inputs, params and graph outputs are never freed: the
 * caller owns them. A value nobody reads is freed right after the node that makes it.
 */
import type { IRGraph, IRNode } from '../ir.ts';
import type { Pass } from './pass.ts';

/** The values a node produces, as references. */
export function producedRefs(n: IRNode): string[] {
  return n.outputTypes ? Object.keys(n.outputTypes).map((k) => `${n.id}.${k}`) : [n.id];
}

/** Node index -> values freed after it; every intermediate appears exactly once. */
export function lastUses(g: IRGraph): string[][] {
  const keep = new Set<string>([...g.inputs.map((i) => i.name), ...g.params.map((p) => p.name), ...Object.values(g.outputs)]);
  const last = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    for (const r of producedRefs(n)) last.set(r, i);
    for (const r of n.inputs) if (last.has(r)) last.set(r, i);
  });
  const free: string[][] = g.nodes.map(() => []);
  for (const [r, i] of last) if (!keep.has(r)) free[i]!.push(r);
  return free;
}

export const liveness: Pass = {
  name: 'liveness',
  doc: 'free each tensor at its last use',
  run(g) {
    if (g.nodes.some((n) => n.op === 'call' || n.op === 'grad')) return g;
    const free = lastUses(g);
    return { ...g, nodes: g.nodes.map((n, i) => ({ ...n, free: free[i]! })) };
  },
};
