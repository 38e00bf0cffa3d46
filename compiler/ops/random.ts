/**
 * Explicit, counter-based randomness. A key is an int32 [2] tensor holding two uint32 words;
 * every op derives its numbers on the host from the key with Threefry-2x32 (threefry.ts), so a
 * seed gives the same numbers on every backend. The ops are pure functions of their inputs
 * (same key, same numbers), so folding and CSE stay correct; streams differ only through keys
 * made with random_split / random_fold_in. No gradients flow through them.
 */
import { canonDim, dimEq, isSymbolName, symbolsOf, type Dim } from '../dims.ts';
import { showType, type AttrValue, type Attrs, type DType, type TensorType } from '../ir.ts';
import { bytesOf, defineOp, sizeOf, type ConcreteType, type HostTensor, type OpDef, type Cost, type GradArgs, type GradBuilder, type HostArray, type ShapeCtx, type Tensor } from './registry.ts';
import { foldIn, keyFromInt32, permutation, randomBits, randomInts, seedKey, splitKey, toInt32, uniform24, uniformOpen, type Key } from './threefry.ts';
import type * as tfType from '@tensorflow/tfjs';

type TF = typeof tfType;

function checkKey(k: TensorType, ctx: ShapeCtx): void {
  if (k.dtype !== 'int32') ctx.fail('E_DTYPE', 'a random key must be an int32 [2] tensor (make one with random_key)', 'int32[2]', showType(k));
  if (k.shape.length !== 1 || !dimEq(k.shape[0]!, 2))
    ctx.fail('E_SHAPE', 'a random key must be an int32 [2] tensor (make one with random_key)', 'int32[2]', showType(k));
}

function readKey(key: Tensor): Key {
  return keyFromInt32(key.dataSync());
}

/** Validates a `shape` attribute whose entries are sizes or dim expressions over bound symbols. */
function shapeAttr(a: Attrs, ctx: ShapeCtx): Dim[] {
  const raw = a.shape as AttrValue[];
  return raw.map((d, i) => dimAttr(d, `shape entry ${i}`, ctx));
}

/** Validates one size attribute: an integer >= 0 or a dim expression over bound symbols. */
function dimAttr(d: AttrValue, what: string, ctx: ShapeCtx): Dim {
  if (typeof d === 'number') {
    if (!Number.isInteger(d) || d < 0) ctx.fail('E_ATTR', `${what} must be a non-negative integer or a dim name`, 'an integer >= 0 or a dim like "B"', String(d));
    return d;
  }
  if (typeof d !== 'string' || d.split('*').some((p) => !/^\s*\d+\s*$/.test(p) && !isSymbolName(p.trim())))
    ctx.fail('E_ATTR', `${what} is not a dim`, 'an integer >= 0 or a dim like "B" or "B*T"', JSON.stringify(d));
  const dim = canonDim(d as string);
  for (const s of symbolsOf(dim))
    if (!ctx.isBound(s)) ctx.fail('E_UNBOUND_DIM', `${what} uses the dim "${s}", which no graph input binds`, 'dims bound by graph inputs', s);
  return dim;
}

function rangeAttrs(a: Attrs, ctx: ShapeCtx): void {
  const lo = (a.min as number | undefined) ?? 0;
  const hi = (a.max as number | undefined) ?? 1;
  if (!(lo < hi) || !Number.isFinite(lo) || !Number.isFinite(hi))
    ctx.fail('E_ATTR', 'uniform numbers need finite min < max', 'min < max', `min=${lo}, max=${hi}`);
}

/** The largest float32 below a float32 value. */
function float32Below(v: number): number {
  const buf = new DataView(new ArrayBuffer(4));
  buf.setFloat32(0, v);
  if (v === 0) return -(2 ** -149);
  const bits = buf.getUint32(0);
  buf.setUint32(0, v > 0 ? bits - 1 : bits + 1);
  return buf.getFloat32(0);
}

/** Fills `out` with uniform float32 values in [min, max). */
function fillUniform(key: Key, out: HostArray, lo: number, hi: number): void {
  const n = out.length;
  const u = uniform24(randomBits(key, n));
  const top = Math.fround(hi);
  for (let i = 0; i < n; i++) {
    const v = Math.fround(lo + u[i]! * (hi - lo));
    // Rounding to float32 may land on max; keep the interval half-open.
    out[i] = v >= top ? float32Below(top) : v;
  }
}

/** Fills `out` with normal values by Box-Muller on pairs of 32-bit uniforms. */
function fillNormal(key: Key, out: HostArray, mean: number, std: number): void {
  const n = out.length;
  const pairs = Math.ceil(n / 2);
  const bits = randomBits(key, 2 * pairs);
  for (let i = 0; i < pairs; i++) {
    const u1 = (bits[2 * i]! + 1) * 2 ** -32; // (0, 1]: log is finite
    const u2 = bits[2 * i + 1]! * 2 ** -32;
    const r = Math.sqrt(-2 * Math.log(u1));
    out[2 * i] = mean + std * r * Math.cos(2 * Math.PI * u2);
    if (2 * i + 1 < n) out[2 * i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
  }
}

/**
 * Gumbel-max samples over the last axis (K categories) of row-major logits into `out`.
 * float32 sums (fround) and first-max ties match tf.add + tf.argMax on the same noise.
 */
function fillCategorical(key: Key, logits: ArrayLike<number>, K: number, out: HostArray): void {
  const u = uniformOpen(randomBits(key, logits.length));
  for (let i = 0; i < out.length; i++) {
    let best = -Infinity;
    let arg = 0;
    for (let j = 0; j < K; j++) {
      const v = Math.fround(logits[i * K + j]! + Math.fround(-Math.log(-Math.log(u[i * K + j]!))));
      if (v > best) {
        best = v;
        arg = j;
      }
    }
    out[i] = arg;
  }
}

/** A float32 tensor of `shape` filled on the host. */
function filled(tf: TF, shape: number[], fill: (out: Float32Array) => void): Tensor {
  const out = new Float32Array(sizeOf(shape));
  fill(out);
  return tf.tensor(out, shape, 'float32');
}

/** Per output element: one Threefry block per two words, about 40 integer ops a word. */
function rngCost(inputs: ConcreteType[], out: ConcreteType): Cost {
  return { flops: 40 * sizeOf(out.shape), bytes: inputs.reduce((s, t) => s + bytesOf(t), 0) + bytesOf(out) };
}

const noGrad = (_b: GradBuilder, a: GradArgs): null[] => a.inputs.map(() => null);

const KEY_OUT: TensorType = { dtype: 'int32', shape: [2] };

defineOp({
  name: 'random_key',
  family: 'random',
  doc: 'a key from an integer seed (like jax.random.PRNGKey: [high word, low word])',
  inputs: [],
  attrs: { properties: { seed: { type: 'integer' } }, required: ['seed'] },
  shape: (_i, a, ctx) => {
    if (!Number.isSafeInteger(a.seed)) ctx.fail('E_ATTR', 'seed must be a safe integer', 'an integer with |seed| < 2^53', String(a.seed));
    return KEY_OUT;
  },
  kernel: (tf, _i, a) => keyTensor(tf, seedKey(a.seed as number)),
  host: (_i, out, a) => out.data.set(toInt32(seedKey(a.seed as number))),
  grad: noGrad,
  fusion: 'opaque',
  cost: rngCost,
});

function keyTensor(tf: TF, words: ArrayLike<number>, shape: number[] = [2]): Tensor {
  return tf.tensor(toInt32(words), shape, 'int32');
}


/**
 * Adds the `batched_keys` form to a random op, for vmap: the key is [N, 2] and every other input
 * has a leading N axis too; instance i draws out[i] exactly as the op draws from key i alone (the
 * same Threefry stream, not a wider one), so K seeds batched give each seed's own numbers.
 */
function keyBatched(def: OpDef): OpDef {
  const { shape, host } = def;
  if (!host) throw new Error(`internal: random op ${def.name} needs a host kernel to take batched keys`);
  const one = (t: TensorType): TensorType => ({ ...t, shape: t.shape.slice(1) });
  /** Instance i of every input and of the output, as views. */
  const each = (ins: readonly HostTensor[], out: HostTensor, a: Attrs): void => {
    const n = out.shape[0]!;
    const view = (t: HostTensor, i: number): HostTensor => {
      const m = t.data.length / n;
      return { data: t.data.subarray(i * m, (i + 1) * m), shape: t.shape.slice(1), dtype: t.dtype };
    };
    for (let i = 0; i < n; i++) host(ins.map((t) => view(t, i)), view(out, i), a);
  };
  return {
    ...def,
    attrs: { ...def.attrs, properties: { ...def.attrs.properties, batched_keys: { type: 'boolean' } } },
    shape: (ins, a, ctx) => {
      if (a.batched_keys !== true) return shape(ins, a, ctx);
      const k = ins[0]!;
      if (k.dtype !== 'int32' || k.shape.length !== 2 || !dimEq(k.shape[1]!, 2))
        ctx.fail('E_SHAPE', 'with batched_keys, the key must be an int32 [N, 2] tensor (one key per instance)', 'int32[N, 2]', showType(k));
      const n = k.shape[0]!;
      ins.slice(1).forEach((t, i) => {
        if (t.shape.length === 0) ctx.fail('E_RANK', `with batched_keys, input ${i + 1} needs the leading instance axis`, `[${n}, ...]`, showType(t));
        ctx.unify(n, t.shape[0]!, `the instance axis of the key and of input ${i + 1}`);
      });
      const t = shape(ins.map(one), a, ctx);
      return { ...t, shape: [n, ...t.shape] };
    },
    kernel: (tf, ins, a, ctx) => {
      if (a.batched_keys !== true) return def.kernel(tf, ins, a, ctx);
      const hostIn = ins.map((t): HostTensor => ({ data: t.dataSync() as HostArray, shape: t.shape, dtype: t.dtype as DType }));
      const { dtype, shape: outShape } = ctx.outType;
      const data = dtype === 'float32' ? new Float32Array(sizeOf(outShape)) : new Int32Array(sizeOf(outShape));
      each(hostIn, { data, shape: outShape, dtype }, a);
      return tf.tensor(data, outShape, dtype);
    },
    host: (ins, out, a) => (a.batched_keys === true ? each(ins, out, a) : host(ins, out, a)),
    batch: (b, a) => {
      // Keys batched twice (nested vmap) would need [K, N, 2] keys: one op per instance instead.
      if (a.attrs.batched_keys === true) return null;
      return { value: b.op(a.op, a.inputs.map((x, i) => (a.batched[i] ? x : b.materialize(x))), { ...a.attrs, batched_keys: true }), batched: true };
    },
  };
}

defineOp(keyBatched({
  name: 'random_split',
  readsHost: true,
  family: 'random',
  doc: '`num` independent child keys [num, 2] (like jax.random.split)',
  inputs: ['key'],
  attrs: { properties: { num: { type: 'integer', minimum: 1 } }, required: ['num'] },
  shape: ([k], a, ctx) => {
    checkKey(k!, ctx);
    const n = a.num as number;
    if (!Number.isInteger(n) || n < 1) ctx.fail('E_ATTR', 'num must be an integer >= 1', 'num >= 1', String(n));
    return { dtype: 'int32', shape: [n, 2] };
  },
  kernel: (tf, [k], a) => keyTensor(tf, splitKey(readKey(k!), a.num as number), [a.num as number, 2]),
  host: ([k], out, a) => out.data.set(toInt32(splitKey(keyFromInt32(k!.data), a.num as number))),
  grad: noGrad,
  fusion: 'opaque',
  cost: rngCost,
}));

defineOp(keyBatched({
  name: 'random_fold_in',
  readsHost: true,
  family: 'random',
  doc: 'a new key mixing an int32 scalar (e.g. an iteration counter) into a key (like jax.random.fold_in)',
  inputs: ['key', 'data'],
  attrs: { properties: {} },
  shape: ([k, d], _a, ctx) => {
    checkKey(k!, ctx);
    ctx.dtype(d!, ['int32'], 'data');
    if (d!.shape.length !== 0) ctx.fail('E_SHAPE', 'data must be an int32 scalar', 'int32[]', showType(d!));
    return KEY_OUT;
  },
  kernel: (tf, [k, d]) => keyTensor(tf, foldIn(readKey(k!), d!.dataSync()[0]!)),
  host: ([k, d], out) => out.data.set(toInt32(foldIn(keyFromInt32(k!.data), d!.data[0]!))),
  grad: noGrad,
  fusion: 'opaque',
  cost: rngCost,
}));

const SHAPE_ATTR = { type: 'array', items: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] } };

defineOp(keyBatched({
  name: 'random_uniform',
  readsHost: true,
  family: 'random',
  doc: 'float32 uniform numbers in [min, max) (default [0, 1)) of `shape` (entries may be dims like "B"), 24 random bits each',
  inputs: ['key'],
  attrs: { properties: { shape: SHAPE_ATTR, min: { type: 'number' }, max: { type: 'number' } }, required: ['shape'] },
  shape: ([k], a, ctx) => {
    checkKey(k!, ctx);
    rangeAttrs(a, ctx);
    return { dtype: 'float32', shape: shapeAttr(a, ctx) };
  },
  kernel: (tf, [k], a, ctx) => filled(tf, ctx.outType.shape, (out) => fillUniform(readKey(k!), out, (a.min as number | undefined) ?? 0, (a.max as number | undefined) ?? 1)),
  host: ([k], out, a) => fillUniform(keyFromInt32(k!.data), out.data, (a.min as number | undefined) ?? 0, (a.max as number | undefined) ?? 1),
  grad: noGrad,
  fusion: 'opaque',
  cost: rngCost,
}));

defineOp(keyBatched({
  name: 'random_uniform_like',
  readsHost: true,
  family: 'random',
  doc: 'float32 uniform numbers in [min, max) (default [0, 1)) with the shape of `like` (any dtype)',
  inputs: ['key', 'like'],
  attrs: { properties: { min: { type: 'number' }, max: { type: 'number' } } },
  shape: ([k, like], a, ctx) => {
    checkKey(k!, ctx);
    rangeAttrs(a, ctx);
    return { dtype: 'float32', shape: like!.shape };
  },
  kernel: (tf, [k, like], a) => filled(tf, like!.shape, (out) => fillUniform(readKey(k!), out, (a.min as number | undefined) ?? 0, (a.max as number | undefined) ?? 1)),
  host: ([k], out, a) => fillUniform(keyFromInt32(k!.data), out.data, (a.min as number | undefined) ?? 0, (a.max as number | undefined) ?? 1),
  grad: noGrad,
  fusion: 'opaque',
  cost: rngCost,
}));

defineOp(keyBatched({
  name: 'random_normal',
  readsHost: true,
  family: 'random',
  doc: 'float32 normal numbers with `mean` (default 0) and `std` (default 1) of `shape` (entries may be dims like "B"), by Box-Muller',
  inputs: ['key'],
  attrs: { properties: { shape: SHAPE_ATTR, mean: { type: 'number' }, std: { type: 'number', minimum: 0 } }, required: ['shape'] },
  shape: ([k], a, ctx) => {
    checkKey(k!, ctx);
    const std = (a.std as number | undefined) ?? 1;
    if (!(std >= 0) || !Number.isFinite(std)) ctx.fail('E_ATTR', 'std must be finite and >= 0', 'std >= 0', String(std));
    return { dtype: 'float32', shape: shapeAttr(a, ctx) };
  },
  kernel: (tf, [k], a, ctx) => filled(tf, ctx.outType.shape, (out) => fillNormal(readKey(k!), out, (a.mean as number | undefined) ?? 0, (a.std as number | undefined) ?? 1)),
  host: ([k], out, a) => fillNormal(keyFromInt32(k!.data), out.data, (a.mean as number | undefined) ?? 0, (a.std as number | undefined) ?? 1),
  grad: noGrad,
  fusion: 'opaque',
  cost: rngCost,
}));

defineOp(keyBatched({
  name: 'random_categorical',
  readsHost: true,
  family: 'random',
  doc: 'int32 samples [...] from softmax(logits [..., K]) over the last axis, by Gumbel-max (-inf logits are never drawn)',
  inputs: ['key', 'logits'],
  attrs: { properties: {} },
  shape: ([k, l], _a, ctx) => {
    checkKey(k!, ctx);
    ctx.dtype(l!, ['float32'], 'logits');
    const r = l!.shape.length;
    if (r === 0) ctx.fail('E_RANK', 'logits need a last axis of categories', 'rank >= 1 ([..., K])', 'a scalar');
    if (l!.shape[r - 1] === 0) ctx.fail('E_SHAPE', 'logits need at least one category', 'K >= 1', showType(l!));
    return { dtype: 'int32', shape: l!.shape.slice(0, -1) };
  },
  // On the host: the key is read there anyway, and one pass over the logits is cheaper than
  // dispatching add and argMax.
  kernel: (tf, [k, logits]) => {
    const K = logits!.shape[logits!.shape.length - 1]!;
    const out = new Int32Array(logits!.size / K);
    fillCategorical(readKey(k!), logits!.dataSync(), K, out);
    return tf.tensor(out, logits!.shape.slice(0, -1), 'int32');
  },
  host: ([k, logits], out) => fillCategorical(keyFromInt32(k!.data), logits!.data, logits!.shape[logits!.shape.length - 1]!, out.data),
  grad: noGrad,
  fusion: 'opaque',
  cost: rngCost,
}));

/** The `max` attribute of random_int: an integer from 1 to 2^31 (int32 results, uint32 words). */
function intMaxAttr(a: Attrs, ctx: ShapeCtx): number {
  const m = a.max as number;
  if (!Number.isInteger(m) || m < 1 || m > 2 ** 31) ctx.fail('E_ATTR', 'max must be an integer from 1 to 2^31 (values are drawn from [0, max))', '1 <= max <= 2147483648', String(m));
  return m;
}

defineOp(keyBatched({
  name: 'random_int',
  readsHost: true,
  family: 'random',
  doc: 'int32 integers in [0, max) of `shape` (entries may be dims like "B"): each is one Threefry word modulo `max` (bias below max / 2^32), the numbers the training driver draws with randomBits(key, n) % max',
  inputs: ['key'],
  attrs: { properties: { shape: SHAPE_ATTR, max: { type: 'integer', minimum: 1 } }, required: ['shape', 'max'] },
  shape: ([k], a, ctx) => {
    checkKey(k!, ctx);
    intMaxAttr(a, ctx);
    return { dtype: 'int32', shape: shapeAttr(a, ctx) };
  },
  kernel: (tf, [k], a, ctx) => tf.tensor(randomInts(readKey(k!), sizeOf(ctx.outType.shape), a.max as number), ctx.outType.shape, 'int32'),
  host: ([k], out, a) => out.data.set(randomInts(keyFromInt32(k!.data), out.data.length, a.max as number)),
  grad: noGrad,
  fusion: 'opaque',
  // The words, then one modulo per element.
  cost: (inputs, out) => {
    const c = rngCost(inputs, out);
    return { ...c, flops: c.flops + sizeOf(out.shape) };
  },
}));

defineOp(keyBatched({
  name: 'random_permutation',
  readsHost: true,
  family: 'random',
  doc: 'a uniformly random permutation of 0..n-1 as int32 [n] (`n` may be a dim like "B"), by Fisher-Yates over Threefry words: the same permutation as the training driver draws from the same key',
  inputs: ['key'],
  attrs: { properties: { n: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] } }, required: ['n'] },
  shape: ([k], a, ctx) => {
    checkKey(k!, ctx);
    return { dtype: 'int32', shape: [dimAttr(a.n!, 'n', ctx)] };
  },
  kernel: (tf, [k], _a, ctx) => tf.tensor(permutation(readKey(k!), ctx.outType.shape[0]!), ctx.outType.shape, 'int32'),
  host: ([k], out) => out.data.set(permutation(keyFromInt32(k!.data), out.shape[0]!)),
  grad: noGrad,
  fusion: 'opaque',
  // The words, then one swap (a modulo, two loads and two stores) per element.
  cost: (inputs, out) => {
    const c = rngCost(inputs, out);
    return { ...c, flops: c.flops + 5 * sizeOf(out.shape) };
  },
}));
