import { describe, expect, it } from 'vitest';
import { infer, run, t, tf } from '../../helpers/ops.ts';
import { getOp } from '../../../compiler/ops/registry.ts';
import { makeShapeCtx } from '../../../compiler/frontend/shape-ctx.ts';
import { randomBits, threefry2x32 } from '../../../compiler/ops/threefry.ts';
import { permutation as driverPermutation } from '../../../runtime/pipeline/driver.ts';
import { inlineGraph } from '../../helpers/inline-graph.ts';
import { interpret } from '../../../runtime/interpreter.ts';
import { compileProgram } from '../../../runtime/exec.ts';
import type { Attrs } from '../../../compiler/ir.ts';
import { loomErr } from '../../helpers/loom-error.ts';

const u32 = (v: number[]) => v.map((x) => x >>> 0);
const key = (seed: number) => {
  const r = run('random_key', [], { seed });
  return tf.tensor1d(r.values, 'int32');
};
const uniform = (k: tf.Tensor, shape: number[], attrs: Attrs = {}) => run('random_uniform', [k], { shape, ...attrs }).values;

const lowest = (v: number[]) => v.reduce((a, b) => Math.min(a, b), Infinity);
const highest = (v: number[]) => v.reduce((a, b) => Math.max(a, b), -Infinity);

function moments(v: number[]): { mean: number; variance: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, variance: v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length };
}

describe('threefry-2x32', () => {
  it('matches the published known-answer vectors (Random123 kat_vectors)', () => {
    expect(threefry2x32(0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3)).toEqual([0xc4923a9c, 0x483df7a0]);
    expect(threefry2x32(0, 0, 0, 0)).toEqual([0x6b200159, 0x99ba4efe]);
    expect(threefry2x32(0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff)).toEqual([0x1cb996fc, 0xbb002be7]);
  });
});

describe('random: keys', () => {
  it('random_key holds the seed as [high word, low word]', () => {
    expect(run('random_key', [], { seed: 0 })).toEqual({ shape: [2], dtype: 'int32', values: [0, 0] });
    expect(run('random_key', [], { seed: 42 }).values).toEqual([0, 42]);
    expect(run('random_key', [], { seed: 2 ** 32 + 5 }).values).toEqual([1, 5]);
    expect(run('random_key', [], { seed: -1 }).values).toEqual([-1, -1]);
  });
  it('random_split reproduces jax.random.split(PRNGKey(seed))', () => {
    // The keys JAX's documentation prints for split(PRNGKey(0)) and split(PRNGKey(42)).
    const s0 = run('random_split', [key(0)], { num: 2 });
    expect(s0.shape).toEqual([2, 2]);
    expect(u32(s0.values)).toEqual([4146024105, 967050713, 2718843009, 1272950319]);
    expect(u32(run('random_split', [key(42)], { num: 2 }).values)).toEqual([2465931498, 3679230171, 255383827, 267815257]);
  });
  it('split children are distinct from each other and from the parent', () => {
    const parent = key(7);
    const kids = run('random_split', [parent], { num: 6 }).values;
    const pairs = new Set<string>([`${parent.dataSync().join(',')}`]);
    for (let i = 0; i < 6; i++) pairs.add(`${kids[2 * i]},${kids[2 * i + 1]}`);
    expect(pairs.size).toBe(7);
    // Their streams differ as well.
    const a = uniform(tf.tensor1d(kids.slice(0, 2), 'int32'), [8]);
    const b = uniform(tf.tensor1d(kids.slice(2, 4), 'int32'), [8]);
    expect(a).not.toEqual(b);
  });
  it('random_fold_in encrypts the counter (0, data) under the key, like jax.random.fold_in', () => {
    const k = key(3);
    const r = run('random_fold_in', [k, tf.scalar(5, 'int32')]);
    expect(r.shape).toEqual([2]);
    expect(u32(r.values)).toEqual(threefry2x32(0, 3, 0, 5));
    const r6 = run('random_fold_in', [k, tf.scalar(6, 'int32')]).values;
    expect(r6).not.toEqual(r.values);
    // Negative data uses its two's-complement bits.
    expect(u32(run('random_fold_in', [k, tf.scalar(-1, 'int32')]).values)).toEqual(threefry2x32(0, 3, 0, 0xffffffff));
  });
});

describe('random: uniform and normal', () => {
  it('uniform takes the top 24 bits of JAX-ordered Threefry words', () => {
    const k = key(11);
    const v = uniform(k, [2, 2]);
    // Four words: blocks (0, 2) and (1, 3); word i < 2 is block i's first output, the rest the second.
    const [a0, a1] = threefry2x32(0, 11, 0, 2);
    const [b0, b1] = threefry2x32(0, 11, 1, 3);
    expect(v).toEqual([a0, b0, a1, b1].map((w) => (w >>> 8) / 2 ** 24));
  });
  it('the same key gives the same numbers; different keys give different ones', () => {
    expect(uniform(key(1), [50])).toEqual(uniform(key(1), [50]));
    expect(uniform(key(1), [50])).not.toEqual(uniform(key(2), [50]));
    expect(run('random_normal', [key(1)], { shape: [9] }).values).toEqual(run('random_normal', [key(1)], { shape: [9] }).values);
  });
  it('100k uniforms have the moments of U[0,1) and U[-2,3)', () => {
    const v = uniform(key(123), [100_000]);
    expect(lowest(v)).toBeGreaterThanOrEqual(0);
    expect(highest(v)).toBeLessThan(1);
    const m = moments(v);
    expect(Math.abs(m.mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(m.variance - 1 / 12)).toBeLessThan(0.002);
    // Each tenth of the interval gets about a tenth of the draws.
    const bins = new Array<number>(10).fill(0);
    for (const x of v) bins[Math.floor(x * 10)]!++;
    for (const c of bins) expect(Math.abs(c / 1e5 - 0.1)).toBeLessThan(0.005);
    const w = uniform(key(124), [100_000], { min: -2, max: 3 });
    expect(lowest(w)).toBeGreaterThanOrEqual(-2);
    expect(highest(w)).toBeLessThan(3);
    expect(Math.abs(moments(w).mean - 0.5)).toBeLessThan(0.03);
  });
  it('uniform stays below max when float32 rounding would reach it', () => {
    // float32 spacing at 2^24 is 2, so every draw rounds to min or max; max must never appear.
    const v = uniform(key(5), [1000], { min: 2 ** 24, max: 2 ** 24 + 2 });
    expect(v.every((x) => x === 2 ** 24)).toBe(true);
  });
  it('100k normals have mean, variance and tails of the requested normal', () => {
    const z = run('random_normal', [key(99)], { shape: [100_001] }).values;
    expect(z.length).toBe(100_001);
    const m = moments(z);
    expect(Math.abs(m.mean)).toBeLessThan(0.015);
    expect(Math.abs(m.variance - 1)).toBeLessThan(0.02);
    const within1 = z.filter((x) => Math.abs(x) < 1).length / z.length;
    expect(Math.abs(within1 - 0.682689)).toBeLessThan(0.006);
    const within2 = z.filter((x) => Math.abs(x) < 2).length / z.length;
    expect(Math.abs(within2 - 0.954500)).toBeLessThan(0.004);
    const s = run('random_normal', [key(98)], { shape: [400, 250], mean: 3, std: 2 });
    expect(s.shape).toEqual([400, 250]);
    const ms = moments(s.values);
    expect(Math.abs(ms.mean - 3)).toBeLessThan(0.03);
    expect(Math.abs(ms.variance - 4)).toBeLessThan(0.08);
  });
  it('symbolic shapes are inferred and realised from the bound output type', () => {
    const ctx = makeShapeCtx({ op: 'random_uniform' }, new Set(['B', 'T']));
    const ty = getOp('random_uniform')!.shape([t([2], 'int32')], { shape: ['T*B', 3] }, ctx);
    expect(ty).toEqual({ dtype: 'float32', shape: ['B*T', 3] });
    const k = key(4);
    const y = getOp('random_uniform')!.kernel(tf, [k], { shape: ['B', 3] }, { outType: { dtype: 'float32', shape: [5, 3] } });
    expect(y.shape).toEqual([5, 3]);
    expect(Array.from(y.dataSync())).toEqual(uniform(k, [5, 3]));
    y.dispose();
  });
  it('random_uniform_like follows the shape of its second input', () => {
    const k = key(8);
    const r = run('random_uniform_like', [k, tf.zeros([3, 4], 'int32')], { min: 1, max: 2 });
    expect(r.shape).toEqual([3, 4]);
    expect(r.values).toEqual(uniform(k, [3, 4], { min: 1, max: 2 }));
    expect(infer('random_uniform_like', [t([2], 'int32'), t(['B', 'T'], 'bool')]).shape).toEqual(['B', 'T']);
  });
});

describe('random: categorical', () => {
  it('frequencies match softmax(logits); masked categories never appear', () => {
    const n = 100_000;
    const row = [0, Math.log(2), Math.log(3), -Infinity];
    const logits = tf.tensor2d(Array.from({ length: n }, () => row).flat(), [n, 4]);
    const r = run('random_categorical', [key(2024), logits]);
    expect(r.shape).toEqual([n]);
    expect(r.dtype).toBe('int32');
    const counts = [0, 0, 0, 0];
    for (const a of r.values) counts[a]!++;
    expect(counts[3]).toBe(0);
    [1 / 6, 2 / 6, 3 / 6].forEach((p, i) => expect(Math.abs(counts[i]! / n - p)).toBeLessThan(0.006));
    logits.dispose();
  });
  it('is reproducible and follows each row of a batch', () => {
    const logits = tf.tensor2d([[0, 50, 0], [50, 0, 0], [0, 0, 50]]);
    const r = run('random_categorical', [key(1), logits]);
    expect(r.values).toEqual([1, 0, 2]);
    expect(run('random_categorical', [key(3), tf.tensor1d([0, 0, 0, 0])]).shape).toEqual([]);
    expect(infer('random_categorical', [t([2], 'int32'), t(['B', 'T', 6])])).toEqual({ dtype: 'int32', shape: ['B', 'T'] });
  });
});

describe('random: permutation', () => {
  const perm = (k: tf.Tensor, n: number | string) => run('random_permutation', [k], { n }).values;
  /** jax.random.bits(key, n) written out from the block function: word i < h is block i's first output, the rest the second. */
  function bitsRef(k: [number, number], n: number): number[] {
    const h = Math.ceil(n / 2);
    const out: number[] = [];
    for (let i = 0; i < h; i++) {
      const [y0, y1] = threefry2x32(k[0], k[1], i, i + h < n ? i + h : 0);
      out[i] = y0;
      if (i + h < n) out[i + h] = y1;
    }
    return out;
  }
  const isPermutation = (p: number[]) => [...p].sort((a, b) => a - b).every((v, i) => v === i);

  it('is a permutation of 0..n-1, int32 [n], also for n = 0 and 1', () => {
    for (const n of [0, 1, 2, 7, 128, 512]) {
      const r = run('random_permutation', [key(n + 3)], { n });
      expect(r).toMatchObject({ shape: [n], dtype: 'int32' });
      expect(isPermutation(r.values)).toBe(true);
    }
  });
  it('is Fisher-Yates (from the top, j = word_i mod (i + 1)) over the JAX-ordered Threefry words', () => {
    for (const [seed, n] of [[5, 5], [17, 12], [0, 33]] as const) {
      const w = bitsRef([0, seed], n);
      const p = Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = w[i]! % (i + 1);
        [p[i], p[j]] = [p[j]!, p[i]!];
      }
      expect(perm(key(seed), n)).toEqual(p);
    }
  });
  it('equals the permutation the training driver shuffles minibatches with', () => {
    for (const [k, n] of [[[1, 2], 50], [[0, 1], 512], [[-7, 123456], 9]] as const)
      expect(perm(tf.tensor1d([...k], 'int32'), n)).toEqual(Array.from(driverPermutation([k[0] >>> 0, k[1] >>> 0], n)));
  });
  it('the same key gives the same permutation; different keys give different ones', () => {
    expect(perm(key(1), 64)).toEqual(perm(key(1), 64));
    const seen = new Set<string>();
    for (let s = 0; s < 20; s++) seen.add(perm(key(s), 64).join(','));
    expect(seen.size).toBe(20);
  });
  it('all 24 permutations of 4 are about equally likely over 4800 fixed keys (chi-square)', () => {
    const counts = new Map<string, number>();
    for (let s = 0; s < 4800; s++) {
      const p = perm(key(s), 4).join('');
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    // 23 degrees of freedom: mean 23, sd 6.8; 60 is beyond the 0.9999 quantile (about 55).
    const chi2 = [...counts.values()].reduce((a, c) => a + (c - 200) ** 2 / 200, 0);
    expect(chi2).toBeLessThan(60);
  });
  it('every value lands in every position about equally often (n = 10, 2000 fixed keys)', () => {
    const at = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
    for (let s = 0; s < 2000; s++) perm(key(10_000 + s), 10).forEach((v, i) => at[i]![v]!++);
    // 200 expected per cell (binomial sd 13.4): no cell is 5 sd away.
    for (const row of at) for (const c of row) expect(Math.abs(c - 200)).toBeLessThan(67);
  });
  it('n may be a dim bound by a graph input; interpreter and compiled executor agree', () => {
    const ctx = makeShapeCtx({ op: 'random_permutation' }, new Set(['B', 'T']));
    expect(getOp('random_permutation')!.shape([t([2], 'int32')], { n: 'T*B' }, ctx)).toEqual({ dtype: 'int32', shape: ['B*T'] });
    const g = inlineGraph({
      graph: 'perm',
      inputs: { key: { dtype: 'int32', shape: [2] }, rows: { dtype: 'float32', shape: ['B', 3] } },
      nodes: [
        { id: 'p', op: 'random_permutation', in: ['key'], attrs: { n: 'B' } },
        { id: 'shuffled', op: 'gather', in: ['rows', 'p'], attrs: { axis: 0 } },
      ],
      outputs: { p: 'p', shuffled: 'shuffled' },
    });
    const k = key(21);
    const rows = tf.tensor2d(Array.from({ length: 30 }, (_, i) => i), [10, 3]);
    const want = perm(k, 10);
    const a = interpret(g, { key: k, rows }, {});
    const prog = compileProgram(g);
    const b = prog.run({ key: k, rows }, {});
    for (const o of [a, b]) {
      expect(Array.from(o.p!.dataSync())).toEqual(want);
      expect(Array.from(o.shuffled!.dataSync())).toEqual(want.flatMap((r) => [3 * r, 3 * r + 1, 3 * r + 2]));
    }
    tf.dispose([rows, ...Object.values(a), ...Object.values(b)]);
  });
  it('rejects a bad n and a bad key', () => {
    expect(loomErr(() => infer('random_permutation', [t([2], 'int32')], { n: -1 })).info.code).toBe('E_ATTR');
    const u = loomErr(() => infer('random_permutation', [t([2], 'int32')], { n: 'B' }));
    expect(u.info.code).toBe('E_UNBOUND_DIM');
    expect(u.info.message).toMatch(/n uses the dim "B"/);
    expect(loomErr(() => infer('random_permutation', [t([2])], { n: 3 })).info.code).toBe('E_DTYPE');
  });
});

describe('random: integers', () => {
  const ints = (k: tf.Tensor, shape: (number | string)[], max: number) => run('random_int', [k], { shape, max });
  /** Word i of jax.random.bits(key, n), from the block function (as bitsRef above). */
  const word = (k: [number, number], n: number, i: number): number => {
    const h = Math.ceil(n / 2);
    const [y0, y1] = threefry2x32(k[0], k[1], i % h, i % h + h < n ? i % h + h : 0);
    return i < h ? y0 : y1;
  };

  it('is each JAX-ordered Threefry word modulo max, as int32 of the shape', () => {
    for (const [seed, shape, max] of [[3, [7], 4], [11, [2, 3], 5], [0, [1], 2 ** 31], [9, [4], 1]] as const) {
      const n = shape.reduce((a: number, b: number) => a * b, 1);
      const r = ints(key(seed), [...shape], max);
      expect(r).toMatchObject({ shape: [...shape], dtype: 'int32' });
      expect(r.values).toEqual(Array.from({ length: n }, (_, i) => word([0, seed], n, i) % max));
    }
  });
  it('stays in [0, max) and is about uniform', () => {
    const v = ints(key(4), [4000], 4).values;
    expect(lowest(v)).toBe(0);
    expect(highest(v)).toBe(3);
    for (let g = 0; g < 4; g++) expect(Math.abs(v.filter((x) => x === g).length - 1000)).toBeLessThan(100);
  });
  it('equals the group branch the training driver executes (randomBits(key, N) % G)', () => {
    for (const [k, n, g] of [[[5, -3], 4, 4], [[1, 2], 16, 8]] as const) {
      const words = randomBits([k[0] >>> 0, k[1] >>> 0], n);
      expect(ints(tf.tensor1d([...k], 'int32'), [n], g).values).toEqual(Array.from(words, (w) => w % g));
    }
  });
  it('shape entries may be dims bound by a graph input; interpreter and compiled executor agree', () => {
    const g = inlineGraph({
      graph: 'ints',
      inputs: { key: { dtype: 'int32', shape: [2] }, rows: { dtype: 'float32', shape: ['N', 3] } },
      nodes: [{ id: 'i', op: 'random_int', in: ['key'], attrs: { shape: ['N', 2], max: 3 } }],
      outputs: { i: 'i' },
    });
    const k = key(8);
    const rows = tf.zeros([5, 3]);
    const want = ints(k, [5, 2], 3).values;
    const a = interpret(g, { key: k, rows }, {});
    const b = compileProgram(g).run({ key: k, rows }, {});
    for (const o of [a, b]) {
      expect(o.i!.shape).toEqual([5, 2]);
      expect(Array.from(o.i!.dataSync())).toEqual(want);
    }
    tf.dispose([rows, ...Object.values(a), ...Object.values(b)]);
  });
  it('rejects a max outside 1..2^31, a missing max and a bad key', () => {
    for (const max of [0, -2, 1.5, 2 ** 31 + 1]) {
      const e = loomErr(() => infer('random_int', [t([2], 'int32')], { shape: [3], max }));
      expect(e.info.code).toBe('E_ATTR');
      expect(e.info.message).toMatch(/max must be an integer from 1 to 2\^31/);
      expect(e.info.found).toBe(String(max));
    }
    expect(loomErr(() => infer('random_int', [t([2], 'int32')], { shape: [3] })).info.code).toBe('E_ATTR');
    expect(loomErr(() => infer('random_int', [t([2])], { shape: [3], max: 2 })).info.code).toBe('E_DTYPE');
  });
});

describe('random: errors, gradients, hygiene', () => {
  it('rejects keys that are not int32 [2]', () => {
    const d = loomErr(() => infer('random_uniform', [t([2])], { shape: [3] }));
    expect(d.info.code).toBe('E_DTYPE');
    expect(d.info.expected).toBe('int32[2]');
    expect(d.info.found).toBe('float32[2]');
    const s = loomErr(() => infer('random_split', [t([3], 'int32')], { num: 2 }));
    expect(s.info.code).toBe('E_SHAPE');
    expect(s.info.message).toMatch(/random key/);
    expect(s.info.found).toBe('int32[3]');
    expect(loomErr(() => infer('random_normal', [t(['K'], 'int32')], { shape: [1] })).info.code).toBe('E_SHAPE');
    expect(loomErr(() => infer('random_categorical', [t([2, 2], 'int32'), t([4])])).info.code).toBe('E_SHAPE');
  });
  it('rejects bad attributes and data', () => {
    expect(loomErr(() => infer('random_split', [t([2], 'int32')], { num: 0 })).info.code).toBe('E_ATTR');
    const r = loomErr(() => infer('random_uniform', [t([2], 'int32')], { shape: [2], min: 1, max: 1 }));
    expect(r.info.code).toBe('E_ATTR');
    expect(r.info.found).toBe('min=1, max=1');
    expect(loomErr(() => infer('random_normal', [t([2], 'int32')], { shape: [2], std: -1 })).info.code).toBe('E_ATTR');
    const bad = loomErr(() => infer('random_uniform', [t([2], 'int32')], { shape: [2, 'B+1'] }));
    expect(bad.info.code).toBe('E_ATTR');
    expect(bad.info.message).toMatch(/shape entry 1/);
    expect(loomErr(() => infer('random_uniform', [t([2], 'int32')], { shape: [-1] })).info.code).toBe('E_ATTR');
    const fd = loomErr(() => infer('random_fold_in', [t([2], 'int32'), t([])]));
    expect(fd.info.code).toBe('E_DTYPE');
    expect(fd.info.message).toMatch(/data/);
    expect(loomErr(() => infer('random_fold_in', [t([2], 'int32'), t([1], 'int32')])).info.code).toBe('E_SHAPE');
    expect(loomErr(() => infer('random_categorical', [t([2], 'int32'), t([])])).info.code).toBe('E_RANK');
    expect(loomErr(() => infer('random_categorical', [t([2], 'int32'), t(['B', 0])])).info.code).toBe('E_SHAPE');
  });
  it('rejects dims no graph input binds', () => {
    const e = loomErr(() => infer('random_normal', [t([2], 'int32')], { shape: ['B', 4] }));
    expect(e.info.code).toBe('E_UNBOUND_DIM');
    expect(e.info.message).toMatch(/"B"/);
  });
  it('no gradient flows through any random op', () => {
    const calls: [string, string[]][] = [
      ['random_key', []],
      ['random_split', ['k']],
      ['random_fold_in', ['k', 'd']],
      ['random_uniform', ['k']],
      ['random_normal', ['k']],
      ['random_categorical', ['k', 'l']],
      ['random_uniform_like', ['k', 'l']],
      ['random_permutation', ['k']],
      ['random_int', ['k']],
    ];
    const b = { op: () => 'x', constant: () => 'c', type: () => t([2], 'int32') };
    for (const [op, inputs] of calls) {
      const def = getOp(op)!;
      expect(def.grad!(b, { inputs, output: 'y', attrs: {}, dy: 'dy' })).toEqual(inputs.map(() => null));
      expect(def.fusion).toBe('opaque');
    }
  });
  it('kernels do not leak or dispose their inputs', () => {
    const k = key(6);
    const l = tf.tensor2d([[0, 1], [2, 3]]);
    const d = tf.scalar(3, 'int32');
    const before = tf.memory().numTensors;
    run('random_split', [k], { num: 3 });
    run('random_fold_in', [k, d]);
    run('random_uniform', [k], { shape: [4] });
    run('random_normal', [k], { shape: [3] });
    run('random_categorical', [k, l]);
    run('random_uniform_like', [k, l]);
    run('random_permutation', [k], { n: 5 });
    run('random_int', [k], { shape: [3], max: 4 });
    expect(tf.memory().numTensors).toBe(before);
    expect(k.isDisposed || l.isDisposed || d.isDisposed).toBe(false);
  });
});
