/**
 * What a pipeline allocates, computed from its config (and its graphs, once loaded) before anything
 * is allocated: the rollout batch, the env state and the params with their optimizer state. Sizes
 * beyond the budget are E_SIZE errors at the field to lower, instead of V8 running out of memory.
 */
import { MAX_ELEMENTS, isStatic, type Dim } from '../../compiler/dims.ts';
import { minElements } from '../../compiler/frontend/infer.ts';
import { LoomError } from '../../compiler/errors.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import type { PipelineConfig, PipelineGraphs } from './config.ts';

/**
 * Bytes a training run may allocate for its state and one iteration's batch. The library's
 * pipelines need a few megabytes; 4 GiB is what one machine can be expected to hold beside the
 * runtime, and about where host typed arrays stop.
 */
export const MAX_PIPELINE_BYTES = 4 * 2 ** 30;

/** Columns of the batch besides observation and action: logp, value, reward, done, advantage, return. */
const SCALAR_COLUMNS = 6;

interface Widths {
  obs: number;
  action: number;
  state: number;
  params: number;
  /** Param-sized tensors: the params, their gradients, the flattened copy and each optimizer state vector. */
  paramCopies: number;
}

/** Elements per row of a batched value (every axis but the first); symbolic axes count as 1. */
function rowWidth(shape: readonly Dim[] | undefined): number {
  return shape && shape.length > 1 ? minElements(shape.slice(1)) : 1;
}

function widthsOf(graphs: PipelineGraphs | undefined): Widths {
  if (!graphs) return { obs: 1, action: 1, state: 1, params: 0, paramCopies: 0 };
  const input = (g: IRGraph, name: string) => g.inputs.find((i) => i.name === name)?.type.shape;
  const out = graphs.act.nodes.find((n) => n.id === graphs.act.outputs.action);
  const params = graphs.act.params.reduce((s, p) => s + (p.type.shape.every(isStatic) ? minElements(p.type.shape) : 0), 0);
  const optState = graphs.optimizer.inputs.filter((i) => i.type.shape.length === 1 && i.name in graphs.optimizer.outputs).length;
  return { obs: rowWidth(input(graphs.act, 'obs')), action: rowWidth(out?.type?.shape), state: graphs.step ? rowWidth(input(graphs.step, 'state')) : 0, params, paramCopies: 3 + optState };
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 3 : 1)} GiB`;

/**
 * Checks the sizes a pipeline implies against the E_SIZE budget: no tensor over MAX_ELEMENTS and
 * no more than MAX_PIPELINE_BYTES in all. Without `graphs` every row counts as one number wide,
 * which bounds the sizes from below and needs no file.
 */
export function checkPipelineSize(cfg: PipelineConfig, graphs?: PipelineGraphs): void {
  const w = widthsOf(graphs);
  const G = cfg.group?.size ?? 1;
  const sizes = (T: number) => {
    const N = cfg.env.num_envs;
    const rows = N * T * G;
    // The largest single tensors: the batch's observations, and the env state tiled over the group.
    const largest = Math.max(rows * Math.max(w.obs, w.action), N * G * Math.max(w.state, w.obs));
    const elements = rows * (w.obs + w.action + SCALAR_COLUMNS) + N * G * (w.state + w.obs + 2) + w.params * w.paramCopies;
    return { rows, largest, bytes: 4 * elements };
  };
  const s = sizes(cfg.rollout.steps);
  if (s.largest <= MAX_ELEMENTS && s.bytes <= MAX_PIPELINE_BYTES) return;
  // The envs alone are too many when even one step per env is over the budget.
  const one = sizes(1);
  const envs = one.largest > MAX_ELEMENTS || one.bytes > MAX_PIPELINE_BYTES;
  const rowsText = `env.num_envs ${cfg.env.num_envs} x rollout.steps ${cfg.rollout.steps}${cfg.group ? ` x group.size ${G}` : ''} = ${s.rows} rows`;
  const widthText = graphs ? `of ${w.obs} observation and ${w.action} action values` : 'of at least one value';
  throw new LoomError({
    code: 'E_SIZE',
    message:
      s.largest > MAX_ELEMENTS
        ? `the rollout batch has ${s.rows} rows ${widthText}: ${s.largest.toExponential(2)} elements in one tensor, more than any backend can allocate`
        : `the rollout batch (${s.rows} rows ${widthText}), env state and params need about ${gib(s.bytes)}, more than a run may allocate`,
    file: cfg.file,
    pointer: envs ? '/env/num_envs' : '/rollout/steps',
    expected: `at most ${MAX_ELEMENTS} elements per tensor and ${gib(MAX_PIPELINE_BYTES)} in all`,
    found: rowsText,
    hint: envs ? 'lower env.num_envs' : 'lower rollout.steps (or env.num_envs)',
  });
}
