/** Pipeline files: JSON Schema validation (with file + JSON pointer errors), defaults, graph loading. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadGraph, loadGraphJson, parseJsonText } from '../../compiler/frontend/load.ts';
import { assertValid, schemaValidator } from '../../compiler/frontend/schema.ts';
import { LoomError } from '../../compiler/errors.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { packagePath } from '../../compiler/package-root.ts';

export interface PipelineConfig {
  file: string;
  pipeline: string;
  algorithm: 'ppo' | 'grpo' | 'hybrid-grpo';
  /** GRPO / Hybrid GRPO: actions sampled per visited state, each branch stepped from a copy of the env state. */
  group: { size: number; horizon: number; select: 'uniform' | 'argmax'; hp: Record<string, number> } | null;
  env: { name: string; step: string; reset: string; num_envs: number };
  policy: { act: string };
  loss: string;
  optimizer: {
    name: string;
    lr: number;
    anneal_lr: boolean;
    eps: number;
    beta1: number;
    beta2: number;
    args: Record<string, number>;
    /** Values for the optimizer graph's `hp_<name>` const nodes (e.g. AlphaGrad's alpha, momentum). */
    hp: Record<string, number>;
    /** Clip the global grad norm to update.max_grad_norm before the optimizer step. */
    clip_grad: boolean;
  };
  rollout: { steps: number };
  advantage: { gamma: number; lambda: number; transform: AdvantageTransform | null };
  update: { epochs: number; minibatches: number; norm_adv: boolean; clip_coef: number; clip_vloss: boolean; ent_coef: number; vf_coef: number; max_grad_norm: number; target_kl: number | null };
  normalize: { obs: boolean; reward: boolean; clip: number };
  total_steps: number;
  seed: number;
  logging: { every: number };
  checkpoint: { every: number };
  eval: { episodes: number };
}

/** AM-PPO advantage modulation (spec am-ppo §2): controller hyperparameters and initial state. */
export interface AmppoTransform {
  kind: 'amppo';
  /** Values for the `hp_<name>` const nodes of graphs/algorithms/amppo/{update,modulate}. */
  hp: Record<string, number>;
  alpha_init: number;
  s_init: number;
}
export type AdvantageTransform = AmppoTransform;

/** The AM-PPO hyperparameters a pipeline may set; each is an `hp_<name>` node of the amppo graphs. */
export const AMPPO_HP = ['tau', 'p_star', 'kappa', 'eta', 'rho', 'rho_sat', 'eps', 'v_shift'] as const;

export interface PipelineGraphs {
  step: IRGraph;
  reset: IRGraph;
  act: IRGraph;
  loss: IRGraph;
  optimizer: IRGraph;
  gae: IRGraph;
  clip: IRGraph;
  /** Present for grpo / hybrid-grpo: grpo/advantage or hybrid-grpo/advantage. */
  groupAdvantage?: IRGraph;
  /** Present when advantage.transform is amppo. */
  amppo?: { update: IRGraph; modulate: IRGraph };
}

/** The library folder (graphs/) that ships with loom: optimizers and GAE live there. */
export const GRAPHS_DIR = packagePath('graphs');

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});

/** The graph-path fields of a pipeline file, as JSON pointers; each resolves relative to the file that sets it. */
const PATH_FIELDS = [['env', 'step'], ['env', 'reset'], ['policy', 'act'], ['loss']] as const;

/** Objects merge key by key; anything else in `over` replaces `base`. */
function mergeJson(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeJson(base[k], v) : v;
  return out;
}
const isPlainObject = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * Resolves `extends` chains: the base file is loaded (recursively), its graph paths made absolute
 * against its own folder, and this file's keys merged over it. Errors name the file and pointer
 * that introduced them.
 */
function resolveExtends(json: unknown, file: string, chain: string[] = []): unknown {
  if (!isPlainObject(json) || json.extends === undefined) return json;
  const fail = (message: string, found?: string): never => {
    throw new LoomError({ code: 'E_SCHEMA', message, file: resolve(file), pointer: '/extends', ...(found !== undefined ? { found } : {}) });
  };
  if (typeof json.extends !== 'string' || json.extends === '') return fail('extends must be a non-empty path to a pipeline file');
  const baseFile = resolve(dirname(resolve(file)), json.extends);
  if (chain.includes(baseFile) || baseFile === resolve(file)) return fail(`extends forms a cycle: ${[...chain, resolve(file), baseFile].join(' -> ')}`, json.extends);
  if (!existsSync(baseFile)) return fail(`base pipeline ${baseFile} does not exist`, json.extends);
  const base = resolveExtends(parseJsonText(readFileSync(baseFile, 'utf8'), baseFile), baseFile, [...chain, resolve(file)]);
  if (!isPlainObject(base)) return fail(`base pipeline ${baseFile} is not a JSON object`, json.extends);
  const absolute = structuredClone(base);
  for (const path of PATH_FIELDS) {
    let parent: unknown = absolute;
    for (const k of path.slice(0, -1)) parent = isPlainObject(parent) ? parent[k] : undefined;
    const leaf = path[path.length - 1]!;
    if (isPlainObject(parent) && typeof parent[leaf] === 'string') parent[leaf] = resolve(dirname(baseFile), parent[leaf] as string);
  }
  const { extends: _, ...own } = json;
  return mergeJson(absolute, own);
}

/** Validates and fills defaults. Graph paths become absolute (relative to the pipeline file). */
export function parsePipeline(json: unknown, file: string): PipelineConfig {
  json = resolveExtends(json, file);
  assertValid(schemaValidator('pipeline.schema.json'), json, file, '', 'pipeline');
  const j = json as Json;
  const base = dirname(resolve(file));
  const env = obj(j.env);
  const opt = obj(j.optimizer);
  const upd = obj(j.update);
  const adv = obj(j.advantage);
  const norm = obj(j.normalize);
  const trj = adv.transform === undefined ? null : obj(adv.transform);
  const tr: AdvantageTransform | null = trj
    ? {
        kind: 'amppo',
        hp: Object.fromEntries(AMPPO_HP.filter((k) => trj[k] !== undefined).map((k) => [k, trj[k] as number])),
        alpha_init: (trj.alpha_init as number) ?? 1.0,
        s_init: (trj.s_init as number) ?? 0.1,
      }
    : null;
  const algorithm = (j.algorithm as PipelineConfig['algorithm']) ?? 'ppo';
  const grp = obj(j.group);
  const cfg: PipelineConfig = {
    file: resolve(file),
    pipeline: j.pipeline as string,
    algorithm,
    group:
      algorithm === 'ppo'
        ? null
        : {
            size: (grp.size as number) ?? 8,
            horizon: (grp.horizon as number) ?? 1,
            // Spec B.3: the executed branch is uniform unless value-based selection (B.4.4) is asked for.
            select: (grp.select as 'uniform' | 'argmax') ?? 'uniform',
            // The hybrid graph bootstraps V after `horizon` steps: its discount is gamma^horizon unless group.hp says otherwise.
            hp:
              algorithm === 'hybrid-grpo'
                ? { gamma: ((adv.gamma as number) ?? 0.99) ** ((grp.horizon as number) ?? 1), ...((grp.hp as Record<string, number>) ?? {}) }
                : ((grp.hp as Record<string, number>) ?? {}),
          },
    env: { name: (env.name as string) ?? (j.pipeline as string), step: resolve(base, env.step as string), reset: resolve(base, env.reset as string), num_envs: env.num_envs as number },
    policy: { act: resolve(base, obj(j.policy).act as string) },
    loss: resolve(base, j.loss as string),
    optimizer: {
      name: opt.name as string,
      lr: opt.lr as number,
      anneal_lr: (opt.anneal_lr as boolean) ?? true,
      eps: (opt.eps as number) ?? 1e-5,
      beta1: (opt.beta1 as number) ?? 0.9,
      beta2: (opt.beta2 as number) ?? 0.999,
      args: (opt.args as Record<string, number>) ?? {},
      hp: (opt.hp as Record<string, number>) ?? {},
      // Spec am-ppo A5: AM-PPO clips for every optimizer; the AlphaGrad-PPO comparison clips only for Adam.
      clip_grad: (opt.clip_grad as boolean) ?? (opt.name !== 'alphagrad' || tr !== null),
    },
    rollout: { steps: obj(j.rollout).steps as number },
    advantage: { gamma: (adv.gamma as number) ?? 0.99, lambda: (adv.lambda as number) ?? 0.95, transform: tr },
    update: {
      epochs: (upd.epochs as number) ?? 4,
      minibatches: (upd.minibatches as number) ?? 4,
      // GRPO's advantages are z-scored per group already; PPO and Hybrid GRPO normalise per minibatch.
      norm_adv: (upd.norm_adv as boolean) ?? algorithm !== 'grpo',
      clip_coef: (upd.clip_coef as number) ?? 0.2,
      clip_vloss: (upd.clip_vloss as boolean) ?? true,
      ent_coef: (upd.ent_coef as number) ?? 0.01,
      vf_coef: (upd.vf_coef as number) ?? 0.5,
      max_grad_norm: (upd.max_grad_norm as number) ?? 0.5,
      target_kl: (upd.target_kl as number | null) ?? null,
    },
    normalize: { obs: (norm.obs as boolean) ?? false, reward: (norm.reward as boolean) ?? false, clip: (norm.clip as number) ?? 10 },
    total_steps: j.total_steps as number,
    seed: (j.seed as number) ?? 1,
    logging: { every: (obj(j.logging).every as number) ?? 1 },
    checkpoint: { every: (obj(j.checkpoint).every as number) ?? 10 },
    eval: { episodes: (obj(j.eval).episodes as number) ?? 10 },
  };
  const fail = (message: string, pointer: string): never => {
    throw new LoomError({ code: 'E_SCHEMA', message, file: cfg.file, pointer });
  };
  if (cfg.group && cfg.advantage.transform) fail('advantage.transform applies to ppo only', '/advantage/transform');
  if (cfg.algorithm === 'grpo' && cfg.group?.select === 'argmax') fail('grpo has no value function to pick the argmax branch; use uniform', '/group/select');
  if (!cfg.group && j.group !== undefined) fail('group applies to grpo and hybrid-grpo only', '/group');
  const batch = cfg.env.num_envs * cfg.rollout.steps * (cfg.group?.size ?? 1);
  if (batch % cfg.update.minibatches !== 0)
    throw new LoomError({
      code: 'E_SCHEMA',
      message: 'num_envs * rollout.steps (* group.size) must be divisible by update.minibatches',
      file: cfg.file,
      pointer: '/update/minibatches',
      expected: `a divisor of ${batch}`,
      found: String(cfg.update.minibatches),
    });
  return cfg;
}

export function loadPipeline(file: string): PipelineConfig {
  if (!existsSync(file)) throw new LoomError({ code: 'E_IO', message: `cannot read pipeline ${file}: no such file`, file });
  return parsePipeline(parseJsonText(readFileSync(file, 'utf8'), file), file);
}

/** Loads every graph a pipeline names; a missing file is reported at the pipeline's pointer. */
export function loadPipelineGraphs(cfg: PipelineConfig): PipelineGraphs {
  const load = (path: string, pointer: string): IRGraph => {
    if (!existsSync(path)) throw new LoomError({ code: 'E_IO', message: `graph file ${path} does not exist`, file: cfg.file, pointer });
    return loadGraph(path);
  };
  const patched = (path: string, hp: Record<string, number>, pointer: string, required: boolean): IRGraph => {
    if (!existsSync(path)) throw new LoomError({ code: 'E_IO', message: `graph file ${path} does not exist`, file: cfg.file, pointer });
    return loadGraphJson(patchHp(parseJsonText(readFileSync(path, 'utf8'), path), hp, required, cfg.file, pointer), path);
  };
  const tr = cfg.advantage.transform;
  const amppoDir = join(GRAPHS_DIR, 'algorithms', 'amppo');
  return {
    ...(cfg.group
      ? { groupAdvantage: patched(join(GRAPHS_DIR, 'algorithms', cfg.algorithm, 'advantage.graph.json'), cfg.group.hp, '/group/hp', true) }
      : {}),
    ...(tr
      ? {
          amppo: {
            update: patched(join(amppoDir, 'update.graph.json'), tr.hp, '/advantage/transform', true),
            // modulate has only the gate's constants (kappa, eps, v_shift); they must match update's.
            modulate: patched(join(amppoDir, 'modulate.graph.json'), tr.hp, '/advantage/transform', false),
          },
        }
      : {}),
    step: load(cfg.env.step, '/env/step'),
    reset: load(cfg.env.reset, '/env/reset'),
    act: load(cfg.policy.act, '/policy/act'),
    loss: load(cfg.loss, '/loss'),
    optimizer: patched(join(GRAPHS_DIR, 'optimizers', `${cfg.optimizer.name}.graph.json`), cfg.optimizer.hp, '/optimizer/name', true),
    gae: loadGraph(join(GRAPHS_DIR, 'algorithms', 'gae.graph.json')),
    clip: loadGraph(join(GRAPHS_DIR, 'optimizers', 'clip-grad-norm.graph.json')),
  };
}

/**
 * Sets `attrs.value` of the `hp_<name>` const nodes of a parsed graph (the algorithm graphs'
 * configuration convention). With `required`, a name the graph lacks is an error at `pointer`.
 */
export function patchHp(json: unknown, hp: Record<string, number>, required: boolean, file: string, pointer: string): unknown {
  const nodes = (obj(json).nodes ?? []) as Json[];
  for (const [k, v] of Object.entries(hp)) {
    const n = nodes.find((x) => x.id === `hp_${k}` && x.op === 'const');
    if (!n) {
      if (!required) continue;
      throw new LoomError({ code: 'E_SCHEMA', message: `the graph has no hyperparameter "${k}" (const node hp_${k})`, file, pointer, found: k });
    }
    n.attrs = { ...obj(n.attrs), value: v };
  }
  return json;
}

/** True for a file that names a pipeline or extends one; anything else (unreadable text included) is not. */
export function isPipelineFile(file: string): boolean {
  try {
    const j: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return isPlainObject(j) && !('graph' in j) && ('pipeline' in j || 'extends' in j);
  } catch {
    return false;
  }
}

/** The settings of B that differ from A, as `path: A -> B` lines (the file path and graph paths excluded). */
export function configDiff(a: PipelineConfig, b: PipelineConfig): string[] {
  const flat = (v: unknown, path: string, out: Map<string, string>): Map<string, string> => {
    if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) flat(x, path ? `${path}.${k}` : k, out);
    else out.set(path, JSON.stringify(v));
    return out;
  };
  const skip = new Set(['file', 'env.step', 'env.reset', 'policy.act', 'loss']);
  const fa = flat(a, '', new Map());
  const fb = flat(b, '', new Map());
  // A section absent on one side (null) is reported through its fields, not as a line of its own.
  const section = (k: string, other: Map<string, string>) => [...other.keys()].some((x) => x.startsWith(`${k}.`));
  const keys = [...new Set([...fa.keys(), ...fb.keys()])].filter((k) => !skip.has(k) && !section(k, fa) && !section(k, fb)).sort();
  return keys.filter((k) => fa.get(k) !== fb.get(k)).map((k) => `${k}: ${fa.get(k) ?? '(none)'} -> ${fb.get(k) ?? '(none)'}`);
}

/** Every graph a pipeline runs, by role (`amppo.update`, `groupAdvantage`, ...). */
export function pipelineGraphsByRole(g: PipelineGraphs): Map<string, IRGraph> {
  const out = new Map<string, IRGraph>();
  for (const [k, v] of Object.entries(g)) {
    if (!v) continue;
    if ('nodes' in v) out.set(k, v as IRGraph);
    else for (const [k2, v2] of Object.entries(v as Record<string, IRGraph>)) out.set(`${k}.${k2}`, v2);
  }
  return out;
}

/**
 * The pipeline with its env swapped for the shipped env `name` (graphs/envs/<name>.{step,reset}), as
 * `loom train --env` and `loom compare --env` do; an unknown name is a usage error.
 */
export function withEnv(cfg: PipelineConfig, name: string): PipelineConfig {
  const step = join(GRAPHS_DIR, 'envs', `${name}.step.graph.json`);
  if (!existsSync(step)) throw new LoomError({ code: 'E_USAGE', message: `unknown env "${name}"`, expected: 'a name with graphs/envs/<name>.step.graph.json', found: name });
  return { ...cfg, env: { ...cfg.env, name, step, reset: join(GRAPHS_DIR, 'envs', `${name}.reset.graph.json`) } };
}
