/**
 * A program run writes what a pipeline run writes beside metrics.jsonl: TensorBoard event files
 * whose scalars are the logged rows, and the learning curve of episodic_return. Single seed and
 * each seed-<s>/ of a run of several seeds. The event files are decoded by hand
 * (test/helpers/tensorboard.ts); the curve is checked against one drawn from rows and a rolling
 * mean computed here episode by episode.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { learningCurveSpec, renderSvg } from '../../../runtime/plot.ts';
import { loadProgram, type ProgramConfig } from '../../../runtime/program/config.ts';
import { trainProgram, trainProgramSeeds } from '../../../runtime/program/driver.ts';
import type { MetricRow } from '../../../runtime/program/metrics.ts';
import { loom } from '../../helpers/cli.ts';
import { marks, parseSvg, pathPoints } from '../../helpers/svg.ts';
import { eventFiles, expectedFromJsonl, sorted, tensorboardView } from '../../helpers/tensorboard.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const FIXTURE = join(import.meta.dirname, '../../fixtures/program');
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-program-out-'));

/**
 * The toy program with two more metrics: episodic_return (the count after the step, times 10,
 * NaN on odd counts: no episode finished) and episodes (the count), so the curve has points and
 * its rolling mean has weights.
 */
function returnsProgram(dir: string, over: Record<string, unknown> = {}): string {
  const it = JSON.parse(readFileSync(join(FIXTURE, 'iteration.graph.json'), 'utf8')) as { nodes: unknown[]; outputs: Record<string, string> };
  it.nodes.push(
    { id: 'ten', op: 'const', attrs: { value: 10 } },
    { id: 'ret_all', op: 'mul', in: ['count_new', 'ten'] },
    { id: 'two', op: 'const', attrs: { value: 2 } },
    { id: 'half', op: 'div', in: ['count_new', 'two'] },
    { id: 'half_floor', op: 'floor', in: ['half'] },
    { id: 'odd', op: 'not_equal', in: ['half', 'half_floor'] },
    { id: 'ret', op: 'where', in: ['odd', 'nan', 'ret_all'] },
  );
  const { episode_return: _e, ...outputs } = it.outputs;
  it.outputs = { ...outputs, episodic_return: 'ret', episodes: 'count_new' };
  writeFileSync(join(dir, 'iteration.graph.json'), JSON.stringify(it));
  for (const g of ['init', 'evaluate']) writeFileSync(join(dir, `${g}.graph.json`), readFileSync(join(FIXTURE, `${g}.graph.json`)));
  const file = join(dir, 'returns.program.json');
  const base = JSON.parse(readFileSync(join(FIXTURE, 'toy.program.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...base, program: 'returns', ...over }));
  return file;
}

const rowsOf = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricRow);

/** The reference rolling mean: every row expanded into its episodes, then the mean of the last `window`. */
function rollingByEpisodes(rows: readonly MetricRow[], window: number): (number | null)[] {
  const eps: number[] = [];
  return rows.map((r) => {
    if (r.episodic_return !== null) for (let k = 0; k < Math.max(1, r.episodes ?? 0); k++) eps.push(r.episodic_return!);
    const last = eps.slice(-window);
    return last.length ? last.reduce((a, b) => a + b, 0) / last.length : null;
  });
}

/** The run folder's event files show exactly metrics.jsonl, and its curve is the rows' curve. */
async function expectOutputs(dir: string, title: string): Promise<void> {
  expect(eventFiles(dir)).toHaveLength(1);
  const view = tensorboardView(dir);
  const rows = rowsOf(dir);
  expect(view.map((e) => e.step)).toEqual(rows.map((r) => r.global_step));
  expect(sorted(view)).toEqual(sorted(expectedFromJsonl(dir)));
  // Program metrics keep their names: CleanRL's tags where a pipeline has them, else loom/<name>.
  const tags = new Set(view.flatMap((e) => e.scalars.map(([t]) => t)));
  for (const t of ['charts/episodic_return', 'charts/SPS', 'loom/loss', 'loom/env_steps', 'loom/episodes']) expect(tags).toContain(t);

  const svg = readFileSync(join(dir, 'learning-curve.svg'), 'utf8');
  const smooth = rollingByEpisodes(rows, 20);
  const points = rows.flatMap((r, i) => (r.episodic_return === null ? [] : [{ step: r.global_step, raw: r.episodic_return!, smooth: smooth[i]! }]));
  expect(points.length).toBeGreaterThan(1);
  expect(svg).toBe(await renderSvg(learningCurveSpec({ title, points, window: 20 })));
  expect(marks(parseSvg(svg), 'line').flat().map((l) => pathPoints(l.attrs.d!).length)).toEqual([points.length, points.length]);
}

describe('TensorBoard event files and the learning curve of a program run', () => {
  it('a single-seed run writes both, from its metrics rows', async () => {
    const dir = tmp();
    const r = await trainProgram(loadProgram(returnsProgram(tmp())), { outDir: dir });
    tf.dispose(Object.values(r.state));
    expect(r.iterations).toBe(6);
    // Iterations with an odd count logged no return: their rows leave the tag out.
    expect(r.metrics.map((m) => m.episodic_return)).toEqual([null, 20, null, 40, null, 60]);
    await expectOutputs(dir, 'returns (seed 3)');
  });

  it('each seed-<s>/ of a run of several seeds holds its own, equal to its own rows', async () => {
    const dir = tmp();
    const cfg: ProgramConfig = { ...loadProgram(returnsProgram(tmp())), total_steps: 32 };
    const runs = await trainProgramSeeds(cfg, { outDir: dir, seeds: [3, 8] });
    for (const r of runs) tf.dispose(Object.values(r.state));
    expect(readdirSync(dir).sort()).toEqual(['seed-3', 'seed-8']);
    for (const s of [3, 8]) await expectOutputs(join(dir, `seed-${s}`), `returns (seed ${s})`);
    // The losses differ between seeds, and each folder's events hold its own.
    const loss = (s: number) => tensorboardView(join(dir, `seed-${s}`)).map((e) => e.scalars.find(([t]) => t === 'loom/loss')![1]);
    expect(loss(3)).not.toEqual(loss(8));
  });

  it('a program that logs no episodic_return gets event files and no curve; logging.tensorboard false writes no event file', async () => {
    const dir = tmp();
    const r = await trainProgram(loadProgram(join(FIXTURE, 'toy.program.json')), { outDir: dir });
    tf.dispose(Object.values(r.state));
    expect(sorted(tensorboardView(dir))).toEqual(sorted(expectedFromJsonl(dir)));
    expect(existsSync(join(dir, 'learning-curve.svg'))).toBe(false);
    const off = tmp();
    const q = await trainProgram(loadProgram(returnsProgram(tmp(), { logging: { tensorboard: false } })), { outDir: off });
    tf.dispose(Object.values(q.state));
    expect(eventFiles(off)).toEqual([]);
    expect(existsSync(join(off, 'learning-curve.svg'))).toBe(true);
  });

  it('loom train names the curve and the TensorBoard command', async () => {
    const dir = tmp();
    const r = await loom('train', returnsProgram(dir), '--backend', 'cpu', '--out', join(dir, 'run'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`metrics: ${join(dir, 'run')}/metrics.jsonl, ${join(dir, 'run')}/metrics.csv, ${join(dir, 'run')}/learning-curve.svg; run record: ${join(dir, 'run')}/run.json\n`);
    expect(r.out).toContain(`tensorboard: tensorboard --logdir ${join(dir, 'run')}\n`);
  });
});
