/**
 * TensorBoard event files beside metrics.jsonl, decoded here without the writer's libraries: the
 * TFRecord framing by hand, every masked CRC32C against a table-driven CRC32C, the Event protos
 * with a minimal wire-format reader. What TensorBoard would show (files in name order, a
 * SessionLog START discarding the events at and past its step) must equal metrics.jsonl.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { train } from '../../../runtime/pipeline/driver.ts';
import { METRIC_COLUMNS, tensorboardScalars, type IterationMetrics } from '../../../runtime/pipeline/metrics.ts';
import { loom } from '../../helpers/cli.ts';
import { CLEANRL, crc32c, decodeFile, eventFiles, expectedFromJsonl, sorted, tensorboardView } from '../../helpers/tensorboard.ts';
import { G, tinyPipeline as tiny, writeTinyPipeline } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-tb-'));

describe('TensorBoard event files', () => {
  it('the CRC32C of this test is the standard one', async () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
  });

  it('a run writes one event file beside metrics.jsonl: file_version first, then a Summary per row at its global step with CleanRL tags', async () => {
    const dir = tmp();
    const r = await train(tiny(), { outDir: dir });
    tf.dispose(Object.values(r.params));
    const files = eventFiles(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^events\.out\.tfevents\.\d{10}\.[^/]+\.\d+$/);
    const events = decodeFile(join(dir, files[0]!));
    expect(events[0]).toMatchObject({ step: 0, fileVersion: 'brain.Event:2', writer: 'tensorloom' });
    expect(events.slice(1).every((e) => e.scalars && e.sessionStatus === undefined)).toBe(true);
    for (const e of events) expect(Math.abs(e.wallTime - Date.now() / 1000)).toBeLessThan(86400);
    expect(events.slice(1).map((e) => e.step)).toEqual(r.metrics.map((m) => m.global_step));
    expect(sorted(tensorboardView(dir))).toEqual(sorted(expectedFromJsonl(dir)));
    const tags = new Set(events.flatMap((e) => e.scalars ?? []).map(([t]) => t));
    for (const t of ['charts/learning_rate', 'charts/SPS', 'losses/value_loss', 'losses/policy_loss', 'losses/entropy', 'losses/approx_kl', 'losses/clipfrac', 'loom/grad_norm', 'loom/loss', 'loom/episodes']) expect(tags).toContain(t);
    expect([...tags].filter((t) => !/^(charts|losses|loom)\//.test(t))).toEqual([]);
  });

  it('AM-PPO controller metrics are logged as loom/<name>', async () => {
    const dir = tmp();
    const amppo = { transform: { kind: 'amppo' } };
    tf.dispose(Object.values((await train(tiny({ advantage: amppo, total_steps: 32 }), { outDir: dir })).params));
    const tags = new Set(tensorboardView(dir).flatMap((e) => e.scalars.map(([t]) => t)));
    for (const t of ['loom/alpha_ema', 'loom/s_ema', 'loom/sat_mb']) expect(tags).toContain(t);
    expect(sorted(tensorboardView(dir))).toEqual(sorted(expectedFromJsonl(dir)));
  });

  it('on --resume after kill -9, a new file starts with a SessionLog START at the first redone step, and TensorBoard then shows exactly metrics.jsonl', async () => {
    const whole = tmp();
    const a = await train(tiny({ checkpoint: { every: 1 } }), { outDir: whole });
    const dir = tmp();
    tf.dispose(Object.values((await train(tiny({ checkpoint: { every: 1 } }), { outDir: dir, maxIterations: 2 })).params));
    const ckpt2 = join(dir, 'ckpt-2.json');
    copyFileSync(join(dir, 'checkpoint.json'), ckpt2);
    // Iteration 3 is logged (metrics.jsonl and event file), then the process dies before its
    // checkpoint: the checkpoint on disk is iteration 2's.
    tf.dispose(Object.values((await train(tiny({ checkpoint: { every: 1 } }), { outDir: dir, resume: true, maxIterations: 1 })).params));
    copyFileSync(ckpt2, join(dir, 'checkpoint.json'));
    const before = eventFiles(dir);
    expect(before).toHaveLength(2);
    const b = await train(tiny({ checkpoint: { every: 1 } }), { outDir: dir, resume: true });
    const files = eventFiles(dir);
    expect(files).toHaveLength(3);
    expect(files.slice(0, 2)).toEqual(before);
    const last = decodeFile(join(dir, files[2]!));
    expect(last[0]!.fileVersion).toBe('brain.Event:2');
    expect(last[1]).toMatchObject({ sessionStatus: 1, step: a.metrics[1]!.global_step + 1 });
    expect(last.slice(2).map((e) => e.step)).toEqual(a.metrics.slice(2).map((m) => m.global_step));
    // Without the purge TensorBoard would show iteration 3 twice.
    const view = tensorboardView(dir);
    expect(view.map((e) => e.step)).toEqual(a.metrics.map((m) => m.global_step));
    expect(sorted(view)).toEqual(sorted(expectedFromJsonl(dir)));
    // The values are those of an uninterrupted run (all but the speed).
    const noSps = (v: { step: number; scalars: [string, number][] }[]) => sorted(v).map((e) => ({ ...e, scalars: e.scalars.filter(([t]) => t !== 'charts/SPS') }));
    expect(noSps(view)).toEqual(noSps(tensorboardView(whole)));
    tf.dispose([...Object.values(a.params), ...Object.values(b.params)]);
  });

  it('a fresh start in a used folder replaces the earlier event files; logging.tensorboard: false writes none', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'events.out.tfevents.1700000000.old-host'), 'stale');
    writeFileSync(join(dir, 'notes.txt'), 'kept');
    tf.dispose(Object.values((await train(tiny({ total_steps: 16 }), { outDir: dir })).params));
    expect(eventFiles(dir)).toHaveLength(1);
    expect(eventFiles(dir)[0]).not.toContain('old-host');
    expect(readdirSync(dir)).toContain('notes.txt');
    const off = tmp();
    const r = await train(tiny({ total_steps: 16, logging: { tensorboard: false } }), { outDir: off });
    tf.dispose(Object.values(r.params));
    expect(r.metrics).toHaveLength(1);
    expect(eventFiles(off)).toEqual([]);
  });

  it('a value that metrics.jsonl writes as null (NaN, ±Infinity, no episode) is left out', async () => {
    const row = { iteration: 2, global_step: 32, lr: 1e-4, episodic_return: null, episodic_length: null, episodes: 0, loss: Infinity, pg_loss: -Infinity, v_loss: 0.5, entropy: 0.69, approx_kl: 0, clipfrac: 0, grad_norm: 1, grad_clip_frac: 1, explained_variance: NaN, steps_per_sec: 100 } satisfies IterationMetrics;
    const kept = Object.entries(JSON.parse(JSON.stringify(row)) as Record<string, unknown>).filter(([k, v]) => v !== null && k !== 'iteration' && k !== 'global_step');
    expect(tensorboardScalars(row, METRIC_COLUMNS).sort()).toEqual(kept.map(([k, v]) => [CLEANRL[k] ?? `loom/${k}`, v]).sort());
    expect(kept.map(([k]) => k)).not.toContain('explained_variance');
  });

  it('rows without a value (no episode finished) leave the tag out, as metrics.jsonl has null', async () => {
    const dir = tmp();
    tf.dispose(Object.values((await train(tiny({ total_steps: 16 }), { outDir: dir })).params));
    const [row] = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as IterationMetrics);
    expect(row!.episodic_return).toBeNull();
    const [ev] = tensorboardView(dir);
    expect(ev!.scalars.map(([t]) => t)).not.toContain('charts/episodic_return');
    expect(ev!.scalars.map(([t]) => t)).toContain('losses/value_loss');
    expect(sorted(tensorboardView(dir))).toEqual(sorted(expectedFromJsonl(dir)));
  });
});

describe('loom train and logging.tensorboard', () => {
  const pipelineFile = (dir: string, logging: unknown) =>
    writeTinyPipeline(dir, { pipeline: 'tb', update: { epochs: 1, minibatches: 1 }, total_steps: 16, seed: undefined, checkpoint: undefined, logging });

  it('prints how to open the run in TensorBoard; false writes no event file; a non-boolean is a schema error', async () => {
    const dir = tmp();
    const on = await loom('train', pipelineFile(dir, { every: 1 }), '--backend', 'cpu', '--out', join(dir, 'on'));
    expect(on.code).toBe(0);
    expect(on.out).toContain(`tensorboard: tensorboard --logdir ${join(dir, 'on')}\n`);
    expect(eventFiles(join(dir, 'on'))).toHaveLength(1);
    const off = await loom('train', pipelineFile(dir, { tensorboard: false }), '--backend', 'cpu', '--out', join(dir, 'off'));
    expect(off.code).toBe(0);
    expect(off.out).not.toContain('tensorboard');
    expect(eventFiles(join(dir, 'off'))).toEqual([]);
    const bad = await loom('train', pipelineFile(dir, { tensorboard: 'yes' }), '--backend', 'cpu', '--out', join(dir, 'bad'));
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^error\[E_SCHEMA\]/m);
    expect(bad.err).toContain('/logging/tensorboard');
  });
});
