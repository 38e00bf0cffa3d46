/**
 * The Hybrid GRPO CartPole program (graphs/programs/hybrid-grpo-cartpole/): init + iterations against
 * the classic Trainer on graphs/pipelines/hybrid-grpo-cartpole.json, state and every metric, with
 * uniform and with value-based branch selection.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { ADAM_RTOL, ADAM_STATE_REFS, cartpoleStateRefs, expectProgramMatchesTrainer, type StateRef } from '../helpers/program-vs-trainer.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const STATE: Record<string, StateRef> = {
  ...cartpoleStateRefs(),
  ...ADAM_STATE_REFS,
};
const PROGRAM = G('programs/hybrid-grpo-cartpole/program.json');
const PIPELINE = G('pipelines/hybrid-grpo-cartpole.json');

describe('the Hybrid GRPO program against the classic Trainer on hybrid-grpo-cartpole.json', () => {
  for (const [name, executor, iterations] of [['interpreter', 'interpret', 1], ['compiled executor', 'compiled', 2]] as const)
    it(`${name}: init + ${iterations} iteration(s) give the same state and metrics (4 envs x 32 states x 4 branches, 10 x 4 minibatches)`, () => {
      const rows = expectProgramMatchesTrainer({ program: PROGRAM, pipeline: PIPELINE, executor, iterations, seed: 3, state: STATE, rtol: ADAM_RTOL });
      for (const r of rows) {
        expect(r.env_steps).toBe(512);
        // The critic learns from y: the explained variance is a number, not GRPO's NaN.
        expect(Number.isFinite(r.explained_variance)).toBe(true);
      }
    });

  it('select_argmax 1 equals the pipeline with group.select "argmax" (value-based selection)', () => {
    expectProgramMatchesTrainer({
      program: PROGRAM,
      pipeline: PIPELINE,
      executor: 'compiled',
      iterations: 2,
      seed: 5,
      hyper: { select_argmax: 1 },
      pipelineConfig: (c) => ({ ...c, group: { ...c.group!, select: 'argmax' } }),
      state: STATE,
      rtol: ADAM_RTOL,
    });
  });

  it("the blend's hyperparameters are hyper entries: alpha 0.25, f identity, raw advantages equal the pipeline's group.hp", () => {
    // CartPole's one-step reward is always 1, so every group's z-score is 0: alpha shows only as the
    // (1 - alpha) scale of the hybrid term, which per-minibatch normalisation would hide (norm_adv 0 here).
    const hp = { alpha: 0.25, f_mode: 1, bootstrap: 1 };
    expectProgramMatchesTrainer({
      program: PROGRAM,
      pipeline: PIPELINE,
      executor: 'compiled',
      iterations: 1,
      seed: 6,
      hyper: { ...hp, norm_adv: 0 },
      pipelineConfig: (c) => ({ ...c, group: { ...c.group!, hp: { ...c.group!.hp, ...hp } }, update: { ...c.update, norm_adv: false } }),
      state: STATE,
      rtol: ADAM_RTOL,
    });
  });
});
