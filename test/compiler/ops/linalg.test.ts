import { describe, expect, it } from 'vitest';
import { infer, run, t, tf } from '../../helpers/ops.ts';
import { eagerBuilder } from '../../helpers/eager-grad.ts';
import { getOp } from '../../../compiler/ops/registry.ts';
import type { Attrs } from '../../../compiler/ir.ts';
import { loomErr } from '../../helpers/loom-error.ts';

/** Plain-JS reference: out[b][i][j] = sum_k A[b][i][k] * B[b][k][j] over nested arrays. */
function refMatmul(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0]!.map((_v, j) => row.reduce((s, x, k) => s + x * b[k]![j]!, 0)));
}

function mat(rows: number, cols: number, seed: number): number[][] {
  return Array.from({ length: rows }, (_r, i) => Array.from({ length: cols }, (_c, j) => ((i * 7 + j * 3 + seed) % 11) - 5));
}

function tr(m: number[][]): number[][] {
  return m[0]!.map((_v, j) => m.map((row) => row[j]!));
}

describe('matmul', () => {
  it('multiplies matrices', () => {
    const r = run('matmul', [tf.tensor2d([[1, 2], [3, 4], [5, 6]]), tf.tensor2d([[1, 0, 2], [0, 1, 3]])]);
    expect(r.shape).toEqual([3, 3]);
    expect(r.values).toEqual([1, 2, 8, 3, 4, 18, 5, 6, 28]);
  });
  it('honours the transpose flags', () => {
    const a = mat(3, 2, 1); // stored [K=3, M=2] when transposed
    const b = mat(4, 3, 2); // stored [N=4, K=3] when transposed
    const want = refMatmul(tr(a), tr(b)).flat();
    const r = run('matmul', [tf.tensor2d(a), tf.tensor2d(b)], { transpose_a: true, transpose_b: true });
    expect(r.shape).toEqual([2, 4]);
    expect(r.values).toEqual(want);
    const r2 = run('matmul', [tf.tensor2d(tr(a)), tf.tensor2d(b)], { transpose_b: true });
    expect(r2.values).toEqual(want);
  });
  it('broadcasts a rank-2 operand over a batch', () => {
    const a = [mat(2, 3, 1), mat(2, 3, 4)];
    const b = mat(3, 2, 5);
    const r = run('matmul', [tf.tensor3d(a), tf.tensor2d(b)]);
    expect(r.shape).toEqual([2, 2, 2]);
    expect(r.values).toEqual(a.flatMap((ai) => refMatmul(ai, b).flat()));
    const r2 = run('matmul', [tf.tensor2d(b), tf.tensor3d(a)], { transpose_a: true, transpose_b: true });
    expect(r2.shape).toEqual([2, 2, 2]);
    expect(r2.values).toEqual(a.flatMap((ai) => refMatmul(tr(b), tr(ai)).flat()));
  });
  it('broadcasts batch dims NumPy-style ([2,1] x [1,3])', () => {
    const as = [mat(2, 3, 0), mat(2, 3, 6)];
    const bs = [mat(3, 2, 1), mat(3, 2, 2), mat(3, 2, 9)];
    const r = run('matmul', [tf.tensor(as.flat(2), [2, 1, 2, 3]), tf.tensor(bs.flat(2), [1, 3, 3, 2])]);
    expect(r.shape).toEqual([2, 3, 2, 2]);
    expect(r.values).toEqual(as.flatMap((a) => bs.flatMap((b) => refMatmul(a, b).flat())));
  });
  it('infers symbolic shapes', () => {
    expect(infer('matmul', [t(['B', 'T', 4]), t([4, 64])]).shape).toEqual(['B', 'T', 64]);
    expect(infer('matmul', [t(['B', 1, 'T', 4]), t(['H', 4, 'T'])]).shape).toEqual(['B', 'H', 'T', 'T']);
    expect(infer('matmul', [t(['B', 'T', 'D']), t(['B', 'T', 'D'])], { transpose_b: true }).shape).toEqual(['B', 'T', 'T']);
    expect(infer('matmul', [t(['N', 'M']), t(['N', 'K'])], { transpose_a: true }).shape).toEqual(['M', 'K']);
  });
  it('rejects mismatched inner dims, naming both shapes', () => {
    const e = loomErr(() => infer('matmul', [t(['B', 4]), t([5, 2])]));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toMatch(/inner dimensions differ \(4 vs 5\)/);
    expect(e.info.found).toBe('a [B, 4], b [5, 2]');
    const s = loomErr(() => infer('matmul', [t([2, 'K']), t(['J', 2])]));
    expect(s.code).toBe('E_SHAPE');
    expect(s.info.found).toBe('a [2, K], b [J, 2]');
  });
  it('rejects rank < 2 and non-broadcastable batches', () => {
    const e = loomErr(() => infer('matmul', [t([4]), t([4, 2])]));
    expect(e.code).toBe('E_RANK');
    expect(e.message).toMatch(/operand a must have rank >= 2/);
    expect(loomErr(() => infer('matmul', [t([2, 4]), t([])])).code).toBe('E_RANK');
    const b = loomErr(() => infer('matmul', [t([2, 3, 4]), t([5, 4, 2])]));
    expect(b.code).toBe('E_SHAPE');
    expect(b.message).toMatch(/batch dimensions are not broadcast-compatible/);
    expect(b.info.found).toBe('a [2, 3, 4], b [5, 4, 2]');
  });
  it('requires float32 operands of one dtype', () => {
    expect(loomErr(() => infer('matmul', [t([2, 2]), t([2, 2], 'int32')])).code).toBe('E_DTYPE');
    expect(loomErr(() => infer('matmul', [t([2, 2], 'int32'), t([2, 2], 'int32')])).code).toBe('E_DTYPE');
  });
  it('does not leak or dispose its inputs', () => {
    for (const [sa, sb] of [
      [[2, 3, 4], [4, 5]],
      [[2, 1, 3, 4], [3, 4, 5]],
      [[3, 4], [4, 5]],
    ] as const) {
      const a = tf.ones([...sa]);
      const b = tf.ones([...sb]);
      const before = tf.memory().numTensors;
      const r = run('matmul', [a, b]);
      expect(r.values.every((v) => v === 4)).toBe(true);
      expect(tf.memory().numTensors).toBe(before);
      expect(a.isDisposed || b.isDisposed).toBe(false);
      a.dispose();
      b.dispose();
    }
  });
  it('has fusion class matmul and costs 2*batch*M*N*K flops', () => {
    const def = getOp('matmul')!;
    expect(def.fusion).toBe('matmul');
    const f32 = (shape: number[]) => ({ dtype: 'float32' as const, shape });
    expect(def.cost([f32([2, 3, 4]), f32([4, 5])], f32([2, 3, 5]), {})).toEqual({ flops: 2 * 2 * 3 * 5 * 4, bytes: 4 * (24 + 20 + 30) });
    expect(def.cost([f32([4, 3]), f32([5, 4])], f32([3, 5]), { transpose_a: true, transpose_b: true }).flops).toBe(2 * 3 * 5 * 4);
  });
});

describe('matmul gradient rule', () => {
  const cases: [number[], number[], Attrs][] = [
    [[3, 4], [4, 2], {}],
    [[3, 4], [2, 4], { transpose_b: true }],
    [[4, 3], [4, 2], { transpose_a: true }],
    [[4, 3], [2, 4], { transpose_a: true, transpose_b: true }],
    [[2, 3, 4], [4, 5], {}],
    [[4, 3], [2, 5, 4], { transpose_a: true, transpose_b: true }],
    [[2, 1, 3, 4], [3, 4, 2], {}],
    [[2, 1, 4, 3], [1, 3, 2, 4], { transpose_a: true, transpose_b: true }],
  ];
  for (const [sa, sb, attrs] of cases) {
    it(`matches central finite differences for ${JSON.stringify(sa)} x ${JSON.stringify(sb)} ${JSON.stringify(attrs)}`, () => {
      const def = getOp('matmul')!;
      const e = eagerBuilder();
      const a = e.put(tf.randomNormal(sa, 0, 1, 'float32', 3));
      const bb = e.put(tf.randomNormal(sb, 0, 1, 'float32', 4));
      const out = e.b.op('matmul', [a, bb], attrs);
      const dyT = tf.randomNormal(e.get(out).shape, 0, 1, 'float32', 5);
      const dy = e.put(dyT);
      const [ga, gb] = def.grad!(e.b, { inputs: [a, bb], output: out, attrs, dy });
      // L(a, b) = sum(matmul(a, b) * dy), evaluated in float64 JS from the kernel's float32 output.
      const loss = (xa: number[], xb: number[]): number =>
        tf.tidy(() => {
          const y = run('matmul', [tf.tensor(xa, sa), tf.tensor(xb, sb)], attrs);
          const d = dyT.dataSync();
          return y.values.reduce((s, v, i) => s + v * d[i]!, 0);
        });
      const va = Array.from(e.get(a).dataSync());
      const vb = Array.from(e.get(bb).dataSync());
      const h = 1e-2; // the loss is bilinear, so central differences are exact up to rounding
      for (const [vals, g, which] of [
        [va, ga!, 0],
        [vb, gb!, 1],
      ] as const) {
        const gv = e.get(g);
        expect(gv.shape).toEqual(which === 0 ? sa : sb);
        const got = gv.dataSync();
        vals.forEach((_v, k) => {
          const up = [...vals];
          const dn = [...vals];
          up[k] = up[k]! + h;
          dn[k] = dn[k]! - h;
          const fd = which === 0 ? (loss(up, vb) - loss(dn, vb)) / (2 * h) : (loss(va, up) - loss(va, dn)) / (2 * h);
          expect(got[k]!).toBeCloseTo(fd, 2);
        });
      }
      e.dispose();
    });
  }
});

describe('matmul on the wasm backend', () => {
  it('gives the cpu results with transpose flags (wasm takes an explicit transpose first)', async () => {
    await import('@tensorflow/tfjs-backend-wasm');
    const cases: [number[], number[], Attrs][] = [
      [[3, 4], [2, 4], { transpose_b: true }],
      [[4, 3], [4, 2], { transpose_a: true }],
      [[2, 4, 3], [2, 5, 4], { transpose_a: true, transpose_b: true }],
      [[2, 3, 4], [4, 5], {}],
    ];
    const results: Record<string, number[][]> = { cpu: [], wasm: [] };
    for (const backend of ['cpu', 'wasm']) {
      await tf.setBackend(backend);
      for (const [sa, sb, attrs] of cases) {
        const n = (s: number[]) => s.reduce((x, y) => x * y, 1);
        const a = tf.tensor(Array.from({ length: n(sa) }, (_, i) => Math.sin(i + 1)), sa);
        const b = tf.tensor(Array.from({ length: n(sb) }, (_, i) => Math.cos(2 * i)), sb);
        results[backend]!.push(run('matmul', [a, b], attrs).values);
        tf.dispose([a, b]);
      }
    }
    await tf.setBackend('cpu');
    results.wasm!.forEach((v, i) => v.forEach((x, j) => expect(x).toBeCloseTo(results.cpu![i]![j]!, 5)));
  });
});
