/** Seeded uniform floats in [lo, hi) (mulberry32), as plain numbers: test inputs that do not depend on tfjs. */
export function uniform(n: number, lo: number, hi: number, seed: number): number[] {
  let st = seed >>> 0;
  return Array.from({ length: n }, () => {
    st = (st + 0x6d2b79f5) >>> 0;
    let t = st;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (((t ^ (t >>> 14)) >>> 0) / 4294967296) * (hi - lo);
  });
}
