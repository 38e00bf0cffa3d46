import { describe, expect, it } from 'vitest';
import { expectClose, key, r32, reset, step } from './harness.ts';
import { angleNormalize, pendulumObs, pendulumStep } from './reference.ts';

const ENV = 'pendulum';

describe('Pendulum-v1 step graph', () => {
  it('matches the float64 reference on hand-picked states and torques', () => {
    const cases: [number[], number][] = [
      [[0.0, 0.0], 0.0],
      [[0.5, -0.3], 1.0],
      [[-2.5, 4.0], -1.5],
      [[3.0, -7.0], 2.0],
      [[1.2, 0.9], -0.4],
      [[-0.1, 6.5], 0.7],
    ];
    const states = cases.map(([s]) => r32(s));
    const actions = cases.map(([, a]) => [Math.fround(a)]);
    const r = step(ENV, states, states.map((_, i) => i), actions);
    cases.forEach((_, i) => {
      const ref = pendulumStep(states[i]!, actions[i]![0]!);
      expectClose(r.state[i]!, ref.state, 1e-5, 1e-5, `state ${i}`);
      expectClose(r.obs[i]!, ref.obs, 1e-5, 1e-5, `obs ${i}`);
      expectClose([r.reward[i]!], [ref.reward], 1e-5, 1e-5, `reward ${i}`);
      expect(r.terminated[i]).toBe(false);
      expect(r.truncated[i]).toBe(false);
      expect(r.t[i]).toBe(i + 1);
    });
    // Upright and still, no torque: no cost, and gravity has nothing to act on.
    expect(Math.abs(r.reward[0]!)).toBe(0);
    expect(r.state[0]).toEqual([0, 0]);
  });

  it('normalises the angle in the cost to [-pi, pi)', () => {
    // th and th + 2k pi cost the same; th = pi + 0.5 costs like -(pi - 0.5).
    const ths = [0.7, 0.7 + 2 * Math.PI, 0.7 - 4 * Math.PI, Math.PI + 0.5, -Math.PI - 0.5, 10.0, -10.0].map(Math.fround);
    const r = step(ENV, ths.map((th) => [th, 0]), ths.map(() => 0), ths.map(() => [0]));
    ths.forEach((th, i) => expectClose([r.reward[i]!], [-(angleNormalize(th) ** 2)], 1e-5, 1e-5, `reward ${i}`));
    expectClose([r.reward[3]!], [-((Math.PI - 0.5) ** 2)], 1e-5, 1e-5, 'pi + 0.5');
    expectClose([r.reward[1]!], [r.reward[0]!], 1e-5, 0, 'periodic');
    // The state keeps the unwrapped angle, as Gymnasium does.
    expect(r.state[5]![0]).toBeGreaterThan(9.9);
  });

  it('clips the torque to [-2, 2] in both the dynamics and the cost', () => {
    const s = r32([0.3, -0.2]);
    const r = step(ENV, [s, s, s, s], [0, 0, 0, 0], [[5.0], [2.0], [-3.0], [-2.0]]);
    expect(r.state[0]).toEqual(r.state[1]);
    expect(r.reward[0]).toBe(r.reward[1]);
    expect(r.state[2]).toEqual(r.state[3]);
    expect(r.reward[2]).toBe(r.reward[3]);
    expectClose([r.reward[0]!], [-(angleNormalize(s[0]!) ** 2 + 0.1 * s[1]! ** 2 + 0.001 * 4)], 1e-6, 1e-5, 'cost with u = 2');
    expectClose(r.state[0]!, pendulumStep(s, 5.0).state, 1e-5, 1e-5, 'reference clips too');
  });

  it('clips the angular velocity to +-8 before integrating the angle', () => {
    // thdot' = 7.9 + (15 sin(pi/2) + 3 * 2) * 0.05 = 8.95 -> 8; th' = th + 8 * 0.05.
    const th = Math.fround(Math.PI / 2);
    const r = step(ENV, [[th, 7.9], [-th, -7.9]], [0, 0], [[2], [-2]]);
    expectClose(r.state[0]!, [th + 0.4, 8], 1e-6, 1e-6, 'positive');
    expectClose(r.state[1]!, [-th - 0.4, -8], 1e-6, 1e-6, 'negative');
  });

  it('never terminates; truncates at 200 steps and auto-resets', () => {
    const s = r32([3.1, 8.0]);
    const k = key(9, 9);
    const r = step(ENV, [s, s], [199, 198], [[0], [0]], k);
    const fresh = reset(ENV, 2, k);
    expect(r.terminated).toEqual([false, false]);
    expect(r.truncated).toEqual([true, false]);
    expect(r.t).toEqual([0, 199]);
    expect(r.state[0]).toEqual(fresh.state[0]);
    expect(r.obs[0]).toEqual(fresh.obs[0]);
    expectClose(r.obs[0]!, pendulumObs(fresh.state[0]!), 1e-6, 1e-6, 'reset obs');
    expectClose(r.finalObs[0]!, pendulumStep(s, 0).obs, 1e-5, 1e-5, 'final obs');
    expectClose(r.state[1]!, pendulumStep(s, 0).state, 1e-5, 1e-5, 'alive');
  });
});
