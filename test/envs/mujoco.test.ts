/**
 * HalfCheetah-v4 and Hopper-v4 on MuJoCo's wasm module, checked against Gymnasium's definitions
 * computed here by hand from the simulator state before and after a step (read through getState).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { HALF_CHEETAH, HOPPER, loadMujoco, MujocoVecEnv, type MujocoTask } from '../../runtime/host-env/mujoco.ts';

interface Row {
  time: number;
  qpos: number[];
  qvel: number[];
  warmstart: number[];
  key: [number, number];
  elapsed: number;
}
const rows = (env: MujocoVecEnv) => env.getState() as unknown as Row[];
const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));

beforeAll(async () => {
  await loadMujoco();
});

describe.each([
  ['HalfCheetah-v4', HALF_CHEETAH, 17, 6, 9, 0.05],
  ['Hopper-v4', HOPPER, 11, 3, 6, 0.008],
] as [string, MujocoTask, number, number, number, number][])('%s', (id, task, obsDim, actDim, nq, dt) => {
  it(`${id}: observation is qpos[1:] then qvel (${obsDim} values)`, () => {
    const env = new MujocoVecEnv(task, 2);
    const obs = env.reset(5);
    expect(obs.length).toBe(2 * obsDim);
    rows(env).forEach((r, i) => {
      expect(r.qpos.length).toBe(nq);
      const vel = id === 'Hopper-v4' ? r.qvel.map((v) => Math.max(-10, Math.min(10, v))) : r.qvel;
      expect(Array.from(obs.subarray(i * obsDim, (i + 1) * obsDim))).toEqual(f32([...r.qpos.slice(1), ...vel]));
    });
    env.close();
  });

  it(`${id}: reset noise stays within Gymnasium's scale around the model's initial pose`, () => {
    const env = new MujocoVecEnv(task, 16);
    env.reset(1);
    const qpos0 = id === 'Hopper-v4' ? [0, 1.25, 0, 0, 0, 0] : new Array<number>(nq).fill(0);
    const scale = task.noise.scale;
    let spread = 0;
    for (const r of rows(env)) {
      r.qpos.forEach((q, k) => {
        expect(Math.abs(q - qpos0[k]!)).toBeLessThanOrEqual(scale);
        spread = Math.max(spread, Math.abs(q - qpos0[k]!));
      });
      if (task.noise.qvel === 'uniform') for (const v of r.qvel) expect(Math.abs(v)).toBeLessThanOrEqual(scale);
    }
    // Noise there is: 16 x nq uniform draws all below half the scale would be a broken generator.
    expect(spread).toBeGreaterThan(scale / 2);
    env.close();
  });

  it(`${id}: reward is forward velocity${id === 'Hopper-v4' ? ' + 1 (healthy)' : ''} - ctrl cost of the clipped action`, () => {
    const env = new MujocoVecEnv(task, 1);
    env.reset(3);
    // Out-of-range values are clipped to [-1, 1] before the simulator and the cost, as CleanRL's ClipAction.
    const action = Float32Array.from({ length: actDim }, (_, k) => [0.5, -2, 0.25, 3, -0.75, 1][k]!);
    const clipped = Array.from(action, (a) => Math.max(-1, Math.min(1, a)));
    for (let s = 0; s < 5; s++) {
      const x0 = rows(env)[0]!.qpos[0]!;
      const r = env.step(action);
      const x1 = rows(env)[0]!.qpos[0]!;
      if (r.terminated[0]) break; // the state read after a reset is the new episode's
      const ctrl = (id === 'Hopper-v4' ? 1e-3 : 0.1) * clipped.reduce((a, b) => a + b * b, 0);
      const expected = (x1 - x0) / dt + (id === 'Hopper-v4' ? 1 : 0) - ctrl;
      expect(r.reward[0]).toBeCloseTo(expected, 10);
      expect(x1).not.toBe(x0);
    }
    env.close();
  });

  it(`${id}: the same seed gives the same episodes, another seed others`, () => {
    const run = (seed: number) => {
      const env = new MujocoVecEnv(task, 2);
      const out = [Array.from(env.reset(seed))];
      for (let s = 0; s < 20; s++) {
        const r = env.step(Float32Array.from({ length: 2 * actDim }, (_, k) => Math.sin(s + k)));
        out.push(Array.from(r.obs), Array.from(r.reward));
      }
      env.close();
      return out;
    };
    const first = run(7);
    expect(run(7)).toEqual(first);
    expect(run(8)[0]).not.toEqual(first[0]);
    // Env i draws from seed + i, as gymnasium's vector envs: the two envs start apart.
    expect(first[0]!.slice(0, obsDim)).not.toEqual(first[0]!.slice(obsDim));
  });

  it(`${id}: getState/setState resumes the same trajectory, and the time limit truncates at 1000`, () => {
    const a = new MujocoVecEnv(task, 1);
    a.reset(2);
    const act = (s: number) => Float32Array.from({ length: actDim }, (_, k) => 0.3 * Math.cos(s * 3 + k));
    // Far enough into the episode that the feet touch the floor, where the solver's warm start matters.
    for (let s = 0; s < 40; s++) a.step(act(s));
    const saved = a.getState();
    const b = new MujocoVecEnv(task, 1);
    b.reset(99);
    b.step(act(1));
    b.setState(saved);
    for (let s = 40; s < 60; s++) expect(Array.from(b.step(act(s)).obs)).toEqual(Array.from(a.step(act(s)).obs));
    const r = rows(b)[0]!;
    b.setState([{ ...r, elapsed: 999 }]);
    const last = b.step(act(0));
    expect([last.truncated[0], rows(b)[0]!.elapsed]).toEqual([1, 0]);
    a.close();
    b.close();
  });
});

describe('Hopper-v4 termination', () => {
  const step = (qposEdit: (q: number[]) => void, qvelEdit: (v: number[]) => void = () => {}) => {
    const env = new MujocoVecEnv(HOPPER, 1);
    env.reset(4);
    const r = rows(env)[0]!;
    const qpos = [...r.qpos];
    const qvel = [...r.qvel];
    qposEdit(qpos);
    qvelEdit(qvel);
    env.setState([{ ...r, qpos, qvel }]);
    const out = env.step(new Float32Array(3));
    env.close();
    return out;
  };

  it('a healthy hopper keeps going', () => {
    expect(step(() => {}).terminated[0]).toBe(0);
  });

  it('terminates when the torso falls below z 0.7, with final_obs the fallen state and obs a new episode', () => {
    const out = step((q) => (q[1] = 0.6));
    expect(out.terminated[0]).toBe(1);
    expect(out.truncated[0]).toBe(0);
    expect(out.final_obs[0]).toBeLessThan(0.7);
    expect(Math.abs(out.obs[0]! - 1.25)).toBeLessThanOrEqual(5e-3);
  });

  it('terminates when the torso tilts beyond 0.2 rad', () => {
    expect(step((q) => (q[2] = 0.3)).terminated[0]).toBe(1);
    expect(step((q) => (q[2] = -0.3)).terminated[0]).toBe(1);
  });

  it('terminates when a velocity leaves (-100, 100), though the observation clips it at 10', () => {
    const out = step(
      () => {},
      (v) => (v[5] = 500),
    );
    expect(out.terminated[0]).toBe(1);
    expect(out.final_obs[10]).toBe(10);
  });
});
