/**
 * The frontend: graph file -> validated, typed IRGraph.
 * read -> parse JSON -> JSON Schema -> resolve ids, ops, attributes and `call`s -> order
 * (cycles are errors) -> shape/dtype inference. Every failure is a LoomError naming
 * the file, the JSON pointer and the node.
 */
import { dirname, resolve } from 'node:path';
import { LoomError, joinPointer } from '../errors.ts';
import { canonDim, MAX_ELEMENTS, product, isStatic, isStaticShape, type Dim } from '../dims.ts';
import type { AttrValue, Attrs, DType, IRGraph, IRInput, IRNode, IRParam, ParamInit, SourceLoc } from '../ir.ts';
import { getOp, allOps } from '../ops/index.ts';
import { assertValid, attrValidator, describeSchema, schemaValidator, suggest } from './schema.ts';
import { inferGraph, minElements, setOwn } from './infer.ts';
import { assertAllowed, assertDocumentKind, displayPath, parseJsonText, realPathLoose, tryReadUntrusted } from './files.ts';
import { topoOrder } from '../order.ts';

/** Where graph files come from; tests and the fuzzer substitute an in-memory map. */
export interface FileSource {
  /** The text, or undefined when there is no such file; other failures are LoomErrors. */
  read(path: string): string | undefined;
  /** The path with symlinks followed, for the allowed-folders check (the path itself by default). */
  realpath?(path: string): string;
}

export const diskFiles: FileSource = {
  read: (path) => tryReadUntrusted(path, { what: 'graph file' }),
  realpath: realPathLoose,
};

export function memoryFiles(files: Record<string, string | object>): FileSource {
  return {
    read(path) {
      const key = Object.keys(files).find((k) => resolve(k) === resolve(path));
      if (key === undefined) return undefined;
      const v = files[key]!;
      return typeof v === 'string' ? v : JSON.stringify(v);
    },
  };
}

export interface LoadOptions {
  files?: FileSource;
  /**
   * Folders a `call` may reach besides the working directory and the loaded file's own folder:
   * the shipped library, `--allow-path` folders. Anything else is an error.
   */
  roots?: readonly string[];
}

/** Structural ops handled by the frontend and interpreter rather than the registry. */
export const STRUCTURAL_OPS = ['call', 'grad', 'scan'] as const;

export { displayPath, jsonErrorOffset, parseJsonText } from './files.ts';

/** The folders `call`s of the graph at `path` may reach: see LoadOptions.roots. */
function graphRoots(path: string, opts: LoadOptions): string[] {
  return [process.cwd(), dirname(resolve(path)), ...(opts.roots ?? [])];
}

/** Loads, validates and type-checks a graph file and everything it calls. */
export function loadGraph(path: string, opts: LoadOptions = {}): IRGraph {
  return new Loader(opts.files ?? diskFiles, graphRoots(path, opts)).load(resolve(path), []);
}

/** Same as loadGraph for a graph already parsed (its `call`s resolve relative to `file`). */
export function loadGraphJson(json: unknown, file: string, opts: LoadOptions = {}): IRGraph {
  return new Loader(opts.files ?? diskFiles, graphRoots(file, opts)).fromJson(json, resolve(file), []);
}

interface RawNode {
  id: string;
  op: string;
  in?: (string | number)[] | Record<string, string | number>;
  attrs?: Attrs;
  graph?: string;
  params?: Record<string, string>;
}

interface RawGraph {
  graph: string;
  inputs?: Record<string, { dtype?: DType; shape: Dim[] }>;
  params?: Record<string, { shape: number[]; init?: string | Record<string, Record<string, number>> }>;
  nodes: RawNode[];
  outputs: Record<string, string>;
}

/** The attribute a pointer below `<node>/attrs` falls in. */
function attrName(pointer: string, attrsPointer: string): string {
  const tok = pointer.slice(attrsPointer.length + 1).split('/')[0] ?? '';
  return tok.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** Names for an "expected" line, shortened when there are many. */
function listNames(names: string[], max = 12): string {
  return names.length > max ? `${names.slice(0, max).join(', ')}, ... (${names.length} in all)` : names.join(', ');
}

/**
 * Checks what JSON Schema cannot see: nesting deep enough to exhaust the stack of later recursive
 * walks (graph documents are shallow), and numbers too large for a double (JSON.parse makes them
 * Infinity, which would then pass as a size).
 */
const MAX_DEPTH = 64;
function checkDocument(json: unknown, file: string): void {
  const todo: [unknown, string, number][] = [[json, '', 0]];
  while (todo.length > 0) {
    const [v, ptr, d] = todo.pop()!;
    if (typeof v === 'number' && !Number.isFinite(v))
      throw new LoomError({ code: 'E_SCHEMA', message: 'number too large', file, pointer: ptr || '/', expected: 'a finite number (at most about 1.8e308)', found: String(v) });
    if (v === null || typeof v !== 'object') continue;
    if (d >= MAX_DEPTH)
      throw new LoomError({ code: 'E_SCHEMA', message: `the document nests deeper than ${MAX_DEPTH} levels`, file, pointer: ptr || '/', expected: `at most ${MAX_DEPTH} levels of arrays and objects` });
    for (const [k, x] of Object.entries(v)) todo.push([x, joinPointer(ptr, k), d + 1]);
  }
}

export { suggest } from './schema.ts';

const MAX_CYCLE_SHOWN = 20;

type RawInit = string | Record<string, Record<string, number>> | undefined;

function parseInit(init: RawInit): ParamInit {
  if (init === undefined) return { kind: 'glorot_uniform', args: {} };
  if (typeof init === 'string') return { kind: init, args: {} };
  const [kind, args] = Object.entries(init)[0]!;
  return { kind, args: { ...args } };
}

/**
 * Most nodes a graph may have once every call is inlined. Each call copies its callee, so a few
 * small files that call the next one twice multiply into millions of nodes, which the passes would
 * spend many minutes and gigabytes on. The library's graphs inline to a few hundred nodes; 250,000
 * leaves room for generated graphs (a 100k-node chain compiles in under a minute in about 0.5 GB)
 * while keeping any graph that checks within a few minutes and gigabytes of compilation.
 */
export const MAX_INLINED_NODES = 250_000;

/**
 * Deepest chain of calls. Loading, inference and inlining walk a call chain recursively; the
 * library nests a few files deep, and 100 stays far from the stack's limit.
 */
export const MAX_CALL_DEPTH = 100;

class Loader {
  private readonly cache = new Map<string, IRGraph>();
  /** Node count of each loaded graph with its calls inlined, computed from its callees' counts. */
  private readonly inlined = new Map<IRGraph, number>();
  constructor(
    private readonly files: FileSource,
    private readonly roots: readonly string[],
  ) {}

  load(path: string, stack: string[], missing?: () => LoomError): IRGraph {
    const cached = this.cache.get(path);
    if (cached) return cached;
    const text = this.files.read(path);
    if (text === undefined)
      throw missing?.() ?? new LoomError({ code: 'E_IO', message: `cannot read graph file ${displayPath(path)}: no such file`, file: displayPath(path) });
    const g = this.fromJson(parseJsonText(text, path), path, stack);
    this.cache.set(path, g);
    return g;
  }

  fromJson(json: unknown, path: string, stack: string[]): IRGraph {
    const file = displayPath(path);
    assertDocumentKind(json, path, 'graph', ['graph']);
    checkDocument(json, file);
    assertValid(schemaValidator('graph.schema.json'), json, file, '', 'graph');
    return this.build(json as RawGraph, path, file, [...stack, path]);
  }

  private build(raw: RawGraph, path: string, file: string, stack: string[]): IRGraph {
    const loc = (pointer: string): SourceLoc => ({ file, pointer });
    const defined = new Map<string, string>(); // name -> pointer of definition
    const define = (name: string, pointer: string, node?: string) => {
      const prev = defined.get(name);
      if (prev !== undefined)
        throw new LoomError({ code: 'E_DUPLICATE', message: `"${name}" is defined twice`, file, pointer, node, expected: 'unique names across inputs, params and node ids', found: `first definition at #${prev}` });
      defined.set(name, pointer);
    };

    const inputs: IRInput[] = [];
    for (const [name, spec] of Object.entries(raw.inputs ?? {})) {
      const pointer = joinPointer('/inputs', name);
      define(name, pointer);
      const shape = spec.shape.map((d, k) => located(() => canonDim(d), loc(joinPointer(pointer, 'shape', k))));
      inputs.push({ name, type: { dtype: spec.dtype ?? 'float32', shape }, source: loc(pointer) });
      checkSize(spec.shape, loc(joinPointer(pointer, 'shape')), undefined);
    }
    const params: IRParam[] = [];
    for (const [name, spec] of Object.entries(raw.params ?? {})) {
      const pointer = joinPointer('/params', name);
      define(name, pointer);
      checkSize(spec.shape, loc(joinPointer(pointer, 'shape')), undefined);
      params.push({ name, type: { dtype: 'float32', shape: [...spec.shape] }, init: parseInit(spec.init), source: loc(pointer) });
    }
    raw.nodes.forEach((n, i) => define(n.id, `/nodes/${i}/id`, n.id));

    // Values produced by multi-output nodes are resolved after their node is built.
    const multiOutputs = new Map<string, Set<string>>();
    const nodes: IRNode[] = [];
    const literalNodes: IRNode[] = [];

    raw.nodes.forEach((rn, i) => {
      const base = `/nodes/${i}`;
      const err = (code: LoomError['info']['code'], message: string, pointer: string, more: Partial<LoomError['info']> = {}) =>
        new LoomError({ code, message, file, pointer, node: rn.id, ...more });
      // Arity errors point at "in", or at the node when it has none.
      const inPtr = rn.in === undefined ? base : joinPointer(base, 'in');
      const literal = (v: number, k: string | number): string => {
        const id = `${rn.id}:${k}`;
        literalNodes.push({ id, op: 'const', inputs: [], attrs: { value: v }, source: loc(joinPointer(base, 'in', k)) });
        return id;
      };

      if (rn.op === 'call' || rn.op === 'scan') {
        const what = rn.op === 'call' ? 'a call' : 'a scan';
        if (rn.graph === undefined)
          throw err('E_ATTR', `${what} node needs "graph": the path of the ${rn.op === 'call' ? 'graph file to call' : 'body graph file'}`, base, { expected: '"graph": "relative/path.graph.json"' });
        if (rn.in !== undefined && Array.isArray(rn.in))
          throw err('E_SCHEMA', `${what} binds the ${rn.op === 'call' ? 'callee' : 'body'} inputs by name`, joinPointer(base, 'in'), { expected: `an object {${rn.op === 'call' ? 'calleeInput' : 'bodyInput'}: value}`, found: 'an array' });
        const target = resolve(dirname(path), rn.graph);
        if (stack.includes(target)) {
          const chain = [...stack.slice(stack.indexOf(target)), target].map(displayPath).join(' -> ');
          throw err('E_IMPORT', `recursive call: ${chain}`, joinPointer(base, 'graph'), { hint: 'a graph cannot call itself, directly or indirectly' });
        }
        if (stack.length >= MAX_CALL_DEPTH)
          throw err('E_SIZE', `calls nest more than ${MAX_CALL_DEPTH} graph files deep`, joinPointer(base, 'graph'), {
            expected: `at most ${MAX_CALL_DEPTH} graph files from the top graph down`,
            found: `${stack.length + 1}: ${[...stack.slice(0, 2), '...', ...stack.slice(-2), target].map(displayPath).join(' -> ')}`,
            hint: 'flatten the chain of calls',
          });
        assertAllowed(target, this.roots, { what: 'called graph', written: rn.graph, file, pointer: joinPointer(base, 'graph'), node: rn.id }, (p) => (this.files.realpath ?? resolve)(p));
        const callee = this.load(target, stack, () => err('E_IMPORT', `called graph file not found: ${displayPath(target)}`, joinPointer(base, 'graph'), { found: rn.graph }));
        const bound = (rn.in ?? {}) as Record<string, string | number>;
        // Unknown names first: a misspelt binding gets a suggestion instead of a "missing input" error.
        for (const k of Object.keys(bound))
          if (!callee.inputs.some((ci) => ci.name === k)) {
            const s = suggest(k, callee.inputs.map((x) => x.name));
            throw err('E_ARITY', `${rn.op} of ${callee.name} binds "${k}", which is not one of its inputs`, joinPointer(base, 'in', k), {
              expected: callee.inputs.map((x) => x.name).join(', ') || 'no inputs',
              hint: s ? `did you mean "${s}"?` : undefined,
            });
          }
        const bindings: Record<string, string> = {};
        for (const ci of callee.inputs) {
          // Own properties only: a callee input named like an Object.prototype member ("constructor") must not bind to it.
          const v = Object.hasOwn(bound, ci.name) ? bound[ci.name] : undefined;
          if (v === undefined)
            throw err('E_ARITY', `${rn.op} of ${callee.name} does not bind its input "${ci.name}"`, inPtr, {
              expected: `"in": {${callee.inputs.map((x) => `"${x.name}": ...`).join(', ')}}`,
              found: `bound: ${Object.keys(bound).join(', ') || 'nothing'}`,
            });
          setOwn(bindings, ci.name, typeof v === 'number' ? literal(v, ci.name) : v);
        }
        const paramMap = new Map<string, string>();
        for (const [k, v] of Object.entries(rn.params ?? {}))
          if (!callee.params.some((p) => p.name === k)) {
            const s = suggest(k, callee.params.map((p) => p.name));
            throw err('E_ATTR', `${rn.op} of ${callee.name} binds param "${k}", which it does not have`, joinPointer(base, 'params', k), {
              expected: callee.params.map((p) => p.name).join(', ') || 'no params',
              hint: s ? `did you mean "${s}"?` : undefined,
            });
          } else paramMap.set(k, v);
        for (const p of callee.params) {
          if (paramMap.has(p.name)) continue;
          const hoisted = `${rn.id}/${p.name}`;
          define(hoisted, joinPointer(base, 'graph'), rn.id);
          params.push({ ...p, name: hoisted, source: p.source });
          paramMap.set(p.name, hoisted);
        }
        multiOutputs.set(rn.id, new Set(Object.keys(callee.outputs)));
        const scanAttrs = rn.op === 'scan' ? checkScanAttrs(rn.attrs, callee, (m, ptr, more) => err('E_ATTR', m, ptr, more), base) : {};
        nodes.push({
          id: rn.id,
          op: rn.op,
          inputs: [...Object.values(bindings), ...callee.params.map((p) => paramMap.get(p.name)!)],
          attrs: { graph: rn.graph, ...scanAttrs },
          callee,
          bindings,
          source: loc(base),
        });
        return;
      }

      if (rn.graph !== undefined) throw err('E_ATTR', `"graph" is only allowed on call and scan nodes`, joinPointer(base, 'graph'), { hint: 'to call a graph file, set "op": "call"; otherwise remove "graph"' });
      if (rn.params !== undefined) throw err('E_ATTR', `"params" is only allowed on call nodes`, joinPointer(base, 'params'), { hint: 'to call a graph file, set "op": "call"; otherwise remove "params"' });
      if (rn.in !== undefined && !Array.isArray(rn.in))
        throw err('E_SCHEMA', `${rn.op} takes its inputs as a list`, joinPointer(base, 'in'), { expected: 'an array of values', found: 'an object' });
      const ins = ((rn.in ?? []) as (string | number)[]).map((v, k) => (typeof v === 'number' ? literal(v, k) : v));
      const attrs = rn.attrs ?? {};

      if (rn.op === 'grad') {
        const wrt = attrs.wrt;
        if (!Array.isArray(wrt) || wrt.length === 0 || !wrt.every((w) => typeof w === 'string'))
          throw err(
            'E_ATTR',
            wrt === undefined ? 'grad needs the attribute "wrt"' : 'grad: attribute "wrt" must be a non-empty list of names',
            wrt === undefined ? (rn.attrs === undefined ? base : joinPointer(base, 'attrs')) : joinPointer(base, 'attrs', 'wrt'),
            { expected: '"wrt": a non-empty list of the params or inputs to differentiate with respect to, e.g. ["w", "b"]', found: wrt === undefined ? undefined : JSON.stringify(wrt) },
          );
        for (const k of Object.keys(attrs)) if (k !== 'wrt') throw err('E_ATTR', `unknown attribute "${k}" for grad`, joinPointer(base, 'attrs', k), { expected: 'wrt' });
        if (ins.length !== 1) throw err('E_ARITY', 'grad takes exactly one input: the scalar to differentiate', inPtr, { expected: '1 input', found: `${ins.length}` });
        multiOutputs.set(rn.id, new Set(wrt as string[]));
        nodes.push({ id: rn.id, op: 'grad', inputs: ins, attrs: { wrt: wrt as AttrValue[] }, source: loc(base) });
        return;
      }

      const def = getOp(rn.op);
      if (!def) {
        const s = suggest(rn.op, [...allOps().map((o) => o.name), ...STRUCTURAL_OPS]);
        throw err('E_UNKNOWN_OP', `unknown op "${rn.op}"`, joinPointer(base, 'op'), { hint: s ? `did you mean "${s}"? (\`loom ops\` lists all ops)` : '`loom ops` lists all ops' });
      }
      for (const k of Object.keys(attrs))
        if (!Object.hasOwn(def.attrs.properties, k)) {
          const s = suggest(k, Object.keys(def.attrs.properties));
          throw err('E_ATTR', `unknown attribute "${k}" for ${def.name}`, joinPointer(base, 'attrs', k), {
            expected: Object.keys(def.attrs.properties).join(', ') || 'no attributes',
            hint: s ? `did you mean "${s}"?` : undefined,
          });
        }
      try {
        assertValid(attrValidator(def.attrs), attrs, file, joinPointer(base, 'attrs'), `${def.name} attributes`);
      } catch (e) {
        if (!(e instanceof LoomError)) throw e;
        // Attribute problems are E_ATTR and name the node, like the checks above.
        const missing = /^missing required property "(.*)"$/.exec(e.info.message)?.[1];
        const ptr = rn.attrs === undefined ? base : e.info.pointer!;
        throw err('E_ATTR', missing !== undefined ? `${def.name} needs the attribute "${missing}"` : `${def.name}: attribute "${attrName(e.info.pointer!, joinPointer(base, 'attrs'))}": ${e.info.message}`, ptr, {
          expected: missing !== undefined ? `"${missing}": ${describeSchema(def.attrs.properties[missing] ?? {})}` : e.info.expected,
          found: e.info.found,
          hint: e.info.hint,
        });
      }
      const min = def.variadic ? (def.minInputs ?? 1) : def.inputs.length;
      if (def.variadic ? ins.length < min : ins.length !== min)
        throw err('E_ARITY', `${def.name} takes ${def.variadic ? `at least ${min}` : min} input${min === 1 ? '' : 's'}`, inPtr, {
          expected: def.variadic ? `>= ${min} (${def.inputs.join(', ')}...)` : `${min} (${def.inputs.join(', ') || 'none'})`,
          found: `${ins.length}`,
        });
      nodes.push({ id: rn.id, op: rn.op, inputs: ins, attrs, source: loc(base) });
    });

    // Resolve references and order the nodes.
    const producers = new Set<string>([...inputs.map((x) => x.name), ...params.map((x) => x.name)]);
    const nodeIds = new Set(nodes.map((n) => n.id));
    const known = [...defined.keys()];
    const resolveRef = (ref: string, pointer: string, node?: string): string | undefined => {
      const dot = ref.indexOf('.');
      if (dot >= 0) {
        const owner = ref.slice(0, dot);
        const out = ref.slice(dot + 1);
        const outs = multiOutputs.get(owner);
        if (!outs) {
          const single = nodeIds.has(owner) || producers.has(owner);
          const why = single ? `"${owner}" has a single output; refer to it as "${owner}"` : `no node "${owner}"`;
          const s = single ? undefined : suggest(owner, [...multiOutputs.keys()]);
          throw new LoomError({
            code: 'E_DANGLING',
            message: `reference "${ref}" does not resolve: ${why}`,
            file,
            pointer,
            node,
            expected: single ? JSON.stringify(owner) : 'a node with several outputs (a call or a grad), as "node.output"',
            hint: s ? `did you mean "${s}.${out}"?` : undefined,
          });
        }
        if (!outs.has(out))
          throw new LoomError({ code: 'E_DANGLING', message: `node "${owner}" has no output "${out}"`, file, pointer, node, expected: [...outs].join(', ') });
        return owner;
      }
      if (multiOutputs.has(ref))
        throw new LoomError({ code: 'E_DANGLING', message: `node "${ref}" has several outputs; pick one as "${ref}.<output>"`, file, pointer, node, expected: [...multiOutputs.get(ref)!].map((o) => `${ref}.${o}`).join(', ') });
      if (nodeIds.has(ref)) return ref;
      if (producers.has(ref)) return undefined;
      const s = suggest(ref, known);
      throw new LoomError({ code: 'E_DANGLING', message: `unknown value "${ref}"`, file, pointer, node, expected: 'the name of an input, a param or a node', hint: s ? `did you mean "${s}"?` : undefined });
    };

    // Producers of each node, each once, in the order its inputs first name them.
    const preds = new Map<string, Set<string>>(nodes.map((n) => [n.id, new Set()]));
    for (const n of nodes) {
      const inPointer = (k: number) => {
        if (n.op === 'call' || n.op === 'scan') {
          const names = Object.keys(n.bindings!);
          return k < names.length ? joinPointer(n.source!.pointer, 'in', names[k]!) : joinPointer(n.source!.pointer, 'params');
        }
        return joinPointer(n.source!.pointer, 'in', k);
      };
      n.inputs.forEach((ref, k) => {
        if (ref.includes(':')) return; // literal const
        const owner = resolveRef(ref, inPointer(k), n.id);
        if (owner !== undefined) preds.get(n.id)!.add(owner);
      });
      if (n.op === 'grad')
        (n.attrs.wrt as string[]).forEach((w, k) => {
          if (!producers.has(w) || !(params.some((p) => p.name === w) || inputs.some((x) => x.name === w))) {
            const owner = w.split('.')[0]!;
            const s = suggest(w, producers);
            throw new LoomError({
              code: 'E_DANGLING',
              message: `grad can only differentiate with respect to params and inputs; "${w}" is ${nodeIds.has(owner) ? 'a node output' : 'neither'}`,
              file,
              pointer: joinPointer(n.source!.pointer, 'attrs', 'wrt', k),
              node: n.id,
              expected: listNames([...producers]) || 'a param or input name',
              found: JSON.stringify(w),
              hint: nodeIds.has(owner)
                ? 'to differentiate with respect to an intermediate value, make it an input of a called graph and differentiate there'
                : s
                  ? `did you mean "${s}"?`
                  : undefined,
            });
          }
        });
    }
    const outputSources: Record<string, SourceLoc> = {};
    for (const [name, ref] of Object.entries(raw.outputs)) {
      const pointer = joinPointer('/outputs', name);
      resolveRef(ref, pointer);
      setOwn(outputSources, name, loc(pointer));
    }
    const predList = new Map([...preds].map(([id, ps]) => [id, [...ps]]));
    const sorted = topoOrder(nodes.map((n) => n.id), (id) => predList.get(id)!);
    if (sorted.cycle) {
      const cyc = sorted.cycle;
      const first = nodes.find((n) => n.id === cyc[0])!;
      // A long cycle is named by its ends, so the message stays readable.
      const shown = cyc.length <= MAX_CYCLE_SHOWN ? [...cyc, cyc[0]] : [...cyc.slice(0, MAX_CYCLE_SHOWN / 2), `... (${cyc.length - MAX_CYCLE_SHOWN} more of ${cyc.length} nodes)`, ...cyc.slice(-MAX_CYCLE_SHOWN / 2), cyc[0]];
      throw new LoomError({
        code: 'E_CYCLE',
        message: `the graph has a cycle: ${shown.join(' -> ')}`,
        file,
        pointer: first.source!.pointer,
        node: first.id,
        hint: 'dataflow graphs must be acyclic; use a scan for recurrences',
      });
    }
    const order = sorted.order;
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const ordered = [...literalNodes, ...order.map((id: string) => byId.get(id)!)];
    const total = this.checkInlinedSize(nodes, literalNodes.length, file, raw.graph);
    const g: IRGraph = { name: raw.graph, file, inputs, params, nodes: ordered, outputs: { ...raw.outputs }, outputSources };
    const typed = inferGraph(g);
    this.inlined.set(typed, total);
    return typed;
  }

  /** Counts the nodes inlining would produce (before doing it) and rejects graphs over MAX_INLINED_NODES. */
  private checkInlinedSize(nodes: IRNode[], literals: number, file: string, name: string): number {
    // A scan's body is compiled on its own, once: it adds one node however long the loop.
    const own = (n: IRNode): number => (n.op === 'call' ? this.inlined.get(n.callee!)! : 1);
    const total = nodes.reduce((sum, n) => sum + own(n), literals);
    if (total <= MAX_INLINED_NODES) return total;
    // Blame the call that takes the running count over the bound.
    let sum = literals;
    const at = nodes.find((n) => (sum += own(n)) > MAX_INLINED_NODES && n.op === 'call') ?? nodes.find((n) => n.op === 'call');
    throw new LoomError({
      code: 'E_SIZE',
      message: `graph ${name} has ${total} nodes once its calls are inlined${at ? `; this call adds ${own(at)} of them` : ''}`,
      file,
      pointer: at ? joinPointer(at.source!.pointer, 'graph') : '/nodes',
      node: at?.id,
      expected: `at most ${MAX_INLINED_NODES} nodes after inlining`,
      found: String(total),
      hint: 'every call copies the called graph; a graph that calls another several times, which in turn calls another several times, grows exponentially — call a graph once and reuse its outputs',
    });
  }
}

const SCAN_ATTRS = ['xs', 'length', 'reverse'];

/**
 * A scan's attributes: `xs` (body inputs sliced along a leading axis), `length` (a count or a dim
 * name; optional when there are xs) and `reverse`. The types are checked by inference.
 */
function checkScanAttrs(
  raw: Attrs | undefined,
  body: IRGraph,
  fail: (message: string, pointer: string, more?: Partial<LoomError['info']>) => LoomError,
  base: string,
): Attrs {
  const attrs = raw ?? {};
  const at = (...k: (string | number)[]) => joinPointer(base, 'attrs', ...k);
  for (const k of Object.keys(attrs))
    if (!SCAN_ATTRS.includes(k)) {
      const s = suggest(k, SCAN_ATTRS);
      throw fail(`unknown attribute "${k}" for scan`, at(k), { expected: SCAN_ATTRS.join(', '), hint: s ? `did you mean "${s}"?` : undefined });
    }
  const out: Attrs = {};
  const xs = attrs.xs ?? [];
  if (!Array.isArray(xs) || !xs.every((x) => typeof x === 'string'))
    throw fail('scan: attribute "xs" must be a list of body input names', at('xs'), { expected: '"xs": ["name", ...]', found: JSON.stringify(xs) });
  const names = body.inputs.map((i) => i.name);
  xs.forEach((x, k) => {
    if (!names.includes(x as string)) {
      const s = suggest(x as string, names);
      throw fail(`scan: "xs" names "${x}", which is not an input of the body ${body.name}`, at('xs', k), { expected: names.join(', ') || 'no inputs', hint: s ? `did you mean "${s}"?` : undefined });
    }
    if (Object.hasOwn(body.outputs, x as string))
      throw fail(`scan: "${x}" is both a carry (the body outputs it) and a sliced input in "xs"`, at('xs', k), { hint: `rename the body output "${x}", or remove it from "xs"` });
  });
  out.xs = xs;
  if (attrs.length !== undefined) {
    const len = attrs.length;
    const ok = (typeof len === 'number' && Number.isInteger(len) && len >= 0) || (typeof len === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(len));
    if (!ok) throw fail('scan: attribute "length" must be a non-negative integer or a dim name', at('length'), { expected: 'e.g. 128 or "T"', found: JSON.stringify(len) });
    out.length = len;
  } else if (xs.length === 0)
    throw fail('scan needs "length" when it has no "xs"', raw === undefined ? base : at(), { expected: '"attrs": {"length": 128} (a count or a dim name)' });
  if (attrs.reverse !== undefined && typeof attrs.reverse !== 'boolean')
    throw fail('scan: attribute "reverse" must be true or false', at('reverse'), { found: JSON.stringify(attrs.reverse) });
  out.reverse = attrs.reverse === true;
  return out;
}

/** Runs `f`, filling in the location of a LoomError that has none (such as one from compiler/dims). */
function located<T>(f: () => T, source: SourceLoc, node?: string): T {
  try {
    return f();
  } catch (e) {
    throw e instanceof LoomError ? e.at({ ...source, node }) : e;
  }
}

function checkSize(shape: Dim[], source: SourceLoc, node: string | undefined): void {
  const n = minElements(shape);
  if (n > MAX_ELEMENTS)
    throw new LoomError({
      code: 'E_SIZE',
      message: `tensor of shape [${shape.join(', ')}] has ${isStaticShape(shape) ? '' : 'at least '}${n.toExponential(2)} elements, more than any backend can allocate`,
      ...source,
      node,
      expected: `at most ${MAX_ELEMENTS} elements`,
      found: String(n),
    });
}
export { checkSize };
