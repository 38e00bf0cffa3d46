/**
 * Resuming after kill -9: metrics.jsonl may end in a partial line or hold rows logged after the
 * last checkpoint, and writes cut short leave `<file>.tmp-<pid>-<ms>` files. A resume repairs the
 * first, removes the second, and ends with the metrics of an uninterrupted run.
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compare } from '../../../runtime/compare.ts';
import { train } from '../../../runtime/pipeline/driver.ts';
import { tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-resume-'));

describe('stale temp files', () => {
  it('a run start (fresh or --resume) removes the temps of its own files only', () => {
    const dir = tmp();
    const plant = () => {
      for (const f of ['checkpoint.json.tmp-4242-1700000000000', 'metrics.jsonl.tmp-1-2', 'learning-curve.svg.tmp-3-4', 'notes.txt.tmp-1-2'])
        writeFileSync(join(dir, f), '{"half');
    };
    plant();
    tf.dispose(Object.values(train(tiny(), { outDir: dir, maxIterations: 1 }).params));
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual(['notes.txt.tmp-1-2']);
    plant();
    tf.dispose(Object.values(train(tiny(), { outDir: dir, resume: true }).params));
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual(['notes.txt.tmp-1-2']);
  });

  it('loom compare removes them in DIR and in every run folder', () => {
    const dir = tmp();
    mkdirSync(join(dir, 'tiny', 's1'), { recursive: true });
    writeFileSync(join(dir, 'compare.md.tmp-1-2'), '');
    writeFileSync(join(dir, 'tiny', 's1', 'checkpoint.json.tmp-1-2'), '');
    compare([tiny()], { outDir: dir, seeds: [1] });
    expect(readdirSync(dir).sort()).toEqual(['compare.csv', 'compare.json', 'compare.md', 'compare.svg', 'tiny']);
    expect(readdirSync(join(dir, 'tiny', 's1')).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
