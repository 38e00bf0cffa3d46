/**
 * Fusion: groups nodes into `fused` nodes that one generated kernel computes in one pass over
 * a shared iteration domain.
 *
 * A group has a domain: a shape, compared with its static 1s removed (a [B, 1] and a [B] value
 * visit their elements in the same order). Members are
 *  - elementwise ops whose output has the domain shape (their smaller inputs broadcast);
 *  - reductions whose data input has the domain shape (their results leave the group: nothing
 *    in the same group may read them, since a reduction is complete only after the loop);
 *  - at most one float32 matmul whose output has the domain shape, as the group's prologue
 *    (its elementwise consumers are the epilogue: bias, activation, ...): of two matrices, or
 *    of stacks of them that the host product walks matrix by matrix (productFits), so that
 *    vmapped programs keep their epilogues fused too;
 *  - views that only relabel a member's value, or that reinterpret a tensor the group reads.
 * Producers with several consumers still fuse: a member read outside its group becomes one
 * of the fused node's outputs, named "<fused id>.<member id>". Groups stay convex (no path
 * leaves a group and comes back), so the fused graph is still a DAG. Independent groups with
 * the same domain are merged too (one loop instead of two).
 *
 * The fused node keeps its members as `body`, unchanged, so what is computed never changes and
 * the result stays inspectable. Groups of one node are left alone (the library kernel is one
 * launch already).
 */
import type { Shape } from '../dims.ts';
import type { IRGraph, IRNode, TensorType } from '../ir.ts';
import { productFits, reducerOf, roleOf, type Role } from '../codegen/semantics.ts';
import type { Pass } from './pass.ts';
import { rewriteRefs, valueTypes } from './util.ts';

/** A shape with its static 1s removed, as a comparable string. */
export function domainKey(shape: Shape): string {
  return shape
    .filter((d) => d !== 1)
    .map(String)
    .join(',');
}

interface Group {
  members: Set<string>;
  key: string;
}

/** Upper bound on pairwise checks of the horizontal merge, so huge graphs still compile fast. */
const HORIZONTAL_BUDGET = 4000;

/**
 * Most members one fused kernel may have. Each merge re-checks the whole group, so without a
 * bound a chain of n elementwise ops fuses in O(n^2); a kernel of this many ops is already far
 * past the point where one more launch costs anything.
 */
const MAX_GROUP_MEMBERS = 512;

class Fuser {
  readonly pos = new Map<string, number>();
  readonly byId = new Map<string, IRNode>();
  readonly consumers = new Map<string, IRNode[]>();
  readonly outputs: Set<string>;
  readonly types: Map<string, TensorType>;
  readonly roles = new Map<string, Role>();
  readonly groupOf = new Map<string, Group>();
  /** Largest position of a grouped node: beyond it, every node is ungrouped. */
  private lastGrouped = -1;

  constructor(readonly g: IRGraph) {
    this.outputs = new Set(Object.values(g.outputs));
    this.types = valueTypes(g);
    g.nodes.forEach((n, i) => {
      this.pos.set(n.id, i);
      this.byId.set(n.id, n);
      // A structural node (scan) is read through "<id>.<output>": its readers are its node's too, so
      // the convexity walk follows paths through it.
      for (const r of new Set(n.inputs.flatMap((x) => (x.includes('.') ? [x, x.slice(0, x.indexOf('.'))] : [x])))) {
        const list = this.consumers.get(r) ?? [];
        list.push(n);
        this.consumers.set(r, list);
      }
      this.roles.set(n.id, this.classify(n));
    });
  }

  private classify(n: IRNode): Role {
    if (!n.type || n.outputTypes || n.body) return 'opaque';
    if (n.inputs.some((r) => !this.types.get(r))) return 'opaque';
    const role = roleOf(n.op);
    if (role === 'matmul') {
      const [a, b] = n.inputs.map((r) => this.types.get(r)!);
      const ok = n.inputs.length === 2 && a!.dtype === 'float32' && b!.dtype === 'float32' && productFits(a!.shape, b!.shape);
      return ok ? 'matmul' : 'opaque';
    }
    if (role === 'reduction' && !reducerOf(n.op)!.dataInputs.every((k) => k < n.inputs.length)) return 'opaque';
    return role;
  }

  role(id: string): Role | undefined {
    return this.roles.get(id);
  }

  /** The domain key a member contributes to its group. */
  memberKey(n: IRNode): string {
    const role = this.role(n.id);
    if (role === 'reduction') return domainKey(this.types.get(n.inputs[reducerOf(n.op)!.dataInputs[0]!]!)!.shape);
    return domainKey(n.type!.shape);
  }

  isTransparentView(n: IRNode): boolean {
    return this.role(n.id) === 'view' && domainKey(this.types.get(n.inputs[0]!)!.shape) === domainKey(n.type!.shape);
  }

  /** Follows single-consumer transparent views upstream from `ref`; returns the source and the views passed. */
  source(ref: string): { root: string; views: string[] } {
    const views: string[] = [];
    let cur = ref;
    for (;;) {
      const n = this.byId.get(cur);
      if (!n || !this.isTransparentView(n) || this.groupOf.has(cur) || this.outputs.has(cur)) break;
      if ((this.consumers.get(cur)?.length ?? 0) !== 1) break;
      views.push(cur);
      cur = n.inputs[0]!;
    }
    return { root: cur, views };
  }

  /** Whether `ref` is a tensor the group reads as a whole (outside S, or a view of one). */
  private isBuffer(ref: string, S: ReadonlySet<string>): boolean {
    let cur = ref;
    while (S.has(cur)) {
      const n = this.byId.get(cur)!;
      if (this.role(cur) !== 'view') return false;
      cur = n.inputs[0]!;
    }
    return true;
  }

  /** Structural rules of a group (see the file comment). */
  valid(S: ReadonlySet<string>, key: string): boolean {
    let matmuls = 0;
    let computes = 0;
    for (const id of S) {
      const n = this.byId.get(id)!;
      const role = this.role(id);
      if (role === 'opaque' || role === undefined) return false;
      if (role === 'view') {
        if (!this.isBuffer(n.inputs[0]!, S) && !this.isTransparentView(n)) return false;
        continue;
      }
      computes++;
      if (this.memberKey(n) !== key) return false;
      if (role === 'matmul') {
        matmuls++;
        if (n.inputs.some((r) => S.has(r))) return false;
      }
      for (const r of n.inputs) {
        // A member may read a reduction of its own group through views too.
        let cur = r;
        while (S.has(cur) && this.role(cur) === 'view') cur = this.byId.get(cur)!.inputs[0]!;
        if (S.has(cur) && this.role(cur) === 'reduction') return false;
      }
    }
    return matmuls <= 1 && computes >= 1;
  }

  /**
   * No path leaves S and re-enters it, with every other group contracted to one node (a path
   * into any member of a group continues from all of its members), so the fused graph stays
   * acyclic.
   */
  convex(S: ReadonlySet<string>): boolean {
    // Edges go forward in node order, and no group reaches past `bound`: a path that has gone past
    // S's last node cannot come back, so the walk stops there (linear, not quadratic, on long chains).
    let last = -1;
    for (const id of S) last = Math.max(last, this.pos.get(id)!);
    const bound = this.lastGrouped <= last ? last : Infinity;
    const seen = new Set<string>();
    const stack: string[] = [];
    for (const id of S) for (const c of this.consumers.get(id) ?? []) if (!S.has(c.id) && this.pos.get(c.id)! <= bound) stack.push(c.id);
    while (stack.length) {
      const id = stack.pop()!;
      if (seen.has(id)) continue;
      const grp = this.groupOf.get(id);
      const unit = grp ? grp.members : [id];
      for (const m of unit) {
        seen.add(m);
        for (const c of this.consumers.get(m) ?? []) {
          if (S.has(c.id)) return false;
          if (!seen.has(c.id) && this.pos.get(c.id)! <= bound) stack.push(c.id);
        }
      }
    }
    return true;
  }

  private assign(id: string, group: Group): void {
    this.groupOf.set(id, group);
    this.lastGrouped = Math.max(this.lastGrouped, this.pos.get(id)!);
  }

  /** Makes S one group if it satisfies the rules. */
  tryMerge(S: Set<string>, key: string): boolean {
    if (S.size > MAX_GROUP_MEMBERS || !this.valid(S, key) || !this.convex(S)) return false;
    const group: Group = { members: S, key };
    for (const id of S) this.assign(id, group);
    return true;
  }

  /** Candidate groups a node can join through its input `ref` (looking through views). */
  private candidate(ref: string, key: string): { group: Group; views: string[] } | undefined {
    const { root, views } = this.source(ref);
    const grp = this.groupOf.get(root);
    if (!grp || grp.key !== key || this.role(root) === 'reduction') return undefined;
    return { group: grp, views };
  }

  private join(n: IRNode, dataInputs: readonly string[]): void {
    const key = this.memberKey(n);
    const cands: { group: Group; views: string[] }[] = [];
    for (const r of new Set(dataInputs)) {
      const c = this.candidate(r, key);
      if (c && !cands.some((x) => x.group === c.group && x.views.join() === c.views.join())) cands.push(c);
    }
    const build = (cs: typeof cands): Set<string> => {
      const S = new Set<string>([n.id]);
      for (const c of cs) {
        for (const m of c.group.members) S.add(m);
        for (const v of c.views) S.add(v);
      }
      return S;
    };
    if (cands.length > 1 && this.tryMerge(build(cands), key)) return;
    for (const c of cands) if (this.tryMerge(build([c]), key)) return;
    this.assign(n.id, { members: new Set([n.id]), key });
  }

  /** Views whose consumers all lie in one group become members (free relabelling or input adapters). */
  private absorbViews(): void {
    const nodes = this.g.nodes;
    for (let changed = true; changed; ) {
      changed = false;
      for (let i = nodes.length - 1; i >= 0; i--) {
        const v = nodes[i]!;
        if (this.role(v.id) !== 'view' || this.groupOf.has(v.id) || this.outputs.has(v.id)) continue;
        const cs = this.consumers.get(v.id) ?? [];
        const grp = cs.length ? this.groupOf.get(cs[0]!.id) : undefined;
        if (!grp || !cs.every((c) => this.groupOf.get(c.id) === grp)) continue;
        const S = new Set(grp.members);
        S.add(v.id);
        if (this.tryMerge(S, grp.key)) changed = true;
      }
    }
  }

  /** Merges independent groups with the same domain. */
  private horizontal(): void {
    let budget = HORIZONTAL_BUDGET;
    const groups = (): Group[] => {
      const seen = new Set<Group>();
      const out: Group[] = [];
      for (const n of this.g.nodes) {
        const grp = this.groupOf.get(n.id);
        if (grp && !seen.has(grp)) {
          seen.add(grp);
          out.push(grp);
        }
      }
      return out;
    };
    const gs = groups();
    for (let i = 0; i < gs.length && budget > 0; i++) {
      for (let j = i + 1; j < gs.length && budget > 0; j++) {
        const a = gs[i]!;
        const b = gs[j]!;
        if (a === b || a.key !== b.key || this.groupOf.get([...a.members][0]!) !== a || this.groupOf.get([...b.members][0]!) !== b) continue;
        budget--;
        const S = new Set([...a.members, ...b.members]);
        if (this.tryMerge(S, a.key)) gs[i] = this.groupOf.get([...a.members][0]!)!;
      }
    }
  }

  run(): IRGraph {
    for (const n of this.g.nodes) {
      const role = this.role(n.id);
      if (role === 'elementwise') this.join(n, n.inputs);
      else if (role === 'reduction') this.join(n, reducerOf(n.op)!.dataInputs.map((k) => n.inputs[k]!));
      else if (role === 'matmul') this.assign(n.id, { members: new Set([n.id]), key: this.memberKey(n) });
    }
    this.absorbViews();
    this.horizontal();
    return this.rebuild();
  }

  private rebuild(): IRGraph {
    const g = this.g;
    const groups: Group[] = [];
    const seen = new Set<Group>();
    for (const n of g.nodes) {
      const grp = this.groupOf.get(n.id);
      if (grp && !seen.has(grp)) {
        seen.add(grp);
        if (grp.members.size > 1) groups.push(grp);
      }
    }
    if (groups.length === 0) return g;

    const taken = new Set(g.nodes.map((n) => n.id));
    let counter = 0;
    const freshId = (): string => {
      while (taken.has(`fused#${counter}`)) counter++;
      taken.add(`fused#${counter}`);
      return `fused#${counter}`;
    };
    const rename = new Map<string, string>();
    const fusedOf = new Map<string, { node: IRNode; group: Group }>();
    for (const grp of groups) {
      const body = g.nodes.filter((n) => grp.members.has(n.id));
      const id = freshId();
      const exported = body.filter((m) => this.outputs.has(m.id) || (this.consumers.get(m.id) ?? []).some((c) => !grp.members.has(c.id)));
      const inputs: string[] = [];
      for (const m of body) for (const r of m.inputs) if (!grp.members.has(r) && !inputs.includes(r)) inputs.push(r);
      const roles = body.map((m) => this.role(m.id));
      const kind = roles.includes('matmul') ? 'matmul' : roles.includes('reduction') ? 'reduction' : 'elementwise';
      const node: IRNode = {
        id,
        op: 'fused',
        inputs,
        attrs: { kind },
        outputTypes: Object.fromEntries(exported.map((m) => [m.id, m.type!])),
        body: body.map((m) => ({ ...m, inputs: [...m.inputs], attrs: { ...m.attrs } })),
        source: body[0]!.source,
      };
      for (const m of exported) rename.set(m.id, `${id}.${m.id}`);
      for (const m of body) fusedOf.set(m.id, { node, group: grp });
    }
    const follow = (r: string): string => rename.get(r) ?? r;
    // Order: each node (fused nodes at their first member) by original position, subject to dependencies.
    const items: IRNode[] = [];
    const prio = new Map<IRNode, number>();
    g.nodes.forEach((n, i) => {
      const f = fusedOf.get(n.id);
      const item = f ? f.node : n;
      if (!prio.has(item)) {
        prio.set(item, i);
        items.push(item);
      }
    });
    for (const it of items) {
      if (it.op === 'fused') {
        it.inputs = it.inputs.map(follow);
        for (const b of it.body!) b.inputs = b.inputs.map((r) => (fusedOf.get(r)?.node === it ? r : follow(r)));
      }
    }
    const renamed = rewriteRefs({ ...g, nodes: items }, rename);
    return { ...renamed, nodes: topoSort(renamed.nodes, g) };
  }
}

/** Kahn's algorithm, taking ready nodes in their given order (a stable topological sort). */
function topoSort(nodes: IRNode[], g: IRGraph): IRNode[] {
  const owner = (r: string): string => r.split('.')[0]!;
  const ids = new Set(nodes.map((n) => n.id));
  const indeg = new Map<IRNode, number>();
  const users = new Map<string, IRNode[]>();
  for (const n of nodes) {
    const deps = new Set(n.inputs.map(owner).filter((d) => ids.has(d)));
    indeg.set(n, deps.size);
    for (const d of deps) {
      const l = users.get(d) ?? [];
      l.push(n);
      users.set(d, l);
    }
  }
  const order = new Map(nodes.map((n, i) => [n, i]));
  const ready = nodes.filter((n) => indeg.get(n) === 0);
  const out: IRNode[] = [];
  while (ready.length) {
    let best = 0;
    for (let i = 1; i < ready.length; i++) if (order.get(ready[i]!)! < order.get(ready[best]!)!) best = i;
    const n = ready.splice(best, 1)[0]!;
    out.push(n);
    for (const u of users.get(n.id) ?? []) {
      const d = indeg.get(u)! - 1;
      indeg.set(u, d);
      if (d === 0) ready.push(u);
    }
  }
  if (out.length !== nodes.length) throw new Error(`internal: fusion of ${g.name} produced a cycle`);
  return out;
}

export const fusion: Pass = {
  name: 'fusion',
  doc: 'group elementwise chains, reductions and matmul epilogues into fused kernels',
  run(g) {
    if (g.nodes.some((n) => n.op === 'call' || n.op === 'grad')) return g;
    return new Fuser(g).run();
  },
};
