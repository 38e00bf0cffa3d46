/**
 * Fuzzing the frontend: thousands of seeded random mutations of valid graphs (structure and raw
 * JSON text). Every mutant must either load or fail with a LoomError whose pointer exists in the
 * document it names; any other exception (TypeError, RangeError, an internal Error) is a bug.
 * The seed is fixed, so a failure reproduces; FUZZ_ITERS=N runs a longer campaign.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadGraph, memoryFiles } from '../../../compiler/frontend/load.ts';
import { LoomError } from '../../../compiler/errors.ts';
import { allOps, getOp } from '../../../compiler/ops/index.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..', '..');
const FIX = join(ROOT, 'test', 'fixtures', 'frontend');
const readJson = (p: string): Json => JSON.parse(readFileSync(p, 'utf8')) as Json;

const CODES = new Set([
  'E_IO', 'E_JSON', 'E_SCHEMA', 'E_UNKNOWN_OP', 'E_ATTR', 'E_ARITY', 'E_DANGLING', 'E_DUPLICATE', 'E_CYCLE',
  'E_IMPORT', 'E_SHAPE', 'E_DTYPE', 'E_RANK', 'E_AXIS', 'E_UNBOUND_DIM', 'E_SIZE',
]);

/** mulberry32: a small, fast, seedable PRNG, so every campaign is reproducible. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T,>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rng = ReturnType<typeof rng>;

// ---------------------------------------------------------------------------- seeds

interface Seed {
  name: string;
  /** Virtual path -> document; the first is the one loaded. */
  docs: Record<string, Json>;
}

const V = '/virtual/fuzz';
const SEEDS: Seed[] = [
  { name: 'affine', docs: { [`${V}/affine.graph.json`]: readJson(join(ROOT, 'graphs', 'examples', 'affine.graph.json')) } },
  { name: 'policy-loss', docs: { [`${V}/policy-loss.graph.json`]: readJson(join(FIX, 'policy-loss.graph.json')) } },
  { name: 'shapes', docs: { [`${V}/shapes.graph.json`]: readJson(join(FIX, 'shapes.graph.json')) } },
  {
    name: 'caller',
    docs: { [`${V}/caller.graph.json`]: readJson(join(FIX, 'caller.graph.json')), [`${V}/lin.graph.json`]: readJson(join(FIX, 'lin.graph.json')) },
  },
];

// ---------------------------------------------------------------------------- mutations

function paths(v: Json, base: Path = [], out: Path[] = []): Path[] {
  out.push(base);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...base, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...base, k], out);
  return out;
}

function get(v: Json, p: Path): Json | undefined {
  let cur: Json | undefined = v;
  for (const k of p) {
    // Own properties only: walking into "__proto__" would let the mutator pollute Object.prototype.
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return undefined;
    cur = (cur as Record<string | number, Json>)[k];
  }
  return cur;
}

function set(root: Json, p: Path, value: Json | undefined): Json {
  if (p.length === 0) return value === undefined ? null : value;
  const parent = get(root, p.slice(0, -1));
  const k = p[p.length - 1]!;
  if (Array.isArray(parent) && typeof k === 'number') {
    if (value === undefined) parent.splice(k, 1);
    else parent[k] = value;
  } else if (parent !== null && typeof parent === 'object' && !Array.isArray(parent)) {
    if (value === undefined) delete parent[k as string];
    else Object.defineProperty(parent, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return root;
}

function strings(v: Json): string[] {
  const out = new Set<string>();
  for (const p of paths(v)) {
    const x = get(v, p);
    if (typeof x === 'string') out.add(x);
    const k = p[p.length - 1];
    if (typeof k === 'string') out.add(k);
  }
  return [...out];
}

const OP_NAMES = [...allOps().map((o) => o.name), 'call', 'grad'];
const JUNK = [
  '', ' ', 'a.b', 'x.y.z', '1a', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '../x',
  'lin.graph.json', 'missing.graph.json', 'caller.graph.json', 'float32', 'int32', 'bool', 'float64', 'zeros',
  'glorot_uniform', 'orthogonal', 'é', 'a/b', 'w.out', 'g.w', 'l1/w', 'l1.y', 'B', 'N', 'T', 'X', 'B*T', '2*B', '0*B',
  'T*B*T', '3', '-1', '1e400', 'B*', '*B',
];
const NUMBERS = [0, 1, -1, 2, 3, 7, -2, 0.5, -0.5, 1e6, 1e12, 2 ** 31, -(2 ** 31), 1e-9, Number.MAX_SAFE_INTEGER, 1e300];

function randomValue(r: Rng, names: string[], depth = 0): Json {
  switch (r.int(depth > 1 ? 4 : 7)) {
    case 0:
      return r.pick(NUMBERS);
    case 1:
      return r.pick(r.next() < 0.5 ? names : JUNK);
    case 2:
      return r.pick([true, false, null]);
    case 3:
      return r.pick(OP_NAMES);
    case 4:
      return Array.from({ length: r.int(4) }, () => randomValue(r, names, depth + 1));
    case 5: {
      const o: Record<string, Json> = {};
      for (let i = r.int(3); i > 0; i--) o[r.pick(names)] = randomValue(r, names, depth + 1);
      return o;
    }
    default:
      return r.pick(['B', 'N', 'T', 'B*T', 2, 3, 1, 0]);
  }
}

/** A random attribute object shaped like the op's schema (right keys, random values). */
function randomAttrs(r: Rng, op: string, names: string[]): Json {
  const def = getOp(op);
  const keys = def ? Object.keys(def.attrs.properties) : ['wrt'];
  const o: Record<string, Json> = {};
  for (const k of keys)
    if (r.next() < 0.7)
      o[k] = r.pick<Json>([
        r.int(7) - 3,
        [r.int(5) - 2],
        [r.int(4), r.int(4) - 1],
        r.pick(['float32', 'int32', 'bool']),
        ['B', 2],
        ['N', -1],
        [r.pick(names)],
        r.next() < 0.5,
        [[1, 2], [3, 4]],
        [],
        randomValue(r, names, 1),
      ]);
  return o;
}

function mutate(r: Rng, doc: Json): Json {
  const all = paths(doc);
  const names = strings(doc);
  const p = r.pick(all);
  const nodes = get(doc, ['nodes']);
  const nodeList = Array.isArray(nodes) ? nodes : [];
  switch (r.int(13)) {
    case 0: // delete a key or an element
      return set(doc, p, undefined);
    case 1: // replace by a value of any type
      return set(doc, p, randomValue(r, names));
    case 2: {
      // rename a key
      const parentPath = p.slice(0, -1);
      const parent = get(doc, parentPath);
      const k = p[p.length - 1];
      if (typeof k !== 'string' || parent === null || typeof parent !== 'object' || Array.isArray(parent)) return doc;
      const v = parent[k]!;
      delete parent[k];
      return set(doc, [...parentPath, r.pick(r.next() < 0.5 ? names : JUNK)], v);
    }
    case 3: {
      // duplicate: a copy under another key, or a second copy in an array
      const v = get(doc, p);
      const parentPath = p.slice(0, -1);
      const parent = get(doc, parentPath);
      if (Array.isArray(parent)) parent.splice(r.int(parent.length + 1), 0, structuredClone(v as Json));
      else if (parent !== null && typeof parent === 'object') set(doc, [...parentPath, r.pick(names)], structuredClone(v as Json));
      return doc;
    }
    case 4: {
      // swap the values of two locations that do not contain each other
      const q = r.pick(all);
      const overlap = (a: Path, b: Path) => a.length <= b.length && a.every((x, i) => x === b[i]);
      if (overlap(p, q) || overlap(q, p)) return doc;
      const a = get(doc, p);
      const b = get(doc, q);
      set(doc, p, structuredClone(b as Json));
      return set(doc, q, structuredClone(a as Json));
    }
    case 5: {
      // truncate an array
      const arrays = all.filter((x) => Array.isArray(get(doc, x)));
      const ap = r.pick(arrays.length ? arrays : [p]);
      const a = get(doc, ap);
      if (Array.isArray(a)) a.length = r.int(a.length + 1);
      return doc;
    }
    case 6: {
      // insert a random value into an array
      const arrays = all.filter((x) => Array.isArray(get(doc, x)));
      const a = arrays.length ? get(doc, r.pick(arrays)) : undefined;
      if (Array.isArray(a)) a.splice(r.int(a.length + 1), 0, randomValue(r, names));
      return doc;
    }
    case 7: {
      // point a reference (any string) somewhere else
      const strs = all.filter((x) => typeof get(doc, x) === 'string');
      if (!strs.length) return doc;
      const target = r.pick(names);
      return set(doc, r.pick(strs), r.next() < 0.8 ? target : `${target}${r.pick(['.y', '.w', '.out', '/w', '.l1/w'])}`);
    }
    case 8: {
      // another op on the same inputs and attributes
      if (!nodeList.length) return doc;
      const n = r.pick(nodeList);
      if (n && typeof n === 'object' && !Array.isArray(n)) n.op = r.pick(OP_NAMES);
      return doc;
    }
    case 9: {
      // attributes shaped like the op's schema with random values
      if (!nodeList.length) return doc;
      const n = r.pick(nodeList);
      if (n && typeof n === 'object' && !Array.isArray(n)) n.attrs = randomAttrs(r, typeof n.op === 'string' ? n.op : 'add', names);
      return doc;
    }
    case 10: {
      // a random shape on an input or a param
      const shapes = all.filter((x) => x[x.length - 1] === 'shape' && Array.isArray(get(doc, x)));
      if (!shapes.length) return doc;
      const dims = Array.from({ length: r.int(4) }, () => r.pick<Json>(['B', 'N', 'T', 'B*T', 1, 2, 3, 4, 0, 1e5, 1e6]));
      return set(doc, r.pick(shapes), dims);
    }
    case 11: {
      // shuffle the node list (order must not matter)
      for (let i = nodeList.length - 1; i > 0; i--) {
        const j = r.int(i + 1);
        [nodeList[i], nodeList[j]] = [nodeList[j]!, nodeList[i]!];
      }
      return doc;
    }
    default: {
      // rewire one input of a node to another value of the graph
      if (!nodeList.length) return doc;
      const n = r.pick(nodeList);
      if (n && typeof n === 'object' && !Array.isArray(n) && Array.isArray(n.in) && n.in.length)
        n.in[r.int(n.in.length)] = r.next() < 0.9 ? r.pick(names) : r.pick(NUMBERS);
      return doc;
    }
  }
}

function corruptText(r: Rng, text: string): string {
  const at = r.int(text.length + 1);
  switch (r.int(6)) {
    case 0:
      return text.slice(0, at) + text.slice(at + 1 + r.int(20));
    case 1:
      return text.slice(0, at) + r.pick(['{', '}', '[', ']', ',', ':', '"', '\\', ' ', '0', 'a', '-', '.', 'e', '\n', '//', '\u0000', '\ufeff', 'é']) + text.slice(at);
    case 2:
      return text.slice(0, at);
    case 3: {
      const len = r.int(30);
      return text.slice(0, at) + text.slice(at, at + len) + text.slice(at);
    }
    case 4:
      return text.slice(0, at) + r.pick(['1e400', '-0', 'NaN', 'Infinity', 'true', 'null', '"x"', '[]', '{}', '""']) + text.slice(at + 1);
    default:
      return text.slice(0, at) + String.fromCharCode(r.int(128)) + text.slice(at + 1);
  }
}

// ---------------------------------------------------------------------------- the property

function resolvePointer(doc: Json, pointer: string): boolean {
  if (pointer === '' || pointer === '/') return true;
  let cur: Json | undefined = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const k = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return false;
    cur = (cur as Record<string, Json>)[k];
  }
  return true;
}

interface Outcome {
  loaded: number;
  codes: Map<string, number>;
  failures: string[];
}

/** Loads one mutant; records anything other than success or a well-formed LoomError. */
function check(docs: Record<string, Json | string>, out: Outcome, what: () => string): void {
  const main = Object.keys(docs)[0]!;
  const text = JSON.stringify(docs);
  try {
    loadGraph(main, { files: memoryFiles(docs as Record<string, string | object>) });
    out.loaded++;
  } catch (e) {
    if (!(e instanceof LoomError)) {
      out.failures.push(`${(e as Error)?.stack ?? String(e)}\n  mutant: ${what()}`);
      return;
    }
    const i = e.info;
    out.codes.set(i.code, (out.codes.get(i.code) ?? 0) + 1);
    const bad = (why: string): void => {
      out.failures.push(`${why}\n  error: ${e.message}\n  mutant: ${what()}`);
    };
    if (!CODES.has(i.code)) return bad('unexpected error code');
    if (!i.message || i.file === undefined) return bad('error without a message or a file');
    // Words a message shows only when it prints an internal value, unless the mutant itself contains them.
    const leak = /\bundefined\b|\[object Object\]|\bNaN\b/.exec(e.message);
    if (leak && !text.includes(leak[0])) return bad('message shows an internal value');
    const doc = docs[i.file];
    // Missing things are reported at the object that lacks them, so every pointer exists.
    if (doc !== undefined && typeof doc !== 'string' && i.pointer !== undefined && !resolvePointer(doc, i.pointer))
      return bad(`pointer ${i.pointer} does not exist in the document`);
  }
}

const ITERS = Number(process.env.FUZZ_ITERS ?? 4000);
const SEED = Number(process.env.FUZZ_SEED ?? 0);

describe('frontend fuzzing', () => {
  it('the seed graphs load', () => {
    for (const s of SEEDS) {
      const out: Outcome = { loaded: 0, codes: new Map(), failures: [] };
      check(structuredClone(s.docs), out, () => s.name);
      expect(out.failures).toEqual([]);
      expect(out.loaded, s.name).toBe(1);
    }
  });

  it('structural mutations load or raise a LoomError pointing into the document', () => {
    const r = rng(0x5eed + SEED);
    const out: Outcome = { loaded: 0, codes: new Map(), failures: [] };
    for (let it = 0; it < ITERS && out.failures.length < 5; it++) {
      const seed = SEEDS[it % SEEDS.length]!;
      const docs = structuredClone(seed.docs);
      const files = Object.keys(docs);
      // Mostly the loaded file; sometimes the callee it calls.
      const target = files.length > 1 && r.next() < 0.3 ? files[1 + r.int(files.length - 1)]! : files[0]!;
      let doc: Json = docs[target] as Json;
      for (let k = 1 + r.int(3); k > 0; k--) doc = mutate(r, doc);
      docs[target] = doc;
      check(docs, out, () => `${seed.name} (${target}): ${JSON.stringify(docs[target])}`);
      // A name like "__proto__" must never reach Object.prototype (ids are keys of plain objects in several places).
      for (const k in {}) {
        out.failures.push(`Object.prototype gained "${k}" from ${JSON.stringify(docs)}`);
        delete (Object.prototype as Record<string, unknown>)[k];
      }
    }
    expect(out.failures.slice(0, 3)).toEqual([]);
    // The campaign exercises many checks, not just the schema.
    expect(out.codes.size).toBeGreaterThanOrEqual(10);
    expect(out.loaded).toBeGreaterThan(0);
  });

  it('corrupted JSON text loads or raises a LoomError', () => {
    const r = rng(0xc0ffee + SEED);
    const out: Outcome = { loaded: 0, codes: new Map(), failures: [] };
    const n = Math.ceil(ITERS / 2);
    for (let it = 0; it < n && out.failures.length < 5; it++) {
      const seed = SEEDS[it % SEEDS.length]!;
      const docs: Record<string, Json | string> = structuredClone(seed.docs);
      const main = Object.keys(docs)[0]!;
      let text = JSON.stringify(docs[main], null, r.next() < 0.5 ? 2 : 0);
      for (let k = 1 + r.int(2); k > 0; k--) text = corruptText(r, text);
      docs[main] = text;
      check(docs, out, () => JSON.stringify(text));
    }
    expect(out.failures.slice(0, 3)).toEqual([]);
    expect(out.codes.get('E_JSON') ?? 0).toBeGreaterThan(n / 4);
  });
});
