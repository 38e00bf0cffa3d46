/**
 * `loom calibrate --backend webgpu`: the measurements read their results with `await data()` (the
 * GPU queue has run when it returns; `dataSync` throws on webgpu in Node) and the profile names
 * the adapter it was measured on. Runs on whatever adapter the machine has (a software one here).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { validateProfile } from '../../compiler/cost/profile.ts';
import { timeOp } from '../../runtime/calibrate.ts';
import { loom } from '../helpers/cli.ts';
import { startWebgpu } from '../helpers/webgpu.ts';

const choice = await startWebgpu('webgpu calibration');

describe.skipIf(!choice)('loom calibrate on webgpu', () => {
  afterEach(() => vi.restoreAllMocks());

  it('ends every timed batch with one awaited read of its last result', async () => {
    const x = tf.ones([1024]);
    const read = vi.spyOn(tf.Tensor.prototype, 'data');
    const made: tf.Tensor[] = [];
    const s = await timeOp(() => (made.push(tf.add(x, x)), made[made.length - 1]!), 4, 3, 2);
    // 2 warm-up + 3 timed batches of 4 calls: one read per batch, of the batch's last tensor.
    expect(made).toHaveLength(20);
    expect(read).toHaveBeenCalledTimes(5);
    expect(read.mock.contexts).toEqual([3, 7, 11, 15, 19].map((i) => made[i]));
    expect(s).toBeGreaterThan(0);
    x.dispose();
  });

  it('writes a valid profile of the webgpu backend that names the adapter', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'loom-cal-')), 'webgpu.json');
    const r = await loom('calibrate', '--backend', 'webgpu', '--quick', '--out', file);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`wrote ${file}\n`);
    const p = validateProfile(JSON.parse(readFileSync(file, 'utf8')), file);
    expect(p.name).toBe('calibrated-webgpu');
    expect(p.description).toContain(choice!.adapter!.description);
    expect((p.measured as { backend: string }).backend).toBe('webgpu');
    const ms = (p.measured as { measurements: { what: string; size: number; rate?: number }[] }).measurements;
    // The peak and the bandwidth are the best of the measured sizes.
    expect(p.peakFlops.float32).toBe(Math.max(...ms.filter((m) => m.what === 'matmul').map((m) => m.rate!)));
    expect(p.memoryBandwidth).toBe(Math.max(...ms.filter((m) => m.what === 'elementwise-add').map((m) => m.rate!)));
    // Products are the library's on webgpu: no own product, no transposed copies.
    expect(p.rates!.ownProduct2d).toBe(false);
    expect(p.rates!.matmulCopiesTransposed).toBe(false);
  }, 120_000);
});
