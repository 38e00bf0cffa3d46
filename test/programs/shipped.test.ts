/**
 * Every shipped program pipeline, run for a few iterations by the program driver with the compiled
 * executor and with the reference interpreter on the same graphs: the state and every metric must
 * agree within float32 rounding of differently ordered arithmetic (fused kernels against one tfjs op
 * per node), which the relative tolerance below states.
 */
import { mkdtempSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { loadProgram } from '../../runtime/program/config.ts';
import { trainProgram } from '../../runtime/program/driver.ts';
import { mismatch } from '../helpers/mismatch.ts';

await tf.setBackend('wasm');

/**
 * Relative difference allowed after ITERATIONS iterations: |compiled - interpreted| / (1 + |interpreted|).
 * Continuous-action programs feed the policy's float32 rounding differences into the env dynamics at
 * every one of their 2048 steps per iteration, so their env state drifts further apart: 1e-4 for
 * discrete actions, 2e-3 for continuous ones. The group programs on MountainCarContinuous stay within
 * 1e-4; those on Pendulum do not, as their group z-scores of nearly equal branch rewards amplify it.
 */
const TOLERANCE = 1e-4;
const CONTINUOUS_TOLERANCE = 2e-3;
/** The continuous-action envs, by the suffix of a program's folder (ppo-, amppo-, ppo-alphagrad-<env>). */
const CONTINUOUS = ['pendulum', 'mountaincar_continuous'];
const ITERATIONS = 2;
/**
 * The AM-PPO and AlphaGrad programs on the continuous envs run one iteration here (after which
 * AM-PPO's agree to 2e-6 on Pendulum). In the second, the rollout starts from params and envs that rounding
 * already moved, and their updates amplify it past CONTINUOUS_TOLERANCE: on Pendulum AM-PPO's gate
 * saturates (alpha_ema near 25) and its Adam moment ends 3e-3 apart, against 7e-4 for PPO's. Their
 * second iteration is compared with the classic Trainer instead
 * (test/algorithms/ppo-variant-programs-envs.test.ts).
 */
const ONE_ITERATION = /\/(amppo|ppo-alphagrad)-(pendulum|mountaincar_continuous)\//;
/**
 * PPO + AlphaGrad on the Gaussian envs: AlphaGrad steps each tensor by tanh(alpha g / (||g|| + eps)),
 * so for a one-element tensor (actor_b3, actor_logstd) the step follows g's relative value. The
 * Gaussian mean's bias gradient is a sum of terms that nearly cancel, and the two executors' products
 * (the own wasm GEMM against tfjs's) round it apart by a large relative amount: after one iteration on
 * Pendulum its momentum buffer entry differs by 0.13 and the params by up to 4e-3. Here their state
 * and metrics are held to 1e-2, and the momentum buffer is not compared; the classic Trainer check,
 * on one backend, compares it.
 */
const STEP_SENSITIVE = /\/ppo-alphagrad-(pendulum|mountaincar_continuous)\//;
const STEP_SENSITIVE_TOLERANCE = 1e-2;

function programFiles(): string[] {
  const out: string[] = [];
  for (const base of ['graphs/programs', 'graphs/examples'])
    for (const d of readdirSync(resolve(base), { withFileTypes: true }))
      if (d.isDirectory() && existsSync(resolve(base, d.name, 'program.json'))) out.push(resolve(base, d.name, 'program.json'));
  return out.sort();
}

describe('shipped programs: compiled iterations equal the reference interpreter', () => {
  const files = programFiles();
  it('finds the programs', () => {
    expect(files.map((f) => relative(process.cwd(), f))).toEqual(expect.arrayContaining(['graphs/programs/ppo-cartpole/program.json', 'graphs/programs/ppo-penalty-cartpole/program.json']));
  });
  for (const file of files)
    it(`${relative(process.cwd(), file)}: ${ONE_ITERATION.test(file) ? 1 : ITERATIONS} iteration(s), state and metrics`, async () => {
      const cfg = loadProgram(file);
      const iterations = ONE_ITERATION.test(file) ? 1 : ITERATIONS;
      const run = (executor: 'compiled' | 'interpret') =>
        trainProgram(cfg, { outDir: mkdtempSync(join(tmpdir(), `loom-shipped-${executor}-`)), maxIterations: iterations, executor });
      const compiled = await run('compiled');
      const interpreted = await run('interpret');
      try {
        expect(compiled.iterations).toBe(iterations);
        const sensitive = STEP_SENSITIVE.test(file);
        const tolerance = sensitive ? STEP_SENSITIVE_TOLERANCE : CONTINUOUS.some((c) => file.includes(`-${c}/`)) ? CONTINUOUS_TOLERANCE : TOLERANCE;
        for (const k of Object.keys(interpreted.state)) if (!(sensitive && k === 'opt_buf')) expect(mismatch({ [k]: compiled.state[k]! }, { [k]: interpreted.state[k]! }), `state ${k}`).toBeLessThan(tolerance);
        compiled.metrics.forEach((row, i) => {
          const ref = interpreted.metrics[i]!;
          for (const [k, v] of Object.entries(row)) {
            if (k === 'steps_per_sec') continue;
            const r = ref[k];
            if (v === null || r === null) expect(v, k).toBe(r);
            else expect(Math.abs((v as number) - (r as number)) / (1 + Math.abs(r as number)), `${k} at iteration ${i + 1}`).toBeLessThan(tolerance);
          }
        });
      } finally {
        tf.dispose([...Object.values(compiled.state), ...Object.values(interpreted.state)]);
      }
    }, 120_000);
});
