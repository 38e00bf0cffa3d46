/**
 * The WGSL target: each output of a fused group becomes one compute shader with one invocation
 * per output element (a group with several outputs gives several shaders; each recomputes what
 * its output needs, which for fused elementwise work is cheaper than a second pass over memory).
 *
 * - An elementwise output decodes its domain coordinates from the invocation's index and reads
 *   each input through its broadcast strides.
 * - A reduction output decodes the kept coordinates, then loops over the reduced ones, computing
 *   the element chain and combining it into a local accumulator (f32 or i32).
 * - A matmul group reads the product (computed before the shader, as for the JS target, bias and
 *   activation applied when the spec says so) as one more buffer, and applies the rest.
 *
 * Types: float32 is f32, int32 is i32, bool is i32 0/1 (in buffers and in expressions alike).
 * Each shader has a stable hash of its source (tfjs's `shaderKey`), and comes both as a complete
 * module (bindings: the output at 0, then the buffers it reads) and as the part tfjs-backend-webgpu
 * programs supply (`getUserCode`): helper functions and `fn loom_value(index: i32) -> T`.
 */
import type { DType } from '../ir.ts';
import { rowStrides } from '../ops/registry.ts';
import { type BinaryOp, type Expr, type UnaryOp, isCompare } from './kir.ts';
import type { BufferRef, KernelSpec, SpecValue } from './spec.ts';
import { hashText, type CodegenTarget, type GeneratedKernel } from './target.ts';

const TYPE: Record<DType, string> = { float32: 'f32', int32: 'i32', bool: 'i32' };
export const WORKGROUP_SIZE = 64;
/** The most workgroups one dispatch dimension may have (WebGPU's default limit). */
const MAX_GROUPS = 65535;

export interface WgslShader {
  /** The spec output it writes. */
  output: number;
  dtype: DType;
  /** Elements written, one invocation each. */
  size: number;
  /** Buffers read, in binding order after the output, with their names in the source (`x0`, `x1`, ...). */
  reads: { buffer: BufferRef; name: string; dtype: DType }[];
  workgroupSize: [number, number, number];
  /** Workgroups to dispatch. */
  dispatch: [number, number, number];
  /** Helper functions and `fn loom_value(index: i32) -> T`, over the read buffers by name. */
  body: string;
  /** A complete module: the bindings, the body and `main`. */
  source: string;
  /** Hash of `source`: equal sources, equal keys. */
  hash: string;
}

/** Helpers a rendered expression may call, each emitted once per shader when used. */
const HELPERS: Record<string, string> = {
  // A let-bound bit pattern is not a const-expression, so the infinity is allowed.
  loom_inf: 'fn loom_inf() -> f32 {\n  let bits = 0x7f800000u;\n  return bitcast<f32>(bits);\n}',
  loom_nan: 'fn loom_nan() -> f32 {\n  let bits = 0x7fc00000u;\n  return bitcast<f32>(bits);\n}',
  // log(1 + x) without losing small x (Goldberg's correction), as JS's Math.log1p.
  loom_log1p: 'fn loom_log1p(x: f32) -> f32 {\n  let u = 1.0 + x;\n  if (u == 1.0) { return x; }\n  return log(u) * x / (u - 1.0);\n}',
  // pow as JS's Math.pow: WGSL's pow is undefined for x < 0; an integer y gives the sign.
  loom_pow:
    'fn loom_pow(x: f32, y: f32) -> f32 {\n  if (y == 0.0) { return 1.0; }\n  let r = pow(abs(x), y);\n  if (x >= 0.0) { return r; }\n  if (trunc(y) != y) { return loom_nan(); }\n  if (trunc(y * 0.5) != y * 0.5) { return -r; }\n  return r;\n}',
  // max/min as JS's Math.max/min and tfjs's kernels: a NaN operand gives NaN (WGSL's may return the other).
  loom_isnan: 'fn loom_isnan(x: f32) -> bool {\n  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;\n}',
  loom_max: 'fn loom_max(x: f32, y: f32) -> f32 {\n  if (loom_isnan(x) || loom_isnan(y)) { return loom_nan(); }\n  return max(x, y);\n}',
  loom_min: 'fn loom_min(x: f32, y: f32) -> f32 {\n  if (loom_isnan(x) || loom_isnan(y)) { return loom_nan(); }\n  return min(x, y);\n}',
  // Drivers may compute tanh through exp and return NaN past |x| ~ 44; tanh(±9.1) is already ±1 in f32.
  loom_tanh: 'fn loom_tanh(x: f32) -> f32 {\n  return tanh(clamp(x, -9.1, 9.1));\n}',
};
const HELPER_DEPS: Record<string, string[]> = { loom_pow: ['loom_nan'], loom_max: ['loom_isnan', 'loom_nan'], loom_min: ['loom_isnan', 'loom_nan'] };

/** A WGSL literal of `dtype` (non-finite floats through helpers, recorded in `used`). */
function literal(v: number, dtype: DType, used: Set<string>): string {
  if (dtype !== 'float32') {
    const i = Number.isNaN(v) ? 0 : v === Infinity ? 2147483647 : v === -Infinity ? -2147483648 : Math.trunc(v) | 0;
    return i < 0 ? `i32(${i})` : `${i}i`;
  }
  if (Number.isNaN(v)) return (used.add('loom_nan'), 'loom_nan()');
  if (v === Infinity) return (used.add('loom_inf'), 'loom_inf()');
  if (v === -Infinity) return (used.add('loom_inf'), '(-loom_inf())');
  const f = Math.fround(v);
  // Literals past f32's range are shader errors: fround made them infinite above.
  if (!Number.isFinite(f)) return literal(f, dtype, used);
  const s = String(Math.abs(f));
  const text = `${/[.e]/.test(s) ? s : `${s}.0`}f`;
  return f < 0 || Object.is(f, -0) ? `(-${text})` : text;
}

const UNARY: Record<UnaryOp, (x: string, used: Set<string>) => string> = {
  neg: (x) => `(-${x})`,
  abs: (x) => `abs(${x})`,
  sign: (x) => `sign(${x})`,
  exp: (x) => `exp(${x})`,
  log: (x) => `log(${x})`,
  log1p: (x, used) => (used.add('loom_log1p'), `loom_log1p(${x})`),
  sqrt: (x) => `sqrt(${x})`,
  tanh: (x, used) => (used.add('loom_tanh'), `loom_tanh(${x})`),
  sin: (x) => `sin(${x})`,
  cos: (x) => `cos(${x})`,
  floor: (x) => `floor(${x})`,
  ceil: (x) => `ceil(${x})`,
  trunc: (x) => `trunc(${x})`,
  not: (x) => `i32(${x} == 0i)`,
};
const CMP: Record<string, string> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=' };
const INFIX: Partial<Record<BinaryOp, string>> = { add: '+', sub: '-', mul: '*', div: '/', rem: '%' };

/** WGSL source of a kernel IR expression; `name` names loads, helpers it calls go to `used`. */
export function wgslExpr(e: Expr, name: (ref: number) => string, used: Set<string>): string {
  const r = (x: Expr) => wgslExpr(x, name, used);
  switch (e.k) {
    case 'const':
      return literal(e.value, e.dtype, used);
    case 'load':
      return name(e.ref);
    case 'unary':
      // Integer neg/abs/sign share the float spelling; the other unary ops are float only.
      return UNARY[e.op](r(e.x), used);
    case 'binary': {
      const [x, y] = [r(e.x), r(e.y)];
      if (isCompare(e.op)) return `i32(${x} ${CMP[e.op]} ${y})`;
      const infix = INFIX[e.op];
      if (infix) return `(${x} ${infix} ${y})`;
      if (e.op === 'and') return `i32(${x} != 0i && ${y} != 0i)`;
      if (e.op === 'or') return `i32(${x} != 0i || ${y} != 0i)`;
      if (e.op === 'pow') return (used.add('loom_pow'), `loom_pow(${x}, ${y})`);
      // max, min
      if (e.dtype === 'float32') return (used.add(`loom_${e.op}`), `loom_${e.op}(${x}, ${y})`);
      return `${e.op}(${x}, ${y})`;
    }
    case 'select':
      return `select(${r(e.y)}, ${r(e.x)}, ${r(e.c)} != 0i)`;
    case 'cast': {
      const x = r(e.x);
      const from = e.x.dtype;
      if (e.dtype === 'bool') return from === 'float32' ? `i32(${x} != 0.0f)` : `i32(${x} != 0i)`;
      if (TYPE[e.dtype] === TYPE[from]) return x;
      return `${TYPE[e.dtype]}(${x})`;
    }
  }
}

/** `(index / stride) % extent` without the parts that do nothing. */
function coord(index: string, stride: number, extent: number, outermost: boolean): string {
  const q = stride === 1 ? index : `(${index} / ${stride})`;
  return outermost ? q : `(${q} % ${extent})`;
}

const sameBuffer = (a: BufferRef, b: BufferRef): boolean => ('matmul' in a ? 'matmul' in b : 'input' in b && a.input === b.input);

/**
 * The shader of output `k` of `spec`. Buffers and values are named by their order in the shader
 * (`x0`, `x1`, ...; `v0`, `v1`, ...), so that the same computation gets the same source and hash
 * in whichever kernel it occurs.
 */
export function wgslShader(spec: KernelSpec, k: number): WgslShader {
  const values = spec.values;
  const out = spec.outputs[k]!;
  const target = values[out.value]!;
  const used = new Set<string>();

  /** The values `i` depends on (itself included), in spec order; a reduction only as `i` itself. */
  const closure = (i: number): number[] => {
    const seen = new Set<number>();
    const visit = (j: number): void => {
      if (seen.has(j)) return;
      const v = values[j]!;
      if (v.kind === 'reduce' && j !== i) throw new Error(`internal: ${spec.label}: the WGSL target cannot read a reduction inside a kernel`);
      seen.add(j);
      if (v.kind === 'expr') v.args.forEach(visit);
      if (v.kind === 'reduce') visit(v.arg);
    };
    visit(i);
    return [...seen].sort((a, b) => a - b);
  };
  const ids = closure(target.kind === 'reduce' ? target.arg : out.value);
  const local = new Map(ids.map((i, j) => [i, `v${j}`]));
  const name = (i: number) => local.get(i)!;
  // The buffers read, inputs in order then the product.
  const reads: { buffer: BufferRef; name: string; dtype: DType }[] = [];
  for (const i of ids) {
    const v = values[i]!;
    if (v.kind === 'load' && !reads.some((r) => sameBuffer(r.buffer, v.buffer))) reads.push({ buffer: v.buffer, name: '', dtype: v.dtype });
  }
  const order = (b: BufferRef) => ('matmul' in b ? Infinity : b.input);
  reads.sort((a, b) => order(a.buffer) - order(b.buffer));
  reads.forEach((r, j) => (r.name = `x${j}`));
  const bufferOf = (b: BufferRef) => reads.find((r) => sameBuffer(r.buffer, b))!.name;
  /** Axes the loads vary along: only those coordinates are decoded. */
  const axes = new Set<number>();
  for (const i of ids) {
    const v = values[i]!;
    if (v.kind === 'load') v.strides.forEach((st, a) => st !== 0 && axes.add(a));
  }
  /** Statements computing the values `ids` from the coordinates i<axis>. */
  const statements = (pad: string): string[] =>
    ids.flatMap((i) => {
      const v = values[i] as SpecValue;
      if (v.kind === 'load') {
        const terms = v.strides.flatMap((st, a) => (st === 0 ? [] : [st === 1 ? `i${a}` : `i${a} * ${st}`]));
        const at = `${bufferOf(v.buffer)}[${terms.length ? terms.join(' + ') : '0'}]`;
        // tfjs-backend-webgpu may keep a float32 tensor in an int32 buffer (a cast from int32 or
        // bool keeps the data) and declares the binding by the buffer's type: float loads convert.
        return [`${pad}let ${name(i)} = ${v.dtype === 'float32' ? `f32(${at})` : at};`];
      }
      if (v.kind === 'const') return [`${pad}let ${name(i)} = ${literal(v.value, v.dtype, used)};`];
      if (v.kind === 'expr') return [`${pad}let ${name(i)}: ${TYPE[v.dtype]} = ${wgslExpr(v.expr, name, used)};`];
      return [];
    });

  const T = TYPE[out.dtype];
  const lines: string[] = [`fn loom_value(index: i32) -> ${T} {`];
  let size: number;
  if (target.kind === 'reduce') {
    size = target.outSize;
    const kept = target.outStrides.map((st) => st !== 0);
    const firstKept = kept.indexOf(true);
    target.outStrides.forEach((st, a) => {
      if (kept[a] && axes.has(a)) lines.push(`  let i${a} = ${coord('index', st, spec.domain[a]!, a === firstKept)};`);
    });
    const rs = rowStrides(spec.domain.map((d, a) => (kept[a] ? 1 : d)));
    const firstReduced = kept.indexOf(false);
    const red = target.reducer;
    lines.push(`  var acc: ${T} = ${literal(red.identity, target.dtype, used)};`);
    lines.push(`  for (var r = 0; r < ${target.count}; r++) {`);
    spec.domain.forEach((d, a) => {
      if (!kept[a] && axes.has(a)) lines.push(`    let i${a} = ${coord('r', rs[a]!, d, a === firstReduced)};`);
    });
    lines.push(...statements('    '));
    lines.push(`    acc = ${wgslExpr(red.combine, (ref) => (ref === 0 ? 'acc' : name(target.arg)), used)};`);
    lines.push('  }');
    lines.push(`  return ${red.finish ? wgslExpr(red.finish, () => 'acc', used) : 'acc'};`);
  } else {
    size = spec.domain.reduce((a, b) => a * b, 1);
    const ds = rowStrides(spec.domain);
    spec.domain.forEach((d, a) => {
      if (axes.has(a)) lines.push(`  let i${a} = ${coord('index', ds[a]!, d, a === 0)};`);
    });
    lines.push(...statements('  '));
    lines.push(`  return ${name(out.value)};`);
  }
  lines.push('}');
  const fn = lines.join('\n');

  const helpers: string[] = [];
  const addHelper = (h: string): void => {
    if (helpers.includes(HELPERS[h]!)) return;
    (HELPER_DEPS[h] ?? []).forEach(addHelper);
    helpers.push(HELPERS[h]!);
  };
  [...used].sort().forEach(addHelper);
  const body = [...helpers, fn].join('\n\n');
  const groups = Math.max(1, Math.ceil(size / WORKGROUP_SIZE));
  const gx = Math.min(groups, MAX_GROUPS);
  const dispatch: [number, number, number] = [gx, Math.ceil(groups / gx), 1];
  const source = [
    `@group(0) @binding(0) var<storage, read_write> result: array<${T}>;`,
    ...reads.map((r, j) => `@group(0) @binding(${j + 1}) var<storage, read> ${r.name}: array<${TYPE[r.dtype]}>;`),
    '',
    body,
    '',
    `@compute @workgroup_size(${WORKGROUP_SIZE})`,
    'fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {',
    `  let index = i32(gid.x + gid.y * groups.x * ${WORKGROUP_SIZE}u);`,
    `  if (index < ${size}) { result[index] = loom_value(index); }`,
    '}',
    '',
  ].join('\n');
  return { output: k, dtype: out.dtype, size, reads, workgroupSize: [WORKGROUP_SIZE, 1, 1], dispatch, body, source, hash: hashText(source) };
}

/**
 * Why the WGSL target cannot render `spec`, or undefined: a shader runs a reduction only as its
 * output, so no value of the kernel may read one.
 */
export function wgslUnsupported(spec: KernelSpec): string | undefined {
  for (const [i, v] of spec.values.entries()) {
    const args = v.kind === 'expr' ? v.args : v.kind === 'reduce' ? [v.arg] : [];
    const r = args.find((a) => spec.values[a]!.kind === 'reduce');
    if (r !== undefined) return `value ${i} reads the reduction v${r} inside the kernel; the WGSL target computes a reduction only as an output`;
  }
  return undefined;
}

/** A fused kernel as WGSL: `source` lists every output's shader; `shaders` gives them one by one. */
export interface WgslKernel extends GeneratedKernel {
  shaders: WgslShader[];
}

export class WgslTarget implements CodegenTarget {
  readonly name = 'wgsl';

  emit(spec: KernelSpec): WgslKernel {
    const shaders = spec.outputs.map((_o, k) => wgslShader(spec, k));
    const name = `loom_${hashText(shaders.map((s) => s.hash).join(','))}`;
    const source = shaders
      .map((s) => {
        const binds = ['0: result', ...s.reads.map((r, j) => `${j + 1}: ${r.name} = ${'matmul' in r.buffer ? 'the product' : `input ${r.buffer.input}`}`)].join(', ');
        return `// output ${s.output} (${s.dtype}[${spec.outputs[s.output]!.shape.join(', ')}]): shader ${s.hash}, ${s.size} invocations, dispatch ${s.dispatch.join('x')}, bindings ${binds}\n${s.source}`;
      })
      .join('\n');
    return { name, target: this.name, source, support: [], spec, shaders };
  }

  /** WGSL is checked by the device that compiles it. */
  check(): void {}
}

export const wgslTarget = new WgslTarget();
