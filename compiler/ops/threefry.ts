/**
 * Threefry-2x32 (20 rounds), the counter-based generator JAX uses, in plain JS with 32-bit
 * unsigned arithmetic. Keys, splits, fold-ins and bit streams follow JAX's classic layout
 * (jax_threefry_partitionable=False), so a seed yields the same numbers on every backend and
 * can be checked against JAX.
 */

/** A key: two uint32 words. */
export type Key = readonly [number, number];

const ROT_A = [13, 15, 26, 6] as const;
const ROT_B = [17, 29, 16, 24] as const;
/** Skein's key-schedule parity constant. */
const PARITY = 0x1bd11bda;

/** One block: encrypts the counter pair (x0, x1) under key (k0, k1). All values uint32. */
export function threefry2x32(k0: number, k1: number, x0: number, x1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ PARITY) >>> 0];
  let a = (x0 + ks[0]!) >>> 0;
  let b = (x1 + ks[1]!) >>> 0;
  // 5 groups of 4 rounds, with a key injection after each group.
  for (let g = 0; g < 5; g++) {
    const rot = g % 2 === 0 ? ROT_A : ROT_B;
    for (let r = 0; r < 4; r++) {
      a = (a + b) >>> 0;
      const s = rot[r]!;
      b = ((b << s) | (b >>> (32 - s))) >>> 0;
      b = (b ^ a) >>> 0;
    }
    const i = g + 1;
    a = (a + ks[i % 3]!) >>> 0;
    b = (b + ks[(i + 1) % 3]! + i) >>> 0;
  }
  return [a, b];
}

/**
 * JAX's `threefry_2x32(key, counts)`: the counts are split into halves that form the two
 * words of each block (padded with one 0 when odd), and the outputs are concatenated.
 */
export function threefryCounts(key: Key, counts: Uint32Array): Uint32Array {
  const n = counts.length;
  const half = Math.ceil(n / 2);
  const out = new Uint32Array(2 * half);
  for (let i = 0; i < half; i++) {
    const x1 = i + half < n ? counts[i + half]! : 0;
    const [y0, y1] = threefry2x32(key[0], key[1], counts[i]!, x1);
    out[i] = y0;
    out[i + half] = y1;
  }
  return n % 2 === 1 ? out.subarray(0, n) : out;
}

function iota(n: number): Uint32Array {
  const c = new Uint32Array(n);
  for (let i = 0; i < n; i++) c[i] = i;
  return c;
}

/** `n` random uint32 words from a key (jax.random.bits for 32-bit output). */
export function randomBits(key: Key, n: number): Uint32Array {
  if (n === 0) return new Uint32Array(0);
  return threefryCounts(key, iota(n));
}

/**
 * `n` integers in [0, max): jax.random.bits(key, n) word by word modulo `max` (1 <= max <= 2^31).
 * The modulo bias is below max / 2^32. The training driver picks a group's executed branch this way.
 */
export function randomInts(key: Key, n: number, max: number): Int32Array {
  const bits = randomBits(key, n);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = bits[i]! % max;
  return out;
}

/** jax.random.PRNGKey(seed): the seed's high and low 32-bit words (two's complement for negatives). */
export function seedKey(seed: number): [number, number] {
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  const lo = seed >>> 0;
  return [hi, lo];
}

/** jax.random.split: `num` child keys, flattened as [k0_0, k0_1, k1_0, k1_1, ...]. */
export function splitKey(key: Key, num: number): Uint32Array {
  return threefryCounts(key, iota(2 * num));
}

/** jax.random.fold_in: mixes a 32-bit integer into a key. */
export function foldIn(key: Key, data: number): [number, number] {
  return threefry2x32(key[0], key[1], 0, data >>> 0);
}

/**
 * A permutation of 0..n-1 by Fisher-Yates over jax.random.bits(key, n): position i (from n-1
 * down to 1) swaps with j = word_i mod (i + 1). The modulo bias is below n / 2^32.
 */
export function permutation(key: Key, n: number): Int32Array {
  const bits = randomBits(key, n);
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = bits[i]! % (i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** Uniform floats in [0, 1) with 24 random bits (the top bits of each word): exact in float32. */
export function uniform24(bits: Uint32Array): Float64Array {
  const out = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = (bits[i]! >>> 8) * 2 ** -24;
  return out;
}

/** Uniform doubles in (0, 1) using all 32 bits (never exactly 0 or 1). */
export function uniformOpen(bits: Uint32Array): Float64Array {
  const out = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = (bits[i]! + 0.5) * 2 ** -32;
  return out;
}

/** Key words from an int32 tensor's data (bits reinterpreted as uint32). */
export function keyFromInt32(data: ArrayLike<number>): Key {
  return [data[0]! >>> 0, data[1]! >>> 0];
}

/** uint32 words as int32 values (same bits), for storing in an int32 tensor. */
export function toInt32(words: ArrayLike<number>): Int32Array {
  const out = new Int32Array(words.length);
  for (let i = 0; i < words.length; i++) out[i] = words[i]! | 0;
  return out;
}
