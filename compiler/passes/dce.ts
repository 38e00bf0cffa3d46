/** Dead-code elimination: drops nodes no output depends on (params and inputs stay: they are the signature). */
import type { Pass } from './pass.ts';

export const dce: Pass = {
  name: 'dce',
  doc: 'remove nodes that no output depends on',
  run(g) {
    const live = new Set<string>();
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    const stack = Object.values(g.outputs).map((r) => r.split('.')[0]!);
    while (stack.length) {
      const id = stack.pop()!;
      if (live.has(id)) continue;
      live.add(id);
      const n = byId.get(id);
      if (n) for (const r of n.inputs) stack.push(r.split('.')[0]!);
    }
    const nodes = g.nodes.filter((n) => live.has(n.id));
    return nodes.length === g.nodes.length ? g : { ...g, nodes };
  },
};
