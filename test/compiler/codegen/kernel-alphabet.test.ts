/**
 * Generated code never carries text from a graph file. Every kernel the js target generates for
 * the shipped graphs, and for graphs whose names, ids and paths are hostile, is made only of
 * identifiers, numbers, operators, punctuation, whitespace and the target's own fixed comment:
 * no strings, template literals or comments with user text. The WGSL target's shaders, the wasm
 * target's functions and the wasm product's module are checked the same way. A file can choose which kernels are generated, never their text.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileGraph } from '../../../compiler/compile.ts';
import { symbolsOf } from '../../../compiler/dims.ts';
import { loadGraph, loadGraphJson, memoryFiles } from '../../../compiler/frontend/load.ts';
import { generatedKernels } from '../../../compiler/inspect.ts';
import { wgslTarget, type WgslKernel } from '../../../compiler/codegen/wgsl.ts';
import { wasmTarget, wasmUnsupported } from '../../../compiler/codegen/wasm.ts';
import type { CodegenTarget } from '../../../compiler/codegen/target.ts';
import type { IRGraph } from '../../../compiler/ir.ts';
import { gemmModuleText } from '../../../runtime/wasm-gemm.ts';
import { HOSTILE } from '../../helpers/hostile.ts';

const GRAPHS = join(import.meta.dirname, '..', '..', '..', 'graphs');

function graphFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? graphFiles(p) : f.endsWith('.graph.json') ? [p] : [];
  });
}

/** The comments the js target writes: fixed wording, never a name. */
const FIXED_COMMENTS = ['// nothing left to compute: the output is the product, written in place'];

/** The tokens of generated TypeScript. A `/` never starts a comment other than the fixed ones. */
const JS_TOKEN = new RegExp(
  [
    /\s+/,
    ...FIXED_COMMENTS.map((c) => new RegExp(c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))),
    /[A-Za-z_][A-Za-z0-9_]*/,
    /(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?/,
    />>>=?|>>=?|<<=?|\*\*=?|&&|\|\||\+\+|--|[=!]={0,2}|[<>]=?|[-+*%&|^]=?|\/(?![/*])=?/,
    /[()[\]{};,.:?!~]/,
  ]
    .map((r) => r.source)
    .join('|'),
  'y',
);

/** The first stretch of `src` that is not a token of the alphabet, or undefined. */
function outsideAlphabet(src: string, token: RegExp): string | undefined {
  token.lastIndex = 0;
  while (token.lastIndex < src.length) {
    const at = token.lastIndex;
    if (!token.exec(src) || token.lastIndex === at) return src.slice(at, at + 40);
  }
  return undefined;
}

/** All generated sources of a graph: every fused kernel and its helpers, with and without the product epilogue. */
function sources(g: IRGraph): string[] {
  const env = new Map<string, number>();
  for (const i of g.inputs) for (const d of i.type.shape) for (const s of symbolsOf(d)) env.set(s, 8);
  const { graph } = compileGraph(g);
  return [false, true].flatMap((productEpilogue) => generatedKernels(graph, env, undefined, { productEpilogue }).flatMap(({ kernel }) => [kernel.source, ...kernel.support]));
}

/** The tokens of a WGSL shader: no comments or strings at all. */
const WGSL_TOKEN = /\s+|[A-Za-z_][A-Za-z0-9_]*|0x[0-9a-f]+u|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?[fiu]?|&&|\|\||->|[=!<>]=|[-+*%&|^<>=!]|\/(?![/*])|[()[\]{};,.:@]/y;

/** Every shader of every fused kernel of a graph, as the WGSL target renders it. */
function shaders(g: IRGraph): string[] {
  const env = new Map<string, number>();
  for (const i of g.inputs) for (const d of i.type.shape) for (const s of symbolsOf(d)) env.set(s, 8);
  const { graph } = compileGraph(g);
  return generatedKernels(graph, env, wgslTarget).flatMap(({ kernel }) => (kernel as WgslKernel).shaders.map((s) => s.source));
}

/**
 * The tokens of the wasm target's functions: WAT keywords, $names, numbers (and nan, inf),
 * parentheses, the export name (a hash) and the fixed comment with the loop extents.
 */
const WASM_TOKEN =
  /\s+|;; (?:domain \[[\d, ]*\]|one element) as loops \[[\d, ]*\](?=\n)|\$[A-Za-z0-9_]+|"loom_wasm_[a-z0-9]+"|[a-z][a-z0-9_.]*(?:=\d+)?|-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|-inf|[()]/y;

/** Every function of the wasm target for the fused kernels of a graph that it renders, with and without the product epilogue. */
function wasmFunctions(g: IRGraph): string[] {
  const env = new Map<string, number>();
  for (const i of g.inputs) for (const d of i.type.shape) for (const s of symbolsOf(d)) env.set(s, 8);
  const { graph } = compileGraph(g);
  // The kernels it does not render give an empty source here.
  const target: CodegenTarget = { name: 'wasm', emit: (spec) => (wasmUnsupported(spec) ? { name: '', target: 'wasm', source: '', support: [], spec } : wasmTarget.emit(spec)), check: () => {} };
  return [false, true].flatMap((productEpilogue) => generatedKernels(graph, env, target, { productEpilogue }).flatMap(({ kernel }) => (kernel.source ? [kernel.source] : [])));
}

describe('the alphabet check itself', () => {
  it('accepts a kernel and rejects strings, template literals and comments with names', () => {
    expect(outsideAlphabet('function loom_1(in0: Float32Array): void {\n  for (let i = 0; i < 8; i++) in0[i] = Math.tanh(in0[i]) * (-1.5e-7);\n}', JS_TOKEN)).toBeUndefined();
    for (const bad of ['x = "h";', 'x = `h`;', "x = 'h';", '// node h', 'x = 1 // h', '// zqUser', '/* h */', 'x = $h;', 'x = \\u0041;', `x = 1; // ${HOSTILE}`])
      expect(outsideAlphabet(bad, JS_TOKEN), bad).toBeDefined();
    expect(outsideAlphabet('@group(0) @binding(1) var<storage, read> x0: array<f32>;\nlet v = bitcast<f32>(0x7f800000u) * 1.5e-7f + i32(-3);', WGSL_TOKEN)).toBeUndefined();
    for (const bad of ['// node h', 'let x = 1; /* h */', 'x = "h";', `// ${HOSTILE}`]) expect(outsideAlphabet(bad, WGSL_TOKEN), bad).toBeDefined();
    expect(outsideAlphabet('(func $loom_wasm_1a (export "loom_wasm_1a") (param $in0 i32)\n  ;; domain [3, 7] as loops [21]\n  (v128.const f32x4 nan inf -inf -1.5e-7))', WASM_TOKEN)).toBeUndefined();
    for (const bad of [';; node h\n', '(export "h")', `;; ${HOSTILE}\n`, '(@h)']) expect(outsideAlphabet(bad, WASM_TOKEN), bad).toBeDefined();
  });
});

describe('generated kernels contain no text from files', () => {
  const files = graphFiles(GRAPHS);
  it('there are shipped graphs to check', () => expect(files.length).toBeGreaterThan(20));

  for (const file of files)
    it(relative(GRAPHS, file), () => {
      const g = loadGraph(file);
      for (const src of sources(g)) expect(outsideAlphabet(src, JS_TOKEN), src).toBeUndefined();
      for (const src of shaders(g)) expect(outsideAlphabet(src, WGSL_TOKEN), src).toBeUndefined();
      for (const src of wasmFunctions(g)) expect(outsideAlphabet(src, WASM_TOKEN), src).toBeUndefined();
    });

  it('graphs whose names, ids, params, outputs and paths are hostile or distinctive', () => {
    const callee = {
      version: 1,
      graph: `zqUser callee ${HOSTILE} "; process.exit(1); //`,
      inputs: { zqUserCalleeIn: { shape: ['zqUserDim', 3] } },
      params: { zqUserW: { shape: [3, 4] }, zqUserB: { shape: [4], init: 'zeros' } },
      nodes: [
        { id: 'zqUserMm', op: 'matmul', in: ['zqUserCalleeIn', 'zqUserW'] },
        { id: 'zqUserAdd', op: 'add', in: ['zqUserMm', 'zqUserB'] },
        { id: 'zqUserTanh', op: 'tanh', in: ['zqUserAdd'] },
      ],
      outputs: { zqUserOut: 'zqUserTanh' },
    };
    const dir = `/virtual/zqUser${HOSTILE}`;
    const g = loadGraphJson(
      {
        version: 1,
        graph: `zqUser ${HOSTILE} \`\${globalThis}\` */`,
        inputs: { zqUserX: { shape: ['zqUserDim', 3] } },
        nodes: [
          { id: 'zqUserCall', op: 'call', graph: `zqUser${HOSTILE}.graph.json`, in: { zqUserCalleeIn: 'zqUserX' } },
          { id: 'zqUserScale', op: 'mul', in: ['zqUserCall.zqUserOut', -1.5e-7] },
          { id: 'zqUserShift', op: 'add', in: ['zqUserScale', 1e30] },
          { id: 'zqUserExp', op: 'exp', in: ['zqUserShift'] },
          { id: 'zqUserSum', op: 'sum', in: ['zqUserExp'], attrs: { axes: 1 } },
        ],
        outputs: { zqUserY: 'zqUserSum', zqUserZ: 'zqUserExp' },
      },
      `${dir}/main.graph.json`,
      { files: memoryFiles({ [`${dir}/zqUser${HOSTILE}.graph.json`]: callee }) },
    );
    const srcs = sources(g);
    expect(srcs.length).toBeGreaterThan(0);
    for (const src of srcs) {
      expect(outsideAlphabet(src, JS_TOKEN), src).toBeUndefined();
      expect(src).not.toMatch(/zqUser|evil/);
    }
    // The wasm target renders none of those kernels (tanh, exp): an elementwise chain and a column sum of its own.
    const plain = loadGraphJson(
      {
        version: 1,
        graph: `zqUser ${HOSTILE} */ "`,
        inputs: { zqUserX: { shape: ['zqUserDim', 3] }, zqUserY: { shape: [3] } },
        nodes: [
          { id: "zqUserScale", op: 'mul', in: ['zqUserX', -1.5e-7] },
          { id: 'zqUserShift', op: 'add', in: ["zqUserScale", 'zqUserY'] },
          { id: 'zqUserCols', op: 'sum', in: ['zqUserShift'], attrs: { axes: 0 } },
        ],
        outputs: { zqUserA: 'zqUserShift', zqUserB: 'zqUserCols' },
      },
      `${dir}/plain.graph.json`,
    );
    const wat = wasmFunctions(plain);
    expect(wat.length).toBeGreaterThan(0);
    for (const src of wat) {
      expect(outsideAlphabet(src, WASM_TOKEN), src).toBeUndefined();
      expect(src).not.toMatch(/zqUser|evil/);
    }
    const wgsl = shaders(g);
    expect(wgsl.length).toBeGreaterThan(0);
    for (const src of wgsl) {
      expect(outsideAlphabet(src, WGSL_TOKEN), src).toBeUndefined();
      expect(src).not.toMatch(/zqUser|evil/);
    }
  });
});

describe('the wasm product module', () => {
  it('is made of WAT keywords, $names, numbers, parentheses and its fixed import and export names', () => {
    const WAT_TOKEN = /\s+|;;[a-z0-9 ,;.]*(?=\n)|\$[A-Za-z0-9_]+|[a-z][a-z0-9_.]*(?:=\d+)?|-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|[()]|"(?:env|memory|gemm|transpose)"/y;
    expect(outsideAlphabet(gemmModuleText(), WAT_TOKEN)).toBeUndefined();
    expect(outsideAlphabet('(call $f (i32.const 1)) "x"', WAT_TOKEN)).toBeDefined();
  });
});
