/**
 * Training on webgpu: the driver reads program outputs asynchronously there, and the metrics rows
 * of a few iterations match those of the same run on cpu within float32 tolerance (same seed:
 * the same sampled actions and episodes, losses that differ only by rounding).
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { loadPipeline, parseOverride, type PipelineConfig } from '../../runtime/pipeline/config.ts';
import { Trainer, trainAsync } from '../../runtime/pipeline/driver.ts';
import { evaluatePolicy, evaluatePolicyAsync, openPolicy } from '../../runtime/pipeline/policy.ts';
import type { IterationMetrics } from '../../runtime/pipeline/metrics.ts';
import { loomErr } from '../helpers/loom-error.ts';
import { tinyPipeline, writeTinyPipeline } from '../helpers/tiny-pipeline.ts';
import { startWebgpu } from '../helpers/webgpu.ts';

const choice = await startWebgpu('webgpu training');

/**
 * Float metrics agree to |webgpu - cpu| <= ATOL + RTOL |cpu|: float32 kernels that round
 * differently, over a few updates. ATOL covers metrics that are differences of nearly equal
 * numbers (pg_loss and approx_kl near 1e-6 at the start), whose relative error is large.
 */
const RTOL = 1e-3;
const ATOL = 1e-5;

/** Counts and what follows from the sampled actions must be equal. */
const EXACT = ['iteration', 'global_step', 'lr', 'episodes', 'episodic_return', 'episodic_length'];

async function rows(cfg: PipelineConfig, backend: string): Promise<IterationMetrics[]> {
  await tf.setBackend(backend);
  try {
    const r = await trainAsync(cfg, { outDir: mkdtempSync(join(tmpdir(), `loom-${backend}-`)), backend });
    return [...r.metrics];
  } finally {
    await tf.setBackend('webgpu');
  }
}

function compareRows(gpu: IterationMetrics[], cpu: IterationMetrics[]): void {
  expect(gpu.length).toBe(cpu.length);
  expect(gpu.length).toBeGreaterThanOrEqual(2);
  gpu.forEach((g, i) => {
    const c = cpu[i]!;
    for (const [k, v] of Object.entries(c)) {
      if (k === 'steps_per_sec') continue;
      const w = (g as unknown as Record<string, number | null>)[k];
      if (EXACT.includes(k) || v === null || !Number.isFinite(v)) expect(w, `row ${i + 1} ${k}`).toEqual(v);
      else expect(Math.abs(w! - v), `row ${i + 1} ${k}: webgpu ${w} vs cpu ${v}`).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(v));
    }
  });
}

const shipped = (name: string, sets: string[]) => loadPipeline(join(import.meta.dirname, '..', '..', 'graphs', 'pipelines', `${name}.json`), { overrides: sets.map(parseOverride) });

describe.skipIf(!choice)('training on webgpu matches training on cpu', () => {
  it('PPO (tiny CartPole pipeline): the metrics rows of 4 iterations with evaluations, and the checkpoints written', async () => {
    // An evaluation runs the params through kernels just before best/ saves them (sampled actions:
    // short episodes with a fresh policy).
    // (In a file: loom eval finds the pipeline through the checkpoint.)
    const file = writeTinyPipeline(mkdtempSync(join(tmpdir(), 'loom-pipeline-')), { checkpoint: { every: 2 }, eval: { every: 2, episodes: 2, deterministic: false } });
    const cfg = loadPipeline(file);
    const cpu = await rows(cfg, 'cpu');
    const dir = mkdtempSync(join(tmpdir(), 'loom-webgpu-'));
    const r = await trainAsync(cfg, { outDir: dir, backend: 'webgpu' });
    compareRows([...r.metrics], cpu);
    // The checkpoint read the state tensors back from the GPU.
    const ck = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')) as { body: { backend: string; iteration: number } };
    expect(ck.body).toMatchObject({ backend: 'webgpu', iteration: 4 });
    expect(r.metrics.filter((m) => m.eval_return !== undefined)).toHaveLength(2);
    expect(existsSync(join(dir, 'best', 'checkpoint.json'))).toBe(true);
    // loom eval's evaluation of that checkpoint: the same returns on webgpu as on cpu.
    const policy = openPolicy(dir);
    const o = { episodes: 3, seed: 5, deterministic: false };
    const onGpu = await evaluatePolicyAsync(policy, o);
    await tf.setBackend('cpu');
    const onCpu = evaluatePolicy(policy, o);
    await tf.setBackend('webgpu');
    expect(onGpu).toEqual(onCpu);
  });

  it('AM-PPO, with its controller and modulated minibatches', async () => {
    const cfg = shipped('amppo-cartpole', ['env.num_envs=2', 'rollout.steps=16', 'total_steps=96', 'update.minibatches=2', 'eval.episodes=0']);
    compareRows(await trainAsync(cfg, { outDir: mkdtempSync(join(tmpdir(), 'loom-webgpu-')), backend: 'webgpu' }).then((r) => [...r.metrics]), await rows(cfg, 'cpu'));
  });

  it('Hybrid GRPO, whose group rollout gathers env state with tfjs ops', async () => {
    const cfg = shipped('hybrid-grpo-cartpole', ['env.num_envs=2', 'rollout.steps=4', 'group.size=2', 'group.horizon=2', 'total_steps=64', 'update.minibatches=2', 'eval.episodes=0']);
    compareRows(await trainAsync(cfg, { outDir: mkdtempSync(join(tmpdir(), 'loom-webgpu-')), backend: 'webgpu' }).then((r) => [...r.metrics]), await rows(cfg, 'cpu'));
  });

  it('the synchronous Trainer methods refuse webgpu with a hint instead of failing inside tfjs', () => {
    const t = new Trainer(tinyPipeline());
    const e = loomErr(() => t.init());
    expect(e.code).toBe('E_BACKEND');
    expect(e.message).toMatch(/the webgpu backend reads tensors only asynchronously/);
    expect(e.info.hint).toMatch(/trainAsync/);
    t.dispose();
  });
});
