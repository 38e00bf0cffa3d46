/**
 * The GRPO and Hybrid GRPO programs on Acrobot-v1, Pendulum-v1 and MountainCarContinuous-v0
 * (graphs/programs/{grpo,hybrid-grpo}-<env>/, written by tools/group-programs.ts): the checked-in
 * files are the generator's output, and init + 2 compiled iterations equal the classic Trainer on
 * the same pipeline and seed, every state tensor (normalisation statistics included) and metric.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { withEnv } from '../../runtime/pipeline/config.ts';
import { GROUP_PROGRAMS, groupLayoutOf, groupProgramFiles, groupProgramHyper } from '../../tools/group-programs.ts';
import { ADAM_STATE_REFS, OBS_NORM_STATE_REFS, RETURN_NORM_STATE_REFS, ppoStateRefs, expectProgramMatchesTrainer } from '../helpers/program-vs-trainer.ts';

await tf.setBackend('cpu');

const G = (p: string) => resolve('graphs', p);
const METRICS = ['loss', 'pg_loss', 'v_loss', 'entropy', 'approx_kl', 'clipfrac', 'grad_norm', 'grad_clip_frac', 'explained_variance'];

describe('tools/group-programs.ts', () => {
  for (const spec of GROUP_PROGRAMS)
    it(`graphs/programs/${spec.name}/ holds what the generator writes`, () => {
      const { dir, files } = groupProgramFiles(spec);
      for (const [f, text] of Object.entries(files)) expect(readFileSync(join(dir, f), 'utf8'), `${spec.name}/${f}: run npm run programs:generate`).toBe(text);
    });
});

describe('init + iterations: each group program against the classic Trainer', () => {
  for (const spec of GROUP_PROGRAMS)
    it(`${spec.name}: init + 2 compiled iterations equal the classic Trainer's init + iterate on ${spec.pipeline}${spec.env ? ` with --env ${spec.env}` : ''}`, () => {
      const L = groupLayoutOf(spec);
      const program = JSON.parse(readFileSync(G(`programs/${spec.name}/program.json`), 'utf8')) as { hyper: Record<string, number> };
      expect(program.hyper).toEqual(groupProgramHyper(L));
      const state = {
        ...ppoStateRefs(L.params.map((p) => p.name)),
        ...ADAM_STATE_REFS,
        ...(L.normObs ? OBS_NORM_STATE_REFS : {}),
        ...(L.normReward ? RETURN_NORM_STATE_REFS : {}),
      };
      // On Pendulum the group z-scores amplify float32 rounding: the branches from one state differ in reward by
      // 0.001 u^2 only, and the Trainer scales rewards in float64. Adam steps of elements whose gradient is mostly
      // that noise go their own way (up to 3 steps of lr 3e-4 apart after 640 steps), and the second rollout's
      // continuous actions carry it into the dynamics and the statistics. With a vanishing lr the rollouts agree
      // to 1e-4 in every state tensor and metric (the test below); MountainCarContinuous (0.1 u^2) needs none of this.
      const pendulum = L.cfg.env.name === 'Pendulum-v1';
      const rows = expectProgramMatchesTrainer({
        program: G(`programs/${spec.name}/program.json`),
        pipeline: G(spec.pipeline),
        pipelineConfig: (c) => (spec.env ? withEnv(c, spec.env) : c),
        executor: 'compiled',
        iterations: 2,
        seed: 2,
        state,
        // Adam's moments hold (squares of) gradients: their small entries carry more float32 rounding.
        rtol: pendulum ? { ...Object.fromEntries([...Object.keys(state), ...METRICS].map((k) => [k, 1e-2])), opt_m: 1e-1, opt_v: 1e-1 } : { opt_m: 1e-2, opt_v: 1e-2 },
        ...(pendulum ? { atol: Object.fromEntries(Object.keys(state).map((k) => [k, 1e-3])) } : {}),
      });
      for (const r of rows) expect(r.env_steps).toBe(L.N * L.T * L.G * L.H);
    });
});

describe('the group rollouts alone: a vanishing learning rate leaves only the rollout to compare', () => {
  for (const name of ['grpo-pendulum', 'hybrid-grpo-pendulum'])
    it(`${name}: every state tensor and metric but Adam's moments agree to 1e-4 over 2 iterations`, () => {
      const spec = GROUP_PROGRAMS.find((s) => s.name === name)!;
      const L = groupLayoutOf(spec);
      expectProgramMatchesTrainer({
        program: G(`programs/${spec.name}/program.json`),
        pipeline: G(spec.pipeline),
        executor: 'compiled',
        iterations: 2,
        seed: 2,
        hyper: { lr: 1e-30 },
        pipelineConfig: (c) => ({ ...c, optimizer: { ...c.optimizer, lr: 1e-30 } }),
        state: { ...ppoStateRefs(L.params.map((p) => p.name)), ...ADAM_STATE_REFS, ...OBS_NORM_STATE_REFS, ...RETURN_NORM_STATE_REFS },
        // The moments sum the gradients of the z-scored advantages (see above).
        rtol: { opt_m: 1e-1, opt_v: 1e-1 },
      });
    });
});
