/**
 * Writes the GRPO and Hybrid GRPO program of each classic group pipeline listed in GROUP_PROGRAMS:
 * graphs/programs/<name>/ group-step (and, for GRPO's multi-step branches, branch-step), iteration
 * and program.json, with the pipeline's env, agent, group size, horizon, normalisation and
 * hyperparameters (docs/programs.md, "The group programs per env"). The update body and, without
 * observation normalisation, the init graph are those of the PPO program on the same env
 * (tools/ppo-programs.ts), whose layout helpers this module shares.
 *
 *   npm run programs:generate            # rewrites the PPO and the group programs
 *   npm run programs:generate -- --check # exits 1 when a checked-in file differs
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GRAPHS_DIR, loadPipeline, type PipelineConfig } from '../runtime/pipeline/config.ts';
import { loadGraph } from '../compiler/frontend/load.ts';
import {
  PROGRAMS,
  rolloutCarries,
  episodeNodes,
  METRIC_OUTPUTS,
  HYPER_DOC,
  bindParams,
  f32,
  flatten,
  i32,
  initGraph,
  keyRow,
  layoutOf,
  normDoc,
  paramInputs,
  policyJson,
  programFiles,
  render,
  statInputs,
  unflatten,
  writeProgramFiles,
  type Json,
  type Layout,
  type Node,
  type ProgramSpec,
} from './ppo-programs.ts';

export const GROUP_PROGRAMS: readonly ProgramSpec[] = [
  { name: 'grpo-acrobot', pipeline: 'pipelines/grpo-acrobot.json' },
  { name: 'grpo-pendulum', pipeline: 'pipelines/grpo-pendulum.json' },
  // No classic MountainCarContinuous pipelines: Pendulum's settings with the MountainCar env and agent, as the PPO generator does.
  { name: 'grpo-mountaincar_continuous', pipeline: 'pipelines/grpo-pendulum.json', env: 'MountainCarContinuous-v0' },
  { name: 'hybrid-grpo-acrobot', pipeline: 'pipelines/hybrid-grpo-acrobot.json' },
  { name: 'hybrid-grpo-pendulum', pipeline: 'pipelines/hybrid-grpo-pendulum.json' },
  { name: 'hybrid-grpo-mountaincar_continuous', pipeline: 'pipelines/hybrid-grpo-pendulum.json', env: 'MountainCarContinuous-v0' },
];

/** The hyperparameters of graphs/algorithms/hybrid-grpo/blend.graph.json that a program takes as hyper entries. */
const BLEND_HP = ['alpha', 'f_mode', 'tau', 'bootstrap'] as const;

const BLEND_DOC: Record<string, string> = {
  alpha: 'blend weight of the group z-score (spec B.3 alpha-blend [S/R]; 0: pure bootstrapped hybrid, 1: pure group-relative)',
  f_mode: 'the reward transform f: 0 tanh(R), 1 identity, 2 tanh(tau z) (spec D.10 [R])',
  tau: 'slope of f = tanh(tau z)',
  bootstrap: "1: A = f(R) + gamma (1 - done) V(s') - V(s) (B.3); 0: A = f(R), no value terms",
  select_argmax: "1: execute the branch with the largest f(R) + gamma (1 - done) V(s') (value-based selection, B.4.4); 0: a uniformly drawn one (B.3's default [R])",
};

/** A group program's layout: the PPO layout of its pipeline, the group's shape and the PPO program it shares graphs with. */
interface GroupLayout extends Layout {
  hybrid: boolean;
  /** Branches per visited state. */
  G: number;
  /** Steps each GRPO branch is rolled (1 for Hybrid GRPO). */
  H: number;
  /** The blend's hyperparameters (Hybrid GRPO): group.hp over the advantage graph's defaults. */
  blend: Record<string, number>;
  /** The folder name of the PPO program on the same env, agent and loss. */
  ppo: string;
}

function fail(spec: ProgramSpec, what: string): never {
  throw new Error(`${spec.name}: ${spec.pipeline} ${what}; the group program generator does not support it`);
}

/** The hp_* constants of hybrid-grpo/advantage.graph.json: the blend's defaults where group.hp sets nothing. */
function blendDefaults(): Record<string, number> {
  const g = JSON.parse(readFileSync(join(GRAPHS_DIR, 'algorithms/hybrid-grpo/advantage.graph.json'), 'utf8')) as { nodes: { id: string; attrs?: { value?: number } }[] };
  return Object.fromEntries(g.nodes.filter((n) => n.id.startsWith('hp_')).map((n) => [n.id.slice(3), n.attrs!.value!]));
}

export function groupLayoutOf(spec: ProgramSpec): GroupLayout {
  const algorithm: PipelineConfig['algorithm'] = loadPipeline(join(GRAPHS_DIR, spec.pipeline)).algorithm;
  if (algorithm !== 'grpo' && algorithm !== 'hybrid-grpo') fail(spec, `is ${algorithm}`);
  const L = layoutOf(spec, algorithm);
  const { cfg } = L;
  const group = cfg.group!;
  const hybrid = algorithm === 'hybrid-grpo';
  if (hybrid && group.horizon !== 1) fail(spec, `rolls its branches ${group.horizon} steps (Hybrid GRPO programs step each branch once)`);
  if (loadGraph(cfg.loss).inputs.some((i) => i.name === 'kl_coef')) fail(spec, "has a loss with a KL penalty (the PPO program's update body has none)");
  if ((L.T * group.size) % L.minibatches !== 0) fail(spec, `has ${L.T} x ${group.size} rows per env, not a multiple of its ${L.minibatches} minibatches`);
  const blend: Record<string, number> = {};
  if (hybrid) {
    const hp = { ...blendDefaults(), ...group.hp };
    for (const k of Object.keys(hp)) if (![...BLEND_HP, 'gamma', 'eps'].includes(k)) fail(spec, `sets group.hp.${k}`);
    // One gamma discounts V(s') and the running return of reward normalisation: with horizon 1 the pipeline's are equal.
    if (hp.gamma !== cfg.advantage.gamma) fail(spec, `sets group.hp.gamma ${hp.gamma} apart from advantage.gamma ${cfg.advantage.gamma}`);
    if (hp.eps !== 1e-8) fail(spec, 'sets group.hp.eps (the programs add 1e-8 to the group std)');
    for (const k of BLEND_HP) blend[k] = hp[k]!;
  }
  // The update body and init are the PPO program's: it must run the same env, agent, loss and envs.
  const ppoName = spec.name.replace(/^(hybrid-)?grpo-/, 'ppo-');
  const ppoSpec = PROGRAMS.find((p) => p.name === ppoName);
  if (!ppoSpec) fail(spec, `has no PPO program ${ppoName} to share its update body`);
  const P = layoutOf(ppoSpec);
  // Both folders sit side by side under graphs/programs/: equal relative paths are the same graphs.
  for (const k of ['step', 'reset', 'act', 'loss'] as const) if (P.paths[k] !== L.paths[k]) fail(spec, `runs another ${k} graph than ${ppoName}`);
  if (P.N !== L.N || P.normObs !== L.normObs || P.normReward !== L.normReward) fail(spec, `has other envs or normalisation than ${ppoName}`);
  return { ...L, hybrid, G: group.size, H: group.horizon, blend, ppo: ppoName };
}

/** Inputs both scan bodies take when the policy sees normalised observations. */
function normInvariants(L: Layout): Record<string, Json> {
  return L.normObs
    ? {
        obs_mean: f32([L.obsDim], 'invariant: running mean of the raw observations (this visited state folded in)'),
        obs_var: f32([L.obsDim], 'invariant: their running variance'),
      }
    : {};
}

/** `obs` normalised for the policy, or `obs` itself: the node id to act on. */
function policyObs(L: Layout, nodes: Node[], id: string, obs: string, mean: string, variance: string, doc?: string): string {
  if (!L.normObs) return obs;
  nodes.push({ id, op: 'call', in: { x: obs, mean, var: variance, clip: 'norm_clip' }, graph: L.paths.normalize, ...(doc ? { doc } : {}) });
  return `${id}.out`;
}

function branchStepGraph(L: GroupLayout): Json {
  const { obsDim: D, stateDim: S } = L;
  const nodes: Node[] = [
    { id: 'alive', op: 'sub', in: [1, 'done'] },
    { id: 'n_alive', op: 'sum', in: ['alive'] },
    { id: 'running', op: 'greater', in: ['n_alive', 0], doc: 'some branch has not ended: the classic loop runs this step' },
    { id: 'keys', op: 'random_split', in: ['key'], attrs: { num: 3 }, doc: 'take(2) of the classic driver: row 0 is the next key, rows 1 and 2 the act and env keys' },
    ...keyRow('key_next', 'keys', 0),
    ...keyRow('key_act', 'keys', 1),
    ...keyRow('key_env', 'keys', 2),
  ];
  const obsIn = policyObs(L, nodes, 'obs_norm', 'b_obs', 'obs_mean', 'obs_var', 'normalised with the statistics of the visited state, not updated by branch steps');
  nodes.push(
    { id: 'act', op: 'call', in: { obs: obsIn, key: 'key_act' }, graph: L.paths.act, params: bindParams(L, 'agent/', (p) => p.name) },
    { id: 'env', op: 'call', in: { state: 'b_state', t: 'b_t', action: 'act.action', key: 'key_env' }, graph: L.paths.step },
    { id: 'ended_b', op: 'logical_or', in: ['env.terminated', 'env.truncated'] },
    { id: 'ended', op: 'cast', in: ['ended_b'], attrs: { dtype: 'float32' } },
    { id: 'done_b', op: 'greater', in: ['done', 0] },
    { id: 'disc_r', op: 'mul', in: ['disc', 'env.reward'] },
    { id: 'R_add', op: 'add', in: ['R', 'disc_r'] },
    { id: 'R_next', op: 'where', in: ['done_b', 'R', 'R_add'], doc: 'ended branches keep their return' },
    { id: 'done_next', op: 'maximum', in: ['done', 'ended'] },
    { id: 'disc_next', op: 'mul', in: ['disc', 'gamma'] },
    { id: 'key_out', op: 'where', in: ['running', 'key_next', 'key'], doc: 'no split once every branch has ended, as the classic loop stops' },
  );
  return {
    $schema: '../../../schemas/graph.schema.json',
    graph: `${L.spec.name}-branch-step`,
    version: 1,
    doc: `One further step of every branch of a group step on ${L.cfg.env.name}, the body of the branch scan (the classic driver's rollBranches as a graph, spec sectional-moe-and-grpo B.4.2): acts on each branch's observation${L.normObs ? ' (normalised with the visited state\'s statistics)' : ''}, steps (and auto-resets) its env, adds disc * reward to the return of every branch that has not ended and marks the ones that end now. The classic loop stops once every branch has ended, and then splits no more keys; a scan always runs its length, so the key moves on only while some branch is still running (a where on the key carry), and an ended branch's return and done flag stay as they were. Carries: b_state, b_t, b_obs, key, R, done, disc. Invariants: gamma${L.normObs ? ', obs_mean, obs_var, norm_clip' : ''} and the agent's params.`,
    inputs: {
      b_state: f32(['M', S], "carry: each branch's env state (after any auto-reset)"),
      b_t: i32(['M'], "carry: elapsed steps of each branch's episode"),
      b_obs: f32(['M', D], `carry: the observation each branch acts on${L.normObs ? ' (raw)' : ''}`),
      key: i32([2], 'carry: the RNG key, split into (next key, act key, env key) while some branch runs'),
      R: f32(['M'], "carry: each branch's discounted return so far"),
      done: f32(['M'], "carry: 1 once the branch's episode has ended (terminated or truncated), else 0"),
      disc: f32([], "carry: gamma^k, the discount of this step's reward"),
      gamma: f32([], 'invariant: discount'),
      ...normInvariants(L),
      ...(L.normObs ? { norm_clip: f32([], 'invariant: bound of the normalised observations') } : {}),
      ...paramInputs(L, 'invariant'),
    },
    nodes,
    outputs: { b_state: 'env.state', b_t: 'env.t', b_obs: 'env.obs', key: 'key_out', R: 'R_next', done: 'done_next', disc: 'disc_next' },
  };
}

/** Tiles a [N, ...] carry G times along a new axis 1 and flattens it to [G*N, ...]: branch g of env i is row i*G + g. */
function tiled(id: string, x: string, dims: number[], G: number): Node[] {
  return [
    { id: `${id}_col`, op: 'reshape', in: [x], attrs: { shape: ['N', 1, ...dims] } },
    { id: `${id}_rep`, op: 'tile', in: [`${id}_col`], attrs: { reps: [1, G, ...dims.map(() => 1)] } },
    { id, op: 'reshape', in: [`${id}_rep`], attrs: { shape: [`${G}*N`, ...dims] } },
  ];
}

/** Row sel[i] of env i's group of a [G*N, ...] tensor, as [N, ...]: a mask and a sum, exact for one hot row. */
function picked(id: string, x: string, dims: number[], G: number, zero: Json): Node[] {
  const mask = dims.length ? 'sel_mask3' : 'sel_mask';
  return [
    { id: `${id}_grp`, op: 'reshape', in: [x], attrs: { shape: ['N', G, ...dims] } },
    { id: `${id}_only`, op: 'where', in: [mask, `${id}_grp`, zero] },
    { id, op: 'sum', in: [`${id}_only`], attrs: { axes: [1] } },
  ];
}

function groupStepGraph(L: GroupLayout): Json {
  const { obsDim: D, stateDim: S, G, H, hybrid } = L;
  const title = L.cfg.env.name;
  const nodes: Node[] = [
    { id: 'keys', op: 'random_split', in: ['key'], attrs: { num: 5 }, doc: `take(4) of the classic driver: the next key, then the act, env, bootstrap (${hybrid ? 'the value needs none' : 'unused by GRPO'}) and selection keys` },
    ...keyRow('key_next', 'keys', 0),
    ...keyRow('key_act', 'keys', 1),
    ...keyRow('key_env', 'keys', 2),
    ...keyRow('key_sel', 'keys', 4),
  ];
  const stats: Record<string, string> = {};
  if (L.normObs) {
    nodes.push({ id: 'obs_stat', op: 'call', in: { mean: 'obs_mean', var: 'obs_var', count: 'obs_count', x: 'obs' }, graph: L.paths.stat, doc: 'the visited observation is folded in before the policy sees it, as the classic group rollout does at every visited state' });
    Object.assign(stats, { obs_mean: 'obs_stat.mean', obs_var: 'obs_stat.var', obs_count: 'obs_stat.count' });
  }
  const obsIn = policyObs(L, nodes, 'obs_norm', 'obs', 'obs_stat.mean', 'obs_stat.var');
  nodes.push(
    ...tiled('obs_t', obsIn, [D], G),
    ...tiled('state_t', 'env_state', [S], G),
    ...tiled('t_t', 'env_t', [], G),
    { id: 'act', op: 'call', in: { obs: 'obs_t', key: 'key_act' }, graph: L.paths.act, params: bindParams(L, 'agent/', (p) => p.name), doc: `${G} actions per env, one per branch${hybrid ? ', and V(s)' : ''}` },
    { id: 'env', op: 'call', in: { state: 'state_t', t: 't_t', action: 'act.action', key: 'key_env' }, graph: L.paths.step, doc: `every branch's first step, from its copy of the env state${L.actionDtype === 'float32' ? ' (the env clips the action to its bounds)' : ''}` },
    { id: 'first_b', op: 'logical_or', in: ['env.terminated', 'env.truncated'] },
    { id: 'first_done', op: 'cast', in: ['first_b'], attrs: { dtype: 'float32' } },
  );
  let R = 'env.reward';
  let keyOut = 'key_next';
  if (H > 1) {
    nodes.push({
      id: 'branches',
      op: 'scan',
      in: {
        b_state: 'env.state', b_t: 'env.t', b_obs: 'env.obs', key: 'key_next', R: 'env.reward', done: 'first_done', disc: 'gamma', gamma: 'gamma',
        ...(L.normObs ? { obs_mean: 'obs_stat.mean', obs_var: 'obs_stat.var', norm_clip: 'norm_clip' } : {}),
        ...bindParams(L, '', (p) => p.name),
      },
      graph: 'branch-step.graph.json',
      attrs: { length: H - 1 },
      doc: `the horizon: ${H - 1} more steps of every branch (branch horizon ${H})`,
    });
    R = 'branches.R';
    keyOut = 'branches.key';
  }
  if (L.normReward) {
    nodes.push(
      { id: 'ret_var_eps', op: 'add', in: ['ret_var', 1e-8] },
      { id: 'ret_sd', op: 'sqrt', in: ['ret_var_eps'], doc: "the running std of the executed trajectories' discounted return, before this step folds it" },
      { id: 'R_scaled', op: 'div', in: [R, 'ret_sd'] },
      { id: 'clip_low', op: 'neg', in: ['norm_clip'] },
      { id: 'R_below', op: 'minimum', in: ['R_scaled', 'norm_clip'] },
      { id: 'R_norm', op: 'maximum', in: ['R_below', 'clip_low'], doc: 'every branch scaled alike, as the classic group rollout does; the episode trackers keep the raw reward' },
    );
    R = 'R_norm';
  }
  nodes.push({ id: 'R_grp', op: 'reshape', in: [R], attrs: { shape: ['N', G] } });
  const ys: Record<string, string> = {};
  let sel = 'sel_uniform';
  nodes.push({ id: 'sel_uniform', op: 'random_int', in: ['key_sel'], attrs: { shape: ['N'], max: G }, doc: `uniform: randomBits(key, N) % G, as the classic driver${hybrid ? ' (drawn either way, as the classic driver takes the key either way)' : ''}` });
  if (hybrid) {
    const finalObs = policyObs(L, nodes, 'final_norm', 'env.final_obs', 'obs_stat.mean', 'obs_stat.var', 'normalised with the visited state\'s statistics, not updated');
    nodes.push(
      { id: 'boot', op: 'call', in: { obs: finalObs }, graph: L.paths.agent, params: bindParams(L, '', (p) => p.name), doc: "V(s') of each branch's next observation before any auto-reset; (1 - done) drops the ended ones" },
      { id: 'V_grp', op: 'reshape', in: ['act.value'], attrs: { shape: ['N', G] } },
      { id: 'V_s_col', op: 'slice', in: ['V_grp'], attrs: { begin: [0, 0], size: [-1, 1] }, doc: "V(s): the first branch's (every branch acts on the same observation)" },
      { id: 'V_s', op: 'reshape', in: ['V_s_col'], attrs: { shape: ['N'] } },
      { id: 'V_next', op: 'reshape', in: ['boot.value'], attrs: { shape: ['N', G] } },
      { id: 'done_g', op: 'reshape', in: ['first_done'], attrs: { shape: ['N', G] } },
      { id: 'eps_z', op: 'const', attrs: { value: 1e-8 }, doc: 'added to the group std of the z-score' },
      { id: 'hyb', op: 'call', in: { R: 'R_grp', V_s: 'V_s', V_next: 'V_next', done: 'done_g', gamma: 'gamma', alpha: 'alpha', f_mode: 'f_mode', tau: 'tau', eps: 'eps_z', bootstrap: 'bootstrap' }, graph: rel(L, 'algorithms/hybrid-grpo/blend.graph.json') },
      { id: 'adv', op: 'reshape', in: ['hyb.adv'], attrs: { shape: [`${G}*N`] } },
      { id: 'ret_col', op: 'reshape', in: ['hyb.y'], attrs: { shape: ['N', 1] } },
      { id: 'ret_rep', op: 'tile', in: ['ret_col'], attrs: { reps: [1, G] } },
      { id: 'ret', op: 'reshape', in: ['ret_rep'], attrs: { shape: [`${G}*N`] } },
      { id: 'by_value', op: 'greater', in: ['select_argmax', 0] },
      { id: 'sel', op: 'where', in: ['by_value', 'hyb.select', 'sel_uniform'], doc: 'the executed branch of each env' },
    );
    sel = 'sel';
    Object.assign(ys, { value: 'act.value', adv: 'adv', ret: 'ret' });
  } else {
    nodes.push(
      { id: 'grpo', op: 'call', in: { rewards: 'R_grp' }, graph: rel(L, 'algorithms/grpo/advantage.graph.json'), doc: '(R - mean) / (std + 1e-8) over each env\'s group' },
      { id: 'adv', op: 'reshape', in: ['grpo.adv'], attrs: { shape: [`${G}*N`] } },
    );
    Object.assign(ys, { adv: 'adv' });
  }
  nodes.push(
    { id: 'sel_hot', op: 'one_hot', in: [sel], attrs: { depth: G } },
    { id: 'sel_mask', op: 'greater', in: ['sel_hot', 0], doc: "[N, G]: true at each env's executed branch" },
    { id: 'sel_mask3', op: 'expand_dims', in: ['sel_mask'], attrs: { axis: 2 } },
    { id: 'zero_i', op: 'const', attrs: { value: 0, dtype: 'int32' } },
    ...picked('next_state', 'env.state', [S], G, 0),
    ...picked('next_t', 'env.t', [], G, 'zero_i'),
    ...picked('next_obs', 'env.obs', [D], G, 0),
    ...picked('reward', 'env.reward', [], G, 0),
    ...picked('done', 'first_done', [], G, 0),
    ...episodeNodes('reward', 'ret_ep'),
  );
  if (L.normReward) {
    nodes.push(
      { id: 'ret_acc_disc', op: 'mul', in: ['ret_acc', 'gamma'] },
      { id: 'ret_acc_now', op: 'add', in: ['ret_acc_disc', 'reward'], doc: "gymnasium's NormalizeReward along the executed branches: the running discounted return of their first-step rewards" },
      { id: 'ret_rows', op: 'reshape', in: ['ret_acc_now'], attrs: { shape: ['N', 1] } },
      { id: 'ret_stat', op: 'call', in: { mean: 'ret_mean', var: 'ret_var', count: 'ret_count', x: 'ret_rows' }, graph: L.paths.stat, doc: 'one statistic over all envs: the N returns are one batch' },
      { id: 'ret_acc_next', op: 'mul', in: ['ret_acc_now', 'alive'], doc: 'a finished episode (terminated or truncated) restarts its discounted return' },
    );
    Object.assign(stats, { ret_acc: 'ret_acc_next', ret_mean: 'ret_stat.mean', ret_var: 'ret_stat.var', ret_count: 'ret_stat.count' });
  }
  const what = hybrid
    ? `every branch is stepped once from its copy. V of each branch's next observation (before any auto-reset) bootstraps its advantage: graphs/algorithms/hybrid-grpo/blend.graph.json gives adv = alpha z + (1 - alpha)(f(R) + gamma (1 - done) V(s') - V(s)) and the value target y = mean_G(R + gamma (1 - done) V(s')). One branch per env is executed, drawn uniformly with random_int or, with select_argmax 1, the one with the largest f(R) + gamma (1 - done) V(s')`
    : `every branch is stepped from its copy${H > 1 ? `, then rolled ${H - 1} steps further under the policy (branch-step.graph.json); a branch's reward is its discounted ${H}-step return, cut at its episode end` : ''}. The group advantages z-score those returns per env (graphs/algorithms/grpo/advantage.graph.json). One branch per env, drawn uniformly with random_int, is executed`;
  const norm = [
    L.normObs ? 'the visited observation is folded into the running statistics and normalised before the policy sees it' : '',
    L.normReward ? "every branch's reward is divided by the running std of the executed branches' discounted return and clipped" : '',
  ].filter(Boolean);
  return {
    $schema: '../../../schemas/graph.schema.json',
    graph: `${L.spec.name}-group-step`,
    version: 1,
    doc: `One visited state of N ${title} envs under ${hybrid ? 'Hybrid GRPO' : 'GRPO'}, the body of the rollout scan (the classic driver's groupRollout step as a graph, spec sectional-moe-and-grpo ${hybrid ? 'B.3-B.5, an [R] reconstruction' : 'B.2, B.4.2'}): ${norm.length ? `${norm.join('; ')}; ` : ''}each env's state is tiled ${G} times, ${G} actions are sampled and ${what}: the envs move to its first step and the episode statistics${L.normReward ? ' and the running return' : ''} follow it. Carries: env_state, env_t, obs, key, ep_return, ep_length, return_sum, length_sum, episodes${Object.keys(statInputs(L, '')).map((s) => `, ${s}`).join('')}. Invariants: gamma${L.normObs || L.normReward ? ', norm_clip' : ''}${hybrid ? ", the blend's hyperparameters, select_argmax" : ''} and the agent's params. ys: step_obs${L.normObs ? ' (normalised)' : ''}, action, logp${hybrid ? ', value' : ''} (one row per branch)${hybrid ? ', adv and ret (y, the same for every branch of a group)' : ' and adv'}.`,
    inputs: {
      ...rolloutCarries(L, 'carry: the RNG key', "carry: return of each env's running episode (along the executed branches)"),
      ...statInputs(L, 'carry'),
      gamma: f32([], hybrid ? "invariant: discount of the bootstrap V(s')" + (L.normReward ? ' and of the running return' : '') : 'invariant: discount of the branch returns' + (L.normReward ? ' and of the running return' : '')),
      ...(L.normObs || L.normReward ? { norm_clip: f32([], 'invariant: bound of the normalised observations and rewards') } : {}),
      ...(hybrid ? Object.fromEntries([...BLEND_HP, 'select_argmax'].map((h) => [h, f32([], `invariant: ${BLEND_DOC[h]}`)])) : {}),
      ...paramInputs(L, 'invariant'),
    },
    nodes,
    outputs: {
      env_state: 'next_state',
      env_t: 'next_t',
      obs: 'next_obs',
      key: keyOut,
      ep_return: 'ep_return_next',
      ep_length: 'ep_length_next',
      return_sum: 'return_sum_next',
      length_sum: 'length_sum_next',
      episodes: 'episodes_next',
      ...stats,
      step_obs: 'obs_t',
      action: 'act.action',
      logp: 'act.logp',
      ...ys,
    },
  };
}

/** A path under graphs/, relative to the program's folder. */
function rel(L: Layout, p: string): string {
  return relative(L.dir, join(GRAPHS_DIR, p)).split('\\').join('/');
}

const LOSS_HYPER = ['clip_coef', 'ent_coef', 'vf_coef', 'norm_adv', 'clip_vloss'] as const;

function iterationHyper(L: GroupLayout): string[] {
  return ['lr', 'anneal_lr', 'gamma', ...LOSS_HYPER, 'max_grad_norm', 'beta1', 'beta2', 'eps', ...(L.normObs || L.normReward ? ['norm_clip'] : []), ...(L.hybrid ? [...BLEND_HP, 'select_argmax'] : [])];
}

function hyperDoc(L: GroupLayout, h: string): string {
  if (h === 'gamma') return L.hybrid ? "discount of the bootstrap V(s')" : 'discount of the branch returns';
  if (h === 'vf_coef' && !L.hybrid) return 'value loss weight (0 for GRPO, which has no value function: its returns and values are zeros)';
  if (h === 'norm_adv' && !L.hybrid) return '1 = normalise advantages per minibatch (GRPO: 0, its group z-scores are used as they are)';
  return BLEND_DOC[h] ?? HYPER_DOC[h]!;
}

function iterationGraph(L: GroupLayout): Json {
  const { T, G, H, P, obsDim: D, stateDim: S, epochs: E, minibatches: M, hybrid } = L;
  const rows = T * G;
  const B = `${rows}*N`;
  const MB = `${rows / M}*N`;
  const stats = Object.keys(statInputs(L, ''));
  const nodes: Node[] = [
    {
      id: 'roll',
      op: 'scan',
      in: {
        env_state: 'env_state', env_t: 'env_t', obs: 'obs', key: 'key', ep_return: 'ep_return', ep_length: 'ep_length', return_sum: 0, length_sum: 0, episodes: 0,
        ...Object.fromEntries(stats.map((s) => [s, s])),
        gamma: 'gamma',
        ...(L.normObs || L.normReward ? { norm_clip: 'norm_clip' } : {}),
        ...(hybrid ? Object.fromEntries([...BLEND_HP, 'select_argmax'].map((h) => [h, h])) : {}),
        ...bindParams(L, '', (p) => p.name),
      },
      graph: 'group-step.graph.json',
      attrs: { length: T },
      doc: `${T} visited states of the N envs, ${G} branches each, under the current policy`,
    },
    { id: 'b_obs', op: 'reshape', in: ['roll.step_obs'], attrs: { shape: [B, D] }, doc: `the batch: row (s*N + i)*${G} + g is branch g of env i at visited state s, as the classic driver concatenates its groups` },
    { id: 'b_actions', op: 'reshape', in: ['roll.action'], attrs: { shape: [B, ...L.actionDims] } },
    { id: 'b_logp', op: 'reshape', in: ['roll.logp'], attrs: { shape: [B] } },
    { id: 'b_advantages', op: 'reshape', in: ['roll.adv'], attrs: { shape: [B] } },
    ...(hybrid
      ? [
          { id: 'b_values', op: 'reshape', in: ['roll.value'], attrs: { shape: [B] } },
          { id: 'b_returns', op: 'reshape', in: ['roll.ret'], attrs: { shape: [B] }, doc: "the value target y of each branch's group" },
        ]
      : [
          { id: 'b_values', op: 'zeros_like', in: ['b_logp'], doc: 'no value function: the value loss sees zeros (and vf_coef is 0), as in the classic driver' },
          { id: 'b_returns', op: 'zeros_like', in: ['b_logp'] },
        ]),
  ];
  let prev = 'roll.key';
  for (let e = 0; e < E; e++) {
    const next = e === E - 1 ? 'key_final' : `key_e${e}`;
    nodes.push(
      { id: `${next}_split`, op: 'random_split', in: [prev], attrs: { num: 2 }, ...(e === 0 ? { doc: `epoch 0's shuffle key, as the classic driver takes one per epoch (the group rollout draws no bootstrap key)` } : {}) },
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
    { id: 'roll_ones', op: 'ones_like', in: ['roll.adv'] },
    ...(H > 1
      ? [
          { id: 'branches', op: 'sum', in: ['roll_ones'], doc: `branches this iteration: N x ${T} x ${G}` },
          { id: 'steps', op: 'mul', in: ['branches', H], doc: `env steps this iteration: every branch counts its ${H} steps (the branch scan's length + 1), as the classic driver counts them` },
        ]
      : [{ id: 'steps', op: 'sum', in: ['roll_ones'], doc: `env steps this iteration: every branch, N x ${T} x ${G}` }]),
    { id: 'iters', op: 'div', in: ['total_steps', 'steps'] },
    { id: 'n_iters', op: 'floor', in: ['iters'], doc: "the classic driver's iteration count: floor(total_steps / steps per iteration)" },
    { id: 'it_f', op: 'cast', in: ['iterations_done'], attrs: { dtype: 'float32' } },
    { id: 'done_frac', op: 'div', in: ['it_f', 'n_iters'] },
    { id: 'anneal', op: 'mul', in: ['done_frac', 'anneal_lr'] },
    { id: 'lr_frac', op: 'sub', in: [1, 'anneal'] },
    { id: 'lr_now', op: 'mul', in: ['lr', 'lr_frac'], doc: '(1 - (iteration - 1) / iterations) * lr with iteration counted from 1, as the classic driver' },
    {
      id: 'upd',
      op: 'scan',
      in: {
        params: 'flat', m: 'opt_m', v: 'opt_v', step: 'opt_step', rows: 'mb_rows', obs: 'b_obs', actions: 'b_actions', logp: 'b_logp', advantages: 'b_advantages', returns: 'b_returns', values: 'b_values', lr: 'lr_now',
        ...Object.fromEntries([...LOSS_HYPER, 'max_grad_norm', 'beta1', 'beta2', 'eps'].map((h) => [h, h])),
      },
      graph: `../${L.ppo}/update-step.graph.json`,
      attrs: { xs: ['rows'] },
      doc: `one Adam step per minibatch: the PPO program's update body`,
    },
    ...unflatten(L, 'upd.params', 'new_flat', 'new'),
    { id: 'one_i', op: 'const', attrs: { value: 1, dtype: 'int32' } },
    { id: 'iterations_next', op: 'add', in: ['iterations_done', 'one_i'] },
    ...['loss', 'pg_loss', 'v_loss', 'entropy', 'approx_kl', 'clipfrac', 'grad_norm'].map((k) => ({ id: `m_${k}`, op: 'mean', in: [`upd.${k}`] })),
    { id: 'm_grad_clip_frac', op: 'mean', in: ['upd.grad_clipped'], doc: 'fraction of the steps whose grad norm was clipped' },
    { id: 'm_episodic_return', op: 'div', in: ['roll.return_sum', 'roll.episodes'], doc: 'mean return of the episodes finished this iteration: 0 / 0 = NaN (no value) when none did' },
    { id: 'm_episodic_length', op: 'div', in: ['roll.length_sum', 'roll.episodes'] },
    { id: 'ev_res', op: 'sub', in: ['b_returns', 'b_values'] },
    { id: 'ev_vr', op: 'variance', in: ['ev_res'] },
    { id: 'ev_vt', op: 'variance', in: ['b_returns'] },
    { id: 'ev_ratio', op: 'div', in: ['ev_vr', 'ev_vt'] },
    { id: 'ev_raw', op: 'sub', in: [1, 'ev_ratio'] },
    { id: 'ev_flat', op: 'equal', in: ['ev_vt', 0] },
    { id: 'ev_nan', op: 'div', in: ['ev_vt', 'ev_vt'] },
    { id: 'm_explained_variance', op: 'where', in: ['ev_flat', 'ev_nan', 'ev_raw'], doc: `1 - Var(returns - values) / Var(returns)${hybrid ? '; NaN when the returns do not vary' : ": NaN, since GRPO's returns are zeros, as the classic driver logs it"}` },
  );
  return {
    $schema: '../../../schemas/graph.schema.json',
    graph: `${L.spec.name}-iteration`,
    version: 1,
    doc: `One ${hybrid ? 'Hybrid GRPO' : 'GRPO'} iteration on ${L.cfg.env.name}, as the classic driver runs ${L.spec.pipeline}${L.spec.env ? ` with --env ${L.spec.env}` : ''}: a rollout scan of ${T} visited states per env, each a group of ${G} branches ${H > 1 ? `rolled ${H} steps` : 'stepped once'} (group-step.graph.json, ${normDoc(L)}), ${hybrid ? 'the blended advantages and the multi-sample value target y as the batch\'s advantages and returns' : 'the group advantages as the batch\'s advantages with zero returns and values (no value function)'}, then the PPO program's update scan (../${L.ppo}/update-step.graph.json) over ${E} epochs x ${M} minibatches of per-epoch permutations, lr annealed from the iteration counter. env_steps counts every ${H > 1 ? 'simulated branch step' : 'branch'}, N x ${T} x ${G}${H > 1 ? ` x ${H}, as the classic driver does, also those of branches that had already ended` : ''}. State in, next state and metrics out.`,
    inputs: {
      ...paramInputs(L, 'state'),
      opt_m: f32([P], "state: Adam's first moment over the flat params"),
      opt_v: f32([P], "state: Adam's second moment"),
      opt_step: i32([], 'state: Adam steps taken'),
      env_state: f32(['N', S], "state: the envs' physical state"),
      env_t: i32(['N'], "state: elapsed steps of each env's episode"),
      obs: f32(['N', D], `state: the observation the next iteration starts from${L.normObs ? ' (raw, not yet folded into the statistics)' : ''}`),
      key: i32([2], 'state: the RNG key'),
      ep_return: f32(['N'], "state: return of each env's running episode"),
      ep_length: f32(['N'], "state: length of each env's running episode"),
      iterations_done: i32([], 'state: iterations done (for lr annealing)'),
      ...statInputs(L, 'state'),
      ...Object.fromEntries(iterationHyper(L).map((h) => [h, f32([], `hyper: ${hyperDoc(L, h)}`)])),
      total_steps: f32([], "the run's env steps (from the pipeline): with the steps per iteration it gives the number of iterations lr anneals over"),
    },
    nodes,
    outputs: {
      ...Object.fromEntries(L.params.map((p) => [p.name, `new_${p.name}`])),
      opt_m: 'upd.m',
      opt_v: 'upd.v',
      opt_step: 'upd.step',
      env_state: 'roll.env_state',
      env_t: 'roll.env_t',
      obs: 'roll.obs',
      key: 'key_final',
      ep_return: 'roll.ep_return',
      ep_length: 'roll.ep_length',
      iterations_done: 'iterations_next',
      ...Object.fromEntries(stats.map((s) => [s, `roll.${s}`])),
      ...METRIC_OUTPUTS,
    },
  };
}

/**
 * The PPO program's init without folding the reset observations into the statistics: the group
 * step folds the observation it starts from, as the classic group rollout does at every visited state.
 */
function initWithoutFold(L: GroupLayout): Json {
  const g = initGraph(L) as { nodes: Node[]; outputs: Record<string, string> } & Record<string, Json>;
  g.nodes = g.nodes.filter((n) => n.id !== 'obs_stat').map((n) => (n.id === 'obs_mean0' ? { ...n, doc: "the reset observations are not folded in here: the first group step folds the observation it starts from, as the classic group rollout does" } : n));
  Object.assign(g.outputs, { obs_mean: 'obs_mean0', obs_var: 'obs_var0', obs_count: 'stat_count0' });
  return g as Json;
}

/** The program's hyperparameters, as the classic pipeline sets them. */
export function groupProgramHyper(L: GroupLayout): Record<string, number> {
  const { cfg } = L;
  const u = cfg.update;
  const o = cfg.optimizer;
  const all: Record<string, number> = {
    lr: o.lr, anneal_lr: o.anneal_lr ? 1 : 0, gamma: cfg.advantage.gamma,
    clip_coef: u.clip_coef, ent_coef: u.ent_coef, vf_coef: L.hybrid ? u.vf_coef : 0, norm_adv: u.norm_adv ? 1 : 0, clip_vloss: u.clip_vloss ? 1 : 0, max_grad_norm: u.max_grad_norm,
    beta1: o.beta1, beta2: o.beta2, eps: o.eps, norm_clip: cfg.normalize.clip,
    ...L.blend, select_argmax: cfg.group!.select === 'argmax' ? 1 : 0,
  };
  return Object.fromEntries(iterationHyper(L).map((h) => [h, all[h]!]));
}

function programJson(L: GroupLayout): Json {
  const { cfg, N, T, G, H, epochs: E, minibatches: M, hybrid } = L;
  const perIteration = N * T * G * H;
  const iterations = Math.floor(cfg.total_steps / perIteration);
  const what = hybrid
    ? `groups of ${G} branches stepped once, advantage alpha z + (1 - alpha)(f(R) + gamma (1 - done) V(s') - V(s)) normalised per minibatch, value target mean_G(R + gamma (1 - done) V(s')), ${cfg.group!.select === 'argmax' ? 'the branch with the largest bootstrapped score' : 'a uniformly drawn branch'} executed (select_argmax, alpha, f_mode, tau and bootstrap are hyper entries: the spec's B.4 defaults are [R])`
    : `groups of ${G} branches rolled ${H} steps, group z-scored advantages, no value function (vf_coef 0), a uniformly drawn branch executed`;
  return {
    $schema: '../../../schemas/program.schema.json',
    program: L.spec.name,
    doc: `${hybrid ? 'Hybrid GRPO' : 'GRPO'} on ${cfg.env.name} as a program, equal to the classic ${L.spec.pipeline}${L.spec.env ? ` run with --env ${L.spec.env}` : ''}: ${N} envs x ${T} visited states, ${what}; PPO's Adam update (../${L.ppo}/update-step.graph.json), ${E} epochs x ${M} minibatches, Adam ${cfg.optimizer.lr}${cfg.optimizer.anneal_lr ? ' annealed' : ''}, ${normDoc(L)}. total_steps is ${iterations} iterations of ${perIteration} env steps, the iterations the pipeline's ${cfg.total_steps} gives. Written by tools/group-programs.ts.`,
    init: L.normObs ? 'init.graph.json' : `../${L.ppo}/init.graph.json`,
    iteration: 'iteration.graph.json',
    // The PPO program's evaluation and policy: the same agent and normalisation state.
    evaluate: `../${L.ppo}/evaluate.graph.json`,
    policy: policyJson(L),
    hyper: groupProgramHyper(L),
    total_steps: iterations * perIteration,
    seed: cfg.seed,
    logging: { every: cfg.logging.every },
    checkpoint: { every: cfg.checkpoint.every },
  };
}

/** The files of one group program, by path under its folder. */
export function groupProgramFiles(spec: ProgramSpec): { dir: string; files: Record<string, string> } {
  const L = groupLayoutOf(spec);
  return {
    dir: L.dir,
    files: {
      ...(L.normObs ? { 'init.graph.json': render(initWithoutFold(L)) } : {}),
      'group-step.graph.json': render(groupStepGraph(L)),
      ...(L.H > 1 ? { 'branch-step.graph.json': render(branchStepGraph(L)) } : {}),
      'iteration.graph.json': render(iterationGraph(L)),
      'program.json': render(programJson(L)),
    },
  };
}

/** Every generated program: the PPO programs, then the group programs that share their graphs. */
function main(args: string[]): number {
  const check = args.includes('--check');
  const stale = writeProgramFiles(PROGRAMS.map(programFiles), check, 'tools/ppo-programs.ts') + writeProgramFiles(GROUP_PROGRAMS.map(groupProgramFiles), check, 'tools/group-programs.ts');
  return stale ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main(process.argv.slice(2));
