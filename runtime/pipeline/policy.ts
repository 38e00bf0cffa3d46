/**
 * A trained policy, from a run folder or a checkpoint file: which pipeline trained it, its
 * evaluation (`loom eval`), and its act graph as a standalone graph file (`loom export`).
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LoomError } from '../../compiler/errors.ts';
import { loadGraph } from '../../compiler/frontend/load.ts';
import type { IRGraph, IRNode } from '../../compiler/ir.ts';
import { standaloneGraph, type ConstValues, type GraphDocument, type Prelude } from '../../compiler/standalone.ts';
import { readCheckpoint, savedValues, type CheckpointBody, type CheckpointSource } from './checkpoint.ts';
import { GYM_ENVS, HOST_GYM_ENVS, loadPipeline, parseOverride, withEnv, type PipelineConfig } from './config.ts';
import { BEST_DIR, Trainer } from './driver.ts';
import { readRunRecord, type RunRecord } from './run-record.ts';

export interface SavedPolicy {
  /** The checkpoint file. */
  file: string;
  body: CheckpointBody;
  cfg: PipelineConfig;
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** host.source, when the checkpoint records it; readCheckpoint has checked its shape against schemas/checkpoint.schema.json. */
function sourceOf(body: CheckpointBody): CheckpointSource | null {
  return (body.host.source as CheckpointSource | undefined) ?? null;
}

export interface OpenOptions {
  /** The pipeline file, instead of the one the checkpoint records. */
  pipeline?: string;
  /** Folders its graphs may be read from besides the defaults (`--allow-path`). */
  allow?: readonly string[];
}

/**
 * Opens `target`, a run folder (its checkpoint.json) or a checkpoint file. The pipeline is the one
 * the checkpoint records, configured as the run was: its `--set` overrides from the run's
 * run.json, its env (with the agent `--env` swapped in) and its seed. `opts.pipeline` names
 * another pipeline file instead, taken as it is.
 */
export function openPolicy(target: string, opts: OpenOptions = {}): SavedPolicy {
  const file = existsSync(target) && statSync(target).isDirectory() ? join(target, 'checkpoint.json') : target;
  const body = readCheckpoint(file, 'policy');
  const src = sourceOf(body);
  const recorded = opts.pipeline === undefined;
  const pipeline = opts.pipeline ?? src?.pipeline;
  if (pipeline === undefined)
    throw new LoomError({ code: 'E_INPUT', message: `checkpoint ${file} does not record the pipeline that trained it`, file, pointer: '/body/host/source', hint: 'give the pipeline file with --pipeline FILE' });
  if (recorded && !existsSync(pipeline))
    throw new LoomError({ code: 'E_IO', message: `the pipeline that trained ${file} is no longer at ${pipeline}`, file, hint: 'give the pipeline file with --pipeline FILE' });
  // Overrides are validated like the command line's; the folders a run was allowed are not taken
  // from its files (that would let a file widen what it may read): give them with --allow-path.
  const overrides = recorded ? (runRecordOf(file)?.overrides ?? []).map(parseOverride) : [];
  let cfg = loadPipeline(pipeline, { allow: opts.allow, overrides });
  if (src && recorded && src.env.name !== cfg.env.name)
    cfg = src.env.name in GYM_ENVS || src.env.name in HOST_GYM_ENVS ? withEnv(cfg, src.env.name) : { ...cfg, env: { ...cfg.env, ...src.env } };
  if (src) cfg = { ...cfg, seed: src.seed };
  return { file, body, cfg };
}

/** The run record of the run a checkpoint belongs to: beside it, or above it for best/. */
function runRecordOf(checkpoint: string): RunRecord | null {
  const dir = dirname(checkpoint);
  return readRunRecord(dir) ?? (basename(dir) === BEST_DIR ? readRunRecord(dirname(dir)) : null);
}

export interface EvalOptions {
  episodes: number;
  seed: number;
  deterministic: boolean;
}

/** Plays episodes with the saved policy, as the evaluation at the end of `loom train` does. */
export function evaluatePolicy(p: SavedPolicy, o: EvalOptions): number[] {
  const trainer = policyTrainer(p);
  try {
    return trainer.evaluate(o.episodes, o.seed, o.deterministic);
  } finally {
    trainer.dispose();
  }
}

/** `evaluatePolicy` on any backend, webgpu included (whose reads are asynchronous). */
export async function evaluatePolicyAsync(p: SavedPolicy, o: EvalOptions): Promise<number[]> {
  const trainer = policyTrainer(p);
  try {
    return await trainer.evaluateAsync(o.episodes, o.seed, o.deterministic);
  } finally {
    trainer.dispose();
  }
}

function policyTrainer(p: SavedPolicy): Trainer {
  // The trainer's own eval settings are not used here (its check of them would point at the pipeline).
  const trainer = new Trainer({ ...p.cfg, eval: { ...p.cfg.eval, episodes: 0 } });
  try {
    trainer.restore(p.body, p.file);
  } catch (e) {
    trainer.dispose();
    throw e;
  }
  return trainer;
}

/** The observation statistics of a checkpoint, checked against the observation size. */
function obsStat(p: SavedPolicy, dim: number): { mean: number[]; var: number[] } {
  const s = p.body.host.obsStat;
  const ok = (v: unknown): v is number[] => Array.isArray(v) && v.length === dim && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (isObj(s) && ok(s.mean) && ok(s.var) && s.var.every((x) => x >= 0)) return { mean: s.mean, var: s.var };
  throw new LoomError({
    code: 'E_INPUT',
    message: `checkpoint ${p.file} has no usable observation statistics, but its pipeline normalises observations`,
    file: p.file,
    pointer: '/body/host/obsStat',
    expected: `mean and var: ${dim} finite numbers each`,
    hint: 'export a checkpoint written by a run of this pipeline',
  });
}

/**
 * gym's NormalizeObservation as graph nodes, with the statistics frozen: clip((obs - mean) /
 * sqrt(var + 1e-8), -clip, clip), as the driver applies it during evaluation.
 */
export function obsNormalizer(stat: { mean: number[]; var: number[] }, clip: number): Prelude {
  const n = (id: string, op: string, inputs: string[], attrs: IRNode['attrs'] = {}): IRNode => ({ id: `obs_norm/${id}`, op, inputs, attrs });
  return {
    input: 'obs',
    nodes: [
      n('mean', 'const', [], { value: stat.mean }),
      n('std', 'const', [], { value: stat.var.map((v) => Math.sqrt(v + 1e-8)) }),
      n('centered', 'sub', ['obs', 'obs_norm/mean']),
      n('scaled', 'div', ['obs_norm/centered', 'obs_norm/std']),
      n('clipped', 'clip', ['obs_norm/scaled'], { min: -clip, max: clip }),
    ],
    value: 'obs_norm/clipped',
  };
}

/**
 * The act graph with the checkpoint's params baked in (and the observation normaliser, when the
 * pipeline normalises observations), so that raw env observations give the trained policy's outputs.
 */
export function exportPolicy(p: SavedPolicy): GraphDocument {
  const act = loadGraph(p.cfg.policy.act);
  const saved = p.body.tensors.params ?? {};
  const params: Record<string, ConstValues> = {};
  for (const [k, s] of Object.entries(saved)) params[k] = { shape: s.shape, values: savedValues(s) };
  const preludes: Prelude[] = [];
  if (p.cfg.normalize.obs) {
    if (p.cfg.normalize.per_env)
      throw new LoomError({
        code: 'E_INPUT',
        message: `checkpoint ${p.file} keeps observation statistics per env (normalize.per_env), so there is no single normaliser to bake into a standalone graph`,
        file: p.file,
        pointer: '/body/host/obsStat',
        hint: 'train with normalize.per_env false (one statistic over all envs) to export the policy; loom eval plays it as trained',
      });
    const dim = act.inputs.find((i) => i.name === 'obs')?.type.shape[1];
    if (typeof dim !== 'number')
      throw new LoomError({ code: 'E_INPUT', message: 'the act graph needs an input "obs" of shape [B, D] with a fixed D to bake in observation normalisation', file: act.file, pointer: '/inputs/obs' });
    preludes.push(obsNormalizer(obsStat(p, dim), p.cfg.normalize.clip));
  }
  return standalonePolicy(act, params, { pipeline: p.body.pipeline, iteration: p.body.iteration, globalStep: p.body.global_step, source: p.file, preludes });
}

/**
 * An act graph with trained params baked in (and preludes such as the observation normaliser):
 * the standalone policy graph `loom export` writes, for a pipeline's run or a program's.
 */
export function standalonePolicy(act: IRGraph, params: Readonly<Record<string, ConstValues>>, o: { pipeline: string; iteration: number; globalStep: number; source: string; preludes: Prelude[] }): GraphDocument {
  const it = o.iteration;
  return standaloneGraph(act, params, {
    name: `${act.name}-${o.pipeline}`.replace(/[^A-Za-z0-9_.-]/g, '_'),
    doc: `${act.name} with the params of pipeline ${o.pipeline} after ${it} iteration${it === 1 ? '' : 's'} (${o.globalStep} env steps) baked in as constants${o.preludes.length ? ', and its observation normalisation statistics frozen' : ''}. Inputs are raw env observations${'action_mode' in act.outputs ? '; action_mode is the deterministic action' : ''}.`,
    source: o.source,
    preludes: o.preludes,
  });
}
