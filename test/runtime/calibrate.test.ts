import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { calibrate, median } from '../../runtime/calibrate.ts';
import { validateProfile } from '../../compiler/cost/profile.ts';

describe('calibrate', () => {
  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('measures the kernel rates and records how the backend lowers matmul operands', async () => {
    const p = await calibrate({ quick: true });
    // The result re-validates against the schema (e.g. after a JSON round trip to a file).
    expect(validateProfile(JSON.parse(JSON.stringify(p)), 'p.json')).toEqual(p);
    const r = p.rates!;
    // Quick mode measures batched products at s = 16 and 64: right-hand matrices of s*s elements.
    expect(r.batchedMatmul!.map((q) => q.rhsElements)).toEqual([256, 4096]);
    for (const q of r.batchedMatmul!) {
      expect(q.rate).toBeGreaterThan(0);
      expect(q.perMatrix).toBeGreaterThanOrEqual(0);
    }
    for (const v of [r.transpose, r.broadcast, r.reduction]) expect(v).toBeGreaterThan(0);
    expect(r.freshOperand).toBeGreaterThanOrEqual(0);
    expect(r.matmulCopiesTransposed).toBe(tf.getBackend() === 'wasm');
    expect(r.ownProduct2d).toBe(tf.getBackend() === 'wasm');
    expect(r.matmulCopies).toBe(true);
    const whats = (p.measured!.measurements as { what: string }[]).map((m) => m.what);
    expect(whats).toEqual(expect.arrayContaining(['transpose', 'broadcast', 'reduction', 'fresh-operand 128x256x256']));
    // Two batch counts at two row counts per size.
    expect(whats.filter((w) => w.startsWith('batched-matmul'))).toHaveLength(8);
  }, 60_000);
});
