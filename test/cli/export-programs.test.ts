/**
 * loom export on program runs: the standalone graph acts as the program's own act does on the
 * same observations. The reference binds the act graph's params to the checkpoint's state tensors
 * as the program's rollout step binds them in its call of the act graph (read from that graph
 * file, not from program.json's `policy`), normalising observations with normalize-obs.graph.json
 * where the rollout does; the checkpoint's state is perturbed first, so only values read from it
 * can match.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { seedKey, toInt32 } from '../../compiler/ops/threefry.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { loadGroup, saveGroup, writeChecksummed, type SavedTensor } from '../../runtime/pipeline/checkpoint.ts';
import { loadProgram, loadProgramGraphs } from '../../runtime/program/config.ts';
import { loom } from '../helpers/cli.ts';
import { G } from '../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-export-program-'));
const values = (m: TensorMap) => Object.fromEntries(Object.entries(m).map(([k, t]) => [k, Array.from(t.dataSync())]));

type Body = { iteration: number; tensors: { state: Record<string, SavedTensor> } } & Record<string, unknown>;

/** A program run of 0 iterations (its checkpoint is the init state), with `perturb` applied to the saved state. */
async function savedRun(program: string, perturb: (s: TensorMap) => TensorMap): Promise<{ run: string; ckpt: string; state: TensorMap }> {
  const run = join(tmp(), 'run');
  const r = await loom('train', G(`programs/${program}/program.json`), '--backend', 'cpu', '--out', run, '--max-iterations', '0');
  expect(r.code, r.err).toBe(0);
  const ckpt = join(run, 'checkpoint.json');
  const body = (JSON.parse(readFileSync(ckpt, 'utf8')) as { body: Body }).body;
  const state = perturb(loadGroup(body.tensors.state));
  writeChecksummed(ckpt, { ...body, tensors: { state: saveGroup(state) } });
  return { run, ckpt, state };
}

/** The call of the act graph in the program's rollout step: the act graph file and its "params" binding. */
function rolloutAct(program: string): { graph: string; params: Record<string, string>; normalised: boolean } {
  const file = G(`programs/${program}/rollout-step.graph.json`);
  const g = JSON.parse(readFileSync(file, 'utf8')) as { nodes: { id: string; op: string; in?: Record<string, string>; graph?: string; params?: Record<string, string> }[] };
  const act = g.nodes.find((n) => n.id === 'act')!;
  return { graph: join(G(`programs/${program}`), act.graph!), params: act.params!, normalised: act.in!.obs === 'obs_norm.out' };
}

/** The program's own act on raw observations, by the interpreter. */
function reference(program: string, state: TensorMap, obs: tf.Tensor, key: tf.Tensor, clip: number): TensorMap {
  const act = rolloutAct(program);
  const params = Object.fromEntries(Object.entries(act.params).map(([p, s]) => [p, state[s]!]));
  const seen = act.normalised ? interpret(loadGraph(G('algorithms/normalize-obs.graph.json')), { x: obs, mean: state.obs_mean!, var: state.obs_var!, clip: tf.scalar(clip) }, {}).out! : obs;
  return interpret(loadGraph(act.graph), { obs: seen, key }, params);
}

async function exported(run: string): Promise<ReturnType<typeof loadGraph>> {
  const file = join(tmp(), 'policy.graph.json');
  const r = await loom('export', run, '--out', file);
  expect(r.code, r.err).toBe(0);
  expect(r.out).toContain(`wrote ${file}: graph `);
  const g = loadGraph(file);
  expect(g.params).toEqual([]);
  expect(g.nodes.some((n) => n.op === 'call')).toBe(false);
  return g;
}

describe('loom export on a program run', () => {
  it("PPO CartPole: the standalone graph gives the program's act outputs exactly, from the checkpoint's state", async () => {
    // The actor's last layer scaled, so that an export of freshly initialised params would differ.
    const { run, state } = await savedRun('ppo-cartpole', (s) => ({ ...s, actor_w3: tf.mul(s.actor_w3!, 40), critic_b3: tf.add(s.critic_b3!, 3) }));
    const g = await exported(run);
    const obs = tf.randomNormal([64, 4], 0, 1, 'float32', 5);
    const key = tf.tensor(toInt32(seedKey(7)), [2], 'int32');
    const got = values(interpret(g, { obs, key }, {}));
    const want = values(reference('ppo-cartpole', state, obs, key, 0));
    expect(Object.keys(got).sort()).toEqual(['action', 'action_mode', 'logp', 'value']);
    expect(got).toEqual(want);
    expect(new Set(want.action_mode).size).toBe(2);
  });

  it('PPO Pendulum, which normalises observations: raw observations give what its rollout acts on them, with the saved statistics', async () => {
    const mean = tf.tensor([0.3, -0.2, 1.5]);
    const variance = tf.tensor([0.5, 2, 9]);
    const { run, state } = await savedRun('ppo-pendulum', (s) => ({ ...s, obs_mean: mean, obs_var: variance, actor_w3: tf.mul(s.actor_w3!, 30) }));
    const g = await exported(run);
    // Raw observations, some far enough out to be clipped after normalisation.
    const raw = tf.tensor(Float32Array.from({ length: 64 * 3 }, (_, i) => Math.sin(i * 12.9898) * (i % 16 === 0 ? 1e3 : 4)), [64, 3]);
    const key = tf.tensor(toInt32(seedKey(7)), [2], 'int32');
    const clip = loadProgram(G('programs/ppo-pendulum/program.json')).hyper.norm_clip!;
    const got = values(interpret(g, { obs: raw, key }, {}));
    const want = values(reference('ppo-pendulum', state, raw, key, clip));
    for (const k of ['action', 'action_mode', 'logp', 'value']) {
      expect(got[k]!.length).toBe(want[k]!.length);
      got[k]!.forEach((v, i) => expect(v).toBeCloseTo(want[k]![i]!, 4));
    }
    // Without the normaliser the outputs would differ.
    const unnormalised = values(interpret(loadGraph(rolloutAct('ppo-pendulum').graph), { obs: raw, key }, Object.fromEntries(Object.entries(rolloutAct('ppo-pendulum').params).map(([p, s]) => [p, state[s]!]))));
    expect(unnormalised.action_mode).not.toEqual(want.action_mode);
  });

  it("every shipped program names a policy whose act graph is the one its rollout (or its init's agent) uses", () => {
    for (const p of ['ppo-cartpole', 'amppo-cartpole', 'ppo-penalty-cartpole', 'ppo-alphagrad-cartpole', 'grpo-cartpole', 'grpo-kl-cartpole', 'hybrid-grpo-cartpole', 'ppo-acrobot', 'ppo-pendulum', 'ppo-mountaincar_continuous']) {
      const cfg = loadProgram(G(`programs/${p}/program.json`));
      const graphs = loadProgramGraphs(cfg);
      expect(graphs.act, p).not.toBeNull();
      expect(Object.keys(cfg.policy!.params).sort(), p).toEqual(graphs.act!.params.map((q) => q.name).sort());
    }
    for (const p of ['ppo-acrobot', 'ppo-pendulum', 'ppo-mountaincar_continuous', 'ppo-cartpole']) {
      const cfg = loadProgram(G(`programs/${p}/program.json`));
      const act = rolloutAct(p);
      expect(cfg.policy!.act, p).toBe(act.graph);
      expect(cfg.policy!.params, p).toEqual(act.params);
      expect(cfg.policy!.obs_norm !== undefined, p).toBe(act.normalised);
    }
  });

  it('errors: a program without a policy, a policy that does not fit its act graph; none with a stack trace', async () => {
    const run = join(tmp(), 'run');
    expect((await loom('train', join(import.meta.dirname, '../fixtures/program/toy.program.json'), '--backend', 'cpu', '--out', run, '--max-iterations', '1')).code).toBe(0);
    const none = await loom('export', run, '--out', join(tmp(), 'p.json'));
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/^error\[E_INPUT\].*program toy has no policy/);
    expect(none.err).toContain('/policy');
    expect(none.err).toContain('"policy": { "act"');

    // A policy with a misspelt state tensor is refused when the program is loaded, at its pointer.
    const dir = tmp();
    const base = JSON.parse(readFileSync(G('programs/ppo-cartpole/program.json'), 'utf8')) as { policy: { params: Record<string, string> } } & Record<string, unknown>;
    const file = join(dir, 'program.json');
    const graphs = Object.fromEntries(['init', 'iteration', 'evaluate'].map((k) => [k, G(`programs/ppo-cartpole/${k}.graph.json`)]));
    const write = (policy: unknown) => writeFileSync(file, JSON.stringify({ ...base, $schema: undefined, ...graphs, policy }));
    write({ ...base.policy, act: G('algorithms/ppo-cartpole.act.graph.json'), params: { ...base.policy.params, 'agent/actor_w1': 'actor_w' } });
    const bad = await loom('check', file);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^error\[E_INPUT\].*policy: the act graph's param "agent\/actor_w1" names "actor_w", which is not a state tensor/);
    expect(bad.err).toContain('/policy/params/agent~1actor_w1');
    expect(bad.err).toContain('did you mean "actor_w1"');
    const { 'agent/critic_b3': _c, ...fewer } = base.policy.params;
    write({ act: G('algorithms/ppo-cartpole.act.graph.json'), params: fewer });
    const missing = await loom('check', file);
    expect(missing.err).toMatch(/^error\[E_INPUT\].*does not bind the act graph's param "agent\/critic_b3"/);
    write({ act: G('algorithms/ppo-cartpole.act.graph.json'), params: { ...base.policy.params, 'agent/critic_b3': 'critic_w3' } });
    const shape = await loom('check', file);
    expect(shape.err).toMatch(/^error\[E_SHAPE\].*bound to state tensor "critic_w3" of another type/);
    for (const r of [none, bad, missing, shape]) expect(r.err).not.toMatch(/\n\s+at /);
  });
});
