/**
 * The GRPO CartPole program (graphs/programs/grpo-cartpole/): init + iterations against the classic
 * Trainer on graphs/pipelines/grpo-cartpole.json, state and every metric.
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

describe('the GRPO program against the classic Trainer on grpo-cartpole.json', () => {
  for (const [name, executor, iterations] of [['interpreter', 'interpret', 1], ['compiled executor', 'compiled', 2]] as const)
    it(`${name}: init + ${iterations} iteration(s) give the same state and metrics (4 envs x 32 states x 4 branches x 8 steps)`, () => {
      const rows = expectProgramMatchesTrainer({
        program: G('programs/grpo-cartpole/program.json'),
        pipeline: G('pipelines/grpo-cartpole.json'),
        executor,
        iterations,
        seed: 3,
        state: STATE,
        rtol: ADAM_RTOL,
      });
      for (const r of rows) expect(r.env_steps).toBe(4096);
    });

  it('a group whose branches all end before the horizon splits no more keys, as the classic loop stops', () => {
    // Every env starts with the pole past 12 degrees: all 16 branches of the first visited state end
    // at their first step, so the classic driver skips the 7 further branch steps and their key splits.
    const tilted = [0, 0, 0.3, 0];
    const rows = expectProgramMatchesTrainer({
      program: G('programs/grpo-cartpole/program.json'),
      pipeline: G('pipelines/grpo-cartpole.json'),
      executor: 'compiled',
      iterations: 1,
      seed: 4,
      state: STATE,
      rtol: ADAM_RTOL,
      prepare: (state, trainer) => {
        const s = tf.tensor(Array.from({ length: 4 }, () => tilted).flat(), [4, 4]);
        tf.dispose([state.env_state!, state.obs!, trainer.env.state!, trainer.env.obs!]);
        trainer.env.state = s.clone();
        trainer.env.obs = s.clone();
        return { ...state, env_state: s, obs: s.clone() };
      },
    });
    // The 4 episodes that ended at once are among the iteration's, each of length 1.
    expect(rows[0]!.episodes).toBeGreaterThanOrEqual(4);
  });

  it('grpo-kl-cartpole, the same program with kl_coef 0.04, equals the Trainer on grpo-kl-cartpole.json (the KL-penalised loss)', () => {
    const rows = expectProgramMatchesTrainer({
      program: G('programs/grpo-kl-cartpole/program.json'),
      pipeline: G('pipelines/grpo-kl-cartpole.json'),
      executor: 'compiled',
      iterations: 2,
      seed: 3,
      state: STATE,
      rtol: ADAM_RTOL,
    });
    // The penalty is in the loss: loss = pg_loss + 0.04 * KL with KL > 0 once the policy has moved (ent_coef and vf_coef are 0).
    for (const r of rows) expect(r.loss! - r.pg_loss!).toBeGreaterThan(0);
  });
});
