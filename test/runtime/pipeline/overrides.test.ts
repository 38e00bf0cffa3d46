/**
 * `--set PATH=VALUE` overrides (applied to the resolved pipeline JSON, before validation) and
 * `--env` with Gymnasium ids, which swaps a shipped agent that does not fit the env.
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GYM_ENVS, loadPipeline, loadPipelineGraphs, parseOverride, parsePipeline, withEnv } from '../../../runtime/pipeline/config.ts';
import { loomErr } from '../../helpers/loom-error.ts';
import { G } from '../../helpers/tiny-pipeline.ts';

const set = (...texts: string[]) => ({ overrides: texts.map(parseOverride) });
const AMPPO = G('pipelines/amppo-cartpole.json');

describe('--set PATH=VALUE', () => {
  it('parses the value as JSON when it is JSON, else as text', () => {
    const v = (t: string) => parseOverride(`a.b=${t}`).value;
    expect(v('1e-3')).toBe(0.001);
    expect(v('true')).toBe(true);
    expect(v('null')).toBe(null);
    expect(v('[1,2]')).toEqual([1, 2]);
    expect(v('"10"')).toBe('10');
    expect(v('adam')).toBe('adam');
    expect(v('')).toBe('');
    expect(parseOverride('optimizer.lr=1=2')).toMatchObject({ path: ['optimizer', 'lr'], value: '1=2' });
  });

  it('sets fields of the pipeline after extends; the last override of a path wins, the rest stays', () => {
    const base = loadPipeline(AMPPO);
    const c = loadPipeline(AMPPO, set('optimizer.lr=1e-3', 'update.epochs=10', 'update.epochs=3', 'advantage.transform.tau=2', 'optimizer.hp.alpha=0.5'));
    expect(c.optimizer.lr).toBe(0.001);
    expect(c.update.epochs).toBe(3);
    // A field of the extending file and a map entry.
    expect(c.advantage.transform?.hp.tau).toBe(2);
    expect(c.optimizer.hp).toEqual({ alpha: 0.5 });
    expect({ ...c, optimizer: base.optimizer, update: base.update, advantage: base.advantage }).toEqual(base);
  });

  it('resolves a graph path set on the command line against the working folder', () => {
    const c = loadPipeline(AMPPO, set('policy.act=graphs/algorithms/ppo-cartpole.act.graph.json'));
    expect(c.policy.act).toBe(resolve('graphs/algorithms/ppo-cartpole.act.graph.json'));
  });

  it('rejects a path the schema does not have, suggesting the nearest one', () => {
    const e = loomErr(() => loadPipeline(AMPPO, set('update.epoch=10')));
    expect(e.info).toMatchObject({ code: 'E_USAGE', found: 'update.epoch', hint: 'did you mean "update.epochs"?' });
    expect(e.info.message).toMatch(/^--set update\.epoch=10: the pipeline has no field "update\.epoch"/);
    expect(loomErr(() => loadPipeline(AMPPO, set('lr=1'))).info.hint).toBe('did you mean "optimizer.lr"?');
    expect(loomErr(() => loadPipeline(AMPPO, set('loss.file=x'))).info.message).toMatch(/"loss" has no "file"/);
    expect(loomErr(() => loadPipeline(AMPPO, set('extends=x.json'))).info.code).toBe('E_USAGE');
  });

  it('names the override in a schema error it caused, with the pointer; an error of the file is not blamed on it', () => {
    const e = loomErr(() => loadPipeline(AMPPO, set('update.epochs=-1')));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', file: AMPPO, pointer: '/update/epochs', found: '-1' });
    expect(e.info.message).toMatch(/^--set update\.epochs=-1: number out of range/);
    // Checks past the schema, and an object the override had to create.
    expect(loomErr(() => loadPipeline(AMPPO, set('update.minibatches=3'))).info.message).toMatch(/^--set update\.minibatches=3: .*divisible/);
    const created = loomErr(() => loadPipeline(G('pipelines/ppo-cartpole.json'), set('advantage.transform.tau=2')));
    expect(created.info).toMatchObject({ pointer: '/advantage/transform' });
    expect(created.info.message).toMatch(/^--set advantage\.transform\.tau=2: missing required property "kind"/);
    const json = { pipeline: 'p', env: { step: 's', reset: 'r', num_envs: 1 }, policy: { act: 'a' }, loss: 'l', optimizer: { name: 'adam', lr: 1 }, rollout: { steps: 1 }, update: { epochs: 0 }, total_steps: 1 };
    const own = loomErr(() => parsePipeline(json, 'p.json', set('update.minibatches=1')));
    expect(own.info.pointer).toBe('/update/epochs');
    expect(own.info.message).not.toMatch(/--set/);
  });

  it('rejects __proto__, constructor and prototype as keys, in the path or in the value', () => {
    for (const t of ['__proto__.x=1', 'optimizer.constructor=1', 'optimizer.hp.prototype=1', 'optimizer.hp={"__proto__":{"polluted":1}}', 'optimizer.args=[{"constructor":1}]']) {
      const e = loomErr(() => parseOverride(t));
      expect(e.info.code, t).toBe('E_USAGE');
      expect(e.info.message, t).toMatch(/is not allowed as a key/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects text without PATH=VALUE and empty keys', () => {
    expect(loomErr(() => parseOverride('update.epochs')).info.message).toMatch(/no PATH=VALUE/);
    expect(loomErr(() => parseOverride('=1')).info.message).toMatch(/no PATH=VALUE/);
    expect(loomErr(() => parseOverride('update..epochs=1')).info.message).toMatch(/empty key/);
  });
});

describe('--env', () => {
  it('accepts the Gymnasium id of every shipped env, and swaps a shipped agent that does not fit it', () => {
    for (const [id, name] of Object.entries(GYM_ENVS)) {
      const lines: string[] = [];
      const c = withEnv(loadPipeline(G('pipelines/ppo-pendulum.json')), id, (l) => lines.push(l));
      expect(c.env).toMatchObject({ name: id, step: G(`envs/${name}.step.graph.json`), reset: G(`envs/${name}.reset.graph.json`), num_envs: 8 });
      expect(c.policy.act).toBe(G(`algorithms/ppo-${name}.act.graph.json`));
      expect(c.loss).toBe(G(`algorithms/ppo-${name}.loss.graph.json`));
      // Only Pendulum fits Pendulum's agent (MountainCarContinuous has the same action but obs of width 2).
      expect(lines.length, id).toBe(name === 'pendulum' ? 0 : 1);
      // The role contracts, checked independently when the graphs load, agree that it fits.
      expect(() => loadPipelineGraphs(c), id).not.toThrow();
    }
  });

  it('says on the log what it swapped, and keeps a fitting agent', () => {
    const lines: string[] = [];
    const c = withEnv(loadPipeline(G('pipelines/ppo-pendulum.json')), 'CartPole-v1', (l) => lines.push(l));
    expect(lines[0]).toMatch(/^--env CartPole-v1: the act graph takes obs of width 3, actions float32\[N, 1\], CartPole-v1 gives obs of width 4, actions int32\[N\]; using the shipped agent .*ppo-cartpole\.act\.graph\.json/);
    const same = withEnv(loadPipeline(G('pipelines/ppo-cartpole.json')), 'cartpole');
    expect(same.env.name).toBe('CartPole-v1');
    expect(same.policy.act).toBe(G('algorithms/ppo-cartpole.act.graph.json'));
    expect(c.optimizer).toEqual(loadPipeline(G('pipelines/ppo-pendulum.json')).optimizer);
  });

  it("says which fields to set when the pipeline's own agent does not fit", () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-env-'));
    mkdirSync(join(dir, 'agents'));
    copyFileSync(G('algorithms/agents/pendulum.agent.graph.json'), join(dir, 'agents/pendulum.agent.graph.json'));
    copyFileSync(G('algorithms/ppo-pendulum.act.graph.json'), join(dir, 'my.act.graph.json'));
    const file = join(dir, 'p.json');
    writeFileSync(file, JSON.stringify({ extends: G('pipelines/ppo-pendulum.json'), pipeline: 'mine', policy: { act: 'my.act.graph.json' } }));
    const e = loomErr(() => withEnv(loadPipeline(file), 'CartPole-v1'));
    expect(e.info).toMatchObject({ code: 'E_SHAPE', file, pointer: '/policy/act', expected: 'obs of width 4, actions int32[N]', found: 'obs of width 3, actions float32[N, 1]' });
    expect(e.info.hint).toMatch(/^set policy\.act and loss to an agent for CartPole-v1, e\.g\. --set policy\.act=\S*ppo-cartpole\.act\.graph\.json --set loss=\S*ppo-cartpole\.loss\.graph\.json$/);
    // It fits the env it was written for.
    expect(withEnv(loadPipeline(file), 'Pendulum-v1').policy.act).toBe(join(dir, 'my.act.graph.json'));
  });

  it('rejects an unknown env, suggesting the id', () => {
    const e = loomErr(() => withEnv(loadPipeline(G('pipelines/ppo-cartpole.json')), 'cartpole-v1'));
    expect(e.info).toMatchObject({ code: 'E_USAGE', found: 'cartpole-v1', hint: 'did you mean "CartPole-v1"?' });
    expect(loomErr(() => withEnv(loadPipeline(G('pipelines/ppo-cartpole.json')), '../envs/cartpole')).info.code).toBe('E_USAGE');
  });
});
