/**
 * GRPO's KL penalty in pipelines (update.kl_coef, graphs/algorithms/grpo-kl-cartpole.loss.graph.json):
 * the loss against hand-computed values on a tiny batch, the driver's wiring of the reference
 * policy, and the shipped grpo-kl-cartpole pipeline.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGraph } from '../../../compiler/frontend/load.ts';
import type { TensorMap } from '../../../runtime/interpreter.ts';
import { loadPipeline, loadPipelineGraphs } from '../../../runtime/pipeline/config.ts';
import { Trainer } from '../../../runtime/pipeline/driver.ts';
import { makeProgram, syncProgram, type Program } from '../../../runtime/pipeline/program.ts';
import { loom } from '../../helpers/cli.ts';
import { loomErr } from '../../helpers/loom-error.ts';
import { G, tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('grpo-kl-cartpole loss graph', () => {
  // All params zero: the logits are 0, so pi_theta(a) = 0.5 for both actions and V = 0.
  const g = loadGraph(G('algorithms/grpo-kl-cartpole.loss.graph.json'));
  const loss = makeProgram(g);
  const params: TensorMap = Object.fromEntries(g.params.map((p) => [p.name, tf.zeros(p.type.shape as number[])]));
  const actions = [0, 1, 1, 0];
  const adv = [1, -0.5, 2, 0.25];
  const ret = [0.3, -0.2, 0.1, 0.4];
  const piRef = [0.25, 0.5, 0.8, 0.1];
  const run = (beta: number) => {
    const out = loss(
      {
        obs: tf.tensor([[0.1, -0.2, 0.03, 0.5], [-0.4, 0.3, 0.1, -0.2], [0.2, 0.2, -0.1, 0.0], [0.0, -0.5, 0.05, 0.3]]),
        actions: tf.tensor(actions, [4], 'int32'),
        logp_old: tf.fill([4], Math.log(0.5)),
        advantages: tf.tensor(adv),
        returns: tf.tensor(ret),
        values_old: tf.zeros([4]),
        clip_coef: tf.scalar(0.2),
        ent_coef: tf.scalar(0.01),
        vf_coef: tf.scalar(0.5),
        norm_adv: tf.scalar(0),
        clip_vloss: tf.scalar(1),
        logp_ref: tf.tensor(piRef.map(Math.log)),
        kl_coef: tf.scalar(beta),
      },
      params,
    );
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v.dataSync())]));
  };
  // x = pi_ref / pi_theta = [0.5, 1, 1.6, 0.2]; D = x - ln x - 1 (spec B.6: x = 0.5 gives 0.193147).
  const x = piRef.map((p) => p / 0.5);
  const D = x.map((v) => v - Math.log(v) - 1);
  const meanD = D.reduce((a, b) => a + b, 0) / 4;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

  it('adds exactly beta * mean(x - log x - 1) to the PPO loss', () => {
    expect(D[0]).toBeCloseTo(0.193147, 6);
    const base = run(0);
    const withKl = run(0.04);
    // Ratio 1: pg = -mean(A); v = 0.5 mean(R^2) (V = V_old = 0); entropy ln 2.
    const ppo = -mean(adv) - 0.01 * Math.log(2) + 0.5 * 0.5 * mean(ret.map((r) => r * r));
    expect(base.loss![0]).toBeCloseTo(ppo, 6);
    expect(withKl.kl![0]).toBeCloseTo(meanD, 6);
    expect(withKl.loss![0]).toBeCloseTo(ppo + 0.04 * meanD, 6);
    expect(withKl.loss![0]! - base.loss![0]!).toBeCloseTo(0.04 * meanD, 6);
    for (const k of ['pg_loss', 'v_loss', 'entropy', 'approx_kl', 'clipfrac']) expect(withKl[k], k).toEqual(base[k]);
  });

  it('adds beta * d mean(D) / d theta to the gradient (the logit bias, by hand)', () => {
    // d log pi(a) / d b_k = [a = k] - 0.5 and dD/d log pi = 1 - x, so d mean(D) / d b_k = mean((1 - x)([a = k] - 0.5)).
    const want = [0, 1].map((k) => mean(x.map((v, i) => (1 - v) * ((actions[i] === k ? 1 : 0) - 0.5))));
    const base = run(0).grad__agent__actor_b3!;
    const withKl = run(0.04).grad__agent__actor_b3!;
    want.forEach((w, k) => expect(withKl[k]! - base[k]!).toBeCloseTo(0.04 * w, 6));
    expect(Math.abs(want[0]!)).toBeGreaterThan(0.01);
  });
});

describe('update.kl_coef in the driver', () => {
  const grpoKl = (over: Record<string, unknown> = {}) =>
    tiny({ algorithm: 'grpo', group: { size: 2, horizon: 2 }, loss: G('algorithms/grpo-kl-cartpole.loss.graph.json'), update: { epochs: 2, minibatches: 2, kl_coef: 0.04 }, ...over });

  it('gives the loss kl_coef and the log-probs of the policy that sampled the rollout as logp_ref', () => {
    const t = new Trainer(grpoKl());
    t.init();
    const calls: Record<string, Float32Array>[] = [];
    const slot = t as unknown as Record<string, Program>;
    const inner = slot.loss!;
    slot.loss = syncProgram((inputs, p) => {
      calls.push(Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, Float32Array.from(v.dataSync())])));
      return inner(inputs, p);
    });
    t.iterate();
    expect(calls).toHaveLength(4);
    for (const c of calls) {
      expect(c.kl_coef![0]).toBeCloseTo(0.04, 7);
      expect(c.logp_ref).toEqual(c.logp_old);
    }
    t.dispose();
  });

  it('refuses kl_coef > 0 with a loss graph that has no KL penalty, at /update/kl_coef', () => {
    const cfg = tiny({ update: { epochs: 1, minibatches: 1, kl_coef: 0.04 } });
    const e = loomErr(() => loadPipelineGraphs(cfg));
    expect(e.info.code).toBe('E_SCHEMA');
    expect(e.info.pointer).toBe('/update/kl_coef');
    expect(e.info.message).toMatch(/no input "logp_ref" or "kl_coef"/);
    // kl_coef 0 (the default) runs any loss graph.
    expect(() => loadPipelineGraphs(tiny())).not.toThrow();
  });
});

describe('graphs/pipelines/grpo-kl-cartpole.json', () => {
  const file = G('pipelines/grpo-kl-cartpole.json');

  it('is GRPO with beta 0.04 over grpo-cartpole, whose update settings are GRPO\'s own', () => {
    const c = loadPipeline(file);
    expect(c.algorithm).toBe('grpo');
    expect(c.update.kl_coef).toBe(0.04);
    for (const env of ['cartpole', 'acrobot', 'pendulum']) {
      const u = loadPipeline(G(`pipelines/grpo-${env}.json`)).update;
      const ppo = loadPipeline(G(`pipelines/ppo-${env}.json`)).update;
      expect({ env, ...u }).toEqual({ env, ...ppo, norm_adv: false, ent_coef: 0, vf_coef: 0, kl_coef: 0 });
    }
    expect(JSON.parse(readFileSync(file, 'utf8')).doc).toMatch(/iterative/);
  });

  it('passes loom check and trains a few iterations', async () => {
    const check = await loom('check', file);
    expect(check.code, check.err).toBe(0);
    const out = mkdtempSync(join(tmpdir(), 'loom-grpo-kl-'));
    const r = await loom('train', file, '--steps', '8192', '--set', 'eval.episodes=0', '--out', out);
    expect(r.code, r.err).toBe(0);
    const rows = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { loss: number; pg_loss: number });
    expect(rows).toHaveLength(2);
    // The KL penalty is >= 0 and the only term beyond pg_loss (vf and entropy coefficients are 0).
    for (const row of rows) expect(row.loss - row.pg_loss).toBeGreaterThanOrEqual(0);
  });
});
