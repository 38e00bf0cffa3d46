/**
 * Writes the program of each classic PPO-family pipeline listed in PROGRAMS: graphs/programs/<name>/
 * init, rollout-step, update-step, iteration, evaluate and eval-step graphs and program.json, with the
 * pipeline's env, agent, sizes, normalisation and hyperparameters (docs/programs.md, "The PPO programs
 * per env"). An AM-PPO or AlphaGrad pipeline (advantage.transform amppo, optimizer alphagrad) gives a
 * variant that calls the rollout step and evaluate graph of the PPO program on the same env (its
 * `base`) and writes only the stages that differ: init, update step, iteration and program.json.
 * The agent's param layout (flatten offsets) comes from its act graph, so a changed agent means
 * running this again, not editing offsets by hand.
 *
 *   npm run programs:generate            # rewrites the files
 *   npm run programs:generate -- --check # exits 1 when a checked-in file differs
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadGraph } from '../compiler/frontend/load.ts';
import { GRAPHS_DIR, loadPipeline, withEnv, type PipelineConfig } from '../runtime/pipeline/config.ts';

/** A program: its name (the folder under graphs/programs/), the classic pipeline it equals, and an env swap. */
export interface ProgramSpec {
  name: string;
  pipeline: string;
  /** A Gymnasium id for `withEnv`, as `loom train --env` swaps it. */
  env?: string;
  /** For an AM-PPO or AlphaGrad variant: the PPO program in PROGRAMS whose rollout step and evaluate graph it calls. */
  base?: string;
}

export const PROGRAMS: readonly ProgramSpec[] = [
  { name: 'ppo-acrobot', pipeline: 'pipelines/ppo-acrobot.json' },
  { name: 'ppo-pendulum', pipeline: 'pipelines/ppo-pendulum.json' },
  // No classic MountainCarContinuous pipelines: Pendulum's settings with the MountainCar env and agent.
  { name: 'ppo-mountaincar_continuous', pipeline: 'pipelines/ppo-pendulum.json', env: 'MountainCarContinuous-v0' },
  { name: 'amppo-acrobot', pipeline: 'pipelines/amppo-acrobot.json', base: 'ppo-acrobot' },
  { name: 'amppo-pendulum', pipeline: 'pipelines/amppo-pendulum.json', base: 'ppo-pendulum' },
  { name: 'amppo-mountaincar_continuous', pipeline: 'pipelines/amppo-pendulum.json', env: 'MountainCarContinuous-v0', base: 'ppo-mountaincar_continuous' },
  { name: 'ppo-alphagrad-acrobot', pipeline: 'pipelines/ppo-alphagrad-acrobot.json', base: 'ppo-acrobot' },
  { name: 'ppo-alphagrad-pendulum', pipeline: 'pipelines/ppo-alphagrad-pendulum.json', base: 'ppo-pendulum' },
  { name: 'ppo-alphagrad-mountaincar_continuous', pipeline: 'pipelines/ppo-alphagrad-pendulum.json', env: 'MountainCarContinuous-v0', base: 'ppo-mountaincar_continuous' },
];

/** What a pipeline's program is: PPO, AM-PPO (advantage.transform amppo) or PPO with the AlphaGrad optimizer. */
export type Variant = 'ppo' | 'amppo' | 'alphagrad';

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Node = { [k: string]: Json };

export interface Param {
  name: string;
  shape: number[];
  size: number;
  offset: number;
}

/** What the graphs are built from, read off the pipeline and its graphs. */
export interface Layout {
  spec: ProgramSpec;
  variant: Variant;
  cfg: PipelineConfig;
  dir: string;
  params: Param[];
  P: number;
  N: number;
  T: number;
  epochs: number;
  minibatches: number;
  obsDim: number;
  stateDim: number;
  /** Action dims after the env's: [] for a discrete action, [A] for a continuous one. */
  actionDims: number[];
  actionDtype: string;
  normObs: boolean;
  normReward: boolean;
  /** The env's time limit (its step graph's `limit`): the evaluation plays this many steps. */
  timeLimit: number;
  /** Episodes the evaluate graph plays side by side (the pipeline's eval.episodes). */
  evalEpisodes: number;
  /** The rollout step's and evaluate graph's folder: this program's, or its base's. */
  stages: string;
  /** Paths relative to the program's folder. */
  paths: {
    step: string; reset: string; act: string; loss: string; agent: string; gae: string; clip: string; adam: string; stat: string; normalize: string;
    controller: string; gate: string; alphagrad: string;
  };
}

function fail(spec: ProgramSpec, what: string): never {
  throw new Error(`${spec.name}: ${spec.pipeline} ${what}; the PPO program generator does not support it`);
}

export function layoutOf(spec: ProgramSpec, algorithm: PipelineConfig['algorithm'] = 'ppo'): Layout {
  let cfg = loadPipeline(join(GRAPHS_DIR, spec.pipeline));
  if (spec.env) cfg = withEnv(cfg, spec.env);
  if (cfg.algorithm !== algorithm) fail(spec, `is ${cfg.algorithm}`);
  if (cfg.env.host !== undefined) fail(spec, 'runs a host env');
  const variant: Variant = cfg.advantage.transform !== null ? 'amppo' : cfg.optimizer.name === 'alphagrad' ? 'alphagrad' : 'ppo';
  if (cfg.optimizer.name !== (variant === 'alphagrad' ? 'alphagrad' : 'adam')) fail(spec, `uses the optimizer ${cfg.optimizer.name}${variant === 'amppo' ? ' with AM-PPO' : ''}`);
  // AlphaGrad's program takes clip_grad as a hyper entry; Adam's always clips.
  if (variant !== 'alphagrad' && !cfg.optimizer.clip_grad) fail(spec, 'turns grad clipping off');
  if (Object.keys(cfg.optimizer.args).length) fail(spec, 'sets optimizer.args');
  if (cfg.update.target_kl !== null) fail(spec, 'sets update.target_kl (a scan cannot stop early)');
  if (cfg.normalize.per_env) fail(spec, 'sets normalize.per_env');
  if ((variant === 'ppo') !== (spec.base === undefined)) fail(spec, variant === 'ppo' ? 'is plain PPO but names a base' : `is a ${variant} variant without a base PPO program`);
  const dir = join(GRAPHS_DIR, 'programs', spec.name);
  const rel = (p: string) => relative(dir, p).split('\\').join('/');
  const act = loadGraph(cfg.policy.act);
  const step = loadGraph(cfg.env.step);
  const actJson = JSON.parse(readFileSync(cfg.policy.act, 'utf8')) as { nodes: { id: string; op: string; graph?: string }[] };
  const agentCall = actJson.nodes.find((n) => n.op === 'call' && n.id === 'agent');
  if (!agentCall?.graph) fail(spec, 'has an act graph without a call "agent" of its agent graph');
  let offset = 0;
  const params = act.params.map((p) => {
    if (!p.name.startsWith('agent/')) fail(spec, `has an act param ${p.name} outside its agent`);
    const shape = p.type.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const out = { name: p.name.slice('agent/'.length), shape, size, offset };
    offset += size;
    return out;
  });
  const N = cfg.env.num_envs;
  const T = cfg.rollout.steps;
  const M = cfg.update.minibatches;
  if (T % M !== 0) fail(spec, `has ${T} rollout steps, not a multiple of its ${M} minibatches`);
  const action = step.inputs.find((i) => i.name === 'action')!.type;
  const stepJson = JSON.parse(readFileSync(cfg.env.step, 'utf8')) as { nodes: { id: string; attrs?: { value?: unknown } }[] };
  const limit = stepJson.nodes.find((n) => n.id === 'limit')?.attrs?.value;
  if (typeof limit !== 'number') fail(spec, 'has an env step graph without a const "limit" (its time limit)');
  return {
    spec,
    variant,
    cfg,
    dir,
    params,
    P: offset,
    N,
    T,
    epochs: cfg.update.epochs,
    minibatches: M,
    obsDim: act.inputs.find((i) => i.name === 'obs')!.type.shape[1] as number,
    stateDim: step.inputs.find((i) => i.name === 'state')!.type.shape[1] as number,
    actionDims: action.shape.slice(1) as number[],
    actionDtype: action.dtype,
    normObs: cfg.normalize.obs,
    normReward: cfg.normalize.reward,
    timeLimit: limit,
    evalEpisodes: cfg.eval.episodes,
    stages: spec.base ? `../${spec.base}/` : '',
    paths: {
      step: rel(cfg.env.step),
      reset: rel(cfg.env.reset!),
      act: rel(cfg.policy.act),
      loss: rel(cfg.loss),
      agent: rel(resolve(dirname(cfg.policy.act), agentCall.graph)),
      gae: rel(join(GRAPHS_DIR, 'algorithms/gae.graph.json')),
      clip: rel(join(GRAPHS_DIR, 'optimizers/clip-grad-norm.graph.json')),
      adam: rel(join(GRAPHS_DIR, 'optimizers/adam.graph.json')),
      stat: rel(join(GRAPHS_DIR, 'algorithms/running-mean-var.graph.json')),
      normalize: rel(join(GRAPHS_DIR, 'algorithms/normalize-obs.graph.json')),
      controller: rel(join(GRAPHS_DIR, 'algorithms/amppo/controller.graph.json')),
      gate: rel(join(GRAPHS_DIR, 'algorithms/amppo/gate.graph.json')),
      alphagrad: rel(join(GRAPHS_DIR, 'optimizers/alphagrad-step.graph.json')),
    },
  };
}

export const input = (dtype: string, shape: Json[], doc: string): Json => ({ dtype, shape, doc });
export const f32 = (shape: Json[], doc: string) => input('float32', shape, doc);
export const i32 = (shape: Json[], doc: string) => input('int32', shape, doc);

/** Row `row` of a [k, 2] key split, as an int32[2] key: two nodes. */
export function keyRow(id: string, split: string, row: number): Node[] {
  return [
    { id: `${id}_row`, op: 'slice', in: [split], attrs: { begin: [row, 0], size: [1, 2] } },
    { id, op: 'reshape', in: [`${id}_row`], attrs: { shape: [2] } },
  ];
}

/** The params bound to state tensors (or other refs) of the same names, for a call's "params". */
export function bindParams(L: Layout, prefix: string, ref: (p: Param) => string): { [k: string]: Json } {
  return Object.fromEntries(L.params.map((p) => [`${prefix}${p.name}`, ref(p)]));
}

/** The carries of a rollout scan's step: the envs, the RNG key and the episode trackers (as graph inputs). */
export function rolloutCarries(L: Layout, keyDoc: string, epReturnDoc: string): Record<string, Json> {
  const S = L.stateDim;
  const D = L.obsDim;
  return {
    env_state: f32(['N', S], "carry: the envs' physical state"),
    env_t: i32(['N'], "carry: elapsed steps of each env's episode"),
    obs: f32(['N', D], `carry: the observation the policy acts on${L.normObs ? ' (raw)' : ''}`),
    key: i32([2], keyDoc),
    ep_return: f32(['N'], epReturnDoc),
    ep_length: f32(['N'], "carry: length of each env's running episode"),
    return_sum: f32([], 'carry: sum of the returns of the episodes finished so far'),
    length_sum: f32([], 'carry: sum of their lengths'),
    episodes: f32([], 'carry: how many episodes finished so far'),
  };
}

/**
 * The episode trackers of a rollout step: each env's running return (node `ret`, from `reward`) and
 * length, the sums over the episodes that end (`done`), and the trackers restarted where they did.
 */
export function episodeNodes(reward: string, ret: string): Node[] {
  return [
    { id: ret, op: 'add', in: ['ep_return', reward] },
    { id: 'len', op: 'add', in: ['ep_length', 1] },
    { id: 'ret_done', op: 'mul', in: [ret, 'done'] },
    { id: 'len_done', op: 'mul', in: ['len', 'done'] },
    { id: 'ret_fin', op: 'sum', in: ['ret_done'] },
    { id: 'len_fin', op: 'sum', in: ['len_done'] },
    { id: 'n_fin', op: 'sum', in: ['done'] },
    { id: 'return_sum_next', op: 'add', in: ['return_sum', 'ret_fin'] },
    { id: 'length_sum_next', op: 'add', in: ['length_sum', 'len_fin'] },
    { id: 'episodes_next', op: 'add', in: ['episodes', 'n_fin'] },
    { id: 'alive', op: 'sub', in: [1, 'done'] },
    { id: 'ep_return_next', op: 'mul', in: [ret, 'alive'], doc: "a finished episode's return restarts at 0" },
    { id: 'ep_length_next', op: 'mul', in: ['len', 'alive'] },
  ];
}

/** The metrics row of a PPO-family iteration graph: each metric and the node that computes it. */
export const METRIC_OUTPUTS: Readonly<Record<string, string>> = {
  loss: 'm_loss',
  pg_loss: 'm_pg_loss',
  v_loss: 'm_v_loss',
  entropy: 'm_entropy',
  approx_kl: 'm_approx_kl',
  clipfrac: 'm_clipfrac',
  grad_norm: 'm_grad_norm',
  grad_clip_frac: 'm_grad_clip_frac',
  episodic_return: 'm_episodic_return',
  episodic_length: 'm_episodic_length',
  episodes: 'roll.episodes',
  explained_variance: 'm_explained_variance',
  env_steps: 'steps',
  lr: 'lr_now',
};

/** The program file's "policy": the act graph, the state tensors of its params and the observation statistics (what loom export writes). */
export function policyJson(L: Layout): Json {
  return { act: L.paths.act, params: bindParams(L, 'agent/', (p) => p.name), ...(L.normObs ? { obs_norm: { mean: 'obs_mean', var: 'obs_var', clip: 'norm_clip' } } : {}) };
}

/** Each param flattened and all concatenated, in the agent's order: the update body's layout. */
export function flatten(L: Layout, ref: (p: Param) => string, prefix: string, doc: string): Node[] {
  return [
    ...L.params.map((p) => ({ id: `${prefix}_${p.name}`, op: 'reshape', in: [ref(p)], attrs: { shape: [p.size] } })),
    { id: prefix, op: 'concat', in: L.params.map((p) => `${prefix}_${p.name}`), attrs: { axis: 0 }, doc },
  ];
}

/** The flat vector `flat` cut back into the agent's tensors, `<prefix>_<param>`. */
export function unflatten(L: Layout, flat: string, flatPrefix: string, prefix: string, doc?: string): Node[] {
  return L.params.flatMap((p, k): Node[] => [
    { id: `${flatPrefix}_${p.name}`, op: 'slice', in: [flat], attrs: { begin: [p.offset], size: [p.size] }, ...(k === 0 && doc ? { doc } : {}) },
    { id: `${prefix}_${p.name}`, op: 'reshape', in: [`${flatPrefix}_${p.name}`], attrs: { shape: p.shape } },
  ]);
}

export function normDoc(L: Layout): string {
  const parts = [L.normObs ? 'observation' : '', L.normReward ? 'reward' : ''].filter(Boolean);
  return parts.length ? `${parts.join(' and ')} normalisation` : 'no normalisation';
}

export function initGraph(L: Layout): Json {
  const { N, obsDim: D } = L;
  const nodes: Node[] = [
    { id: 'key_next_split', op: 'random_split', in: ['key'], attrs: { num: 2 }, doc: 'take(1) of the classic driver: row 0 is the next key, row 1 the reset key' },
    ...keyRow('key_next', 'key_next_split', 0),
    ...keyRow('key_reset', 'key_next_split', 1),
    { id: 'like', op: 'const', attrs: { value: new Array<Json>(N).fill(0), dtype: 'int32' }, doc: `one entry per env: the program runs ${N} envs (the pipeline's num_envs)` },
    { id: 'reset', op: 'call', in: { key: 'key_reset', like: 'like' }, graph: L.paths.reset },
    { id: 'agent', op: 'call', in: { obs: 'reset.obs' }, graph: L.paths.agent, doc: "declares the agent's params (hoisted as agent/<name>, initialised by the driver with the classic trainer's initialisers); its outputs are unused" },
    ...flatten(L, (p) => `agent/${p.name}`, 'flat', `the params as one vector, for the shape of ${L.variant === 'alphagrad' ? "AlphaGrad's momentum buffer" : "Adam's moments"}`),
    ...optState(L).map((o) => ({ id: o.name, op: 'zeros_like', in: ['flat'] })),
    { id: 'opt_step', op: 'const', attrs: { value: 0, dtype: 'int32' } },
    { id: 'like_f', op: 'cast', in: ['like'], attrs: { dtype: 'float32' } },
    { id: 'ep_zero', op: 'zeros_like', in: ['like_f'] },
    { id: 'iteration', op: 'const', attrs: { value: 0, dtype: 'int32' } },
  ];
  const stats: Record<string, string> = {};
  if (L.normObs) {
    nodes.push(
      { id: 'obs_mean0', op: 'const', attrs: { value: new Array<Json>(D).fill(0), dtype: 'float32' } },
      { id: 'obs_var0', op: 'const', attrs: { value: new Array<Json>(D).fill(1), dtype: 'float32' } },
      { id: 'stat_count0', op: 'const', attrs: { value: 1e-4, dtype: 'float32' }, doc: "gymnasium's RunningMeanStd starts its count at 1e-4" },
      { id: 'obs_stat', op: 'call', in: { mean: 'obs_mean0', var: 'obs_var0', count: 'stat_count0', x: 'reset.obs' }, graph: L.paths.stat, doc: "the reset observations are folded in, as the classic driver's first rollout step does" },
    );
    Object.assign(stats, { obs_mean: 'obs_stat.mean', obs_var: 'obs_stat.var', obs_count: 'obs_stat.count' });
  }
  if (L.normReward) {
    if (!L.normObs) nodes.push({ id: 'stat_count0', op: 'const', attrs: { value: 1e-4, dtype: 'float32' }, doc: "gymnasium's RunningMeanStd starts its count at 1e-4" });
    nodes.push({ id: 'ret_mean0', op: 'const', attrs: { value: [0], dtype: 'float32' } }, { id: 'ret_var0', op: 'const', attrs: { value: [1], dtype: 'float32' } });
    Object.assign(stats, { ret_acc: 'ep_zero', ret_mean: 'ret_mean0', ret_var: 'ret_var0', ret_count: 'stat_count0' });
  }
  const amppo = L.variant === 'amppo';
  if (amppo) nodes.push({ id: 'alpha', op: 'identity', in: ['alpha_init'] }, { id: 's', op: 'identity', in: ['s_init'] });
  const opt = L.variant === 'alphagrad' ? "a zero AlphaGrad momentum buffer" : 'zero Adam moments';
  return {
    $schema: '../../../schemas/graph.schema.json',
    graph: `${L.spec.name}-init`,
    version: 1,
    doc: `The ${L.spec.name} program's initial state from key = [0, seed]: the agent's params (declared by a call of the agent graph, created by the driver), ${opt}, ${N} freshly reset envs, zero episode trackers and iteration counter, ${L.normObs || L.normReward ? 'the running normalisation statistics, ' : ''}and the key after the reset's split, as the classic driver's init leaves them${amppo ? "; and the advantage controller's state amppo_alpha_ema and amppo_s_ema, which start at the hyper entries alpha_init and s_init (spec am-ppo section 2.2) and are carried from iteration to iteration" : ''}.${L.spec.base ? ` Node for node ../${L.spec.base}/init.graph.json otherwise, so that the params keep their names agent/<name> and a seed gives the classic trainer's initial values.` : ''}`,
    inputs: {
      key: i32([2], '[0, seed] (jax.random.PRNGKey(seed))'),
      ...(amppo ? { alpha_init: f32([], "hyper: the controller's initial alpha_ema"), s_init: f32([], "hyper: the controller's initial s_ema") } : {}),
    },
    nodes,
    outputs: {
      ...Object.fromEntries(L.params.map((p) => [p.name, `agent/${p.name}`])),
      ...Object.fromEntries(optState(L).map((o) => [o.name, o.name])),
      opt_step: 'opt_step',
      env_state: 'reset.state',
      env_t: 'reset.t',
      obs: 'reset.obs',
      key: 'key_next',
      ep_return: 'ep_zero',
      ep_length: 'ep_zero',
      iterations_done: 'iteration',
      ...stats,
      ...(amppo ? { amppo_alpha_ema: 'alpha', amppo_s_ema: 's' } : {}),
    },
  };
}

/** The optimizer's flat state tensors besides its step counter: Adam's two moments, or AlphaGrad's momentum buffer. */
function optState(L: Layout): { name: string; carry: string; doc: string }[] {
  return L.variant === 'alphagrad'
    ? [{ name: 'opt_buf', carry: 'buf', doc: "AlphaGrad's momentum buffer" }]
    : [
        { name: 'opt_m', carry: 'm', doc: "Adam's first moment" },
        { name: 'opt_v', carry: 'v', doc: "Adam's second moment" },
      ];
}

/** The state tensors of normalisation, as graph inputs (types with N symbolic). */
export function statInputs(L: Layout, role: string): Record<string, Json> {
  const D = L.obsDim;
  return {
    ...(L.normObs
      ? {
          obs_mean: f32([D], `${role}: running mean of the raw observations`),
          obs_var: f32([D], `${role}: their running variance`),
          obs_count: f32([], `${role}: observations folded into them (from 1e-4)`),
        }
      : {}),
    ...(L.normReward
      ? {
          ret_acc: f32(['N'], `${role}: each env's running discounted return, reset at the end of its episode`),
          ret_mean: f32([1], `${role}: running mean of those returns`),
          ret_var: f32([1], `${role}: their running variance (rewards are divided by its square root)`),
          ret_count: f32([], `${role}: returns folded into them (from 1e-4)`),
        }
      : {}),
  };
}

function statNames(L: Layout): string[] {
  return Object.keys(statInputs(L, ''));
}

export function paramInputs(L: Layout, role: string): Record<string, Json> {
  return Object.fromEntries(L.params.map((p) => [p.name, f32(p.shape, `${role}: the agent's ${p.name}`)]));
}

function rolloutStepGraph(L: Layout): Json {
  const { obsDim: D, stateDim: S } = L;
  const obsIn = L.normObs ? 'obs_norm.out' : 'obs';
  const nodes: Node[] = [
    { id: 'keys', op: 'random_split', in: ['key'], attrs: { num: 3 }, doc: 'take(2) of the classic driver: row 0 is the next key, rows 1 and 2 the act and env keys' },
    ...keyRow('key_next', 'keys', 0),
    ...keyRow('key_act', 'keys', 1),
    ...keyRow('key_env', 'keys', 2),
  ];
  if (L.normObs)
    nodes.push({ id: 'obs_norm', op: 'call', in: { x: 'obs', mean: 'obs_mean', var: 'obs_var', clip: 'norm_clip' }, graph: L.paths.normalize, doc: 'the policy sees the observation normalised with statistics that already include it' });
  nodes.push(
    { id: 'act', op: 'call', in: { obs: obsIn, key: 'key_act' }, graph: L.paths.act, params: bindParams(L, 'agent/', (p) => p.name) },
    { id: 'env', op: 'call', in: { state: 'env_state', t: 'env_t', action: 'act.action', key: 'key_env' }, graph: L.paths.step, doc: `steps and auto-resets the envs${L.actionDtype === 'float32' ? ' (the env clips the action to its bounds)' : ''}` },
    { id: 'done_b', op: 'logical_or', in: ['env.terminated', 'env.truncated'], doc: 'terminated or truncated: GAE does not bootstrap across either (CleanRL ppo.py, the classic driver)' },
    { id: 'done', op: 'cast', in: ['done_b'], attrs: { dtype: 'float32' } },
    ...episodeNodes('env.reward', 'ret'),
  );
  const outs: Record<string, string> = {};
  if (L.normObs) {
    nodes.push({ id: 'obs_stat', op: 'call', in: { mean: 'obs_mean', var: 'obs_var', count: 'obs_count', x: 'env.obs' }, graph: L.paths.stat, doc: 'each observation is folded in once, when the env produces it (after an auto-reset: the reset observation)' });
    Object.assign(outs, { obs_mean: 'obs_stat.mean', obs_var: 'obs_stat.var', obs_count: 'obs_stat.count' });
  }
  let reward = 'env.reward';
  if (L.normReward) {
    nodes.push(
      { id: 'ret_acc_disc', op: 'mul', in: ['ret_acc', 'gamma'] },
      { id: 'ret_acc_now', op: 'add', in: ['ret_acc_disc', 'env.reward'], doc: "gymnasium's NormalizeReward: the running discounted return" },
      { id: 'ret_rows', op: 'reshape', in: ['ret_acc_now'], attrs: { shape: ['N', 1] } },
      { id: 'ret_stat', op: 'call', in: { mean: 'ret_mean', var: 'ret_var', count: 'ret_count', x: 'ret_rows' }, graph: L.paths.stat, doc: "one statistic over all envs: the N returns are one batch" },
      { id: 'ret_var_eps', op: 'add', in: ['ret_stat.var', 1e-8] },
      { id: 'ret_sd', op: 'sqrt', in: ['ret_var_eps'] },
      { id: 'reward_scaled', op: 'div', in: ['env.reward', 'ret_sd'] },
      { id: 'clip_low', op: 'neg', in: ['norm_clip'] },
      { id: 'reward_below', op: 'minimum', in: ['reward_scaled', 'norm_clip'] },
      { id: 'reward_norm', op: 'maximum', in: ['reward_below', 'clip_low'], doc: 'the reward the update sees; the episode trackers keep the raw one' },
      { id: 'ret_acc_next', op: 'mul', in: ['ret_acc_now', 'alive'], doc: 'a finished episode (terminated or truncated) restarts its discounted return' },
    );
    Object.assign(outs, { ret_acc: 'ret_acc_next', ret_mean: 'ret_stat.mean', ret_var: 'ret_stat.var', ret_count: 'ret_stat.count' });
    reward = 'reward_norm';
  }
  return {
    $schema: '../../../schemas/graph.schema.json',
    graph: `${L.spec.name}-rollout-step`,
    version: 1,
    doc: `One step of the N envs, the body of the rollout scan (the classic driver's rollout loop as a graph)${L.normObs || L.normReward ? `, with ${normDoc(L)}` : ''}. Carries: env_state, env_t, obs, key, ep_return, ep_length, return_sum, length_sum, episodes${statNames(L).map((s) => `, ${s}`).join('')}. Invariants: the agent's params${L.normReward ? ', gamma' : ''}${L.normObs || L.normReward ? ', norm_clip' : ''}. ys: step_obs (the observation acted on${L.normObs ? ', normalised' : ''}), action, logp, value, reward${L.normReward ? ' (normalised)' : ''}, done.`,
    inputs: {
      ...rolloutCarries(L, 'carry: the RNG key, split into (next key, act key, env key) every step as the classic driver does', "carry: return of each env's running episode"),
      ...statInputs(L, 'carry'),
      ...paramInputs(L, 'invariant'),
      ...(L.normReward ? { gamma: f32([], 'invariant: the discount of the running return that scales rewards') } : {}),
      ...(L.normObs || L.normReward ? { norm_clip: f32([], 'invariant: bound of the normalised observations and rewards') } : {}),
    },
    nodes,
    outputs: {
      env_state: 'env.state',
      env_t: 'env.t',
      obs: 'env.obs',
      key: 'key_next',
      ep_return: 'ep_return_next',
      ep_length: 'ep_length_next',
      return_sum: 'return_sum_next',
      length_sum: 'length_sum_next',
      episodes: 'episodes_next',
      ...outs,
      step_obs: obsIn,
      action: 'act.action',
      logp: 'act.logp',
      value: 'act.value',
      reward,
      done: 'done',
    },
  };
}

const LOSS_HYPER = ['clip_coef', 'ent_coef', 'vf_coef', 'norm_adv', 'clip_vloss'] as const;
export const HYPER_DOC: Record<string, string> = {
  lr: "Adam's learning rate at the start of training",
  anneal_lr: '1 = anneal lr linearly to 0 over the run (CleanRL anneal_lr), 0 = constant',
  gamma: 'discount',
  gae_lambda: 'GAE lambda',
  clip_coef: 'PPO clip range',
  ent_coef: 'entropy bonus weight',
  vf_coef: 'value loss weight',
  norm_adv: '1 = normalise advantages per minibatch',
  clip_vloss: '1 = clipped value loss',
  max_grad_norm: 'global grad-norm clip',
  beta1: 'Adam beta1',
  beta2: 'Adam beta2',
  eps: 'Adam eps',
  norm_clip: 'bound of the normalised observations and rewards (CleanRL: 10)',
  tau: 'AM-PPO tau, |Z| above it counts as saturated',
  p_star: 'AM-PPO p*, the target saturation fraction',
  kappa: 'AM-PPO kappa, gain of the alpha target and output scale of the gate',
  eta: 'AM-PPO eta, exponent of the saturation feedback',
  rho: 'AM-PPO rho, EMA weight of the new alpha target',
  rho_sat: 'AM-PPO rho_sat, EMA weight of the new saturation observation',
  amppo_eps: "AM-PPO eps_A (the controller's epsilon, apart from Adam's eps)",
  v_shift: 'AM-PPO additive offset of the gate; keep 0',
  modulated_value_target: '1 = the value target is A_mod + V_old (the spec), 0 = the GAE return (an ablation)',
  alpha: "AlphaGrad's tanh steepness alpha (> 0)",
  momentum: "AlphaGrad's momentum (PyTorch-SGD form, A10; 0: none)",
  dampening: "dampening of the momentum buffer's new term",
  weight_decay: 'added as weight_decay param to the direction after tanh (A11)',
  nesterov: '1 = nesterov momentum',
  maximize: '1 = ascend',
  clip_grad: '1 = step on the gradient clipped to max_grad_norm, 0 = on the raw gradient (A5: the AlphaGrad-PPO comparison clips only for Adam)',
};
/** AlphaGrad's docs where the name is Adam's. */
const ALPHAGRAD_DOC: Record<string, string> = {
  lr: "AlphaGrad's learning rate at the start of training",
  eps: "AlphaGrad's eps, added to each tensor's gradient norm",
};
const hyperDoc = (L: Layout, h: string): string => (L.variant === 'alphagrad' ? ALPHAGRAD_DOC[h] : undefined) ?? HYPER_DOC[h]!;

/** The optimizer's hyper entries the update step reads. */
const ADAM_HYPER = ['beta1', 'beta2', 'eps'];
const ALPHAGRAD_HYPER = ['alpha', 'eps', 'momentum', 'dampening', 'weight_decay', 'nesterov', 'maximize', 'clip_grad'];
/** The AM-PPO gate's hyper entries (the update step modulates each minibatch), and the controller's (the iteration). */
const GATE_HYPER = ['kappa', 'amppo_eps', 'v_shift', 'tau', 'modulated_value_target'];
const AMPPO_HYPER = ['tau', 'p_star', 'kappa', 'eta', 'rho', 'rho_sat', 'amppo_eps', 'v_shift', 'modulated_value_target'];

/** The update step's invariant inputs after the batch and lr, by variant. */
function updateHyper(L: Layout): string[] {
  return [...LOSS_HYPER, 'max_grad_norm', ...(L.variant === 'alphagrad' ? ALPHAGRAD_HYPER : ADAM_HYPER), ...(L.variant === 'amppo' ? GATE_HYPER : [])];
}

function updateStepGraph(L: Layout): Json {
  const { P, obsDim: D } = L;
  const actionIn = L.actionDtype === 'int32' ? i32(['B', ...L.actionDims], 'invariant: actions taken') : f32(['B', ...L.actionDims], 'invariant: actions taken (as sampled, before the env clipped them)');
  const amppo = L.variant === 'amppo';
  const alphagrad = L.variant === 'alphagrad';
  const nodes: Node[] = [
    ...['obs', 'actions', 'logp', 'advantages', 'returns', 'values'].map((k) => ({ id: `mb_${k}`, op: 'gather', in: [k, 'rows'], attrs: { axis: 0 } })),
    ...unflatten(L, 'params', 'flat', 'p', "the flat params cut into the agent's tensors (offsets follow the agent graph's param order)"),
  ];
  if (amppo)
    nodes.push(
      { id: 'mod', op: 'call', in: { A: 'mb_advantages', alpha: 'alpha_ema', kappa: 'kappa', eps: 'amppo_eps', v_shift: 'v_shift', tau: 'tau' }, graph: L.paths.gate, doc: "M(A_mb, update = false): frozen alpha, the minibatch's norm" },
      { id: 'mod_target', op: 'add', in: ['mod.A_mod', 'mb_values'], doc: 'A_mod + V_old, with the un-normalised A_mod (A4)' },
      { id: 'use_mod_target', op: 'not_equal', in: ['modulated_value_target', 0] },
      { id: 'mb_target', op: 'where', in: ['use_mod_target', 'mod_target', 'mb_returns'] },
    );
  nodes.push(
    {
      id: 'loss',
      op: 'call',
      in: { obs: 'mb_obs', actions: 'mb_actions', logp_old: 'mb_logp', advantages: amppo ? 'mod.A_mod' : 'mb_advantages', returns: amppo ? 'mb_target' : 'mb_returns', values_old: 'mb_values', ...Object.fromEntries(LOSS_HYPER.map((h) => [h, h])) },
      graph: L.paths.loss,
      params: bindParams(L, 'agent/', (p) => `p_${p.name}`),
      doc: amppo ? 'the PPO loss on the modulated advantages and their value target, and its gradient w.r.t. the bound params' : 'the PPO loss and its gradient w.r.t. the bound params',
    },
    ...flatten(L, (p) => `loss.grad__agent__${p.name}`, 'grads', 'the gradient flattened in the same order as params'),
    { id: 'clip', op: 'call', in: { grads: 'grads', max_norm: 'max_grad_norm' }, graph: L.paths.clip },
    { id: 'clipped_b', op: 'greater', in: ['clip.norm', 'max_grad_norm'] },
    { id: 'grad_clipped', op: 'cast', in: ['clipped_b'], attrs: { dtype: 'float32' }, doc: "1 when this step's norm exceeded max_grad_norm (the iteration's grad_clip_frac is its mean)" },
  );
  if (alphagrad)
    nodes.push(
      { id: 'use_clip', op: 'not_equal', in: ['clip_grad', 0] },
      { id: 'step_grad', op: 'where', in: ['use_clip', 'clip.grads', 'grads'] },
      { id: 'alphagrad', op: 'call', in: { param: 'params', grad: 'step_grad', buf: 'buf', segment: 'segment', step: 'step', lr: 'lr', ...Object.fromEntries(ALPHAGRAD_HYPER.filter((h) => h !== 'clip_grad').map((h) => [h, h])) }, graph: L.paths.alphagrad },
    );
  else nodes.push({ id: 'adam', op: 'call', in: { params: 'params', grads: 'clip.grads', m: 'm', v: 'v', step: 'step', lr: 'lr', beta1: 'beta1', beta2: 'beta2', eps: 'eps' }, graph: L.paths.adam });
  const hyperIn: Record<string, Json> = {
    clip_coef: f32([], 'invariant: PPO ratio (and value) clip range'),
    ent_coef: f32([], 'invariant: entropy bonus weight'),
    vf_coef: f32([], 'invariant: value loss weight'),
    norm_adv: f32([], 'invariant: 1 = normalise advantages per minibatch'),
    clip_vloss: f32([], 'invariant: 1 = clipped value loss'),
    max_grad_norm: f32([], 'invariant: global grad-norm clip'),
    ...(alphagrad
      ? {
          eps: f32([], `invariant: ${ALPHAGRAD_DOC.eps}`),
          segment: i32([P], `invariant: the agent tensor each flat param element belongs to (0 for ${L.params[0]!.name}, ..., ${L.params.length - 1} for ${L.params[L.params.length - 1]!.name})`),
          ...Object.fromEntries(ALPHAGRAD_HYPER.filter((h) => h !== 'eps').map((h) => [h, f32([], `invariant: ${HYPER_DOC[h]}`)])),
        }
      : { beta1: f32([], 'invariant: Adam beta1'), beta2: f32([], 'invariant: Adam beta2'), eps: f32([], 'invariant: Adam eps') }),
    ...(amppo
      ? {
          alpha_ema: f32([], "invariant: the controller's alpha_ema after this iteration's update, frozen for the minibatches"),
          ...Object.fromEntries(GATE_HYPER.map((h) => [h, f32([], `invariant: ${HYPER_DOC[h]}`)])),
        }
      : {}),
  };
  const opt = alphagrad ? 'alphagrad' : 'adam';
  const doc = amppo
    ? `One AM-PPO minibatch update, the body of the update scan: ../${L.spec.base}/update-step.graph.json with the minibatch's raw advantages modulated by ${L.paths.gate} (spec am-ppo section 2.5: the alpha_ema of this iteration, frozen, and the minibatch's own norm). A_mod is the loss's advantage (normalised there when norm_adv is 1) and, when modulated_value_target is 1, A_mod + V_old its value target. Carries: params, m, v, step. xs: rows. ys: PPO's, and sat, the fraction of the minibatch's |Z| above tau.`
    : alphagrad
      ? `One PPO minibatch update with the AlphaGrad optimizer, the body of the update scan: ../${L.spec.base}/update-step.graph.json with ${L.paths.alphagrad} in place of Adam, each agent tensor normalised by its own gradient norm (segment), and the step taken on the clipped gradient only when clip_grad is 1. Carries: params, buf, step. xs: rows. ys: the loss graph's scalar diagnostics, grad_norm (before clipping) and grad_clipped (the norm was above max_grad_norm, whether or not the step clips).`
      : "One PPO minibatch update, the body of the update scan over epochs x minibatches (the classic driver's update loop as a graph): gathers the minibatch rows of the batch, cuts the flat params into the agent's tensors, runs the PPO loss graph on them, flattens its gradient in the same order, clips the global grad norm and takes one Adam step. Carries: params, m, v, step. xs: rows. ys: the loss graph's scalar diagnostics, grad_norm (before clipping) and grad_clipped.";
  return {
    $schema: '../../../schemas/graph.schema.json',
    graph: `${L.spec.name}-update-step`,
    version: 1,
    doc,
    inputs: {
      params: f32([P], "carry: every agent param flattened row-major and concatenated, in the agent graph's param order"),
      ...Object.fromEntries(optState(L).map((o) => [o.carry, f32([P], `carry: ${o.doc}`)])),
      step: i32([], `carry: ${alphagrad ? 'AlphaGrad' : 'Adam'} steps taken`),
      rows: i32(['MB'], "xs: this minibatch's row indices into the batch"),
      obs: f32(['B', D], `invariant: the rollout's observations${L.normObs ? ' (normalised)' : ''}, one row per (step, env)`),
      actions: actionIn,
      logp: f32(['B'], 'invariant: their log-probabilities under the rollout policy'),
      advantages: f32(['B'], amppo ? 'invariant: raw GAE advantages (modulated here per minibatch)' : 'invariant: GAE advantages (normalised per minibatch by the loss when norm_adv is 1)'),
      returns: f32(['B'], amppo ? 'invariant: GAE returns (the value target when modulated_value_target is 0)' : 'invariant: value targets (advantages + values)'),
      values: f32(['B'], "invariant: the rollout policy's values"),
      lr: f32([], 'invariant: learning rate of this iteration (annealed by the iteration graph)'),
      ...hyperIn,
    },
    nodes,
    outputs: {
      params: `${opt}.${alphagrad ? 'param' : 'params'}`,
      ...Object.fromEntries(optState(L).map((o) => [o.carry, `${opt}.${o.carry}`])),
      step: `${opt}.step`,
      loss: 'loss.loss',
      pg_loss: 'loss.pg_loss',
      v_loss: 'loss.v_loss',
      entropy: 'loss.entropy',
      approx_kl: 'loss.approx_kl',
      clipfrac: 'loss.clipfrac',
      grad_norm: 'clip.norm',
      grad_clipped: 'grad_clipped',
      ...(amppo ? { sat: 'mod.s_obs' } : {}),
    },
  };
}

function iterationHyper(L: Layout): string[] {
  return [
    ...['lr', 'anneal_lr', 'gamma', 'gae_lambda', 'clip_coef', 'ent_coef', 'vf_coef', 'norm_adv', 'clip_vloss', 'max_grad_norm'],
    ...(L.variant === 'alphagrad' ? ALPHAGRAD_HYPER : ADAM_HYPER),
    ...(L.normObs || L.normReward ? ['norm_clip'] : []),
    ...(L.variant === 'amppo' ? AMPPO_HYPER : []),
  ];
}

function iterationGraph(L: Layout): Json {
  const { T, P, obsDim: D, stateDim: S, epochs: E, minibatches: M } = L;
  const B = `${T}*N`;
  const MB = `${T / M}*N`;
  const stats = statNames(L);
  const nodes: Node[] = [
    {
      id: 'roll',
      op: 'scan',
      in: {
        env_state: 'env_state', env_t: 'env_t', obs: 'obs', key: 'key', ep_return: 'ep_return', ep_length: 'ep_length', return_sum: 0, length_sum: 0, episodes: 0,
        ...Object.fromEntries(stats.map((s) => [s, s])),
        ...Object.fromEntries(L.params.map((p) => [p.name, p.name])),
        ...(L.normReward ? { gamma: 'gamma' } : {}),
        ...(L.normObs || L.normReward ? { norm_clip: 'norm_clip' } : {}),
      },
      graph: `${L.stages}rollout-step.graph.json`,
      attrs: { length: T },
      doc: `${T} steps of the N envs under the current policy`,
    },
    { id: 'key_boot_split', op: 'random_split', in: ['roll.key'], attrs: { num: 2 }, doc: 'the classic driver draws a key for the bootstrap act call; the value needs none' },
    ...keyRow('key_boot', 'key_boot_split', 0),
    ...keyRow('key_boot_unused', 'key_boot_split', 1),
  ];
  let bootObs = 'roll.obs';
  if (L.normObs) {
    nodes.push({ id: 'boot_obs', op: 'call', in: { x: 'roll.obs', mean: 'roll.obs_mean', var: 'roll.obs_var', clip: 'norm_clip' }, graph: L.paths.normalize, doc: 'normalised with the statistics the last step left' });
    bootObs = 'boot_obs.out';
  }
  nodes.push(
    { id: 'boot', op: 'call', in: { obs: bootObs }, graph: L.paths.agent, params: bindParams(L, '', (p) => p.name), doc: 'V of the observation after the last step' },
    { id: 'gae', op: 'call', in: { rewards: 'roll.reward', values: 'roll.value', next_value: 'boot.value', dones: 'roll.done', gamma: 'gamma', lambda: 'gae_lambda' }, graph: L.paths.gae },
    { id: 'b_obs', op: 'reshape', in: ['roll.step_obs'], attrs: { shape: [B, D] }, doc: `the batch: row s*N + i is env i at step s` },
    { id: 'b_actions', op: 'reshape', in: ['roll.action'], attrs: { shape: [B, ...L.actionDims] } },
    ...(['logp', 'values', 'advantages', 'returns'] as const).map((k) => ({ id: `b_${k}`, op: 'reshape', in: [{ logp: 'roll.logp', values: 'roll.value', advantages: 'gae.advantages', returns: 'gae.returns' }[k]], attrs: { shape: [B] } })),
  );
  const amppo = L.variant === 'amppo';
  const alphagrad = L.variant === 'alphagrad';
  if (amppo)
    nodes.push({
      id: 'amppo',
      op: 'call',
      in: { A: 'b_advantages', alpha_ema: 'amppo_alpha_ema', s_ema: 'amppo_s_ema', ...Object.fromEntries(['tau', 'p_star', 'kappa', 'eta', 'rho', 'rho_sat'].map((h) => [h, h])), eps: 'amppo_eps', v_shift: 'v_shift' },
      graph: L.paths.controller,
      doc: 'M(A, update = true) once per iteration on the whole raw batch: alpha_ema, then s_ema; its A_mod is for the explained variance only',
    });
  let prev = 'key_boot';
  for (let e = 0; e < E; e++) {
    const next = e === E - 1 ? 'key_final' : `key_e${e}`;
    nodes.push(
      { id: `${next}_split`, op: 'random_split', in: [prev], attrs: { num: 2 }, ...(e === 0 ? { doc: "epoch 0's shuffle key, as the classic driver takes one per epoch" } : {}) },
      ...keyRow(next, `${next}_split`, 0),
      ...keyRow(`key_perm${e}`, `${next}_split`, 1),
      { id: `perm${e}`, op: 'random_permutation', in: [`key_perm${e}`], attrs: { n: B } },
    );
    prev = next;
  }
  nodes.push(
    { id: 'perms', op: 'concat', in: Array.from({ length: E }, (_, e) => `perm${e}`), attrs: { axis: 0 } },
    { id: 'mb_rows', op: 'reshape', in: ['perms'], attrs: { shape: [E * M, MB] }, doc: `${E} epochs x ${M} minibatches of the shuffled rows, one scan step each` },
    ...flatten(L, (p) => p.name, 'flat', "the params as one vector, in the agent graph's param order (the update body's layout)"),
    { id: 'roll_ones', op: 'ones_like', in: ['roll.done'] },
    { id: 'steps', op: 'sum', in: ['roll_ones'], doc: `env steps this iteration: N*T` },
    { id: 'iters', op: 'div', in: ['total_steps', 'steps'] },
    { id: 'n_iters', op: 'floor', in: ['iters'], doc: "the classic driver's iteration count: floor(total_steps / (N*T))" },
    { id: 'it_f', op: 'cast', in: ['iterations_done'], attrs: { dtype: 'float32' } },
    { id: 'done_frac', op: 'div', in: ['it_f', 'n_iters'] },
    { id: 'anneal', op: 'mul', in: ['done_frac', 'anneal_lr'] },
    { id: 'lr_frac', op: 'sub', in: [1, 'anneal'] },
    { id: 'lr_now', op: 'mul', in: ['lr', 'lr_frac'], doc: '(1 - (iteration - 1) / iterations) * lr with iteration counted from 1, as the classic driver' },
  );
  if (alphagrad) {
    L.params.forEach((p, k) =>
      nodes.push({ id: `seg_id_${p.name}`, op: 'const', attrs: { value: k, dtype: 'int32' } }, { id: `seg_${p.name}`, op: 'broadcast_to', in: [`seg_id_${p.name}`], attrs: { shape: [p.size] } }),
    );
    nodes.push({ id: 'segment', op: 'concat', in: L.params.map((p) => `seg_${p.name}`), attrs: { axis: 0 }, doc: 'the tensor index of every flat param element, in the same order: AlphaGrad normalises each tensor by its own norm' });
  }
  nodes.push(
    {
      id: 'upd',
      op: 'scan',
      in: {
        params: 'flat', ...Object.fromEntries(optState(L).map((o) => [o.carry, o.name])), step: 'opt_step', rows: 'mb_rows', obs: 'b_obs', actions: 'b_actions', logp: 'b_logp', advantages: 'b_advantages', returns: 'b_returns', values: 'b_values', lr: 'lr_now',
        ...Object.fromEntries(updateHyper(L).map((h) => [h, h])),
        ...(alphagrad ? { segment: 'segment' } : {}),
        ...(amppo ? { alpha_ema: 'amppo.alpha_ema' } : {}),
      },
      graph: 'update-step.graph.json',
      attrs: { xs: ['rows'] },
      doc: amppo ? 'one Adam step per minibatch, on modulated advantages' : `one ${alphagrad ? 'AlphaGrad' : 'Adam'} step per minibatch`,
    },
    ...unflatten(L, 'upd.params', 'new_flat', 'new'),
    { id: 'one_i', op: 'const', attrs: { value: 1, dtype: 'int32' } },
    { id: 'iterations_next', op: 'add', in: ['iterations_done', 'one_i'] },
    ...['loss', 'pg_loss', 'v_loss', 'entropy', 'approx_kl', 'clipfrac', 'grad_norm'].map((k) => ({ id: `m_${k}`, op: 'mean', in: [`upd.${k}`] })),
    { id: 'm_grad_clip_frac', op: 'mean', in: ['upd.grad_clipped'], doc: 'fraction of the steps whose grad norm was clipped' },
    { id: 'm_episodic_return', op: 'div', in: ['roll.return_sum', 'roll.episodes'], doc: 'mean return of the episodes finished this iteration: 0 / 0 = NaN (no value) when none did' },
    { id: 'm_episodic_length', op: 'div', in: ['roll.length_sum', 'roll.episodes'] },
  );
  // AM-PPO's value target is A_mod + V_old (or the GAE return): the explained variance is of what the update regresses on.
  const evTarget = amppo ? 'ev_target' : 'b_returns';
  if (amppo)
    nodes.push(
      { id: 'mod_target', op: 'add', in: ['amppo.A_mod', 'b_values'] },
      { id: 'use_mod_target', op: 'not_equal', in: ['modulated_value_target', 0] },
      { id: 'ev_target', op: 'where', in: ['use_mod_target', 'mod_target', 'b_returns'], doc: "the value target the update regresses on, with the whole batch's A_mod" },
    );
  nodes.push(
    { id: 'ev_res', op: 'sub', in: [evTarget, 'b_values'] },
    { id: 'ev_vr', op: 'variance', in: ['ev_res'] },
    { id: 'ev_vt', op: 'variance', in: [evTarget] },
    { id: 'ev_ratio', op: 'div', in: ['ev_vr', 'ev_vt'] },
    { id: 'ev_raw', op: 'sub', in: [1, 'ev_ratio'] },
    { id: 'ev_flat', op: 'equal', in: ['ev_vt', 0] },
    { id: 'ev_nan', op: 'div', in: ['ev_vt', 'ev_vt'] },
    { id: 'm_explained_variance', op: 'where', in: ['ev_flat', 'ev_nan', 'ev_raw'], doc: amppo ? '1 - Var(target - values) / Var(target); NaN when the target does not vary' : '1 - Var(returns - values) / Var(returns); NaN when the returns do not vary' },
  );
  if (amppo)
    nodes.push(
      { id: 'adv_raw_abs_v', op: 'abs', in: ['b_advantages'] },
      { id: 'm_adv_raw_abs', op: 'mean', in: ['adv_raw_abs_v'] },
      { id: 'adv_mod_abs_v', op: 'abs', in: ['amppo.A_mod'] },
      { id: 'm_adv_mod_abs', op: 'mean', in: ['adv_mod_abs_v'] },
      { id: 'm_alpha_ema', op: 'identity', in: ['amppo.alpha_ema'], doc: "the controller's state after this iteration's update, as a metric" },
      { id: 'm_s_ema', op: 'identity', in: ['amppo.s_ema'] },
      { id: 'm_sat_mb', op: 'mean', in: ['upd.sat'], doc: 'mean over the minibatch steps of their saturated fraction' },
    );
  const title = L.cfg.env.name;
  const what = amppo ? 'AM-PPO' : alphagrad ? 'PPO + AlphaGrad' : 'PPO';
  const differs = amppo
    ? ` Differs from ../${L.spec.base}/iteration.graph.json only in the advantage stage: after GAE, one controller update (${L.paths.controller}, M(A, update = true)) on the whole raw batch moves the state amppo_alpha_ema and amppo_s_ema, and the update scan (update-step.graph.json) modulates each minibatch with the new alpha_ema (spec am-ppo section 2.6).`
    : alphagrad
      ? ` Differs from ../${L.spec.base}/iteration.graph.json only in the optimizer: the update scan's body (update-step.graph.json) steps with AlphaGrad, each agent tensor normalised by its own gradient norm (segment), and the momentum buffer opt_buf replaces Adam's moments.`
      : '';
  return {
    $schema: '../../../schemas/graph.schema.json',
    graph: `${L.spec.name}-iteration`,
    version: 1,
    doc: `One ${what} iteration on ${title}, as the classic driver runs ${L.spec.pipeline}${L.spec.env ? ` with --env ${L.spec.env}` : ''}: a rollout scan of ${T} steps (${normDoc(L)}${L.spec.base ? `, ../${L.spec.base}/rollout-step.graph.json` : ''}), the bootstrap value, GAE, then an update scan over ${E} epochs x ${M} minibatches of per-epoch permutations, with lr annealed from the iteration counter. State in, next state and metrics out.${differs}`,
    inputs: {
      ...paramInputs(L, 'state'),
      ...Object.fromEntries(optState(L).map((o, k) => [o.name, f32([P], `state: ${o.doc}${k === 0 ? ' over the flat params' : ''}`)])),
      opt_step: i32([], `state: ${alphagrad ? 'AlphaGrad' : 'Adam'} steps taken`),
      env_state: f32(['N', S], "state: the envs' physical state"),
      env_t: i32(['N'], "state: elapsed steps of each env's episode"),
      obs: f32(['N', D], `state: the observation the next iteration starts from${L.normObs ? ' (raw)' : ''}`),
      key: i32([2], 'state: the RNG key'),
      ep_return: f32(['N'], "state: return of each env's running episode"),
      ep_length: f32(['N'], "state: length of each env's running episode"),
      iterations_done: i32([], 'state: iterations done (for lr annealing)'),
      ...statInputs(L, 'state'),
      ...(amppo ? { amppo_alpha_ema: f32([], "state: the advantage controller's alpha_ema"), amppo_s_ema: f32([], "state: the advantage controller's s_ema") } : {}),
      ...Object.fromEntries(iterationHyper(L).map((h) => [h, f32([], `hyper: ${hyperDoc(L, h)}`)])),
      total_steps: f32([], "the run's env steps (from the pipeline): with N*T it gives the number of iterations lr anneals over"),
    },
    nodes,
    outputs: {
      ...Object.fromEntries(L.params.map((p) => [p.name, `new_${p.name}`])),
      ...Object.fromEntries(optState(L).map((o) => [o.name, `upd.${o.carry}`])),
      opt_step: 'upd.step',
      env_state: 'roll.env_state',
      env_t: 'roll.env_t',
      obs: 'roll.obs',
      key: 'key_final',
      ep_return: 'roll.ep_return',
      ep_length: 'roll.ep_length',
      iterations_done: 'iterations_next',
      ...Object.fromEntries(stats.map((s) => [s, `roll.${s}`])),
      ...(amppo ? { amppo_alpha_ema: 'amppo.alpha_ema', amppo_s_ema: 'amppo.s_ema' } : {}),
      ...METRIC_OUTPUTS,
      ...(amppo
        ? { alpha_ema: 'm_alpha_ema', s_ema: 'm_s_ema', alpha_hat: 'amppo.alpha_hat', s_obs: 'amppo.s_obs', adv_norm: 'amppo.norm', adv_sigma: 'amppo.sigma', adv_raw_abs: 'm_adv_raw_abs', adv_mod_abs: 'm_adv_mod_abs', sat_mb: 'm_sat_mb' }
        : {}),
    },
  };
}

/** The defaults of an optimizer or algorithm graph: its hp_<name> consts, which a pipeline's hp entries patch. */
function graphHp(file: string): Record<string, number> {
  const g = JSON.parse(readFileSync(join(GRAPHS_DIR, file), 'utf8')) as { nodes: { id: string; attrs?: { value?: unknown } }[] };
  return Object.fromEntries(g.nodes.filter((n) => n.id.startsWith('hp_') && typeof n.attrs?.value === 'number').map((n) => [n.id.slice(3), n.attrs!.value as number]));
}

/** The program's hyperparameters (the init graph's after the iteration's), as the classic pipeline sets them. */
export function programHyper(L: Layout): Record<string, number> {
  const { cfg } = L;
  const u = cfg.update;
  const o = cfg.optimizer;
  const tr = cfg.advantage.transform;
  const all: Record<string, number> = {
    lr: o.lr, anneal_lr: o.anneal_lr ? 1 : 0, gamma: cfg.advantage.gamma, gae_lambda: cfg.advantage.lambda,
    clip_coef: u.clip_coef, ent_coef: u.ent_coef, vf_coef: u.vf_coef, norm_adv: u.norm_adv ? 1 : 0, clip_vloss: u.clip_vloss ? 1 : 0, max_grad_norm: u.max_grad_norm,
    beta1: o.beta1, beta2: o.beta2, eps: o.eps, norm_clip: cfg.normalize.clip,
  };
  if (L.variant === 'alphagrad') Object.assign(all, graphHp('optimizers/alphagrad.graph.json'), o.hp, { clip_grad: o.clip_grad ? 1 : 0 });
  if (tr) {
    // The classic driver patches the controller's hp_* consts with the transform's entries; its eps is amppo_eps here, apart from Adam's.
    const { eps, ...hp } = { ...graphHp('algorithms/amppo/update.graph.json'), ...tr.hp };
    Object.assign(all, hp, { amppo_eps: eps!, modulated_value_target: tr.value_target === 'modulated' ? 1 : 0, alpha_init: tr.alpha_init, s_init: tr.s_init });
  }
  const names = [...iterationHyper(L), ...(tr ? ['alpha_init', 's_init'] : [])];
  for (const h of names) if (typeof all[h] !== 'number') fail(L.spec, `gives no value for the hyper entry ${h}`);
  return Object.fromEntries(names.map((h) => [h, all[h]!]));
}

/** The normalisation the evaluation applies: the state's observation statistics, read and never updated. */
function evalNormInputs(L: Layout, role: string): Record<string, Json> {
  if (!L.normObs) return {};
  const D = L.obsDim;
  return {
    obs_mean: f32([D], `${role}: the running mean of the raw observations, as training left it (not updated)`),
    obs_var: f32([D], `${role}: their running variance`),
    norm_clip: f32([], `${role === 'state' ? 'hyper' : role}: bound of the normalised observations`),
  };
}

function evaluateGraph(L: Layout): Json {
  const E = L.evalEpisodes;
  const act = L.actionDtype === 'int32' ? 'the most likely action (argmax of the logits)' : 'the mean of the Gaussian policy (the env clips it to its bounds)';
  return {
    $schema: '../../../schemas/graph.schema.json',
    graph: `${L.spec.name}-evaluate`,
    version: 1,
    doc: `Deterministic evaluation of the trained policy: ${E} ${L.cfg.env.name} episodes side by side (the pipeline's eval.episodes), each from its own reset, acting with ${act}${L.normObs ? ' on the observation normalised with the state\'s statistics, which the evaluation does not update' : ''}, for ${L.timeLimit} steps (the env's time limit, so every episode ends within the scan). Outputs the mean, min and max return and the episode count. Shared by the AM-PPO and AlphaGrad programs on the same env, whose state holds the same tensors.`,
    inputs: {
      key: i32([2], "the driver's evaluation key: the resets, and the scan's key"),
      ...Object.fromEntries(L.params.map((p) => [p.name, f32(p.shape, `state: the trained ${p.name}`)])),
      ...evalNormInputs(L, 'state'),
    },
    nodes: [
      { id: 'like', op: 'const', attrs: { value: new Array<Json>(E).fill(0), dtype: 'int32' }, doc: `${E} episodes` },
      { id: 'reset', op: 'call', in: { key: 'key', like: 'like' }, graph: L.paths.reset },
      { id: 'like_f', op: 'cast', in: ['like'], attrs: { dtype: 'float32' } },
      { id: 'zero', op: 'zeros_like', in: ['like_f'] },
      { id: 'one', op: 'ones_like', in: ['like_f'] },
      {
        id: 'play',
        op: 'scan',
        in: {
          env_state: 'reset.state', env_t: 'reset.t', obs: 'reset.obs', key: 'key', ep_return: 'zero', alive: 'one',
          ...Object.fromEntries(L.params.map((p) => [p.name, p.name])),
          ...Object.fromEntries(Object.keys(evalNormInputs(L, '')).map((k) => [k, k])),
        },
        graph: 'eval-step.graph.json',
        attrs: { length: L.timeLimit },
      },
      { id: 'return_mean', op: 'mean', in: ['play.ep_return'] },
      { id: 'return_min', op: 'min', in: ['play.ep_return'] },
      { id: 'return_max', op: 'max', in: ['play.ep_return'] },
      { id: 'episodes', op: 'reduce_count', in: ['play.ep_return'] },
    ],
    outputs: { return_mean: 'return_mean', return_min: 'return_min', return_max: 'return_max', episodes: 'episodes' },
  };
}

function evalStepGraph(L: Layout): Json {
  const { obsDim: D, stateDim: S } = L;
  const obsIn = L.normObs ? 'obs_norm.out' : 'obs';
  const nodes: Node[] = [
    { id: 'keys', op: 'random_split', in: ['key'], attrs: { num: 3 } },
    ...keyRow('key_next', 'keys', 0),
    ...keyRow('key_act', 'keys', 1),
    ...keyRow('key_env', 'keys', 2),
  ];
  if (L.normObs) nodes.push({ id: 'obs_norm', op: 'call', in: { x: 'obs', mean: 'obs_mean', var: 'obs_var', clip: 'norm_clip' }, graph: L.paths.normalize, doc: 'normalised as the rollout does, with the frozen statistics' });
  nodes.push(
    { id: 'act', op: 'call', in: { obs: obsIn, key: 'key_act' }, graph: L.paths.act, params: bindParams(L, 'agent/', (p) => p.name), doc: 'only action_mode is read: the sampled action, its log-probability and the value are left out of the compiled program' },
    { id: 'env', op: 'call', in: { state: 'env_state', t: 'env_t', action: 'act.action_mode', key: 'key_env' }, graph: L.paths.step, doc: 'steps (and auto-resets, which alive masks out)' },
    { id: 'done_b', op: 'logical_or', in: ['env.terminated', 'env.truncated'] },
    { id: 'done', op: 'cast', in: ['done_b'], attrs: { dtype: 'float32' } },
    { id: 'gain', op: 'mul', in: ['env.reward', 'alive'] },
    { id: 'ret', op: 'add', in: ['ep_return', 'gain'], doc: 'the raw reward: the evaluation reports returns on the env\'s own scale' },
    { id: 'still', op: 'sub', in: [1, 'done'] },
    { id: 'alive_next', op: 'mul', in: ['alive', 'still'] },
  );
  return {
    $schema: '../../../schemas/graph.schema.json',
    graph: `${L.spec.name}-eval-step`,
    version: 1,
    doc: `One step of the deterministic evaluation: every env ${L.normObs ? 'normalises its observation with the frozen statistics, ' : ''}acts with the policy's action_mode, steps, and adds its reward to its episode's return while the episode is running. The body of the scan in evaluate.graph.json.`,
    inputs: {
      env_state: f32(['E', S], "carry: the envs' physical state"),
      env_t: i32(['E'], 'carry: elapsed steps of each env'),
      obs: f32(['E', D], `carry: the observation the policy acts on${L.normObs ? ' (raw)' : ''}`),
      key: i32([2], 'carry: the RNG key (the env draws its resets from it)'),
      ep_return: f32(['E'], "carry: each env's return in its first episode"),
      alive: f32(['E'], "carry: 1 while the env's first episode runs, 0 after it ends"),
      ...paramInputs(L, 'invariant'),
      ...evalNormInputs(L, 'invariant'),
    },
    nodes,
    outputs: { env_state: 'env.state', env_t: 'env.t', obs: 'env.obs', key: 'key_next', ep_return: 'ret', alive: 'alive_next' },
  };
}

/** A program's run settings: the pipeline's total_steps rounded down to whole iterations, its seed, logging and checkpoints. */
function runSettings(L: Layout): { total_steps: number; seed: number; logging: { every: number }; checkpoint: { every: number } } {
  const { cfg, N, T } = L;
  return {
    total_steps: Math.floor(cfg.total_steps / (N * T)) * N * T,
    seed: cfg.seed,
    logging: { every: cfg.logging.every },
    checkpoint: { every: cfg.checkpoint.every },
  };
}

function programJson(L: Layout): Json {
  const { cfg, N, T, epochs: E, minibatches: M } = L;
  const iterations = Math.floor(cfg.total_steps / (N * T));
  const run = runSettings(L);
  const equal = `equal to the classic ${L.spec.pipeline}${L.spec.env ? ` run with --env ${L.spec.env}` : ''}`;
  const hyper = programHyper(L);
  if (L.variant === 'amppo') {
    // Everything but the controller's entries comes from the PPO program it extends, which must agree with this pipeline.
    const base = layoutOf(PROGRAMS.find((s) => s.name === L.spec.base)!);
    const baseHyper = programHyper(base);
    for (const [k, v] of Object.entries(baseHyper)) if (hyper[k] !== v) fail(L.spec, `sets ${k} = ${hyper[k]}, not ${v} as ${L.spec.base} does`);
    if (JSON.stringify(runSettings(base)) !== JSON.stringify(run)) fail(L.spec, `runs other total_steps, seed, logging or checkpoint settings than ${L.spec.base}`);
    return {
      $schema: '../../../schemas/program.schema.json',
      program: L.spec.name,
      doc: `AM-PPO (spec am-ppo section 2) on ${cfg.env.name} as a program, ${equal}: the PPO program ../${L.spec.base}/ with the advantages alpha-modulated after GAE, the controller's alpha_ema and s_ema carried as state (its hyperparameters below, the pipeline's advantage.transform; Adam keeps its grad-norm clip). amppo_eps is the controller's epsilon eps_A, apart from Adam's eps. Everything else, the evaluate graph included, is ../${L.spec.base}/program.json. Written by tools/ppo-programs.ts.`,
      extends: `../${L.spec.base}/program.json`,
      init: 'init.graph.json',
      iteration: 'iteration.graph.json',
      hyper: Object.fromEntries(Object.entries(hyper).filter(([k]) => !(k in baseHyper))),
    };
  }
  return {
    $schema: '../../../schemas/program.schema.json',
    program: L.spec.name,
    doc:
      L.variant === 'alphagrad'
        ? `PPO with the AlphaGrad optimizer (spec am-ppo section 3) on ${cfg.env.name} as a program, ${equal}: the PPO program ../${L.spec.base}/ with AlphaGrad in place of Adam (lr ${cfg.optimizer.lr}${cfg.optimizer.anneal_lr ? ' annealed' : ''}, the pipeline's optimizer.hp, grad-norm clipping ${cfg.optimizer.clip_grad ? 'on' : 'off (A5, the AlphaGrad-PPO comparison)'}). alpha is [R]: no default could be confirmed from the paper (A9). It does not extend the PPO program, whose hyper entries name Adam's beta1 and beta2. total_steps is ${iterations} iterations of ${N * T} steps. Written by tools/ppo-programs.ts.`
        : `PPO on ${cfg.env.name} as a program, ${equal}: ${N} envs x ${T} steps, ${E} epochs x ${M} minibatches, Adam ${cfg.optimizer.lr}${cfg.optimizer.anneal_lr ? ' annealed' : ''}, ${normDoc(L)}. total_steps is ${iterations} iterations of ${N * T} steps, the iterations the pipeline's ${cfg.total_steps} gives. Written by tools/ppo-programs.ts.`,
    init: 'init.graph.json',
    iteration: 'iteration.graph.json',
    policy: policyJson(L),
    evaluate: `${L.stages}evaluate.graph.json`,
    hyper,
    ...run,
  };
}

/** JSON on one line, with a space after each colon and comma, as the library's graph files write nodes. */
function inline(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(inline).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${inline(x)}`).join(', ')}}`;
  return JSON.stringify(v);
}

/** A graph or program file: top-level keys one a line, inputs, nodes and outputs one entry a line. */
export function render(doc: Json): string {
  const lines = Object.entries(doc as Record<string, Json>).map(([k, v]) => {
    const key = JSON.stringify(k);
    if (Array.isArray(v) && v.length && typeof v[0] === 'object') return `  ${key}: [\n${v.map((x) => `    ${inline(x)}`).join(',\n')}\n  ]`;
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && (k === 'inputs' || k === 'outputs'))
      return `  ${key}: {\n${Object.entries(v).map(([n, x]) => `    ${JSON.stringify(n)}: ${inline(x)}`).join(',\n')}\n  }`;
    return `  ${key}: ${inline(v)}`;
  });
  return `{\n${lines.join(',\n')}\n}\n`;
}

/** The files of one program, by path under its folder. */
export function programFiles(spec: ProgramSpec): { dir: string; files: Record<string, string> } {
  const L = layoutOf(spec);
  if (spec.base) {
    // The variant calls its base's rollout step and evaluate graph: they must be the ones this pipeline would get.
    const base = layoutOf(PROGRAMS.find((s) => s.name === spec.base) ?? fail(spec, `names the base ${spec.base}, which PROGRAMS does not list`));
    const as = { ...L, spec: base.spec };
    if (JSON.stringify(rolloutStepGraph(as)) !== JSON.stringify(rolloutStepGraph(base))) fail(spec, `rolls out otherwise than ${spec.base}`);
    if (JSON.stringify([evaluateGraph(as), evalStepGraph(as)]) !== JSON.stringify([evaluateGraph(base), evalStepGraph(base)])) fail(spec, `evaluates otherwise than ${spec.base}`);
  }
  return {
    dir: L.dir,
    files: {
      'init.graph.json': render(initGraph(L)),
      ...(spec.base ? {} : { 'rollout-step.graph.json': render(rolloutStepGraph(L)), 'evaluate.graph.json': render(evaluateGraph(L)), 'eval-step.graph.json': render(evalStepGraph(L)) }),
      'update-step.graph.json': render(updateStepGraph(L)),
      'iteration.graph.json': render(iterationGraph(L)),
      'program.json': render(programJson(L)),
    },
  };
}

/** Writes programs' files (or, with `check`, reports those that differ, naming `tool`); returns how many differ. */
export function writeProgramFiles(programs: readonly { dir: string; files: Record<string, string> }[], check: boolean, tool: string): number {
  let stale = 0;
  for (const { dir, files } of programs) {
    mkdirSync(dir, { recursive: true });
    for (const [f, text] of Object.entries(files)) {
      const path = join(dir, f);
      let old: string | null = null;
      try {
        old = readFileSync(path, 'utf8');
      } catch {
        old = null;
      }
      if (old === text) continue;
      if (check) {
        process.stderr.write(`${relative(process.cwd(), path)}: differs from what ${tool} writes\n`);
        stale++;
      } else {
        writeFileSync(path, text);
        process.stdout.write(`wrote ${relative(process.cwd(), path)}\n`);
      }
    }
  }
  if (stale) process.stderr.write('run `npm run programs:generate` to rewrite them\n');
  return stale;
}

function main(args: string[]): number {
  return writeProgramFiles(PROGRAMS.map(programFiles), args.includes('--check'), 'tools/ppo-programs.ts') ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main(process.argv.slice(2));
