/**
 * The program driver on the toy SGD program (test/fixtures/program) and the linear-regression
 * example: executors agree, resume is bit-identical, non-finite state stops the run with the last
 * good checkpoint kept, checkpoints that do not fit are refused without loss, and no tensor leaks.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initParams, interpret, type TensorMap } from '../../../runtime/interpreter.ts';
import { loadProgram, loadProgramGraphs, type ProgramConfig } from '../../../runtime/program/config.ts';
import { evalKey, initKey, trainProgram, type ProgramTrainOptions, type ProgramTrainResult } from '../../../runtime/program/driver.ts';
import type { MetricRow } from '../../../runtime/program/metrics.ts';
import { readRunRecord } from '../../../runtime/pipeline/run-record.ts';
import { loomErrAsync } from '../../helpers/loom-error.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const TOY = join(import.meta.dirname, '../../fixtures/program/toy.program.json');
const EXAMPLE = join(import.meta.dirname, '../../../graphs/examples/linear-regression/program.json');
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-program-run-'));
const toy = (over: Partial<ProgramConfig> = {}): ProgramConfig => ({ ...loadProgram(TOY), ...over });

async function run(cfg: ProgramConfig, opts: Partial<ProgramTrainOptions> & { outDir?: string } = {}): Promise<ProgramTrainResult & { values: Record<string, number[]> }> {
  const r = await trainProgram(cfg, { outDir: tmp(), ...opts });
  const values = Object.fromEntries(Object.entries(r.state).map(([k, t]) => [k, Array.from(t.dataSync())]));
  tf.dispose(Object.values(r.state));
  return { ...r, values };
}

const graphMetrics = (rows: readonly MetricRow[]) => rows.map(({ steps_per_sec: _s, ...r }) => r);

describe('the iteration loop', () => {
  it('runs until env_steps reach total_steps, logging every metric by its name, NaN as null', async () => {
    const r = await run(toy());
    // 48 steps at 8 env steps per iteration.
    expect(r.iterations).toBe(6);
    expect(r.globalStep).toBe(48);
    expect(r.metrics.map((m) => [m.iteration, m.global_step, m.env_steps, m.episode_return])).toEqual([1, 2, 3, 4, 5, 6].map((i) => [i, 8 * i, 8, null]));
    expect(r.values.count).toEqual([6]);
  });

  it('matches iterating the graphs by hand with the reference interpreter', async () => {
    // The reference: init with initParams and key [0, seed], then the iteration graph fed its own state back.
    const cfg = toy({ total_steps: 24 });
    const g = loadProgramGraphs(cfg);
    const params = initParams(g.init, cfg.seed);
    let state: TensorMap = interpret(g.init, { key: tf.tensor(initKey(cfg.seed), [2], 'int32') }, params);
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const out = interpret(g.iteration, { ...state, lr: tf.scalar(cfg.hyper.lr!) }, {});
      losses.push(out.loss!.dataSync()[0]!);
      state = { w: out.w!, key: out.key!, count: out.count! };
    }
    const r = await run(cfg, { executor: 'interpret' });
    expect(r.values.w).toEqual(Array.from(state.w!.dataSync()));
    expect(r.values.key).toEqual(Array.from(state.key!.dataSync()));
    expect(r.metrics.map((m) => m.loss)).toEqual(losses);
  });

  it('the compiled executor agrees with the interpreter over several iterations', async () => {
    const cfg = { ...loadProgram(EXAMPLE), total_steps: 16 * 5 };
    const a = await run(cfg, { executor: 'compiled' });
    const b = await run(cfg, { executor: 'interpret' });
    expect(a.values.key).toEqual(b.values.key);
    expect(a.values.step).toEqual([5]);
    expect(b.values.step).toEqual([5]);
    for (const k of ['w', 'b', 'm_w', 'v_w', 'm_b', 'v_b']) a.values[k]!.forEach((v, i) => expect(v).toBeCloseTo(b.values[k]![i]!, 5));
    a.metrics.forEach((m, i) => expect(m.loss).toBeCloseTo(b.metrics[i]!.loss!, 4));
    expect(Object.keys(a.eval!)).toEqual(['mse', 'weight_error']);
    expect(a.eval!.mse).toBeCloseTo(b.eval!.mse!, 4);
  });

  it('evaluates at the end with the evaluate key, the state it names and eval.episodes', async () => {
    const r = await run(toy());
    const w = r.values.w!;
    expect(r.eval!.weight_error).toBeCloseTo((w[0]! - 1.5) ** 2 + (w[1]! - 1.5) ** 2, 5);
    expect(r.eval!.episodes).toBe(4);
    // The key is fold_in(PRNGKey(seed), 1): the reference interpreter on the final w with that key gives the same.
    const g = loadProgramGraphs(toy());
    const ref = interpret(g.evaluate!, { w: tf.tensor(w), key: tf.tensor(evalKey(3), [2], 'int32'), episodes: tf.scalar(4) }, {});
    expect(r.eval!.key_sum).toBe(ref.key_sum!.dataSync()[0]);
    expect(evalKey(3)).not.toEqual(initKey(3));
    expect((await run(toy({ eval: { episodes: 0 } }))).eval).toBeNull();
  });

  it('holds no tensors across iterations, and none after the run', async () => {
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    const r = await trainProgram(loadProgram(EXAMPLE), { outDir: tmp(), maxIterations: 8, onMetrics: () => counts.push(tf.memory().numTensors) });
    tf.dispose(Object.values(r.state));
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('checkpoints and --resume', () => {
  it('6 iterations straight equal 3, then a resume of 3: state tensors and metrics bit for bit', async () => {
    const cfg = { ...loadProgram(EXAMPLE), total_steps: 16 * 6, checkpoint: { every: 2 } };
    const a = await run(cfg);
    const dir = tmp();
    const first = await run(cfg, { outDir: dir, maxIterations: 3 });
    expect(first.stopped).toBe(true);
    expect(readRunRecord(dir)?.status).toBe('stopped');
    const b = await run(cfg, { outDir: dir, resume: true });
    expect(b.iterations).toBe(6);
    expect(b.values).toEqual(a.values);
    expect(graphMetrics(b.metrics)).toEqual(graphMetrics(a.metrics));
    const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricRow);
    expect(graphMetrics(rows)).toEqual(graphMetrics(a.metrics));
    expect(readRunRecord(dir)).toMatchObject({ status: 'finished', resumed_from: { iteration: 3, global_step: 48 } });
  });

  it('a corrupt checkpoint is a clear error and stays as it was', async () => {
    const dir = tmp();
    await run(toy(), { outDir: dir, maxIterations: 2 });
    const file = join(dir, 'checkpoint.json');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace('"iteration":2', '"iteration":3'));
    const e = await loomErrAsync(() => trainProgram(toy(), { outDir: dir, resume: true }));
    expect(e.code).toBe('E_IO');
    expect(e.message).toMatch(/checkpoint .* is corrupt: its checksum does not match/);
    expect(readFileSync(file, 'utf8')).toBe(text.replace('"iteration":2', '"iteration":3'));
  });

  it("a checkpoint of another program's state is refused, naming the differences, and kept", async () => {
    const dir = tmp();
    await run(toy(), { outDir: dir, maxIterations: 1 });
    const file = join(dir, 'checkpoint.json');
    const text = readFileSync(file, 'utf8');
    const e = await loomErrAsync(() => trainProgram(loadProgram(EXAMPLE), { outDir: dir, resume: true, force: true }));
    expect(e.code).toBe('E_SCHEMA');
    expect(e.info.found).toMatch(/pipeline: "toy" in the checkpoint, "linear-regression" here/);
    expect(e.info.found).toMatch(/tensors\.state\.w: float32\[2\] in the checkpoint, float32\[4\] here/);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('--resume with other settings than run.json records is refused without --force', async () => {
    const dir = tmp();
    await run(toy(), { outDir: dir, maxIterations: 1 });
    const e = await loomErrAsync(() => trainProgram(toy({ hyper: { lr: 0.1 } }), { outDir: dir, resume: true }));
    expect(e.code).toBe('E_USAGE');
    expect(e.info.found).toMatch(/hyper\.lr: 0\.05 -> 0\.1/);
  });

  it('Ctrl-C (shouldStop) saves a checkpoint and stops', async () => {
    const dir = tmp();
    let n = 0;
    const r = await run(toy(), { outDir: dir, shouldStop: () => ++n > 2 });
    expect(r).toMatchObject({ stopped: true, iterations: 2, globalStep: 16 });
    expect(JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')).body).toMatchObject({ iteration: 2, global_step: 16 });
  });
});

describe('the NaN stop', () => {
  it('a diverging state stops the run, naming the tensor and the iteration; the last good checkpoint stays', async () => {
    const dir = tmp();
    const cfg = toy({ hyper: { lr: 1000 }, total_steps: 8 * 100, checkpoint: { every: 2 } });
    const e = await loomErrAsync(() => trainProgram(cfg, { outDir: dir }));
    expect(e.code).toBe('E_NUMERIC');
    // Every iteration before the bad one was logged (logging.every 1).
    const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as MetricRow);
    const bad = rows.length + 1;
    expect(bad).toBeGreaterThan(2);
    expect(e.info).toMatchObject({ pointer: '/outputs/w', node: 'w_new' });
    expect(e.info.message).toContain(`state tensor "w" became non-finite (NaN or Infinity) in iteration ${bad}`);
    const good = 2 * Math.floor((bad - 1) / 2);
    expect(e.info.message).toContain(`its checkpoint of iteration ${good} is kept`);
    const body = JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')).body;
    expect(body.iteration).toBe(good);
    const w = new Float32Array(Uint8Array.from(Buffer.from(body.tensors.state.w.data, 'base64')).buffer);
    expect(Array.from(w).every(Number.isFinite)).toBe(true);
    expect(readRunRecord(dir)).toMatchObject({ status: 'failed', error: { code: 'E_NUMERIC' } });
    expect(existsSync(join(dir, 'eval.json'))).toBe(false);
  });
});
