import { describe, expect, it } from 'vitest';
import { expectClose, key, r32, reset, step } from './harness.ts';
import { mountainCarStep } from './reference.ts';

const ENV = 'mountaincar_continuous';
const F = Math.fround;

describe('MountainCarContinuous-v0 step graph', () => {
  it('matches the float64 reference on hand-picked states and forces', () => {
    const cases: [number[], number][] = [
      [[-0.5, 0.0], 0.0],
      [[-0.5, 0.0], 1.0],
      [[-0.9, -0.03], -0.6],
      [[0.2, 0.04], 0.3],
      [[-0.3, 0.01], -1.0],
      [[0.4, -0.02], 0.8],
    ];
    const states = cases.map(([s]) => r32(s));
    const actions = cases.map(([, a]) => [F(a)]);
    const r = step(ENV, states, states.map(() => 3), actions);
    cases.forEach((_, i) => {
      const ref = mountainCarStep(states[i]!, actions[i]![0]!);
      expect(ref.terminated).toBe(false);
      expectClose(r.state[i]!, ref.state, 1e-6, 1e-5, `state ${i}`);
      expectClose(r.obs[i]!, ref.obs, 1e-6, 1e-5, `obs ${i}`);
      expectClose([r.reward[i]!], [ref.reward], 1e-6, 1e-5, `reward ${i}`);
      expect(r.terminated[i]).toBe(false);
      expect(r.t[i]).toBe(4);
    });
    // Hand value: v' = 0.0015 - 0.0025 cos(-1.5), p' = -0.5 + v'.
    const v = 0.0015 - 0.0025 * Math.cos(-1.5);
    expectClose(r.state[1]!, [-0.5 + v, v], 1e-7, 1e-6, 'hand');
  });

  it('clips the velocity to +-0.07 and the force to [-1, 1], but penalises the raw action', () => {
    // v = 0.068 + 0.0015 + 0.0025 |cos(-3)| > 0.07; v = -0.0695 - 0.0015 - 0.0025 cos(1.5) < -0.07.
    const states = [r32([-1.0, 0.068]), r32([-1.0, 0.068]), r32([0.3, -0.0695])];
    const r = step(ENV, states, [0, 0, 0], [[1.0], [3.0], [-1.0]]);
    expectClose(r.state[0]!, [F(-1.0 + 0.07), F(0.07)], 1e-7, 1e-6, 'fast right');
    expect(r.state[0]![1]).toBe(F(0.07));
    expect(r.state[1]).toEqual(r.state[0]);
    expectClose(r.reward, [-0.1, -0.9, -0.1], 1e-6, 1e-5, 'penalty on the unclipped action');
    expect(r.state[2]![1]).toBe(F(-0.07));
    states.forEach((s, i) => expectClose(r.state[i]!, mountainCarStep(s, [1, 3, -1][i]!).state, 1e-6, 1e-5, `ref ${i}`));
  });

  it('stops the car at the left wall only when it moves left', () => {
    const states = [r32([-1.19, -0.05]), r32([-1.2, 0.0]), r32([-1.2, -0.001])];
    const r = step(ENV, states, [0, 0, 0], [[0], [1], [-1]]);
    // Into the wall: position clipped to -1.2, velocity zeroed.
    expect(r.state[0]).toEqual([F(-1.2), 0]);
    // Pushing away from the wall: v = 0.0015 - 0.0025 cos(-3.6) > 0 is kept.
    expectClose(r.state[1]!, mountainCarStep(states[1]!, 1).state, 1e-7, 1e-5, 'leaving the wall');
    expect(r.state[1]![1]).toBeGreaterThan(0);
    expect(r.state[2]).toEqual([F(-1.2), 0]);
    states.forEach((_, i) => expect(r.terminated[i]).toBe(false));
  });

  it('terminates at the goal with non-negative velocity, rewards 100 and auto-resets', () => {
    const states = [
      r32([0.44, 0.02]), // reaches 0.46 moving right
      r32([0.59, 0.05]), // hits the right wall at 0.6, velocity kept
      r32([0.6, -0.001]), // beyond the goal but moving left: alive
      r32([0.4, 0.02]), // short of the goal
    ];
    const actions = [[0.5], [0.0], [-1.0], [0.0]];
    const k = key(21, 22);
    const r = step(ENV, states, [10, 10, 10, 10], actions, k);
    const fresh = reset(ENV, 4, k);
    const refs = states.map((s, i) => mountainCarStep(s, actions[i]![0]!));
    expect(refs.map((x) => x.terminated)).toEqual([true, true, false, false]);
    expect(r.terminated).toEqual([true, true, false, false]);
    expect(r.truncated).toEqual([false, false, false, false]);
    expectClose(r.reward, refs.map((x) => x.reward), 1e-5, 1e-6, 'reward');
    expectClose([r.reward[0]!], [100 - 0.1 * 0.25], 1e-5, 0, 'goal bonus');
    expect(r.t).toEqual([0, 0, 11, 11]);
    expect(r.finalObs[1]![0]).toBe(F(0.6));
    refs.forEach((ref, i) => expectClose(r.finalObs[i]!, ref.obs, 1e-6, 1e-5, `final obs ${i}`));
    for (const i of [0, 1]) {
      expect(r.state[i]).toEqual(fresh.state[i]);
      expect(r.obs[i]).toEqual(fresh.state[i]);
    }
    expectClose(r.state[2]!, refs[2]!.state, 1e-6, 1e-5, 'alive');
  });

  it('truncates at 999 steps', () => {
    const s = r32([-0.5, 0.0]);
    const k = key(0, 99);
    const r = step(ENV, [s, s], [998, 997], [[0], [0]], k);
    const fresh = reset(ENV, 2, k);
    expect(r.truncated).toEqual([true, false]);
    expect(r.terminated).toEqual([false, false]);
    expect(r.t).toEqual([0, 998]);
    expect(r.state[0]).toEqual(fresh.state[0]);
    expectClose(r.finalObs[0]!, mountainCarStep(s, 0).obs, 1e-6, 1e-5, 'final obs');
  });
});
