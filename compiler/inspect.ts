/**
 * Stable, diffable text views of graphs, for `loom check` and `loom compile --emit`. Each line
 * quotes names and paths from files, so each is made printable before the lines are joined.
 */
import { showType, stableStringify, type IRGraph, type IRNode, type TensorType } from './ir.ts';
import { jsTarget } from './codegen/js.ts';
import { lowerFused, type KernelSpec, type LowerOptions } from './codegen/spec.ts';
import { wasmModuleText, wasmTarget, wasmUnsupported } from './codegen/wasm.ts';
import type { CodegenTarget, GeneratedKernel } from './codegen/target.ts';
import type { StageReport } from './passes/pass.ts';
import { printable } from './text.ts';

function initText(kind: string, args: Record<string, number>): string {
  const a = Object.entries(args).map(([k, v]) => `${k}=${v}`);
  return a.length ? `${kind}(${a.join(', ')})` : kind;
}

/** The graph's inferred signature: inputs, params, outputs and an op histogram. */
export function signature(g: IRGraph): string {
  const lines = [`graph ${g.name}`];
  for (const i of g.inputs) lines.push(`  input  ${i.name}: ${showType(i.type)}`);
  let total = 0;
  for (const p of g.params) {
    const n = (p.type.shape as number[]).reduce((a, b) => a * b, 1);
    total += n;
    lines.push(`  param  ${p.name}: ${showType(p.type)} = ${initText(p.init.kind, p.init.args)}`);
  }
  const types = outputTypes(g);
  for (const [name, ref] of Object.entries(g.outputs)) lines.push(`  output ${name}: ${types[name] ?? '?'}${ref !== name ? `  (= ${ref})` : ''}`);
  const hist = new Map<string, number>();
  for (const n of g.nodes) hist.set(n.op, (hist.get(n.op) ?? 0) + 1);
  const ops = [...hist.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([op, c]) => `${op} ${c}`);
  lines.push(`  ${g.nodes.length} nodes (${ops.join(', ')}); ${g.params.length} params, ${total.toLocaleString('en-US')} values`);
  return lines.map(printable).join('\n');
}

export function outputTypes(g: IRGraph): Record<string, string> {
  const nodes = new Map(g.nodes.map((n) => [n.id, n]));
  const out: Record<string, string> = {};
  for (const [name, ref] of Object.entries(g.outputs)) {
    const [owner, sub] = ref.split('.') as [string, string | undefined];
    const n = nodes.get(owner);
    const t = sub ? n?.outputTypes?.[sub] : (n?.type ?? g.inputs.find((i) => i.name === ref)?.type ?? g.params.find((p) => p.name === ref)?.type);
    if (t) out[name] = showType(t);
  }
  return out;
}

function attrsText(attrs: Record<string, unknown>): string {
  const keys = Object.keys(attrs).sort();
  if (!keys.length) return '';
  return ` {${keys.map((k) => `${k}=${JSON.stringify(attrs[k])}`).join(', ')}}`;
}

function nodeLine(n: IRNode, indent: string): string[] {
  const type = n.type ? showType(n.type) : n.outputTypes ? `{${Object.entries(n.outputTypes).map(([k, t]) => `${k}: ${showType(t)}`).join(', ')}}` : '?';
  const attrs = n.op === 'call' ? ` {graph=${JSON.stringify(n.attrs.graph)}}` : attrsText(n.attrs);
  const lines = [`${indent}%${n.id} = ${n.op}(${n.inputs.map((r) => `%${r}`).join(', ')})${attrs} : ${type}`];
  const body = (n as IRNode & { body?: IRNode[] }).body;
  if (body) for (const b of body) lines.push(...nodeLine(b, indent + '    | '));
  return lines;
}

/** The IR as stable text: one line per node, in execution order. */
export function irText(g: IRGraph): string {
  const lines = [`graph ${g.name}  # ${g.file}`];
  for (const i of g.inputs) lines.push(`  input %${i.name}: ${showType(i.type)}`);
  for (const p of g.params) lines.push(`  param %${p.name}: ${showType(p.type)}`);
  for (const n of g.nodes) lines.push(...nodeLine(n, '  '));
  for (const [k, r] of Object.entries(g.outputs)) lines.push(`  output ${k} = %${r}`);
  return lines.map(printable).join('\n') + '\n';
}

/** Op counts before and after each pass. */
export function stagesText(stages: StageReport[]): string {
  const lines = ['pass               nodes        change'];
  for (const s of stages) {
    const delta: string[] = [];
    const ops = new Set([...Object.keys(s.opsBefore), ...Object.keys(s.opsAfter)]);
    for (const op of [...ops].sort()) {
      const d = (s.opsAfter[op] ?? 0) - (s.opsBefore[op] ?? 0);
      if (d) delta.push(`${op} ${d > 0 ? '+' : ''}${d}`);
    }
    const nodes = s.skipped ? 'disabled' : `${s.nodesBefore} -> ${s.nodesAfter}`;
    lines.push(`${s.pass.padEnd(18)} ${nodes.padEnd(12)} ${delta.join(', ') || '-'}`);
  }
  return lines.join('\n') + '\n';
}

/** Every fused node of a compiled graph lowered at concrete sizes (`env` binds the symbolic dims). */
function loweredKernels(g: IRGraph, env: ReadonlyMap<string, number>, opts: LowerOptions): { node: IRNode; spec: KernelSpec }[] {
  const types = new Map<string, TensorType>();
  for (const i of g.inputs) types.set(i.name, i.type);
  for (const p of g.params) types.set(p.name, p.type);
  const out: { node: IRNode; spec: KernelSpec }[] = [];
  for (const n of g.nodes) {
    if (n.type) types.set(n.id, n.type);
    if (n.outputTypes) for (const [k, t] of Object.entries(n.outputTypes)) types.set(`${n.id}.${k}`, t);
    if (n.op !== 'fused') continue;
    out.push({ node: n, spec: lowerFused(n, env, n.inputs.map((r) => types.get(r)!), new Map(), opts).spec });
  }
  return out;
}

/** Every fused kernel of a compiled graph at concrete sizes (`env` binds the symbolic dims), as `target` generates it. */
export function generatedKernels(g: IRGraph, env: ReadonlyMap<string, number>, target: CodegenTarget = jsTarget, opts: LowerOptions = {}): { node: IRNode; kernel: GeneratedKernel }[] {
  return loweredKernels(g, env, opts).map(({ node, spec }) => ({ node, kernel: target.emit(spec) }));
}

/**
 * The fused kernels of a compiled graph as one WebAssembly text module (the wasm target, at
 * concrete sizes): a function per kernel it renders, and a comment saying why for each kernel that
 * stays JavaScript.
 */
export function watText(g: IRGraph, env: ReadonlyMap<string, number>, opts: LowerOptions = {}): string {
  const parts: string[] = [];
  const emitted = new Map<string, string>();
  for (const { node: n, spec } of loweredKernels(g, env, opts)) {
    const what = printable(`;; ${n.id}: ${n.body!.map((b) => b.op).join(' -> ')}`);
    const why = wasmUnsupported(spec);
    if (why) {
      parts.push(`${what}: stays JavaScript (${why})`);
      continue;
    }
    const k = wasmTarget.emit(spec);
    if (emitted.has(k.name)) parts.push(`${what}: the same kernel as ${printable(emitted.get(k.name)!)} (${k.name})`);
    else {
      emitted.set(k.name, n.id);
      parts.push(`${what}\n${k.source}`);
    }
  }
  return wasmModuleText(parts.map((source) => ({ source }))) + '\n';
}

/**
 * The generated source of every fused kernel, at concrete sizes (`env` binds the symbolic
 * dims). Constants appear as kernel inputs here; the executor bakes known scalars in. With
 * `productEpilogue`, kernels are lowered as the wasm executor lowers them: the product applies a
 * following bias add and activation, named in the kernel's header line.
 */
export function kernelsText(g: IRGraph, env: ReadonlyMap<string, number>, target: CodegenTarget = jsTarget, opts: LowerOptions = {}): string {
  const parts: string[] = [];
  const support = new Set<string>();
  const emitted = new Map<string, string>();
  for (const { node: n, kernel: k } of generatedKernels(g, env, target, opts)) {
    k.support.forEach((s) => support.add(s));
    const mm = k.spec.matmul;
    const epilogue = [mm?.bias !== undefined ? 'bias add' : '', mm?.activation ?? ''].filter(Boolean);
    const what = printable(`// ${n.id}: ${n.body!.map((b) => b.op).join(' -> ')}${epilogue.length ? ` (the product applies the ${epilogue.join(' and ')})` : ''}`);
    if (emitted.has(k.name)) parts.push(`${what}: the same kernel as ${printable(emitted.get(k.name)!)} (${k.name})`);
    else {
      emitted.set(k.name, n.id);
      parts.push(`${what}\n${k.source}`);
    }
  }
  if (!parts.length) return '// no fused kernels\n';
  return [...support, ...parts].join('\n\n') + '\n';
}

/** How graph B differs from graph A: signature lines and nodes matched by id. */
export interface GraphDiff {
  /** Inputs, params and outputs whose declaration differs, as `- name: A` / `+ name: B` lines. */
  signature: string[];
  added: IRNode[];
  removed: IRNode[];
  /** Nodes present in both whose op, inputs, attrs or callee differ. */
  changed: { id: string; a: string; b: string }[];
}

const nodeText = (n: IRNode): string =>
  `${n.op}(${n.inputs.join(', ')})${Object.keys(n.attrs).length ? ' ' + stableStringify(n.attrs) : ''}${n.callee ? ` -> ${n.callee.name}` : ''}`;

/** Node-level difference of two loaded graphs (before compilation, so it reflects the files). */
export function graphDiff(a: IRGraph, b: IRGraph): GraphDiff {
  const sig = (g: IRGraph): Map<string, string> =>
    new Map([
      ...g.inputs.map((i) => [`input ${i.name}`, showType(i.type)] as const),
      ...g.params.map((p) => [`param ${p.name}`, showType(p.type)] as const),
      ...Object.entries(g.outputs).map(([k, v]) => [`output ${k}`, v] as const),
    ]);
  const sa = sig(a);
  const sb = sig(b);
  const signature: string[] = [];
  for (const [k, v] of sa) if (sb.get(k) !== v) signature.push(`- ${k}: ${v}`);
  for (const [k, v] of sb) if (sa.get(k) !== v) signature.push(`+ ${k}: ${v}`);
  const na = new Map(a.nodes.map((n) => [n.id, n]));
  const nb = new Map(b.nodes.map((n) => [n.id, n]));
  return {
    signature,
    added: b.nodes.filter((n) => !na.has(n.id)),
    removed: a.nodes.filter((n) => !nb.has(n.id)),
    changed: a.nodes.flatMap((n) => {
      const m = nb.get(n.id);
      return m && nodeText(m) !== nodeText(n) ? [{ id: n.id, a: nodeText(n), b: nodeText(m) }] : [];
    }),
  };
}

/** `graphDiff` as text lines; empty when the graphs are the same node for node. */
export function graphDiffText(d: GraphDiff): string[] {
  return [
    ...d.signature,
    ...d.removed.map((n) => `- ${n.id} = ${nodeText(n)}`),
    ...d.added.map((n) => `+ ${n.id} = ${nodeText(n)}`),
    ...d.changed.flatMap((c) => [`- ${c.id} = ${c.a}`, `+ ${c.id} = ${c.b}`]),
  ].map(printable);
}

/**
 * The graph files a graph is composed of, keyed by the path of `call` and `scan` nodes that reach
 * them from the top ("update > loss" is the graph the `loss` node of the `update` scan body calls),
 * the top graph under `root`. Two programs are compared stage by stage on these paths.
 */
export function stageGraphs(g: IRGraph, root = 'top'): Map<string, IRGraph> {
  const out = new Map<string, IRGraph>([[root, g]]);
  const visit = (h: IRGraph, path: string) => {
    for (const n of h.nodes)
      if (n.callee) {
        const p = path === root ? n.id : `${path} > ${n.id}`;
        out.set(p, n.callee);
        visit(n.callee, p);
      }
  };
  visit(g, root);
  return out;
}
