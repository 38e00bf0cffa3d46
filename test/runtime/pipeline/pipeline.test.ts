import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGraph } from '../../../compiler/frontend/load.ts';
import { LoomError } from '../../../compiler/errors.ts';
import { initParams, interpret } from '../../../runtime/interpreter.ts';
import { loadPipeline, parsePipeline, withEnv } from '../../../runtime/pipeline/config.ts';
import { Trainer, permutation, train } from '../../../runtime/pipeline/driver.ts';
import { readCheckpoint } from '../../../runtime/pipeline/checkpoint.ts';
import { tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const G = (p: string) => join(__dirname, '../../../graphs', p);
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-pipe-'));


describe('gae graph', () => {
  it('matches hand-computed advantages and returns, cutting at dones', () => {
    const g = loadGraph(G('algorithms/gae.graph.json'));
    // T = 3, N = 1, gamma = 0.5, lambda = 0.5; done after step 1.
    // delta2 = 1 + 0.5*4 - 3 = 0; delta1 = 1 + 0 - 2 = -1; delta0 = 1 + 0.5*2 - 1 = 1
    // A2 = 0; A1 = -1 + 0 = -1 (cut); A0 = 1 + 0.25*(-1) = 0.75
    const out = interpret(g, {
      rewards: tf.tensor([[1], [1], [1]]),
      values: tf.tensor([[1], [2], [3]]),
      next_value: tf.tensor([4]),
      dones: tf.tensor([[0], [1], [0]]),
      gamma: tf.scalar(0.5),
      lambda: tf.scalar(0.5),
    }, {});
    expect(Array.from(out.advantages!.dataSync())).toEqual([0.75, -1, 0]);
    expect(Array.from(out.returns!.dataSync())).toEqual([1.75, 1, 3]);
  });
});

describe('ppo loss graph vs a plain-JS reference', () => {
  it('matches ratio, clipped surrogate, clipped value loss, entropy, kl and clipfrac', () => {
    const g = loadGraph(G('algorithms/ppo-cartpole.loss.graph.json'));
    const params = initParams(g, 5);
    // Make the policy head non-trivial so ratios move away from 1.
    const w3 = params['agent/actor_w3']!;
    params['agent/actor_w3'] = tf.mul(tf.randomNormal(w3.shape, 0, 1, 'float32', 9), 1);
    w3.dispose();
    const obs = [[0.1, -0.2, 0.03, 0.5], [-0.4, 0.3, 0.1, -0.2], [0.2, 0.2, -0.1, 0.0], [0.0, -0.5, 0.05, 0.3]];
    const actions = [0, 1, 1, 0];
    const logpOld = [-0.5, -0.9, -0.7, -0.6];
    const adv = [1.0, -0.5, 2.0, 0.3];
    const ret = [1.2, 0.4, -0.3, 0.9];
    const vOld = [0.1, 0.5, 0.0, 2.0];
    const out = interpret(g, {
      obs: tf.tensor(obs), actions: tf.tensor(actions, [4], 'int32'), logp_old: tf.tensor(logpOld), advantages: tf.tensor(adv),
      returns: tf.tensor(ret), values_old: tf.tensor(vOld), clip_coef: tf.scalar(0.2), ent_coef: tf.scalar(0.01), vf_coef: tf.scalar(0.5),
      norm_adv: tf.scalar(1), clip_vloss: tf.scalar(1),
    }, params);
    // Independent reference: forward the MLPs in JS.
    const P = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, { d: Array.from(v.dataSync()), s: v.shape }]));
    const dense = (x: number[], w: string, b: string, act: boolean) => {
      const W = P[w]!, B = P[b]!;
      const [I, O] = W.s as [number, number];
      return Array.from({ length: O }, (_, o) => {
        let s = B.d[o]!;
        for (let i = 0; i < I; i++) s += x[i]! * W.d[i * O + o]!;
        return act ? Math.tanh(s) : s;
      });
    };
    const net = (x: number[], p: string) => dense(dense(dense(x, `agent/${p}_w1`, `agent/${p}_b1`, true), `agent/${p}_w2`, `agent/${p}_b2`, true), `agent/${p}_w3`, `agent/${p}_b3`, false);
    const m = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const mu = m(adv);
    const sd = Math.sqrt(adv.reduce((s, a) => s + (a - mu) ** 2, 0) / (adv.length - 1));
    const an = adv.map((a) => (a - mu) / (sd + 1e-8));
    const pg: number[] = [], vl: number[] = [], ent: number[] = [], kl: number[] = [], cf: number[] = [];
    obs.forEach((o, i) => {
      const lg = net(o, 'actor');
      const lse = Math.log(lg.reduce((s, z) => s + Math.exp(z), 0));
      const lp = lg.map((z) => z - lse);
      ent.push(-lp.reduce((s, l) => s + Math.exp(l) * l, 0));
      const r = Math.exp(lp[actions[i]!]! - logpOld[i]!);
      pg.push(Math.max(-an[i]! * r, -an[i]! * Math.min(Math.max(r, 0.8), 1.2)));
      kl.push(r - 1 - Math.log(r));
      cf.push(Math.abs(r - 1) > 0.2 ? 1 : 0);
      const v = net(o, 'critic')[0]!;
      const vc = vOld[i]! + Math.min(Math.max(v - vOld[i]!, -0.2), 0.2);
      vl.push(Math.max((v - ret[i]!) ** 2, (vc - ret[i]!) ** 2));
    });
    const want = { pg_loss: m(pg), v_loss: 0.5 * m(vl), entropy: m(ent), approx_kl: m(kl), clipfrac: m(cf) };
    const loss = want.pg_loss - 0.01 * want.entropy + 0.5 * want.v_loss;
    for (const [k, v] of Object.entries(want)) expect(out[k]!.dataSync()[0]).toBeCloseTo(v, 4);
    expect(out.loss!.dataSync()[0]).toBeCloseTo(loss, 4);
    expect(want.clipfrac).toBeGreaterThan(0); // the batch exercises the clipping branch
    // The gradient of the value-head bias: d/db [0.5 * vf * mean(max(...))] only through V.
    expect(out['grad__agent__critic_b3']!.shape).toEqual([1]);
    tf.dispose([...Object.values(out), ...Object.values(params)]);
  });
});

describe('adam and clip-grad-norm graphs', () => {
  it('adam matches torch.optim.Adam arithmetic for two steps', () => {
    const g = loadGraph(G('optimizers/adam.graph.json'));
    let p = [1.0, -2.0], m = [0, 0], v = [0, 0];
    const grads = [[0.5, -1.0], [0.1, 0.3]];
    let state: Record<string, tf.Tensor> = { params: tf.tensor(p), m: tf.tensor(m), v: tf.tensor(v), step: tf.scalar(0, "int32") };
    for (let s = 0; s < 2; s++) {
      const out = interpret(g, { ...state, grads: tf.tensor(grads[s]!), lr: tf.scalar(0.1), beta1: tf.scalar(0.9), beta2: tf.scalar(0.999), eps: tf.scalar(1e-5) }, {});
      const t = s + 1;
      m = m.map((x, i) => 0.9 * x + 0.1 * grads[s]![i]!);
      v = v.map((x, i) => 0.999 * x + 0.001 * grads[s]![i]! ** 2);
      p = p.map((x, i) => x - (0.1 / (1 - 0.9 ** t)) * (m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - 0.999 ** t) + 1e-5)));
      Array.from(out.params!.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(p[i]!, 5));
      expect(out.step!.dataSync()[0]).toBe(t);
      tf.dispose(Object.values(state));
      state = { params: out.params!, m: out.m!, v: out.v!, step: out.step! };
    }
    tf.dispose(Object.values(state));
  });
  it('clip-grad-norm scales to max_norm only when above it', () => {
    const g = loadGraph(G('optimizers/clip-grad-norm.graph.json'));
    const big = interpret(g, { grads: tf.tensor([3, 4]), max_norm: tf.scalar(0.5) }, {});
    expect(big.norm!.dataSync()[0]).toBeCloseTo(5, 5);
    Array.from(big.grads!.dataSync()).forEach((x, i) => expect(x).toBeCloseTo([0.3, 0.4][i]! * (5 / (5 + 1e-6)), 5));
    const small = interpret(g, { grads: tf.tensor([0.03, 0.04]), max_norm: tf.scalar(0.5) }, {});
    expect(Array.from(small.grads!.dataSync())).toEqual([Math.fround(0.03), Math.fround(0.04)]);
  });
});

describe('pipeline files', () => {
  it('validates with file and JSON pointer', () => {
    const bad = { ...JSON.parse(readFileSync(G('pipelines/ppo-cartpole.json'), 'utf8')), update: { epochs: 0 } };
    try {
      parsePipeline(bad, 'p.json');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(LoomError);
      expect((e as LoomError).info.pointer).toBe('/update/epochs');
      expect((e as LoomError).info.file).toBe('p.json');
    }
    expect(() => tiny({ update: { minibatches: 3 } })).toThrow(/divisible/);
  });
  it('ships valid pipelines', () => {
    for (const f of readdirSync(G('pipelines')).filter((f) => f.endsWith('.json'))) expect(() => loadPipeline(G('pipelines/' + f)), f).not.toThrow();
  });

  it('withEnv swaps in a shipped env by name, and rejects an unknown one', () => {
    const c = withEnv(tiny(), 'acrobot');
    expect(c.env).toMatchObject({ name: 'Acrobot-v1', step: G('envs/acrobot.step.graph.json'), reset: G('envs/acrobot.reset.graph.json'), num_envs: 2 });
    expect(tiny().env.step).toBe(G('envs/cartpole.step.graph.json'));
    expect(() => withEnv(tiny(), 'nope')).toThrow(/unknown env "nope"/);
  });

  describe('extends', () => {
    // base/ holds the base pipeline, whose graph paths are relative to base/; the variant lives one level up.
    const setup = () => {
      const dir = tmp();
      mkdirSync(join(dir, 'base'));
      const base = JSON.parse(readFileSync(G('pipelines/ppo-cartpole.json'), 'utf8')) as Record<string, Record<string, unknown>>;
      base.env!.step = join('..', 'other', 'cartpole.step.graph.json');
      writeFileSync(join(dir, 'base', 'ppo.json'), JSON.stringify(base));
      return dir;
    };
    it('merges objects key by key, replaces the rest, and resolves paths against the file that names them', () => {
      const dir = setup();
      writeFileSync(join(dir, 'v.json'), JSON.stringify({ extends: 'base/ppo.json', pipeline: 'v', loss: 'my-loss.json', update: { epochs: 7 }, optimizer: { name: 'alphagrad', hp: { alpha: 2 } } }));
      const c = loadPipeline(join(dir, 'v.json'));
      expect(c.pipeline).toBe('v');
      expect(c.env.step).toBe(join(dir, 'other', 'cartpole.step.graph.json'));
      expect(c.env.reset).toBe(join(dir, 'envs', 'cartpole.reset.graph.json')); // the base's ../envs/, from base/
      expect(c.loss).toBe(join(dir, 'my-loss.json'));
      expect(c.update.epochs).toBe(7);
      expect(c.update.minibatches).toBe(4); // from the base
      expect(c.optimizer).toMatchObject({ name: 'alphagrad', lr: 2.5e-4, hp: { alpha: 2 } });
      expect(c.total_steps).toBe(500000);
    });
    it('reports a missing base, a cycle and an invalid merge at the variant file', () => {
      const dir = setup();
      const err = (json: unknown, name = 'v.json') => {
        writeFileSync(join(dir, name), JSON.stringify(json));
        try {
          loadPipeline(join(dir, name));
        } catch (e) {
          expect(e).toBeInstanceOf(LoomError);
          return (e as LoomError).info;
        }
        return expect.unreachable();
      };
      expect(err({ extends: 'nope.json' })).toMatchObject({ file: join(dir, 'v.json'), pointer: '/extends', message: expect.stringMatching(/does not exist/) });
      writeFileSync(join(dir, 'a.json'), JSON.stringify({ extends: 'b.json' }));
      expect(err({ extends: 'a.json' }, 'b.json')).toMatchObject({ pointer: '/extends', message: expect.stringMatching(/cycle/) });
      expect(err({ extends: 'base/ppo.json', update: { epochs: 0 } })).toMatchObject({ file: join(dir, 'v.json'), pointer: '/update/epochs' });
    });
  });
});

describe('driver', () => {
  it('permutation is a seeded permutation', () => {
    const p = Array.from(permutation([1, 2], 50));
    expect([...p].sort((a, b) => a - b)).toEqual([...Array(50).keys()]);
    expect(Array.from(permutation([1, 2], 50))).toEqual(p);
    expect(Array.from(permutation([1, 3], 50))).not.toEqual(p);
  });

  it('does not leak tensors across iterations', () => {
    const t = new Trainer(tiny());
    t.init();
    t.iterate();
    const n1 = tf.memory().numTensors;
    t.iterate();
    const n2 = tf.memory().numTensors;
    t.iterate();
    expect(tf.memory().numTensors).toBe(n1);
    expect(n2).toBe(n1);
    t.dispose();
  });

  it('resume is bit-identical: 4 iterations straight == 2 + resume + 2', async () => {
    const a = await train(tiny(), { outDir: tmp() });
    expect(a.iterations).toBe(4);
    const dir = tmp();
    const h1 = await train(tiny(), { outDir: dir, maxIterations: 2 });
    expect(h1.stopped).toBe(true);
    tf.dispose(Object.values(h1.params));
    const b = await train(tiny(), { outDir: dir, resume: true });
    expect(b.iterations).toBe(4);
    for (const k of Object.keys(a.params)) expect(Array.from(b.params[k]!.dataSync())).toEqual(Array.from(a.params[k]!.dataSync()));
    const strip = (ms: typeof a.metrics) => ms.map(({ steps_per_sec: _s, ...r }) => r);
    expect(strip(b.metrics)).toEqual(strip(a.metrics));
    expect(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(4);
    expect(existsSync(join(dir, 'learning-curve.svg'))).toBe(true);
    tf.dispose([...Object.values(a.params), ...Object.values(b.params)]);
  });

  it('stops with E_NUMERIC naming the iteration and the last good checkpoint', async () => {
    const dir = tmp();
    tf.dispose(Object.values((await train(tiny(), { outDir: dir, maxIterations: 1 })).params));
    // Resuming with an absurd lr (forced: it differs from run.json) blows the params up to Inf in the next iteration.
    const cfg = tiny({ optimizer: { name: 'adam', lr: 1e38, anneal_lr: false } });
    let err: unknown;
    try {
      await train(cfg, { outDir: dir, resume: true, force: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoomError);
    expect((err as LoomError).code).toBe('E_NUMERIC');
    expect((err as LoomError).message).toMatch(/at iteration 2/);
    expect((err as LoomError).info.hint).toContain(join(dir, 'checkpoint.json'));
  });

  it('reports a corrupt checkpoint clearly', async () => {
    const dir = tmp();
    tf.dispose(Object.values((await train(tiny(), { outDir: dir, maxIterations: 1 })).params));
    const f = join(dir, 'checkpoint.json');
    const text = readFileSync(f, 'utf8');
    writeFileSync(f, text.slice(0, 100) + (text[100] === 'A' ? 'B' : 'A') + text.slice(101));
    expect(() => readCheckpoint(f)).toThrow(/corrupt/);
    writeFileSync(f, text.slice(0, text.length / 2));
    await expect(train(tiny(), { outDir: dir, resume: true })).rejects.toThrow(/corrupt/);
  });
});
