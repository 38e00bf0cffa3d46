/**
 * A host env seen through the env role: reset and step as programs with the inputs and outputs of
 * the reset and step graphs, so the driver runs host envs where it runs graph envs. The env tensors
 * the driver carries are `state` (float32[N, 0]: the state lives in the host env), `t` and `obs`.
 */
import * as tf from '@tensorflow/tfjs';
import type { Key } from '../../compiler/ops/threefry.ts';
import { randomBits } from '../../compiler/ops/threefry.ts';
import { LoomError } from '../../compiler/errors.ts';
import { hostValues } from '../host-memory.ts';
import { syncProgram, type Program } from '../pipeline/program.ts';
import type { HostEnv, HostEnvDefinition } from './host-env.ts';

export interface HostEnvPrograms {
  env: HostEnv;
  reset: Program;
  step: Program;
}

/** A user env's arrays become tensors only with the sizes its spaces promise: otherwise a clear error, not a tfjs one. */
function checked<T extends ArrayLike<number>>(name: string, what: string, v: T, n: number, per: string): T {
  if (v?.length === n) return v;
  throw new LoomError({ code: 'E_INPUT', message: `host env ${name}: ${what} has ${v?.length ?? 'no'} values`, expected: `${n} (${per})`, found: String(v?.length ?? v), hint: `check the ${what.split(' ')[0]} of ${name}'s HostEnv against its definition` });
}

export function hostEnvPrograms(name: string, def: HostEnvDefinition, numEnvs: number): HostEnvPrograms {
  const env = def.create({ numEnvs });
  const N = numEnvs;
  const O = def.observationShape[0];
  const perObs = `${N} envs x obs width ${O}`;
  const state = () => tf.zeros([N, 0], 'float32');
  const reset = syncProgram(({ key }) => {
    // The env's seed: a word drawn from the key, so a key gives the same episodes every time.
    const k = hostValues(key!);
    const seed = randomBits([k[0]! >>> 0, k[1]! >>> 0] as Key, 1)[0]!;
    return { state: state(), t: tf.zeros([N], 'int32'), obs: tf.tensor(checked(name, 'reset() obs', env.reset(seed), N * O, perObs), [N, O], 'float32') };
  });
  const step = syncProgram(({ t, action }) => {
    const a = hostValues(action!);
    const r = env.step(a instanceof Int32Array ? Int32Array.from(a) : Float32Array.from(a));
    const t0 = hostValues(t!);
    const done = (i: number) => r.terminated[i] !== 0 || r.truncated[i] !== 0;
    for (const k of ['reward', 'terminated', 'truncated'] as const) checked(name, `step() ${k}`, r[k], N, `one per env`);
    return {
      state: state(),
      t: tf.tensor(Int32Array.from({ length: N }, (_, i) => (done(i) ? 0 : t0[i]! + 1)), [N], 'int32'),
      obs: tf.tensor(checked(name, 'step() obs', r.obs, N * O, perObs), [N, O], 'float32'),
      reward: tf.tensor(Float32Array.from(r.reward), [N], 'float32'),
      terminated: tf.tensor(r.terminated, [N], 'bool'),
      truncated: tf.tensor(r.truncated, [N], 'bool'),
      final_obs: tf.tensor(checked(name, 'step() final_obs', r.final_obs, N * O, perObs), [N, O], 'float32'),
    };
  });
  return { env, reset, step };
}
