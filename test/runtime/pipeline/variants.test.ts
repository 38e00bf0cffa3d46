/** Driver variants: optimizer by name (AlphaGrad with per-tensor segments, clip_grad) and AM-PPO advantage modulation. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { TensorMap } from '../../../runtime/interpreter.ts';
import { loadPipeline, parseOverride, parsePipeline } from '../../../runtime/pipeline/config.ts';
import { Trainer, gradOutput, train } from '../../../runtime/pipeline/driver.ts';
import { readCheckpoint } from '../../../runtime/pipeline/checkpoint.ts';
import type { Program } from '../../../runtime/pipeline/program.ts';
import { tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const G = (p: string) => join(__dirname, '../../../graphs', p);
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-var-'));


type Captured = { inputs: Record<string, Float32Array | Int32Array>; outputs: Record<string, Float32Array | Int32Array> };
/** Replaces a private program of the trainer with a wrapper that records copies of its inputs and outputs. */
function spy(t: Trainer, field: string): Captured[] {
  const calls: Captured[] = [];
  const slot = t as unknown as Record<string, Program>;
  const inner = slot[field]!;
  const copy = (m: TensorMap) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.dataSync().slice()])) as Captured['inputs'];
  const run = (inputs: TensorMap, params: TensorMap) => {
    const out = inner(inputs, params);
    calls.push({ inputs: copy(inputs), outputs: copy(out) });
    return out;
  };
  slot[field] = Object.assign(run, { runAsync: async (inputs: TensorMap, params: TensorMap) => run(inputs, params) });
  return calls;
}

const norm2 = (xs: ArrayLike<number>) => Math.sqrt(Array.from(xs).reduce((s, x) => s + x * x, 0));
const std1 = (xs: ArrayLike<number>) => {
  const a = Array.from(xs);
  const m = a.reduce((s, x) => s + x, 0) / a.length;
  return Math.sqrt(a.reduce((s, x) => s + (x - m) ** 2, 0) / (a.length - 1));
};

describe('grad_clip_frac (spec am-ppo A6)', () => {
  it('is the fraction of optimizer steps whose global grad norm exceeded max_grad_norm', () => {
    // clip_grad off: the steps use the raw gradient, so max_grad_norm changes the logged fraction only.
    const run = (maxNorm: number) => {
      const t = new Trainer(tiny({ optimizer: { name: 'adam', lr: 0.01, anneal_lr: false, clip_grad: false }, update: { epochs: 2, minibatches: 2, max_grad_norm: maxNorm }, total_steps: 16 }));
      t.init();
      const clips = spy(t, 'clip');
      const m = t.iterate();
      t.dispose();
      return { m, norms: clips.map((c) => c.outputs.norm![0]!) };
    };
    const first = run(1e9);
    expect(first.norms).toHaveLength(4);
    expect(first.m.grad_clip_frac).toBe(0);
    const sorted = [...first.norms].sort((a, b) => a - b);
    const threshold = (sorted[1]! + sorted[2]!) / 2;
    const second = run(threshold);
    expect(second.norms).toEqual(first.norms);
    expect(second.m.grad_clip_frac).toBe(first.norms.filter((n) => n > threshold).length / 4);
    expect(second.m.grad_clip_frac).toBe(0.5);
  });
});

describe('optimizer by name: alphagrad', () => {
  // One minibatch step per run: the reference kernels make AlphaGrad's segment sum slow on the CPU backend.
  const cfg = (clip: boolean) =>
    tiny({ optimizer: { name: 'alphagrad', lr: 0.01, anneal_lr: false, hp: { alpha: 3 }, clip_grad: clip }, update: { epochs: 1, minibatches: 1, max_grad_norm: 1e-6 }, total_steps: 16 });

  for (const clip of [false, true])
    it(`normalises each param tensor by its own norm (clip_grad ${clip})`, () => {
      const t = new Trainer(cfg(clip));
      t.init();
      const before = Object.fromEntries(t.paramNames.map((p) => [p, t.params[p]!.dataSync().slice()]));
      const losses = spy(t, 'loss');
      t.iterate();
      expect(losses).toHaveLength(1);
      const grads = t.paramNames.map((p) => losses[0]!.outputs[gradOutput(p)]!);
      // clip-grad-norm: scale = max_norm / (total norm + 1e-6) when the norm exceeds max_norm.
      const total = Math.sqrt(grads.reduce((s, g) => s + norm2(g) ** 2, 0));
      const scale = clip && total > 1e-6 ? 1e-6 / (total + 1e-6) : 1;
      let maxErr = 0;
      t.paramNames.forEach((p, i) => {
        const g = Array.from(grads[i]!, (x) => x * scale);
        const n = norm2(g);
        const after = t.params[p]!.dataSync();
        g.forEach((x, j) => {
          const want = before[p]![j]! - 0.01 * Math.tanh((3 * x) / (n + 1e-8));
          maxErr = Math.max(maxErr, Math.abs(after[j]! - want));
        });
      });
      expect(maxErr).toBeLessThan(2e-6);
      // The clipping branch is exercised: the reference scale is far from 1 (and eps = 1e-8 then matters).
      if (clip) expect(scale).toBeLessThan(1e-3);
      t.dispose();
    });

  it('defaults clip_grad to false for alphagrad without AM-PPO and true otherwise', () => {
    expect(tiny({ optimizer: { name: 'alphagrad', lr: 1e-3 } }).optimizer.clip_grad).toBe(false);
    expect(tiny({ optimizer: { name: 'adam', lr: 1e-3 } }).optimizer.clip_grad).toBe(true);
    expect(tiny({ optimizer: { name: 'alphagrad', lr: 1e-3 }, advantage: { transform: { kind: 'amppo' } } }).optimizer.clip_grad).toBe(true);
  });

  it('rejects an unknown hyperparameter at its pointer', () => {
    const t = () => new Trainer(tiny({ optimizer: { name: 'adam', lr: 1e-3, hp: { nope: 1 } } }));
    expect(t).toThrow(/no hyperparameter "nope"/);
  });
});

/** Spec am-ppo §2.4 in plain JS (float64): the full-batch controller update. */
function amppoUpdateRef(A: ArrayLike<number>, st: { alpha: number; s: number }): { alpha: number; s: number } {
  const eps = 1e-5;
  const N = norm2(A);
  const sigma = std1(A) + eps;
  const alphaHat = 2.0 * ((N + eps) / (sigma + eps)) * (0.1 / (st.s + eps)) ** 0.3;
  const alpha = Math.min(1e12, Math.max(1e-12, 0.9 * st.alpha + 0.1 * alphaHat));
  const sObs = Array.from(A).filter((a) => Math.abs((alpha * a) / (N + eps)) > 1.25).length / A.length;
  return { alpha, s: 0.02 * st.s + 0.98 * sObs };
}
/** Spec am-ppo §2.4 with update = false: frozen alpha, minibatch norm. */
const modulateRef = (A: ArrayLike<number>, alpha: number) => {
  const N = norm2(A);
  return Array.from(A, (a) => Math.abs(a) * 2.0 * Math.tanh((alpha * a) / (N + 1e-5)));
};

describe('AM-PPO transform', () => {
  const amppo = (over: Record<string, unknown> = {}) => tiny({ advantage: { transform: { kind: 'amppo' } }, ...over });

  it('evolves the controller once per iteration from the raw full-batch advantages', () => {
    const t = new Trainer(amppo());
    t.init();
    const updates = spy(t, 'amppoUpdate');
    let ref = { alpha: 1.0, s: 0.1 };
    const alphas: number[] = [];
    for (let k = 0; k < 3; k++) {
      const row = t.iterate();
      expect(updates).toHaveLength(k + 1);
      const A = updates[k]!.inputs.A!;
      expect(A).toHaveLength(16);
      ref = amppoUpdateRef(A, ref);
      expect(row.alpha_ema!).toBeCloseTo(ref.alpha, 3);
      expect(row.s_ema!).toBeCloseTo(ref.s, 5);
      expect(t.host.amppo).toEqual({ alpha_ema: row.alpha_ema, s_ema: row.s_ema });
      alphas.push(row.alpha_ema!);
    }
    expect(new Set(alphas).size).toBe(3);
    t.dispose();
  });

  it('feeds the modulated minibatch advantages to the policy loss and A_mod + V_old as the value target', () => {
    const t = new Trainer(amppo());
    t.init();
    const mods = spy(t, 'amppoModulate');
    const losses = spy(t, 'loss');
    t.iterate();
    expect(mods).toHaveLength(4);
    expect(losses).toHaveLength(4);
    const alpha = t.host.amppo!.alpha_ema;
    let changed = 0;
    mods.forEach((m, i) => {
      // The frozen alpha is the one this iteration's full-batch update produced.
      expect(m.inputs.alpha_ema![0]).toBe(alpha);
      const raw = m.inputs.A!;
      const want = modulateRef(raw, alpha);
      const L = losses[i]!.inputs;
      L.advantages!.forEach((a, j) => expect(a).toBeCloseTo(want[j]!, 4));
      L.returns!.forEach((r, j) => expect(r).toBeCloseTo(want[j]! + L.values_old![j]!, 4));
      raw.forEach((a, j) => (Math.abs(a - want[j]!) > 1e-3 ? changed++ : 0));
    });
    expect(changed).toBeGreaterThan(0);
    t.dispose();
  });

  it('checkpoints the controller and resumes bit-identically', async () => {
    const a = await train(amppo(), { outDir: tmp() });
    const dir = tmp();
    tf.dispose(Object.values((await train(amppo(), { outDir: dir, maxIterations: 2 })).params));
    const host = readCheckpoint(join(dir, 'checkpoint.json')).host.amppo as { alpha_ema: number; s_ema: number };
    const b = await train(amppo(), { outDir: dir, resume: true });
    expect(host.alpha_ema).toBe(a.metrics[1]!.alpha_ema);
    expect(host.s_ema).toBe(a.metrics[1]!.s_ema);
    for (const k of Object.keys(a.params)) expect(Array.from(b.params[k]!.dataSync())).toEqual(Array.from(a.params[k]!.dataSync()));
    const strip = (ms: typeof a.metrics) => ms.map(({ steps_per_sec: _s, ...r }) => r);
    expect(strip(b.metrics)).toEqual(strip(a.metrics));
    const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').split('\n');
    expect(csv[0]).toContain('alpha_ema,s_ema');
    expect(csv).toHaveLength(6); // header + 4 rows + trailing newline
    tf.dispose([...Object.values(a.params), ...Object.values(b.params)]);
  });

  it('ships valid variant pipelines', () => {
    for (const f of ['amppo-cartpole.json', 'ppo-alphagrad-cartpole.json']) {
      const c = parsePipeline(JSON.parse(readFileSync(G('pipelines/' + f), 'utf8')), G('pipelines/' + f));
      expect(c.total_steps).toBeGreaterThan(0);
    }
  });
});

describe('GRPO and Hybrid GRPO rollouts', () => {
  const group = (algorithm: string, over: Record<string, unknown> = {}) =>
    tiny({ algorithm, group: { size: 4 }, rollout: { steps: 4 }, total_steps: 64, update: { epochs: 1, minibatches: 2 }, ...over });

  it('hybrid: branches step from tiled copies of each env state and the argmax-q branch is executed', () => {
    const t = new Trainer(group('hybrid-grpo', { group: { size: 4, select: 'argmax' } }));
    t.init();
    const steps = spy(t, 'step');
    const advs = spy(t, 'groupAdv');
    const losses = spy(t, 'loss');
    t.iterate();
    expect(steps).toHaveLength(4);
    const N = 2, G = 4;
    steps.forEach((s, k) => {
      const st = s.inputs.state!;
      expect(st).toHaveLength(N * G * 4);
      for (let i = 0; i < N; i++)
        for (let g = 1; g < G; g++) expect(Array.from(st.slice((i * G + g) * 4, (i * G + g + 1) * 4))).toEqual(Array.from(st.slice(i * G * 4, (i * G + 1) * 4)));
      const a = advs[k]!;
      // q_f = tanh(R) + gamma (1 - done) V_next; the executed branch is argmax q_f, and the next step starts from its state.
      const q = a.outputs.q_f!;
      for (let i = 0; i < N; i++) {
        let best = 0;
        for (let g = 1; g < G; g++) if (q[i * G + g]! > q[i * G + best]!) best = g;
        expect(a.outputs.select![i]).toBe(best);
        const want = Array.from(s.outputs.state!.slice((i * G + best) * 4, (i * G + best + 1) * 4));
        const next = k + 1 < steps.length ? Array.from(steps[k + 1]!.inputs.state!.slice(i * G * 4, (i * G + 1) * 4)) : Array.from(t.env.state!.dataSync().slice(i * 4, (i + 1) * 4));
        expect(next).toEqual(want);
        // The graph scores exactly the rewards the branches received.
        expect(Array.from(a.inputs.R!.slice(i * G, (i + 1) * G))).toEqual(Array.from(s.outputs.reward!.slice(i * G, (i + 1) * G)));
      }
    });
    // The loss gets every branch: blended advantages, and y (per state) as the value target of each of its branches.
    const allAdv = advs.flatMap((a) => Array.from(a.outputs.adv!)).sort();
    const allY = advs.flatMap((a) => Array.from(a.outputs.y!).flatMap((y) => [y, y, y, y])).sort();
    const seenAdv = losses.flatMap((l) => Array.from(l.inputs.advantages!)).sort();
    const seenRet = losses.flatMap((l) => Array.from(l.inputs.returns!)).sort();
    expect(seenAdv).toEqual(allAdv);
    expect(seenRet).toEqual(allY);
    // Hybrid advantages are not z-scored as a whole (only the alpha z part is), so they are normalised per minibatch.
    expect(losses[0]!.inputs.norm_adv![0]).toBe(1);
    expect(losses[0]!.inputs.vf_coef![0]).toBe(0.5);
    t.dispose();
  });

  it('hybrid argmax executes the branch with the best f(R) + gamma (1 - done) V(s\'), not R + gamma (1 - done) V(s\')', () => {
    // Pendulum over 2 steps: the branch rewards differ (the second step's reward depends on the first action),
    // and tanh flattens them where they are large.
    const t = new Trainer(
      group('hybrid-grpo', {
        group: { size: 4, horizon: 2, select: 'argmax' },
        rollout: { steps: 8 },
        total_steps: 2 * 8 * 4 * 2,
        env: { step: G('envs/pendulum.step.graph.json'), reset: G('envs/pendulum.reset.graph.json'), num_envs: 2 },
        policy: { act: G('algorithms/ppo-pendulum.act.graph.json') },
        loss: G('algorithms/ppo-pendulum.loss.graph.json'),
      }),
    );
    t.init();
    const steps = spy(t, 'step');
    const advs = spy(t, 'groupAdv');
    t.iterate();
    const N = 2, K = 4, S = 2; // Pendulum's state row: theta, theta_dot
    const argmax = (xs: number[]) => xs.indexOf(Math.max(...xs));
    let differ = 0;
    advs.forEach((a, k) => {
      const { R, V_next, done } = a.inputs;
      for (let i = 0; i < N; i++) {
        const row = [0, 1, 2, 3].map((g) => i * K + g);
        const boot = row.map((j) => 0.99 ** 2 * (1 - done![j]!) * V_next![j]!);
        const best = argmax(row.map((j, g) => Math.tanh(R![j]!) + boot[g]!));
        if (best !== argmax(row.map((j, g) => R![j]! + boot[g]!))) differ++;
        // Step calls come in pairs (the group step, then the continuation); the executed branch is the group step's.
        const want = Array.from(steps[2 * k]!.outputs.state!.slice((i * K + best) * S, (i * K + best + 1) * S));
        const next = 2 * k + 2 < steps.length ? steps[2 * k + 2]!.inputs.state!.slice(i * K * S, (i * K + 1) * S) : t.env.state!.dataSync().slice(i * S, (i + 1) * S);
        expect(Array.from(next)).toEqual(want);
      }
    });
    // Some states are ones where the raw and the transformed score disagree, so the check above tells them apart.
    expect(differ).toBeGreaterThan(0);
    t.dispose();
  });

  it('grpo: group z-scores of the one-step rewards, no value function, a uniform branch', () => {
    // Pendulum: the one-step reward depends on the sampled action, so groups are not constant (CartPole's are).
    const t = new Trainer(
      group('grpo', {
        env: { step: G('envs/pendulum.step.graph.json'), reset: G('envs/pendulum.reset.graph.json'), num_envs: 2 },
        policy: { act: G('algorithms/ppo-pendulum.act.graph.json') },
        loss: G('algorithms/ppo-pendulum.loss.graph.json'),
      }),
    );
    t.init();
    const steps = spy(t, 'step');
    const losses = spy(t, 'loss');
    t.iterate();
    const K = 4;
    const want = steps.flatMap((s) => {
      const r = Array.from(s.outputs.reward!);
      return r.map((x, j) => {
        const grp = r.slice(Math.floor(j / K) * K, Math.floor(j / K) * K + K);
        const m = grp.reduce((a, b) => a + b, 0) / K;
        const sd = Math.sqrt(grp.reduce((a, b) => a + (b - m) ** 2, 0) / K);
        return Math.max(...grp) === Math.min(...grp) ? 0 : (x - m) / (sd + 1e-8);
      });
    });
    const seen = losses.flatMap((l) => Array.from(l.inputs.advantages!));
    expect(seen.length).toBe(want.length);
    const sortNum = (xs: number[]) => [...xs].sort((a, b) => a - b);
    // Branch rewards of one state differ only slightly, so float32 cancellation in r - mean costs ~1e-4 here.
    sortNum(seen).forEach((x, i) => expect(x).toBeCloseTo(sortNum(want)[i]!, 2));
    expect(want.filter((x) => x !== 0).length).toBeGreaterThan(want.length / 2);
    expect(losses[0]!.inputs.vf_coef![0]).toBe(0);
    expect(t.globalStep).toBe(2 * 4 * K);
    t.dispose();
  });

  it('horizon: each branch is rolled on, its reward is the discounted sum up to its episode end', () => {
    const H = 3, K = 4, N = 2, gamma = 0.9;
    // 32 visited states: a random CartPole policy falls within ~20 steps, so some branches end inside the horizon.
    const t = new Trainer(group('grpo', { group: { size: K, horizon: H }, advantage: { gamma }, rollout: { steps: 32 }, total_steps: N * 32 * K * H }));
    t.init();
    const steps = spy(t, 'step');
    const advs = spy(t, 'groupAdv');
    const row = t.iterate();
    expect(t.globalStep).toBe(N * 32 * K * H);
    // One executed state per env at every group step (each has one call of the advantage graph).
    expect(row.visited_states).toBe(advs.length * N);
    // Calls come in runs: the group step, then up to H - 1 continuation steps of the same N * K branches.
    let c = 0;
    for (const a of advs) {
      const first = steps[c++]!;
      const R = Array.from(first.outputs.reward!);
      const done = R.map((_, i) => first.outputs.terminated![i]! || first.outputs.truncated![i]! ? 1 : 0);
      let disc = gamma;
      for (let k = 1; k < H && done.some((d) => !d); k++) {
        const s = steps[c++]!;
        // A continuation starts where the branch left off.
        expect(Array.from(s.inputs.state!)).toEqual(Array.from(steps[c - 2]!.outputs.state!));
        R.forEach((_, i) => {
          if (done[i]) return;
          R[i]! += disc * s.outputs.reward![i]!;
          if (s.outputs.terminated![i] || s.outputs.truncated![i]) done[i] = 1;
        });
        disc *= gamma;
      }
      Array.from(a.inputs.rewards!).forEach((r, i) => expect(r).toBeCloseTo(R[i]!, 5));
    }
    expect(c).toBe(steps.length);
    // Some branch fell within the horizon at least once, so the groups are not all constant.
    expect(advs.some((a) => Array.from(a.outputs.adv!).some((x) => x !== 0))).toBe(true);
    t.dispose();
  });

  it('reward normalisation scales all branches of a step by one running std', () => {
    const t = new Trainer(
      group('hybrid-grpo', {
        env: { step: G('envs/pendulum.step.graph.json'), reset: G('envs/pendulum.reset.graph.json'), num_envs: 2 },
        policy: { act: G('algorithms/ppo-pendulum.act.graph.json') },
        loss: G('algorithms/ppo-pendulum.loss.graph.json'),
        normalize: { reward: true },
      }),
    );
    t.init();
    const steps = spy(t, 'step');
    const advs = spy(t, 'groupAdv');
    t.iterate();
    const scales = advs.map((a, k) => {
      const raw = steps[k]!.outputs.reward!;
      const ratios = Array.from(a.inputs.R!, (x, i) => x / raw[i]!);
      ratios.forEach((q) => expect(q).toBeCloseTo(ratios[0]!, 4));
      return ratios[0]!;
    });
    // Before any return is seen the std is sqrt(1e-8 + initial var); afterwards it follows the returns.
    expect(new Set(scales.map((x) => x.toFixed(4))).size).toBeGreaterThan(1);
    scales.forEach((x) => expect(x).toBeGreaterThan(0));
    t.dispose();
  });

  it('hybrid horizon bootstraps with gamma^horizon, and horizon 1 is the one-step rule', () => {
    const hp = (over: Record<string, unknown>) => group('hybrid-grpo', over).group!.hp.gamma;
    expect(hp({ group: { size: 4, horizon: 3 }, advantage: { gamma: 0.9 } })).toBeCloseTo(0.729, 12);
    expect(hp({ group: { size: 4 }, advantage: { gamma: 0.9 } })).toBe(0.9);
    expect(hp({ group: { size: 4, horizon: 3, hp: { gamma: 0.5 } } })).toBe(0.5);
  });

  it('hybrid resumes bit-identically, and the shipped pipelines validate', async () => {
    const cfg = () => group('hybrid-grpo');
    const a = await train(cfg(), { outDir: tmp() });
    const dir = tmp();
    tf.dispose(Object.values((await train(cfg(), { outDir: dir, maxIterations: 1 })).params));
    const b = await train(cfg(), { outDir: dir, resume: true });
    // Visited states continue across the resume: N = 2 envs x 4 steps per iteration.
    expect(b.metrics.map((m) => m.visited_states)).toEqual(b.metrics.map((m) => m.iteration * 2 * 4));
    expect(readFileSync(join(dir, 'metrics.csv'), 'utf8').split('\n')[0]!.split(',')).toContain('visited_states');
    for (const k of Object.keys(a.params)) expect(Array.from(b.params[k]!.dataSync())).toEqual(Array.from(a.params[k]!.dataSync()));
    tf.dispose([...Object.values(a.params), ...Object.values(b.params)]);
    for (const f of ['grpo-cartpole.json', 'hybrid-grpo-cartpole.json']) expect(() => parsePipeline(JSON.parse(readFileSync(G('pipelines/' + f), 'utf8')), G('pipelines/' + f))).not.toThrow();
    expect(() => group('grpo', { group: { size: 4, select: 'argmax' } })).toThrow(/no value function/);
  });

  it('the shipped hybrid-grpo pipelines use the values spec B.4 gives (and B.3\'s uniform executed branch)', () => {
    // B.4: "Defaults [R]: N = 4, gamma = 0.99, eps = 0.2, c_V = 0.5, c_H = 0.01, Adam lr 3e-4, 10 epochs, gradient-norm clip 0.5, alpha = 0.5, f = tanh"
    for (const env of ['cartpole', 'acrobot', 'pendulum']) {
      const f = G(`pipelines/hybrid-grpo-${env}.json`);
      const c = parsePipeline(JSON.parse(readFileSync(f, 'utf8')), f);
      expect(c.algorithm).toBe('hybrid-grpo');
      expect({ size: c.group!.size, horizon: c.group!.horizon, select: c.group!.select, hp: c.group!.hp }, env).toEqual({ size: 4, horizon: 1, select: 'uniform', hp: { gamma: 0.99, alpha: 0.5, f_mode: 0 } });
      expect(c.advantage.gamma, env).toBe(0.99);
      expect({ name: c.optimizer.name, lr: c.optimizer.lr }, env).toEqual({ name: 'adam', lr: 3e-4 });
      const u = c.update;
      expect({ epochs: u.epochs, clip_coef: u.clip_coef, vf_coef: u.vf_coef, ent_coef: u.ent_coef, max_grad_norm: u.max_grad_norm }, env).toEqual({ epochs: 10, clip_coef: 0.2, vf_coef: 0.5, ent_coef: 0.01, max_grad_norm: 0.5 });
    }
  });
});

describe('hybrid-grpo-v2 pipelines (the author\'s later form)', () => {
  for (const env of ['pendulum', 'cartpole'])
    it(`${env}: trains on tanh(tau z) of the branch rewards, executes the largest, and learns V with the Huber loss`, () => {
      const f = G(`pipelines/hybrid-grpo-v2-${env}.json`);
      const H = env === 'cartpole' ? 8 : 1;
      const small = ['env.num_envs=2', 'rollout.steps=4', 'update.epochs=2', 'update.minibatches=2', `total_steps=${2 * 2 * 4 * 4 * H}`, 'eval.episodes=0', 'checkpoint.every=0'];
      const cfg = loadPipeline(f, { overrides: small.map(parseOverride) });
      expect(cfg.loss).toBe(G(`algorithms/ppo-huber-${env}.loss.graph.json`));
      const t = new Trainer(cfg);
      t.init();
      const advs = spy(t, 'groupAdv');
      const losses = spy(t, 'loss');
      const rows = [t.iterate(), t.iterate()];
      for (const m of rows) for (const k of ['loss', 'v_loss', 'pg_loss', 'entropy'] as const) expect(Number.isFinite(m[k]), k).toBe(true);
      const K = 4;
      const want: number[] = [];
      for (const a of advs) {
        const R = Array.from(a.inputs.R!);
        for (let i = 0; i < R.length / K; i++) {
          const grp = R.slice(i * K, i * K + K);
          const m = grp.reduce((x, y) => x + y, 0) / K;
          const sd = Math.sqrt(grp.reduce((x, y) => x + (y - m) ** 2, 0) / K);
          grp.forEach((r) => want.push(Math.max(...grp) === Math.min(...grp) ? 0 : Math.tanh((r - m) / (sd + 1e-8))));
          expect(a.outputs.select![i]).toBe(grp.indexOf(Math.max(...grp)));
        }
      }
      // Some groups differ (on CartPole only those where a branch falls within the 8-step horizon).
      expect(want.filter((x) => x !== 0).length).toBeGreaterThan(0);
      // The first epoch (2 minibatches) sees the first iteration's advantages as they are (no per-minibatch normalisation).
      const sortNum = (xs: number[]) => [...xs].sort((x, y) => x - y);
      const seen = sortNum(losses.slice(0, 2).flatMap((l) => Array.from(l.inputs.advantages!)));
      expect(seen).toHaveLength(2 * 4 * K);
      sortNum(want.slice(0, 2 * 4 * K)).forEach((x, j) => expect(seen[j]).toBeCloseTo(x, 3));
      expect(losses[0]!.inputs.norm_adv![0]).toBe(0);
      expect(losses[0]!.inputs.ent_coef![0]).toBe(0);
      t.dispose();
    });
});

describe('variant modes do not leak tensors across iterations', () => {
  for (const [name, over] of [
    ['amppo', { advantage: { transform: { kind: 'amppo' } } }],
    ['hybrid-grpo', { algorithm: 'hybrid-grpo', group: { size: 2 } }],
    ['grpo', { algorithm: 'grpo', group: { size: 2 } }],
    ['grpo with a horizon', { algorithm: 'grpo', group: { size: 2, horizon: 3 }, total_steps: 256 }],
    ['hybrid-grpo with a horizon', { algorithm: 'hybrid-grpo', group: { size: 2, horizon: 3 }, total_steps: 256 }],
  ] as const)
    it(name, () => {
      const t = new Trainer(tiny(over as Record<string, unknown>));
      t.init();
      t.iterate();
      const n1 = tf.memory().numTensors;
      t.iterate();
      expect(tf.memory().numTensors).toBe(n1);
      t.dispose();
    });
});
