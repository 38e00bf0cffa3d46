/**
 * The own wasm product against a hand-written float32 reference: every output is the float32
 * sum over k of float32 products in order of k, so the comparison is exact. Shapes cover every
 * block path (4-row and single-row panels; 8-column, 4-column and single-column blocks; k in
 * one chunk or several), all four transpose combinations, operands that are not 16-byte aligned, the scratch area growing, and
 * the backend's memory growing between calls.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TANH32 } from '../../compiler/codegen/tanh32.ts';
import { gemmModuleText, prepareWasmGemm, productFits, wasmGemm, type Gemm, type GemmEpilogue } from '../../runtime/wasm-gemm.ts';

/** op(a) x op(b) with float32 rounding after every product and every addition, in order of k. */
function reference(a: Float32Array, b: Float32Array, m: number, k: number, n: number, ta: boolean, tb: boolean): Float32Array {
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let kk = 0; kk < k; kk++) {
        const x = ta ? a[kk * m + i]! : a[i * k + kk]!;
        const y = tb ? b[j * k + kk]! : b[kk * n + j]!;
        s = Math.fround(s + Math.fround(x * y));
      }
      out[i * n + j] = s;
    }
  return out;
}

/** TANH32 in float32 arithmetic: every operation rounded to float32, in the documented order. */
function tanh32(x: number): number {
  const f = Math.fround;
  const clamp = f(TANH32.clamp);
  const c = x > clamp ? clamp : x < -clamp ? -clamp : x;
  const x2 = f(c * c);
  const horner = (coefs: readonly number[]) => {
    let acc = f(f(x2 * f(coefs[0]!)) + f(coefs[1]!));
    for (const k of coefs.slice(2)) acc = f(f(x2 * acc) + f(k));
    return acc;
  };
  return Math.abs(x) < f(TANH32.small) ? x : f(f(c * horner(TANH32.p)) / horner(TANH32.q));
}

let seed = 1;
function values(count: number): Float32Array {
  // A small LCG: exact, reproducible values with mixed signs and magnitudes.
  const v = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    v[i] = (seed / 2147483648 - 0.5) * 4;
  }
  return v;
}

let gemm: Gemm;

beforeAll(async () => {
  await prepareWasmGemm();
  await tf.setBackend('wasm');
  gemm = wasmGemm(tf.backend())!;
});
afterAll(async () => {
  await tf.setBackend('cpu');
});

function product(m: number, k: number, n: number, ta: boolean, tb: boolean, epilogue: { bias?: boolean; tanh?: boolean } = {}): { got: Float32Array; want: Float32Array } {
  const av = values(m * k);
  const bv = values(k * n);
  const biasValues = values(n);
  const a = tf.tensor(av, ta ? [k, m] : [m, k]);
  const b = tf.tensor(bv, tb ? [n, k] : [k, n]);
  const bias = tf.tensor(biasValues, [n]);
  // The output is a view of a larger tensor whose tail is a sentinel: the product writes its m x n only.
  const outer = tf.fill([m * n + 8], 7.5);
  try {
    const epi: GemmEpilogue = { bias: epilogue.bias ? bias : undefined, activation: epilogue.tanh ? 'tanh' : undefined };
    gemm(a, b, ta, tb, { dataId: outer.dataId, shape: [m, n], dtype: 'float32' }, epi);
    const all = outer.dataSync() as Float32Array;
    expect(Array.from(all.subarray(m * n))).toEqual(new Array(8).fill(7.5));
    const want = reference(av, bv, m, k, n, ta, tb).map((v, at) => {
      const biased = epilogue.bias ? Math.fround(v + biasValues[at % n]!) : v;
      return epilogue.tanh ? tanh32(biased) : biased;
    });
    return { got: all.slice(0, m * n), want };
  } finally {
    tf.dispose([a, b, bias, outer]);
  }
}

describe('wasm product', () => {
  it('is available on the wasm backend once prepared, and on no other backend', () => {
    expect(gemm).toBeTypeOf('function');
    expect(wasmGemm(tf.findBackend('cpu')!)).toBeUndefined();
    expect(gemmModuleText()).toContain('(import "env" "memory"');
  });

  for (const [ta, tb] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const)
    it(`equals the float32 reference exactly (transpose_a ${ta}, transpose_b ${tb})`, () => {
      for (const m of [1, 3, 4, 5, 9, 128])
        for (const k of [1, 4, 7, 64])
          for (const n of [1, 2, 3, 4, 5, 8, 9, 13, 64]) {
            const { got, want } = product(m, k, n, ta, tb);
            expect(Array.from(got), `${m}x${k}x${n}`).toEqual(Array.from(want));
          }
    });

  for (const [ta, tb] of [
    [false, false],
    [true, true],
  ] as const)
    it(`multiplies stacks of matrices entry by entry, a single matrix serving every entry (transposes ${ta}, ${tb})`, () => {
      const [s, m, k, n] = [3, 5, 7, 9];
      for (const [stackA, stackB] of [
        [true, true],
        [true, false],
        [false, true],
      ] as const) {
        const av = values((stackA ? s : 1) * m * k);
        const bv = values((stackB ? s : 1) * k * n);
        const a = tf.tensor(av, [...(stackA ? [s] : []), ...(ta ? [k, m] : [m, k])]);
        const b = tf.tensor(bv, [...(stackB ? [s] : []), ...(tb ? [n, k] : [k, n])]);
        const outer = tf.fill([s * m * n + 8], 7.5);
        // The output as a kernel may hand it over: the buffer of a value of another shape with as many elements.
        gemm(a, b, ta, tb, { dataId: outer.dataId, shape: [s * m, n], dtype: 'float32' });
        const all = outer.dataSync() as Float32Array;
        expect(Array.from(all.subarray(s * m * n))).toEqual(new Array(8).fill(7.5));
        for (let e = 0; e < s; e++) {
          const ae = stackA ? av.subarray(e * m * k, (e + 1) * m * k) : av;
          const be = stackB ? bv.subarray(e * k * n, (e + 1) * k * n) : bv;
          expect(Array.from(all.subarray(e * m * n, (e + 1) * m * n)), `entry ${e} (${stackA}, ${stackB})`).toEqual(Array.from(reference(ae, be, m, k, n, ta, tb)));
        }
        tf.dispose([a, b, outer]);
      }
    });

  it('adds one bias row per matrix of a stack, or one row shared by all of them', () => {
    const [s, m, k, n] = [3, 5, 4, 6];
    const av = values(s * m * k);
    const bv = values(s * k * n);
    const biasv = values(s * n).map((x) => Math.fround(x * 3));
    const a = tf.tensor(av, [s, m, k]);
    const b = tf.tensor(bv, [s, k, n]);
    const bias = tf.tensor(biasv, [s, 1, n]);
    const out = tf.zeros([s, m, n]);
    try {
      for (const perMatrix of [true, false]) {
        gemm(a, b, false, false, out, { bias, biasPerMatrix: perMatrix, activation: 'tanh' });
        const all = out.dataSync() as Float32Array;
        for (let e = 0; e < s; e++) {
          const row = perMatrix ? biasv.subarray(e * n, (e + 1) * n) : biasv.subarray(0, n);
          const plain = reference(av.subarray(e * m * k, (e + 1) * m * k), bv.subarray(e * k * n, (e + 1) * k * n), m, k, n, false, false);
          const want = Array.from(plain, (x, i) => tanh32(Math.fround(x + row[i % n]!)));
          expect(Array.from(all.subarray(e * m * n, (e + 1) * m * n)), `entry ${e} (per matrix ${perMatrix})`).toEqual(want);
        }
      }
    } finally {
      tf.dispose([a, b, bias, out]);
    }
  });

  it('takes matrices, equal stacks, and a stack with one matrix; other batch shapes stay with the library', () => {
    expect(productFits([4, 3], [3, 2])).toBe(true);
    expect(productFits([8, 4, 3], [8, 3, 2])).toBe(true);
    expect(productFits(['K', 4, 3], [3, 2])).toBe(true);
    expect(productFits([8, 4, 3], [1, 3, 2])).toBe(false);
    expect(productFits([2, 8, 4, 3], [8, 3, 2])).toBe(false);
    expect(productFits([3], [3, 2])).toBe(false);
  });

  for (const epilogue of [{ bias: true }, { tanh: true }, { bias: true, tanh: true }])
    it(`applies its epilogue (${Object.keys(epilogue).join(' + ')}) exactly as float32 arithmetic`, () => {
      for (const [m, k, n] of [
        [128, 4, 64],
        [5, 7, 13],
        [1, 3, 2],
        [9, 64, 9],
      ] as const)
        for (const ta of [false, true]) {
          const { got, want } = product(m, k, n, ta, false, epilogue);
          expect(Array.from(got), `${m}x${k}x${n}`).toEqual(Array.from(want));
        }
    });

  it('computes tanh within a few float32 ulps of Math.tanh, saturating and passing small values through', () => {
    const xs = [0, -0, 1e-5, -3e-4, 0.0005, 0.1, -0.5, 1, 2.5, -4, 7.9, 8, 9, -20, 1e6, NaN, Infinity, -Infinity];
    const a = tf.tensor(xs, [xs.length, 1]);
    const one = tf.tensor([1], [1, 1]);
    const out = tf.zeros([xs.length, 1]);
    try {
      gemm(a, one, false, false, out, { activation: 'tanh' });
      const got = Array.from(out.dataSync());
      xs.forEach((x, i) => {
        if (Number.isNaN(x)) expect(got[i]).toBeNaN();
        else expect(Math.abs(got[i]! - Math.tanh(x)), `tanh(${x})`).toBeLessThanOrEqual(3e-7);
      });
      expect(got[xs.indexOf(1e-5)]).toBe(Math.fround(1e-5));
      expect(got.slice(-2)).toEqual([1, -1]);
    } finally {
      tf.dispose([a, one, out]);
    }
  });

  it('agrees with the library product at the shapes of a PPO update', () => {
    for (const [m, k, n] of [
      [128, 4, 64],
      [128, 64, 64],
      [128, 64, 2],
      [64, 128, 64],
    ] as const) {
      const a = tf.tensor(values(m * k), [m, k]);
      const b = tf.tensor(values(k * n), [k, n]);
      const out = tf.zeros([m, n]);
      const lib = tf.matMul(a, b);
      try {
        gemm(a, b, false, false, out);
        expect(tf.max(tf.abs(tf.sub(out, lib))).dataSync()[0]).toBeLessThan(1e-4);
      } finally {
        tf.dispose([a, b, out, lib]);
      }
    }
  });

  it('sums k in chunks exactly as in one pass (k past one chunk of 256), with the epilogue once at the end', () => {
    for (const k of [255, 256, 257, 600])
      for (const [ta, tb] of [
        [false, false],
        [true, true],
      ] as const)
        for (const epilogue of [{}, { bias: true, tanh: true }]) {
          const { got, want } = product(5, k, 11, ta, tb, epilogue);
          expect(Array.from(got), `k = ${k}`).toEqual(Array.from(want));
        }
  });

  it('grows its scratch area for larger transposed right operands', () => {
    for (const k of [3, 40, 200, 17]) {
      const { got, want } = product(6, k, 33, false, true);
      expect(Array.from(got), `k = ${k}`).toEqual(Array.from(want));
    }
  });

  it('keeps working after the backend memory grows', () => {
    const before = product(5, 6, 7, true, true);
    expect(Array.from(before.got)).toEqual(Array.from(before.want));
    // 64 MiB more than the module's initial 16 MiB heap.
    const big = tf.zeros([16 * 1024 * 1024]);
    try {
      const after = product(5, 6, 7, true, true);
      expect(Array.from(after.got)).toEqual(Array.from(after.want));
    } finally {
      big.dispose();
    }
  });
});
