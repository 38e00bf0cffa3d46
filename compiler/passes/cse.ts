/** Common-subexpression elimination: one node per distinct (op, inputs, attrs) among pure ops. */
import { getOp } from '../ops/registry.ts';
import type { Pass } from './pass.ts';
import { rewriteRefs, stableStringify } from './util.ts';

export const cse: Pass = {
  name: 'cse',
  doc: 'merge nodes that compute the same op on the same inputs with the same attributes',
  run(g) {
    const seen = new Map<string, string>();
    const replace = new Map<string, string>();
    const nodes = [];
    for (const n of g.nodes) {
      const def = getOp(n.op);
      const inputs = n.inputs.map((r) => replace.get(r) ?? r);
      if (!def || def.pure === false) {
        nodes.push(inputs === n.inputs ? n : { ...n, inputs });
        continue;
      }
      const key = `${n.op}(${inputs.join(',')})${stableStringify(n.attrs)}`;
      const prev = seen.get(key);
      if (prev !== undefined) {
        replace.set(n.id, prev);
        continue;
      }
      seen.set(key, n.id);
      nodes.push({ ...n, inputs });
    }
    if (replace.size === 0) return g;
    return rewriteRefs({ ...g, nodes }, replace);
  },
};
