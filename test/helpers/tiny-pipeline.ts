/** A tiny CartPole PPO pipeline for driver tests: 2 envs x 8 steps, 2 epochs x 2 minibatches. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePipeline, type PipelineConfig } from '../../runtime/pipeline/config.ts';

export const G = (p: string) => join(import.meta.dirname, '../../graphs', p);

/** The tiny pipeline as a pipeline file's JSON; `over` replaces top-level keys (undefined drops one). */
export function tinyPipelineJson(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
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
  };
}

export function tinyPipeline(over: Record<string, unknown> = {}): PipelineConfig {
  return parsePipeline(tinyPipelineJson(over), '/virtual/tiny.json');
}

/** Writes the tiny pipeline to DIR/p.json, for tests that run the CLI on a file, and returns the path. */
export function writeTinyPipeline(dir: string, over: Record<string, unknown> = {}): string {
  const f = join(dir, 'p.json');
  writeFileSync(f, JSON.stringify(tinyPipelineJson(over)));
  return f;
}
