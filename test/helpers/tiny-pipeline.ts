/** A tiny CartPole PPO pipeline for driver tests: 2 envs x 8 steps, 2 epochs x 2 minibatches. */
import { join } from 'node:path';
import { parsePipeline, type PipelineConfig } from '../../runtime/pipeline/config.ts';

export const G = (p: string) => join(import.meta.dirname, '../../graphs', p);

export function tinyPipeline(over: Record<string, unknown> = {}): PipelineConfig {
  return parsePipeline(
    {
      pipeline: 'tiny',
      env: { step: G('envs/cartpole.step.graph.json'), reset: G('envs/cartpole.reset.graph.json'), num_envs: 2 },
      policy: { act: G('algorithms/ppo-cartpole.act.graph.json') },
      loss: G('algorithms/ppo-cartpole.loss.graph.json'),
      optimizer: { name: 'adam', lr: 2.5e-4 },
      rollout: { steps: 8 },
      update: { epochs: 2, minibatches: 2 },
      total_steps: 64,
      seed: 3,
      checkpoint: { every: 0 },
      eval: { episodes: 0 },
      ...over,
    },
    '/virtual/tiny.json',
  );
}
