/** Pipeline files: JSON Schema validation (with file + JSON pointer errors), defaults, graph loading. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { loadGraph, parseJsonText } from '../../compiler/frontend/load.ts';
import { assertValid, schemaValidator } from '../../compiler/frontend/schema.ts';
import { LoomError } from '../../compiler/errors.ts';
import type { IRGraph } from '../../compiler/ir.ts';

export interface PipelineConfig {
  file: string;
  pipeline: string;
  env: { name: string; step: string; reset: string; num_envs: number };
  policy: { act: string };
  loss: string;
  optimizer: { name: string; lr: number; anneal_lr: boolean; eps: number; beta1: number; beta2: number; args: Record<string, number> };
  rollout: { steps: number };
  advantage: { gamma: number; lambda: number };
  update: { epochs: number; minibatches: number; norm_adv: boolean; clip_coef: number; clip_vloss: boolean; ent_coef: number; vf_coef: number; max_grad_norm: number; target_kl: number | null };
  normalize: { obs: boolean; reward: boolean; clip: number };
  total_steps: number;
  seed: number;
  logging: { every: number };
  checkpoint: { every: number };
  eval: { episodes: number };
}

export interface PipelineGraphs {
  step: IRGraph;
  reset: IRGraph;
  act: IRGraph;
  loss: IRGraph;
  optimizer: IRGraph;
  gae: IRGraph;
  clip: IRGraph;
}

/** The library folder (graphs/) that ships with loom: optimizers and GAE live there. */
export const GRAPHS_DIR = join(dirname(new URL(import.meta.url).pathname), '..', '..', 'graphs');

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});

/** Validates and fills defaults. Graph paths become absolute (relative to the pipeline file). */
export function parsePipeline(json: unknown, file: string): PipelineConfig {
  assertValid(schemaValidator('pipeline.schema.json'), json, file, '', 'pipeline');
  const j = json as Json;
  const base = dirname(resolve(file));
  const env = obj(j.env);
  const opt = obj(j.optimizer);
  const upd = obj(j.update);
  const adv = obj(j.advantage);
  const norm = obj(j.normalize);
  const cfg: PipelineConfig = {
    file: resolve(file),
    pipeline: j.pipeline as string,
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
    },
    rollout: { steps: obj(j.rollout).steps as number },
    advantage: { gamma: (adv.gamma as number) ?? 0.99, lambda: (adv.lambda as number) ?? 0.95 },
    update: {
      epochs: (upd.epochs as number) ?? 4,
      minibatches: (upd.minibatches as number) ?? 4,
      norm_adv: (upd.norm_adv as boolean) ?? true,
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
  const batch = cfg.env.num_envs * cfg.rollout.steps;
  if (batch % cfg.update.minibatches !== 0)
    throw new LoomError({
      code: 'E_SCHEMA',
      message: 'num_envs * rollout.steps must be divisible by update.minibatches',
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
  return {
    step: load(cfg.env.step, '/env/step'),
    reset: load(cfg.env.reset, '/env/reset'),
    act: load(cfg.policy.act, '/policy/act'),
    loss: load(cfg.loss, '/loss'),
    optimizer: load(join(GRAPHS_DIR, 'optimizers', `${cfg.optimizer.name}.graph.json`), '/optimizer/name'),
    gae: loadGraph(join(GRAPHS_DIR, 'algorithms', 'gae.graph.json')),
    clip: loadGraph(join(GRAPHS_DIR, 'optimizers', 'clip-grad-norm.graph.json')),
  };
}
