/**
 * The AM-PPO and PPO + AlphaGrad programs on Acrobot-v1, Pendulum-v1 and MountainCarContinuous-v0
 * (graphs/programs/{amppo,ppo-alphagrad}-<env>/, written by tools/ppo-programs.ts): init + 2 compiled
 * iterations against the classic Trainer on the same pipeline and seed, every state tensor (the
 * controller's or the momentum buffer included) and every metric. MountainCarContinuous has no
 * classic pipeline: it is compared with the Pendulum pipeline run with --env, as its program says.
 * That the checked-in files are the generator's output is checked in ppo-programs-envs.test.ts.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { Trainer } from '../../runtime/pipeline/driver.ts';
import { withEnv } from '../../runtime/pipeline/config.ts';
import { loadProgram } from '../../runtime/program/config.ts';
import { PROGRAMS, layoutOf, programHyper } from '../../tools/ppo-programs.ts';
import { ADAM_STATE_REFS, expectProgramMatchesTrainer, ppoStateRefs, type StateRef } from '../helpers/program-vs-trainer.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const values = (t: tf.Tensor) => Array.from(t.dataSync());

const AMPPO_REFS: Record<string, StateRef> = {
  ...ADAM_STATE_REFS,
  amppo_alpha_ema: (t: Trainer) => [t.host.amppo!.alpha_ema],
  amppo_s_ema: (t: Trainer) => [t.host.amppo!.s_ema],
};
const ALPHAGRAD_REFS: Record<string, StateRef> = {
  opt_buf: (t) => values(t.optState.buf!),
  opt_step: (t) => values(t.optState.step!),
};
// Two iterations of float32 rounding in 16 to 320 optimizer steps: the rollout's second pass acts with
// params equal to rounding, and continuous actions carry that into the dynamics; Adam's second moment
// and AlphaGrad's tanh of a per-tensor normalised gradient amplify it in small entries.
const RTOL = 1e-3;
const LOOSE: Record<string, number> = { opt_m: 1e-2, opt_v: 1e-2, opt_buf: 1e-2, approx_kl: 1e-2, clipfrac: 1e-2 };
// The momentum buffer's near-zero entries (tanh of a gradient entry far below its tensor's norm) to 1e-5 of its largest.
const ATOL = { opt_buf: 1e-5 };

describe('AM-PPO and PPO + AlphaGrad programs per env against the classic Trainer', () => {
  for (const spec of PROGRAMS.filter((s) => s.base))
    it(`${spec.name}: init + 2 compiled iterations equal the classic Trainer on ${spec.pipeline}${spec.env ? ` with --env ${spec.env}` : ''}`, () => {
      const L = layoutOf(spec);
      const program = G(`programs/${spec.name}/program.json`);
      // The program's hyper entries (its own, and for AM-PPO those of the PPO program it extends) are the pipeline's.
      expect(loadProgram(program).hyper).toEqual(programHyper(L));
      const shared = ppoStateRefs(
        L.params.map((p) => p.name),
        { obs: L.normObs, reward: L.normReward },
      );
      const rows = expectProgramMatchesTrainer({
        program,
        pipeline: G(spec.pipeline),
        ...(spec.env ? { pipelineConfig: (c) => withEnv(c, spec.env!) } : {}),
        executor: 'compiled',
        iterations: 2,
        seed: 2,
        state: { ...shared, ...(L.variant === 'amppo' ? AMPPO_REFS : ALPHAGRAD_REFS) },
        defaultRtol: RTOL,
        rtol: LOOSE,
        atol: ATOL,
      });
      // The variant's own path did something: the controller moved and modulated, or AlphaGrad stepped on unclipped norms.
      for (const r of rows)
        if (L.variant === 'amppo') {
          expect(r.alpha_ema).not.toBeCloseTo(1, 3);
          expect(r.adv_mod_abs).not.toBeCloseTo(r.adv_raw_abs!, 3);
        }
      if (L.variant === 'alphagrad') expect(rows.some((r) => r.grad_clip_frac! > 0)).toBe(true);
    });
});
