/**
 * The PPO + AlphaGrad CartPole program (graphs/programs/ppo-alphagrad-cartpole/): init + iterations
 * against the classic Trainer on graphs/pipelines/ppo-alphagrad-cartpole.json, the optimizer's
 * momentum buffer and every metric included.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { cartpoleStateRefs, expectProgramMatchesTrainer, type StateRef } from '../helpers/program-vs-trainer.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const values = (t: tf.Tensor) => Array.from(t.dataSync());
const STATE: Record<string, StateRef> = {
  ...cartpoleStateRefs(),
  opt_buf: (t) => values(t.optState.buf!),
  opt_step: (t) => values(t.optState.step!),
};
const PROGRAM = G('programs/ppo-alphagrad-cartpole/program.json');
const PIPELINE = G('pipelines/ppo-alphagrad-cartpole.json');

describe('the PPO + AlphaGrad program against the classic Trainer on ppo-alphagrad-cartpole.json', () => {
  for (const [name, executor, iterations] of [['interpreter', 'interpret', 1], ['compiled executor', 'compiled', 2]] as const)
    it(`${name}: init + ${iterations} iteration(s) give the same state, momentum buffer and metrics (no grad-norm clipping)`, () => {
      const rows = expectProgramMatchesTrainer({ program: PROGRAM, pipeline: PIPELINE, executor, iterations, seed: 3, state: STATE });
      // Norms above max_grad_norm that the step did not clip: the unclipped path is the one compared.
      expect(rows.some((r) => r.grad_clip_frac! > 0)).toBe(true);
    });

  it('clip_grad 1 equals the pipeline with optimizer.clip_grad true', () => {
    expectProgramMatchesTrainer({
      program: PROGRAM,
      pipeline: PIPELINE,
      executor: 'compiled',
      iterations: 1,
      seed: 5,
      hyper: { clip_grad: 1 },
      pipelineConfig: (c) => ({ ...c, optimizer: { ...c.optimizer, clip_grad: true } }),
      state: STATE,
    });
  });
});
