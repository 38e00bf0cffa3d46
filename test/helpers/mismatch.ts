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
