/**
 * `compare` on program pipelines: each program's seeds run as one vmapped program into
 * OUT/<program>/seed-<s>, and the report is computed from what those folders hold (checked here
 * by hand from metrics.jsonl, eval.json and run.json); finished seeds are reused, stopped ones
 * resumed; a mix with a pipeline; what compare refuses before running anything.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compare } from '../../../runtime/compare.ts';
import { loadPipeline } from '../../../runtime/pipeline/config.ts';
import { loadProgram, type ProgramConfig } from '../../../runtime/program/config.ts';
import { sharedWall } from '../../../runtime/program/compare.ts';
import { trainProgramSeeds } from '../../../runtime/program/driver.ts';
import { loomErrAsync } from '../../helpers/loom-error.ts';
import { writeTinyPipeline } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const EXAMPLE = join(import.meta.dirname, '../../../graphs/examples/linear-regression/program.json');
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-compare-programs-'));
/** 6 iterations of 16 samples, every one logged. */
const base = (): ProgramConfig => ({ ...loadProgram(EXAMPLE), total_steps: 96, logging: { every: 1 }, checkpoint: { every: 1 } });
const variant = (): ProgramConfig => ({ ...base(), program: 'linreg-lr02', hyper: { ...base().hyper, lr: 0.2 } });
/** The example logs a loss and evaluates an mse: those stand for the return and the eval return. */
const readout = { metric: 'loss', evalOutput: 'mse' };
const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const losses = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const quiet = { log: () => {} };

describe('compare on program pipelines', () => {
  const out = tmp();
  const seeds = [1, 2, 3, 4];

  it('2 programs x 4 seeds: the report equals the statistics computed by hand from each seed folder', async () => {
    const log: string[] = [];
    const r = await compare([base(), variant()], { outDir: out, seeds, reps: 200, readout, log: (s) => log.push(s) });
    expect(readdirSync(out).sort()).toEqual(['compare.csv', 'compare.json', 'compare.md', 'compare.svg', 'linear-regression', 'linreg-lr02', 'profiles.svg']);
    expect(log.filter((l) => l.includes(': start'))).toEqual(['linear-regression seeds 1, 2, 3, 4: start (one program vmapped over 4 seeds)\n', 'linreg-lr02 seeds 1, 2, 3, 4: start (one program vmapped over 4 seeds)\n']);
    const csv = readFileSync(join(out, 'compare.csv'), 'utf8').trim().split('\n');
    const head = csv[0]!.split(',');
    for (const [i, name] of ['linear-regression', 'linreg-lr02'].entries()) {
      const dirs = seeds.map((s) => join(out, name, `seed-${s}`));
      // The layout `loom train PROGRAM --seeds 4 --out OUT/<program>` writes: one finished single-seed run per folder.
      dirs.forEach((d, k) => expect(json(join(d, 'run.json'))).toMatchObject({ status: 'finished', seed: seeds[k], config: { program: name, seed: seeds[k], total_steps: 96 } }));
      const curves = dirs.map(losses);
      curves.forEach((c) => expect(c).toHaveLength(6));
      // 6 iterations: the final return is the last 10% (one iteration) of the curve; the AUC its mean.
      const finals = curves.map((c) => c.at(-1)!);
      const aucs = curves.map(mean);
      const evals = dirs.map((d) => json(join(d, 'eval.json')).mse as number);
      const got = r.rows[i]!;
      expect(got.pipeline).toBe(name);
      expect(got.perRun.map((p) => [p.seed, p.finalReturn, p.auc, p.evalReturn, p.envSteps])).toEqual(seeds.map((s, k) => [s, finals[k], aucs[k], evals[k], 96]));
      // IQM of 4 seeds: the mean of the middle two.
      const sorted = [...finals].sort((a, b) => a - b);
      expect(got.final.iqm!.value).toBeCloseTo((sorted[1]! + sorted[2]!) / 2, 12);
      expect(got.finalReturn.mean!).toBeCloseTo(mean(finals), 12);
      expect(got.evalReturn.mean!.value).toBeCloseTo(mean(evals), 12);
      // The seeds ran as one program: each seed's wall time is a quarter of the span its run.json records.
      const spans = dirs.map((d) => json(join(d, 'run.json')) as { started: string; ended: string });
      const wall = (Math.max(...spans.map((s) => Date.parse(s.ended))) - Math.min(...spans.map((s) => Date.parse(s.started)))) / 1000;
      expect(got.wallSec).toBeCloseTo(wall / 4, 9);
      const cells = csv[i + 1]!.split(',');
      expect(cells[head.indexOf('pipeline')]).toBe(name);
      expect(Number(cells[head.indexOf('final_return_mean')])).toBeCloseTo(mean(finals), 9);
      expect(Number(cells[head.indexOf('eval_return_mean')])).toBeCloseTo(mean(evals), 9);
    }
    // Different learning rates, different runs: the comparison is not of a program with itself.
    expect(r.rows[1]!.perRun.map((p) => p.finalReturn)).not.toEqual(r.rows[0]!.perRun.map((p) => p.finalReturn));
    expect(r.rows[1]!.vsBaseline).toMatchObject({ baseline: 'linear-regression' });
    const md = readFileSync(join(out, 'compare.md'), 'utf8');
    expect(md).toContain('# linear-regression, linreg-lr02: 4 seeds, 96 steps');
    expect(md).toContain(`| linreg-lr02 | 4 | ${r.rows[1]!.final.iqm!.value.toFixed(1)} [`);
  });

  it('runs again: every seed is reused as it is, with the same numbers', async () => {
    const log: string[] = [];
    const first = json(join(out, 'compare.json')) as { results: unknown[] };
    const again = await compare([base(), variant()], { outDir: out, seeds, reps: 200, readout, log: (s) => log.push(s) });
    expect(log.filter((l) => l.includes(': start'))).toEqual([]);
    expect(log.filter((l) => l.includes('already finished'))).toHaveLength(8);
    expect(JSON.parse(JSON.stringify(again.rows))).toEqual(first.results);
  });

  it('reuses seeds finished by trainProgramSeeds, resumes stopped ones from their checkpoints, and runs the rest', async () => {
    const dir = tmp();
    const cfg = base();
    const free = (rs: Awaited<ReturnType<typeof trainProgramSeeds>>) => rs.forEach((x) => tf.dispose(Object.values(x.state)));
    // As `loom train PROGRAM --seed-list 2 --out DIR/linear-regression` does.
    free(await trainProgramSeeds(cfg, { outDir: join(dir, 'linear-regression'), seeds: [2], ...quiet }));
    // Seeds 3 and 4 stopped after 2 iterations, with checkpoints; seed 1 never started.
    free(await trainProgramSeeds(cfg, { outDir: join(dir, 'linear-regression'), seeds: [3, 4], maxIterations: 2, ...quiet }));
    const log: string[] = [];
    const r = await compare([cfg], { outDir: dir, seeds, reps: 50, readout, log: (s) => log.push(s) });
    expect(log.filter((l) => /: (start|resume|already finished)/.test(l)).map((l) => l.replace(/, final .*/s, ''))).toEqual([
      'linear-regression seed 1: start (one program vmapped over 1 seed)\n',
      'linear-regression seeds 3, 4: resume from iteration 2 (one program vmapped over 2 seeds)\n',
      'linear-regression seed 2: already finished',
    ]);
    expect(json(join(dir, 'linear-regression', 'seed-3', 'run.json')).resumed_from).toEqual({ iteration: 2, global_step: 32 });
    expect(json(join(dir, 'linear-regression', 'seed-1', 'run.json')).resumed_from).toBeUndefined();
    // Every seed's curve equals the one run in one go above (vmapped with other seeds: to float32 rounding).
    for (const s of seeds) {
      const a = losses(join(dir, 'linear-regression', `seed-${s}`));
      const b = losses(join(out, 'linear-regression', `seed-${s}`));
      expect(a).toHaveLength(6);
      a.forEach((x, k) => expect(Math.abs(x - b[k]!)).toBeLessThanOrEqual(1e-5 * Math.abs(b[k]!) + 1e-7));
    }
    expect(r.rows[0]!.perRun.map((p) => p.seed)).toEqual(seeds);
  });

  it('a stop between iterations (Ctrl-C) leaves every seed a checkpoint and writes no tables; the same call resumes them', async () => {
    const dir = tmp();
    let asked = 0;
    // Asked once before the program starts, then before each iteration: the third iteration is not run.
    const stop = await compare([base()], { outDir: dir, seeds: [1, 2], reps: 50, readout, shouldStop: () => ++asked > 3, ...quiet });
    expect(stop.stopped).toEqual([1, 2].map((s) => ({ label: `linear-regression seed ${s}`, dir: join(dir, 'linear-regression', `seed-${s}`), iteration: 2 })));
    expect(existsSync(join(dir, 'compare.md'))).toBe(false);
    const r = await compare([base()], { outDir: dir, seeds: [1, 2], reps: 50, readout, ...quiet });
    expect(json(join(dir, 'linear-regression', 'seed-2', 'run.json')).resumed_from).toEqual({ iteration: 2, global_step: 32 });
    expect(r.rows[0]!.perRun.map((p) => p.finalReturn)).toEqual([1, 2].map((s) => losses(join(dir, 'linear-regression', `seed-${s}`)).at(-1)));
  });

  it('--report-only names the seeds not finished, as <program>/seed-<s>', async () => {
    const r = await compare([base(), variant()], { outDir: out, seeds: [1, 2, 5], reps: 50, readout, reportOnly: true });
    expect(r.missing).toEqual(['linear-regression/seed-5', 'linreg-lr02/seed-5']);
    expect(r.rows.map((x) => x.seeds)).toEqual([2, 2]);
    expect(existsSync(join(out, 'linear-regression', 'seed-5'))).toBe(false);
  });

  it('a pipeline and a program in one table: each runs its own way, into its own layout', async () => {
    const dir = tmp();
    const file = writeTinyPipeline(mkdtempSync(join(dir, 'p')), { pipeline: 'ppo-tiny', update: { epochs: 1, minibatches: 2 }, total_steps: 48, eval: { episodes: 2 } });
    const r = await compare([loadPipeline(file), { ...base(), total_steps: 48 }], { outDir: join(dir, 'out'), seeds: [1, 2], reps: 50, readout, ...quiet });
    expect(r.rows.map((x) => [x.pipeline, x.perRun.length])).toEqual([['ppo-tiny', 2], ['linear-regression', 2]]);
    for (const s of [1, 2]) {
      expect(existsSync(join(dir, 'out', 'ppo-tiny', `s${s}`, 'run.json'))).toBe(true);
      expect(r.rows[1]!.perRun[s - 1]!.finalReturn).toBe(losses(join(dir, 'out', 'linear-regression', `seed-${s}`)).at(-1));
    }
  });

  it('refuses, before running anything: a metric or evaluation output the program lacks, and a folder of another configuration', async () => {
    const dir = tmp();
    const noMetric = await loomErrAsync(() => compare([base()], { outDir: dir, seeds: [1], readout: { evalOutput: 'mse' } }));
    expect(noMetric.info).toMatchObject({ code: 'E_USAGE', message: 'program linear-regression has no metric "episodic_return" for loom compare to read', expected: 'one of: loss, env_steps' });
    expect(noMetric.info.hint).toMatch(/--metric NAME/);
    const noEval = await loomErrAsync(() => compare([base()], { outDir: dir, seeds: [1], readout: { metric: 'loss' } }));
    expect(noEval.info).toMatchObject({ code: 'E_USAGE', expected: 'one of: mse, weight_error' });
    expect(noEval.info.message).toMatch(/no evaluation output "return_mean"/);
    const typo = await loomErrAsync(() => compare([base()], { outDir: dir, seeds: [1], readout: { metric: 'los', evalOutput: 'mse' } }));
    expect(typo.info.hint).toBe('did you mean --metric loss?');
    expect(readdirSync(dir)).toEqual([]);
    const other = await loomErrAsync(() => compare([{ ...base(), total_steps: 128 }], { outDir: out, seeds, readout }));
    expect(other.info.code).toBe('E_USAGE');
    expect(other.info.message).toMatch(/^run linear-regression\/seed-1 of loom compare: the configuration differs/);
    expect(other.info.found).toMatch(/total_steps: 96 -> 128/);
  });
});

describe('sharedWall', () => {
  it('counts overlapping spans once and leaves out runs that have not ended', () => {
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    // [0, 10] and [5, 12] overlap, and hold [6, 9]: 12 s; [20, 25]: 5 s; [30, -]: not ended.
    expect(sharedWall([{ started: at(5), ended: at(12) }, { started: at(0), ended: at(10) }, { started: at(6), ended: at(9) }, { started: at(20), ended: at(25) }, { started: at(30) }])).toBe(17);
    expect(sharedWall([])).toBe(0);
  });
});
