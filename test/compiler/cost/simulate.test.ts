import { describe, expect, it } from 'vitest';
import type { IRGraph, IRNode, TensorType } from '../../../compiler/ir.ts';
import { LoomError } from '../../../compiler/errors.ts';
import { peakMemory, simulate } from '../../../compiler/cost/simulate.ts';
import type { Profile } from '../../../compiler/cost/profile.ts';
import { compileGraph } from '../../../compiler/compile.ts';
import { loadGraph } from '../../../compiler/frontend/load.ts';

const f32 = (...shape: (number | string)[]): TensorType => ({ dtype: 'float32', shape });
const node = (id: string, op: string, inputs: string[], type: TensorType, attrs: IRNode['attrs'] = {}): IRNode => ({ id, op, inputs, attrs, type });
const graph = (inputs: [string, TensorType][], nodes: IRNode[], outputs: Record<string, string>): IRGraph => ({
  name: 't',
  file: 't.graph.json',
  inputs: inputs.map(([name, type]) => ({ name, type })),
  params: [],
  nodes,
  outputs,
});
const profile = (peak: number, bw: number, overhead: number, memoryCapacity?: number): Profile => ({
  name: 'test',
  peakFlops: { float32: peak },
  memoryBandwidth: bw,
  kernelOverhead: overhead,
  ...(memoryCapacity !== undefined ? { memoryCapacity } : {}),
});

// a [2,3] @ b [3,4]: 2*M*N*K = 2*2*4*3 = 48 flops; bytes (6 + 12 + 8) * 4 = 104.
const mm = graph([['a', f32(2, 3)], ['b', f32(3, 4)]], [node('c', 'matmul', ['a', 'b'], f32(2, 4))], { c: 'c' });

describe('roofline arithmetic', () => {
  it('counts matmul flops as 2MNK and bytes as inputs + output', () => {
    const r = simulate(mm, profile(1e3, 1e6, 0));
    expect(r.kernels[0]).toMatchObject({ flops: 48, bytes: 104 });
  });

  it('picks the bound from the largest of compute, memory and overhead', () => {
    // compute 48/1000 = 0.048 s; memory 104/100 = 1.04 s -> memory bound; time 1.04 + 0.01.
    const mem = simulate(mm, profile(1e3, 100, 0.01)).kernels[0]!;
    expect(mem.bound).toBe('memory');
    expect(mem.timeS).toBeCloseTo(1.05, 12);
    // memory 104/1e6 ~ 1e-4 s < compute 0.048 s -> compute bound; time 0.048 + 0.01.
    const comp = simulate(mm, profile(1e3, 1e6, 0.01)).kernels[0]!;
    expect(comp.bound).toBe('compute');
    expect(comp.timeS).toBeCloseTo(0.058, 12);
    // overhead 1 s dominates both.
    const ovh = simulate(mm, profile(1e3, 1e6, 1)).kernels[0]!;
    expect(ovh.bound).toBe('overhead');
    expect(ovh.timeS).toBeCloseTo(1.048, 12);
  });

  it('binds symbolic dims from options and names the missing ones otherwise', () => {
    const g = graph([['a', f32('B', 3)], ['b', f32(3, 4)]], [node('c', 'matmul', ['a', 'b'], f32('B', 4))], { c: 'c' });
    expect(simulate(g, profile(1, 1, 0), { dims: { B: 5 } }).kernels[0]!.flops).toBe(2 * 5 * 4 * 3);
    try {
      simulate(g, profile(1, 1, 0));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(LoomError);
      expect((e as LoomError).code).toBe('E_UNBOUND_DIM');
      expect((e as LoomError).message).toContain('--dim B=');
    }
  });

  it('uses the requested precision peak and rejects one the profile lacks', () => {
    const p: Profile = { ...profile(1e3, 1e9, 0), peakFlops: { float32: 1e3, bfloat16: 4e3 } };
    expect(simulate(mm, p, { precision: 'bfloat16' }).kernels[0]!.computeS).toBeCloseTo(48 / 4e3, 15);
    expect(() => simulate(mm, p, { precision: 'tf32' })).toThrow(/no peak for precision tf32/);
  });

  it('prices a fused group as its body flops and only its external bytes, one overhead', () => {
    // x, y [10]; body: m = x*y, e = exp(m), s = e + x; only s leaves the group.
    const body = [node('m', 'mul', ['x', 'y'], f32(10)), node('e', 'exp', ['m'], f32(10)), node('s', 'add', ['e', 'x'], f32(10))];
    const fused: IRNode = { id: 'f', op: 'fused', inputs: ['x', 'y'], attrs: {}, outputTypes: { s: f32(10) }, body };
    const g = graph([['x', f32(10)], ['y', f32(10)]], [fused], { s: 'f.s' });
    const unfused = graph([['x', f32(10)], ['y', f32(10)]], body, { s: 's' });
    const p = profile(1e3, 1e3, 0.5);
    const rf = simulate(g, p);
    const ru = simulate(unfused, p);
    expect(rf.kernels).toHaveLength(1);
    // flops: the same work as the three separate kernels.
    expect(rf.kernels[0]!.flops).toBe(ru.total.flops);
    expect(rf.kernels[0]!.ops).toBe(3);
    // bytes: read x and y, write s = 3 * 10 * 4; the unfused program also moves m and e.
    expect(rf.kernels[0]!.bytes).toBe(120);
    expect(ru.total.bytes).toBe((20 + 10) * 4 + (10 + 10) * 4 + (20 + 10) * 4);
    expect(rf.total.timeS).toBeCloseTo(Math.max(rf.total.flops / 1e3, 120 / 1e3) + 0.5, 12);
  });

  it('counts views as free kernels', () => {
    const g = graph([['a', f32(2, 3)]], [node('r', 'reshape', ['a'], f32(6), { shape: [6] })], { r: 'r' });
    const r = simulate(g, profile(1, 1, 1));
    expect(r.kernels[0]).toMatchObject({ bound: 'free', timeS: 0 });
    expect(r.total.kernels).toBe(0);
  });
});

describe('peak memory', () => {
  it('frees values after their last reader and keeps outputs, views aliasing their source', () => {
    // x [100] resident (400 B). a = exp(x) 400; b = reshape(a) (alias); c = exp(b) 400; d = exp(c) 400.
    // a (via b) dies after c; so at d: x + c + d = 1200; at c: x + a + c = 1200; peak 1200.
    const g = graph(
      [['x', f32(100)]],
      [node('a', 'exp', ['x'], f32(100)), node('b', 'reshape', ['a'], f32(10, 10), { shape: [10, 10] }), node('c', 'exp', ['b'], f32(10, 10)), node('d', 'exp', ['c'], f32(10, 10))],
      { d: 'd' },
    );
    const m = peakMemory(g, (t) => (t.shape as number[]).reduce((p, v) => p * v, 1) * 4);
    expect(m).toEqual({ resident: 400, peak: 1200, at: 'c' });
    // Making a an output too keeps it alive to the end: 400 + 400 + 400 + 400.
    const g2 = { ...g, outputs: { d: 'd', a: 'a' } };
    expect(peakMemory(g2, (t) => (t.shape as number[]).reduce((p, v) => p * v, 1) * 4).peak).toBe(1600);
  });

  it('reports whether the peak fits the capacity', () => {
    expect(simulate(mm, profile(1, 1, 0, 1000)).fits).toBe(true);
    expect(simulate(mm, profile(1, 1, 0, 50)).fits).toBe(false);
    expect(simulate(mm, profile(1, 1, 0)).fits).toBeNull();
  });
});

describe('compiled programs', () => {
  it('prices the compiled MLP loss+grad: matmul flops are 2MNK by hand, and fusion moves no flops', () => {
    const src = loadGraph('graphs/examples/mlp-loss-grad.graph.json');
    const p = profile(1e12, 1e12, 1e-6);
    const plain = simulate(compileGraph(src, { disabled: new Set(['fusion']) }).graph, p, { dims: { B: 10 } });
    const fused = simulate(compileGraph(src).graph, p, { dims: { B: 10 } });
    const mmFlops = plain.kernels.filter((k) => k.op === 'matmul').reduce((s, k) => s + k.flops, 0);
    // forward: 10x4x64, 10x64x64, 10x64x2; backward (w3, b3 only, after dce): d_w3 = a2^T g -> 64x10x2.
    expect(mmFlops).toBe(2 * 10 * (4 * 64 + 64 * 64 + 64 * 2) + 2 * 64 * 2 * 10);
    expect(fused.total.flops).toBe(plain.total.flops);
    expect(fused.total.kernels).toBeLessThanOrEqual(plain.total.kernels);
    expect(fused.total.bytes).toBeLessThanOrEqual(plain.total.bytes);
  });
});

describe('plan-time values', () => {
  it('prices constants, and pure ops over constants only, at zero: the executor computes them once per plan', () => {
    const g = graph(
      [['x', f32(4)]],
      [
        node('c', 'const', [], f32(), { value: 2 }),
        node('h', 'neg', ['c'], f32()),
        node('y', 'mul', ['x', 'h'], f32(4)),
      ],
      { y: 'y' },
    );
    const r = simulate(g, profile(1e3, 1e6, 0.5));
    expect(r.kernels.map((k) => k.bound)).toEqual(['free', 'free', 'overhead']);
    expect(r.total.kernels).toBe(1);
    // y: 4 flops at 1e3 flop/s (0.004 s) beat 36 bytes at 1e6 B/s; plus 0.5 s of overhead.
    expect(r.total.timeS).toBeCloseTo(0.5 + 4 / 1e3, 12);
  });
});

describe('measured kernel rates (profile.rates)', () => {
  // a [4, 2, 3] @ b [4, 3, 5]: batched (b has batch dims); flops 2*4*2*5*3 = 240;
  // bytes (24 + 60 + 40) * 4 = 496; one right-hand matrix has 3*5 = 15 elements.
  const bmm = graph([['a', f32(4, 2, 3)], ['b', f32(4, 3, 5)]], [node('c', 'matmul', ['a', 'b'], f32(4, 2, 5))], { c: 'c' });
  const base = profile(1000, 1e6, 0.5);

  it('prices a batched matmul at the batched rate, interpolated log-log by right-hand matrix size', () => {
    // Points (10 -> 100 FLOP/s) and (1000 -> 10 FLOP/s): at 15 elements, t = log(1.5)/log(100),
    // rate = 100 * 0.1^t.
    const p: Profile = { ...base, rates: { batchedMatmul: [{ rhsElements: 1000, rate: 10 }, { rhsElements: 10, rate: 100 }] } };
    const k = simulate(bmm, p).kernels[0]!;
    const rate = 100 * Math.pow(0.1, Math.log(1.5) / Math.log(100));
    expect(k.computeS).toBeCloseTo(240 / rate, 12);
    expect(k.timeS).toBeCloseTo(Math.max(240 / rate, 496 / 1e6) + 0.5, 12);
    expect(k.bound).toBe('compute');
    // Clamped outside the measured range: one point gives one rate for every size.
    const one: Profile = { ...base, rates: { batchedMatmul: [{ rhsElements: 1e6, rate: 40 }] } };
    expect(simulate(bmm, one).kernels[0]!.computeS).toBeCloseTo(240 / 40, 12);
  });

  it('keeps a matmul whose right operand is 2-D at the peak (the batch folds into rows)', () => {
    const g = graph([['a', f32(4, 2, 3)], ['w', f32(3, 5)]], [node('c', 'matmul', ['a', 'w'], f32(4, 2, 5))], { c: 'c' });
    const p: Profile = { ...base, rates: { batchedMatmul: [{ rhsElements: 15, rate: 1 }] } };
    expect(simulate(g, p).kernels[0]!.computeS).toBeCloseTo(240 / 1000, 12);
  });

  it('adds packing for a 2-D product whose right operand is new to the backend, not for a param', () => {
    // a [4, 2, 3] @ w [3, 5]: one 2-D product of [8, 3] x [3, 5] (240 flops at 1000 FLOP/s = 0.24 s);
    // its right-hand matrix has 15 elements, at 0.01 s each = 0.15 s when w is computed in the run.
    const p: Profile = { ...base, rates: { freshOperand: 0.01 } };
    const asInput = graph([['a', f32(4, 2, 3)], ['w', f32(3, 5)]], [node('c', 'matmul', ['a', 'w'], f32(4, 2, 5))], { c: 'c' });
    expect(simulate(asInput, p).kernels[0]!.computeS).toBeCloseTo(0.24 + 0.15, 12);
    // The same product with w a param: packed once, reused by every run.
    const asParam: IRGraph = { ...asInput, inputs: asInput.inputs.slice(0, 1), params: [{ name: 'w', type: f32(3, 5), init: { kind: 'zeros', args: {} } }] };
    expect(simulate(asParam, p).kernels[0]!.computeS).toBeCloseTo(0.24, 12);
    // A transposed param on a backend that copies transposed operands: the copy is new every run.
    const tr: IRGraph = {
      ...asParam,
      params: [{ name: 'w', type: f32(5, 3), init: { kind: 'zeros', args: {} } }],
      nodes: [node('c', 'matmul', ['a', 'w'], f32(4, 2, 5), { transpose_b: true })],
    };
    expect(simulate(tr, { ...p, rates: { ...p.rates, matmulCopiesTransposed: true } }).kernels[0]!.computeS).toBeCloseTo(0.24 + 0.15, 12);
    expect(simulate(tr, p).kernels[0]!.computeS).toBeCloseTo(0.24, 12);
    // Batched products are left to their own measured rates.
    expect(simulate(bmm, p).kernels[0]!.computeS).toBeCloseTo(240 / 1000, 12);
  });

  it('prices rank-2 products at the peak with neither packing nor copies where the executor owns them', () => {
    // [8, 3] x [5, 3]^T with a computed right operand: 240 flops at 1000 FLOP/s = 0.24 s, against
    // 0.24 + 0.15 s of packing (and a transposed copy) for the library product.
    const g = graph([['a', f32(8, 3)], ['w', f32(5, 3)]], [node('c', 'matmul', ['a', 'w'], f32(8, 5), { transpose_b: true })], { c: 'c' });
    const library: Profile = { ...base, rates: { freshOperand: 0.01, transpose: 1, matmulCopies: true, matmulCopiesTransposed: true } };
    const lib = simulate(g, library).kernels[0]!;
    expect(lib.computeS).toBeCloseTo(0.24 + 0.15, 12);
    expect(lib.copies).toBe(1);
    const own = simulate(g, { ...library, rates: { ...library.rates, ownProduct2d: true } }).kernels[0]!;
    expect(own.computeS).toBeCloseTo(0.24, 12);
    expect(own).toMatchObject({ copies: 0, copyS: 0 });
    // Batched products stay the library's.
    const batched = graph([['a', f32(4, 2, 3)], ['w', f32(4, 3, 5)]], [node('c', 'matmul', ['a', 'w'], f32(4, 2, 5))], { c: 'c' });
    const rates = { batchedMatmul: [{ rhsElements: 15, rate: 100 }] };
    expect(simulate(batched, { ...base, rates: { ...rates, ownProduct2d: true } }).kernels[0]!.computeS).toBeCloseTo(simulate(batched, { ...base, rates }).kernels[0]!.computeS, 12);
  });

  it('falls back to the plain roofline when the profile has no rates', () => {
    const k = simulate(bmm, base).kernels[0]!;
    expect(k.computeS).toBeCloseTo(240 / 1000, 12);
    expect(k).toMatchObject({ copies: 0, copyS: 0 });
  });

  it('prices a per-matrix cost beside the arithmetic, both interpolated by right-hand matrix size', () => {
    // bmm: 4 matrices with 15-element right-hand matrices. Points (10: 100 FLOP/s, 0.2 s per
    // matrix) and (1000: 10 FLOP/s, 0.6 s): t = log(1.5)/log(100), per matrix 0.2 + 0.4 t.
    const p: Profile = {
      ...base,
      rates: { batchedMatmul: [{ rhsElements: 10, rate: 100, perMatrix: 0.2 }, { rhsElements: 1000, rate: 10, perMatrix: 0.6 }] },
    };
    const t = Math.log(1.5) / Math.log(100);
    const k = simulate(bmm, p).kernels[0]!;
    expect(k.computeS).toBeCloseTo(4 * (0.2 + 0.4 * t) + 240 / (100 * Math.pow(0.1, t)), 12);
    // A point without perMatrix counts 0; clamped beyond the ends.
    const q: Profile = { ...base, rates: { batchedMatmul: [{ rhsElements: 1, rate: 100 }, { rhsElements: 10, rate: 100, perMatrix: 0.5 }] } };
    expect(simulate(bmm, q).kernels[0]!.computeS).toBeCloseTo(4 * 0.5 + 240 / 100, 12);
  });

  it('prices the folded product the matmul kernel runs for stacked weights, and its transposes', () => {
    // x [2, 3, 4, 5] @ w [3, 5, 6]: folded into 3 products of [8, 5] x [5, 6] (flops 2*2*3*4*6*5 =
    // 1440, right-hand matrices of 30 elements): 3 * 0.1 s + 1440 / 144 s = 10.3 s. Copies: x to
    // [3, 2, 4, 5] (120 elements, 960 bytes read + written at 96 B/s = 10 s) and the result [3, 2, 4, 6]
    // back (144 elements: 1152 bytes = 12 s), each with a 0.5 s launch.
    const g = graph([['x', f32(2, 3, 4, 5)], ['w', f32(3, 5, 6)]], [node('y', 'matmul', ['x', 'w'], f32(2, 3, 4, 6))], { y: 'y' });
    const p: Profile = { ...base, rates: { batchedMatmul: [{ rhsElements: 30, rate: 144, perMatrix: 0.1 }], transpose: 96, broadcast: 1, matmulCopies: true } };
    const k = simulate(g, p).kernels[0]!;
    expect(k.computeS).toBeCloseTo(10.3, 12);
    expect(k.copies).toBe(2);
    expect(k.copyS).toBeCloseTo(10 + 0.5 + 12 + 0.5, 12);
    // bytes (120 + 90 + 144) * 4 = 1416 at 1e6 B/s.
    expect(k.timeS).toBeCloseTo(10.3 + 0.5 + 23, 12);
    // Transposed weights on a backend that copies them: one more transpose, w's 90 elements (720 bytes = 7.5 s).
    const gt = graph([['x', f32(2, 3, 4, 5)], ['w', f32(3, 6, 5)]], [node('y', 'matmul', ['x', 'w'], f32(2, 3, 4, 6), { transpose_b: true })], { y: 'y' });
    const pt: Profile = { ...p, rates: { ...p.rates, matmulCopiesTransposed: true } };
    expect(simulate(gt, pt).kernels[0]!.copyS).toBeCloseTo(23 + 7.5 + 0.5, 12);
    // Without matmulCopies the copies are not priced, only the folded product.
    const bare: Profile = { ...p, rates: { ...p.rates, matmulCopies: false } };
    expect(simulate(g, bare).kernels[0]).toMatchObject({ copies: 0, copyS: 0 });
  });

  it('adds broadcast copies when both operands are broadcast', () => {
    // a [2, 1, 2, 3] @ b [1, 3, 3, 5] -> [2, 3, 2, 5]: a grows from 12 to 6*6 elements (48 moved,
    // 192 bytes at 96 B/s = 2 s) and b from 45 to 6*15 (135 moved, 540 bytes = 5.625 s).
    const g = graph([['a', f32(2, 1, 2, 3)], ['b', f32(1, 3, 3, 5)]], [node('c', 'matmul', ['a', 'b'], f32(2, 3, 2, 5))], { c: 'c' });
    const p: Profile = { ...base, rates: { broadcast: 96, transpose: 1, matmulCopies: true } };
    const r = simulate(g, p);
    expect(r.kernels[0]!.copies).toBe(2);
    expect(r.kernels[0]!.copyS).toBeCloseTo(2 + 0.5 + 5.625 + 0.5, 12);
    expect(r.total.kernels).toBe(3);
  });

  it('moves transpose, broadcast and reduction bytes at their measured rates', () => {
    // transpose [2, 3] -> [3, 2]: 48 bytes; broadcast_like [1, 3] -> [2, 3]: 12 + 24 = 36 bytes;
    // sum over axis 0 of [2, 3]: 24 + 12 = 36 bytes.
    const g = graph(
      [['x', f32(2, 3)], ['r', f32(1, 3)]],
      [node('t', 'transpose', ['x'], f32(3, 2), { perm: [1, 0] }), node('b', 'broadcast_like', ['r', 'x'], f32(2, 3)), node('s', 'sum', ['x'], f32(3), { axes: [0] })],
      { t: 't', b: 'b', s: 's' },
    );
    const p: Profile = { ...profile(1e9, 1e9, 0), rates: { transpose: 4, broadcast: 2, reduction: 3 } };
    const [t, b, s] = simulate(g, p).kernels;
    expect(t!.timeS).toBeCloseTo(48 / 4, 12);
    expect(b!.timeS).toBeCloseTo(36 / 2, 12);
    expect(s!.timeS).toBeCloseTo(36 / 3, 12);
  });
});
