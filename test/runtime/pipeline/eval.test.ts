/**
 * Evaluation: deterministic by default (the act graph's action_mode), and during training every
 * eval.every iterations with the best policy kept in best/, as SB3's EvalCallback does.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGraphJson } from '../../../compiler/frontend/load.ts';
import { readCheckpoint } from '../../../runtime/pipeline/checkpoint.ts';
import { loadPipelineGraphs } from '../../../runtime/pipeline/config.ts';
import { train, Trainer } from '../../../runtime/pipeline/driver.ts';
import type { IterationMetrics } from '../../../runtime/pipeline/metrics.ts';
import { loomErr } from '../../helpers/loom-error.ts';
import { G, tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-eval-'));
const actJson = () => JSON.parse(readFileSync(G('algorithms/ppo-cartpole.act.graph.json'), 'utf8')) as { outputs: Record<string, string> };
/** The shipped CartPole act graph with its outputs rewritten by `f` (loaded where the original lives, so its call resolves). */
const actWith = (f: (o: Record<string, string>) => Record<string, string>) => {
  const j = actJson();
  return loadGraphJson({ ...j, outputs: f(j.outputs) }, G('algorithms/ppo-cartpole.act.graph.json'));
};

describe('deterministic evaluation', () => {
  it('plays action_mode: the same returns as sampling from an act graph whose action is the argmax', async () => {
    const cfg = tiny();
    const a = new Trainer(cfg);
    // Reference: the stochastic path, with the sampled action replaced by the argmax in the graph itself.
    const b = new Trainer(cfg, { ...loadPipelineGraphs(cfg), act: actWith((o) => ({ ...o, action: 'mode' })) });
    a.init();
    b.init();
    // Trained a little, so that the policy is not uniform and the two modes differ.
    for (let i = 0; i < 3; i++) a.iterate();
    b.params = Object.fromEntries(Object.entries(a.params).map(([k, t]) => [k, t.clone()]));
    const det = a.evaluate(6, 11, true);
    expect(det).toHaveLength(6);
    expect(det).toEqual(b.evaluate(6, 11, false));
    // Deterministic play does not depend on the act key; sampling does (the env's reset keys are the same).
    expect(a.evaluate(6, 11, false)).not.toEqual(det);
    a.dispose();
    b.dispose();
  });

  it('an act graph without action_mode is refused when the pipeline evaluates deterministically, with the way out', async () => {
    const cfg = tiny({ eval: { episodes: 2 } });
    const graphs = { ...loadPipelineGraphs(cfg), act: actWith(({ action_mode: _m, ...o }) => o) };
    const e = loomErr(() => new Trainer(cfg, graphs));
    expect(e.code).toBe('E_INPUT');
    expect(e.message).toContain('action_mode');
    expect(e.info.file).toMatch(/graphs\/algorithms\/ppo-cartpole\.act\.graph\.json$/);
    expect(e.info.pointer).toBe('/outputs');
    expect(e.info.hint).toContain('"deterministic": false');
    const sampled = tiny({ eval: { episodes: 2, deterministic: false } });
    const t = new Trainer(sampled, { ...loadPipelineGraphs(sampled), act: graphs.act });
    t.init();
    expect(t.evaluate(2, 1, false)).toHaveLength(2);
    expect(loomErr(() => t.evaluate(2, 1, true)).info.hint).toContain('--stochastic');
    t.dispose();
  });
});

describe('eval.every', () => {
  const cfg = () => tiny({ eval: { episodes: 3, every: 2 }, total_steps: 96 });

  it('evaluates every K iterations into metrics, keeps the best policy in best/ with its score, and leaves other runs unchanged', async () => {
    const dir = tmp();
    const r = await train(cfg(), { outDir: dir });
    tf.dispose(Object.values(r.params));
    expect(r.iterations).toBe(6);
    const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as IterationMetrics);
    expect(rows.map((x) => x.eval_return !== undefined)).toEqual([false, true, false, true, false, true]);
    expect(readFileSync(join(dir, 'metrics.csv'), 'utf8').split('\n')[0]!.split(',').at(-1)).toBe('eval_return');
    const scores = rows.filter((x) => x.eval_return !== undefined).map((x) => x.eval_return!);
    const best = Math.max(...scores);
    expect(r.bestEval).toBe(best);
    const body = readCheckpoint(join(dir, 'best', 'checkpoint.json'));
    // The first evaluation that reached the best score.
    expect(body.eval).toEqual({ iteration: 2 * (scores.indexOf(best) + 1), episodes: 3, mean_return: best, deterministic: true });
    expect(body.iteration).toBe(body.eval!.iteration);
    // The saved policy is the one that scored: evaluated again, it gives the same returns.
    const t = new Trainer(cfg());
    t.restore(body, 'best');
    const again = t.evaluate(3, cfg().seed, true);
    expect(again.reduce((a, b) => a + b, 0) / again.length).toBe(best);
    t.dispose();
    // Off by default: no column, no folder.
    const plain = tmp();
    tf.dispose(Object.values((await train(tiny(), { outDir: plain })).params));
    expect(existsSync(join(plain, 'best'))).toBe(false);
    expect(readFileSync(join(plain, 'metrics.csv'), 'utf8')).not.toContain('eval_return');
  });

  it('a resumed run keeps the best score it had, and ends with the best/ and metrics of an uninterrupted run', async () => {
    // Seed 3 scores best at iteration 3 and lower after it: a resume at 4 must still compare with that score.
    const every1 = () => tiny({ eval: { episodes: 3, every: 1 }, total_steps: 96 });
    const a = tmp();
    tf.dispose(Object.values((await train(every1(), { outDir: a })).params));
    expect(readCheckpoint(join(a, 'best', 'checkpoint.json')).eval!.iteration).toBe(3);
    const b = tmp();
    tf.dispose(Object.values((await train(every1(), { outDir: b, maxIterations: 4 })).params));
    tf.dispose(Object.values((await train(every1(), { outDir: b, resume: true })).params));
    const strip = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => { const { steps_per_sec: _s, ...r } = JSON.parse(l) as IterationMetrics; return r; });
    expect(strip(join(b, 'metrics.jsonl'))).toEqual(strip(join(a, 'metrics.jsonl')));
    const [ba, bb] = [a, b].map((d) => readCheckpoint(join(d, 'best', 'checkpoint.json')));
    expect(bb!.eval).toEqual(ba!.eval);
    expect(bb!.tensors.params).toEqual(ba!.tensors.params);
  });
});
