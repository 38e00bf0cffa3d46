/** The public API (index.ts), in-process on the sources: the same functions the package exports. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { check, evaluate, GRAPHS_DIR, initBackend, runGraph, train, trainProgram, trainProgramSeeds, type IterationMetrics, type MetricRow } from '../index.ts';
import { tf } from '../runtime/backend.ts';
import { initParams, interpret } from '../runtime/interpreter.ts';
import { loadGraph } from '../compiler/frontend/load.ts';
import { tinyPipeline } from './helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await initBackend('cpu', () => {});
});

describe('runGraph', () => {
  const file = join(GRAPHS_DIR, 'examples/affine.graph.json');
  const x = [[1, 2, 3], [-1, 0, 0.5]];

  it('gives the interpreter\'s outputs, compiled and interpreted', () => {
    const g = loadGraph(file);
    const params = initParams(g, 1);
    const input = tf.tensor2d(x);
    const want = interpret(g, { x: input }, params).y!.arraySync() as number[][];
    tf.dispose([input, ...Object.values(params)]);
    const compiled = runGraph(file, { inputs: { x }, seed: 1 }).y as number[][];
    const interpreted = runGraph(file, { inputs: { x }, seed: 1, compiled: false }).y as number[][];
    expect(interpreted).toEqual(want);
    want.flat().forEach((v, i) => expect(compiled.flat()[i]).toBeCloseTo(v, 6));
    // Closed form: w = 0.5, b = 0, so y = tanh(0.5 * sum(x)) / 2.
    expect(compiled[0]![0]).toBeCloseTo(Math.tanh(3) / 2, 6);
  });

  it('releases every tensor it makes', () => {
    const before = tf.memory().numTensors;
    runGraph(file, { inputs: { x } });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('check', () => {
  it('returns a graph with its signature, or a pipeline with its graphs', () => {
    const g = check(join(GRAPHS_DIR, 'examples/affine.graph.json'));
    expect(g.kind === 'graph' && g.signature).toContain('output y: float32[B, 2]');
    const p = check(join(GRAPHS_DIR, 'pipelines/ppo-cartpole.json'));
    expect(p.kind === 'pipeline' && p.pipeline.algorithm).toBe('ppo');
  });
});

describe('train', () => {
  it('hands onMetrics the row of every iteration, the rows metrics.jsonl holds', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'loom-api-'));
    const rows: IterationMetrics[] = [];
    const r = await train(tinyPipeline(), { outDir, onMetrics: (row) => rows.push(row) });
    expect(rows.map((x) => x.iteration)).toEqual([1, 2, 3, 4]);
    const logged = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as IterationMetrics);
    expect(rows.map((x) => [x.iteration, x.global_step, x.loss])).toEqual(logged.map((x) => [x.iteration, x.global_step, x.loss]));
    expect(r.iterations).toBe(4);
    expect('params' in r).toBe(false);
  });

  it('applies the steps override', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'loom-api-'));
    let n = 0;
    const r = await train(tinyPipeline(), { outDir, steps: 32, onMetrics: () => n++ });
    expect([n, r.globalStep]).toEqual([2, 32]);
  });
});

describe('evaluate', () => {
  it("plays a run's saved policy: with the defaults, the run's own final evaluation", async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'loom-api-'));
    const r = await train(join(GRAPHS_DIR, 'pipelines/ppo-cartpole.json'), { outDir, steps: 1024 });
    expect(r.eval?.returns.length).toBe(10);
    expect(evaluate(outDir)).toEqual(r.eval!.returns);
    const other = evaluate(outDir, { episodes: 3, seed: 7, deterministic: false });
    expect(other).toHaveLength(3);
    expect(other.every((x) => Number.isFinite(x) && x >= 1)).toBe(true);
  });
});

describe('program pipelines', () => {
  const file = join(GRAPHS_DIR, 'examples/linear-regression/program.json');

  it('check gives the state and the metrics', () => {
    const r = check(file);
    expect(r.kind).toBe('program');
    if (r.kind !== 'program') return;
    expect(r.state).toEqual(['w', 'b', 'key', 'm_w', 'v_w', 'm_b', 'v_b', 'step']);
    expect(r.metrics).toEqual(['loss', 'env_steps']);
  });

  it('trainProgram hands onMetrics every row, leaves no tensors, and writes what loom train writes', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'loom-api-program-'));
    const rows: MetricRow[] = [];
    // A first run compiles the graphs: the executor's plan cache keeps their constants for the process.
    await trainProgram(file, { outDir: mkdtempSync(join(tmpdir(), 'loom-api-program-')), maxIterations: 1 });
    const before = tf.memory().numTensors;
    const r = await trainProgram(file, { outDir, maxIterations: 4, onMetrics: (m) => rows.push(m) });
    expect(tf.memory().numTensors).toBe(before);
    expect(rows.map((m) => m.global_step)).toEqual([16, 32, 48, 64]);
    expect(r).toMatchObject({ stopped: true, iterations: 4, globalStep: 64, eval: null });
    expect(JSON.parse(readFileSync(join(outDir, 'checkpoint.json'), 'utf8')).body.iteration).toBe(4);
  });

  it('trainProgramSeeds runs seeds 2 and 7 into seed-2/ and seed-7/, handing onMetrics each row with its seed, and leaves no tensors', async () => {
    const outDir = mkdtempSync(join(tmpdir(), 'loom-api-program-seeds-'));
    await trainProgramSeeds(file, { outDir: mkdtempSync(join(tmpdir(), 'loom-api-program-seeds-')), seeds: [2, 7], maxIterations: 1 });
    const before = tf.memory().numTensors;
    const seen: [number, number][] = [];
    const r = await trainProgramSeeds(file, { outDir, seeds: [2, 7], maxIterations: 2, onMetrics: (m, seed) => seen.push([seed, m.iteration]) });
    expect(tf.memory().numTensors).toBe(before);
    expect(seen).toEqual([[2, 1], [7, 1], [2, 2], [7, 2]]);
    expect(r.map((s) => [s.seed, s.outDir, s.iterations])).toEqual([[2, join(outDir, 'seed-2'), 2], [7, join(outDir, 'seed-7'), 2]]);
    expect(JSON.parse(readFileSync(join(outDir, 'seed-7', 'checkpoint.json'), 'utf8')).body).toMatchObject({ iteration: 2, host: { seed: 7 } });
  });
});
