/**
 * Absurd pipeline sizes are E_SIZE errors located at the field to lower, found before anything
 * is allocated (promptly, where allocating would run V8 out of memory), and counts are safe integers.
 */
import { describe, expect, it } from 'vitest';
import { loadPipelineGraphs } from '../../../runtime/pipeline/config.ts';
import { Trainer } from '../../../runtime/pipeline/driver.ts';
import { loomErr } from '../../helpers/loom-error.ts';
import { G, tinyPipeline } from '../../helpers/tiny-pipeline.ts';

const env = (num_envs: number) => ({ env: { step: G('envs/cartpole.step.graph.json'), reset: G('envs/cartpole.reset.graph.json'), num_envs } });

describe('pipeline sizes', () => {
  it('rollout.steps 3e9 is E_SIZE at /rollout/steps', () => {
    const e = loomErr(() => tinyPipeline({ rollout: { steps: 3e9 }, total_steps: 6e9 }));
    expect(e.info.code).toBe('E_SIZE');
    expect(e.info.pointer).toBe('/rollout/steps');
    expect(e.info.file).toMatch(/tiny\.json$/);
    expect(e.info.message).toMatch(/6000000000 rows/);
    expect(e.info.expected).toMatch(/2147483647/);
  });

  it('num_envs 3e9 is E_SIZE at /env/num_envs', () => {
    const e = loomErr(() => tinyPipeline({ ...env(3e9), total_steps: 3e10 }));
    expect(e.info.code).toBe('E_SIZE');
    expect(e.info.pointer).toBe('/env/num_envs');
  });

  it('num_envs 1e8 (each tensor allocatable, over the memory budget) is E_SIZE at /env/num_envs', () => {
    const e = loomErr(() => tinyPipeline({ ...env(1e8), total_steps: 1e10, update: { epochs: 1, minibatches: 1 } }));
    expect(e.info.code).toBe('E_SIZE');
    expect(e.info.pointer).toBe('/env/num_envs');
    expect(e.info.message).toMatch(/800000000 rows .* need about 25\.3 GiB/);
    expect(e.info.expected).toMatch(/4\.0 GiB in all/);
  });

  it('the graphs widen the rows: 12M CartPole envs x 8 steps fit one number per row but not 4 observations', () => {
    const cfg = tinyPipeline({ ...env(12e6), total_steps: 1e10, update: { epochs: 1, minibatches: 1 } });
    const e = loomErr(() => loadPipelineGraphs(cfg));
    expect(e.info.code).toBe('E_SIZE');
    expect(e.info.pointer).toBe('/rollout/steps');
    expect(e.info.message).toMatch(/96000000 rows of 4 observation and 1 action values/);
  });

  it('the driver checks the budget before it allocates, for a config changed after loading', () => {
    const cfg = tinyPipeline();
    const graphs = loadPipelineGraphs(cfg);
    cfg.env.num_envs = 1e8;
    cfg.update.minibatches = 1;
    cfg.total_steps = 1e10;
    const e = loomErr(() => new Trainer(cfg, graphs));
    expect(e.info.code).toBe('E_SIZE');
  });

  it('the tiny pipeline fits', () => {
    expect(() => loadPipelineGraphs(tinyPipeline())).not.toThrow();
  });

  it('total_steps 1e300 is not a count', () => {
    const e = loomErr(() => tinyPipeline({ total_steps: 1e300 }));
    expect(e.info.code).toBe('E_SCHEMA');
    expect(e.info.pointer).toBe('/total_steps');
  });
});
