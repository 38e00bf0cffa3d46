import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadPipeline, loadPipelineGraphs } from '../../../runtime/pipeline/config.ts';
import { loom } from '../../helpers/cli.ts';
import { loomErr } from '../../helpers/loom-error.ts';
import { G, tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

const cartpole = { step: G('envs/cartpole.step.graph.json'), reset: G('envs/cartpole.reset.graph.json'), num_envs: 2 };

describe('role contracts', () => {
  it('every shipped pipeline fits its roles', () => {
    for (const f of readdirSync(G('pipelines')).filter((f) => f.endsWith('.json'))) expect(() => loadPipelineGraphs(loadPipeline(G('pipelines/' + f))), f).not.toThrow();
  });

  it('rejects a reset graph given as the step graph, at /env/step', () => {
    const e = loomErr(() => loadPipelineGraphs(tiny({ env: { ...cartpole, step: cartpole.reset } })));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', file: '/virtual/tiny.json', pointer: '/env/step' });
    expect(e.info.message).toMatch(/^role env\.step expects input "state": \*\[N, \.\.\.\]; graph graphs\/envs\/cartpole\.reset\.graph\.json has no input "state"/);
  });

  it('rejects a loss graph without the inputs the driver gives it, at /loss', () => {
    const e = loomErr(() => loadPipelineGraphs(tiny({ loss: G('algorithms/grpo/loss.graph.json') })));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/loss' });
    expect(e.info.message).toMatch(/role loss expects input "obs": float32\[M, 4\]; graph graphs\/algorithms\/grpo\/loss\.graph\.json has no input "obs"/);
  });

  it('rejects an act graph for another env (obs width), naming the width the env gives', () => {
    const e = loomErr(() => loadPipelineGraphs(tiny({ policy: { act: G('algorithms/ppo-acrobot.act.graph.json') } })));
    expect(e.info).toMatchObject({ code: 'E_SHAPE', pointer: '/policy/act', expected: 'float32[N, 4]', found: 'float32[B, 6]' });
    expect(e.info.message).toMatch(/role policy\.act expects input "obs": float32\[N, 4\]; graph graphs\/algorithms\/ppo-acrobot\.act\.graph\.json has float32\[B, 6\]/);
    expect(e.info.hint).toMatch(/O \(the obs width\) is 4, set by env\.step/);
  });

  it('rejects the cartpole act graph on pendulum, at the first mismatch (obs width)', () => {
    const pendulum = { step: G('envs/pendulum.step.graph.json'), reset: G('envs/pendulum.reset.graph.json'), num_envs: 2 };
    const e = loomErr(() => loadPipelineGraphs(tiny({ env: pendulum })));
    expect(e.info.pointer).toBe('/policy/act');
    expect(e.info.message).toMatch(/role policy\.act expects input "obs": float32\[N, 3\]/);
  });

  it('rejects an optimizer graph that is not one, at /optimizer/name', () => {
    const e = loomErr(() => loadPipelineGraphs(tiny({ optimizer: { name: 'clip-grad-norm', lr: 1e-3 } })));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/optimizer/name' });
    expect(e.info.message).toMatch(/role optimizer expects input "params\|param"/);
  });

  it('loom check fails a pipeline whose step graph is a reset graph, naming the role', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-roles-'));
    const f = join(dir, 'p.json');
    writeFileSync(f, JSON.stringify({ extends: G('pipelines/ppo-cartpole.json'), pipeline: 'p', env: { step: G('envs/cartpole.reset.graph.json') } }));
    const r = await loom('check', f);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error[E_SCHEMA] ${f}#/env/step: role env.step expects input "state"`);
    expect(r.out).toBe('');
  });
});
