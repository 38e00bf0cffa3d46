import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compare, curve, finalReturn, meanCI, stepsToThreshold, summarise, tQuantile975 } from '../../runtime/compare.ts';
import { parsePipeline } from '../../runtime/pipeline/config.ts';
import type { IterationMetrics } from '../../runtime/pipeline/metrics.ts';
import { marks, parseSvg, texts } from '../helpers/svg.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const G = (p: string) => join(__dirname, '../../graphs', p);

const row = (iteration: number, ret: number | null): IterationMetrics => ({
  iteration, global_step: iteration * 100, lr: 0, episodic_return: ret, episodic_length: ret, episodes: ret === null ? 0 : 1,
  loss: 0, pg_loss: 0, v_loss: 0, entropy: 0, approx_kl: 0, clipfrac: 0, grad_norm: 0, grad_clip_frac: 0, explained_variance: 0, steps_per_sec: 0,
});

describe('statistics', () => {
  it('t quantiles: table values and the large-df expansion', () => {
    expect(tQuantile975(1)).toBe(12.706);
    expect(tQuantile975(4)).toBe(2.776);
    expect(tQuantile975(30)).toBe(2.042);
    expect(tQuantile975(40)).toBeCloseTo(2.021, 3); // published table value
    expect(tQuantile975(120)).toBeCloseTo(1.98, 3);
  });

  it('mean ± 95% CI by hand', () => {
    // [10, 20]: mean 15, s = sqrt(50) = 7.0711, half-width = 12.706 * 7.0711 / sqrt(2) = 63.53
    const a = meanCI([10, 20]);
    expect(a.mean).toBe(15);
    expect(a.ci95!).toBeCloseTo(63.53, 2);
    // [1, 2, 3, 4, 5]: mean 3, s = sqrt(2.5) = 1.5811, half-width = 2.776 * 1.5811 / sqrt(5) = 1.9629
    const b = meanCI([1, 2, 3, 4, 5]);
    expect(b.mean).toBe(3);
    expect(b.ci95!).toBeCloseTo(1.9629, 4);
    expect(meanCI([7])).toEqual({ n: 1, mean: 7, ci95: null });
    expect(meanCI([])).toEqual({ n: 0, mean: null, ci95: null });
  });

  it('curves carry the last return forward; final return and steps to threshold', () => {
    const ms = [row(1, null), row(2, 10), row(3, null), row(4, 30), row(5, 50), row(6, null), row(7, 40), row(8, 20), row(9, null), row(10, 60), row(11, 70)];
    expect(curve(ms).map((p) => p.ret)).toEqual([null, 10, 10, 30, 50, 50, 40, 20, 20, 60, 70]);
    // 11 iterations: the last ceil(1.1) = 2 -> (60 + 70) / 2
    expect(finalReturn(ms)).toBe(65);
    expect(stepsToThreshold(ms, 45)).toBe(500);
    expect(stepsToThreshold(ms, 100)).toBeNull();
    const s = summarise('p', [
      { seed: 1, metrics: ms, wallSec: 2, envSteps: 1100 },
      { seed: 2, metrics: ms.map((m) => ({ ...m, episodic_return: m.episodic_return === null ? null : m.episodic_return / 2 })), wallSec: 3, envSteps: 1100 },
    ], 45);
    // Finals 65 and 32.5: mean 48.75, s = 22.981, half-width = 12.706 * 22.981 / sqrt(2) = 206.47
    expect(s.finalReturn.mean).toBe(48.75);
    expect(s.finalReturn.ci95!).toBeCloseTo(206.47, 1);
    // Seed 2 peaks at 70 / 2 = 35 < 45; only seed 1 reaches the threshold, at step 500.
    expect(s.stepsToThreshold).toEqual({ mean: 500, reached: 1 });
    expect(s.wallSec).toBe(2.5);
    expect(s.envStepsPerSec).toBe(2200 / 5);
    // Iteration 1 has no value in either seed; iteration 2: [10, 5] -> mean 7.5, half-width
    // 12.706 * 3.5355 / sqrt(2) = 31.8, past both seeds: the band is clipped to [5, 10].
    expect(s.curve[0]!.step).toBe(200);
    expect(s.curve[0]!.mean).toBe(7.5);
    expect([s.curve[0]!.lo, s.curve[0]!.hi]).toEqual([5, 10]);
  });
});

describe('compare on tiny configs', () => {
  it('runs 2 pipelines x 2 seeds and writes markdown, CSV, JSON and SVG that agree with the runs', async () => {
    const base = {
      env: { name: 'CartPole-v1', step: G('envs/cartpole.step.graph.json'), reset: G('envs/cartpole.reset.graph.json'), num_envs: 2 },
      policy: { act: G('algorithms/ppo-cartpole.act.graph.json') },
      loss: G('algorithms/ppo-cartpole.loss.graph.json'),
      optimizer: { name: 'adam', lr: 2.5e-4 },
      rollout: { steps: 8 },
      update: { epochs: 1, minibatches: 2 },
      total_steps: 48,
    };
    const a = parsePipeline({ ...base, pipeline: 'ppo-tiny' }, '/virtual/a.json');
    const b = parsePipeline({ ...base, pipeline: 'amppo-tiny', advantage: { transform: { kind: 'amppo' } } }, '/virtual/b.json');
    const out = mkdtempSync(join(tmpdir(), 'loom-cmp-'));
    const log: string[] = [];
    const r = await compare([a, b], { outDir: out, seeds: [1, 2], threshold: 15, log: (s) => log.push(s) });
    expect(readdirSync(out).sort()).toEqual(['amppo-tiny', 'compare.csv', 'compare.json', 'compare.md', 'compare.svg', 'ppo-tiny']);
    expect(log.filter((l) => l.includes('done'))).toHaveLength(4);
    // Recompute each row's final-return statistics from the per-run metrics files, by hand.
    for (const [i, name] of ['ppo-tiny', 'amppo-tiny'].entries()) {
      const finals = [1, 2].map((s) => {
        const rows = readFileSync(join(out, name, `s${s}`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as IterationMetrics);
        expect(rows).toHaveLength(3);
        // 3 iterations: the final return is the carried-forward value at the last one.
        const last = [...rows].reverse().find((m) => m.episodic_return !== null);
        return last!.episodic_return!;
      });
      const m = (finals[0]! + finals[1]!) / 2;
      const half = (12.706 * Math.abs(finals[0]! - finals[1]!) / Math.SQRT2) / Math.SQRT2;
      const got = r.rows[i]!;
      expect(got.pipeline).toBe(name);
      expect(got.finalReturn.mean!).toBeCloseTo(m, 9);
      expect(got.finalReturn.ci95!).toBeCloseTo(half, 6);
      const csv = readFileSync(join(out, 'compare.csv'), 'utf8').trim().split('\n');
      expect(csv[0]).toBe('pipeline,seeds,final_return_mean,final_return_ci95,final_return_n,steps_to_threshold_mean,threshold_reached,wall_sec_per_seed,env_steps_per_sec');
      const cells = csv[i + 1]!.split(',');
      expect(cells[0]).toBe(name);
      expect(Number(cells[2])).toBeCloseTo(m, 9);
      expect(Number(cells[3])).toBeCloseTo(half, 6);
      expect(cells[4]).toBe('2');
      const md = readFileSync(join(out, 'compare.md'), 'utf8');
      expect(md).toContain(`| ${name} | 2 | ${m.toFixed(1)} ± ${half.toFixed(1)} |`);
    }
    const json = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8')) as { seeds: number[]; threshold: number; results: { pipeline: string }[] };
    expect(json.seeds).toEqual([1, 2]);
    expect(json.threshold).toBe(15);
    expect(json.results.map((x) => x.pipeline)).toEqual(['ppo-tiny', 'amppo-tiny']);
    const svg = parseSvg(readFileSync(join(out, 'compare.svg'), 'utf8'));
    expect(texts(svg, 'role-title-text')).toEqual(['CartPole-v1: 2 seeds, 48 steps']);
    expect(texts(svg, 'role-legend-label')).toEqual(['ppo-tiny (2 seeds)', 'amppo-tiny (2 seeds)']);
    // One shaded CI band per pipeline behind its faint raw and solid mean lines.
    expect(marks(svg, 'area')).toHaveLength(2);
    expect(marks(svg, 'line')).toHaveLength(4);
  });
});
