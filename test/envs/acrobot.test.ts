import { describe, expect, it } from 'vitest';
import { expectClose, f32, key, r32, reset, rows, runGraph, step } from './harness.ts';
import { AC_MAX_VEL_1, AC_MAX_VEL_2, acrobotDsdt, acrobotObs, acrobotRk4, acrobotStep, wrap } from './reference.ts';

const ENV = 'acrobot';
const F_PI = Math.fround(Math.PI);

describe('Acrobot-v1 dynamics pieces', () => {
  it('dsdt matches the book dynamics, including a hand-computed value at rest', () => {
    const states = [
      [0, 0, 0, 0],
      [0.3, -0.7, 1.2, -2.5],
      [-2.8, 2.9, -6.0, 15.0],
      [3.1, 0.05, 0.5, 0.2],
    ].map(r32);
    const torques = [1, -1, 0, 1];
    const o = runGraph('acrobot.dsdt.graph.json', { s: f32(states.flat(), [4, 4]), a: f32(torques, [4]) });
    const ds = rows(o.ds!);
    // At rest with torque 1: d1 = 4.5, d2 = 1.75, phi = 0, so ddtheta2 = 1 / (1.25 - 1.75^2 / 4.5).
    const dd2 = 1 / (1.25 - 1.75 ** 2 / 4.5);
    expectClose(ds[0]!, [0, 0, (-1.75 * dd2) / 4.5, dd2], 1e-5, 1e-5, 'at rest');
    states.forEach((s, i) => expectClose(ds[i]!, acrobotDsdt(s, torques[i]!), 1e-4, 1e-5, `dsdt ${i}`));
  });

  it('wrap reproduces Gymnasium\'s loop, keeping both ends of [-pi, pi]', () => {
    const xs = r32([0, 1, -1, 3.0, -3.0, 3.5, -3.5, 7.0, -7.0, 20.0, -20.0, 9.5]);
    const o = runGraph('acrobot.wrap.graph.json', { x: f32(xs, [xs.length]) });
    expectClose(o.y!.values, xs.map((x) => wrap(x, -Math.PI, Math.PI)), 1e-5, 1e-6, 'wrap');
    const ends = runGraph('acrobot.wrap.graph.json', { x: f32([F_PI, -F_PI], [2]) });
    expect(ends.y!.values).toEqual([F_PI, -F_PI]);
  });
});

describe('Acrobot-v1 step graph', () => {
  it('matches one RK4 step of the float64 reference for each torque', () => {
    const states = [
      [0.05, -0.08, 0.02, 0.09],
      [0.5, 1.0, -1.0, 2.0],
      [-1.5, 0.3, 3.0, -4.0],
      [2.0, -2.5, -2.0, 5.0],
      [-0.2, 2.8, 0.7, -8.0],
    ].map(r32);
    for (const action of [0, 1, 2]) {
      const t = states.map((_, i) => i);
      const r = step(ENV, states, t, states.map(() => action));
      states.forEach((s, i) => {
        const ref = acrobotStep(s, action);
        expect(r.terminated[i]).toBe(ref.terminated);
        expect(ref.terminated, 'hand-picked states are not terminal').toBe(false);
        expectClose(r.state[i]!, ref.state, 1e-4, 1e-5, `state ${i} action ${action}`);
        expectClose(r.obs[i]!, ref.obs, 1e-4, 1e-5, `obs ${i}`);
        expectClose(r.finalObs[i]!, ref.obs, 1e-4, 1e-5, `final_obs ${i}`);
        expect(r.reward[i]).toBe(-1);
        expect(r.truncated[i]).toBe(false);
        expect(r.t[i]).toBe(i + 1);
      });
    }
  });

  it('integrates with RK4, not a lower-order scheme', () => {
    // A fast-swinging state where RK4 and a single Euler step of 0.2 s differ visibly.
    const s = r32([0.4, -0.3, 2.0, -3.0]);
    const r = step(ENV, [s], [0], [2]);
    const rk4 = acrobotRk4(s, 1);
    const d = acrobotDsdt(s, 1);
    const euler = s.map((v, i) => v + 0.2 * d[i]!);
    expectClose(r.state[0]!, [wrap(rk4[0]!, -Math.PI, Math.PI), wrap(rk4[1]!, -Math.PI, Math.PI), rk4[2]!, rk4[3]!], 1e-4, 1e-5, 'rk4');
    expect(Math.abs(r.state[0]![3]! - euler[3]!)).toBeGreaterThan(0.1);
  });

  it('wraps angles that leave [-pi, pi] during the step', () => {
    const states = [
      [3.0, 0.0, 3.0, 0.0], // theta1 crosses +pi
      [-3.0, 0.0, -3.0, 0.0], // theta1 crosses -pi
      [0.0, 3.1, 0.0, 4.0], // theta2 crosses +pi
      [0.0, -3.1, 0.0, -4.0], // theta2 crosses -pi
      [9.0, -9.0, 0.0, 0.0], // several periods away already
    ].map(r32);
    const r = step(ENV, states, [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]);
    states.forEach((s, i) => {
      const raw = acrobotRk4(s, 0);
      const ref = acrobotStep(s, 1);
      const out = r.finalObs[i]!;
      if (i < 2) expect(Math.abs(raw[0]!)).toBeGreaterThan(Math.PI);
      if (i >= 2 && i < 4) expect(Math.abs(raw[1]!)).toBeGreaterThan(Math.PI);
      expectClose(out, ref.obs, 1e-4, 1e-5, `obs ${i}`);
      if (!ref.terminated) {
        const st = r.state[i]!;
        expect(Math.abs(st[0]!)).toBeLessThanOrEqual(F_PI);
        expect(Math.abs(st[1]!)).toBeLessThanOrEqual(F_PI);
        expectClose(st, ref.state, 1e-4, 1e-5, `state ${i}`);
      }
    });
  });

  it('bounds the velocities to +-4pi and +-9pi', () => {
    const states = [
      [0.1, 0.1, 15.0, 0.0],
      [0.1, 0.1, -15.0, 0.0],
      [0.1, 0.0, 0.0, 30.0],
      [0.1, 0.0, 0.0, -30.0],
    ].map(r32);
    // The raw RK4 velocities really leave the bounds.
    expect(Math.abs(acrobotRk4(states[0]!, 0)[2]!)).toBeGreaterThan(AC_MAX_VEL_1);
    expect(Math.abs(acrobotRk4(states[1]!, 0)[2]!)).toBeGreaterThan(AC_MAX_VEL_1);
    expect(Math.abs(acrobotRk4(states[2]!, 0)[3]!)).toBeGreaterThan(AC_MAX_VEL_2);
    expect(Math.abs(acrobotRk4(states[3]!, 0)[3]!)).toBeGreaterThan(AC_MAX_VEL_2);
    const r = step(ENV, states, [0, 0, 0, 0], [1, 1, 1, 1]);
    const v1 = Math.fround(AC_MAX_VEL_1);
    const v2 = Math.fround(AC_MAX_VEL_2);
    expect(r.finalObs[0]![4]).toBe(v1);
    expect(r.finalObs[1]![4]).toBe(-v1);
    expect(r.finalObs[2]![5]).toBe(v2);
    expect(r.finalObs[3]![5]).toBe(-v2);
    states.forEach((s, i) => expectClose(r.finalObs[i]!, acrobotStep(s, 1).obs, 1e-4, 1e-5, `obs ${i}`));
  });

  it('terminates with reward 0 when the tip is above the bar, then auto-resets', () => {
    // theta1 = pi, theta2 = 0: the arm points straight up, -cos(pi) - cos(pi) = 2 > 1.
    const states = [r32([3.1, 0.0, 0.0, 0.0]), r32([0.1, 0.1, 0.0, 0.0])];
    const k = key(5, 6);
    const r = step(ENV, states, [42, 42], [1, 1], k);
    const fresh = reset(ENV, 2, k);
    const ref = acrobotStep(states[0]!, 1);
    expect(ref.terminated).toBe(true);
    expect(r.terminated).toEqual([true, false]);
    expect(r.reward).toEqual([0, -1]);
    expect(r.t).toEqual([0, 43]);
    expect(r.state[0]).toEqual(fresh.state[0]);
    expect(r.obs[0]).toEqual(fresh.obs[0]);
    expectClose(r.finalObs[0]!, ref.obs, 1e-4, 1e-5, 'final obs');
    expectClose(r.obs[0]!, acrobotObs(fresh.state[0]!), 1e-6, 1e-6, 'reset obs');
  });

  it('truncates at 500 steps with terminated false', () => {
    const s = r32([0.01, 0.02, -0.03, 0.04]);
    const k = key(1, 2);
    const r = step(ENV, [s, s], [499, 498], [0, 2], k);
    const fresh = reset(ENV, 2, k);
    expect(r.truncated).toEqual([true, false]);
    expect(r.terminated).toEqual([false, false]);
    expect(r.t).toEqual([0, 499]);
    expect(r.state[0]).toEqual(fresh.state[0]);
    expectClose(r.finalObs[0]!, acrobotStep(s, 0).obs, 1e-4, 1e-5, 'final obs');
  });
});
