/** The Huber penalty graph and the PPO loss with a Huber value loss (the hybrid-grpo-v2 pipelines' loss). */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { loadWithHp, runPlain } from '../helpers/graph-run.ts';

let startTensors = 0;
beforeAll(async () => {
  await tf.setBackend('cpu');
  startTensors = tf.memory().numTensors;
});
afterAll(() => expect(tf.memory().numTensors).toBe(startTensors));

const HUBER = resolve('graphs/algorithms/huber.graph.json');

describe('huber.graph.json', () => {
  it('is 0.5 x^2 inside delta and delta (|x| - delta / 2) outside', () => {
    const x = [-2.5, -1, -0.5, 0, 0.3, 1, 1.7];
    // delta 1, by hand: 2.5 - 0.5, 0.5, 0.125, 0, 0.045, 0.5, 1.7 - 0.5
    expect(runPlain(loadWithHp(HUBER), { x }).huber!.map((v) => +v.toFixed(6))).toEqual([2, 0.5, 0.125, 0, 0.045, 0.5, 1.2]);
    // delta 2: 0.5 x^2 up to |x| = 2, then 2 (|x| - 1)
    expect(runPlain(loadWithHp(HUBER, { delta: 2 }), { x: [-3, 1.5, 2, 4] }).huber!.map((v) => +v.toFixed(6))).toEqual([4, 1.125, 2, 6]);
  });
});

describe('ppo-huber-pendulum.loss: PPO loss with a Huber value loss', () => {
  const LOSS = resolve('graphs/algorithms/ppo-huber-pendulum.loss.graph.json');
  const g = loadGraph(LOSS);
  const ppo = loadGraph(resolve('graphs/algorithms/ppo-pendulum.loss.graph.json'));
  const act = loadGraph(resolve('graphs/algorithms/ppo-pendulum.act.graph.json'));
  const obs = [[0.9, 0.43, 0.5], [-0.2, 0.98, -1.1], [0.6, -0.8, 2.0], [1, 0, 0], [-0.7, -0.71, 0.3], [0.1, 0.99, -3]];
  const B = obs.length;
  // Value errors V - R on both sides of the Huber threshold, and V - V_old inside and outside the clip (0.2).
  const err = [2.5, 0.4, -0.3, -1.8, -0.05, 1.3];
  const dOld = [0.5, 0.1, -0.6, 0.0, 0.3, -0.1];
  const hub = (x: number) => (Math.abs(x) <= 1 ? 0.5 * x * x : Math.abs(x) - 0.5);
  const clip = (x: number, c: number) => Math.max(-c, Math.min(c, x));

  function setup() {
    const params = initParams(g, 5);
    const key = tf.tensor1d([1, 2], 'int32');
    const o = tf.tensor(obs);
    const a = interpret(act, { obs: o, key }, params);
    const V = Array.from(a.value!.dataSync());
    tf.dispose([key, o, ...Object.values(a)]);
    const inputs = (): TensorMap => ({
      obs: tf.tensor(obs),
      actions: tf.tensor([[0.3], [-1.2], [0.8], [0], [1.9], [-0.4]]),
      logp_old: tf.tensor([-1.0, -1.5, -0.8, -0.9, -2.6, -1.1]),
      advantages: tf.tensor([1.0, -0.5, 2.0, 0.3, -1.2, 0.4]),
      returns: tf.tensor(V.map((v, i) => v - err[i]!)),
      values_old: tf.tensor(V.map((v, i) => v - dOld[i]!)),
      clip_coef: tf.scalar(0.2),
      ent_coef: tf.scalar(0.01),
      vf_coef: tf.scalar(0.5),
      norm_adv: tf.scalar(1),
      clip_vloss: tf.scalar(1),
    });
    return { params, V, inputs };
  }
  const run = (graph: typeof g, inputs: TensorMap, params: TensorMap) => {
    const out = interpret(graph, inputs, params);
    const res = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v.dataSync())]));
    tf.dispose([...Object.values(inputs), ...Object.values(out)]);
    return res;
  };

  it('v_loss = 0.5 mean(max(huber(V - R), huber(V_clip - R))); the policy terms are PPO\'s', () => {
    const { params, V, inputs } = setup();
    const o = run(g, inputs(), params);
    const p = run(ppo, inputs(), params);
    // Reference from the value predictions: V_clip - R = (V - R) - (V - V_old) + clip(V - V_old, 0.2).
    const terms = err.map((e, i) => Math.max(hub(e), hub(e - dOld[i]! + clip(dOld[i]!, 0.2))));
    const want = (0.5 * terms.reduce((s, x) => s + x, 0)) / B;
    expect(o.v_loss![0]).toBeCloseTo(want, 5);
    // The squared-error loss on the same batch is much larger (errors up to 2.5): the test tells them apart.
    expect(p.v_loss![0]! - want).toBeGreaterThan(0.3);
    for (const k of ['pg_loss', 'entropy', 'approx_kl', 'clipfrac']) expect(o[k]![0], k).toBeCloseTo(p[k]![0]!, 6);
    expect(o.loss![0]).toBeCloseTo(p.loss![0]! - 0.5 * p.v_loss![0]! + 0.5 * want, 5);
    // Without clip_vloss: 0.5 mean(huber(V - R)).
    const noClip = inputs();
    noClip.clip_vloss!.dispose();
    noClip.clip_vloss = tf.scalar(0);
    const plain = run(g, noClip, params);
    expect(plain.v_loss![0]).toBeCloseTo((0.5 * err.reduce((s, e) => s + hub(e), 0)) / B, 5);
    expect(V.length).toBe(B);
    tf.dispose(Object.values(params));
  });

  it('its critic gradient matches central finite differences and the hand-derived clip(err, -1, 1) form', () => {
    const { params, inputs } = setup();
    const o = run(g, inputs(), params);
    const lossWith = (name: string, k: number, h: number): number => {
      const orig = params[name]!;
      const v = orig.dataSync().slice();
      v[k] = v[k]! + h;
      const p = { ...params, [name]: tf.tensor(v, orig.shape) };
      const l = run(g, inputs(), p).loss![0]!;
      p[name]!.dispose();
      return l;
    };
    const h = 1e-2; // every error and V - V_old stays more than h from a kink (|x| = 1, the clip edges, the max)
    for (const [name, k] of [['agent/critic_b3', 0], ['agent/critic_w3', 3], ['agent/critic_w1', 4], ['agent/critic_b2', 7]] as const) {
      const fd = (lossWith(name, k, h) - lossWith(name, k, -h)) / (2 * h);
      const grad = o[`grad__${name.replace(/\//g, '__')}`]![k]!;
      expect(Math.abs(grad), name).toBeGreaterThan(1e-3);
      expect(grad, name).toBeCloseTo(fd, 3);
    }
    // d loss / d b3 = vf_coef * 0.5 * mean over rows of the derivative of the larger Huber term w.r.t. V.
    const dV = err.map((e, i) => {
      const ce = e - dOld[i]! + clip(dOld[i]!, 0.2);
      return hub(e) >= hub(ce) ? clip(e, 1) : Math.abs(dOld[i]!) < 0.2 ? clip(ce, 1) : 0;
    });
    expect(o.grad__agent__critic_b3![0]).toBeCloseTo((0.5 * 0.5 * dV.reduce((s, x) => s + x, 0)) / B, 5);
    tf.dispose(Object.values(params));
  });
});
