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
const CONTINUOUS = ['ppo-pendulum', 'ppo-mountaincar_continuous', 'grpo-pendulum', 'hybrid-grpo-pendulum'];
const ITERATIONS = 2;

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
    it(`${relative(process.cwd(), file)}: ${ITERATIONS} iterations, state and metrics`, async () => {
      const cfg = loadProgram(file);
      const run = (executor: 'compiled' | 'interpret') =>
        trainProgram(cfg, { outDir: mkdtempSync(join(tmpdir(), `loom-shipped-${executor}-`)), maxIterations: ITERATIONS, executor });
      const compiled = await run('compiled');
      const interpreted = await run('interpret');
      try {
        expect(compiled.iterations).toBe(ITERATIONS);
        const tolerance = CONTINUOUS.some((c) => file.includes(`/${c}/`)) ? CONTINUOUS_TOLERANCE : TOLERANCE;
        for (const k of Object.keys(interpreted.state)) expect(mismatch({ [k]: compiled.state[k]! }, { [k]: interpreted.state[k]! }), `state ${k}`).toBeLessThan(tolerance);
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
