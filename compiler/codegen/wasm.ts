/**
 * The WebAssembly target for the wasm backend: a kernel spec as one WebAssembly text function
 * over the backend's memory, its arguments the byte offsets of the tensors (inputs, the product
 * when the kernel has one, outputs). The runtime assembles it (runtime/wasm-kernels.ts) and calls
 * it where the JavaScript target's function would run.
 *
 * The loop nest is the JavaScript target's: adjacent axes that every index treats alike are merged,
 * and values that do not vary along the inner loops are computed outside them, as scalars. The
 * innermost loop runs four elements at a time (f32x4 / i32x4; values computed outside it are
 * splatted) and then a scalar tail. Kernels this target renders: elementwise work (the tail of a
 * product's kernel included), and column reductions (over outer loops into rows along the
 * innermost one, accumulated in the output rows four columns at a time; outer loops may be kept, as
 * the matrix loop of a stacked product's per-matrix column sums), whose every load is
 * contiguous along the innermost loop or constant in it, with ops it has an instruction for
 * (`wasmUnsupported` says why not; such kernels stay JS).
 *
 * Every op rounds to float32, as the library's kernels and the reference interpreter do (the
 * JavaScript target computes a chain, and a reduction's sum, in float64 and rounds where it
 * stores); literals are float32.
 * min/max propagate NaN (as Math.min/max); bool is 0/1 in registers and one byte in memory; a float
 * cast to int32 truncates and saturates (NaN -> 0).
 */
import type { DType } from '../ir.ts';
import { rowStrides } from '../ops/registry.ts';
import { type BinaryOp, type Expr, type UnaryOp, isCompare } from './kir.ts';
import type { KernelSpec } from './spec.ts';
import { hashText, type CodegenTarget, type GeneratedKernel } from './target.ts';

/** Scalar and vector instruction prefixes of a dtype (bool is int32 0/1 in registers). */
const SCALAR: Record<DType, 'f32' | 'i32'> = { float32: 'f32', int32: 'i32', bool: 'i32' };
const VECTOR: Record<DType, 'f32x4' | 'i32x4'> = { float32: 'f32x4', int32: 'i32x4', bool: 'i32x4' };
/** log2 of an element's bytes in memory. */
const SHIFT: Record<DType, number> = { float32: 2, int32: 2, bool: 0 };

const FLOAT_UNARY: Partial<Record<UnaryOp, string>> = { neg: 'neg', abs: 'abs', sqrt: 'sqrt', floor: 'floor', ceil: 'ceil', trunc: 'trunc' };
const FLOAT_BINARY: Partial<Record<BinaryOp, string>> = { add: 'add', sub: 'sub', mul: 'mul', div: 'div', min: 'min', max: 'max' };
const INT_BINARY: Partial<Record<BinaryOp, string>> = { add: 'add', sub: 'sub', mul: 'mul' };
/** Comparison instructions by operand type (signed for int32). */
const COMPARE: Record<'f32' | 'i32', Record<string, string>> = {
  f32: { eq: 'eq', ne: 'ne', lt: 'lt', le: 'le', gt: 'gt', ge: 'ge' },
  i32: { eq: 'eq', ne: 'ne', lt: 'lt_s', le: 'le_s', gt: 'gt_s', ge: 'ge_s' },
};

/** Why this target has no instruction sequence for `e`, or undefined. */
function exprUnsupported(e: Expr): string | undefined {
  const float = (x: Expr) => x.dtype === 'float32';
  switch (e.k) {
    case 'const':
    case 'load':
      return undefined;
    case 'unary':
      if (e.op === 'not' ? float(e.x) : float(e) ? !FLOAT_UNARY[e.op] : e.op !== 'neg' && e.op !== 'abs') return `${e.op} on ${e.x.dtype}`;
      return exprUnsupported(e.x);
    case 'binary': {
      const ok = isCompare(e.op) || (e.op === 'and' || e.op === 'or' ? !float(e.x) : float(e.x) ? FLOAT_BINARY[e.op] : INT_BINARY[e.op] || e.op === 'min' || e.op === 'max');
      if (!ok) return `${e.op} on ${e.x.dtype}`;
      return exprUnsupported(e.x) ?? exprUnsupported(e.y);
    }
    case 'select':
      return exprUnsupported(e.c) ?? exprUnsupported(e.x) ?? exprUnsupported(e.y);
    case 'cast':
      return exprUnsupported(e.x);
  }
}

function f32Text(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  const f = Math.fround(v);
  if (f === Infinity) return 'inf';
  if (f === -Infinity) return '-inf';
  return Object.is(f, -0) ? '-0' : String(f);
}
/** An int32 literal as the JS target's `| 0` would make it (NaN and infinities give 0). */
const i32Text = (v: number): string => String(Number.isFinite(v) ? Math.trunc(v) | 0 : 0);
const literal = (v: number, dtype: DType): string => (dtype === 'float32' ? f32Text(v) : i32Text(v));

const scalarConst = (v: number, dtype: DType) => `(${SCALAR[dtype]}.const ${literal(v, dtype)})`;
const vectorConst = (v: number, dtype: DType) => {
  const t = literal(v, dtype);
  return `(v128.const ${VECTOR[dtype]} ${t} ${t} ${t} ${t})`;
};
const ZERO = '(v128.const i32x4 0 0 0 0)';
/** A 0/1 int32 value from a comparison: a scalar one is already 0/1, a vector lane mask -1/0 is negated. */
const bool01 = (mask: string) => `(i32x4.neg ${mask})`;

/** Scalar WebAssembly text of `e`; `name(ref)` is the text of a load. */
function scalarExpr(e: Expr, name: (ref: number) => string): string {
  const r = (x: Expr) => scalarExpr(x, name);
  switch (e.k) {
    case 'const':
      return scalarConst(e.value, e.dtype);
    case 'load':
      return name(e.ref);
    case 'unary': {
      const x = r(e.x);
      if (e.op === 'not') return `(i32.eqz ${x})`;
      if (e.dtype === 'float32') return `(f32.${FLOAT_UNARY[e.op]} ${x})`;
      if (e.op === 'neg') return `(i32.sub (i32.const 0) ${x})`;
      // abs: x, or -x where negative (select evaluates both; x is an expression without effects).
      return `(select (i32.sub (i32.const 0) ${x}) ${x} (i32.lt_s ${x} (i32.const 0)))`;
    }
    case 'binary': {
      const [x, y] = [r(e.x), r(e.y)];
      const t = SCALAR[e.x.dtype];
      if (isCompare(e.op)) return `(${t}.${COMPARE[t][e.op]} ${x} ${y})`;
      if (e.op === 'and') return `(i32.and (i32.ne ${x} (i32.const 0)) (i32.ne ${y} (i32.const 0)))`;
      if (e.op === 'or') return `(i32.ne (i32.or ${x} ${y}) (i32.const 0))`;
      if (t === 'f32') return `(f32.${FLOAT_BINARY[e.op]} ${x} ${y})`;
      if (e.op === 'min') return `(select ${x} ${y} (i32.lt_s ${x} ${y}))`;
      if (e.op === 'max') return `(select ${x} ${y} (i32.gt_s ${x} ${y}))`;
      return `(i32.${INT_BINARY[e.op]} ${x} ${y})`;
    }
    case 'select':
      return `(select ${r(e.x)} ${r(e.y)} ${r(e.c)})`;
    case 'cast': {
      const x = r(e.x);
      const from = e.x.dtype;
      if (e.dtype === 'bool') return from === 'float32' ? `(f32.ne ${x} (f32.const 0))` : `(i32.ne ${x} (i32.const 0))`;
      if (e.dtype === 'int32') return from === 'float32' ? `(i32.trunc_sat_f32_s ${x})` : x;
      return from === 'float32' ? x : `(f32.convert_i32_s ${x})`;
    }
  }
}

/** f32x4 / i32x4 WebAssembly text of `e`; `name(ref)` is the text of a load (a vector). */
function vectorExpr(e: Expr, name: (ref: number) => string): string {
  const r = (x: Expr) => vectorExpr(x, name);
  switch (e.k) {
    case 'const':
      return vectorConst(e.value, e.dtype);
    case 'load':
      return name(e.ref);
    case 'unary': {
      const x = r(e.x);
      if (e.op === 'not') return bool01(`(i32x4.eq ${x} ${ZERO})`);
      if (e.dtype === 'float32') return `(f32x4.${FLOAT_UNARY[e.op]} ${x})`;
      return `(i32x4.${e.op} ${x})`;
    }
    case 'binary': {
      const [x, y] = [r(e.x), r(e.y)];
      const s = SCALAR[e.x.dtype];
      const t = VECTOR[e.x.dtype];
      if (isCompare(e.op)) return bool01(`(${t}.${COMPARE[s][e.op]} ${x} ${y})`);
      const nz = (v: string) => `(i32x4.ne ${v} ${ZERO})`;
      if (e.op === 'and') return bool01(`(v128.and ${nz(x)} ${nz(y)})`);
      if (e.op === 'or') return bool01(nz(`(v128.or ${x} ${y})`));
      if (s === 'f32') return `(f32x4.${FLOAT_BINARY[e.op]} ${x} ${y})`;
      if (e.op === 'min' || e.op === 'max') return `(i32x4.${e.op}_s ${x} ${y})`;
      return `(i32x4.${INT_BINARY[e.op]} ${x} ${y})`;
    }
    case 'select':
      return `(v128.bitselect ${r(e.x)} ${r(e.y)} (i32x4.ne ${r(e.c)} ${ZERO}))`;
    case 'cast': {
      const x = r(e.x);
      const from = e.x.dtype;
      if (e.dtype === 'bool') return bool01(from === 'float32' ? `(f32x4.ne ${x} (v128.const f32x4 0 0 0 0))` : `(i32x4.ne ${x} ${ZERO})`);
      if (e.dtype === 'int32') return from === 'float32' ? `(i32x4.trunc_sat_f32x4_s ${x})` : x;
      return from === 'float32' ? x : `(f32x4.convert_i32x4_s ${x})`;
    }
  }
}

/** The loop nest of a kernel: merged extents, and per index vector its strides over them. */
interface Nest {
  dims: number[];
  /** Strides of the output's row-major order. */
  row: number[];
  /** Strides of each load, and of each reduction's output, by value index. */
  strides: Map<number, number[]>;
}

/**
 * Merges axis k into k+1 wherever every index vector allows it (as the JS target does). A kernel
 * of rank 0 is one loop of one element.
 */
function loopNest(spec: KernelSpec): Nest {
  const rank0 = spec.domain.length === 0;
  const dims = rank0 ? [1] : [...spec.domain];
  const indexed = spec.values.flatMap((v, i) => (v.kind === 'load' ? [{ i, strides: v.strides }] : v.kind === 'reduce' ? [{ i, strides: v.outStrides }] : []));
  const vectors = [rank0 ? [1] : rowStrides(spec.domain), ...indexed.map((l) => (rank0 ? [0] : [...l.strides]))];
  for (let k = dims.length - 2; k >= 0; k--) {
    if (vectors.every((s) => s[k] === s[k + 1]! * dims[k + 1]!)) {
      dims[k + 1] = dims[k]! * dims[k + 1]!;
      for (const s of vectors) s.splice(k, 1);
      dims.splice(k, 1);
    }
  }
  return { dims, row: vectors[0]!, strides: new Map(indexed.map((l, j) => [l.i, vectors[j + 1]!])) };
}

/** The outputs a kernel stores: not the product's own value written in place, which is already there. */
function storedOutputs(spec: KernelSpec): number[] {
  const size = spec.domain.reduce((a, b) => a * b, 1);
  const row = rowStrides(spec.domain);
  return spec.outputs.flatMap((o, k) => {
    const v = spec.values[o.value]!;
    const inPlace = k === spec.inPlace && v.kind === 'load' && 'matmul' in v.buffer && o.shape.reduce((a, b) => a * b, 1) === size && v.strides.every((x, i) => x === row[i]);
    return inPlace ? [] : [k];
  });
}

/** Why the wasm target cannot render `spec` (it then runs as the JS target's function), or undefined. */
export function wasmUnsupported(spec: KernelSpec): string | undefined {
  if (storedOutputs(spec).length === 0) return 'nothing to compute: the output is the product, written in place';
  const nest = loopNest(spec);
  const inner = nest.dims.length - 1;
  for (const [i, v] of spec.values.entries()) {
    if (v.kind === 'load' && nest.strides.get(i)![inner]! > 1) return `value ${i} loads with stride ${nest.strides.get(i)![inner]} along the innermost loop`;
    if (v.kind === 'expr') {
      const why = exprUnsupported(v.expr);
      if (why) return `value ${i} computes ${why}, which the wasm target leaves to JavaScript`;
      const r = v.args.find((a) => spec.values[a]!.kind === 'reduce');
      if (r !== undefined) return `value ${i} reads the reduction v${r} inside the kernel; the wasm target computes a reduction only as an output`;
    }
    if (v.kind === 'reduce') {
      // Reductions that keep the innermost loop: over outer loops into rows along it (column sums,
      // and the per-matrix column sums of a stacked product, whose matrix loop is kept).
      const s = nest.strides.get(i)!;
      if (s[inner] !== 1) return `value ${i} reduces (${v.reducer.op}) over the innermost loop; the wasm target renders column reductions`;
      if (v.dtype === 'bool') return `value ${i} reduces (${v.reducer.op}) bool values`;
      if (spec.outputs.filter((o) => o.value === i).length !== 1) return `value ${i}, a reduction, is not exactly one output`;
      if (spec.values[v.arg]!.kind === 'reduce') return `value ${i} reduces a reduction`;
      const why = exprUnsupported(v.reducer.combine) ?? (v.reducer.finish && exprUnsupported(v.reducer.finish));
      if (why) return `value ${i} reduces with ${why}`;
    }
  }
  return undefined;
}

/** A kernel as a WebAssembly function named `name`: parameters are byte offsets, in `params` order. */
export interface WasmKernel extends GeneratedKernel {
  /** The function's parameters: `in<k>` per spec input, `mm` for the product, `out<k>` per output. */
  params: string[];
}

/** The text of one function `$<name>`, exported as `name`. */
function renderFunction(spec: KernelSpec, name: string): { params: string[]; text: string } {
  const values = spec.values;
  const { dims, row, strides } = loopNest(spec);
  const rank = dims.length;
  const inner = rank - 1;
  const params = [...spec.inputs.map((_v, k) => `in${k}`), ...(spec.matmul ? ['mm'] : []), ...spec.outputs.map((_v, k) => `out${k}`)];

  // Index vectors (distinct stride lists) and the loop level each value is computed at.
  const vecs: number[][] = [];
  const vecOf = (s: number[]): number => {
    const j = vecs.findIndex((x) => x.join() === s.join());
    return j >= 0 ? j : vecs.push(s) - 1;
  };
  const rowVec = vecOf(row);
  const indexVec = new Map([...strides].map(([i, s]) => [i, vecOf(s)]));
  const varying = (s: number[]) => s.reduce((last, x, k) => (x !== 0 ? k + 1 : last), 0);
  const level: number[] = [];
  values.forEach((v, i) => {
    if (v.kind === 'load') level[i] = varying(vecs[indexVec.get(i)!]!);
    else if (v.kind === 'expr') level[i] = v.args.reduce((m, a) => Math.max(m, level[a]!), 0);
    // A reduction accumulates in the innermost loop.
    else level[i] = v.kind === 'reduce' ? rank : 0;
  });

  /** Element offset of vector j inside loops 0..L-1 (a local, or 0). */
  const off = (j: number, L: number): string => {
    const s = vecs[j]!;
    let last = -1;
    for (let k = 0; k < L; k++) if (s[k] !== 0) last = k;
    return last < 0 ? '(i32.const 0)' : `(local.get $o${j}_${last + 1})`;
  };
  /** Byte address of vector j's element at the innermost index $i (or at loop level L for a value outside it). */
  const addr = (base: string, dtype: DType, j: number, L: number): string => {
    const o = off(j, Math.min(L, inner));
    const elem = L > inner && vecs[j]![inner] !== 0 ? (o === '(i32.const 0)' ? '(local.get $i)' : `(i32.add ${o} (local.get $i))`) : o;
    if (elem === '(i32.const 0)') return `(local.get $${base})`;
    return `(i32.add (local.get $${base}) ${SHIFT[dtype] ? `(i32.shl ${elem} (i32.const ${SHIFT[dtype]}))` : elem})`;
  };
  const bufferOf = (i: number): string => {
    const v = values[i]!;
    return v.kind === 'load' && 'matmul' in v.buffer ? 'mm' : `in${(v as { buffer: { input: number } }).buffer.input}`;
  };

  const scalarLoad = (i: number, L: number): string => {
    const v = values[i] as { dtype: DType };
    const a = addr(bufferOf(i), v.dtype, indexVec.get(i)!, L);
    return v.dtype === 'bool' ? `(i32.load8_u ${a})` : `(${SCALAR[v.dtype]}.load ${a})`;
  };
  const vectorLoad = (i: number): string => {
    const v = values[i] as { dtype: DType };
    const a = addr(bufferOf(i), v.dtype, indexVec.get(i)!, rank);
    return v.dtype === 'bool' ? `(i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u (v128.load32_zero align=1 ${a})))` : `(v128.load align=4 ${a})`;
  };
  /** Values computed outside the vector loop that it reads: splatted once, before it. */
  const splatted = new Set<number>();
  values.forEach((v, i) => {
    if (level[i] === rank && v.kind === 'expr') v.args.forEach((a) => level[a]! < rank && splatted.add(a));
    if (v.kind === 'reduce' && level[v.arg]! < rank) splatted.add(v.arg);
  });
  // Reductions accumulate into their output row (exact in float32): stored element by element, they are not stored again.
  const reduces = spec.outputs.flatMap((o, k) => {
    const v = values[o.value]!;
    return v.kind === 'reduce' ? [{ k, i: o.value, v, at: (L: number) => addr(`out${k}`, v.dtype, indexVec.get(o.value)!, L) }] : [];
  });
  const stored = storedOutputs(spec).filter((k) => values[spec.outputs[k]!.value]!.kind !== 'reduce');
  for (const k of stored) if (level[spec.outputs[k]!.value]! < rank) splatted.add(spec.outputs[k]!.value);
  const asVector = (i: number): string => `(local.get $v${i})`;

  /** Statements computing the values of level L: scalars, or with `vector` the vectors of the innermost loop. */
  const compute = (L: number, vector: boolean): string[] =>
    values.flatMap((v, i) => {
      if (level[i] !== L || v.kind === 'reduce') return [];
      if (vector) {
        const src = v.kind === 'load' ? vectorLoad(i) : v.kind === 'const' ? vectorConst(v.value, v.dtype) : vectorExpr((v as { expr: Expr }).expr, asVector);
        return [`(local.set $v${i} ${src})`];
      }
      const src = v.kind === 'load' ? scalarLoad(i, L) : v.kind === 'const' ? scalarConst(v.value, v.dtype) : scalarExpr((v as { expr: Expr }).expr, (ref) => `(local.get $s${ref})`);
      return [`(local.set $s${i} ${src})`];
    });
  const store = (vector: boolean): string[] =>
    stored.map((k) => {
      const o = spec.outputs[k]!;
      const a = addr(k === spec.inPlace ? 'mm' : `out${k}`, o.dtype, rowVec, rank);
      if (!vector) return o.dtype === 'bool' ? `(i32.store8 ${a} (local.get $s${o.value}))` : `(${SCALAR[o.dtype]}.store ${a} (local.get $s${o.value}))`;
      const x = asVector(o.value);
      if (o.dtype !== 'bool') return `(v128.store align=4 ${a} ${x})`;
      // Four 0/1 lanes to four bytes.
      return `(v128.store32_lane align=1 0 ${a} (i8x16.narrow_i16x8_u (i16x8.narrow_i32x4_u ${x} ${x}) ${ZERO}))`;
    });
  /** acc = combine(acc, element) of each reduction, on the row element(s) at the innermost index. */
  const accumulate = (vector: boolean): string[] =>
    reduces.map(({ i, v, at }) => {
      const a = at(rank);
      if (vector) return `(v128.store align=4 ${a} ${vectorExpr(v.reducer.combine, (ref) => (ref === 0 ? `(v128.load align=4 ${a})` : asVector(v.arg)))})`;
      const T = SCALAR[v.dtype];
      return `(${T}.store ${a} ${scalarExpr(v.reducer.combine, (ref) => (ref === 0 ? `(${T}.load ${a})` : `(local.get $s${v.arg})`))})`;
    });
  const loop = (tag: string, index: string, from: string, to: number, step: number, body: string[]): string[] => [
    `(local.set ${index} ${from})`,
    `(block $end_${tag} (loop $next_${tag}`,
    `  (br_if $end_${tag} (i32.ge_u (local.get ${index}) (i32.const ${to})))`,
    ...body.map((l) => `  ${l}`),
    `  (local.set ${index} (i32.add (local.get ${index}) (i32.const ${step})))`,
    `  (br $next_${tag})))`,
  ];

  const n = dims[inner]!;
  const n4 = n - (n % 4);
  const level0 = (L: number): string[] => {
    const lines = compute(L, false);
    if (L < inner) {
      const offsets = vecs.flatMap((s, j) => {
        if (s[L] === 0) return [];
        const step = s[L] === 1 ? `(local.get $i${L})` : `(i32.mul (local.get $i${L}) (i32.const ${s[L]}))`;
        const prev = off(j, L);
        return [`(local.set $o${j}_${L + 1} ${prev === '(i32.const 0)' ? step : `(i32.add ${prev} ${step})`})`];
      });
      return [...lines, ...loop(`a${L}`, `$i${L}`, '(i32.const 0)', dims[L]!, 1, [...offsets, ...level0(L + 1)])];
    }
    // The innermost loop: four elements at a time, then the rest one by one from where it stopped.
    if (n4 > 0) {
      for (const i of splatted) lines.push(`(local.set $v${i} (${VECTOR[values[i]!.dtype]}.splat (local.get $s${i})))`);
      lines.push(...loop('simd', '$i', '(i32.const 0)', n4, 4, [...compute(rank, true), ...accumulate(true), ...store(true)]));
    }
    if (n4 < n) lines.push(...loop('tail', '$i', `(i32.const ${n4})`, n, 1, [...compute(rank, false), ...accumulate(false), ...store(false)]));
    return lines;
  };
  // Reduction outputs start at the identity and end with `finish` (a mean's division), one element at
  // a time over the whole output, which is contiguous (the kept axes in order).
  const overRow = (tag: string, r: (typeof reduces)[number], value: (acc: string) => string): string[] => {
    const T = SCALAR[r.v.dtype];
    const at = `(i32.add (local.get $out${r.k}) (i32.shl (local.get $i) (i32.const ${SHIFT[r.v.dtype]})))`;
    return loop(tag, '$i', '(i32.const 0)', r.v.outSize, 1, [`(${T}.store ${at} ${value(`(${T}.load ${at})`)})`]);
  };
  const body = [
    ...reduces.flatMap((r) => overRow(`init${r.k}`, r, () => scalarConst(r.v.reducer.identity, r.v.dtype))),
    ...level0(0),
    ...reduces.flatMap((r) => (r.v.reducer.finish ? overRow(`finish${r.k}`, r, (acc) => scalarExpr(r.v.reducer.finish!, () => acc)) : [])),
  ];

  const locals = [
    '(local $i i32)',
    ...dims.slice(0, inner).map((_d, L) => `(local $i${L} i32)`),
    ...vecs.flatMap((s, j) => s.slice(0, inner).flatMap((x, L) => (x === 0 ? [] : [`(local $o${j}_${L + 1} i32)`]))),
    ...values.flatMap((v, i) => (v.kind === 'reduce' ? [] : [`(local $s${i} ${SCALAR[v.dtype]})`])),
    ...values.flatMap((v, i) => ((level[i] === rank && v.kind !== 'reduce') || splatted.has(i) ? [`(local $v${i} v128)`] : [])),
  ];
  const text = [
    `(func $${name} (export "${name}") ${params.map((p) => `(param $${p} i32)`).join(' ')}`,
    `  ;; ${spec.domain.length ? `domain [${spec.domain.join(', ')}]` : 'one element'} as loops [${dims.join(', ')}]`,
    ...[...locals, ...body].map((l) => `  ${l}`),
    ')',
  ].join('\n');
  return { params, text };
}

/** A module of kernel functions over the imported memory `env.memory`. */
export function wasmModuleText(kernels: readonly { source: string }[]): string {
  return ['(module', '(import "env" "memory" (memory 0))', ...kernels.map((k) => k.source), ')'].join('\n');
}

export class WasmTarget implements CodegenTarget {
  readonly name = 'wasm';

  /** Renders `spec`; throws where `wasmUnsupported` names a reason. */
  emit(spec: KernelSpec): WasmKernel {
    const why = wasmUnsupported(spec);
    if (why) throw new Error(`internal: ${spec.label}: ${why}`);
    const draft = renderFunction(spec, 'kernel');
    // Named by what it computes and how the host calls it (output shapes, product, in-place choice).
    const glue = JSON.stringify({ o: spec.outputs.map((o) => [o.dtype, o.shape]), m: spec.matmul ?? null, p: spec.inPlace ?? null });
    const name = `loom_wasm_${hashText(`${draft.text}\n${glue}`)}`;
    const { params, text } = renderFunction(spec, name);
    return { name, target: this.name, source: text, support: [], spec, params };
  }

  /** The assembler validates the module (runtime/wasm-kernels.ts). */
  check(): void {}
}

export const wasmTarget = new WasmTarget();
