/**
 * Several seeds of a program pipeline in one run (trainProgramSeeds): vmapped into one program, each
 * seed's metrics, state, checkpoint and evaluation equal a single-seed run of that seed (to float32
 * rounding), and the loop mode equals them exactly. Resume, the NaN stop, leaks and bad seed lists.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadProgram, MAX_SEEDS, type ProgramConfig } from '../../../runtime/program/config.ts';
import { trainProgram, trainProgramSeeds, type ProgramSeedsOptions, type ProgramTrainResult } from '../../../runtime/program/driver.ts';
import type { MetricRow } from '../../../runtime/program/metrics.ts';
import { readRunRecord } from '../../../runtime/pipeline/run-record.ts';
import { loomErrAsync } from '../../helpers/loom-error.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const TOY = join(import.meta.dirname, '../../fixtures/program/toy.program.json');
const EXAMPLE = join(import.meta.dirname, '../../../graphs/examples/linear-regression/program.json');
const PPO = join(import.meta.dirname, '../../../graphs/programs/ppo-cartpole/program.json');
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-program-seeds-'));
const quiet = { log: () => {} };

type Values = Record<string, number[]>;
interface Run extends Omit<ProgramTrainResult, 'state'> {
  values: Values;
}
const valuesOf = (r: ProgramTrainResult): Values => {
  const v = Object.fromEntries(Object.entries(r.state).map(([k, t]) => [k, Array.from(t.dataSync())]));
  tf.dispose(Object.values(r.state));
  return v;
};
const strip = ({ state: _s, ...r }: ProgramTrainResult): Omit<ProgramTrainResult, 'state'> => r;

async function single(cfg: ProgramConfig, seed: number, opts: { maxIterations?: number } = {}): Promise<Run> {
  const r = await trainProgram({ ...cfg, seed }, { outDir: tmp(), ...opts, ...quiet });
  return { ...strip(r), values: valuesOf(r) };
}

async function seeds(cfg: ProgramConfig, opts: Partial<ProgramSeedsOptions> & { seeds: number[] }): Promise<(Run & { seed: number; outDir: string })[]> {
  const rs = await trainProgramSeeds(cfg, { outDir: tmp(), ...quiet, ...opts });
  return rs.map((r) => ({ ...strip(r), seed: r.seed, outDir: r.outDir, values: valuesOf(r) }));
}

const graphMetrics = (rows: readonly MetricRow[]) => rows.map(({ steps_per_sec: _s, ...r }) => r);

/** Every metric of every row and every state value agree to float32 rounding (relative `tol`). */
function expectClose(a: Run, b: Run, tol: number): void {
  expect(a.iterations).toBe(b.iterations);
  expect(a.globalStep).toBe(b.globalStep);
  const am = graphMetrics(a.metrics);
  const bm = graphMetrics(b.metrics);
  expect(am.length).toBe(bm.length);
  am.forEach((row, i) => {
    expect(Object.keys(row)).toEqual(Object.keys(bm[i]!));
    for (const [k, v] of Object.entries(row)) {
      const w = bm[i]![k]!;
      if (v === null || w === null) expect(v).toBe(w);
      else expect(Math.abs(v - w), `${k} of row ${i + 1}: ${v} vs ${w}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(w)));
    }
  });
  expect(Object.keys(a.values)).toEqual(Object.keys(b.values));
  for (const [k, v] of Object.entries(a.values)) {
    const w = b.values[k]!;
    expect(v.length).toBe(w.length);
    const worst = Math.max(0, ...v.map((x, i) => Math.abs(x - w[i]!) / Math.max(1, Math.abs(w[i]!))));
    expect(worst, `state tensor ${k}`).toBeLessThanOrEqual(tol);
  }
}

describe('K seeds vmapped into one program equal K single-seed runs', () => {
  it('linear regression: metrics, final state and evaluation of seeds 1, 2, 3, and their files', async () => {
    const cfg = { ...loadProgram(EXAMPLE), total_steps: 16 * 12, checkpoint: { every: 5 }, logging: { every: 1 } };
    const many = await seeds(cfg, { seeds: [1, 2, 3] });
    for (const r of many) {
      const ref = await single(cfg, r.seed);
      expectClose(r, ref, 1e-5);
      for (const [k, v] of Object.entries(r.eval!)) expect(v).toBeCloseTo(ref.eval![k]!, 5);
      // What a single-seed run writes, in outDir/seed-<s>.
      expect(r.outDir).toMatch(new RegExp(`seed-${r.seed}$`));
      const rows = readFileSync(join(r.outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricRow);
      expect(graphMetrics(rows)).toEqual(graphMetrics(r.metrics));
      expect(readFileSync(join(r.outDir, 'metrics.csv'), 'utf8').split('\n')[0]).toBe('iteration,global_step,loss,env_steps,steps_per_sec');
      const ckpt = JSON.parse(readFileSync(join(r.outDir, 'checkpoint.json'), 'utf8')).body;
      expect(ckpt).toMatchObject({ format: 'loom-program-checkpoint', iteration: 12, global_step: 192, host: { seed: r.seed } });
      expect(Object.keys(ckpt.tensors.state)).toEqual(Object.keys(ref.values));
      expect(ckpt.tensors.state.w.shape).toEqual([4]);
      expect(JSON.parse(readFileSync(join(r.outDir, 'eval.json'), 'utf8'))).toMatchObject({ iteration: 12, ...r.eval });
      expect(readRunRecord(r.outDir)).toMatchObject({ status: 'finished', seed: r.seed, config: { seed: r.seed } });
    }
    // The seeds differ: each has its own init and key.
    expect(many[0]!.values.w).not.toEqual(many[1]!.values.w);
  });

  it('the loop mode runs each seed as a single-seed run does, bit for bit', async () => {
    const cfg = { ...loadProgram(EXAMPLE), total_steps: 16 * 4 };
    const looped = await seeds(cfg, { seeds: [5, 9], mode: 'loop' });
    for (const r of looped) {
      const ref = await single(cfg, r.seed);
      expect(r.values).toEqual(ref.values);
      expect(graphMetrics(r.metrics)).toEqual(graphMetrics(ref.metrics));
    }
  });

  it('PPO CartPole, 2 iterations of seeds 1, 2, 3: every metric and state tensor', async () => {
    const cfg = loadProgram(PPO);
    const many = await seeds(cfg, { seeds: [1, 2, 3], maxIterations: 2 });
    for (const r of many) expectClose(r, await single(cfg, r.seed, { maxIterations: 2 }), 1e-4);
    expect(many[0]!.metrics[1]!.loss).not.toBe(many[1]!.metrics[1]!.loss);
  }, 60_000);
});

describe('resume', () => {
  it('6 iterations straight equal 3, then a resume of 3, bit for bit; a seed resumes alone from the vmapped checkpoint', async () => {
    const cfg = { ...loadProgram(EXAMPLE), total_steps: 16 * 6, checkpoint: { every: 2 } };
    const straight = await seeds(cfg, { seeds: [1, 2, 3] });
    const dir = tmp();
    const first = await seeds(cfg, { seeds: [1, 2, 3], outDir: dir, maxIterations: 3 });
    expect(first.every((r) => r.stopped && r.iterations === 3)).toBe(true);
    const resumed = await seeds(cfg, { seeds: [1, 2, 3], outDir: dir, resume: true });
    resumed.forEach((r, k) => {
      expect(r.iterations).toBe(6);
      expect(r.values).toEqual(straight[k]!.values);
      expect(graphMetrics(r.metrics)).toEqual(graphMetrics(straight[k]!.metrics));
      expect(readRunRecord(r.outDir)).toMatchObject({ status: 'finished', resumed_from: { iteration: 3, global_step: 48 } });
    });
    // Seed 2 alone, from its folder of the stopped K-seed run: a single-seed run's checkpoint.
    const alone = tmp();
    await seeds(cfg, { seeds: [1, 2], outDir: alone, maxIterations: 3 });
    const r = await trainProgram({ ...cfg, seed: 2 }, { outDir: join(alone, 'seed-2'), resume: true, ...quiet });
    expectClose({ ...strip(r), values: valuesOf(r) }, straight[1]!, 1e-5);
  });

  it("seeds whose checkpoints are at different iterations are refused, naming the seed; the loop mode resumes them", async () => {
    const cfg = { ...loadProgram(EXAMPLE), total_steps: 16 * 6 };
    const dir = tmp();
    await seeds(cfg, { seeds: [1, 2], outDir: dir, maxIterations: 2 });
    await trainProgram({ ...cfg, seed: 2 }, { outDir: join(dir, 'seed-2'), resume: true, maxIterations: 1, ...quiet }).then((r) => tf.dispose(Object.values(r.state)));
    const e = await loomErrAsync(() => trainProgramSeeds(cfg, { seeds: [1, 2], outDir: dir, resume: true, ...quiet }));
    expect(e.code).toBe('E_USAGE');
    expect(e.info.file).toMatch(/seed-2\/checkpoint\.json$/);
    expect(e.info.found).toBe("iteration 3 (48 env steps) in seed 2's checkpoint");
    expect(e.info.hint).toMatch(/--seeds-mode loop/);
    const looped = await seeds(cfg, { seeds: [1, 2], outDir: dir, resume: true, mode: 'loop' });
    expect(looped.map((r) => r.iterations)).toEqual([6, 6]);
  });
});

describe('the NaN stop and tensors', () => {
  it('names the seed that diverged first, not the first seed; every seed keeps its last good checkpoint', async () => {
    // With lr 2, seed 7 diverges in iteration 80 and seed 3 in iteration 88 (found by running each alone).
    const cfg = { ...loadProgram(TOY), hyper: { lr: 2 }, total_steps: 8 * 400, checkpoint: { every: 10 } };
    const e7 = await loomErrAsync(() => trainProgram({ ...cfg, seed: 7 }, { outDir: tmp(), ...quiet }));
    expect(e7.info.message).toMatch(/in iteration 80;/);
    const dir = tmp();
    const e = await loomErrAsync(() => trainProgramSeeds(cfg, { seeds: [3, 7], outDir: dir, ...quiet }));
    expect(e.code).toBe('E_NUMERIC');
    expect(e.info.message).toBe('seed 7: state tensor "w" became non-finite (NaN or Infinity) in iteration 80; the run of all 2 seeds stops, and their checkpoints of iteration 70 are kept');
    expect(e.info.found).toBe('a non-finite value in "w" of seed 7 after iteration 80');
    for (const s of [3, 7]) {
      expect(JSON.parse(readFileSync(join(dir, `seed-${s}`, 'checkpoint.json'), 'utf8')).body).toMatchObject({ iteration: 70, host: { seed: s } });
      expect(readRunRecord(join(dir, `seed-${s}`))).toMatchObject({ status: 'failed', error: { code: 'E_NUMERIC' } });
      expect(existsSync(join(dir, `seed-${s}`, 'eval.json'))).toBe(false);
    }
  });

  it('holds no tensors across iterations, and none after the run, vmapped or looped', async () => {
    for (const mode of ['vmap', 'loop'] as const) {
      // A first run compiles: the plan cache keeps each plan's constants and buffers for later runs.
      for (const r of await trainProgramSeeds(loadProgram(EXAMPLE), { outDir: tmp(), seeds: [1, 2, 3], mode, maxIterations: 1, ...quiet })) tf.dispose(Object.values(r.state));
      const before = tf.memory().numTensors;
      const counts: number[] = [];
      const rs = await trainProgramSeeds(loadProgram(EXAMPLE), { outDir: tmp(), seeds: [1, 2, 3], mode, maxIterations: 6, onMetrics: (_r, seed) => seed === 3 && counts.push(tf.memory().numTensors), ...quiet });
      rs.forEach((r) => tf.dispose(Object.values(r.state)));
      expect(counts.length, mode).toBe(6);
      expect(new Set(counts.slice(1)).size).toBe(1);
      expect(tf.memory().numTensors, mode).toBe(before);
    }
  });

  it('progress counts the env steps of all seeds', async () => {
    const seen: [number, number][] = [];
    const rs = await trainProgramSeeds({ ...loadProgram(EXAMPLE), total_steps: 16 * 2 }, { outDir: tmp(), seeds: [1, 2, 3], onProgress: (p) => seen.push([p.globalStep, p.totalSteps]), ...quiet });
    rs.forEach((r) => tf.dispose(Object.values(r.state)));
    expect(seen).toEqual([[48, 96], [96, 96]]);
  });
});

/** A program whose iterations take `seed` env steps: its init keeps key[1], which is the seed. */
function seedStepsProgram(): string {
  const dir = tmp();
  const write = (f: string, j: unknown) => writeFileSync(join(dir, f), JSON.stringify(j));
  write('init.graph.json', {
    graph: 'seed-steps-init',
    version: 1,
    inputs: { key: { dtype: 'int32', shape: [2] } },
    nodes: [
      { id: 'k1', op: 'slice', in: ['key'], attrs: { begin: [1], size: [1] } },
      { id: 'k1s', op: 'reshape', in: ['k1'], attrs: { shape: [] } },
      { id: 'n', op: 'cast', in: ['k1s'], attrs: { dtype: 'float32' } },
    ],
    outputs: { n: 'n' },
  });
  write('iteration.graph.json', {
    graph: 'seed-steps-iteration',
    version: 1,
    inputs: { n: { dtype: 'float32', shape: [] } },
    nodes: [
      { id: 'zero', op: 'const', attrs: { value: 0 } },
      { id: 'steps', op: 'add', in: ['n', 'zero'] },
    ],
    outputs: { n: 'n', env_steps: 'steps' },
  });
  write('program.json', { program: 'seed-steps', init: 'init.graph.json', iteration: 'iteration.graph.json', total_steps: 12 });
  return join(dir, 'program.json');
}

describe('env steps that differ between seeds', () => {
  it('stop a vmapped run in its first iteration, naming both seeds; the loop mode runs each seed its own number of iterations', async () => {
    const cfg = loadProgram(seedStepsProgram());
    const e = await loomErrAsync(() => trainProgramSeeds(cfg, { outDir: tmp(), seeds: [3, 4], ...quiet }));
    expect(e.code).toBe('E_NUMERIC');
    expect(e.info.message).toBe('iteration 1 reported env_steps = 3 for seed 3 but 4 for seed 4; seeds vmapped into one program take their iterations together, so their env steps must agree');
    expect(e.info.hint).toMatch(/--seeds-mode loop/);
    const looped = await seeds(cfg, { seeds: [3, 4], mode: 'loop' });
    expect(looped.map((r) => [r.seed, r.iterations, r.globalStep])).toEqual([[3, 4, 12], [4, 3, 12]]);
  });
});

describe('seed lists', () => {
  it('refuses none, too many, duplicates and values outside [0, 2^31)', async () => {
    const cfg = loadProgram(TOY);
    const bad = async (list: number[]) => loomErrAsync(() => trainProgramSeeds(cfg, { outDir: tmp(), seeds: list, ...quiet }));
    expect((await bad([])).info.message).toBe('a run needs at least one seed');
    const many = await bad(Array.from({ length: MAX_SEEDS + 1 }, (_v, i) => i));
    expect(many.info.message).toBe(`at most ${MAX_SEEDS} seeds run together`);
    expect((await bad([1, 2, 1])).info.message).toBe('seed 1 is given twice');
    expect((await bad([2 ** 31])).code).toBe('E_USAGE');
  });
});
