/**
 * The CPU / WASM-host target: one TypeScript function per kernel, straight-line nested loops
 * over typed arrays. Broadcasting is compiled into per-axis strides (constants, since a kernel
 * is specialised to concrete shapes); adjacent axes that every index treats alike are merged;
 * values that do not vary along the inner loops are computed outside them; reductions whose
 * axes are innermost accumulate in a local, the others in a Float64 scratch row.
 *
 * Sources are written with ts-morph's code writer and type-checked in an in-memory ts-morph
 * project whose only library is a small prelude (Math and typed arrays); all new kernels of a
 * plan are checked in one batch, and each distinct kernel once per process.
 */
import { CodeBlockWriter, Project, ts } from 'ts-morph';
import type { DType } from '../ir.ts';
import { rowStrides } from '../ops/registry.ts';
import { type BinaryOp, type Expr, type UnaryOp, isDiscontinuous } from './kir.ts';
import type { KernelSpec, SpecValue } from './spec.ts';
import { hashText, type CodegenTarget, type GeneratedKernel } from './target.ts';
import { TANH32 } from './tanh32.ts';

const ARRAY_OF: Record<DType, string> = { float32: 'Float32Array', int32: 'Int32Array', bool: 'Uint8Array' };

/** The only globals generated code may use. */
const PRELUDE = `
interface Array<T> { length: number; [n: number]: T; }
interface Boolean {} interface Function {} interface IArguments {} interface Number {} interface Object {}
interface RegExp {} interface String {} interface CallableFunction {} interface NewableFunction {}
interface TypedArrayOf<Self> { readonly length: number; [index: number]: number; fill(value: number): Self; }
interface Float32Array extends TypedArrayOf<Float32Array> {}
interface Float64Array extends TypedArrayOf<Float64Array> {}
interface Int32Array extends TypedArrayOf<Int32Array> {}
interface Uint8Array extends TypedArrayOf<Uint8Array> {}
declare var Float64Array: { new (length: number): Float64Array };
declare var NaN: number;
declare var Infinity: number;
interface Math {
  readonly E: number; readonly PI: number; readonly LN2: number; readonly LN10: number; readonly SQRT2: number;
  abs(x: number): number; sign(x: number): number; exp(x: number): number; expm1(x: number): number;
  log(x: number): number; log1p(x: number): number; log2(x: number): number; log10(x: number): number;
  sqrt(x: number): number; cbrt(x: number): number; pow(x: number, y: number): number; hypot(...v: number[]): number;
  sin(x: number): number; cos(x: number): number; tan(x: number): number; asin(x: number): number; acos(x: number): number;
  atan(x: number): number; atan2(y: number, x: number): number; sinh(x: number): number; cosh(x: number): number;
  tanh(x: number): number; asinh(x: number): number; acosh(x: number): number; atanh(x: number): number;
  floor(x: number): number; ceil(x: number): number; round(x: number): number; trunc(x: number): number;
  fround(x: number): number; imul(a: number, b: number): number; clz32(x: number): number;
  max(...v: number[]): number; min(...v: number[]): number;
}
declare var Math: Math;
`;

function lit(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (Object.is(v, -0)) return '-0';
  return v < 0 ? `(${v})` : String(v);
}

/** `x * acc + c` over coefficients, Horner order (the first starts from the leading two). */
function horner(x: string, acc: string, coefs: readonly number[]): string[] {
  const lines = [`let ${acc} = ${x} * ${coefs[0]} + ${coefs[1]};`];
  for (const c of coefs.slice(2)) lines.push(`${acc} = ${x} * ${acc} + ${c};`);
  return lines;
}

/**
 * Float32-accurate replacement of Math.tanh (fast math): Math.tanh is an fdlibm port in V8,
 * several times slower than TANH32's rational approximation.
 */
const TANH_FAST = {
  name: 'loom_tanh32',
  source: [
    'function loom_tanh32(x: number): number {',
    `  const c = x > ${TANH32.clamp} ? ${TANH32.clamp} : x < -${TANH32.clamp} ? -${TANH32.clamp} : x;`,
    '  const x2 = c * c;',
    ...horner('x2', 'p', TANH32.p).map((l) => `  ${l}`),
    ...horner('x2', 'q', TANH32.q).map((l) => `  ${l}`),
    `  return Math.abs(x) < ${TANH32.small} ? x : (c * p) / q;`,
    '}',
  ].join('\n'),
};

const JS_UNARY: Record<UnaryOp, (x: string) => string> = {
  neg: (x) => `(-${x})`,
  abs: (x) => `Math.abs(${x})`,
  sign: (x) => `Math.sign(${x})`,
  exp: (x) => `Math.exp(${x})`,
  log: (x) => `Math.log(${x})`,
  log1p: (x) => `Math.log1p(${x})`,
  sqrt: (x) => `Math.sqrt(${x})`,
  tanh: (x) => `Math.tanh(${x})`,
  sin: (x) => `Math.sin(${x})`,
  cos: (x) => `Math.cos(${x})`,
  floor: (x) => `Math.floor(${x})`,
  ceil: (x) => `Math.ceil(${x})`,
  trunc: (x) => `Math.trunc(${x})`,
  not: (x) => `(${x} ? 0 : 1)`,
};
const infix = (op: string) => (x: string, y: string) => `(${x} ${op} ${y})`;
const test = (op: string) => (x: string, y: string) => `(${x} ${op} ${y} ? 1 : 0)`;
const JS_BINARY: Record<BinaryOp, (x: string, y: string) => string> = {
  add: infix('+'),
  sub: infix('-'),
  mul: infix('*'),
  div: infix('/'),
  rem: infix('%'),
  pow: (x, y) => `Math.pow(${x}, ${y})`,
  max: (x, y) => `Math.max(${x}, ${y})`,
  min: (x, y) => `Math.min(${x}, ${y})`,
  and: test('&&'),
  or: test('||'),
  eq: test('==='),
  ne: test('!=='),
  lt: test('<'),
  le: test('<='),
  gt: test('>'),
  ge: test('>='),
};

/** `src` without one pair of parentheses around all of it (for the right side of an assignment). */
function bare(src: string): string {
  if (!src.startsWith('(') || !src.endsWith(')')) return src;
  let depth = 0;
  for (let i = 0; i < src.length - 1; i++) {
    if (src[i] === '(') depth++;
    else if (src[i] === ')' && --depth === 0) return src;
  }
  return src.slice(1, -1);
}

/**
 * JS source of a kernel IR expression, computed in float64 (bool as 0/1); `name` names loads.
 * With `fast`, float32 tanh calls TANH_FAST, whose source is added to `support`.
 */
export function jsExpr(e: Expr, name: (ref: number) => string, fast = false, support?: Set<string>): string {
  const r = (x: Expr) => jsExpr(x, name, fast, support);
  switch (e.k) {
    case 'const':
      return lit(e.value);
    case 'load':
      return name(e.ref);
    case 'unary':
      if (e.op === 'tanh' && fast && e.dtype === 'float32') {
        support?.add(TANH_FAST.source);
        return `${TANH_FAST.name}(${r(e.x)})`;
      }
      return JS_UNARY[e.op](r(e.x));
    case 'binary':
      return JS_BINARY[e.op](r(e.x), r(e.y));
    case 'select':
      return `(${r(e.c)} ? ${r(e.x)} : ${r(e.y)})`;
    case 'cast':
      return e.dtype === 'int32' ? `Math.trunc(${r(e.x)})` : e.dtype === 'bool' ? `(${r(e.x)} !== 0 ? 1 : 0)` : `(+${r(e.x)})`;
  }
}

export interface JsTargetOptions {
  /** Use the float32-accurate fast tanh (TANH_FAST) (default true). */
  fastMath?: boolean;
  /**
   * Round every float32 intermediate to float32 (Math.fround), exactly as a chain of library
   * ops does. Off (the default), a chain is computed in float64 and rounded where it is stored,
   * which is at least as accurate and much faster; values read by a discontinuous expression
   * (floor, ceil, trunc, sign, round, comparisons, mod) are still rounded first, so those see
   * the same float32 operands as the library would.
   */
  roundIntermediates?: boolean;
}

interface Emitted {
  params: { name: string; type: string }[];
  body: string;
  /** Helper functions the body calls. */
  support: string[];
}

/** Builds the function body of a kernel; names are fixed by the spec. */
function emitBody(spec: KernelSpec, opts: JsTargetOptions): Emitted {
  const roundAll = opts.roundIntermediates ?? false;
  const fast = opts.fastMath ?? true;
  const support = new Set<string>();
  const v = (ref: number) => `v${ref}`;
  const params: { name: string; type: string }[] = [];
  spec.inputs.forEach((inp, k) => params.push({ name: `in${k}`, type: ARRAY_OF[inp.dtype] }));
  if (spec.matmul) params.push({ name: 'mm', type: 'Float32Array' });
  spec.outputs.forEach((o, k) => params.push({ name: `out${k}`, type: ARRAY_OF[o.dtype] }));

  const values = spec.values;
  const domainSize = spec.domain.reduce((a, b) => a * b, 1);
  const rowMajor = rowStrides(spec.domain);
  // The in-place output that is the matmul result itself, unchanged, needs no store.
  const identity = (o: { value: number; k: number; shape: number[] }): boolean => {
    const v = values[o.value]!;
    return o.k === spec.inPlace && v.kind === 'load' && 'matmul' in v.buffer && o.shape.reduce((a, b) => a * b, 1) === domainSize && v.strides.every((x, i) => x === rowMajor[i]);
  };
  const loopOutputs = spec.outputs.map((o, k) => ({ ...o, k })).filter((o) => values[o.value]!.kind !== 'reduce' && !identity(o));
  const reduceOutputs = spec.outputs.map((o, k) => ({ ...o, k })).filter((o) => values[o.value]!.kind === 'reduce');
  if (loopOutputs.length === 0 && reduceOutputs.length === 0) return { params, body: '// nothing left to compute: the output is the product, written in place', support: [] };

  // Index vectors (strides per domain axis): loads, reduction outputs, the domain's own row-major order.
  const vectors: number[][] = [rowMajor];
  for (const v of values) {
    if (v.kind === 'load') vectors.push(v.strides);
    if (v.kind === 'reduce') vectors.push(v.outStrides);
  }
  // Merge axis k into k+1 wherever every index vector allows it.
  const dims = [...spec.domain];
  const merged = vectors.map((s) => [...s]);
  for (let k = dims.length - 2; k >= 0; k--) {
    if (merged.every((s) => s[k] === s[k + 1]! * dims[k + 1]!)) {
      dims[k + 1] = dims[k]! * dims[k + 1]!;
      for (const s of merged) s.splice(k, 1);
      dims.splice(k, 1);
    }
  }
  const rank = dims.length;
  const vecKey = (s: number[]) => s.join(',');
  const vecIndex = new Map<string, number>();
  const vecs: number[][] = [];
  const vecOf = (s: number[]): number => {
    const key = vecKey(s);
    if (!vecIndex.has(key)) {
      vecIndex.set(key, vecs.length);
      vecs.push(s);
    }
    return vecIndex.get(key)!;
  };
  let vi = 1;
  const rowVec = vecOf(merged[0]!);
  const valueVec = new Map<number, number>();
  values.forEach((v, i) => {
    if (v.kind === 'load' || v.kind === 'reduce') valueVec.set(i, vecOf(merged[vi++]!));
  });
  /** Offset expression of vector j inside loops 0..L-1. */
  const off = (j: number, L: number): string => {
    const s = vecs[j]!;
    let last = -1;
    for (let k = 0; k < L; k++) if (s[k] !== 0) last = k;
    return last < 0 ? '0' : `o${j}_${last + 1}`;
  };
  const varying = (s: number[]): number => {
    let last = -1;
    s.forEach((x, k) => {
      if (x !== 0) last = k;
    });
    return last + 1;
  };

  // Loop level of each value: the innermost loop it varies with.
  const level: number[] = values.map(() => 0);
  values.forEach((v, i) => {
    if (v.kind === 'load') level[i] = varying(vecs[valueVec.get(i)!]!);
    else if (v.kind === 'expr') level[i] = v.args.reduce((m, a) => Math.max(m, level[a]!), 0);
    else if (v.kind === 'reduce') level[i] = rank;
  });
  // Reductions: local accumulator when the reduced axes are exactly the innermost ones.
  const reduces = values.flatMap((v, i) => (v.kind === 'reduce' ? [{ i, v, s: vecs[valueVec.get(i)!]! }] : []));
  const localAt = new Map<number, number>();
  for (const r of reduces) {
    const q = varying(r.s);
    const suffix = r.s.slice(0, q).every((x) => x !== 0);
    if (suffix) localAt.set(r.i, q);
  }

  const lines: string[] = [];
  const ind = (L: number) => '  '.repeat(L);
  // Float32 values a discontinuous expression reads are rounded even when intermediates are not.
  const readByStep = new Set<number>();
  for (const x of values) if (x.kind === 'expr' && isDiscontinuous(x.expr)) for (const a of x.args) readByStep.add(a);
  const valueExpr = (x: SpecValue & { kind: 'expr' }, i: number): string => {
    const round = roundAll || readByStep.has(i);
    const src = jsExpr(x.expr, v, fast, support);
    if (x.dtype === 'float32') return round ? `Math.fround(${src})` : src;
    if (x.dtype === 'int32') return `(${src}) | 0`;
    return src;
  };
  const reduceOf = (i: number) => values[i] as SpecValue & { kind: 'reduce' };
  const finish = (i: number, acc: string): string => {
    const r = reduceOf(i);
    return r.reducer.finish ? bare(jsExpr(r.reducer.finish, () => acc)) : acc;
  };
  const outsOf = (value: number) => reduceOutputs.filter((o) => o.value === value);

  // Scratch rows for the other reductions.
  for (const r of reduces) {
    if (localAt.has(r.i)) continue;
    lines.push(`const s${r.i} = new Float64Array(${r.v.outSize});`);
    if (r.v.reducer.identity !== 0) lines.push(`s${r.i}.fill(${lit(r.v.reducer.identity)});`);
  }

  const emitLevel = (L: number): void => {
    const pad = ind(L);
    values.forEach((v, i) => {
      if (level[i] !== L) return;
      if (v.kind === 'load') {
        const buf = 'matmul' in v.buffer ? 'mm' : `in${v.buffer.input}`;
        lines.push(`${pad}const v${i} = ${buf}[${off(valueVec.get(i)!, L)}];`);
      } else if (v.kind === 'const') lines.push(`${pad}const v${i} = ${lit(v.value)};`);
      else if (v.kind === 'expr') lines.push(`${pad}const v${i} = ${valueExpr(v, i)};`);
    });
    for (const r of reduces) if (localAt.get(r.i) === L) lines.push(`${pad}let a${r.i} = ${lit(r.v.reducer.identity)};`);
    if (L < rank) {
      lines.push(`${pad}for (let i${L} = 0; i${L} < ${dims[L]}; i${L}++) {`);
      vecs.forEach((s, j) => {
        if (s[L] === 0) return;
        const prev = off(j, L);
        const step = s[L] === 1 ? `i${L}` : `i${L} * ${s[L]}`;
        lines.push(`${ind(L + 1)}const o${j}_${L + 1} = ${prev === '0' ? step : `${prev} + ${step}`};`);
      });
      emitLevel(L + 1);
      lines.push(`${pad}}`);
    } else {
      for (const r of reduces) {
        const acc = localAt.has(r.i) ? `a${r.i}` : `s${r.i}[${off(valueVec.get(r.i)!, L)}]`;
        lines.push(`${pad}${acc} = ${bare(jsExpr(r.v.reducer.combine, (ref) => (ref === 0 ? acc : `v${r.v.arg}`)))};`);
      }
      for (const o of loopOutputs) lines.push(`${pad}out${o.k}[${off(rowVec, L)}] = v${o.value};`);
    }
    for (const r of reduces) {
      if (localAt.get(r.i) !== L) continue;
      for (const o of outsOf(r.i)) lines.push(`${pad}out${o.k}[${off(valueVec.get(r.i)!, L)}] = ${finish(r.i, `a${r.i}`)};`);
    }
  };
  emitLevel(0);

  for (const r of reduces) {
    if (localAt.has(r.i)) continue;
    for (const o of outsOf(r.i)) lines.push(`for (let j = 0; j < ${r.v.outSize}; j++) out${o.k}[j] = ${finish(r.i, `s${r.i}[j]`)};`);
  }
  return { params, body: lines.join('\n'), support: [...support] };
}

interface CheckProject {
  project: Project;
  checked: Set<string>;
  files: number;
}
let checker: CheckProject | undefined;

function checkProject(): CheckProject {
  if (!checker) {
    const project = new Project({
      useInMemoryFileSystem: true,
      compilerOptions: { noLib: true, strict: true, target: ts.ScriptTarget.ES2020, noImplicitAny: true, types: [] },
    });
    project.createSourceFile('/prelude.d.ts', PRELUDE);
    checker = { project, checked: new Set(), files: 0 };
  }
  return checker;
}

/** Writes one kernel function with ts-morph's code writer (cheap: no AST is built until the check). */
function writeFunction(name: string, emitted: Emitted): string {
  const w = new CodeBlockWriter({ indentNumberOfSpaces: 2 });
  w.write(`function ${name}(${emitted.params.map((p) => `${p.name}: ${p.type}`).join(', ')}): void`).block(() => {
    for (const line of emitted.body.split('\n')) w.writeLine(line);
  });
  return w.toString();
}

export class JsTarget implements CodegenTarget {
  readonly name = 'js';
  constructor(private readonly opts: JsTargetOptions = {}) {}

  emit(spec: KernelSpec): GeneratedKernel {
    const emitted = emitBody(spec, this.opts);
    const sig = emitted.params.map((p) => `${p.name}: ${p.type}`).join(', ');
    // The host glue depends on output shapes, the matmul and in-place choice too, not only on the loop.
    const glue = JSON.stringify({ o: spec.outputs.map((o) => [o.dtype, o.shape]), m: spec.matmul ?? null, p: spec.inPlace ?? null });
    const name = `loom_${hashText(`${sig}\n${emitted.body}\n${emitted.support.join('\n')}\n${glue}`)}`;
    return { name, target: this.name, source: writeFunction(name, emitted), support: emitted.support, spec };
  }

  check(kernels: readonly GeneratedKernel[]): void {
    const c = checkProject();
    const todo = kernels.filter((k) => !c.checked.has(k.name));
    if (todo.length === 0) return;
    const uniq = [...new Map(todo.map((k) => [k.name, k])).values()];
    const support = [...new Set(uniq.flatMap((k) => k.support))];
    const sf = c.project.createSourceFile(`/check/batch${c.files++}.ts`, [...support, ...uniq.map((k) => k.source)].join('\n\n'), { overwrite: true });
    const diags = sf.getPreEmitDiagnostics();
    c.project.removeSourceFile(sf);
    if (diags.length) {
      const text = c.project.formatDiagnosticsWithColorAndContext(diags);
      throw new Error(`generated kernel failed to type-check (${uniq.map((k) => k.spec.label).join('; ')}):\n${text}`);
    }
    for (const k of uniq) c.checked.add(k.name);
  }
}

/** The default host target. */
export const jsTarget = new JsTarget();
