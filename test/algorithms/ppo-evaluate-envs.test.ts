/**
 * The evaluate graphs of the PPO programs on Acrobot-v1, Pendulum-v1 and MountainCarContinuous-v0
 * (graphs/programs/ppo-<env>/evaluate.graph.json, written by tools/ppo-programs.ts and named by the
 * AM-PPO and AlphaGrad programs on the same env too), against episodes played here step by step: the
 * reset graph, then the act graph's action_mode on the observation normalised here in float64 with
 * the given statistics, and the env's step graph, until each env's first episode ends. The policies
 * are built so that episodes end at different steps (Acrobot, MountainCar) or score differently
 * (Pendulum), and MountainCar's only moves because the normalisation shifts its velocity.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { loadProgram, loadProgramGraphs } from '../../runtime/program/config.ts';
import { PROGRAMS, layoutOf } from '../../tools/ppo-programs.ts';
import { expectClose } from '../helpers/grad.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const E = 10;

/** Zero params but for the entries set: [param, flat index, value]. */
function handParams(shapes: Record<string, number[]>, set: [string, number, number][]): TensorMap {
  const out: TensorMap = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (const [p, i, x] of set) if (p === name) v[i] = x;
    out[name] = tf.tensor(v, shape);
  }
  return out;
}

interface Case {
  program: string;
  /** The agent's params (by their state names) and the normalisation statistics, if the program keeps them. */
  policy: (shapes: Record<string, number[]>, act: ReturnType<typeof loadGraph>) => TensorMap;
  norm?: { mean: number[]; var: number[]; clip: number };
  /** What the played episodes must show for the comparison to mean something. */
  expectEpisodes: (returns: number[], lengths: number[], limit: number) => void;
}

const CASES: Case[] = [
  {
    program: 'ppo-acrobot',
    // logits[2] - logits[0] = 10 tanh(tanh(dtheta2)): torque along the second joint's swing, which pumps energy.
    policy: (s) => handParams(s, [['actor_w1', 5 * 64 + 0, 1], ['actor_w2', 0, 1], ['actor_w3', 0 * 3 + 2, 5], ['actor_w3', 0 * 3 + 0, -5]]),
    expectEpisodes: (returns, lengths, limit) => {
      expect(Math.max(...lengths)).toBeLessThan(limit);
      expect(new Set(lengths).size).toBeGreaterThan(1);
    },
  },
  {
    program: 'ppo-pendulum',
    policy: (_s, act) => Object.fromEntries(Object.entries(initParams(act, 4)).map(([k, v]) => [k.slice('agent/'.length), v])),
    // Tight statistics and clip: cos and sin reach the clip, the angular velocity mostly not.
    norm: { mean: [0.2, -0.1, 0.5], var: [0.05, 0.1, 4], clip: 2 },
    expectEpisodes: (returns) => expect(Math.max(...returns) - Math.min(...returns)).toBeGreaterThan(100),
  },
  {
    program: 'ppo-mountaincar_continuous',
    // mean = 3 tanh(tanh(z_velocity)) (the env clips it to 1): push with the velocity, which pumps energy.
    policy: (s) => handParams(s, [['actor_w1', 1 * 64 + 0, 1], ['actor_w2', 0, 1], ['actor_w3', 0, 3]]),
    // At rest the velocity is 0: only its normalised value, (0 + 0.001) / 0.01, starts the car.
    norm: { mean: [-0.5, -0.001], var: [0.01, 1e-4], clip: 5 },
    expectEpisodes: (returns, lengths, limit) => {
      expect(Math.max(...lengths)).toBeLessThan(limit);
      expect(new Set(lengths).size).toBeGreaterThan(1);
      expect(Math.min(...returns)).toBeGreaterThan(50);
    },
  },
];

describe('the PPO programs\' evaluate graphs per env against episodes played step by step', () => {
  for (const c of CASES)
    it(`${c.program}: ${E} deterministic episodes to the time limit, return mean, min and max`, () => {
      const L = layoutOf(PROGRAMS.find((s) => s.name === c.program)!);
      const cfg = loadProgram(G(`programs/${c.program}/program.json`));
      const EVALUATE = loadProgramGraphs(cfg).evaluate!;
      const ACT = loadGraph(L.cfg.policy.act);
      const STEP = loadGraph(L.cfg.env.step);
      const RESET = loadGraph(L.cfg.env.reset!);
      expect(Boolean(c.norm)).toBe(L.normObs);
      const params = c.policy(Object.fromEntries(L.params.map((p) => [p.name, p.shape])), ACT);
      const agent = Object.fromEntries(Object.entries(params).map(([k, v]) => [`agent/${k}`, v]));
      const key = tf.tensor([0, 42], [2], 'int32');
      const reset = interpret(RESET, { key, like: tf.zeros([E], 'int32') }, {});
      let env: TensorMap = { state: reset.state!, t: reset.t!, obs: reset.obs! };
      const D = L.obsDim;
      const returns = new Array<number>(E).fill(0);
      const lengths = new Array<number>(E).fill(0);
      const alive = new Array<boolean>(E).fill(true);
      for (let s = 0; s < L.timeLimit && alive.some(Boolean); s++) {
        const raw = Array.from(env.obs!.dataSync());
        const n = c.norm;
        const obs = n ? tf.tensor(raw.map((x, k) => Math.max(-n.clip, Math.min(n.clip, (x - n.mean[k % D]!) / Math.sqrt(n.var[k % D]! + 1e-8)))), [E, D]) : env.obs!;
        // Keys only drive the sampled action and the auto-reset, neither of which the returns read.
        const a = interpret(ACT, { obs, key: tf.tensor([1, s], [2], 'int32') }, agent);
        const st = interpret(STEP, { state: env.state!, t: env.t!, action: a.action_mode!, key: tf.tensor([2, s], [2], 'int32') }, {});
        const r = st.reward!.dataSync();
        const done = st.terminated!.dataSync().map((x, i) => x || st.truncated!.dataSync()[i]!);
        for (let i = 0; i < E; i++)
          if (alive[i]) {
            returns[i]! += r[i]!;
            lengths[i]!++;
            if (done[i]) alive[i] = false;
          }
        env = { state: st.state!, t: st.t!, obs: st.obs! };
      }
      expect(alive.some(Boolean), 'every episode ends by the time limit').toBe(false);
      c.expectEpisodes(returns, lengths, L.timeLimit);
      const inputs: TensorMap = {
        key,
        ...params,
        ...(c.norm ? { obs_mean: tf.tensor(c.norm.mean), obs_var: tf.tensor(c.norm.var), norm_clip: tf.scalar(c.norm.clip) } : {}),
      };
      const mean = returns.reduce((a, b) => a + b, 0) / E;
      for (const [name, run] of [
        ['interpreter', () => interpret(EVALUATE, inputs, {})],
        ['compiled', () => compileProgram(EVALUATE).run(inputs, {})],
      ] as const) {
        const out = run();
        const got = ['return_mean', 'return_min', 'return_max', 'episodes'].map((k) => out[k]!.dataSync()[0]!);
        // float32 sums of up to 999 rewards against float64 ones here.
        expectClose(got, [mean, Math.min(...returns), Math.max(...returns), E], 1e-4, 1e-6, `${name}: return_mean, return_min, return_max, episodes`);
      }
    });
});
