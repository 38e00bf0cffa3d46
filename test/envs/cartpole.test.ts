import { describe, expect, it } from 'vitest';
import { expectClose, key, nextDown32, nextUp32, r32, reset, step } from './harness.ts';
import { cartpoleStep, CP_THETA_THRESHOLD, CP_X_THRESHOLD } from './reference.ts';

const ENV = 'cartpole';

describe('CartPole-v1 step graph', () => {
  it('matches hand-computed dynamics from rest (force +10)', () => {
    // From the equations with all-zero state: temp = 100/11, thetaacc = -600/41, xacc = 400/41.
    const r = step(ENV, [[0, 0, 0, 0], [0, 0, 0, 0]], [0, 0], [1, 0]);
    expectClose(r.state[0]!, [0, 0.02 * (400 / 41), 0, 0.02 * (-600 / 41)], 1e-7, 1e-6, 'push right');
    expectClose(r.state[1]!, [0, -0.02 * (400 / 41), 0, 0.02 * (600 / 41)], 1e-7, 1e-6, 'push left');
  });

  it('matches the float64 reference on hand-picked states', () => {
    const states = [
      [0.01, -0.02, 0.03, 0.04],
      [-1.3, 0.8, -0.15, 1.2],
      [2.0, -1.5, 0.18, -2.0],
      [0.5, 2.5, -0.1, 3.0],
      [-0.04, 0.0, 0.2, -0.5],
      [1.1, -0.3, -0.19, 0.9],
    ].map(r32);
    for (const action of [0, 1]) {
      const actions = states.map(() => action);
      const t = states.map((_, i) => 10 * i);
      const r = step(ENV, states, t, actions);
      states.forEach((s, i) => {
        const ref = cartpoleStep(s, action);
        expect(ref.terminated, 'hand-picked states stay alive').toBe(false);
        expectClose(r.state[i]!, ref.state, 1e-6, 1e-5, `state ${i} action ${action}`);
        expectClose(r.obs[i]!, ref.obs, 1e-6, 1e-5, `obs ${i}`);
        expectClose(r.finalObs[i]!, ref.obs, 1e-6, 1e-5, `final_obs ${i}`);
        expect(r.reward[i]).toBe(1);
        expect(r.terminated[i]).toBe(false);
        expect(r.truncated[i]).toBe(false);
        expect(r.t[i]).toBe(t[i]! + 1);
      });
    }
  });

  it('terminates strictly beyond the cart-position and pole-angle thresholds, as Gymnasium', () => {
    // Zero velocities: the euler step leaves x and theta unchanged, so they sit exactly on the threshold.
    const X = Math.fround(CP_X_THRESHOLD);
    const TH = Math.fround(CP_THETA_THRESHOLD);
    const cases: [number[], boolean][] = [
      [[X, 0, 0, 0], false],
      [[nextUp32(X), 0, 0, 0], true],
      [[-X, 0, 0, 0], false],
      [[nextDown32(-X), 0, 0, 0], true],
      [[0, 0, TH, 0], false],
      [[0, 0, nextUp32(TH), 0], true],
      [[0, 0, -TH, 0], false],
      [[0, 0, nextDown32(-TH), 0], true],
      // Moving across the boundary during the step: x' = 2.39 + 0.02 * 1 = 2.41.
      [[2.39, 1.0, 0, 0], true],
      [[0, 0, 0.2, 1.0], true],
    ];
    const states = cases.map(([s]) => s);
    const k = key(3, 4);
    const r = step(ENV, states, states.map(() => 7), states.map(() => 1), k);
    const fresh = reset(ENV, states.length, k);
    cases.forEach(([s, term], i) => {
      const ref = cartpoleStep(r32(s), 1);
      expect(r.terminated[i], `case ${i}`).toBe(term);
      expect(r.truncated[i]).toBe(false);
      expect(r.reward[i], 'reward 1 also on the terminal step').toBe(1);
      expectClose(r.finalObs[i]!, ref.obs, 1e-6, 1e-5, `final_obs ${i}`);
      if (term) {
        // Auto-reset: the row is the reset graph's draw for the same key; t restarts.
        expect(r.state[i]).toEqual(fresh.state[i]);
        expect(r.obs[i]).toEqual(fresh.state[i]);
        expect(r.t[i]).toBe(0);
      } else {
        expectClose(r.state[i]!, ref.state, 1e-6, 1e-5, `state ${i}`);
        expect(r.t[i]).toBe(8);
      }
    });
  });

  it('truncates at 500 steps (terminated stays false) and auto-resets', () => {
    const s = r32([0.1, 0.2, 0.01, -0.1]);
    const k = key(11, 12);
    const r = step(ENV, [s, s, s], [498, 499, 0], [0, 0, 0], k);
    const fresh = reset(ENV, 3, k);
    const ref = cartpoleStep(s, 0);
    expect(r.truncated).toEqual([false, true, false]);
    expect(r.terminated).toEqual([false, false, false]);
    expect(r.t).toEqual([499, 0, 1]);
    expectClose(r.state[0]!, ref.state, 1e-6, 1e-5, 'alive');
    expect(r.state[1]).toEqual(fresh.state[1]);
    expect(r.obs[1]).toEqual(fresh.obs[1]);
    expectClose(r.finalObs[1]!, ref.obs, 1e-6, 1e-5, 'final obs before the reset');
    expect(r.reward).toEqual([1, 1, 1]);
  });

  it('runs an episode to termination under a constant push and resets to t = 0', () => {
    let state = [r32([0.02, -0.01, 0.03, 0.02])];
    let ref = state[0]!;
    let t = [0];
    for (let i = 0; i < 200; i++) {
      const r = step(ENV, state, t, [1], key(0, i));
      const e = cartpoleStep(ref, 1);
      expectClose(r.finalObs[0]!, e.obs, 1e-4, 1e-4, `step ${i}`);
      expect(r.terminated[0]).toBe(e.terminated);
      if (e.terminated) {
        expect(r.t[0]).toBe(0);
        expect(i).toBeGreaterThan(5);
        return;
      }
      state = r.state;
      ref = e.state;
      t = r.t;
    }
    throw new Error('a constant push must topple the pole within 200 steps');
  });
});
