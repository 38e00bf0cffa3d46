import { describe, expect, it } from 'vitest';
import { loomErr } from '../../helpers/loom-error.ts';
import { G, tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

const env1 = { step: G('envs/cartpole.step.graph.json'), reset: G('envs/cartpole.reset.graph.json'), num_envs: 1 };

describe('minibatch size', () => {
  it('rejects minibatches of one row when advantages are normalised (Bessel std of one row is 0/0)', () => {
    const e = loomErr(() => tiny({ env: env1, rollout: { steps: 2 }, update: { epochs: 1, minibatches: 2 }, total_steps: 2 }));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', file: '/virtual/tiny.json', pointer: '/update/minibatches', expected: 'at most 1 (minibatches of 2 rows or more)', found: '2 (minibatches of 1 row)' });
    expect(e.info.message).toMatch(/advantage normalisation .* one row .* NaN/);
    expect(e.info.hint).toMatch(/lower update\.minibatches.* update\.norm_adv false/);
  });

  it('accepts them without normalisation, and two rows with it', () => {
    expect(tiny({ env: env1, rollout: { steps: 2 }, update: { epochs: 1, minibatches: 2, norm_adv: false }, total_steps: 2 }).update.minibatches).toBe(2);
    expect(tiny({ env: env1, rollout: { steps: 4 }, update: { epochs: 1, minibatches: 2 }, total_steps: 4 }).update.minibatches).toBe(2);
  });

  it('counts every group branch as a row', () => {
    expect(tiny({ algorithm: 'hybrid-grpo', group: { size: 2 }, env: env1, rollout: { steps: 1 }, update: { minibatches: 1 }, total_steps: 2 }).update.norm_adv).toBe(true);
    expect(loomErr(() => tiny({ algorithm: 'hybrid-grpo', group: { size: 2 }, env: env1, rollout: { steps: 1 }, update: { minibatches: 2 }, total_steps: 2 })).info.pointer).toBe('/update/minibatches');
  });
});
