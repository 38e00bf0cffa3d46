/**
 * The PPO programs on Acrobot-v1, Pendulum-v1 and MountainCarContinuous-v0 (graphs/programs/ppo-<env>/,
 * written by tools/ppo-programs.ts): the checked-in files (of the AM-PPO and AlphaGrad variants too)
 * are the generator's output; init + 2
 * iterations equal the classic Trainer on the same pipeline and seed; and the rollout step's
 * observation and reward normalisation equals the act and env graphs called one by one with a
 * float64 RunningMeanStd kept here.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { splitKey } from '../../compiler/ops/threefry.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { Trainer } from '../../runtime/pipeline/driver.ts';
import { loadPipeline, withEnv } from '../../runtime/pipeline/config.ts';
import { PROGRAMS, programFiles, programHyper, layoutOf } from '../../tools/ppo-programs.ts';
import { expectClose } from '../helpers/grad.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const values = (t: tf.Tensor) => Array.from(t.dataSync());
const dispose = (...ms: TensorMap[]) => ms.forEach((m) => tf.dispose(Object.values(m)));
const scalars = (h: Record<string, number>): TensorMap => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, tf.scalar(v)]));
const METRICS = ['loss', 'pg_loss', 'v_loss', 'entropy', 'approx_kl', 'clipfrac', 'grad_norm', 'grad_clip_frac', 'episodic_return', 'episodic_length', 'episodes', 'explained_variance', 'env_steps', 'lr'];

describe('tools/ppo-programs.ts', () => {
  for (const spec of PROGRAMS)
    it(`graphs/programs/${spec.name}/ holds what the generator writes`, () => {
      const { dir, files } = programFiles(spec);
      for (const [f, text] of Object.entries(files)) expect(readFileSync(join(dir, f), 'utf8'), `${spec.name}/${f}: run npm run programs:generate`).toBe(text);
    });
});

/** gymnasium's RunningMeanStd in float64, written out here as the reference. */
class Stat {
  constructor(
    public mean: number[],
    public var_: number[],
    public count: number,
  ) {}
  update(rows: number[][]): void {
    const n = rows.length;
    this.mean.forEach((m0, j) => {
      const m = rows.reduce((s, r) => s + r[j]!, 0) / n;
      const v = rows.reduce((s, r) => s + (r[j]! - m) ** 2, 0) / n;
      const delta = m - m0;
      const tot = this.count + n;
      this.mean[j] = m0 + (delta * n) / tot;
      this.var_[j] = (this.var_[j]! * this.count + v * n + (delta * delta * this.count * n) / tot) / tot;
    });
    this.count += n;
  }
}

const clip = (x: number, c: number) => Math.max(-c, Math.min(c, x));

describe('ppo-pendulum rollout-step: normalisation in the scan body', () => {
  const ROLLOUT = loadGraph(G('programs/ppo-pendulum/rollout-step.graph.json'));
  const ACT = loadGraph(G('algorithms/ppo-pendulum.act.graph.json'));
  const STEP = loadGraph(G('envs/pendulum.step.graph.json'));
  const N = 3;
  const STEPS = 4;
  const GAMMA = 0.9;
  // Tighter than CleanRL's 10, so that both clips act: the small variances push observations and rewards past it.
  const CLIP = 2;
  const CARRIES = ['env_state', 'env_t', 'obs', 'key', 'ep_return', 'ep_length', 'return_sum', 'length_sum', 'episodes', 'obs_mean', 'obs_var', 'obs_count', 'ret_acc', 'ret_mean', 'ret_var', 'ret_count'];

  for (const [name, run] of [
    ['interpreter', (inputs: TensorMap) => interpret(ROLLOUT, inputs, {})],
    ['compiled executor', (inputs: TensorMap) => compileProgram(ROLLOUT).run(inputs, {})],
  ] as const)
    it(`${name}: ${STEPS} steps equal act + env step with a float64 running mean/var of the observations and discounted returns`, () => {
      const params = initParams(ACT, 5);
      const invariants: TensorMap = { ...Object.fromEntries(ACT.params.map((p) => [p.name.slice('agent/'.length), params[p.name]!])), ...scalars({ gamma: GAMMA, norm_clip: CLIP }) };
      // Env 1 is one step from the 200-step limit: its discounted return must restart.
      const state = [0.5, -1, 3, 2, -2.5, 0.3];
      const t = [5, 199, 0];
      const obsOf = (s: number[]) => Array.from({ length: N }, (_, i) => [Math.cos(s[2 * i]!), Math.sin(s[2 * i]!), s[2 * i + 1]!]);
      const obsStat = new Stat([0.2, -0.1, 0.4], [0.05, 0.3, 1.5], 7);
      const retStat = new Stat([-3], [0.8], 11);
      const retAcc = [-4, -1, 0];
      let carry: TensorMap = {
        env_state: tf.tensor(state, [N, 2]),
        env_t: tf.tensor(t, [N], 'int32'),
        obs: tf.tensor(obsOf(state).flat(), [N, 3]),
        key: tf.tensor([0, 21], [2], 'int32'),
        ep_return: tf.tensor([-10, -300, 0]),
        ep_length: tf.tensor([5, 199, 0]),
        return_sum: tf.scalar(0),
        length_sum: tf.scalar(0),
        episodes: tf.scalar(0),
        obs_mean: tf.tensor(obsStat.mean),
        obs_var: tf.tensor(obsStat.var_),
        obs_count: tf.scalar(obsStat.count),
        ret_acc: tf.tensor(retAcc),
        ret_mean: tf.tensor(retStat.mean),
        ret_var: tf.tensor(retStat.var_),
        ret_count: tf.scalar(retStat.count),
      };
      let key: [number, number] = [0, 21];
      let env: TensorMap = { state: tf.tensor(state, [N, 2]), t: tf.tensor(t, [N], 'int32'), obs: tf.tensor(obsOf(state).flat(), [N, 3]) };
      let clippedObs = 0;
      let clippedRewards = 0;
      let restarts = 0;
      for (let s = 0; s < STEPS; s++) {
        const out = run({ ...carry, ...invariants });
        const w = splitKey(key, 3);
        key = [w[0]!, w[1]!];
        const ka = tf.tensor(Int32Array.from([w[2]!, w[3]!]), [2], 'int32');
        const ke = tf.tensor(Int32Array.from([w[4]!, w[5]!]), [2], 'int32');
        const raw = values(env.obs!);
        const normObs = raw.map((x, k) => (x - obsStat.mean[k % 3]!) / Math.sqrt(obsStat.var_[k % 3]! + 1e-8));
        clippedObs += normObs.filter((x) => Math.abs(x) > CLIP).length;
        const obsIn = tf.tensor(normObs.map((x) => clip(x, CLIP)), [N, 3]);
        const a = interpret(ACT, { obs: obsIn, key: ka }, params);
        const st = interpret(STEP, { state: env.state!, t: env.t!, action: a.action!, key: ke }, {});
        const r = values(st.reward!);
        const done = values(st.terminated!).map((x, i) => (x || values(st.truncated!)[i] ? 1 : 0));
        const next = values(st.obs!);
        obsStat.update(Array.from({ length: N }, (_, i) => next.slice(3 * i, 3 * i + 3)));
        for (let i = 0; i < N; i++) retAcc[i] = retAcc[i]! * GAMMA + r[i]!;
        retStat.update(retAcc.map((x) => [x]));
        const sd = Math.sqrt(retStat.var_[0]! + 1e-8);
        clippedRewards += r.filter((x) => Math.abs(x / sd) > CLIP).length;
        const rewardNorm = r.map((x) => clip(x / sd, CLIP));
        for (let i = 0; i < N; i++)
          if (done[i]) {
            retAcc[i] = 0;
            restarts++;
          }

        const near = (k: string, want: number[], rtol = 1e-5) => expectClose(values(out[k]!), want, rtol, 1e-6, `step ${s}: ${k}`);
        near('step_obs', values(obsIn));
        near('action', values(a.action!));
        near('logp', values(a.logp!));
        near('value', values(a.value!));
        near('reward', rewardNorm);
        near('done', done);
        near('obs', next);
        near('obs_mean', obsStat.mean);
        near('obs_var', obsStat.var_);
        near('obs_count', [obsStat.count]);
        near('ret_acc', retAcc);
        near('ret_mean', retStat.mean);
        near('ret_var', retStat.var_);
        near('ret_count', [retStat.count]);
        expect(values(out.key!)).toEqual(Array.from(Int32Array.from(key)));
        dispose(carry, a, env);
        ['step_obs', 'action', 'logp', 'value', 'reward', 'done'].forEach((k) => out[k]!.dispose());
        carry = Object.fromEntries(CARRIES.map((k) => [k, out[k]!]));
        env = { state: st.state!, t: st.t!, obs: st.obs! };
        tf.dispose([ka, ke, obsIn, st.reward!, st.terminated!, st.truncated!, st.final_obs!]);
      }
      // The clips and the restart were exercised, not only the plain path.
      expect(clippedObs).toBeGreaterThan(0);
      expect(clippedRewards).toBeGreaterThan(0);
      expect(restarts).toBe(1);
      dispose(carry, env, params, invariants);
    });
});

describe('init + iterations: each PPO program against the classic Trainer', () => {
  // The AM-PPO and AlphaGrad variants: ppo-variant-programs-envs.test.ts.
  for (const spec of PROGRAMS.filter((s) => !s.base))
    it(`${spec.name}: init + 2 compiled iterations equal the classic Trainer's init + iterate on ${spec.pipeline}${spec.env ? ` with --env ${spec.env}` : ''}`, () => {
      const seed = 2;
      let cfg = loadPipeline(G(spec.pipeline));
      if (spec.env) cfg = withEnv(cfg, spec.env);
      cfg = { ...cfg, seed };
      const L = layoutOf(spec);
      const INIT = loadGraph(G(`programs/${spec.name}/init.graph.json`));
      const ITERATION = loadGraph(G(`programs/${spec.name}/iteration.graph.json`));
      const program = JSON.parse(readFileSync(G(`programs/${spec.name}/program.json`), 'utf8')) as { hyper: Record<string, number>; total_steps: number };
      expect(program.hyper).toEqual(programHyper(L));
      const trainer = new Trainer(cfg, undefined, 'compiled');
      trainer.init();
      expect(program.total_steps).toBe(trainer.iterations * trainer.stepsPerIteration());
      const initParamValues = initParams(INIT, seed);
      const key = tf.tensor([0, seed], [2], 'int32');
      let state = compileProgram(INIT).run({ key }, initParamValues);
      const iteration = compileProgram(ITERATION);
      const hyper = scalars({ ...program.hyper, total_steps: program.total_steps });
      const h = trainer.host;
      for (let it = 1; it <= 2; it++) {
        const row = trainer.iterate() as unknown as Record<string, number | null>;
        const out = iteration.run({ ...state, ...hyper }, {});
        for (const p of L.params) expectClose(values(out[p.name]!), values(trainer.params[`agent/${p.name}`]!), 1e-3, 1e-6, `iteration ${it}: ${p.name}`);
        expectClose(values(out.opt_m!), values(trainer.optState.m!), 1e-2, 1e-6, `iteration ${it}: opt_m`);
        expect(values(out.opt_step!)).toEqual(values(trainer.optState.step!));
        // The second rollout acts with params equal to float32 rounding, and continuous actions carry that into the dynamics.
        expectClose(values(out.env_state!), values(trainer.env.state!), 1e-4, 1e-6, `iteration ${it}: env_state`);
        expectClose(values(out.obs!), values(trainer.env.obs!), 1e-4, 1e-6, `iteration ${it}: obs`);
        expect(values(out.env_t!)).toEqual(values(trainer.env.t!));
        expect(values(out.key!)).toEqual(Array.from(Int32Array.from(h.key)));
        expectClose(values(out.ep_return!), h.epReturn, 1e-5, 1e-6, `iteration ${it}: ep_return`);
        expect(values(out.ep_length!)).toEqual(h.epLength);
        expect(values(out.iterations_done!)).toEqual([it]);
        if (L.normObs) {
          expectClose(values(out.obs_mean!), h.obsStat!.mean, 1e-4, 1e-6, `iteration ${it}: obs_mean`);
          expectClose(values(out.obs_var!), h.obsStat!.var_, 1e-4, 1e-6, `iteration ${it}: obs_var`);
          expectClose(values(out.obs_count!), [h.obsStat!.count], 1e-6, 0, `iteration ${it}: obs_count`);
        } else expect(h.obsStat).toBeNull();
        if (L.normReward) {
          expectClose(values(out.ret_acc!), h.retAcc, 1e-4, 1e-6, `iteration ${it}: ret_acc`);
          expectClose(values(out.ret_mean!), h.retStat!.mean, 1e-4, 1e-6, `iteration ${it}: ret_mean`);
          expectClose(values(out.ret_var!), h.retStat!.var_, 1e-4, 1e-6, `iteration ${it}: ret_var`);
          expectClose(values(out.ret_count!), [h.retStat!.count], 1e-6, 0, `iteration ${it}: ret_count`);
        } else expect(h.retStat).toBeNull();
        for (const k of METRICS) {
          const want = k === 'env_steps' ? trainer.stepsPerIteration() : row[k];
          const got = values(out[k]!)[0]!;
          if (want === null) expect(got, k).toBeNaN();
          else if (k === 'lr') expect(Math.abs(got - want!) / want!, k).toBeLessThan(1e-6);
          else expectClose([got], [want!], 1e-3, 1e-6, `iteration ${it}: ${k}`);
        }
        dispose(state);
        state = Object.fromEntries(Object.keys(INIT.outputs).map((k) => [k, out[k]!]));
        tf.dispose(METRICS.map((k) => out[k]!));
      }
      dispose(state, hyper, initParamValues, trainer.params, trainer.optState, trainer.env);
      key.dispose();
    });
});
