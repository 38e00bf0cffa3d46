/**
 * Dataflow order without recursion: graphs of 100k nodes in a chain must not exhaust the stack.
 * The order is the one the frontend has always produced (a depth-first post-order over producers,
 * started from the nodes nothing consumes), so compiled programs and printed graphs do not change.
 */

export type OrderResult<K> = { order: K[]; cycle?: undefined } | { order?: undefined; cycle: K[] };

/**
 * Orders `nodes` so that every node comes after its producers (`preds`), or returns one cycle,
 * listed in dataflow order (each node feeds the next, and the last feeds the first).
 */
export function topoOrder<K>(nodes: readonly K[], preds: (k: K) => readonly K[]): OrderResult<K> {
  const hasConsumer = new Set<K>();
  for (const n of nodes) for (const p of preds(n)) hasConsumer.add(p);
  const state = new Map<K, 'open' | 'done'>();
  const order: K[] = [];
  const path: K[] = [];
  const next: number[] = [];
  const visit = (root: K): K[] | undefined => {
    state.set(root, 'open');
    path.push(root);
    next.push(0);
    while (path.length > 0) {
      const top = path.length - 1;
      const n = path[top]!;
      const ps = preds(n);
      const k = next[top]!;
      if (k < ps.length) {
        next[top] = k + 1;
        const p = ps[k]!;
        const s = state.get(p);
        if (s === 'open') {
          // p feeds n, and n (transitively) feeds each node below it on the path, back to p.
          const at = path.lastIndexOf(p);
          return [p, ...path.slice(at + 1).reverse()];
        }
        if (s === undefined) {
          state.set(p, 'open');
          path.push(p);
          next.push(0);
        }
        continue;
      }
      state.set(n, 'done');
      order.push(n);
      path.pop();
      next.pop();
    }
    return undefined;
  };
  // Sinks first; any node left over then lies on or below a cycle, which a later walk finds.
  for (const roots of [nodes.filter((n) => !hasConsumer.has(n)), nodes])
    for (const n of roots)
      if (!state.has(n)) {
        const cycle = visit(n);
        if (cycle) return { cycle };
      }
  return { order };
}
