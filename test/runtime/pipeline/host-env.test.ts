/**
 * Host envs in the driver: the rollout's rewards and episodes are the env's own (recorded by the
 * env and summed here), evaluation has its own envs, checkpoints resume host envs that save their
 * state exactly, pipelines name only registered envs, and the MuJoCo pipelines train.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main, PIPELINE, PointMass, registerPointMass } from '../../../examples/custom-env.ts';
import { registerHostEnv, unregisterHostEnv, type HostEnv, type HostStep } from '../../../runtime/host-env/host-env.ts';
import { evaluate } from '../../../index.ts';
import { loadHostEnv } from '../../../runtime/host-env/host-env.ts';
import { loadPipeline, loadPipelineGraphs, parseOverride, parsePipeline, withEnv } from '../../../runtime/pipeline/config.ts';
import { train } from '../../../runtime/pipeline/driver.ts';
import type { IterationMetrics } from '../../../runtime/pipeline/metrics.ts';
import { G, tinyPipelineJson } from '../../helpers/tiny-pipeline.ts';
import { loomErr, loomErrAsync } from '../../helpers/loom-error.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-host-env-'));
const strip = (ms: readonly IterationMetrics[]) => ms.map(({ steps_per_sec: _s, ...r }) => r);
/** The example's pipeline, smaller: 4 envs x 32 steps, 4 iterations. */
const pointMass = (over: string[] = []) => loadPipeline(PIPELINE, { overrides: ['rollout.steps=32', 'total_steps=512', ...over].map(parseOverride) });

/** PointMass envs that record every step they take; `saves` false hides getState/setState. */
function recording(log: { steps: HostStep[]; resets: number }[], saves = true) {
  return {
    observationShape: [2] as [number],
    action: { kind: 'box' as const, low: [-1], high: [1] },
    create: ({ numEnvs }: { numEnvs: number }): HostEnv => {
      const env = new PointMass(numEnvs);
      const rec = { steps: [] as HostStep[], resets: 0 };
      log.push(rec);
      return {
        reset: (seed) => (rec.resets++, env.reset(seed)),
        step: (a) => {
          const r = env.step(a);
          rec.steps.push(r);
          return r;
        },
        ...(saves ? { getState: () => env.getState(), setState: (s) => env.setState(s) } : {}),
      };
    },
  };
}

afterEach(() => {
  unregisterHostEnv('Recorded');
});

describe('host envs in the driver', () => {
  it('the example registers PointMass and trains it through the public API; evaluate (loom eval) on the run replays its final evaluation with new envs', async () => {
    const dir = tmp();
    const r = await main(dir);
    expect([r.iterations, r.globalStep]).toEqual([4, 2048]);
    expect(r.eval?.episodes).toBe(4);
    for (const m of r.metrics) expect(Number.isFinite(m.loss)).toBe(true);
    expect(evaluate(dir)).toEqual(r.eval!.returns);
  });

  it("an iteration's episodes and returns are those of the env's own steps; evaluation steps other envs", async () => {
    const log: { steps: HostStep[]; resets: number }[] = [];
    registerHostEnv('Recorded', recording(log));
    const cfg = pointMass(['env.host=Recorded', 'eval.episodes=2']);
    const r = await train(cfg, { outDir: tmp() });
    tf.dispose(Object.values(r.params));
    const [rollout, evalEnvs] = log;
    expect(log).toHaveLength(2);
    // 32 (vectorised) steps per iteration, 4 iterations, all on the rollout's envs.
    expect(rollout!.steps).toHaveLength(4 * 32);
    expect(evalEnvs!.steps.length).toBeGreaterThan(0);
    const N = 4;
    const ret = new Array<number>(N).fill(0);
    for (const [it, m] of r.metrics.entries()) {
      const finished: number[] = [];
      for (const s of rollout!.steps.slice(it * 32, (it + 1) * 32))
        for (let i = 0; i < N; i++) {
          ret[i]! += Math.fround(s.reward[i]!);
          if (s.terminated[i] || s.truncated[i]) {
            finished.push(ret[i]!);
            ret[i] = 0;
          }
        }
      expect(m.episodes).toBe(finished.length);
      if (finished.length) expect(m.episodic_return).toBeCloseTo(finished.reduce((a, b) => a + b, 0) / finished.length, 9);
      else expect(m.episodic_return).toBeNull();
    }
    expect(r.metrics.reduce((n, m) => n + m.episodes, 0)).toBeGreaterThan(0);
  });

  it('an env whose arrays do not fit its spaces is a clear error, not a tensor-shape failure', async () => {
    const def = recording([]);
    registerHostEnv('Recorded', {
      ...def,
      create: (o) => {
        const env = def.create(o);
        return { ...env, step: (a) => ({ ...env.step(a), final_obs: new Float32Array(3) }) };
      },
    });
    const e = await loomErrAsync(() => train(pointMass(['env.host=Recorded']), { outDir: tmp() }));
    expect(e.info).toMatchObject({ code: 'E_INPUT', message: 'host env Recorded: step() final_obs has 3 values', expected: '8 (4 envs x obs width 2)' });
  });

  it('a resumed run continues the saved episodes: its metrics equal an uninterrupted run', async () => {
    const a = await train(pointMass(), { outDir: tmp() });
    const dir = tmp();
    tf.dispose(Object.values((await train(pointMass(), { outDir: dir, maxIterations: 2 })).params));
    const body = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')).body;
    expect(Object.keys(body.host.hostEnv)).toEqual(['x', 'v', 't', 'rng']);
    const b = await train(pointMass(), { outDir: dir, resume: true });
    expect(strip(b.metrics)).toEqual(strip(a.metrics));
    tf.dispose([...Object.values(a.params), ...Object.values(b.params)]);
  });

  it('a host env that cannot save its state starts new episodes on resume', async () => {
    const log: { steps: HostStep[]; resets: number }[] = [];
    registerHostEnv('Recorded', recording(log, false));
    const dir = tmp();
    const cfg = pointMass(['env.host=Recorded', 'eval.episodes=0']);
    tf.dispose(Object.values((await train(cfg, { outDir: dir, maxIterations: 1 })).params));
    const body = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')).body;
    expect(body.host.hostEnv).toBeUndefined();
    const b = await train(cfg, { outDir: dir, resume: true });
    tf.dispose(Object.values(b.params));
    expect(log.map((l) => l.resets)).toEqual([1, 1]);
    expect(b.metrics.map((m) => m.iteration)).toEqual([1, 2, 3, 4]);
  });
});

describe('naming a host env', () => {
  const pm = (env: Record<string, unknown>, over: Record<string, unknown> = {}) =>
    parsePipeline(tinyPipelineJson({ env, policy: { act: G('algorithms/ppo-mountaincar_continuous.act.graph.json') }, loss: G('algorithms/ppo-mountaincar_continuous.loss.graph.json'), ...over }), '/virtual/p.json');

  it('an unknown name is an error at /env/host that lists the known envs and suggests the nearest', () => {
    const e = loomErr(() => pm({ host: 'HalfCheetah-v3', num_envs: 1 }));
    expect(e.info).toMatchObject({ code: 'E_INPUT', pointer: '/env/host', found: 'HalfCheetah-v3', hint: 'did you mean "HalfCheetah-v4"?' });
    expect(e.info.expected).toContain('Hopper-v4');
  });

  it('host and step/reset together, or neither, are errors', () => {
    registerPointMass();
    expect(loomErr(() => pm({ host: 'PointMass', step: G('envs/cartpole.step.graph.json'), num_envs: 1 })).info).toMatchObject({ code: 'E_SCHEMA', pointer: '/env/step' });
    expect(loomErr(() => pm({ num_envs: 1 })).info).toMatchObject({ code: 'E_SCHEMA', pointer: '/env/step' });
  });

  it('group algorithms refuse host envs: they copy env states', () => {
    registerPointMass();
    const e = loomErr(() => pm({ host: 'PointMass', num_envs: 2 }, { algorithm: 'grpo' }));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/env/host' });
    expect(e.info.message).toMatch(/copies of the env state/);
  });

  it("the agent must fit the host env's spaces, checked when the graphs load", () => {
    registerPointMass();
    const cfg = parsePipeline(tinyPipelineJson({ env: { host: 'PointMass', num_envs: 2 } }), '/virtual/p.json');
    const e = loomErr(() => loadPipelineGraphs(cfg));
    expect(e.info.pointer).toBe('/policy/act');
    expect(e.info.hint ?? e.info.message).toMatch(/host env PointMass/);
  });

  it('registerHostEnv refuses built-in names and malformed spaces', () => {
    const def = recording([]);
    expect(loomErr(() => registerHostEnv('Hopper-v4', def)).info.code).toBe('E_USAGE');
    expect(loomErr(() => registerHostEnv('../x', def)).info.code).toBe('E_USAGE');
    expect(loomErr(() => registerHostEnv('Bad', { ...def, action: { kind: 'box', low: [1], high: [-1] } })).info.code).toBe('E_USAGE');
    expect(loomErr(() => registerHostEnv('Bad', { ...def, observationShape: [0] })).info.code).toBe('E_USAGE');
  });
});

describe('--env with host envs', () => {
  it('swaps a host env for a graph env and back, with the shipped agent of each', () => {
    const lines: string[] = [];
    const cp = withEnv(loadPipeline(G('pipelines/ppo-halfcheetah.json')), 'CartPole-v1', (l) => lines.push(l));
    expect(cp.env).toEqual({ name: 'CartPole-v1', step: G('envs/cartpole.step.graph.json'), reset: G('envs/cartpole.reset.graph.json'), num_envs: 1 });
    expect(cp.policy.act).toBe(G('algorithms/ppo-cartpole.act.graph.json'));
    const hc = withEnv(loadPipeline(G('pipelines/ppo-pendulum.json')), 'HalfCheetah-v4', (l) => lines.push(l));
    expect(hc.env).toEqual({ name: 'HalfCheetah-v4', step: '', reset: '', num_envs: 8, host: 'HalfCheetah-v4' });
    expect([hc.policy.act, hc.loss]).toEqual([G('algorithms/ppo-halfcheetah.act.graph.json'), G('algorithms/ppo-halfcheetah.loss.graph.json')]);
    expect(lines[1]).toMatch(/^--env HalfCheetah-v4: the act graph takes obs of width 3, actions float32\[N, 1\], HalfCheetah-v4 gives obs of width 17, actions float32\[N, 6\]; using the shipped agent/);
    // The role contracts, checked independently when the graphs load, agree that both fit.
    for (const c of [cp, hc, withEnv(loadPipeline(G('pipelines/ppo-halfcheetah.json')), 'hopper')]) expect(() => loadPipelineGraphs(c)).not.toThrow();
  });

  it('refuses a host env for a group algorithm', () => {
    expect(loomErr(() => withEnv(loadPipeline(G('pipelines/grpo-pendulum.json')), 'Hopper-v4')).info).toMatchObject({ code: 'E_USAGE', pointer: '/group' });
  });
});

describe('MuJoCo pipelines', () => {
  it.each(['ppo-halfcheetah', 'ppo-hopper', 'amppo-hopper'])('%s trains 2 iterations', async (name) => {
    const episodes = name === 'ppo-hopper' ? 2 : 0;
    const cfg = loadPipeline(G(`pipelines/${name}.json`), { overrides: ['rollout.steps=256', 'total_steps=512', 'update.epochs=2', `eval.episodes=${episodes}`].map(parseOverride) });
    const dir = tmp();
    const r = await train(cfg, { outDir: dir });
    tf.dispose(Object.values(r.params));
    expect([r.iterations, r.globalStep]).toEqual([2, 512]);
    for (const m of r.metrics) for (const k of ['loss', 'v_loss', 'approx_kl', 'grad_norm'] as const) expect(Number.isFinite(m[k])).toBe(true);
    const rows = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')).body.host.hostEnv as { elapsed: number }[];
    // One env, 512 steps: HalfCheetah never terminates, so its episode is 512 steps old.
    if (name === 'ppo-halfcheetah') expect(rows.map((x) => x.elapsed)).toEqual([512]);
    // loom eval on the run (a fresh process would load MuJoCo through loadHostEnv, as it does) replays the final evaluation.
    if (episodes) {
      await loadHostEnv('Hopper-v4');
      expect(evaluate(dir, { episodes })).toEqual(r.eval!.returns);
    }
  });
});
