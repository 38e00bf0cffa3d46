/**
 * Parameter initialisers, computed on the host from the counter-based RNG so that a seed gives
 * the same initial parameters on every backend. Each param draws from its own key, derived
 * from the seed and its name, so adding a param does not change the others.
 */
import { foldIn, randomBits, seedKey, uniform24, type Key } from '../compiler/ops/threefry.ts';
import { LoomError } from '../compiler/errors.ts';
import type { IRParam } from '../compiler/ir.ts';

/** FNV-1a, to turn a param name into a 31-bit fold-in value. */
function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h >>> 0) & 0x7fffffff;
}

export function paramKey(seed: number, name: string): Key {
  return foldIn(seedKey(seed), nameHash(name));
}

function uniforms(key: Key, n: number): Float64Array {
  return uniform24(randomBits(key, n));
}

/** Standard normals by Box-Muller over (0, 1] uniforms. */
export function normals(key: Key, n: number): Float64Array {
  const m = n + (n % 2);
  const u = uniforms(key, m);
  const out = new Float64Array(n);
  for (let i = 0; i < m; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u[i]!));
    const th = 2 * Math.PI * u[i + 1]!;
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}

/**
 * Orthogonal matrix [rows, cols] (rows = product of all but the last dim), as
 * torch.nn.init.orthogonal_: QR of a Gaussian matrix with the signs fixed by diag(R),
 * computed here by modified Gram-Schmidt in float64 (which yields exactly that sign convention).
 */
function orthogonal(key: Key, shape: number[], gain: number): Float64Array {
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1]!;
  const rows = shape.length === 0 ? 1 : shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const tall = rows >= cols;
  const m = tall ? rows : cols; // long side
  const k = tall ? cols : rows; // short side: number of orthonormal vectors
  const a = normals(key, m * k); // k vectors of length m
  for (let j = 0; j < k; j++) {
    const vj = a.subarray(j * m, (j + 1) * m);
    for (let i = 0; i < j; i++) {
      const vi = a.subarray(i * m, (i + 1) * m);
      let dot = 0;
      for (let t = 0; t < m; t++) dot += vi[t]! * vj[t]!;
      for (let t = 0; t < m; t++) vj[t] -= dot * vi[t]!;
    }
    let norm = 0;
    for (let t = 0; t < m; t++) norm += vj[t]! * vj[t]!;
    norm = Math.sqrt(norm) || 1;
    for (let t = 0; t < m; t++) vj[t] /= norm;
  }
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[r * cols + c] = gain * (tall ? a[c * m + r]! : a[r * m + c]!);
  return out;
}

/** Initial values of one param, row-major. */
export function initialValues(p: IRParam, seed: number): Float32Array {
  const shape = p.type.shape as number[];
  const n = shape.reduce((a, b) => a * b, 1);
  const key = paramKey(seed, p.name);
  const args = p.init.args;
  const fanIn = shape.length >= 2 ? shape.slice(0, -1).reduce((a, b) => a * b, 1) : (shape[0] ?? 1);
  const fanOut = shape.length >= 1 ? shape[shape.length - 1]! : 1;
  switch (p.init.kind) {
    case 'zeros':
      return new Float32Array(n);
    case 'ones':
      return new Float32Array(n).fill(1);
    case 'constant':
      return new Float32Array(n).fill(args.value ?? 0);
    case 'normal': {
      const z = normals(key, n);
      return Float32Array.from(z, (v) => (args.mean ?? 0) + (args.std ?? 1) * v);
    }
    case 'uniform': {
      const lo = args.min ?? -1;
      const hi = args.max ?? 1;
      return Float32Array.from(uniforms(key, n), (u) => lo + (hi - lo) * u);
    }
    case 'glorot_uniform': {
      const limit = (args.gain ?? 1) * Math.sqrt(6 / (fanIn + fanOut));
      return Float32Array.from(uniforms(key, n), (u) => -limit + 2 * limit * u);
    }
    case 'orthogonal':
      return Float32Array.from(orthogonal(key, shape, args.gain ?? 1));
    default:
      throw new LoomError({ code: 'E_SCHEMA', message: `unknown initializer "${p.init.kind}"`, file: p.source?.file, pointer: p.source?.pointer });
  }
}
