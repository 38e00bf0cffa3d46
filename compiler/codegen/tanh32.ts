/**
 * The float32 tanh of generated code: the rational approximation XNNPACK and Eigen use, clamped
 * to +-CLAMP (where float32 tanh is +-1) and exact (x itself) below SMALL. Max error ~2e-7, a few
 * float32 ulps. Math.tanh is an fdlibm port in V8, several times slower. Both the JavaScript
 * target (in float64) and the wasm product's epilogue (in float32 SIMD) evaluate it, in this order:
 *   c = clamp(x), p = horner(c^2, P), q = horner(c^2, Q), tanh = |x| < SMALL ? x : c * p / q.
 */
export const TANH32 = {
  clamp: 7.90531110763549805,
  small: 0.0004,
  /** Numerator coefficients, highest power of c^2 first (Horner order). */
  p: [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-8, 1.48572235717979e-5, 6.37261928875436e-4, 4.89352455891786e-3],
  /** Denominator coefficients, highest power first. */
  q: [1.19825839466702e-6, 1.18534705686654e-4, 2.2684346324390e-3, 4.89352518554385e-3],
} as const;
