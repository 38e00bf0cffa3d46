/**
 * PPO-Penalty (graphs/programs/ppo-penalty-cartpole/, graph and pipeline files only): its loss
 * against the surrogate and KL estimate computed here by hand from the agent's logits, its gradient
 * against finite differences, and the adaptive beta against Schulman et al.'s rule, on iterations of
 * the compiled program.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { loadProgram, loadProgramGraphs } from '../../runtime/program/config.ts';
import { uniform } from '../helpers/seeded-uniform.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const LOSS = loadGraph(G('algorithms/ppo-penalty-cartpole.loss.graph.json'));
const AGENT = loadGraph(G('algorithms/agents/cartpole.agent.graph.json'));

const B = 16;
const obs = uniform(B * 4, -1, 1, 3);
const actions = uniform(B, 0, 2, 4).map(Math.floor);
const logpOld = uniform(B, -1.2, -0.3, 5);
const adv = uniform(B, -2, 2, 6);

/** The loss graph's inputs (advantages not normalised, value clipping off) with the agent params and beta. */
function lossInputs(beta: number): TensorMap {
  return {
    obs: tf.tensor(obs, [B, 4]),
    actions: tf.tensor(actions, [B], 'int32'),
    logp_old: tf.tensor(logpOld),
    advantages: tf.tensor(adv),
    returns: tf.zeros([B]),
    values_old: tf.zeros([B]),
    clip_coef: tf.scalar(0.2),
    ent_coef: tf.scalar(0),
    vf_coef: tf.scalar(0),
    norm_adv: tf.scalar(0),
    clip_vloss: tf.scalar(0),
    kl_beta: tf.scalar(beta),
  };
}

describe('PPO-Penalty loss', () => {
  const params = initParams(LOSS, 11);
  const agentParams = Object.fromEntries(Object.entries(params).map(([k, v]) => [k.replace(/^agent\//, ''), v]));
  const logits = interpret(AGENT, { obs: tf.tensor(obs, [B, 4]) }, agentParams).logits!.arraySync() as number[][];
  /** -mean(A r) + beta mean((r - 1) - log r), from the agent's logits, by hand. */
  const handLoss = (beta: number): number => {
    let surrogate = 0;
    let kl = 0;
    logits.forEach((row, i) => {
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
      const logr = row[actions[i]!]! - lse - logpOld[i]!;
      const r = Math.exp(logr);
      surrogate += -adv[i]! * r;
      kl += r - 1 - logr;
    });
    return surrogate / B + (beta * kl) / B;
  };

  for (const beta of [0, 0.5, 3])
    it(`is the unclipped surrogate plus beta times the k3 KL estimate (beta ${beta})`, () => {
      const out = interpret(LOSS, lossInputs(beta), params);
      expect(out.pg_loss!.dataSync()[0]).toBeCloseTo(handLoss(beta), 5);
      expect(out.loss!.dataSync()[0]).toBeCloseTo(handLoss(beta), 5);
    });

  it('has the gradient finite differences give, through the penalty', () => {
    const beta = 3;
    const name = 'agent/actor_b3';
    const out = compileProgram(LOSS).run(lossInputs(beta), params);
    const g = Array.from(out[`grad__${name.replace(/\//g, '__')}`]!.dataSync());
    const base = Array.from(params[name]!.dataSync());
    const h = 1e-2;
    base.forEach((_, j) => {
      const at = (d: number) => {
        const b = [...base];
        b[j]! += d;
        return interpret(LOSS, lossInputs(beta), { ...params, [name]: tf.tensor(b) }).loss!.dataSync()[0]!;
      };
      expect(g[j]!).toBeCloseTo((at(h) - at(-h)) / (2 * h), 3);
    });
  });
});

describe('PPO-Penalty program: beta adapts once per iteration by the paper rule, within its bounds', () => {
  const cfg = loadProgram(G('programs/ppo-penalty-cartpole/program.json'));
  const graphs = loadProgramGraphs(cfg);
  const init = compileProgram(graphs.init);
  const iteration = compileProgram(graphs.iteration);

  /** One iteration from the seed's initial state with beta and the hyperparameters overridden. */
  function iterate(beta: number, hyper: Record<string, number>): TensorMap {
    const h: Record<string, number> = { ...cfg.hyper, ...hyper, total_steps: cfg.total_steps };
    const initIns: TensorMap = { key: tf.tensor([0, 1], [2], 'int32') };
    for (const i of graphs.init.inputs) if (i.name !== 'key') initIns[i.name] = tf.scalar(h[i.name]!);
    const state = init.run(initIns, initParams(graphs.init, 1));
    state.kl_beta = tf.scalar(beta);
    const ins: TensorMap = {};
    for (const i of graphs.iteration.inputs) ins[i.name] = state[i.name] ?? tf.scalar(h[i.name]!);
    return iteration.run(ins, {});
  }

  it('halves below kl_target / 1.5, doubles above kl_target * 1.5, keeps it between, clamps to [min, max]', () => {
    const beta = 0.5;
    const probe = iterate(beta, {});
    const d = probe.approx_kl!.dataSync()[0]!;
    expect(d).toBeGreaterThan(0);
    expect(probe.kl_beta_used!.dataSync()[0]).toBe(beta);
    // kl_target only moves the thresholds: the iteration's KL is the same in every case.
    const cases: [Record<string, number>, number][] = [
      [{ kl_target: d * 10 }, beta / 2],
      [{ kl_target: d / 10 }, beta * 2],
      [{ kl_target: d }, beta],
      [{ kl_target: d * 10, kl_beta_min: 0.4 }, 0.4],
      [{ kl_target: d / 10, kl_beta_max: 0.75 }, 0.75],
    ];
    for (const [hyper, want] of cases) {
      const out = iterate(beta, hyper);
      expect(out.approx_kl!.dataSync()[0]).toBe(d);
      expect(out.kl_beta!.dataSync()[0]).toBeCloseTo(want, 6);
    }
  });

  it('carries beta in its state: init sets it from kl_beta_init, and the iteration reads it', () => {
    expect(graphs.state.kl_beta).toEqual({ dtype: 'float32', shape: [] });
    const a = iterate(0, { kl_target: 1 });
    const b = iterate(50, { kl_target: 1 });
    // A larger penalty pulls the policy's update towards the old one.
    expect(b.approx_kl!.dataSync()[0]).toBeLessThan(a.approx_kl!.dataSync()[0]!);
  });
});
