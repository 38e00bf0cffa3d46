/**
 * Bad input, one case at a time: every malformed graph must fail with the specific LoomError a
 * user can act on: its code, the file and JSON pointer, the node, and what was expected / found.
 * Cases for ops that may not be registered yet are skipped (checked with getOp).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadGraph, loadGraphJson, memoryFiles } from '../../../compiler/frontend/load.ts';
import { LoomError, type ErrorCode } from '../../../compiler/errors.ts';
import { getOp } from '../../../compiler/ops/index.ts';
import { loomErr } from '../../helpers/loom-error.ts';

const FIX = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'frontend', 'bad');
const DIR = '/virtual/malformed';
const MAIN = `${DIR}/main.graph.json`;

interface NodeDoc {
  id?: unknown;
  op?: unknown;
  in?: unknown;
  attrs?: Record<string, unknown>;
  graph?: unknown;
  params?: Record<string, unknown>;
  [k: string]: unknown;
}
interface GraphDoc {
  graph?: unknown;
  inputs: Record<string, Record<string, unknown>>;
  params: Record<string, Record<string, unknown>>;
  nodes: (NodeDoc | null)[];
  outputs: Record<string, unknown>;
  [k: string]: unknown;
}

/** x[B,3] · w[3,2] + b[2]; i and flag are an int32 and a bool input for dtype cases. */
function base(): GraphDoc {
  return {
    graph: 'm',
    inputs: { x: { shape: ['B', 3] }, i: { dtype: 'int32', shape: ['B'] }, flag: { dtype: 'bool', shape: ['B'] } },
    params: { w: { shape: [3, 2] }, b: { shape: [2] } },
    nodes: [
      { id: 'h', op: 'matmul', in: ['x', 'w'] },
      { id: 'y', op: 'add', in: ['h', 'b'] },
    ],
    outputs: { y: 'y' },
  };
}

/** The callee of the call cases: y = x · w + b over a batch "B". */
const LIN = {
  graph: 'lin',
  inputs: { x: { shape: ['B', 3] } },
  params: { w: { shape: [3, 2] }, b: { shape: [2] } },
  nodes: [
    { id: 'h', op: 'matmul', in: ['x', 'w'] },
    { id: 'y', op: 'add', in: ['h', 'b'] },
  ],
  outputs: { y: 'y' },
};

function with_(edit: (g: GraphDoc) => void): GraphDoc {
  const g = base();
  edit(g);
  return g;
}

/** A graph with one call of lin.graph.json as node 0, edited by `edit`. */
function caller(edit: (call: NodeDoc, g: GraphDoc) => void = () => {}): GraphDoc {
  const g: GraphDoc = {
    graph: 'caller',
    inputs: { obs: { shape: ['N', 3] }, wide: { shape: ['N', 4] }, ints: { dtype: 'int32', shape: ['N', 3] } },
    params: { v: { shape: [2] } },
    nodes: [{ id: 'c', op: 'call', graph: 'lin.graph.json', in: { x: 'obs' } }],
    outputs: { y: 'c.y' },
  };
  edit(g.nodes[0]!, g);
  return g;
}

/** Loads a graph object as MAIN, with extra in-memory files (paths relative to DIR). */
function errOf(doc: unknown, files: Record<string, object | string> = {}): LoomError {
  const abs = Object.fromEntries(Object.entries(files).map(([k, v]) => [`${DIR}/${k}`, v]));
  return loomErr(() => loadGraphJson(doc, MAIN, { files: memoryFiles(abs) }));
}

/** Loads MAIN from raw text. */
function errOfText(text: string, files: Record<string, object | string> = {}): LoomError {
  const abs = Object.fromEntries(Object.entries(files).map(([k, v]) => [`${DIR}/${k}`, v]));
  return loomErr(() => loadGraph(MAIN, { files: memoryFiles({ ...abs, [MAIN]: text }) }));
}

interface Want {
  code: ErrorCode;
  pointer: string;
  /** The node id, or null where the error is not about a node. */
  node: string | null;
  file?: string;
  message: RegExp;
  expected?: RegExp;
  found?: RegExp;
  hint?: RegExp;
  /** Errors whose message says it all carry no expected / found / hint. */
  bare?: boolean;
}

function check(e: LoomError, w: Want): void {
  const i = e.info;
  expect({ code: i.code, pointer: i.pointer, node: i.node ?? null, file: i.file }).toEqual({
    code: w.code,
    pointer: w.pointer,
    node: w.node,
    file: w.file ?? MAIN,
  });
  expect(i.message).toMatch(w.message);
  if (w.expected) expect(i.expected).toMatch(w.expected);
  if (w.found) expect(i.found).toMatch(w.found);
  if (w.hint) expect(i.hint).toMatch(w.hint);
  // Actionable: besides the message, the user is told what would be right or what is wrong.
  if (!w.bare) expect(i.expected ?? i.found ?? i.hint, `no expected/found/hint in:\n${e.message}`).toBeDefined();
  // The formatted message leads with the code and the location, and shows no internal values.
  expect(e.message.split('\n')[0]).toContain(`error[${w.code}] ${w.file ?? MAIN}#${w.pointer}${w.node ? ` (node "${w.node}")` : ''}: `);
  expect(e.message).not.toMatch(/\bundefined\b|\[object Object\]|\bNaN\b/);
}

const has = (...ops: string[]) => ops.every((o) => getOp(o) !== undefined);

// ---------------------------------------------------------------------------- JSON text

describe('invalid JSON', () => {
  it('a trailing comma, with line and column', () => {
    const e = errOfText('{\n  "graph": "m",\n  "nodes": [],\n  "outputs": {},\n}\n');
    expect(e.info.code).toBe('E_JSON');
    expect(e.info.file).toBe(MAIN);
    // The "}" after the trailing comma, at the start of line 5.
    expect(e.info.message).toMatch(/^invalid JSON at line 5, column 1: /);
    // Only the location: the text of a file that failed to parse is never echoed.
    expect(e.info.found).toBeUndefined();
    expect(e.info.hint).toMatch(/trailing commas/);
    expect(e.message).toMatch(/^error\[E_JSON\] \/virtual\/malformed\/main\.graph\.json: invalid JSON at line 5, column 1/);
  });

  it('a truncated file points at its end', () => {
    const text = '{"graph": "m", "nodes": [';
    const e = errOfText(text);
    expect(e.info.code).toBe('E_JSON');
    expect(e.info.message).toMatch(new RegExp(`^invalid JSON at line 1, column ${text.length + 1}: `));
    expect(e.info.found).toBe('end of file');
  });

  it('a comment', () => {
    const e = errOfText('{\n  // the policy\n  "graph": "m"\n}');
    expect(e.info.message).toMatch(/^invalid JSON at line 2, column 3: /);
    expect(e.message).not.toMatch(/the policy/);
  });

  it('single-quoted strings', () => {
    const e = errOfText("{'graph': 'm'}");
    expect(e.info.message).toMatch(/^invalid JSON at line 1, column 2: /);
  });

  it('a missing comma between properties', () => {
    const e = errOfText('{\n "graph": "m"\n "nodes": []\n}');
    expect(e.info.message).toMatch(/^invalid JSON at line 3, column 2: /);
  });

  it('an empty file', () => {
    const e = errOfText('');
    expect(e.info.message).toMatch(/^invalid JSON at line 1, column 1: /);
    expect(e.info.found).toBe('end of file');
  });

  it('a fixture file on disk, with its path', () => {
    const file = join(FIX, 'syntax.graph.json');
    const e = loomErr(() => loadGraph(file));
    expect(e.info.code).toBe('E_JSON');
    expect(e.info.file).toMatch(/test\/fixtures\/frontend\/bad\/syntax\.graph\.json$/);
    expect(e.info.message).toMatch(/line 5, column 1/);
  });

  it('a missing file is E_IO', () => {
    const e = loomErr(() => loadGraph(`${DIR}/nope.graph.json`, { files: memoryFiles({}) }));
    expect(e.info.code).toBe('E_IO');
    expect(e.info.message).toMatch(/cannot read graph file \/virtual\/malformed\/nope\.graph\.json: no such file/);
  });
});

// ---------------------------------------------------------------------------- JSON Schema

describe('schema violations', () => {
  it('missing "nodes"', () => {
    const g: Partial<GraphDoc> = base();
    delete g.nodes;
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/', node: null, message: /missing required property "nodes"/, expected: /"nodes": array/ });
  });

  it('"nodes" of the wrong type', () => {
    const g = base() as unknown as Record<string, unknown>;
    g.nodes = 'h, y';
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/nodes', node: null, message: /wrong type/, expected: /^array$/, found: /"h, y" \(string\)/ });
  });

  it('a dtype outside the enum', () => {
    const g = with_((g) => (g.inputs.x!.dtype = 'float64'));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/inputs/x/dtype', node: null, message: /not allowed/, expected: /"float32", "int32", "bool"/, found: /"float64"/ });
  });

  it('a malformed node id', () => {
    const g = with_((g) => (g.nodes[0]!.id = '1h'));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/nodes/0/id', node: null, message: /malformed name or reference "1h"/, found: /"1h"/ });
  });

  it('a malformed reference', () => {
    const g = with_((g) => (g.nodes[0]!.in = ['x.', 'w']));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/nodes/0/in/0', node: null, message: /malformed name or reference "x\."/, expected: /node\.output for nodes with several outputs/ });
  });

  it('a number written as a string in "in"', () => {
    const g = with_((g) => (g.nodes[1]!.in = ['h', '0.5']));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/nodes/1/in/1', node: null, message: /malformed/, hint: /number is written without quotes/ });
  });

  it('an unknown top-level property, with a suggestion', () => {
    const g = with_((g) => {
      g.input = g.inputs;
    });
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/input', node: null, message: /unknown property "input" in graph/, expected: /inputs, params, nodes, outputs/, hint: /did you mean "inputs"/ });
  });

  it('an unknown node property, with a suggestion', () => {
    const g = with_((g) => {
      g.nodes[0] = { id: 'h', op: 'matmul', inputs: ['x', 'w'] };
    });
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/nodes/0/inputs', node: null, message: /unknown property "inputs" in node/, expected: /id, op, in, attrs/, hint: /did you mean "in"/ });
  });

  it('an unknown initializer', () => {
    const g = with_((g) => (g.params.w!.init = 'he_normal'));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/params/w/init', node: null, message: /not allowed/, expected: /"glorot_uniform"/, found: /"he_normal"/ });
  });

  it('an initializer naming two kinds', () => {
    const g = with_((g) => (g.params.w!.init = { normal: {}, zeros: {} }));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/params/w/init', node: null, message: /more than 1 propert/, found: /2: normal, zeros/ });
  });

  it('an initializer argument out of range', () => {
    const g = with_((g) => (g.params.w!.init = { normal: { std: -1 } }));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/params/w/init/normal/std', node: null, message: /out of range/, expected: /a number >= 0/, found: /^-1$/ });
  });

  it('an initializer argument of the wrong type', () => {
    const g = with_((g) => (g.params.w!.init = { constant: { value: 'half' } }));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/params/w/init/constant/value', node: null, message: /wrong type/, expected: /number/, found: /"half"/ });
  });

  it('a non-float32 param', () => {
    const g = with_((g) => (g.params.w!.dtype = 'int32'));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/params/w/dtype', node: null, message: /not allowed/, expected: /"float32"/, found: /"int32"/ });
  });

  it('a symbolic param shape (params are static)', () => {
    const g = with_((g) => (g.params.w!.shape = ['B', 2]));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/params/w/shape/0', node: null, message: /wrong type/, expected: /integer/, found: /"B"/ });
  });

  it('a negative dim', () => {
    const g = with_((g) => (g.inputs.x!.shape = [-1, 3]));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/inputs/x/shape/0', node: null, message: /out of range/, expected: />= 0/, found: /^-1$/ });
  });

  it('"in" that is neither a list nor an object', () => {
    const g = with_((g) => (g.nodes[0]!.in = 5));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/nodes/0/in', node: null, message: /wrong type/, expected: /^array \| object$/, found: /5 \(integer\)/ });
  });

  it('a node that is not an object', () => {
    const g = with_((g) => (g.nodes[0] = null));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/nodes/0', node: null, message: /wrong type/, expected: /object/, found: /^null$/ });
  });

  it('a node without an op', () => {
    const g = with_((g) => (g.nodes[1] = { id: 'y', in: ['h', 'b'] }));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/nodes/1', node: null, message: /missing required property "op"/, expected: /"op": string/ });
  });

  it('a literal number as an output', () => {
    const g = with_((g) => (g.outputs.y = 3));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/outputs/y', node: null, message: /wrong type/, expected: /string/, found: /3 \(integer\)/ });
  });

  it('a number too large for a double (JSON.parse makes it Infinity)', () => {
    const text = JSON.stringify(with_((g) => (g.params.w!.shape = [3, 12345]))).replace('12345', '1e400');
    check(errOfText(text), { code: 'E_SCHEMA', pointer: '/params/w/shape/1', node: null, message: /number too large/, found: /Infinity/ });
  });

  it('absurdly deep nesting', () => {
    let v: unknown = 1;
    for (let k = 0; k < 100; k++) v = [v];
    const g = with_((g) => g.nodes.push({ id: 'k', op: 'const', attrs: { value: v as number } }));
    const e = errOf(g);
    expect(e.info.code).toBe('E_SCHEMA');
    expect(e.info.message).toMatch(/nests deeper than 64 levels/);
    expect(e.info.pointer).toMatch(/^\/nodes\/2\/attrs\/value(\/0)+$/);
  });
});

// ---------------------------------------------------------------------------- ops and attributes

describe('ops, attributes and arity', () => {
  it('an unknown op, with "did you mean"', () => {
    const g = with_((g) => g.nodes.push({ id: 't', op: 'tanhh', in: ['y'] }));
    check(errOf(g), { code: 'E_UNKNOWN_OP', pointer: '/nodes/2/op', node: 't', message: /unknown op "tanhh"/, hint: /did you mean "tanh"\?.*loom ops/ });
  });

  it('an unknown op far from any name still points at `loom ops`', () => {
    const g = with_((g) => g.nodes.push({ id: 't', op: 'frobnicate', in: ['y'] }));
    check(errOf(g), { code: 'E_UNKNOWN_OP', pointer: '/nodes/2/op', node: 't', message: /unknown op "frobnicate"/, hint: /^`loom ops` lists all ops$/ });
  });

  it('an unknown attribute, with the known ones', () => {
    const g = with_((g) => (g.nodes[0]!.attrs = { transpose_c: true }));
    check(errOf(g), { code: 'E_ATTR', pointer: '/nodes/0/attrs/transpose_c', node: 'h', message: /unknown attribute "transpose_c" for matmul/, expected: /^transpose_a, transpose_b$/, hint: /did you mean "transpose_a"/ });
  });

  it('an attribute named like an Object.prototype member is unknown too', () => {
    const g = with_((g) => (g.nodes[0]!.attrs = { constructor: 1 }));
    check(errOf(g), { code: 'E_ATTR', pointer: '/nodes/0/attrs/constructor', node: 'h', message: /unknown attribute "constructor" for matmul/ });
  });

  it('a missing required attribute', () => {
    const g = with_((g) => g.nodes.push({ id: 'f', op: 'cast', in: ['i'], attrs: {} }));
    check(errOf(g), { code: 'E_ATTR', pointer: '/nodes/2/attrs', node: 'f', message: /cast needs the attribute "dtype"/, expected: /"dtype": one of "float32", "int32", "bool"/ });
  });

  it('a missing required attribute on a node without "attrs" points at the node', () => {
    const g = with_((g) => g.nodes.push({ id: 'f', op: 'cast', in: ['i'] }));
    check(errOf(g), { code: 'E_ATTR', pointer: '/nodes/2', node: 'f', message: /cast needs the attribute "dtype"/ });
  });

  it('an ill-typed attribute', () => {
    const g = with_((g) => (g.nodes[0]!.attrs = { transpose_a: 'yes' }));
    check(errOf(g), { code: 'E_ATTR', pointer: '/nodes/0/attrs/transpose_a', node: 'h', message: /matmul: attribute "transpose_a": wrong type/, expected: /^boolean$/, found: /"yes" \(string\)/ });
  });

  it('too few inputs', () => {
    const g = with_((g) => (g.nodes[1]!.in = ['h']));
    check(errOf(g), { code: 'E_ARITY', pointer: '/nodes/1/in', node: 'y', message: /add takes 2 inputs/, expected: /^2 \(x, y\)$/, found: /^1$/ });
  });

  it('too many inputs', () => {
    const g = with_((g) => g.nodes.push({ id: 't', op: 'tanh', in: ['y', 'y', 'y'] }));
    check(errOf(g), { code: 'E_ARITY', pointer: '/nodes/2/in', node: 't', message: /tanh takes 1 input$/, expected: /^1 \(x\)$/, found: /^3$/ });
  });

  it('no "in" at all points at the node', () => {
    const g = with_((g) => g.nodes.push({ id: 't', op: 'tanh' }));
    check(errOf(g), { code: 'E_ARITY', pointer: '/nodes/2', node: 't', message: /tanh takes 1 input/, found: /^0$/ });
  });

  it('inputs given as an object to an op', () => {
    const g = with_((g) => (g.nodes[1]!.in = { x: 'h', y: 'b' }));
    check(errOf(g), { code: 'E_SCHEMA', pointer: '/nodes/1/in', node: 'y', message: /add takes its inputs as a list/, expected: /array/, found: /object/ });
  });

  it('"graph" on a node that is not a call', () => {
    const g = with_((g) => (g.nodes[0]!.graph = 'lin.graph.json'));
    check(errOf(g), { code: 'E_ATTR', pointer: '/nodes/0/graph', node: 'h', message: /"graph" is only allowed on call and scan nodes/, hint: /set "op": "call"/ });
  });
});

// ---------------------------------------------------------------------------- references and ids

describe('references', () => {
  it('a dangling input, with a suggestion', () => {
    const g = with_((g) => (g.nodes[1]!.in = ['hh', 'b']));
    check(errOf(g), { code: 'E_DANGLING', pointer: '/nodes/1/in/0', node: 'y', message: /unknown value "hh"/, expected: /input, a param or a node/, hint: /did you mean "h"/ });
  });

  it('a dangling output', () => {
    const g = with_((g) => (g.outputs.y = 'yy'));
    check(errOf(g), { code: 'E_DANGLING', pointer: '/outputs/y', node: null, message: /unknown value "yy"/, hint: /did you mean "y"/ });
  });

  it('a grad node referenced without ".output"', () => {
    const g = with_((g) => {
      g.nodes.push({ id: 'loss', op: 'mean', in: ['y'] }, { id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: ['w', 'b'] } });
      g.outputs.gw = 'g';
    });
    check(errOf(g), { code: 'E_DANGLING', pointer: '/outputs/gw', node: null, message: /node "g" has several outputs; pick one as "g\.<output>"/, expected: /^g\.w, g\.b$/ });
  });

  it('a call referenced without ".output"', () => {
    const g = caller((_c, g) => g.nodes.push({ id: 't', op: 'tanh', in: ['c'] }));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_DANGLING', pointer: '/nodes/1/in/0', node: 't', message: /node "c" has several outputs/, expected: /^c\.y$/ });
  });

  it('an unknown output of a call', () => {
    const g = caller((_c, g) => (g.outputs.y = 'c.z'));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_DANGLING', pointer: '/outputs/y', node: null, message: /node "c" has no output "z"/, expected: /^y$/ });
  });

  it('".output" on a single-output node', () => {
    const g = with_((g) => (g.outputs.y = 'y.out'));
    check(errOf(g), { code: 'E_DANGLING', pointer: '/outputs/y', node: null, message: /"y" has a single output; refer to it as "y"/, expected: /^"y"$/ });
  });

  it('".output" on a node that does not exist, with a suggestion among multi-output nodes', () => {
    const g = with_((g) => g.nodes.push({ id: 't', op: 'tanh', in: ['gg.w'] }));
    check(errOf(g), { code: 'E_DANGLING', pointer: '/nodes/2/in/0', node: 't', message: /reference "gg\.w" does not resolve: no node "gg"/, expected: /"node\.output"/ });
    const withGrad = with_((g) => g.nodes.push({ id: 'loss', op: 'mean', in: ['y'] }, { id: 'grads', op: 'grad', in: ['loss'], attrs: { wrt: ['w'] } }, { id: 't', op: 'tanh', in: ['grad.w'] }));
    check(errOf(withGrad), { code: 'E_DANGLING', pointer: '/nodes/4/in/0', node: 't', message: /no node "grad"/, hint: /did you mean "grads\.w"/ });
  });

  it('a node id used twice', () => {
    const g = with_((g) => (g.nodes[1]!.id = 'h'));
    check(errOf(g), { code: 'E_DUPLICATE', pointer: '/nodes/1/id', node: 'h', message: /"h" is defined twice/, found: /first definition at #\/nodes\/0\/id/ });
  });

  it('a node id equal to an input', () => {
    const g = with_((g) => g.nodes.push({ id: 'x', op: 'tanh', in: ['y'] }));
    check(errOf(g), { code: 'E_DUPLICATE', pointer: '/nodes/2/id', node: 'x', message: /"x" is defined twice/, expected: /unique names across inputs, params and node ids/, found: /#\/inputs\/x/ });
  });

  it('a param named like an input', () => {
    const g = with_((g) => (g.params.x = { shape: [1] }));
    check(errOf(g), { code: 'E_DUPLICATE', pointer: '/params/x', node: null, message: /"x" is defined twice/, found: /#\/inputs\/x/ });
  });
});

describe('cycles', () => {
  it('a self-loop', () => {
    const g = with_((g) => (g.nodes[1]!.in = ['y', 'b']));
    check(errOf(g), { code: 'E_CYCLE', pointer: '/nodes/1', node: 'y', message: /the graph has a cycle: y -> y$/, hint: /acyclic/ });
  });

  it('two nodes', () => {
    const g = with_((g) => (g.nodes[0]!.in = ['y', 'w']));
    const e = errOf(g);
    expect(e.info.code).toBe('E_CYCLE');
    // Either rotation of the same cycle; the pointer is the node it starts with.
    expect(e.info.message).toMatch(/the graph has a cycle: (h -> y -> h|y -> h -> y)$/);
    const first = /cycle: (\w+)/.exec(e.info.message)![1]!;
    expect(e.info.node).toBe(first);
    expect(e.info.pointer).toBe(first === 'h' ? '/nodes/0' : '/nodes/1');
  });

  it('four nodes, listed in dataflow order', () => {
    const g = with_((g) => {
      g.nodes.push(
        { id: 'p', op: 'tanh', in: ['s'] },
        { id: 'q', op: 'tanh', in: ['p'] },
        { id: 'r', op: 'tanh', in: ['q'] },
        { id: 's', op: 'tanh', in: ['r'] },
      );
    });
    const e = errOf(g);
    expect(e.info.code).toBe('E_CYCLE');
    const cyc = /cycle: (.*)$/.exec(e.info.message)![1]!.split(' -> ');
    expect(cyc).toHaveLength(5);
    expect(cyc[0]).toBe(cyc[4]);
    // Each step goes from a producer to its consumer: p -> q -> r -> s -> p, from any start.
    const next: Record<string, string> = { p: 'q', q: 'r', r: 's', s: 'p' };
    for (let k = 0; k < 4; k++) expect(next[cyc[k]!]).toBe(cyc[k + 1]);
  });
});

// ---------------------------------------------------------------------------- calls

describe('calls', () => {
  it('a recursive call through two files names the chain', () => {
    const a = { graph: 'a', inputs: { x: { shape: [2] } }, nodes: [{ id: 'toB', op: 'call', graph: 'b.graph.json', in: { x: 'x' } }], outputs: { y: 'toB.y' } };
    const b = { graph: 'b', inputs: { x: { shape: [2] } }, nodes: [{ id: 'toA', op: 'call', graph: 'a.graph.json', in: { x: 'x' } }], outputs: { y: 'toA.y' } };
    const e = loomErr(() => loadGraph(`${DIR}/a.graph.json`, { files: memoryFiles({ [`${DIR}/a.graph.json`]: a, [`${DIR}/b.graph.json`]: b }) }));
    check(e, {
      code: 'E_IMPORT',
      file: `${DIR}/b.graph.json`,
      pointer: '/nodes/0/graph',
      node: 'toA',
      message: /^recursive call: \/virtual\/malformed\/a\.graph\.json -> \/virtual\/malformed\/b\.graph\.json -> \/virtual\/malformed\/a\.graph\.json$/,
      hint: /cannot call itself/,
    });
  });

  it('a recursive call between files on disk', () => {
    const e = loomErr(() => loadGraph(join(FIX, 'rec-a.graph.json')));
    expect(e.info.code).toBe('E_IMPORT');
    expect(e.info.node).toBe('viaA');
    expect(e.info.file).toMatch(/rec-b\.graph\.json$/);
    expect(e.info.message).toMatch(/^recursive call: .*rec-a\.graph\.json -> .*rec-b\.graph\.json -> .*rec-a\.graph\.json$/);
  });

  it('a graph calling itself', () => {
    const g = caller((c) => (c.graph = 'main.graph.json'));
    const e = loomErr(() => loadGraph(MAIN, { files: memoryFiles({ [MAIN]: g }) }));
    check(e, { code: 'E_IMPORT', pointer: '/nodes/0/graph', node: 'c', message: /^recursive call: \/virtual\/malformed\/main\.graph\.json -> \/virtual\/malformed\/main\.graph\.json$/ });
  });

  it('a missing call file', () => {
    const g = caller((c) => (c.graph = 'nope.graph.json'));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_IMPORT', pointer: '/nodes/0/graph', node: 'c', message: /called graph file not found: \/virtual\/malformed\/nope\.graph\.json/, found: /^nope\.graph\.json$/ });
  });

  it('a call without "graph"', () => {
    const g = caller((c) => delete c.graph);
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_ATTR', pointer: '/nodes/0', node: 'c', message: /a call node needs "graph"/, expected: /"graph":/ });
  });

  it('a call binding inputs by position', () => {
    const g = caller((c) => (c.in = ['obs']));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_SCHEMA', pointer: '/nodes/0/in', node: 'c', message: /binds the callee inputs by name/, expected: /\{calleeInput: value\}/ });
  });

  it('a call binding an unknown input, with a suggestion', () => {
    const g = caller((c) => (c.in = { xx: 'obs' }));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_ARITY', pointer: '/nodes/0/in/xx', node: 'c', message: /call of lin binds "xx", which is not one of its inputs/, expected: /^x$/, hint: /did you mean "x"/ });
  });

  it('a call missing an input', () => {
    const g = caller((c) => (c.in = {}));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_ARITY', pointer: '/nodes/0/in', node: 'c', message: /call of lin does not bind its input "x"/, expected: /"x": \.\.\./, found: /nothing/ });
  });

  it('a call without "in" points at the node', () => {
    const g = caller((c) => delete c.in);
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_ARITY', pointer: '/nodes/0', node: 'c', message: /does not bind its input "x"/ });
  });

  it('a call binding an unknown param', () => {
    const g = caller((c) => (c.params = { ww: 'v' }));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_ATTR', pointer: '/nodes/0/params/ww', node: 'c', message: /call of lin binds param "ww", which it does not have/, expected: /^w, b$/, hint: /did you mean "w"/ });
  });

  it('a call argument of the wrong shape points at the binding', () => {
    const g = caller((c) => (c.in = { x: 'wide' }));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_SHAPE', pointer: '/nodes/0/in/x', node: 'c', message: /argument "x" of lin has the wrong shape \(axis 1\)/, expected: /^\[N, 3\]$/, found: /^\[N, 4\]$/ });
  });

  it('a call argument of the wrong dtype', () => {
    const g = caller((c) => (c.in = { x: 'ints' }));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_DTYPE', pointer: '/nodes/0/in/x', node: 'c', message: /argument "x" of lin has the wrong dtype/, expected: /float32\[B, 3\]/, found: /int32\[N, 3\]/ });
  });

  it('a number bound to a tensor input', () => {
    const g = caller((c) => (c.in = { x: 2 }));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_SHAPE', pointer: '/nodes/0/in/x', node: 'c', message: /wrong rank/, found: /float32\[\]/, hint: /float32 scalar/ });
  });

  it('a shared param of another shape', () => {
    const g = caller((c) => (c.params = { w: 'v' }));
    check(errOf(g, { 'lin.graph.json': LIN }), { code: 'E_SHAPE', pointer: '/nodes/0/params/w', node: 'c', message: /param "w" of lin is bound to a value of another shape/, expected: /float32\[3, 2\]/, found: /float32\[2\]/ });
  });

  it('an error inside the callee names the callee file and node', () => {
    const bad = { ...LIN, nodes: [LIN.nodes[0], { id: 'y', op: 'addd', in: ['h', 'b'] }] };
    check(errOf(caller(), { 'lin.graph.json': bad }), { code: 'E_UNKNOWN_OP', file: `${DIR}/lin.graph.json`, pointer: '/nodes/1/op', node: 'y', message: /unknown op "addd"/, hint: /did you mean "add"/ });
  });

  it('invalid JSON in the callee names the callee file', () => {
    const e = errOf(caller(), { 'lin.graph.json': '{"graph": "lin",,}' });
    expect(e.info.code).toBe('E_JSON');
    expect(e.info.file).toBe(`${DIR}/lin.graph.json`);
    expect(e.info.message).toMatch(/line 1, column 17/);
  });
});

// ---------------------------------------------------------------------------- shapes and dtypes

describe('shapes and dtypes', () => {
  it('shapes that do not broadcast', () => {
    const g = with_((g) => (g.params.b!.shape = [3]));
    check(errOf(g), { code: 'E_SHAPE', pointer: '/nodes/1', node: 'y', message: /add: shapes are not broadcast-compatible \(axis -1 has 2 vs 3\)/, found: /^\[B, 2\] and \[3\]$/ });
  });

  it.skipIf(!has('matmul'))('matmul inner dimensions', () => {
    const g = with_((g) => (g.params.w!.shape = [4, 2]));
    check(errOf(g), { code: 'E_SHAPE', pointer: '/nodes/0', node: 'h', message: /inner dimensions differ \(3 vs 4\)/, found: /a \[B, 3\], b \[4, 2\]/ });
  });

  it.skipIf(!has('matmul'))('matmul of a vector', () => {
    const g = with_((g) => (g.nodes[0]!.in = ['b', 'w']));
    check(errOf(g), { code: 'E_RANK', pointer: '/nodes/0', node: 'h', message: /rank >= 2/, found: /a \[2\]/ });
  });

  it('float32 + int32', () => {
    const g = with_((g) => g.nodes.push({ id: 's', op: 'add', in: ['x', 'i'] }));
    check(errOf(g), { code: 'E_DTYPE', pointer: '/nodes/2', node: 's', message: /add: inputs must share a dtype \(insert a cast\)/, expected: /all float32/, found: /^float32, int32$/ });
  });

  it('logical_and on floats', () => {
    const g = with_((g) => g.nodes.push({ id: 'l', op: 'logical_and', in: ['h', 'h'] }));
    check(errOf(g), { code: 'E_DTYPE', pointer: '/nodes/2', node: 'l', message: /logical_and: x has the wrong dtype/, expected: /^bool$/, found: /^float32$/ });
  });

  it('a number literal next to an int32 tensor says how to type it', () => {
    const g = with_((g) => g.nodes.push({ id: 'j', op: 'add', in: ['i', 3] }));
    check(errOf(g), { code: 'E_DTYPE', pointer: '/nodes/2', node: 'j', message: /share a dtype/, found: /int32, float32/, hint: /const node.*"dtype": "int32"/ });
  });

  it('a number literal where a bool is needed', () => {
    const g = with_((g) => g.nodes.push({ id: 'l', op: 'logical_and', in: ['flag', 1] }));
    check(errOf(g), { code: 'E_DTYPE', pointer: '/nodes/2', node: 'l', message: /logical_and/, hint: /float32 scalar/ });
  });
});

describe('unbound symbolic dims', () => {
  it.skipIf(!has('reshape'))('reshape to a shape naming a symbol no input binds', () => {
    const g = with_((g) => g.nodes.push({ id: 'r', op: 'reshape', in: ['y'], attrs: { shape: ['N', 2] } }));
    check(errOf(g), { code: 'E_UNBOUND_DIM', pointer: '/nodes/2/attrs/shape', node: 'r', message: /reshape: attribute "shape" uses the dim "N", which no graph input binds/, expected: /bound by the inputs: B/, found: /^N$/ });
  });

  it.skipIf(!has('random_key', 'random_uniform'))('random_uniform of a shape naming an unbound symbol', () => {
    const g = with_((g) => g.nodes.push({ id: 'k', op: 'random_key', attrs: { seed: 1 } }, { id: 'u', op: 'random_uniform', in: ['k'], attrs: { shape: ['T', 2] } }));
    check(errOf(g), { code: 'E_UNBOUND_DIM', pointer: '/nodes/3', node: 'u', message: /"T"/, found: /^T$/ });
  });

  it.skipIf(!has('broadcast_to'))('a const broadcast to a shape naming an unbound symbol', () => {
    const g = with_((g) => g.nodes.push({ id: 'k', op: 'const', attrs: { value: 1 } }, { id: 'z', op: 'broadcast_to', in: ['k'], attrs: { shape: ['M', 3] } }));
    check(errOf(g), { code: 'E_UNBOUND_DIM', pointer: '/nodes/3', node: 'z', message: /M/, found: /^M$/ });
  });
});

describe('ranks and axes', () => {
  it.skipIf(!has('softmax'))('softmax over an axis out of range', () => {
    const g = with_((g) => g.nodes.push({ id: 's', op: 'softmax', in: ['y'], attrs: { axis: 2 } }));
    check(errOf(g), { code: 'E_AXIS', pointer: '/nodes/2', node: 's', message: /softmax: axis 2 is out of range for a rank-2 tensor/, expected: /\[-2, 1\]/, found: /^2$/ });
  });

  it.skipIf(!has('sum'))('a reduction over an axis out of range', () => {
    const g = with_((g) => g.nodes.push({ id: 's', op: 'sum', in: ['y'], attrs: { axes: [-3] } }));
    check(errOf(g), { code: 'E_AXIS', pointer: '/nodes/2', node: 's', message: /axis -3 is out of range for a rank-2 tensor/, expected: /\[-2, 1\]/ });
  });

  it.skipIf(!has('sum', 'squeeze'))('an axis of a scalar (found by the fuzzer: squeeze read past the shape)', () => {
    const g = with_((g) => g.nodes.push({ id: 's', op: 'sum', in: ['y'] }, { id: 'q', op: 'squeeze', in: ['s'], attrs: { axes: [0] } }));
    check(errOf(g), { code: 'E_AXIS', pointer: '/nodes/3', node: 'q', message: /axis 0 is out of range for a rank-0 tensor/, expected: /no axis/ });
  });
});

describe('absurd sizes', () => {
  it('a param of 1e10 elements', () => {
    const g = with_((g) => (g.params.big = { shape: [100000, 100000] }));
    check(errOf(g), { code: 'E_SIZE', pointer: '/params/big/shape', node: null, message: /\[100000, 100000\] has 1\.00e\+10 elements, more than any backend can allocate/, expected: /at most 2147483647/, found: /^10000000000$/ });
  });

  it('an input of 1e12 elements', () => {
    const g = with_((g) => (g.inputs.big = { shape: [1e6, 1e6] }));
    check(errOf(g), { code: 'E_SIZE', pointer: '/inputs/big/shape', node: null, message: /has 1\.00e\+12 elements/ });
  });

  it('a symbolic input that is too large for any batch size', () => {
    const g = with_((g) => (g.inputs.big = { shape: ['B', 1e6, 1e6] }));
    check(errOf(g), { code: 'E_SIZE', pointer: '/inputs/big/shape', node: null, message: /\[B, 1000000, 1000000\] has at least 1\.00e\+12 elements/ });
  });

  it.skipIf(!has('random_key', 'random_normal'))('a node result of 1e12 elements', () => {
    const g = with_((g) => g.nodes.push({ id: 'k', op: 'random_key', attrs: { seed: 1 } }, { id: 'n', op: 'random_normal', in: ['k'], attrs: { shape: [1e6, 1e6] } }));
    check(errOf(g), { code: 'E_SIZE', pointer: '/nodes/3', node: 'n', message: /result of shape \[1000000, 1000000\] has 1\.00e\+12 elements/ });
  });
});

describe('grad', () => {
  const withLoss = (edit: (g: GraphDoc) => void) =>
    with_((g) => {
      g.nodes.push({ id: 'loss', op: 'mean', in: ['y'] });
      edit(g);
    });

  it.skipIf(!has('mean'))('of a non-scalar', () => {
    const g = withLoss((g) => {
      g.nodes.push({ id: 'g', op: 'grad', in: ['y'], attrs: { wrt: ['w'] } });
      g.outputs.gw = 'g.w';
    });
    check(errOf(g), { code: 'E_SHAPE', pointer: '/nodes/3', node: 'g', message: /must be a float32 scalar: reduce it first/, expected: /^float32\[\]$/, found: /^float32\[B, 2\]$/ });
  });

  it.skipIf(!has('mean'))('with respect to a node output', () => {
    const g = withLoss((g) => g.nodes.push({ id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: ['w', 'h'] } }));
    check(errOf(g), { code: 'E_DANGLING', pointer: '/nodes/3/attrs/wrt/1', node: 'g', message: /"h" is a node output/, expected: /x, i, flag, w, b/, hint: /input of a called graph/ });
  });

  it.skipIf(!has('mean'))('with respect to a misspelt param', () => {
    const g = withLoss((g) => g.nodes.push({ id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: ['ww'] } }));
    check(errOf(g), { code: 'E_DANGLING', pointer: '/nodes/3/attrs/wrt/0', node: 'g', message: /"ww" is neither/, hint: /did you mean "w"/ });
  });

  it.skipIf(!has('mean'))('with respect to an int32 input', () => {
    const g = withLoss((g) => g.nodes.push({ id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: ['i'] } }));
    check(errOf(g), { code: 'E_DTYPE', pointer: '/nodes/3', node: 'g', message: /cannot differentiate with respect to "i"/, found: /int32\[B\]/ });
  });

  it.skipIf(!has('mean'))('without "wrt"', () => {
    const g = withLoss((g) => g.nodes.push({ id: 'g', op: 'grad', in: ['loss'], attrs: {} }));
    check(errOf(g), { code: 'E_ATTR', pointer: '/nodes/3/attrs', node: 'g', message: /grad needs the attribute "wrt"/, expected: /e\.g\. \["w", "b"\]/ });
  });

  it.skipIf(!has('mean'))('with "wrt" not a list', () => {
    const g = withLoss((g) => g.nodes.push({ id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: 'w' } }));
    check(errOf(g), { code: 'E_ATTR', pointer: '/nodes/3/attrs/wrt', node: 'g', message: /must be a non-empty list/, found: /^"w"$/ });
  });

  it.skipIf(!has('mean'))('of two values', () => {
    const g = withLoss((g) => g.nodes.push({ id: 'g', op: 'grad', in: ['loss', 'loss'], attrs: { wrt: ['w'] } }));
    check(errOf(g), { code: 'E_ARITY', pointer: '/nodes/3/in', node: 'g', message: /grad takes exactly one input/, found: /^2$/ });
  });
});

// ---------------------------------------------------------------------------- regressions found by fuzz.test.ts

describe('fuzzer regressions', () => {
  it('a node named "__proto__" loads and leaves Object.prototype alone', () => {
    const g = with_((g) => {
      g.nodes.push({ id: '__proto__', op: 'tanh', in: ['y'] }, { id: 's', op: 'tanh', in: ['__proto__'] });
      g.outputs.s = 's';
    });
    const ir = loadGraphJson(g, MAIN, { files: memoryFiles({}) });
    expect(ir.nodes.map((n) => n.id)).toEqual(['h', 'y', '__proto__', 's']);
    const leaked: string[] = [];
    for (const k in {}) leaked.push(k);
    expect(leaked).toEqual([]);
  });

  it('a callee input named "constructor" is not bound by Object.prototype.constructor', () => {
    const lin = { ...LIN, inputs: { constructor: { shape: ['B', 3] } }, nodes: [{ id: 'h', op: 'matmul', in: ['constructor', 'w'] }], outputs: { y: 'h' } };
    check(errOf(caller((c) => (c.in = {})), { 'lin.graph.json': lin }), { code: 'E_ARITY', pointer: '/nodes/0/in', node: 'c', message: /does not bind its input "constructor"/ });
  });

  it('a callee param named "constructor" is hoisted, not skipped', () => {
    const lin = { ...LIN, params: { constructor: { shape: [3, 2] } }, nodes: [{ id: 'h', op: 'matmul', in: ['x', 'constructor'] }], outputs: { y: 'h' } };
    const ir = loadGraphJson(caller(), MAIN, { files: memoryFiles({ [`${DIR}/lin.graph.json`]: lin }) });
    expect(ir.params.map((p) => p.name)).toEqual(['v', 'c/constructor']);
    expect(ir.nodes.find((n) => n.id === 'c')!.inputs).toEqual(['obs', 'c/constructor']);
  });
});
