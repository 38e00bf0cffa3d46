import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { areaUnderCurve, compare, curve, finalReturn, finalReturnAtVisited, meanCI, relateRows, stepsToThreshold, summarise, tQuantile975, type SeedRun } from '../../runtime/compare.ts';
import { loadPipeline, parsePipeline } from '../../runtime/pipeline/config.ts';
import { train } from '../../runtime/pipeline/driver.ts';
import { bootstrapCI, iqm, mannWhitneyP, meanOfAll, probabilityOfImprovement } from '../../runtime/stats.ts';
import { loomErrAsync } from '../helpers/loom-error.ts';
import { writeTinyPipeline } from '../helpers/tiny-pipeline.ts';
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


/** Runs whose final return is exactly `finals[i]`: one row per iteration, all at that return. */
const flat = (finals: number[], iterations = 3): SeedRun[] =>
  finals.map((f, i) => ({ seed: i + 1, metrics: Array.from({ length: iterations }, (_, k) => row(k + 1, f)), wallSec: 1, envSteps: iterations * 100 }));

describe('rliable statistics per pipeline', () => {
  it('final return IQM and mean with bootstrap CIs, the AUC, the evaluation', () => {
    const runs = flat([5, 1, 4, 2, 100]).map((r, i) => ({ ...r, evalReturn: [10, 20, 30, 40, null][i] }));
    const s = summarise('p', runs, null, { reps: 300 });
    // IQM of [1, 2, 4, 5, 100]: one dropped at each end -> (2 + 4 + 5) / 3
    expect(s.final.iqm!.value).toBeCloseTo(11 / 3, 12);
    expect(s.final.mean!.value).toBeCloseTo(112 / 5, 12);
    expect(s.final.iqm).toEqual(bootstrapCI([[5, 1, 4, 2, 100]], iqm, { reps: 300 }));
    expect(s.final.mean).toEqual(bootstrapCI([[5, 1, 4, 2, 100]], meanOfAll, { reps: 300 }));
    // The evaluation over the 4 evaluated seeds: IQM drops 10 and 40.
    expect(s.evalReturn.n).toBe(4);
    expect(s.evalReturn.iqm!.value).toBe(25);
    expect(s.perRun.map((r) => r.evalReturn)).toEqual([10, 20, 30, 40, null]);
    // AUC: the mean of the curve where it has a value. Null, 10, 10 (carried), 30 -> 50 / 3.
    expect(areaUnderCurve([row(1, null), row(2, 10), row(3, null), row(4, 30)])).toBeCloseTo(50 / 3, 12);
    expect(areaUnderCurve([row(1, null)])).toBeNull();
  });

  it('probability of improvement and Holm-adjusted Mann–Whitney p against the baseline', () => {
    const base = flat([1, 2, 3, 4, 5]);
    const better = flat([10, 11, 12, 13, 14]);
    const mixed = flat([1.5, 2.5, 8, 9, 10]);
    const rows = [summarise('base', base, null, { reps: 200 }), summarise('better', better, null, { reps: 200 }), summarise('mixed', mixed, null, { reps: 200 })];
    const m = relateRows(rows, [base, better, mixed], 0, { reps: 200 });
    expect(m).toBe(2);
    expect(rows[0]!.vsBaseline).toBeNull();
    // better beats every baseline run; mixed: 1.5 > 1; 2.5 > 1, 2; 8, 9, 10 > all five -> 18 of 25.
    expect(rows[1]!.vsBaseline!.poi!.value).toBe(1);
    expect(rows[2]!.vsBaseline!.poi!.value).toBeCloseTo(18 / 25, 12);
    expect(rows[2]!.vsBaseline!.poi).toEqual(probabilityOfImprovement([[1.5, 2.5, 8, 9, 10]], [[1, 2, 3, 4, 5]], { reps: 200 }));
    // Exact two-sided p: 2/252 (all five above) and the mixed one's; Holm: the smaller times 2, then monotone.
    const p1 = 2 / 252;
    const p2 = mannWhitneyP([1.5, 2.5, 8, 9, 10], [1, 2, 3, 4, 5])!;
    expect(rows[1]!.vsBaseline!.p).toBeCloseTo(p1, 12);
    expect(rows[1]!.vsBaseline!.pHolm).toBeCloseTo(2 * p1, 12);
    expect(rows[2]!.vsBaseline!.pHolm).toBeCloseTo(Math.max(p2, 2 * p1), 12);
    // Without a group pipeline, equal env steps are equal visited states: no second table.
    expect(rows.every((r) => r.atVisited === null)).toBe(true);
  });

  it('at equal visited states: every run cut at the fewest visited states of the table', () => {
    // PPO: 10 iterations of 100 env steps = 100 visited states each; returns 1..10.
    const ppo: SeedRun[] = [1, 2].map((seed) => ({ seed, metrics: Array.from({ length: 10 }, (_, k) => row(k + 1, (k + 1) * seed)), wallSec: 1, envSteps: 1000 }));
    // A group pipeline at 4 env steps per visited state, logging no visited_states: 1000 env steps are 250 states.
    const grp: SeedRun[] = [1, 2].map((seed) => ({ seed, metrics: Array.from({ length: 10 }, (_, k) => row(k + 1, 50 + seed)), wallSec: 1, envSteps: 1000, stepsPerVisitedState: 4 }));
    const rows = [summarise('ppo', ppo, null), summarise('grpo', grp, null)];
    relateRows(rows, [ppo, grp], 0);
    expect(rows[1]!.perRun.map((r) => r.visitedStates)).toEqual([250, 250]);
    // Cut at 250 states: PPO's first 2 iterations (global_step 200 <= 250), final return = the last ceil(0.2) = 1 of them.
    expect(finalReturnAtVisited(ppo[1]!.metrics, 250, 1)).toBe(4);
    expect(rows[0]!.atVisited!.states).toBe(250);
    expect(rows[0]!.atVisited!.mean!.value).toBe((2 + 4) / 2);
    expect(rows[1]!.atVisited!.mean!.value).toBe((51 + 52) / 2);
    // A logged visited_states wins over the division.
    expect(finalReturnAtVisited([{ ...row(1, 7), visited_states: 10 }, { ...row(2, 9), visited_states: 20 }], 15, 4)).toBe(7);
  });
});

const tinyOver = (pipeline: string, over: Record<string, unknown> = {}) => ({ pipeline, update: { epochs: 1, minibatches: 2 }, total_steps: 48, eval: { episodes: 2 }, ...over });

describe('compare on tiny pipelines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-cmp-'));
  const fileA = writeTinyPipeline(mkdtempSync(join(dir, 'a')), tinyOver('ppo-tiny'));
  const fileB = writeTinyPipeline(mkdtempSync(join(dir, 'b')), tinyOver('amppo-tiny', { advantage: { transform: { kind: 'amppo' } } }));
  const load = () => [loadPipeline(fileA), loadPipeline(fileB)];
  const rowsOf = (d: string) => readFileSync(join(d, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as IterationMetrics);
  /** A run's rows without the wall-clock column. */
  const strip = (ms: readonly IterationMetrics[]) => ms.map(({ steps_per_sec: _s, ...m }) => m);

  it('runs 2 pipelines x 2 seeds and writes tables and figures that agree with the runs', async () => {
    const out = join(dir, 'seq');
    const log: string[] = [];
    const r = await compare(load(), { outDir: out, seeds: [1, 2], threshold: 15, reps: 200, log: (s) => log.push(s) });
    expect(readdirSync(out).sort()).toEqual(['amppo-tiny', 'compare.csv', 'compare.json', 'compare.md', 'compare.svg', 'ppo-tiny', 'profiles.svg']);
    expect(log.filter((l) => l.includes('done'))).toHaveLength(4);
    for (const [i, name] of ['ppo-tiny', 'amppo-tiny'].entries()) {
      // Recompute the final returns from the per-run metrics files, by hand.
      const finals = [1, 2].map((s) => {
        const rows = rowsOf(join(out, name, `s${s}`));
        expect(rows).toHaveLength(3);
        return [...rows].reverse().find((m) => m.episodic_return !== null)!.episodic_return!;
      });
      const m = (finals[0]! + finals[1]!) / 2;
      const half = (12.706 * Math.abs(finals[0]! - finals[1]!) / Math.SQRT2) / Math.SQRT2;
      const got = r.rows[i]!;
      expect(got.pipeline).toBe(name);
      expect(got.finalReturn.mean!).toBeCloseTo(m, 9);
      expect(got.finalReturn.ci95!).toBeCloseTo(half, 6);
      // Two seeds: the IQM trims nothing.
      expect(got.final.iqm!.value).toBeCloseTo(m, 9);
      // The evaluation ran: a finite mean return per run.
      expect(got.evalReturn.n).toBe(2);
      const csv = readFileSync(join(out, 'compare.csv'), 'utf8').trim().split('\n');
      const head = csv[0]!.split(',');
      const cells = csv[i + 1]!.split(',');
      const cell = (k: string) => cells[head.indexOf(k)]!;
      expect(cell('pipeline')).toBe(name);
      expect(Number(cell('final_return_mean'))).toBeCloseTo(m, 9);
      expect(Number(cell('final_return_ci95'))).toBeCloseTo(half, 6);
      expect(Number(cell('final_return_iqm'))).toBeCloseTo(m, 9);
      expect(Number(cell('eval_return_mean'))).toBeCloseTo(got.evalReturn.mean!.value, 9);
      expect(cell('baseline')).toBe(i === 0 ? '' : 'ppo-tiny');
      const md = readFileSync(join(out, 'compare.md'), 'utf8');
      expect(md).toContain(`| ${name} | 2 | ${got.final.iqm!.value.toFixed(1)} [`);
      expect(md).toContain(`${m.toFixed(1)} ± ${half.toFixed(1)}`);
    }
    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    expect(md).toContain("Holm–Bonferroni adjusted over the table's 1 comparison.");
    expect(md).toContain('| (baseline) | - |');
    const json = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8')) as { seeds: number[]; threshold: number; baseline: string; comparisons: number; bootstrap: { reps: number }; results: { pipeline: string }[] };
    expect(json).toMatchObject({ seeds: [1, 2], threshold: 15, baseline: 'ppo-tiny', comparisons: 1, bootstrap: { reps: 200 } });
    expect(json.results.map((x) => x.pipeline)).toEqual(['ppo-tiny', 'amppo-tiny']);
    const svg = parseSvg(readFileSync(join(out, 'compare.svg'), 'utf8'));
    expect(texts(svg, 'role-title-text')).toEqual(["ppo-tiny, amppo-tiny: 2 seeds, 48 steps"]);
    expect(texts(svg, 'role-legend-label')).toEqual(['ppo-tiny (2 seeds)', 'amppo-tiny (2 seeds)']);
    expect(marks(svg, 'area')).toHaveLength(2);
    expect(marks(svg, 'line')).toHaveLength(4);
    // Profiles: one band and one step line per pipeline.
    const prof = parseSvg(readFileSync(join(out, 'profiles.svg'), 'utf8'));
    expect(texts(prof, 'role-legend-label')).toEqual(['ppo-tiny (2 seeds)', 'amppo-tiny (2 seeds)']);
    expect(marks(prof, 'area')).toHaveLength(2);
    expect(marks(prof, 'line')).toHaveLength(2);

    // Run again: every run is reused as it is, with the same evaluation.
    const log2: string[] = [];
    const again = await compare(load(), { outDir: out, seeds: [1, 2], threshold: 15, reps: 200, log: (s) => log2.push(s) });
    expect(log2.filter((l) => l.includes(': start'))).toEqual([]);
    expect(log2.filter((l) => l.includes('already finished'))).toHaveLength(4);
    expect(again.rows.map((x) => x.perRun)).toEqual(r.rows.map((x) => x.perRun.map((p) => ({ ...p, wallSec: expect.any(Number) }))));
  });

  it('reuses runs made by loom train in OUT/<pipeline>/s<seed>, evaluation included, and resumes stopped ones', async () => {
    const out = join(dir, 'reuse');
    const [a] = load();
    // As `loom train ppo-tiny.json --seed 1 --steps 48 --out OUT/ppo-tiny/s1` does: the file's pipeline with seed and steps.
    const trained = await train({ ...a!, seed: 1, total_steps: 48 }, { outDir: join(out, 'ppo-tiny', 's1') });
    tf.dispose(Object.values(trained.params));
    // Seed 2 stopped after one iteration, with a checkpoint.
    tf.dispose(Object.values((await train({ ...a!, seed: 2 }, { outDir: join(out, 'ppo-tiny', 's2'), maxIterations: 1 })).params));
    const log: string[] = [];
    const r = await compare([a!], { outDir: out, seeds: [1, 2], reps: 50, log: (s) => log.push(s) });
    expect(log.filter((l) => l.startsWith('ppo-tiny seed 1: start'))).toEqual([]);
    expect(log.some((l) => l.startsWith('ppo-tiny seed 1: already finished'))).toBe(true);
    expect(log.some((l) => l.startsWith('ppo-tiny seed 2: done'))).toBe(true);
    // The finished run's evaluation is the one loom train printed.
    expect(r.rows[0]!.perRun[0]!.evalReturn).toBe(trained.eval!.meanReturn);
    expect(JSON.parse(readFileSync(join(out, 'ppo-tiny', 's2', 'run.json'), 'utf8')).resumed_from).toEqual({ iteration: 1, global_step: 16 });
    // Both runs equal the ones run in one go by the first test.
    for (const s of ['s1', 's2']) expect(strip(rowsOf(join(out, 'ppo-tiny', s)))).toEqual(strip(rowsOf(join(dir, 'seq', 'ppo-tiny', s))));
  });

  it('on the worker pool: the same per-run results as in this process', async () => {
    const out = join(dir, 'pool');
    const r = await compare(load(), { outDir: out, seeds: [1, 2], reps: 50, workers: 2, backend: 'cpu' });
    for (const name of ['ppo-tiny', 'amppo-tiny']) for (const s of ['s1', 's2']) expect(strip(rowsOf(join(out, name, s)))).toEqual(strip(rowsOf(join(dir, 'seq', name, s))));
    const seq = JSON.parse(readFileSync(join(dir, 'seq', 'compare.json'), 'utf8')) as { results: { perRun: { evalReturn: number; finalReturn: number }[] }[] };
    expect(r.rows.map((x) => x.perRun.map((p) => [p.finalReturn, p.evalReturn]))).toEqual(seq.results.map((x) => x.perRun.map((p) => [p.finalReturn, p.evalReturn])));
  }, 60_000);

  it('--report-only tabulates the finished runs and names the missing ones; an unknown baseline is a usage error', async () => {
    const out = join(dir, 'reuse');
    const [a, b] = load();
    const r = await compare([a!, b!], { outDir: out, seeds: [1, 2], reps: 50, reportOnly: true, baseline: 'ppo-tiny' });
    expect(r.missing).toEqual(['amppo-tiny/s1', 'amppo-tiny/s2']);
    expect(existsSync(join(out, 'amppo-tiny'))).toBe(false);
    expect(r.rows.map((x) => x.seeds)).toEqual([2, 0]);
    expect(readFileSync(join(out, 'compare.md'), 'utf8')).toContain('Not finished in this folder, left out: amppo-tiny/s1, amppo-tiny/s2.');
    const e = await loomErrAsync(() => compare([a!, b!], { outDir: out, seeds: [1], baseline: 'nope' }));
    expect(e.info.code).toBe('E_USAGE');
    expect(e.info.expected).toBe('ppo-tiny, amppo-tiny');
    const none = await loomErrAsync(() => compare([b!], { outDir: join(dir, 'empty'), seeds: [1], reportOnly: true }));
    expect(none.info.message).toMatch(/holds no finished run/);
  });
});
