import { describe, expect, it } from 'vitest';
import { key, reset } from './harness.ts';
import { acrobotObs, pendulumObs } from './reference.ts';

const N = 2000;
const F = Math.fround;

/** Per state component: [low, high) of Gymnasium's initial-state distribution (null = constant 0). */
const DISTS: Record<string, { bounds: ([number, number] | null)[]; obs: (s: number[]) => number[] }> = {
  cartpole: { bounds: [[-0.05, 0.05], [-0.05, 0.05], [-0.05, 0.05], [-0.05, 0.05]], obs: (s) => s },
  acrobot: { bounds: [[-0.1, 0.1], [-0.1, 0.1], [-0.1, 0.1], [-0.1, 0.1]], obs: acrobotObs },
  pendulum: { bounds: [[-Math.PI, Math.PI], [-1, 1]], obs: pendulumObs },
  mountaincar_continuous: { bounds: [[-0.6, -0.4], null], obs: (s) => s },
};

describe('env reset graphs', () => {
  for (const [env, d] of Object.entries(DISTS)) {
    it(`${env}: states follow the initial-state distribution, t = 0, obs match the state`, () => {
      const r = reset(env, N, key(0, 2024));
      expect(r.state.length).toBe(N);
      expect(r.t).toEqual(new Array<number>(N).fill(0));
      d.bounds.forEach((b, j) => {
        const col = r.state.map((s) => s[j]!);
        if (b === null) {
          expect(col.every((v) => v === 0)).toBe(true);
          return;
        }
        const [lo, hi] = b;
        const w = hi - lo;
        expect(Math.min(...col)).toBeGreaterThanOrEqual(F(lo));
        expect(Math.max(...col)).toBeLessThanOrEqual(F(hi));
        // Uniform: 2000 draws cover the interval and centre on its midpoint (4 sigma = 0.026 w).
        expect(Math.min(...col)).toBeLessThan(lo + 0.01 * w);
        expect(Math.max(...col)).toBeGreaterThan(hi - 0.01 * w);
        const mean = col.reduce((a, b) => a + b, 0) / N;
        expect(Math.abs(mean - (lo + hi) / 2)).toBeLessThan(0.026 * w);
        const below = col.filter((v) => v < lo + w / 4).length / N;
        expect(Math.abs(below - 0.25)).toBeLessThan(0.04);
      });
      r.state.forEach((s, i) => {
        const o = d.obs(s);
        r.obs[i]!.forEach((v, j) => expect(Math.abs(v - o[j]!)).toBeLessThan(1e-6));
      });
    });

    it(`${env}: the same key gives the same states, another key other states`, () => {
      const a = reset(env, 64, key(7, 8));
      const b = reset(env, 64, key(7, 8));
      const c = reset(env, 64, key(7, 9));
      expect(b.state).toEqual(a.state);
      expect(b.obs).toEqual(a.obs);
      expect(c.state).not.toEqual(a.state);
      // Envs of one batch are independent draws, not copies.
      expect(new Set(a.state.map((s) => s[0])).size).toBe(64);
    });
  }
});
