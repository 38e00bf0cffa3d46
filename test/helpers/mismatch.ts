/** Compares program outputs with reference outputs (names, shapes, dtypes, values). */
import { expect } from 'vitest';
import type { TensorMap } from '../../runtime/interpreter.ts';

/** Max over outputs of |a - b| / (1 + |b|); also checks names, shapes and dtypes. */
export function mismatch(out: TensorMap, ref: TensorMap): number {
  expect(Object.keys(out).sort()).toEqual(Object.keys(ref).sort());
  let worst = 0;
  for (const k of Object.keys(ref)) {
    expect(out[k]!.shape, k).toEqual(ref[k]!.shape);
    expect(out[k]!.dtype, k).toEqual(ref[k]!.dtype);
    const a = out[k]!.dataSync();
    const b = ref[k]!.dataSync();
    for (let i = 0; i < b.length; i++) {
      const d = Math.abs(a[i]! - b[i]!) / (1 + Math.abs(b[i]!));
      worst = Math.max(worst, Number.isNaN(d) ? (Number.isNaN(a[i]!) && Number.isNaN(b[i]!) ? 0 : Infinity) : d);
    }
  }
  return worst;
}

/**
 * Every output of `want` against `got`: same shape and dtype, and each element within
 * 1e-4 + 1e-4 |want| (NaN where want has NaN), as compiled kernels round only where values are
 * stored and use a float32-accurate tanh. `label` prefixes the failure message.
 */
export function expectCompiledClose(got: TensorMap, want: TensorMap, label = ''): void {
  for (const [name, w] of Object.entries(want)) {
    const c = got[name]!;
    expect(c.shape, name).toEqual(w.shape);
    expect(c.dtype, name).toBe(w.dtype);
    const a = c.dataSync();
    const b = w.dataSync();
    for (let k = 0; k < a.length; k++) {
      const tol = 1e-4 + 1e-4 * Math.abs(b[k]!);
      if (!(Math.abs(a[k]! - b[k]!) <= tol || (Number.isNaN(a[k]!) && Number.isNaN(b[k]!)))) expect.fail(`${label}${name}[${k}]: compiled ${a[k]} vs interpreted ${b[k]}`);
    }
  }
}
