/**
 * Host environments: simulators that are not graphs (a TypeScript env, MuJoCo in wasm), stepped
 * from the host by the rollout beside the graph envs. A pipeline names one by `env.host`; the
 * name is looked up in a registry (the built-in MuJoCo envs, and envs registered through the
 * public API), so a pipeline file, which is untrusted, can never name code to load.
 */
import { LoomError } from '../../compiler/errors.ts';
import { suggest } from '../../compiler/suggest.ts';
import { MUJOCO_ENVS } from './mujoco.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Discrete actions are int32 indices in [0, n); box actions float32 vectors of low.length elements. */
export type ActionSpace = { kind: 'discrete'; n: number } | { kind: 'box'; low: readonly number[]; high: readonly number[] };

/** One vectorised step; every array is row-major over the envs. */
export interface HostStep {
  /** [numEnvs * obsDim]: the next observation, a fresh episode's first one for the envs that are done. */
  obs: Float32Array;
  /** [numEnvs] */
  reward: Float32Array | Float64Array;
  /** [numEnvs], 1 where the step reached a terminal state of the MDP. */
  terminated: Uint8Array;
  /** [numEnvs], 1 where the step hit the time limit. */
  truncated: Uint8Array;
  /** [numEnvs * obsDim]: the observation after the step and before any reset. */
  final_obs: Float32Array;
}

/**
 * `numEnvs` envs stepped together, with gymnasium's same-step auto-reset (< 1.0, as CleanRL uses):
 * an env that is done starts its next episode inside `step`, and `final_obs` keeps the last
 * observation of the finished one.
 */
export interface HostEnv {
  /** Starts every env's first episode from `seed` (a uint32) and returns the observations. */
  reset(seed: number): Float32Array;
  /** `actions`: [numEnvs] int32 for discrete spaces, [numEnvs * actDim] float32 for boxes. */
  step(actions: Float32Array | Int32Array): HostStep;
  /**
   * The whole state of the envs (simulator state, RNG, elapsed steps) as JSON, for checkpoints.
   * Without getState/setState a resumed run starts new episodes.
   */
  getState?(): JsonValue;
  setState?(state: JsonValue): void;
  /** Frees what the envs hold outside the JS heap. */
  close?(): void;
}

export interface HostEnvDefinition {
  /** The observation of one env: one dim, its width. */
  observationShape: readonly [number];
  action: ActionSpace;
  /** Builds the envs. Synchronous: asynchronous set-up (loading a wasm module) belongs in `load`. */
  create(opts: { numEnvs: number }): HostEnv;
  /** Awaited once before `create` by `train`; loading twice must be harmless. */
  load?(): Promise<void>;
  /** One line for listings. */
  doc?: string;
}

const BUILT_IN: ReadonlyMap<string, HostEnvDefinition> = new Map(Object.entries(MUJOCO_ENVS));
const registered = new Map<string, HostEnvDefinition>();

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/**
 * Makes a host env available to pipelines as `"env": {"host": name}`. Registering a name again
 * replaces the user env of that name; the built-in names cannot be replaced.
 */
export function registerHostEnv(name: string, def: HostEnvDefinition): void {
  const fail = (message: string, expected: string, found: string): never => {
    throw new LoomError({ code: 'E_USAGE', message: `registerHostEnv: ${message}`, expected, found });
  };
  if (!NAME.test(name)) fail('bad env name', 'letters, digits, "_", "." and "-", starting with a letter or digit, at most 100 characters', name);
  if (BUILT_IN.has(name)) fail(`"${name}" is a built-in env`, 'a name of your own', name);
  const [w] = def.observationShape;
  if (def.observationShape.length !== 1 || !Number.isInteger(w) || w! < 1) fail('observationShape must be [width] with a positive integer width', '[width]', JSON.stringify(def.observationShape));
  const a = def.action;
  if (a.kind === 'discrete' && !(Number.isInteger(a.n) && a.n >= 1)) fail('a discrete action space needs n >= 1', 'an integer n >= 1', String(a.n));
  if (a.kind === 'box' && (a.low.length < 1 || a.low.length !== a.high.length || a.low.some((l, i) => !(l <= a.high[i]!))))
    fail('a box action space needs low and high of the same non-zero length, with low <= high', 'low[i] <= high[i]', `low ${JSON.stringify(a.low)}, high ${JSON.stringify(a.high)}`);
  registered.set(name, def);
}

/** Removes a user env (built-ins stay); true when there was one. */
export function unregisterHostEnv(name: string): boolean {
  return registered.delete(name);
}

export function hostEnvNames(): string[] {
  return [...BUILT_IN.keys(), ...registered.keys()];
}

/** The definition of a host env, or an error at the pipeline's `env.host` naming the known ones. */
export function hostEnvDefinition(name: string, file?: string): HostEnvDefinition {
  const def = BUILT_IN.get(name) ?? registered.get(name);
  if (def) return def;
  const near = suggest(name, hostEnvNames());
  throw new LoomError({
    code: 'E_INPUT',
    message: `unknown host env "${name}"`,
    ...(file !== undefined ? { file, pointer: '/env/host' } : {}),
    expected: `one of ${hostEnvNames().join(', ')}`,
    found: name,
    hint: near ? `did you mean "${near}"?` : 'register your own with registerHostEnv(name, definition) before train',
  });
}

/** Loads what a host env needs before `create` (MuJoCo's wasm module); `train` and `loom eval` call it. */
export async function loadHostEnv(name: string, file?: string): Promise<void> {
  await hostEnvDefinition(name, file).load?.();
}

/** Obs width and action dims of one env, as the role contracts see them. */
export function hostEnvIo(def: HostEnvDefinition): { obs: number; action: { dtype: 'int32' | 'float32'; dims: number[] } } {
  return { obs: def.observationShape[0], action: def.action.kind === 'discrete' ? { dtype: 'int32', dims: [] } : { dtype: 'float32', dims: [def.action.low.length] } };
}
