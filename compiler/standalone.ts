/**
 * Standalone graphs: a graph with its calls inlined and its params replaced by const nodes that
 * hold given values, written back as a graph document that loads without any other file. This is
 * how a trained policy leaves loom: `loom run` on the result needs neither the agent graph nor a
 * checkpoint.
 */
import { LoomError } from './errors.ts';
import type { AttrValue, DType, IRGraph, IRNode } from './ir.ts';
import { inline } from './passes/inline.ts';
import { rewriteRefs } from './passes/util.ts';

/** A tensor's values, row-major. */
export interface ConstValues {
  shape: readonly number[];
  values: ArrayLike<number>;
}

/**
 * Nodes that compute a replacement for a graph input (e.g. observation normalisation): every
 * node of the graph that read `input` reads `value` instead; the input itself stays.
 */
export interface Prelude {
  input: string;
  nodes: IRNode[];
  value: string;
}

export interface StandaloneOptions {
  name: string;
  doc: string;
  /** Where the values came from, for errors (a checkpoint file). */
  source: string;
  preludes?: Prelude[];
}

/** The document of a graph file: what `loadGraphJson` reads back. */
export type GraphDocument = Record<string, unknown>;

function nested(values: ArrayLike<number>, shape: readonly number[], offset = 0): AttrValue {
  if (shape.length === 0) return values[offset]!;
  const [n, ...rest] = shape;
  const stride = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: n! }, (_, i) => nested(values, rest, offset + i * stride));
}

/** Const nodes made by the loader for numbers written in a node's `in` ("<node>:<k>"): written back as numbers. */
function isLiteral(n: IRNode): boolean {
  return n.op === 'const' && n.id.includes(':') && typeof n.attrs.value === 'number' && n.attrs.dtype === undefined;
}

/**
 * `g` as a self-contained graph document: calls inlined, each param a const node of the same name
 * holding `params[name]` (dtype and shape as declared), preludes spliced in front of the nodes.
 */
export function standaloneGraph(g: IRGraph, params: Readonly<Record<string, ConstValues>>, opts: StandaloneOptions): GraphDocument {
  let flat = inline.run(g);
  const consts: IRNode[] = flat.params.map((p) => {
    const v = params[p.name];
    const want = p.type.shape as number[];
    if (!v || v.shape.join() !== want.join() || v.values.length !== want.reduce((a, b) => a * b, 1))
      throw new LoomError({
        code: 'E_INPUT',
        message: `${opts.source} does not match the graph: param "${p.name}" is ${v ? `[${v.shape.join(', ')}]` : 'missing'}`,
        file: opts.source,
        expected: `[${want.join(', ')}] as graph ${g.name} (${g.file}) declares it`,
      });
    const attrs: Record<string, AttrValue> = { value: nested(v.values, want) };
    if (p.type.dtype !== 'float32') attrs.dtype = p.type.dtype as DType;
    return { id: p.name, op: 'const', inputs: [], attrs };
  });
  const preludes = opts.preludes ?? [];
  flat = rewriteRefs(flat, new Map(preludes.map((p) => [p.input, p.value])));
  const nodes = [...preludes.flatMap((p) => p.nodes), ...consts, ...flat.nodes];
  const literals = new Map(nodes.filter(isLiteral).map((n) => [n.id, n.attrs.value as number]));
  const names = fileNames(nodes.filter((n) => !literals.has(n.id)), flat.inputs.map((i) => i.name));
  const ref = (r: string): string | number => literals.get(r) ?? names.get(r) ?? r;
  return {
    graph: opts.name,
    version: 1,
    doc: opts.doc,
    inputs: Object.fromEntries(flat.inputs.map((i) => [i.name, { dtype: i.type.dtype, shape: i.type.shape }])),
    nodes: nodes
      .filter((n) => !literals.has(n.id))
      .map((n) => ({
        id: names.get(n.id)!,
        op: n.op,
        ...(n.inputs.length ? { in: n.inputs.map(ref) } : {}),
        ...(Object.keys(n.attrs).length ? { attrs: n.attrs } : {}),
      })),
    outputs: Object.fromEntries(Object.entries(flat.outputs).map(([k, r]) => [k, ref(r)])),
  };
}

/**
 * Node ids as a graph file spells them: inlining prefixes ids with "<call id>/", which a file does
 * not allow, so "/" becomes "__" (as in gradient names), with a suffix where that would collide.
 */
function fileNames(nodes: readonly IRNode[], inputs: readonly string[]): Map<string, string> {
  const taken = new Set(inputs);
  const out = new Map<string, string>();
  for (const n of nodes) {
    const base = n.id.replace(/\//g, '__').replace(/[^A-Za-z0-9_]/g, '_');
    let name = base;
    for (let k = 2; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    out.set(n.id, name);
  }
  return out;
}
