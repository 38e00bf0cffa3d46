/**
 * The AM-PPO CartPole program (graphs/programs/amppo-cartpole/): init + iterations against the
 * classic Trainer on graphs/pipelines/amppo-cartpole.json, state, controller and every metric.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { Trainer } from '../../runtime/pipeline/driver.ts';
import { ADAM_RTOL, ADAM_STATE_REFS, cartpoleStateRefs, expectProgramMatchesTrainer, type StateRef } from '../helpers/program-vs-trainer.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const STATE: Record<string, StateRef> = {
  ...cartpoleStateRefs(),
  ...ADAM_STATE_REFS,
  amppo_alpha_ema: (t: Trainer) => [t.host.amppo!.alpha_ema],
  amppo_s_ema: (t: Trainer) => [t.host.amppo!.s_ema],
};

describe('the AM-PPO program against the classic Trainer on amppo-cartpole.json', () => {
  for (const [name, executor, iterations] of [['interpreter', 'interpret', 1], ['compiled executor', 'compiled', 2]] as const)
    it(`${name}: init + ${iterations} iteration(s) give the same state, controller and metrics (4 envs x 128 steps, 4 x 4 minibatches)`, () => {
      const rows = expectProgramMatchesTrainer({
        program: G('programs/amppo-cartpole/program.json'),
        pipeline: G('pipelines/amppo-cartpole.json'),
        executor,
        iterations,
        seed: 3,
        state: STATE,
        rtol: ADAM_RTOL,
      });
      // The controller moved and the minibatches saturate (spec §2.7): the modulation is not a no-op.
      for (const r of rows) {
        expect(r.alpha_ema).toBeGreaterThan(1.5);
        expect(r.sat_mb).toBeGreaterThan(0.2);
        expect(r.adv_mod_abs).not.toBeCloseTo(r.adv_raw_abs!, 3);
      }
    });

  it('modulated_value_target 0 equals the pipeline with value_target "gae" (the GAE return stays the value target)', () => {
    expectProgramMatchesTrainer({
      program: G('programs/amppo-cartpole/program.json'),
      pipeline: G('pipelines/amppo-cartpole.json'),
      executor: 'compiled',
      iterations: 1,
      seed: 5,
      hyper: { modulated_value_target: 0 },
      pipelineConfig: (c) => ({ ...c, advantage: { ...c.advantage, transform: { ...c.advantage.transform!, value_target: 'gae' } } }),
      state: STATE,
      rtol: ADAM_RTOL,
    });
  });
});
