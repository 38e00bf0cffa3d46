import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '../../../compiler/ops/index.ts';
import { getOp } from '../../../compiler/ops/registry.ts';
import { planMatmul } from '../../../compiler/ops/linalg.ts';
import { initBackend } from '../../../runtime/backend.ts';

/** Plain-JS batched matmul with NumPy batch broadcasting, over row-major arrays. */
function reference(a: Float32Array, as: number[], b: Float32Array, bs: number[], ta: boolean, tb: boolean): { shape: number[]; values: number[] } {
  const ra = as.length;
  const rb = bs.length;
  const [m, k] = ta ? [as[ra - 1]!, as[ra - 2]!] : [as[ra - 2]!, as[ra - 1]!];
  const n = tb ? bs[rb - 2]! : bs[rb - 1]!;
  const nb = Math.max(ra, rb) - 2;
  const pad = (s: number[]) => [...Array(nb - (s.length - 2)).fill(1), ...s.slice(0, -2)] as number[];
  const pa = pad(as);
  const pb = pad(bs);
  const batch = pa.map((d, i) => Math.max(d, pb[i]!));
  const total = batch.reduce((p, d) => p * d, 1);
  const offset = (p: number[], idx: number[]) => idx.reduce((o, v, i) => o * p[i]! + (p[i] === 1 ? 0 : v), 0);
  const values: number[] = [];
  for (let f = 0; f < total; f++) {
    const idx: number[] = [];
    let r = f;
    for (let i = nb - 1; i >= 0; i--) {
      idx[i] = r % batch[i]!;
      r = Math.floor(r / batch[i]!);
    }
    const oa = offset(pa, idx) * as[ra - 2]! * as[ra - 1]!;
    const ob = offset(pb, idx) * bs[rb - 2]! * bs[rb - 1]!;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) s += a[oa + (ta ? q * m + i : i * k + q)]! * b[ob + (tb ? j * k + q : q * n + j)]!;
        values.push(s);
      }
  }
  return { shape: [...batch, m, n], values };
}

// [a shape, b shape, transpose_a, transpose_b]: right- and left-broadcast folds (with and without
// transposes to fold in), equal batches, both-sided broadcasts, unit batch axes.
const cases: [number[], number[], boolean, boolean][] = [
  [[2, 3, 4, 5], [3, 5, 2], false, false], // [B,E,L,s] x [E,s,t]: the experts' case
  [[2, 3, 4, 5], [3, 2, 5], false, true], // its input gradient
  [[2, 3, 5, 4], [3, 5, 2], true, false],
  [[3, 4, 5], [2, 3, 5, 2], false, false], // left operand broadcast: folds into columns
  [[3, 5, 4], [2, 3, 2, 5], true, true],
  [[2, 3, 4, 5], [1, 3, 5, 2], false, false],
  [[2, 1, 4, 5], [2, 3, 5, 2], false, false],
  [[2, 1, 4, 5], [1, 3, 5, 2], false, false], // both broadcast: explicit broadcasts
  [[2, 3, 4, 5], [2, 3, 5, 2], false, false],
  [[2, 3, 5, 4], [2, 3, 2, 5], true, true],
  [[2, 4, 5], [5, 3], false, false],
  [[2, 5, 4], [5, 3], true, false],
  [[4, 5], [2, 5, 3], false, false],
  [[1, 4, 5], [3, 5, 2], false, false],
  [[4, 5], [5, 3], false, false],
  [[5, 4], [3, 5], true, true],
];

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`matmul kernel on ${backend}`, () => {
    afterAll(async () => {
      await initBackend('cpu', () => {});
    });
    it('matches a plain-JS reference for folded, equal and broadcast batches', async () => {
      await initBackend(backend, () => {});
      expect(tf.getBackend()).toBe(backend);
      const def = getOp('matmul')!;
      cases.forEach(([as, bs, ta, tb], c) => {
        const a = tf.randomNormal(as, 0, 1, 'float32', 10 + c);
        const b = tf.randomNormal(bs, 0, 1, 'float32', 50 + c);
        const want = reference(a.dataSync() as Float32Array, as, b.dataSync() as Float32Array, bs, ta, tb);
        const before = tf.memory().numTensors;
        const y = def.kernel(tf, [a, b], { transpose_a: ta, transpose_b: tb }, { outType: { dtype: 'float32', shape: want.shape } });
        expect(y.shape, `case ${c}`).toEqual(want.shape);
        const got = Array.from(y.dataSync());
        got.forEach((v, i) => expect(Math.abs(v - want.values[i]!), `case ${c} element ${i}`).toBeLessThan(1e-4));
        y.dispose();
        expect(tf.memory().numTensors, `case ${c} leaks`).toBe(before);
        a.dispose();
        b.dispose();
      });
    });
  });
}

describe('planMatmul', () => {
  it('folds stacked weights [E, s, t] into the rows of [B, E, L, s]: E products of [B L, s] x [s, t], a transpose before and after', () => {
    const p = planMatmul([8, 4, 16, 32], [4, 32, 32], false, false, [8, 4, 16, 32], false);
    expect(p).toMatchObject({ kind: 'rows', kept: [1], folded: [0], matrices: 4, rows: 128, k: 32, cols: 32 });
    // x [8,4,16,32] -> [4,8,16,32] (16384 elements) and the result back.
    expect(p.copies).toEqual([
      { kind: 'transpose', elements: 16384 },
      { kind: 'transpose', elements: 16384 },
    ]);
    // Transposed weights: one more copy where the backend copies transposed operands.
    const q = planMatmul([8, 4, 16, 32], [4, 32, 32], false, true, [8, 4, 16, 32], true);
    expect(q.copies.map((c) => c.elements)).toEqual([16384, 4096, 16384]);
    expect(planMatmul([8, 4, 16, 32], [4, 32, 32], false, true, [8, 4, 16, 32], false).copies).toHaveLength(2);
  });
  it('needs no copy when the folded axes lead and the kept ones follow, nor for a 2-D right operand', () => {
    expect(planMatmul([4, 8, 16, 32], [4, 1, 32, 32], false, false, [4, 8, 16, 32], false)).toMatchObject({ kind: 'rows', kept: [0], folded: [1], matrices: 4, rows: 128, copies: [] });
    expect(planMatmul([8, 16, 32], [32, 5], false, false, [8, 16, 5], false)).toMatchObject({ kind: 'rows', matrices: 1, rows: 128, cols: 5, copies: [] });
    // A transposed left operand is folded by the one transpose that also puts it upright.
    expect(planMatmul([8, 32, 16], [32, 5], true, false, [8, 16, 5], true).copies).toEqual([{ kind: 'transpose', elements: 4096 }]);
  });
  it('folds a broadcast left operand into the columns of the right one', () => {
    // [3, 4, 5] x [2, 3, 5, 6]: 3 products of [4, 5] x [5, 2*6]; b [2,3,5,6] -> [3,5,2,6] and y [3,4,2,6] -> [2,3,4,6].
    expect(planMatmul([3, 4, 5], [2, 3, 5, 6], false, false, [2, 3, 4, 6], false)).toMatchObject({
      kind: 'cols',
      kept: [1],
      folded: [0],
      matrices: 3,
      rows: 4,
      cols: 12,
      copies: [
        { kind: 'transpose', elements: 180 },
        { kind: 'transpose', elements: 144 },
      ],
    });
  });
  it('keeps equal batches as one batched call and broadcasts both-sided ones', () => {
    expect(planMatmul([2, 3, 4, 5], [2, 3, 5, 6], false, false, [2, 3, 4, 6], false)).toMatchObject({ kind: 'equal', matrices: 6, copies: [] });
    expect(planMatmul([2, 3, 4, 5], [2, 3, 6, 5], false, true, [2, 3, 4, 6], true).copies).toEqual([{ kind: 'transpose', elements: 180 }]);
    // [2,1,4,5] x [1,3,5,6]: a grows from 40 to 6*20 elements (40 read + 120 written), b from 90 to 6*30.
    expect(planMatmul([2, 1, 4, 5], [1, 3, 5, 6], false, false, [2, 3, 4, 6], false)).toMatchObject({
      kind: 'broadcast',
      matrices: 6,
      copies: [
        { kind: 'broadcast', elements: 160 },
        { kind: 'broadcast', elements: 270 },
      ],
    });
  });
});
