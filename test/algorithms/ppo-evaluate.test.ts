/**
 * The PPO CartPole program's evaluate graph (a scan of 500 deterministic steps over 10 envs), against
 * the episodes played here step by step with the CartPole step graph: a policy that always pushes
 * right, so every episode's length is known from the physics alone.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const EVALUATE = loadGraph(G('programs/ppo-cartpole/evaluate.graph.json'));
const RESET = loadGraph(G('envs/cartpole.reset.graph.json'));
const STEP = loadGraph(G('envs/cartpole.step.graph.json'));

/** Params of a policy whose logits are [0, 5] whatever the observation: it pushes right. */
function pushRight(): TensorMap {
  const p: TensorMap = {};
  for (const i of EVALUATE.inputs) if (i.name !== 'key') p[i.name] = tf.zeros(i.type.shape as number[]);
  p.actor_b3 = tf.tensor([0, 5]);
  return p;
}

describe('PPO CartPole evaluate graph', () => {
  it('plays 10 episodes with the policy mode and returns their mean, min and max return', () => {
    const key = tf.tensor([0, 42], [2], 'int32');
    const reset = interpret(RESET, { key, like: tf.zeros([10], 'int32') }, {});
    let state = reset.state!;
    let t = reset.t!;
    const returns = new Array(10).fill(0);
    const alive = new Array(10).fill(true);
    for (let s = 0; s < 500 && alive.some(Boolean); s++) {
      const out = interpret(STEP, { state, t, action: tf.ones([10], 'int32'), key: tf.tensor([1, s], [2], 'int32') }, {});
      const term = out.terminated!.dataSync();
      const trunc = out.truncated!.dataSync();
      const reward = out.reward!.dataSync();
      for (let i = 0; i < 10; i++)
        if (alive[i]) {
          returns[i] += reward[i]!;
          if (term[i] || trunc[i]) alive[i] = false;
        }
      state = out.state!;
      t = out.t!;
    }
    // Pushing right topples the pole within a few dozen steps, from every reset.
    expect(Math.max(...returns)).toBeLessThan(60);
    expect(Math.min(...returns)).toBeGreaterThan(3);
    for (const run of [() => interpret(EVALUATE, { key, ...pushRight() }, {}), () => compileProgram(EVALUATE).run({ key, ...pushRight() }, {})]) {
      const out = run();
      expect(out.return_mean!.dataSync()[0]).toBeCloseTo(returns.reduce((a, b) => a + b, 0) / 10, 4);
      expect(out.return_min!.dataSync()[0]).toBe(Math.min(...returns));
      expect(out.return_max!.dataSync()[0]).toBe(Math.max(...returns));
      expect(out.episodes!.dataSync()[0]).toBe(10);
    }
  });
});
