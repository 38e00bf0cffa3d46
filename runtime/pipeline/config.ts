/** Pipeline files: JSON Schema validation (with file + JSON pointer errors), defaults, graph loading. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { displayPath, loadGraph, loadGraphJson, parseJsonText } from '../../compiler/frontend/load.ts';
import { assertAllowed, assertDocumentKind, readUntrusted, tryReadUntrusted } from '../../compiler/frontend/files.ts';
import { assertValid, schemaValidator, suggest } from '../../compiler/frontend/schema.ts';
import { isLoomError, LoomError, pointerToken } from '../../compiler/errors.ts';
import { showType, type IRGraph, type TensorType } from '../../compiler/ir.ts';
import { checkRoles, outputType } from './roles.ts';
import { checkPipelineSize } from './budget.ts';
import { packagePath } from '../../compiler/package-root.ts';
import { hostEnvDefinition, hostEnvIo, type HostEnvDefinition } from '../host-env/host-env.ts';

export interface PipelineConfig {
  file: string;
  pipeline: string;
  /** A label for reports (`ppo`, `grpo`, ...); the behaviour is in the other settings. */
  algorithm: string;
  /** Group rollouts (GRPO, Hybrid GRPO): actions sampled per visited state, each branch stepped from a copy of the env state. */
  group: GroupConfig | null;
  /** `host`: a registered host env, stepped from the host instead of the step/reset graphs (which are then ""). */
  env: { name: string; step: string; reset: string; num_envs: number; host?: string };
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
  update: { epochs: number; minibatches: number; norm_adv: boolean; clip_coef: number; clip_vloss: boolean; ent_coef: number; vf_coef: number; max_grad_norm: number; target_kl: number | null; kl_coef: number };
  /** `per_env`: one statistic per env (CleanRL's per-env wrappers) instead of one over all envs. */
  normalize: { obs: boolean; reward: boolean; clip: number; per_env: boolean };
  total_steps: number;
  seed: number;
  logging: { every: number; tensorboard: boolean };
  checkpoint: { every: number };
  /** `every`: iterations between evaluations during training (0: only the final one); `deterministic`: act with `action_mode`. */
  eval: { episodes: number; every: number; deterministic: boolean };
  /** The folders its graphs (and the graphs they call) may be read from; see pipelineRoots. */
  roots?: readonly string[];
}

/**
 * What a group advantage graph takes from the value function: `none` scores the branches from their
 * rewards alone (input `rewards`, output `adv`) and no value function is trained; `bootstrap` also takes
 * V(s), V of each branch's last state and `done` (inputs `R, V_s, V_next, done`) and gives the value
 * target `y` and the value-based choice `select` besides `adv`.
 */
export type GroupValue = 'none' | 'bootstrap';

export interface GroupConfig {
  size: number;
  horizon: number;
  select: 'uniform' | 'argmax';
  /** The graph that scores each group's branches. */
  advantage: string;
  value: GroupValue;
  hp: Record<string, number>;
}

/** AM-PPO advantage modulation (spec am-ppo §2): controller hyperparameters and initial state. */
export interface AmppoTransform {
  kind: 'amppo';
  /** Values for the `hp_<name>` const nodes of graphs/algorithms/amppo/{update,modulate}. */
  hp: Record<string, number>;
  alpha_init: number;
  s_init: number;
  /** The value target: A_mod + V_old (the spec, "modulated") or the GAE return A_raw + V_old ("gae", an ablation). */
  value_target: 'modulated' | 'gae';
}
export type AdvantageTransform = AmppoTransform;

/** The AM-PPO hyperparameters a pipeline may set; each is an `hp_<name>` node of the amppo graphs. */
export const AMPPO_HP = ['tau', 'p_star', 'kappa', 'eta', 'rho', 'rho_sat', 'eps', 'v_shift'] as const;

export interface PipelineGraphs {
  /** Absent for a host env (env.host). */
  step?: IRGraph;
  reset?: IRGraph;
  act: IRGraph;
  loss: IRGraph;
  optimizer: IRGraph;
  gae: IRGraph;
  clip: IRGraph;
  /** Present for a group rollout: the graph group.advantage names. */
  groupAdvantage?: IRGraph;
  /** Present when advantage.transform is amppo. */
  amppo?: { update: IRGraph; modulate: IRGraph };
}

/** The library folder (graphs/) that ships with loom: optimizers and GAE live there. */
export const GRAPHS_DIR = packagePath('graphs');

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});

/**
 * The folders a pipeline file may reference (through `extends`, graph paths, and the `call`s of
 * those graphs): the working directory, the pipeline's own folder, the shipped library, and the
 * `--allow-path` folders.
 */
export function pipelineRoots(file: string, allow: readonly string[] = []): string[] {
  return [process.cwd(), dirname(resolve(file)), GRAPHS_DIR, ...allow];
}

export interface PipelineOptions {
  /** Folders given with --allow-path. */
  allow?: readonly string[];
  /** `--set PATH=VALUE` overrides, applied after `extends`. */
  overrides?: readonly Override[];
}

/** A pipeline document names a pipeline or extends one. */
const PIPELINE_KEYS = ['pipeline', 'extends'];

/** The graph-path fields of a pipeline file, as JSON pointers; each resolves relative to the file that sets it. */
const PATH_FIELDS = [['env', 'step'], ['env', 'reset'], ['policy', 'act'], ['loss'], ['group', 'advantage']] as const;

/**
 * Pipeline files written before the group options existed chose their group rollout by the name in
 * `algorithm` alone. For such a file (one of these names and no group.advantage) the options that
 * name stood for are filled in, its own settings winning, except vf_coef: those rollouts trained no
 * value function whatever the file said. Recorded run configurations are read the same way. New
 * group algorithms declare the options and need no entry here.
 */
const LEGACY_GROUP_ALGORITHMS: Readonly<Record<string, { group: Json; update: Json; forced: Json }>> = {
  grpo: { group: { advantage: join(GRAPHS_DIR, 'algorithms', 'grpo', 'advantage.graph.json'), value: 'none' }, update: { norm_adv: false }, forced: { vf_coef: 0 } },
  'hybrid-grpo': { group: { advantage: join(GRAPHS_DIR, 'algorithms', 'hybrid-grpo', 'advantage.graph.json'), value: 'bootstrap' }, update: {}, forced: {} },
};

/** The document (or recorded configuration) with the options its legacy group algorithm name stood for; anything else as it is. */
export function withLegacyGroup(json: unknown): unknown {
  if (!isPlainObject(json) || typeof json.algorithm !== 'string' || !Object.hasOwn(LEGACY_GROUP_ALGORITHMS, json.algorithm)) return json;
  const [group, update] = [json.group ?? {}, json.update ?? {}];
  // A malformed section is left for the schema to report.
  if (!isPlainObject(group) || !isPlainObject(update) || group.advantage !== undefined) return json;
  const legacy = LEGACY_GROUP_ALGORITHMS[json.algorithm]!;
  return { ...json, group: { ...legacy.group, ...group }, update: { ...legacy.update, ...update, ...legacy.forced } };
}

/** Objects merge key by key; anything else in `over` replaces `base`. */
function mergeJson(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeJson(base[k], v) : v;
  return out;
}
const isPlainObject = (v: unknown): v is Json => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * What the code shared by pipeline files and program pipeline files (`extends`, `--set`) needs to
 * know of a kind of document: its name, the keys that mark it, its schema and its graph paths.
 */
export interface DocumentKind {
  what: string;
  markers: readonly string[];
  schema: string;
  /** Graph-path fields: each resolves relative to the file that sets it. */
  pathFields: readonly (readonly string[])[];
  /** Settable paths to quote in the error for an unknown --set path. */
  examples: string;
}

const PIPELINE_KIND: DocumentKind = { what: 'pipeline', markers: PIPELINE_KEYS, schema: 'pipeline.schema.json', pathFields: PATH_FIELDS, examples: 'optimizer.lr, update.epochs, env.num_envs' };

/**
 * Resolves `extends` chains: the base file is loaded (recursively), its graph paths made absolute
 * against its own folder, and this file's keys merged over it. Errors name the file and pointer
 * that introduced them.
 */
export function resolveExtends(json: unknown, file: string, roots: readonly string[], kind: DocumentKind = PIPELINE_KIND, chain: string[] = []): unknown {
  if (!isPlainObject(json) || json.extends === undefined) return json;
  const fail = (message: string, found?: string): never => {
    throw new LoomError({ code: 'E_SCHEMA', message, file: resolve(file), pointer: '/extends', ...(found !== undefined ? { found } : {}) });
  };
  if (typeof json.extends !== 'string' || json.extends === '') return fail(`extends must be a non-empty path to a ${kind.what} file`);
  const baseFile = resolve(dirname(resolve(file)), json.extends);
  if (chain.includes(baseFile) || baseFile === resolve(file)) return fail(`extends forms a cycle: ${[...chain, resolve(file), baseFile].join(' -> ')}`, json.extends);
  assertAllowed(baseFile, roots, { what: `base ${kind.what}`, written: json.extends, file: resolve(file), pointer: '/extends' });
  const baseText = tryReadUntrusted(baseFile, { what: `base ${kind.what}` });
  if (baseText === undefined) return fail(`base ${kind.what} ${baseFile} does not exist`, json.extends);
  const baseJson = parseJsonText(baseText, baseFile);
  assertDocumentKind(baseJson, baseFile, kind.what, kind.markers);
  const base = resolveExtends(baseJson, baseFile, roots, kind, [...chain, resolve(file)]);
  if (!isPlainObject(base)) return fail(`base ${kind.what} ${baseFile} is not a JSON object`, json.extends);
  const absolute = structuredClone(base);
  for (const path of kind.pathFields) {
    let parent: unknown = absolute;
    for (const k of path.slice(0, -1)) parent = isPlainObject(parent) ? parent[k] : undefined;
    const leaf = path[path.length - 1]!;
    if (isPlainObject(parent) && typeof parent[leaf] === 'string') parent[leaf] = resolve(dirname(baseFile), parent[leaf] as string);
  }
  const { extends: _, ...own } = json;
  return mergeJson(absolute, own);
}

/**
 * Validates and fills defaults. Graph paths become absolute (relative to the pipeline file).
 * `opts.overrides` (`--set`) apply to the JSON after `extends` is resolved and before it is validated.
 */
export function parsePipeline(json: unknown, file: string, opts: PipelineOptions = {}): PipelineConfig {
  const roots = pipelineRoots(file, opts.allow);
  assertDocumentKind(json, file, 'pipeline', PIPELINE_KEYS);
  const applied = applyOverrides(resolveExtends(json, file, roots), opts.overrides ?? []);
  try {
    return configFrom(withLegacyGroup(applied.json), file, roots);
  } catch (e) {
    throw blameOverride(e, applied.blame);
  }
}

function groupFail(cfg: PipelineConfig, message: string, pointer: string, expected: string, found: string, hint: string): never {
  throw new LoomError({ code: 'E_SCHEMA', message, file: cfg.file, pointer, expected, found, hint });
}

function configFrom(json: unknown, file: string, roots: readonly string[]): PipelineConfig {
  assertValid(schemaValidator('pipeline.schema.json'), json, file, '', 'pipeline');
  const j = json as Json;
  const base = dirname(resolve(file));
  const env = obj(j.env);
  const [given, absent] = [['step', 'reset'].filter((k) => env[k] !== undefined), ['step', 'reset'].filter((k) => env[k] === undefined)];
  if (typeof env.host === 'string' ? given.length > 0 : absent.length > 0)
    throw new LoomError({
      code: 'E_SCHEMA',
      message: typeof env.host === 'string' ? 'env.host names a host env and env.step/env.reset name graphs: give one or the other' : 'env needs step and reset (graph files), or host (a host env)',
      file: resolve(file),
      pointer: `/env/${typeof env.host === 'string' ? given[0] : absent[0]}`,
    });
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
        value_target: (trj.value_target as AmppoTransform['value_target']) ?? 'modulated',
      }
    : null;
  const grp = obj(j.group);
  const value = (grp.value as GroupValue) ?? 'none';
  const cfg: PipelineConfig = {
    file: resolve(file),
    pipeline: j.pipeline as string,
    algorithm: (j.algorithm as string) ?? 'ppo',
    group:
      j.group === undefined
        ? null
        : {
            size: (grp.size as number) ?? 8,
            horizon: (grp.horizon as number) ?? 1,
            // Spec B.3: the executed branch is uniform unless value-based selection (B.4.4) is asked for.
            select: (grp.select as 'uniform' | 'argmax') ?? 'uniform',
            advantage: typeof grp.advantage === 'string' ? resolve(base, grp.advantage) : '',
            value,
            // A bootstrapping graph discounts V after `horizon` steps: gamma^horizon unless group.hp says otherwise.
            hp:
              value === 'bootstrap'
                ? { gamma: ((adv.gamma as number) ?? 0.99) ** ((grp.horizon as number) ?? 1), ...((grp.hp as Record<string, number>) ?? {}) }
                : ((grp.hp as Record<string, number>) ?? {}),
          },
    env:
      typeof env.host === 'string'
        ? { name: (env.name as string) ?? env.host, step: '', reset: '', num_envs: env.num_envs as number, host: env.host }
        : { name: (env.name as string) ?? (j.pipeline as string), step: resolve(base, env.step as string), reset: resolve(base, env.reset as string), num_envs: env.num_envs as number },
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
      // Pipelines whose advantages are z-scored per group already (GRPO) set it false.
      norm_adv: (upd.norm_adv as boolean) ?? true,
      clip_coef: (upd.clip_coef as number) ?? 0.2,
      clip_vloss: (upd.clip_vloss as boolean) ?? true,
      ent_coef: (upd.ent_coef as number) ?? 0.01,
      vf_coef: (upd.vf_coef as number) ?? 0.5,
      max_grad_norm: (upd.max_grad_norm as number) ?? 0.5,
      target_kl: (upd.target_kl as number | null) ?? null,
      kl_coef: (upd.kl_coef as number) ?? 0,
    },
    normalize: { obs: (norm.obs as boolean) ?? false, reward: (norm.reward as boolean) ?? false, clip: (norm.clip as number) ?? 10, per_env: (norm.per_env as boolean) ?? false },
    total_steps: j.total_steps as number,
    seed: (j.seed as number) ?? 1,
    logging: { every: (obj(j.logging).every as number) ?? 1, tensorboard: (obj(j.logging).tensorboard as boolean) ?? true },
    checkpoint: { every: (obj(j.checkpoint).every as number) ?? 10 },
    eval: { episodes: (obj(j.eval).episodes as number) ?? 10, every: (obj(j.eval).every as number) ?? 0, deterministic: (obj(j.eval).deterministic as boolean) ?? true },
    roots,
  };
  const fail = (message: string, pointer: string): never => {
    throw new LoomError({ code: 'E_SCHEMA', message, file: cfg.file, pointer });
  };
  if (cfg.env.host !== undefined) {
    hostEnvDefinition(cfg.env.host, cfg.file);
    if (cfg.group) fail('a group rollout steps copies of the env state, which a host env does not give; use a graph env', '/env/host');
  }
  if (cfg.group && !cfg.group.advantage)
    throw new LoomError({
      code: 'E_SCHEMA',
      message: 'group needs advantage: the graph that scores the branches of each group',
      file: cfg.file,
      pointer: '/group',
      expected: 'group.advantage, a graph path, with group.value saying what it takes',
      hint: 'e.g. "advantage": "graphs/algorithms/grpo/advantage.graph.json" (value "none"), or graphs/algorithms/hybrid-grpo/advantage.graph.json (value "bootstrap")',
    });
  // Inherited paths are absolute by now; they are checked here, at the pointer that set them in this file's view.
  for (const path of PATH_FIELDS) {
    if (cfg.env.host !== undefined && path[0] === 'env') continue;
    if (path[0] === 'group' && !cfg.group) continue;
    const written = path.reduce<unknown>((v, k) => obj(v)[k], j) as string;
    const target = path.reduce<unknown>((v, k) => obj(v)[k], cfg) as string;
    assertAllowed(target, roots, { what: 'graph path', written, file: cfg.file, pointer: `/${path.join('/')}` });
  }
  if (cfg.group && cfg.advantage.transform) fail('advantage.transform applies to GAE advantages only, not to a group rollout', '/advantage/transform');
  if (cfg.group?.value === 'none') {
    const why = 'group.value "none": the advantage graph uses no value function';
    if (cfg.group.select === 'argmax') groupFail(cfg, `${why}, so it gives no value-based choice of branch to execute`, '/group/select', 'uniform', '"argmax"', 'use "select": "uniform", or a bootstrapping advantage graph with "value": "bootstrap"');
    if (cfg.update.vf_coef !== 0) groupFail(cfg, `${why} and gives it no targets, so the value loss has nothing to train`, '/update/vf_coef', '0', String(cfg.update.vf_coef), 'set "update": {"vf_coef": 0}, or use a bootstrapping advantage graph with "value": "bootstrap"');
  }
  // Group rollouts normalise the tiled branch observations, which have no env of their own.
  if (cfg.group && cfg.normalize.per_env) fail('normalize.per_env does not apply to a group rollout, which keeps one statistic over all envs', '/normalize/per_env');
  checkPipelineSize(cfg);
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
  // The loss normalises advantages with a Bessel std, 0/0 over a single row: every update would be NaN.
  if (cfg.update.norm_adv && batch / cfg.update.minibatches < 2)
    throw new LoomError({
      code: 'E_SCHEMA',
      message: `update.minibatches ${cfg.update.minibatches} cuts the batch of ${batch} rows into minibatches of one row; advantage normalisation over one row divides by a zero std, so the loss would be NaN`,
      file: cfg.file,
      pointer: '/update/minibatches',
      expected: `at most ${Math.floor(batch / 2)} (minibatches of 2 rows or more)`,
      found: `${cfg.update.minibatches} (minibatches of 1 row)`,
      hint: 'lower update.minibatches, raise env.num_envs or rollout.steps, or set update.norm_adv false',
    });
  return cfg;
}

export function loadPipeline(file: string, opts: PipelineOptions = {}): PipelineConfig {
  return parsePipeline(parseJsonText(readUntrusted(file, { what: 'pipeline' }), file), file, opts);
}

/** One `--set PATH=VALUE`: a dotted pipeline path and its value. */
export interface Override {
  path: string[];
  value: unknown;
  /** As written on the command line, for messages and run records. */
  text: string;
}

/** Keys that would reach an object's prototype rather than a pipeline field. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Parses `PATH=VALUE`. The value is JSON when it parses as JSON (numbers, true/false, null, arrays,
 * objects, quoted strings) and the plain text otherwise, so `optimizer.name=adam` needs no quotes.
 */
export function parseOverride(text: string): Override {
  const fail = (message: string, hint: string): never => {
    throw new LoomError({ code: 'E_USAGE', message: `--set ${text}: ${message}`, expected: 'PATH=VALUE with PATH a dotted pipeline path, e.g. --set optimizer.lr=1e-3', found: text, hint });
  };
  const eq = text.indexOf('=');
  if (eq <= 0) fail('no PATH=VALUE', 'write the pipeline path, "=", then the value');
  const path = text.slice(0, eq).split('.');
  if (path.some((k) => k === '')) fail('the path has an empty key', 'keys are separated by single dots: update.epochs');
  let value: unknown = text.slice(eq + 1);
  try {
    value = JSON.parse(value as string);
  } catch {
    // Not JSON: the text itself.
  }
  const bad = [...path, ...objectKeys(value)].find((k) => FORBIDDEN_KEYS.has(k));
  if (bad !== undefined) fail(`"${bad}" is not allowed as a key`, 'pipeline paths name pipeline fields only');
  return { path, value, text };
}

/** Every key of every object nested in a JSON value. */
function objectKeys(v: unknown): string[] {
  if (Array.isArray(v)) return v.flatMap(objectKeys);
  if (!isPlainObject(v)) return [];
  return Object.entries(v).flatMap(([k, x]) => [k, ...objectKeys(x)]);
}

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
}

/** Every settable dotted path of the pipeline schema (map entries such as optimizer.hp.NAME excluded). */
function schemaPaths(s: SchemaNode, prefix = ''): string[] {
  return Object.entries(s.properties ?? {})
    .filter(([k]) => !(prefix === '' && (k === 'extends' || k === '$schema')))
    .flatMap(([k, sub]) => [prefix + k, ...schemaPaths(sub, `${prefix}${k}.`)]);
}

/** Rejects a path the schema does not have, suggesting the nearest one that it has. */
function checkOverridePath(o: Override, kind: DocumentKind): void {
  const root = schemaValidator(kind.schema).schema as SchemaNode;
  let s: SchemaNode | undefined = root;
  for (const [i, k] of o.path.entries()) {
    const map: SchemaNode['additionalProperties'] = s?.additionalProperties;
    s = i === 0 && (k === 'extends' || k === '$schema') ? undefined : (s?.properties?.[k] ?? (isPlainObject(map) ? (map as SchemaNode) : undefined));
    if (s) continue;
    const given = o.path.join('.');
    const paths = schemaPaths(root);
    const last = o.path[o.path.length - 1]!;
    // A field named in full but without its section (`lr`) is a better guess than a near spelling.
    const near = paths.filter((p) => p.endsWith(`.${last}`)).join('" or "') || suggest(given, paths);
    const known = o.path.slice(0, i).join('.');
    throw new LoomError({
      code: 'E_USAGE',
      message: `--set ${o.text}: the ${kind.what} has no field "${given}"${i > 0 ? ` ("${known}" has no "${k}")` : ''}`,
      expected: `a field of schemas/${kind.schema}, e.g. ${kind.examples}`,
      found: given,
      ...(near ? { hint: `did you mean "${near}"?` } : {}),
    });
  }
}

/**
 * The resolved pipeline JSON with every override applied, in order. A graph path set on the command
 * line is relative to the working folder. `blame` says which override wrote which pointer (and which
 * objects it had to create), so that validation errors there name it.
 */
export function applyOverrides(json: unknown, overrides: readonly Override[], kind: DocumentKind = PIPELINE_KIND): { json: unknown; blame: { pointer: string; created: string[]; override: Override }[] } {
  if (!overrides.length || !isPlainObject(json)) return { json, blame: [] };
  const out = structuredClone(json);
  const blame = overrides.map((o) => {
    checkOverridePath(o, kind);
    const created: string[] = [];
    let cur = out;
    let pointer = '';
    for (const k of o.path.slice(0, -1)) {
      pointer += '/' + pointerToken(k);
      if (!isPlainObject(cur[k])) {
        cur[k] = {};
        created.push(pointer);
      }
      cur = cur[k] as Json;
    }
    const leaf = o.path[o.path.length - 1]!;
    const isGraphPath = kind.pathFields.some((p) => p.join('.') === o.path.join('.'));
    cur[leaf] = isGraphPath && typeof o.value === 'string' && o.value !== '' ? resolve(o.value) : structuredClone(o.value);
    return { pointer: pointer + '/' + pointerToken(leaf), created, override: o };
  });
  return { json: out, blame };
}

/** A validation error at a pointer an override wrote (or created) names that override. */
export function blameOverride(e: unknown, blame: ReturnType<typeof applyOverrides>['blame']): unknown {
  if (!isLoomError(e) || e.info.pointer === undefined) return e;
  const ptr = e.info.pointer;
  // The last override wins a path, so it is the one to blame.
  const b = [...blame].reverse().find((x) => ptr === x.pointer || ptr.startsWith(x.pointer + '/') || x.created.includes(ptr));
  if (!b) return e;
  return new LoomError({ ...e.info, message: `--set ${b.override.text}: ${e.info.message}`, hint: e.info.hint ?? `the value comes from --set ${b.override.text}` });
}

/**
 * Loads every graph a pipeline names and checks each against its role's contract; a missing file
 * or a graph that does not fit its role is reported at the pipeline's pointer.
 */
export function loadPipelineGraphs(cfg: PipelineConfig): PipelineGraphs {
  const roots = cfg.roots ?? pipelineRoots(cfg.file);
  const load = (path: string, pointer: string): IRGraph => {
    if (!existsSync(path)) throw new LoomError({ code: 'E_IO', message: `graph file ${path} does not exist`, file: cfg.file, pointer });
    return loadGraph(path, { roots });
  };
  const patched = (path: string, hp: Record<string, number>, pointer: string, required: boolean, pathPointer = pointer): IRGraph => {
    if (!existsSync(path)) throw new LoomError({ code: 'E_IO', message: `graph file ${path} does not exist`, file: cfg.file, pointer: pathPointer });
    return loadGraphJson(patchHp(parseJsonText(readUntrusted(path, { what: 'graph file' }), path), hp, required, cfg.file, pointer), path, { roots });
  };
  const tr = cfg.advantage.transform;
  const amppoDir = join(GRAPHS_DIR, 'algorithms', 'amppo');
  // A group graph that lacks an hp node it is given (gamma, defaulted for group.value bootstrap) may be
  // the wrong graph for group.value: the role check says so first, as that explains the missing node.
  let hpError: unknown = null;
  const group = (g: NonNullable<PipelineConfig['group']>): IRGraph => {
    try {
      return patched(g.advantage, g.hp, '/group/hp', true, '/group/advantage');
    } catch (e) {
      if (!isLoomError(e) || e.info.pointer !== '/group/hp') throw e;
      hpError = e;
      return load(g.advantage, '/group/advantage');
    }
  };
  const graphs: PipelineGraphs = {
    ...(cfg.group ? { groupAdvantage: group(cfg.group) } : {}),
    ...(tr
      ? {
          amppo: {
            update: patched(join(amppoDir, 'update.graph.json'), tr.hp, '/advantage/transform', true),
            // modulate has only the gate's constants (kappa, eps, v_shift); they must match update's.
            modulate: patched(join(amppoDir, 'modulate.graph.json'), tr.hp, '/advantage/transform', false),
          },
        }
      : {}),
    ...(cfg.env.host === undefined ? { step: load(cfg.env.step, '/env/step'), reset: load(cfg.env.reset, '/env/reset') } : {}),
    act: load(cfg.policy.act, '/policy/act'),
    loss: load(cfg.loss, '/loss'),
    optimizer: patched(join(GRAPHS_DIR, 'optimizers', `${cfg.optimizer.name}.graph.json`), cfg.optimizer.hp, '/optimizer/name', true),
    gae: loadGraph(join(GRAPHS_DIR, 'algorithms', 'gae.graph.json'), { roots }),
    clip: loadGraph(join(GRAPHS_DIR, 'optimizers', 'clip-grad-norm.graph.json'), { roots }),
  };
  checkRoles(cfg, graphs);
  if (hpError) throw hpError;
  const klInputs = ['logp_ref', 'kl_coef'].filter((k) => !graphs.loss.inputs.some((i) => i.name === k));
  if (cfg.update.kl_coef > 0 && klInputs.length)
    throw new LoomError({
      code: 'E_SCHEMA',
      message: `update.kl_coef ${cfg.update.kl_coef} needs a loss graph with a KL penalty; ${displayPath(cfg.loss)} has no input ${klInputs.map((k) => `"${k}"`).join(' or ')}`,
      file: cfg.file,
      pointer: '/update/kl_coef',
      expected: 'a loss graph with inputs logp_ref and kl_coef, e.g. graphs/algorithms/grpo-kl-cartpole.loss.graph.json',
      hint: 'set loss to such a graph, or update.kl_coef to 0',
    });
  checkPipelineSize(cfg, graphs);
  return graphs;
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

/**
 * The top-level object of a document file, read and parsed as the loaders read it (so a byte-order
 * mark or an endless file is treated the same way by every command); null for anything else,
 * unreadable text included, which loading the file then reports.
 */
export function documentObject(file: string): Record<string, unknown> | null {
  try {
    const j = parseJsonText(readUntrusted(file, { what: 'pipeline' }), file);
    return isPlainObject(j) ? j : null;
  } catch (e) {
    if (e instanceof LoomError) return null;
    throw e;
  }
}

/** True for a file that names a pipeline or extends one; anything else is not, and loading it as a graph reports why. */
export function isPipelineFile(file: string): boolean {
  const j = documentObject(file);
  return j !== null && !('graph' in j) && PIPELINE_KEYS.some((k) => k in j);
}

/**
 * Settings that resolved configurations gained after runs were recorded, each with the value that
 * gives the behaviour from before it existed. A record without one of them ran with that value, so
 * `--resume` and `loom compare`'s reuse of finished runs do not count it as a difference.
 */
export const SETTINGS_ADDED_LATER: Readonly<Record<string, unknown>> = {
  'normalize.per_env': false,
  'update.kl_coef': 0,
  'advantage.transform.value_target': 'modulated',
};

/**
 * The settings of B that differ from A, as `path: A -> B` lines (the file path and graph paths
 * excluded). Program pipeline configurations (runtime/program) are compared the same way.
 */
export function configDiff(a: object, b: object): string[] {
  const flat = (v: unknown, path: string, out: Map<string, string>): Map<string, string> => {
    if (isPlainObject(v)) for (const [k, x] of Object.entries(v)) flat(x, path ? `${path}.${k}` : k, out);
    else out.set(path, JSON.stringify(v));
    return out;
  };
  const skip = new Set(['file', 'roots', 'env.step', 'env.reset', 'policy.act', 'loss', 'group.advantage']);
  // A record from before the group options is read as its file is now.
  const fa = flat(withLegacyGroup(a), '', new Map());
  const fb = flat(withLegacyGroup(b), '', new Map());
  for (const [k, v] of Object.entries(SETTINGS_ADDED_LATER)) {
    // Only within a section both sides have (an AM-PPO setting means nothing to a PPO record).
    const parent = k.slice(0, k.lastIndexOf('.'));
    const has = (m: Map<string, string>) => [...m.keys()].some((x) => x.startsWith(`${parent}.`));
    if (has(fa) && has(fb)) for (const m of [fa, fb]) if (!m.has(k)) m.set(k, JSON.stringify(v));
  }
  // A section absent on one side (null) is reported through its fields, not as a line of its own.
  const section = (k: string, other: Map<string, string>) => [...other.keys()].some((x) => x.startsWith(`${k}.`));
  // A program's policy (runtime/program) names what `loom export` writes; it does not change how a run trains.
  const exportOnly = (k: string) => k.startsWith('policy.params.') || k.startsWith('policy.obs_norm.');
  const keys = [...new Set([...fa.keys(), ...fb.keys()])].filter((k) => !skip.has(k) && !exportOnly(k) && !section(k, fa) && !section(k, fb)).sort();
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

/** The shipped envs (graphs/envs/<name>.{step,reset}.graph.json) by their Gymnasium ids. */
export const GYM_ENVS: Readonly<Record<string, string>> = {
  'CartPole-v1': 'cartpole',
  'Acrobot-v1': 'acrobot',
  'Pendulum-v1': 'pendulum',
  'MountainCarContinuous-v0': 'mountaincar_continuous',
};

/** The built-in host envs (env.host) by their Gymnasium ids, with the name of their shipped agent. */
export const HOST_GYM_ENVS: Readonly<Record<string, string>> = {
  'HalfCheetah-v4': 'halfcheetah',
  'Hopper-v4': 'hopper',
};

/** The shipped PPO agent (act and loss graphs) for a shipped env. */
const shippedAgent = (env: string) => ({
  act: join(GRAPHS_DIR, 'algorithms', `ppo-${env}.act.graph.json`),
  loss: join(GRAPHS_DIR, 'algorithms', `ppo-${env}.loss.graph.json`),
});

/** What an env gives and takes, or what an act graph takes and gives: the obs width and the action type. */
interface AgentIo {
  obs: number | string;
  action: TensorType;
}

function envIo(step: IRGraph, reset: IRGraph): AgentIo {
  return { obs: outputType(reset, 'obs').shape[1] ?? '?', action: step.inputs.find((i) => i.name === 'action')?.type ?? { dtype: 'float32', shape: [] } };
}

function hostIo(def: HostEnvDefinition): AgentIo {
  const io = hostEnvIo(def);
  return { obs: io.obs, action: { dtype: io.action.dtype, shape: ['N', ...io.action.dims] } };
}

function actIo(act: IRGraph): AgentIo | null {
  const obs = act.inputs.find((i) => i.name === 'obs');
  if (!obs || !Object.hasOwn(act.outputs, 'action')) return null;
  return { obs: obs.type.shape[1] ?? '?', action: outputType(act, 'action') };
}

/** Same obs width, action dtype and action dims beyond the batch (a symbolic dim fits anything). */
function fits(agent: AgentIo, env: AgentIo): boolean {
  const dimOk = (a: number | string, b: number | string) => typeof a !== 'number' || typeof b !== 'number' || a === b;
  const [a, b] = [agent.action.shape.slice(1), env.action.shape.slice(1)];
  return dimOk(agent.obs, env.obs) && agent.action.dtype === env.action.dtype && a.length === b.length && a.every((d, k) => dimOk(d, b[k]!));
}

const describeIo = (io: AgentIo) => `obs of width ${io.obs}, actions ${showType({ ...io.action, shape: ['N', ...io.action.shape.slice(1)] })}`;

/** Env steps simulated per visited state: a group pipeline steps every branch (G · horizon), others 1. */
export function stepsPerVisitedState(cfg: Pick<PipelineConfig, 'group'>): number {
  return cfg.group ? cfg.group.size * cfg.group.horizon : 1;
}

/**
 * The pipeline with its env swapped for a shipped env, named by its Gymnasium id (`CartPole-v1`,
 * `HalfCheetah-v4`) or its file name (`cartpole`, `halfcheetah`), as `loom train --env` and
 * `loom compare --env` do. When the
 * pipeline's act graph does not fit the env's obs width or action type, a shipped agent
 * (`ppo-<env>.act/.loss`) is swapped for the shipped agent of the new env, with a line to `log`;
 * an agent of the pipeline's own is an error that says which fields to set. An unknown env is a
 * usage error.
 */
export function withEnv(cfg: PipelineConfig, name: string, log?: (line: string) => void): PipelineConfig {
  const envs = { ...GYM_ENVS, ...HOST_GYM_ENVS };
  const byFile = Object.entries(envs).find(([, f]) => f === name);
  const id = name in envs ? name : byFile?.[0];
  if (id === undefined) {
    const names = [...Object.keys(envs), ...Object.values(envs)];
    const near = suggest(name, names);
    throw new LoomError({ code: 'E_USAGE', message: `unknown env "${name}"`, expected: `one of ${Object.keys(envs).join(', ')} (or ${Object.values(envs).join(', ')})`, found: name, ...(near ? { hint: `did you mean "${near}"?` } : {}) });
  }
  const envName = envs[id]!;
  const host = id in HOST_GYM_ENVS;
  if (host && cfg.group) throw new LoomError({ code: 'E_USAGE', message: `--env ${id}: a group rollout steps copies of the env state, which a host env does not give`, file: cfg.file, pointer: '/group', hint: 'use a graph env, or a pipeline without a group' });
  const step = host ? '' : join(GRAPHS_DIR, 'envs', `${envName}.step.graph.json`);
  const reset = host ? '' : join(GRAPHS_DIR, 'envs', `${envName}.reset.graph.json`);
  const out: PipelineConfig = { ...cfg, env: { name: id, step, reset, num_envs: cfg.env.num_envs, ...(host ? { host: id } : {}) }, policy: { ...cfg.policy } };
  const env = host ? hostIo(hostEnvDefinition(id)) : envIo(loadGraph(step), loadGraph(reset));
  const agent = existsSync(cfg.policy.act) ? actIo(loadGraph(cfg.policy.act, { roots: cfg.roots ?? pipelineRoots(cfg.file) })) : null;
  // No act graph to read (missing, or not an act graph): the role checks at load say what is wrong.
  if (!agent || fits(agent, env)) return out;
  const wanted = shippedAgent(envName);
  const shipped = Object.values(envs).map(shippedAgent);
  const ownAct = !shipped.some((a) => a.act === cfg.policy.act);
  const ownLoss = !shipped.some((a) => a.loss === cfg.loss);
  if (ownAct || ownLoss)
    throw new LoomError({
      code: 'E_SHAPE',
      message: `--env ${id}: the agent does not fit the env: ${id} gives ${describeIo(env)}; the act graph ${displayPath(cfg.policy.act)} takes ${describeIo(agent)}`,
      file: cfg.file,
      pointer: ownAct ? '/policy/act' : '/loss',
      expected: describeIo(env),
      found: describeIo(agent),
      hint: `set policy.act and loss to an agent for ${id}, e.g. --set policy.act=${displayPath(wanted.act)} --set loss=${displayPath(wanted.loss)}`,
    });
  log?.(`--env ${id}: the act graph takes ${describeIo(agent)}, ${id} gives ${describeIo(env)}; using the shipped agent ${displayPath(wanted.act)} and ${displayPath(wanted.loss)}\n`);
  return { ...out, policy: { act: wanted.act }, loss: wanted.loss };
}
