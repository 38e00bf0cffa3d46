/**
 * The wasm target, run for real: kernels are rendered, assembled by wabt and run on a
 * WebAssembly memory of their own (tensors copied in at byte offsets, outputs read back). Hand
 * kernels check the loop shapes (a SIMD body and a scalar tail, splatted values, selects,
 * comparisons into bool outputs) against values computed here in float32; the fused groups of
 * graphs in graphs/ and of random elementwise chains are compared with the reference interpreter.
 */
import { relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.ts';
import { kir } from '../../../compiler/codegen/kir.ts';
import type { KernelSpec, SpecValue } from '../../../compiler/codegen/spec.ts';
import { wasmModuleText, wasmTarget, wasmUnsupported, type WasmKernel } from '../../../compiler/codegen/wasm.ts';
import { compileGraph } from '../../../compiler/compile.ts';
import { symbolsOf } from '../../../compiler/dims.ts';
import { loadGraph, loadGraphJson } from '../../../compiler/frontend/load.ts';
import type { DType, IRGraph } from '../../../compiler/ir.ts';
import { assembleWasmKernel, prepareWasmKernels, wasmKernelOn } from '../../../runtime/wasm-kernels.ts';
import { fusedNodes, groupCases, mismatch, randomChain } from '../../helpers/fused-groups.ts';
import { graphFiles, GRAPHS_ROOT } from '../../helpers/library-graphs.ts';

beforeAll(async () => {
  expect(await prepareWasmKernels()).toBeUndefined();
});

const BYTES: Record<DType, number> = { float32: 4, int32: 4, bool: 1 };
const view = (buf: ArrayBuffer, dtype: DType, at: number, n: number) =>
  dtype === 'float32' ? new Float32Array(buf, at, n) : dtype === 'int32' ? new Int32Array(buf, at, n) : new Uint8Array(buf, at, n);

/**
 * Runs a kernel on its own memory: inputs (and the product) copied in at offsets that are 4- but
 * not 16-byte aligned, outputs read back (an in-place output from the product's buffer).
 */
function runKernel(k: WasmKernel, inputs: { values: ArrayLike<number>; dtype: DType }[], product?: ArrayLike<number>): number[][] {
  assembleWasmKernel(k);
  const memory = new WebAssembly.Memory({ initial: 32 });
  let next = 20;
  const place = (n: number, dtype: DType): number => {
    const at = next;
    next += Math.ceil((n * BYTES[dtype]) / 16) * 16 + 20;
    return at;
  };
  const offsets: number[] = [];
  for (const x of inputs) {
    const at = place(x.values.length, x.dtype);
    view(memory.buffer, x.dtype, at, x.values.length).set(Array.from(x.values));
    offsets.push(at);
  }
  let mmAt = -1;
  if (k.spec.matmul) {
    mmAt = place(product!.length, 'float32');
    new Float32Array(memory.buffer, mmAt, product!.length).set(Array.from(product!));
    offsets.push(mmAt);
  }
  const outs = k.spec.outputs.map((o, j) => {
    const n = o.shape.reduce((a, b) => a * b, 1);
    const at = j === k.spec.inPlace ? mmAt : place(n, o.dtype);
    offsets.push(at);
    return { at, n, dtype: o.dtype };
  });
  wasmKernelOn(k.name, memory)!(...offsets);
  return outs.map((o) => Array.from(view(memory.buffer, o.dtype, o.at, o.n)));
}

const load = (input: number, strides: number[], dtype: DType = 'float32'): SpecValue => ({ kind: 'load', buffer: { input }, strides, dtype });
const expr = (e: ReturnType<typeof kir.c>, args: number[]): SpecValue => ({ kind: 'expr', expr: e, args, dtype: e.dtype });
const f = Math.fround;

describe('the wasm target: hand kernels', () => {
  // x [3, 7] (7 = one vector of 4 and a tail of 3), y [3] (per row: splatted in the vector loop).
  const x = Array.from({ length: 21 }, (_v, i) => f(((i * 7) % 11) / 4 - 1.25));
  x[5] = NaN;
  const y = [0.25, -0.5, 1];
  const X = kir.load(0, 'float32');
  const Y = kir.load(1, 'float32');
  const spec: KernelSpec = {
    domain: [3, 7],
    inputs: [
      { dtype: 'float32', size: 21 },
      { dtype: 'float32', size: 3 },
    ],
    values: [
      load(0, [7, 1]),
      load(1, [1, 0]),
      expr(kir.gt(X, Y), [0, 1]),
      expr(kir.mul(Y, kir.c(0.1)), [1]),
      expr(kir.select(kir.load(2, 'bool'), X, kir.load(3, 'float32')), [2, 0, 3]),
      expr(kir.max(X, Y), [0, 1]),
      expr(kir.cast(kir.floor(kir.mul(X, kir.c(4))), 'int32'), [0]),
    ],
    outputs: [
      { value: 2, dtype: 'bool', shape: [3, 7] },
      { value: 4, dtype: 'float32', shape: [3, 7] },
      { value: 5, dtype: 'float32', shape: [3, 7] },
      { value: 6, dtype: 'int32', shape: [3, 7] },
    ],
    label: 'hand kernel',
  };

  it('renders a SIMD loop with a scalar tail, splats what is constant along it, and computes every element in float32', () => {
    const k = wasmTarget.emit(spec);
    expect(k.source).toContain('f32x4.gt');
    expect(k.source).toContain('(f32x4.splat (local.get $s1))');
    expect(k.source).toContain('$end_simd');
    expect(k.source).toContain('$end_tail');
    const [gt, sel, mx, fl] = runKernel(k, [{ values: x, dtype: 'float32' }, { values: y, dtype: 'float32' }]);
    const want = { gt: [] as number[], sel: [] as number[], mx: [] as number[], fl: [] as number[] };
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 7; j++) {
        const a = x[i * 7 + j]!;
        const b = y[i]!;
        want.gt.push(a > b ? 1 : 0);
        want.sel.push(a > b ? a : f(b * f(0.1)));
        want.mx.push(Math.max(a, b));
        want.fl.push(Number.isNaN(a) ? 0 : Math.floor(f(a * 4)));
      }
    expect(gt).toEqual(want.gt);
    expect(sel).toEqual(want.sel);
    expect(mx).toEqual(want.mx);
    expect(fl).toEqual(want.fl);
  });

  it('runs domains of every length modulo 4, and a single element', () => {
    for (const n of [1, 2, 3, 4, 5, 8, 9, 13]) {
      const one: KernelSpec = {
        domain: n === 1 ? [] : [n],
        inputs: [{ dtype: 'float32', size: n }, { dtype: 'bool', size: n }],
        values: [load(0, n === 1 ? [] : [1]), load(1, n === 1 ? [] : [1], 'bool'), expr(kir.select(kir.not(kir.load(1, 'bool')), kir.sqrt(X), kir.neg(X)), [0, 1])],
        outputs: [{ value: 2, dtype: 'float32', shape: n === 1 ? [] : [n] }],
        label: `length ${n}`,
      };
      const xs = Array.from({ length: n }, (_v, i) => i + 0.5);
      const ms = Array.from({ length: n }, (_v, i) => i % 3 === 1 ? 1 : 0);
      const [got] = runKernel(wasmTarget.emit(one), [{ values: xs, dtype: 'float32' }, { values: ms, dtype: 'bool' }]);
      expect(got, `n = ${n}`).toEqual(xs.map((v, i) => (ms[i] ? -v : f(Math.sqrt(v)))));
    }
  });

  it('sums, maxes and averages columns into rows (vector accumulators per column, float32), beside an elementwise output', () => {
    // x [5, 7] times a per-row scale; the column sums, maxima and means of the product.
    const scale = [1, -2, 0.5, 3, -0.25];
    const xs = Array.from({ length: 35 }, (_v, i) => f(((i * 13) % 17) / 8 - 1));
    const acc = kir.load(0, 'float32');
    const el = kir.load(1, 'float32');
    const red = (op: string, identity: number, combine: ReturnType<typeof kir.c>, finish?: ReturnType<typeof kir.c>): SpecValue => ({
      kind: 'reduce',
      arg: 2,
      reducer: { op, identity, combine, finish },
      outStrides: [0, 1],
      outSize: 7,
      count: 5,
      dtype: 'float32',
    });
    const spec: KernelSpec = {
      domain: [5, 7],
      inputs: [
        { dtype: 'float32', size: 35 },
        { dtype: 'float32', size: 5 },
      ],
      values: [load(0, [7, 1]), load(1, [1, 0]), expr(kir.mul(X, Y), [0, 1]), red('sum', 0, kir.add(acc, el)), red('max', -Infinity, kir.max(acc, el)), red('mean', 0, kir.add(acc, el), kir.div(acc, kir.c(5)))],
      outputs: [
        { value: 3, dtype: 'float32', shape: [7] },
        { value: 2, dtype: 'float32', shape: [5, 7] },
        { value: 4, dtype: 'float32', shape: [7] },
        { value: 5, dtype: 'float32', shape: [7] },
      ],
      label: 'column reductions',
    };
    const [sum, prod, max, mean] = runKernel(wasmTarget.emit(spec), [{ values: xs, dtype: 'float32' }, { values: scale, dtype: 'float32' }]);
    const want = { sum: [] as number[], prod: [] as number[], max: [] as number[], mean: [] as number[] };
    for (let j = 0; j < 7; j++) {
      let s = 0;
      let m = -Infinity;
      for (let i = 0; i < 5; i++) {
        const p = f(xs[i * 7 + j]! * scale[i]!);
        s = f(s + p);
        m = Math.max(m, p);
      }
      want.sum.push(s);
      want.max.push(m);
      want.mean.push(f(s / 5));
    }
    for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j++) want.prod.push(f(xs[i * 7 + j]! * scale[i]!));
    expect(sum).toEqual(want.sum);
    expect(prod).toEqual(want.prod);
    expect(max).toEqual(want.max);
    expect(mean).toEqual(want.mean);
  });

  it('sums the columns of each matrix of a stack into its own row (the matrix loop kept, the row loop reduced)', () => {
    // x [3, 4, 6]: per matrix, the column sums and maxima of x times a per-matrix scale.
    const scale = [2, -1, 0.5];
    const xs = Array.from({ length: 72 }, (_v, i) => f(((i * 7) % 19) / 4 - 2));
    const acc = kir.load(0, 'float32');
    const el = kir.load(1, 'float32');
    const red = (op: string, identity: number, combine: ReturnType<typeof kir.c>, finish?: ReturnType<typeof kir.c>): SpecValue => ({ kind: 'reduce', arg: 2, reducer: { op, identity, combine, finish }, outStrides: [6, 0, 1], outSize: 18, count: 4, dtype: 'float32' });
    const spec: KernelSpec = {
      domain: [3, 4, 6],
      inputs: [
        { dtype: 'float32', size: 72 },
        { dtype: 'float32', size: 3 },
      ],
      values: [load(0, [24, 6, 1]), load(1, [1, 0, 0]), expr(kir.mul(X, Y), [0, 1]), red('sum', 0, kir.add(acc, el)), red('max', -Infinity, kir.max(acc, el)), red('mean', 0, kir.add(acc, el), kir.div(acc, kir.c(4)))],
      outputs: [
        { value: 3, dtype: 'float32', shape: [3, 6] },
        { value: 4, dtype: 'float32', shape: [3, 6] },
        { value: 5, dtype: 'float32', shape: [3, 6] },
      ],
      label: 'stacked column reductions',
    };
    expect(wasmUnsupported(spec)).toBeUndefined();
    const [sum, max, mean] = runKernel(wasmTarget.emit(spec), [{ values: xs, dtype: 'float32' }, { values: scale, dtype: 'float32' }]);
    const want = { sum: [] as number[], max: [] as number[], mean: [] as number[] };
    for (let e = 0; e < 3; e++)
      for (let j = 0; j < 6; j++) {
        let t = 0;
        let m = -Infinity;
        for (let i = 0; i < 4; i++) {
          const p = f(xs[e * 24 + i * 6 + j]! * scale[e]!);
          t = f(t + p);
          m = Math.max(m, p);
        }
        want.sum.push(t);
        want.max.push(m);
        want.mean.push(f(t / 4));
      }
    expect(sum).toEqual(want.sum);
    expect(max).toEqual(want.max);
    expect(mean).toEqual(want.mean);
  });

  it('says which kernels it leaves to JavaScript: row reductions, reductions read inside the kernel, strided loads, ops without an instruction', () => {
    const base = { inputs: [{ dtype: 'float32' as const, size: 12 }], label: 'k' };
    const ok = wasmUnsupported({ ...base, domain: [3, 4], values: [load(0, [4, 1]), expr(kir.abs(X), [0])], outputs: [{ value: 1, dtype: 'float32', shape: [3, 4] }] });
    expect(ok).toBeUndefined();
    expect(wasmUnsupported({ ...base, domain: [3, 4], values: [load(0, [1, 3]), expr(kir.abs(X), [0])], outputs: [{ value: 1, dtype: 'float32', shape: [3, 4] }] })).toMatch(/stride 3 along the innermost loop/);
    expect(wasmUnsupported({ ...base, domain: [12], values: [load(0, [1]), expr(kir.exp(X), [0])], outputs: [{ value: 1, dtype: 'float32', shape: [12] }] })).toMatch(/exp on float32/);
    const k = kir.load(0, 'int32');
    expect(wasmUnsupported({ ...base, domain: [12], values: [load(0, [1], 'int32'), expr(kir.div(k, kir.c(2)), [0])], outputs: [{ value: 1, dtype: 'int32', shape: [12] }] })).toMatch(/div on int32/);
    // A row reduction (over the innermost loop); a column reduction renders.
    const sum = { kind: 'reduce' as const, arg: 0, reducer: { op: 'sum', identity: 0, combine: kir.add(kir.load(0, 'float32'), kir.load(1, 'float32')) }, outStrides: [1, 0], outSize: 3, count: 4, dtype: 'float32' as const };
    expect(wasmUnsupported({ ...base, domain: [3, 4], values: [load(0, [4, 1]), sum], outputs: [{ value: 1, dtype: 'float32', shape: [3] }] })).toMatch(/renders column reductions/);
    expect(wasmUnsupported({ ...base, domain: [3, 4], values: [load(0, [4, 1]), { ...sum, outStrides: [0, 1], outSize: 4, count: 3 }], outputs: [{ value: 1, dtype: 'float32', shape: [4] }] })).toBeUndefined();
    const readsSum = expr(kir.mul(kir.load(1, 'float32'), X), [1, 0]);
    expect(wasmUnsupported({ ...base, domain: [3, 4], values: [load(0, [4, 1]), { ...sum, outStrides: [0, 1], outSize: 4, count: 3 }, readsSum], outputs: [{ value: 1, dtype: 'float32', shape: [4] }, { value: 2, dtype: 'float32', shape: [3, 4] }] })).toMatch(/reads the reduction/);
    expect(() => wasmTarget.emit({ ...base, domain: [12], values: [load(0, [1]), expr(kir.exp(X), [0])], outputs: [{ value: 1, dtype: 'float32', shape: [12] }] })).toThrow(/exp/);
    // A lone product written in place: nothing left for a loop (the JS target's function is empty).
    const mm = { kind: 'load' as const, buffer: { matmul: true as const }, strides: [4, 1], dtype: 'float32' as const };
    const lone = { ...base, domain: [3, 4], matmul: { a: 0, b: 0, transposeA: false, transposeB: false, shape: [3, 4] }, values: [mm], outputs: [{ value: 0, dtype: 'float32' as const, shape: [3, 4] }], inPlace: 0 };
    expect(wasmUnsupported(lone)).toMatch(/nothing to compute/);
    expect(wasmModuleText([])).toContain('(import "env" "memory" (memory 0))');
  });
});

/** Runs every fused group of `g` the wasm target renders; returns how many ran. */
function checkGraph(g: IRGraph, env: ReadonlyMap<string, number>, seed: number, what: string): number {
  let ran = 0;
  for (const c of groupCases(g, env, seed, what)) {
    if (wasmUnsupported(c.spec)) continue;
    const k = wasmTarget.emit(c.spec);
    const got = runKernel(k, c.inputs, c.product);
    c.spec.outputs.forEach((o, j) => {
      const { err, at } = mismatch(got[j]!, c.want[j]!, o.dtype);
      expect(err, `${c.label} output ${j}: ${at}\n${k.source}`).toBeLessThan(2e-5);
    });
    ran++;
  }
  return ran;
}

describe('the wasm target: fused groups against the interpreter', () => {
  // Every graph of the library, its symbolic dims 7 (loops of one vector and a tail of 3). A group
  // whose input has a product of dims (4*B) cannot be run alone (the interpreter binds only plain
  // symbols); those run whole in test/runtime/wasm-kernels.test.ts.
  for (const file of graphFiles())
    it(`runs the groups of ${relative(GRAPHS_ROOT, file)} it renders`, () => {
      const g = loadGraph(file);
      const env = new Map(g.inputs.flatMap((i) => i.type.shape.flatMap((d) => (typeof d === 'string' ? symbolsOf(d) : []))).map((s) => [s, 7]));
      const composite = fusedNodes(compileGraph(g).graph).some(({ inputTypes }) => inputTypes.some((t) => t.shape.some((d) => typeof d === 'string' && d.includes('*'))));
      if (!composite) checkGraph(g, env, 11, relative(GRAPHS_ROOT, file));
    });

  it('runs random elementwise chains', () => {
    let ran = 0;
    for (let seed = 1; seed <= 60; seed++) ran += checkGraph(loadGraphJson(randomChain(seed), `chain-${seed}.graph.json`), new Map([['A', 5], ['B', 7]]), seed, `chain ${seed}`);
    expect(ran).toBeGreaterThan(15);
  });
});
