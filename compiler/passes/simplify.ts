/**
 * Algebraic simplification: x*1, 1*x, x/1, x+0, 0+x, x-0, neg(neg(x)), identity, casts to the
 * same dtype, transpose of transpose, reshape chains, no-op reshapes, and a reshape that drops
 * the one-index axis of a slice (a gather of that index). A rewrite applies
 * only when the result has exactly the type of the node it replaces (so broadcasting is kept).
 */
import { flattenLiteral } from '../ops/const.ts';
import type { IRGraph, IRNode } from '../ir.ts';
import type { Pass } from './pass.ts';
import { rewriteRefs, sameType, valueTypes } from './util.ts';

function isConst(n: IRNode | undefined, v: number): boolean {
  return !!n && n.op === 'const' && flattenLiteral(n.attrs.value!).every((x) => x === v);
}

/**
 * The axis along which `slice` takes one index of a static x, all of every other axis, where
 * `out` (a reshape's shape) is x's shape without that axis; else undefined.
 */
function rowAxis(slice: IRNode, x: readonly (number | string)[] | undefined, out: readonly (number | string)[]): number | undefined {
  const begin = slice.attrs.begin as number[];
  const size = slice.attrs.size as (number | string)[];
  if (!x || !x.every((d) => typeof d === 'number') || out.length !== x.length - 1) return undefined;
  const partial = x.flatMap((d, i) => (begin[i] === 0 && (size[i] === -1 || size[i] === d) ? [] : [i]));
  const ax = partial[0];
  if (partial.length !== 1 || size[ax!] !== 1) return undefined;
  return x.every((d, i) => i === ax || d === out[i < ax! ? i : i - 1]) ? ax : undefined;
}

export const simplify: Pass = {
  name: 'simplify',
  doc: 'algebraic identities: x*1, x+0, --x, transpose/reshape chains, no-op casts',
  run(g: IRGraph) {
    const byId = new Map(g.nodes.map((n) => [n.id, n]));
    const types = valueTypes(g);
    const replace = new Map<string, string>();
    const nodes: IRNode[] = [];
    const get = (r: string) => byId.get(replace.get(r) ?? r);
    for (const orig of g.nodes) {
      const n = orig.inputs.some((r) => replace.has(r)) ? { ...orig, inputs: orig.inputs.map((r) => replace.get(r) ?? r) } : orig;
      const [a, b] = n.inputs;
      const keep = (x: string | undefined) => x !== undefined && sameType(types.get(x), n.type);
      let to: string | undefined;
      switch (n.op) {
        case 'mul':
          if (isConst(get(b!), 1) && keep(a)) to = a;
          else if (isConst(get(a!), 1) && keep(b)) to = b;
          break;
        case 'div':
          if (isConst(get(b!), 1) && keep(a)) to = a;
          break;
        case 'add':
          if (isConst(get(b!), 0) && keep(a)) to = a;
          else if (isConst(get(a!), 0) && keep(b)) to = b;
          break;
        case 'sub':
          if (isConst(get(b!), 0) && keep(a)) to = a;
          break;
        case 'neg': {
          const inner = get(a!);
          if (inner?.op === 'neg' && keep(inner.inputs[0])) to = inner.inputs[0];
          break;
        }
        case 'identity':
        case 'cast':
        case 'reshape':
        case 'broadcast_like':
        case 'sum_to':
          if (keep(a)) to = a;
          break;
        case 'transpose': {
          const inner = get(a!);
          if (inner?.op === 'transpose' && n.type) {
            const rank = n.type.shape.length;
            // Perms may name axes from the end (-1); composing needs them normalised.
            const norm = (p: number[] | undefined) => (p ?? [...Array(rank).keys()].reverse()).map((v) => (v < 0 ? v + rank : v));
            const p1 = norm(inner.attrs.perm as number[] | undefined);
            const p2 = norm(n.attrs.perm as number[] | undefined);
            const composed = p2.map((i) => p1[i]!);
            if (composed.every((v, i) => v === i) && keep(inner.inputs[0])) to = inner.inputs[0];
            else {
              nodes.push({ ...n, inputs: [inner.inputs[0]!], attrs: { perm: composed } });
              byId.set(n.id, nodes[nodes.length - 1]!);
              continue;
            }
          }
          break;
        }
      }
      if (n.op === 'reshape' && to === undefined) {
        const inner = get(a!);
        if (inner?.op === 'reshape') {
          const merged = { ...n, inputs: [inner.inputs[0]!] };
          nodes.push(merged);
          byId.set(n.id, merged);
          continue;
        }
        // A float32 slice of one index along one axis whose reshape drops that axis is a gather of
        // the index: one op instead of two. Not for int32: rewriting the RNG key rows of the PPO
        // rollout step this way made its keys differ on webgpu (a lone int32 gather there is exact;
        // the cause is not found yet), and the rewrite saves only a step's dispatch.
        const axis = inner?.op === 'slice' && n.type?.dtype === 'float32' ? rowAxis(inner, types.get(inner.inputs[0]!)?.shape, n.type.shape) : undefined;
        if (axis !== undefined) {
          let index = `${n.id}/index`;
          while (byId.has(index)) index += "'";
          const k: IRNode = { id: index, op: 'const', inputs: [], attrs: { value: (inner!.attrs.begin as number[])[axis]!, dtype: 'int32' }, type: { shape: [], dtype: 'int32' }, source: n.source };
          const gather: IRNode = { ...n, op: 'gather', inputs: [inner!.inputs[0]!, index], attrs: { axis } };
          nodes.push(k, gather);
          byId.set(index, k);
          byId.set(n.id, gather);
          continue;
        }
      }
      if (to !== undefined) {
        replace.set(n.id, to);
        continue;
      }
      nodes.push(n);
      byId.set(n.id, n);
    }
    if (replace.size === 0 && nodes.every((n, i) => n === g.nodes[i])) return g;
    return rewriteRefs({ ...g, nodes }, replace);
  },
};
