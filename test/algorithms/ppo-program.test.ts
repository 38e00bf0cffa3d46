/**
 * The PPO CartPole program's stage graphs (graphs/programs/ppo-cartpole/): each body, run once or a
 * few times by the interpreter and the compiled executor, against the same work done step by step
 * here with the library graphs it composes, and against the classic Trainer where it can be driven.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { refType } from '../../compiler/frontend/infer.ts';
import { showType, type IRGraph, type TensorType } from '../../compiler/ir.ts';
import { permutation, splitKey } from '../../compiler/ops/threefry.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { Trainer } from '../../runtime/pipeline/driver.ts';
import { expectClose } from '../helpers/grad.ts';
import { tinyPipeline } from '../helpers/tiny-pipeline.ts';
import { uniform } from '../helpers/seeded-uniform.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const UPDATE = loadGraph(G('programs/ppo-cartpole/update-step.graph.json'));
const LOSS = loadGraph(G('algorithms/ppo-cartpole.loss.graph.json'));
const CLIP = loadGraph(G('optimizers/clip-grad-norm.graph.json'));
const ADAM = loadGraph(G('optimizers/adam.graph.json'));
const ACT = loadGraph(G('algorithms/ppo-cartpole.act.graph.json'));

/** The agent's params in the order of its graph file: the flat vector's layout. */
const AGENT = JSON.parse(readFileSync(G('algorithms/agents/cartpole.agent.graph.json'), 'utf8')) as { params: Record<string, { shape: number[] }> };
const PARAM_NAMES = Object.keys(AGENT.params).map((p) => `agent/${p}`);

const values = (t: tf.Tensor) => Array.from(t.dataSync());
const dispose = (...ms: TensorMap[]) => ms.forEach((m) => tf.dispose(Object.values(m)));

/** The test's own flatten: the named tensors' values concatenated in PARAM_NAMES order. */
function flatten(of: (p: string) => tf.Tensor): number[] {
  return PARAM_NAMES.flatMap((p) => values(of(p)));
}

/** The test's own gather: rows of a row-major array. */
function gatherRows(t: tf.Tensor, rows: number[]): tf.Tensor {
  const row = t.size / t.shape[0]!;
  const v = t.dataSync();
  const out = rows.flatMap((r) => Array.from(v.subarray(r * row, (r + 1) * row)));
  return tf.tensor(out, [rows.length, ...t.shape.slice(1)], t.dtype);
}

const HYPER = { lr: 0.01, clip_coef: 0.2, ent_coef: 0.01, vf_coef: 0.5, norm_adv: 1, clip_vloss: 1, max_grad_norm: 0.5, beta1: 0.9, beta2: 0.999, eps: 1e-5 };
const scalars = (h: Record<string, number>): TensorMap => Object.fromEntries(Object.entries(h).map(([k, v]) => [k, tf.scalar(v)]));

/** A batch of B rows as the rollout would leave it, under the body's input names. */
function batch(B: number, seed: number): TensorMap {
  return {
    obs: tf.tensor(uniform(4 * B, -1, 1, seed), [B, 4]),
    actions: tf.tensor(uniform(B, 0, 2, seed + 1).map(Math.floor), [B], 'int32'),
    logp: tf.tensor(uniform(B, -1.2, -0.3, seed + 2), [B]),
    advantages: tf.tensor(uniform(B, -2, 2, seed + 3), [B]),
    returns: tf.tensor(uniform(B, -1, 3, seed + 4), [B]),
    values: tf.tensor(uniform(B, -0.5, 0.5, seed + 5), [B]),
  };
}

type Run = (g: IRGraph, inputs: TensorMap) => TensorMap;
const EXECUTORS: [string, Run][] = [
  ['interpreter', (g, inputs) => interpret(g, inputs, {})],
  ['compiled executor', (g, inputs) => compileProgram(g).run(inputs, {})],
];

describe('update-step: one PPO minibatch update (the update scan body)', () => {
  const P = PARAM_NAMES.reduce((s, p) => s + AGENT.params[p.slice(6)]!.shape.reduce((a, b) => a * b, 1), 0);

  it('the flat params vector holds every agent param, in the agent graph order', () => {
    expect(UPDATE.inputs.find((i) => i.name === 'params')!.type.shape).toEqual([P]);
    expect(ACT.params.map((p) => p.name)).toEqual(PARAM_NAMES);
  });

  for (const [name, run] of EXECUTORS)
    it(`${name}: equals the loss, clip and adam graphs called one after the other on the gathered rows`, () => {
      // Not the initial values: their zero biases would hide a mix-up of two bias slices.
      const params = Object.fromEntries(ACT.params.map((p, k) => [p.name, tf.tensor(uniform(p.type.shape.reduce((a: number, b) => a * (b as number), 1), -0.5, 0.5, 90 + k), p.type.shape as number[])]));
      const data = batch(16, 40);
      const rows = [3, 14, 0, 9, 7, 12, 1, 5];
      const m = uniform(P, -0.01, 0.01, 50);
      const v = uniform(P, 0, 1e-4, 51);
      const hyper = scalars(HYPER);
      const carry: TensorMap = { params: tf.tensor(flatten((p) => params[p]!)), m: tf.tensor(m), v: tf.tensor(v), step: tf.scalar(3, 'int32') };
      const rowsT = tf.tensor(rows, [rows.length], 'int32');
      const out = run(UPDATE, { ...carry, ...data, ...hyper, rows: rowsT });

      // The same, step by step.
      const mb: TensorMap = { obs: gatherRows(data.obs!, rows), actions: gatherRows(data.actions!, rows), logp_old: gatherRows(data.logp!, rows), advantages: gatherRows(data.advantages!, rows), returns: gatherRows(data.returns!, rows), values_old: gatherRows(data.values!, rows) };
      const lossScalars = scalars({ clip_coef: HYPER.clip_coef, ent_coef: HYPER.ent_coef, vf_coef: HYPER.vf_coef, norm_adv: HYPER.norm_adv, clip_vloss: HYPER.clip_vloss });
      const loss = interpret(LOSS, { ...mb, ...lossScalars }, params);
      const grads = tf.tensor(flatten((p) => loss[`grad__${p.replace('/', '__')}`]!));
      const maxNorm = tf.scalar(HYPER.max_grad_norm);
      const clip = interpret(CLIP, { grads, max_norm: maxNorm }, {});
      const adamScalars = scalars({ lr: HYPER.lr, beta1: HYPER.beta1, beta2: HYPER.beta2, eps: HYPER.eps });
      const adam = interpret(ADAM, { ...carry, grads: clip.grads!, ...adamScalars }, {});

      expect(values(out.step!)).toEqual([4]);
      for (const k of ['params', 'm', 'v']) expectClose(values(out[k]!), values(adam[k]!), 1e-5, 1e-7, k);
      // The step moved the params: the comparison is not of two copies of the input.
      expect(values(out.params!)).not.toEqual(values(carry.params!));
      for (const k of ['loss', 'pg_loss', 'v_loss', 'entropy', 'approx_kl', 'clipfrac']) expectClose(values(out[k]!), values(loss[k]!), 1e-5, 1e-6, k);
      expectClose(values(out.grad_norm!), values(clip.norm!), 1e-5, 1e-6, 'grad_norm');
      expect(values(out.grad_clipped!)).toEqual([values(clip.norm!)[0]! > HYPER.max_grad_norm ? 1 : 0]);
      dispose(params, data, hyper, carry, out, mb, lossScalars, loss, clip, adamScalars, adam);
      tf.dispose([rowsT, grads, maxNorm]);
    });

  it("two steps over a shuffled batch equal the classic Trainer's update (1 epoch x 2 minibatches)", () => {
    const cfg = tinyPipeline({ update: { epochs: 1, minibatches: 2 } });
    const trainer = new Trainer(cfg, undefined, 'interpret');
    trainer.init();
    const B = 16;
    const data = batch(B, 70);
    const u = cfg.update;
    const o = cfg.optimizer;
    // The Trainer shuffles with the second key of a 2-way split of its key.
    const words = splitKey(trainer.host.key, 2);
    const perm = Array.from(permutation([words[2]!, words[3]!], B));
    let carry: TensorMap = {
      params: tf.tensor(flatten((p) => trainer.params[p]!)),
      m: tf.zeros([P]),
      v: tf.zeros([P]),
      step: tf.scalar(0, 'int32'),
    };
    const hyper = scalars({ lr: o.lr, clip_coef: u.clip_coef, ent_coef: u.ent_coef, vf_coef: u.vf_coef, norm_adv: u.norm_adv ? 1 : 0, clip_vloss: u.clip_vloss ? 1 : 0, max_grad_norm: u.max_grad_norm, beta1: o.beta1, beta2: o.beta2, eps: o.eps });
    const ys: Record<string, number[]> = {};
    for (let mbi = 0; mbi < 2; mbi++) {
      const rows = tf.tensor(perm.slice(mbi * 8, (mbi + 1) * 8), [8], 'int32');
      const out = interpret(UPDATE, { ...carry, ...data, ...hyper, rows }, {});
      rows.dispose();
      dispose(carry);
      carry = { params: out.params!, m: out.m!, v: out.v!, step: out.step! };
      for (const k of ['loss', 'pg_loss', 'v_loss', 'entropy', 'approx_kl', 'clipfrac', 'grad_norm', 'grad_clipped']) {
        (ys[k] ??= []).push(values(out[k]!)[0]!);
        out[k]!.dispose();
      }
    }
    // The Trainer's update generator, driven to its end (cpu reads synchronously: it never yields).
    const classicData: TensorMap = { obs: data.obs!, actions: data.actions!, logp_old: data.logp!, advantages: data.advantages!, returns: data.returns!, values_old: data.values! };
    const work = trainer['update'](classicData, o.lr);
    const r = work.next();
    expect(r.done).toBe(true);
    const stats = r.value as Record<string, number>;
    expectClose(values(carry.params!), flatten((p) => trainer.params[p]!), 1e-5, 1e-7, 'params');
    expectClose(values(carry.m!), values(trainer.optState.m!), 1e-5, 1e-8, 'm');
    expect(values(carry.step!)).toEqual(values(trainer.optState.step!));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    for (const k of ['loss', 'pg_loss', 'v_loss', 'entropy', 'approx_kl', 'clipfrac', 'grad_norm']) expectClose([stats[k]!], [mean(ys[k]!)], 1e-5, 1e-6, k);
    expect(stats.grad_clip_frac).toBe(mean(ys.grad_clipped!));
    dispose(carry, data, hyper, trainer.params, trainer.optState, trainer.env);
  });
});

describe('rollout-step: one step of N envs (the rollout scan body)', () => {
  const ROLLOUT = loadGraph(G('programs/ppo-cartpole/rollout-step.graph.json'));
  const STEP = loadGraph(G('envs/cartpole.step.graph.json'));
  const N = 4;
  const STEPS = 6;
  /** Env 0 is falling over, env 1 is one step from the 500-step limit, env 2 is leaving the track. */
  const START = { state: [0, 0, 0.2, 2, 0.01, 0, 0, 0, 2.39, 3, 0, 0, 0.02, -0.01, 0.03, 0], t: [0, 498, 7, 0] };
  const CARRIES = ['env_state', 'env_t', 'obs', 'key', 'ep_return', 'ep_length', 'return_sum', 'length_sum', 'episodes'];
  const YS = ['step_obs', 'action', 'logp', 'value', 'reward', 'done'];

  for (const [name, run] of EXECUTORS)
    it(`${name}: ${STEPS} steps equal the act and env step graphs called one by one with the classic driver's key splits`, () => {
      const params = initParams(ACT, 8);
      const invariants: TensorMap = Object.fromEntries(PARAM_NAMES.map((p) => [p.slice('agent/'.length), params[p]!]));
      let carry: TensorMap = {
        env_state: tf.tensor(START.state, [N, 4]),
        env_t: tf.tensor(START.t, [N], 'int32'),
        obs: tf.tensor(START.state, [N, 4]),
        key: tf.tensor([0, 11], [2], 'int32'),
        ep_return: tf.tensor([3, 0, 10, 1]),
        ep_length: tf.tensor([3, 498, 10, 1]),
        return_sum: tf.scalar(0),
        length_sum: tf.scalar(0),
        episodes: tf.scalar(0),
      };
      // The reference state, on the host.
      let key: [number, number] = [0, 11];
      let env: TensorMap = { state: tf.tensor(START.state, [N, 4]), t: tf.tensor(START.t, [N], 'int32'), obs: tf.tensor(START.state, [N, 4]) };
      const epReturn = [3, 0, 10, 1];
      const epLength = [3, 498, 10, 1];
      const finished: { ret: number; len: number }[] = [];
      for (let s = 0; s < STEPS; s++) {
        const out = run(ROLLOUT, { ...carry, ...invariants });
        const w = splitKey(key, 3);
        key = [w[0]!, w[1]!];
        const ka = tf.tensor(Int32Array.from([w[2]!, w[3]!]), [2], 'int32');
        const ke = tf.tensor(Int32Array.from([w[4]!, w[5]!]), [2], 'int32');
        const a = interpret(ACT, { obs: env.obs!, key: ka }, params);
        const st = interpret(STEP, { state: env.state!, t: env.t!, action: a.action!, key: ke }, {});
        const r = values(st.reward!);
        const done = values(st.terminated!).map((x, i) => (x || values(st.truncated!)[i] ? 1 : 0));
        for (let i = 0; i < N; i++) {
          epReturn[i]! += r[i]!;
          epLength[i]! += 1;
          if (done[i]) {
            finished.push({ ret: epReturn[i]!, len: epLength[i]! });
            epReturn[i] = 0;
            epLength[i] = 0;
          }
        }
        const want: Record<string, number[]> = { step_obs: values(env.obs!), action: values(a.action!), logp: values(a.logp!), value: values(a.value!), reward: r, done };
        for (const k of YS) expectClose(values(out[k]!), want[k]!, 1e-5, 1e-6, `step ${s}: ${k}`);
        expect(values(out.key!), `step ${s}: key`).toEqual(Array.from(Int32Array.from(key)));
        expect(values(out.env_t!)).toEqual(values(st.t!));
        expectClose(values(out.env_state!), values(st.state!), 1e-5, 1e-6, `step ${s}: env_state`);
        expectClose(values(out.obs!), values(st.obs!), 1e-5, 1e-6, `step ${s}: obs`);
        expect(values(out.ep_return!), `step ${s}: ep_return`).toEqual(epReturn);
        expect(values(out.ep_length!), `step ${s}: ep_length`).toEqual(epLength);
        expect(values(out.episodes!)).toEqual([finished.length]);
        expect(values(out.return_sum!)).toEqual([finished.reduce((acc, f) => acc + f.ret, 0)]);
        expect(values(out.length_sum!)).toEqual([finished.reduce((acc, f) => acc + f.len, 0)]);
        dispose(carry, a, env);
        for (const k of YS) out[k]!.dispose();
        carry = Object.fromEntries(CARRIES.map((k) => [k, out[k]!]));
        env = { state: st.state!, t: st.t!, obs: st.obs! };
        tf.dispose([ka, ke, st.reward!, st.terminated!, st.truncated!, st.final_obs!]);
      }
      // All three ways an episode ends happened: falling, leaving the track, the time limit.
      expect(finished.length).toBeGreaterThanOrEqual(3);
      expect(finished.some((f) => f.len === 500)).toBe(true);
      dispose(carry, env, params);
    });
});

describe('init and iteration: one whole PPO iteration as a graph', () => {
  const INIT = loadGraph(G('programs/ppo-cartpole/init.graph.json'));
  const ITERATION = loadGraph(G('programs/ppo-cartpole/iteration.graph.json'));
  const STATE = INIT.outputs;
  const METRICS = ['loss', 'pg_loss', 'v_loss', 'entropy', 'approx_kl', 'clipfrac', 'grad_norm', 'grad_clip_frac', 'episodic_return', 'episodic_length', 'episodes', 'explained_variance', 'env_steps', 'lr'];

  it('the iteration takes every state tensor init makes, with the same type, and gives it back; its other outputs are the metrics', () => {
    const typesOf = (g: IRGraph) => new Map<string, TensorType>([...g.inputs.map((v) => [v.name, v.type] as const), ...g.params.map((v) => [v.name, v.type] as const), ...g.nodes.flatMap((n) => (n.type ? [[n.id, n.type] as const] : []))]);
    const nodesOf = (g: IRGraph) => new Map(g.nodes.map((n) => [n.id, n]));
    const initType = (name: string) => refType(typesOf(INIT), nodesOf(INIT), STATE[name]!);
    const iterOut = (name: string) => refType(typesOf(ITERATION), nodesOf(ITERATION), ITERATION.outputs[name]!);
    // N is 4 in init and symbolic in the iteration.
    const concrete = (t: TensorType) => `${t.dtype}[${t.shape.map((d) => (d === 'N' ? 4 : d)).join(',')}]`;
    for (const name of Object.keys(STATE)) {
      const input = ITERATION.inputs.find((i) => i.name === name);
      expect(input, name).toBeDefined();
      expect(concrete(input!.type), name).toBe(concrete(initType(name)));
      expect(concrete(iterOut(name)), name).toBe(concrete(input!.type));
    }
    expect(Object.keys(ITERATION.outputs).filter((k) => !(k in STATE)).sort()).toEqual([...METRICS].sort());
    for (const k of METRICS) expect(showType(iterOut(k)), k).toBe('float32[]');
  });

  for (const [name, executor, iterations] of [['interpreter', 'interpret', 1], ['compiled executor', 'compiled', 2]] as const)
    it(`${name}: init + ${iterations} iteration(s) equal the classic Trainer's init + iterate on ppo-cartpole (4 envs x 128 steps, 4 x 4 minibatches)`, () => {
      const seed = 3;
      const cfg = tinyPipeline({ env: { step: G('envs/cartpole.step.graph.json'), reset: G('envs/cartpole.reset.graph.json'), num_envs: 4 }, rollout: { steps: 128 }, update: { epochs: 4, minibatches: 4 }, optimizer: { name: 'adam', lr: 2.5e-4, eps: 1e-5 }, total_steps: 500000, seed });
      const trainer = new Trainer(cfg, undefined, executor);
      trainer.init();
      const run = (g: IRGraph, inputs: TensorMap, params: TensorMap = {}): TensorMap => (executor === 'interpret' ? interpret(g, inputs, params) : compileProgram(g).run(inputs, params));
      // The driver's part: the init graph's params from the seed, then key = [0, seed].
      const initParamValues = initParams(INIT, seed);
      const key = tf.tensor([0, seed], [2], 'int32');
      let state = run(INIT, { key }, initParamValues);
      const u = cfg.update;
      const o = cfg.optimizer;
      const hyper = scalars({ lr: o.lr, anneal_lr: 1, gamma: cfg.advantage.gamma, gae_lambda: cfg.advantage.lambda, clip_coef: u.clip_coef, ent_coef: u.ent_coef, vf_coef: u.vf_coef, norm_adv: 1, clip_vloss: 1, max_grad_norm: u.max_grad_norm, beta1: o.beta1, beta2: o.beta2, eps: o.eps, total_steps: cfg.total_steps });
      for (let it = 1; it <= iterations; it++) {
        const row = trainer.iterate() as unknown as Record<string, number | null>;
        const out = run(ITERATION, { ...state, ...hyper });
        for (const p of PARAM_NAMES) expectClose(values(out[p.slice('agent/'.length)]!), values(trainer.params[p]!), 1e-4, 1e-6, `iteration ${it}: ${p}`);
        expectClose(values(out.opt_m!), values(trainer.optState.m!), 1e-3, 1e-7, 'opt_m');
        expect(values(out.opt_step!)).toEqual(values(trainer.optState.step!));
        expectClose(values(out.env_state!), values(trainer.env.state!), 1e-5, 1e-6, 'env_state');
        expect(values(out.env_t!)).toEqual(values(trainer.env.t!));
        expect(values(out.key!)).toEqual(Array.from(Int32Array.from(trainer.host.key)));
        expect(values(out.ep_return!)).toEqual(trainer.host.epReturn);
        expect(values(out.ep_length!)).toEqual(trainer.host.epLength);
        expect(values(out.iterations_done!)).toEqual([it]);
        for (const k of METRICS) {
          const want = k === 'env_steps' ? cfg.env.num_envs * cfg.rollout.steps : row[k];
          const got = values(out[k]!)[0]!;
          if (want === null) expect(got, k).toBeNaN();
          // lr to float32 precision: annealing moves it by 1 part in 976 per iteration.
          else if (k === 'lr') expect(Math.abs(got - want!) / want!, k).toBeLessThan(1e-6);
          else expectClose([got], [want!], 1e-4, 1e-6, `iteration ${it}: ${k}`);
        }
        expect(row.episodes).toBeGreaterThan(0);
        dispose(state);
        state = Object.fromEntries(Object.keys(INIT.outputs).map((k) => [k, out[k]!]));
        tf.dispose(METRICS.map((k) => out[k]!));
      }
      dispose(state, hyper, initParamValues, trainer.params, trainer.optState, trainer.env);
      key.dispose();
    });
});
