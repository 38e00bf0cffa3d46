/**
 * Gymnasium's HalfCheetah-v4 and Hopper-v4 on MuJoCo's official WebAssembly module (mujoco-js),
 * as host envs: the vendored models (graphs/envs/mujoco/*.xml), frame skip, reset noise,
 * observations, rewards, healthy ranges and the 1000-step TimeLimit of
 * gymnasium/envs/mujoco/{half_cheetah,hopper}_v4.py.
 *
 * Differences from Gymnasium, on purpose:
 * - actions are clipped to the action space before they reach the simulator and the control
 *   cost, as CleanRL's ClipAction wrapper does;
 * - the reset noise has Gymnasium's distributions but comes from a threefry key per env (env i
 *   seeded with seed + i), not numpy's generator, so the draws differ;
 * - mj_rnePostConstraint is not called after a step: it only fills force quantities (cacc,
 *   cfrc_*) that neither env observes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MainModule, MjData, MjModel } from 'mujoco-js';
import { LoomError } from '../../compiler/errors.ts';
import { packagePath } from '../../compiler/package-root.ts';
import { randomBits, seedKey, splitKey, type Key } from '../../compiler/ops/threefry.ts';
import type { HostEnv, HostEnvDefinition, HostStep, JsonValue } from './host-env.ts';

/** One MuJoCo task: its model file and Gymnasium's definitions on top of the simulator. */
export interface MujocoTask {
  id: string;
  xml: string;
  frameSkip: number;
  obsDim: number;
  actDim: number;
  maxSteps: number;
  /** The observation of a state, written into `out`. */
  observe(qpos: Float64Array, qvel: Float64Array, out: Float32Array): void;
  /** Reward of a step from the x position before and after it and the (clipped) action. */
  reward(xBefore: number, xAfter: number, dt: number, action: Float64Array, qpos: Float64Array, qvel: Float64Array): number;
  terminated(qpos: Float64Array, qvel: Float64Array): boolean;
  /** Reset noise: qpos0 + noise, qvel0 + noise, from uniform (u) and standard normal (z) draws. */
  noise: { qpos: 'uniform'; qvel: 'uniform' | 'normal'; scale: number };
}

export const HALF_CHEETAH: MujocoTask = {
  id: 'HalfCheetah-v4',
  xml: 'half_cheetah.xml',
  frameSkip: 5,
  obsDim: 17,
  actDim: 6,
  maxSteps: 1000,
  observe(qpos, qvel, out) {
    // qpos without rootx (8), then qvel (9).
    for (let k = 1; k < qpos.length; k++) out[k - 1] = qpos[k]!;
    for (let k = 0; k < qvel.length; k++) out[qpos.length - 1 + k] = qvel[k]!;
  },
  reward(xBefore, xAfter, dt, action) {
    return (xAfter - xBefore) / dt - 0.1 * sumSquares(action);
  },
  terminated: () => false,
  noise: { qpos: 'uniform', qvel: 'normal', scale: 0.1 },
};

/** Hopper-v4's healthy ranges (all open intervals, as Gymnasium's comparisons). */
export const HOPPER_HEALTHY = { state: [-100, 100], z: [0.7, Infinity], angle: [-0.2, 0.2] } as const;

export const HOPPER: MujocoTask = {
  id: 'Hopper-v4',
  xml: 'hopper.xml',
  frameSkip: 4,
  obsDim: 11,
  actDim: 3,
  maxSteps: 1000,
  observe(qpos, qvel, out) {
    // qpos without rootx (5), then qvel clipped to [-10, 10] (6).
    for (let k = 1; k < qpos.length; k++) out[k - 1] = qpos[k]!;
    for (let k = 0; k < qvel.length; k++) out[qpos.length - 1 + k] = Math.max(-10, Math.min(10, qvel[k]!));
  },
  reward(xBefore, xAfter, dt, action) {
    // healthy_reward is 1 on every step: terminate_when_unhealthy is on.
    return (xAfter - xBefore) / dt + 1 - 1e-3 * sumSquares(action);
  },
  terminated(qpos, qvel) {
    const h = HOPPER_HEALTHY;
    const inside = (v: number, [lo, hi]: readonly [number, number]) => lo < v && v < hi;
    // state_vector()[2:]: qpos[2:] and all of qvel (unclipped).
    for (let k = 2; k < qpos.length; k++) if (!inside(qpos[k]!, h.state)) return true;
    for (let k = 0; k < qvel.length; k++) if (!inside(qvel[k]!, h.state)) return true;
    return !inside(qpos[1]!, h.z) || !inside(qpos[2]!, h.angle);
  },
  noise: { qpos: 'uniform', qvel: 'uniform', scale: 5e-3 },
};

function sumSquares(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
  return s;
}

let module: MainModule | null = null;
const models = new Map<string, MjModel>();

/** Loads MuJoCo's wasm module once per process. */
export async function loadMujoco(): Promise<MainModule> {
  if (!module) {
    const factory = (await import('mujoco-js')).default;
    module = await factory();
    module.FS.mkdir('/loom');
  }
  return module;
}

function mujoco(id: string): MainModule {
  if (module) return module;
  throw new LoomError({ code: 'E_USAGE', message: `host env ${id} needs the MuJoCo module loaded first`, hint: `await loadHostEnv('${id}') before creating it (train and loom eval do)` });
}

function modelOf(mj: MainModule, task: MujocoTask): MjModel {
  let m = models.get(task.xml);
  if (!m) {
    mj.FS.writeFile(`/loom/${task.xml}`, readFileSync(join(packagePath('graphs'), 'envs', 'mujoco', task.xml), 'utf8'));
    m = mj.MjModel.loadFromXML(`/loom/${task.xml}`);
    models.set(task.xml, m);
  }
  return m;
}

/** Uniform [0, 1) doubles from a key: 53 bits from two words each. */
function uniforms(key: Key, n: number): Float64Array {
  const bits = randomBits(key, 2 * n);
  return Float64Array.from({ length: n }, (_, i) => ((bits[2 * i]! >>> 5) * 67108864 + (bits[2 * i + 1]! >>> 6)) / 9007199254740992);
}

/** The envs of one task; every env has its own MjData, threefry key and step counter. */
export class MujocoVecEnv implements HostEnv {
  private readonly mj: MainModule;
  private readonly model: MjModel;
  private readonly data: MjData[];
  private readonly keys: Key[];
  private readonly elapsed: Int32Array;
  private readonly qpos0: Float64Array;
  private readonly qvel0: Float64Array;
  private readonly dt: number;
  private readonly action: Float64Array;

  constructor(
    readonly task: MujocoTask,
    readonly numEnvs: number,
  ) {
    this.mj = mujoco(task.id);
    this.model = modelOf(this.mj, task);
    this.data = Array.from({ length: numEnvs }, () => new this.mj.MjData(this.model));
    this.keys = Array.from({ length: numEnvs }, () => [0, 0] as Key);
    this.elapsed = new Int32Array(numEnvs);
    this.qpos0 = Float64Array.from(this.data[0]!.qpos as Float64Array);
    this.qvel0 = Float64Array.from(this.data[0]!.qvel as Float64Array);
    this.dt = this.model.opt.timestep * task.frameSkip;
    this.action = new Float64Array(task.actDim);
  }

  reset(seed: number): Float32Array {
    const obs = new Float32Array(this.numEnvs * this.task.obsDim);
    for (let i = 0; i < this.numEnvs; i++) {
      this.keys[i] = seedKey(seed + i);
      this.resetOne(i);
      this.observe(i, obs);
    }
    return obs;
  }

  /** Gymnasium's reset_model: qpos0 and qvel0 plus noise, then mj_forward. */
  private resetOne(i: number): void {
    const w = splitKey(this.keys[i]!, 2);
    this.keys[i] = [w[0]!, w[1]!];
    const sub: Key = [w[2]!, w[3]!];
    const d = this.data[i]!;
    this.mj.mj_resetData(this.model, d);
    const { nq, nv } = this.model;
    const { scale, qvel: velNoise } = this.task.noise;
    const u = uniforms(sub, nq + 2 * nv);
    const qpos = d.qpos as Float64Array;
    for (let k = 0; k < nq; k++) qpos[k] = this.qpos0[k]! + scale * (2 * u[k]! - 1);
    const qvel = d.qvel as Float64Array;
    for (let k = 0; k < nv; k++) {
      const a = u[nq + 2 * k]!;
      const b = u[nq + 2 * k + 1]!;
      // Box-Muller on (0, 1]: 1 - a never reaches 0.
      const z = velNoise === 'normal' ? Math.sqrt(-2 * Math.log(1 - a)) * Math.cos(2 * Math.PI * b) : 2 * a - 1;
      qvel[k] = this.qvel0[k]! + scale * z;
    }
    this.mj.mj_forward(this.model, d);
    this.elapsed[i] = 0;
  }

  private observe(i: number, out: Float32Array): void {
    const d = this.data[i]!;
    const o = this.task.obsDim;
    this.task.observe(d.qpos as Float64Array, d.qvel as Float64Array, out.subarray(i * o, (i + 1) * o));
  }

  step(actions: Float32Array | Int32Array): HostStep {
    const { numEnvs: N, task } = this;
    const A = task.actDim;
    if (actions.length !== N * A) throw new LoomError({ code: 'E_INPUT', message: `${task.id}: step got ${actions.length} action values`, expected: `${N} envs x ${A}`, found: String(actions.length) });
    const out: HostStep = {
      obs: new Float32Array(N * task.obsDim),
      reward: new Float64Array(N),
      terminated: new Uint8Array(N),
      truncated: new Uint8Array(N),
      final_obs: new Float32Array(N * task.obsDim),
    };
    for (let i = 0; i < N; i++) {
      const d = this.data[i]!;
      for (let k = 0; k < A; k++) this.action[k] = Math.max(-1, Math.min(1, actions[i * A + k]!));
      const xBefore = (d.qpos as Float64Array)[0]!;
      (d.ctrl as Float64Array).set(this.action);
      for (let f = 0; f < task.frameSkip; f++) this.mj.mj_step(this.model, d);
      const qpos = d.qpos as Float64Array;
      const qvel = d.qvel as Float64Array;
      out.reward[i] = task.reward(xBefore, qpos[0]!, this.dt, this.action, qpos, qvel);
      const term = task.terminated(qpos, qvel);
      this.elapsed[i]! += 1;
      const trunc = this.elapsed[i]! >= task.maxSteps;
      out.terminated[i] = term ? 1 : 0;
      out.truncated[i] = trunc ? 1 : 0;
      this.observe(i, out.final_obs);
      if (term || trunc) this.resetOne(i);
      this.observe(i, out.obs);
    }
    return out;
  }

  /** Per env: the integration state MuJoCo steps from (time, qpos, qvel, warm start), the key and the step count. */
  getState(): JsonValue {
    return this.data.map((d, i) => ({
      time: d.time,
      qpos: Array.from(d.qpos as Float64Array),
      qvel: Array.from(d.qvel as Float64Array),
      warmstart: Array.from(d.qacc_warmstart as Float64Array),
      key: [...this.keys[i]!],
      elapsed: this.elapsed[i]!,
    }));
  }

  setState(state: JsonValue): void {
    const rows = state as { time: number; qpos: number[]; qvel: number[]; warmstart: number[]; key: [number, number]; elapsed: number }[];
    const { nq, nv } = this.model;
    const ok = Array.isArray(rows) && rows.length === this.numEnvs && rows.every((r) => r && typeof r.time === 'number' && r.qpos?.length === nq && r.qvel?.length === nv && r.warmstart?.length === nv && r.key?.length === 2 && Number.isInteger(r.elapsed));
    if (!ok) throw new LoomError({ code: 'E_INPUT', message: `${this.task.id}: the saved env state does not fit ${this.numEnvs} envs of this model`, expected: `${this.numEnvs} rows of time, qpos[${nq}], qvel[${nv}], warmstart[${nv}], key, elapsed` });
    rows.forEach((r, i) => {
      const d = this.data[i]!;
      d.time = r.time;
      (d.qpos as Float64Array).set(r.qpos);
      (d.qvel as Float64Array).set(r.qvel);
      (d.qacc_warmstart as Float64Array).set(r.warmstart);
      this.keys[i] = [r.key[0] >>> 0, r.key[1] >>> 0];
      this.elapsed[i] = r.elapsed;
    });
  }

  close(): void {
    for (const d of this.data) d.delete();
    this.data.length = 0;
  }
}

function definition(task: MujocoTask, doc: string): HostEnvDefinition {
  return {
    observationShape: [task.obsDim],
    action: { kind: 'box', low: new Array<number>(task.actDim).fill(-1), high: new Array<number>(task.actDim).fill(1) },
    create: ({ numEnvs }) => new MujocoVecEnv(task, numEnvs),
    load: async () => {
      await loadMujoco();
    },
    doc,
  };
}

/** The built-in MuJoCo host envs by their Gymnasium ids. */
export const MUJOCO_ENVS: Readonly<Record<string, HostEnvDefinition>> = {
  'HalfCheetah-v4': definition(HALF_CHEETAH, 'HalfCheetah-v4 (MuJoCo): obs 17, action Box(-1, 1, (6,)), 1000 steps'),
  'Hopper-v4': definition(HOPPER, 'Hopper-v4 (MuJoCo): obs 11, action Box(-1, 1, (3,)), terminates when unhealthy, 1000 steps'),
};
