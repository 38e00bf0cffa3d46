/**
 * Resuming after kill -9: metrics.jsonl may end in a partial line or hold rows logged after the
 * last checkpoint, and writes cut short leave `<file>.tmp-<pid>-<ms>` files. A resume repairs the
 * first, removes the second, and ends with the metrics of an uninterrupted run.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compare } from '../../../runtime/compare.ts';
import { train } from '../../../runtime/pipeline/driver.ts';
import { rowsForResume, type IterationMetrics } from '../../../runtime/pipeline/metrics.ts';
import { tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-resume-'));
const strip = (ms: readonly IterationMetrics[]) => ms.map(({ steps_per_sec: _s, ...r }) => r);
const row = (iteration: number) => JSON.stringify({ iteration, global_step: iteration * 16 });

describe('metrics.jsonl on --resume', () => {
  it('a row past the checkpoint and a partial last line are dropped, with one line saying so; the resumed metrics equal an uninterrupted run', async () => {
    const a = await train(tiny(), { outDir: tmp() });
    expect(a.iterations).toBe(4);
    const dir = tmp();
    tf.dispose(Object.values((await train(tiny(), { outDir: dir, maxIterations: 2 })).params));
    // kill -9 after iteration 3 was logged (no checkpoint since 2) and while iteration 4 was being appended.
    const jsonl = join(dir, 'metrics.jsonl');
    appendFileSync(jsonl, JSON.stringify(a.metrics[2]) + '\n' + JSON.stringify(a.metrics[3]).slice(0, 40));
    appendFileSync(join(dir, 'metrics.csv'), '3,48,0.0001\n4,6');
    const notes: string[] = [];
    const b = await train(tiny(), { outDir: dir, resume: true, log: (l) => notes.push(l) });
    expect(b.iterations).toBe(4);
    expect(strip(b.metrics)).toEqual(strip(a.metrics));
    const fileRows = readFileSync(jsonl, 'utf8').split('\n');
    expect(fileRows.pop()).toBe('');
    expect(strip(fileRows.map((l) => JSON.parse(l) as IterationMetrics))).toEqual(strip(a.metrics));
    const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
    expect(csv.map((l) => l.split(',')[0])).toEqual(['iteration', '1', '2', '3', '4']);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatch(/^resume: dropped the last 2 lines of .*metrics\.jsonl \(1 row past the checkpoint, 1 incomplete or unreadable line\).*iteration 2\n$/);
    tf.dispose([...Object.values(a.params), ...Object.values(b.params)]);
  });

  it('keeps the complete rows up to the checkpoint and drops from the first unreadable line on', () => {
    const f = 'run/metrics.jsonl';
    expect(rowsForResume(`${row(1)}\n${row(2)}\n`, 2, f)).toEqual({ rows: [JSON.parse(row(1)), JSON.parse(row(2))], dropped: null });
    expect(rowsForResume('', 2, f)).toEqual({ rows: [], dropped: null });
    const garbage = rowsForResume(`${row(1)}\n\0\0\0\n${row(2)}\n`, 2, f);
    expect(garbage.rows.map((r) => r.iteration)).toEqual([1]);
    expect(garbage.dropped).toMatch(/dropped the last 2 lines of run\/metrics\.jsonl \(2 incomplete or unreadable lines \(from the first on\)\)/);
    for (const bad of ['[1]', 'null', '{"iteration":"2"}', '{"iteration":1.5}', row(1)])
      expect(rowsForResume(`${row(1)}\n${bad}\n`, 5, f).rows.map((r) => r.iteration)).toEqual([1]);
    expect(rowsForResume(`${row(1)}\n${row(2)}\n${row(3)}\n`, 1, f).dropped).toMatch(/\(2 rows past the checkpoint\)/);
    expect(rowsForResume(`{"itera`, 1, f)).toEqual({ rows: [], dropped: expect.stringMatching(/1 incomplete or unreadable line\)/) });
  });

  it("does not echo the file's contents", () => {
    expect(rowsForResume(`${row(1)}\nSECRET-TEXT\n`, 1, 'm.jsonl').dropped).not.toContain('SECRET');
  });
});

describe('stale temp files', () => {
  it('a run start (fresh or --resume) removes the temps of its own files only', async () => {
    const dir = tmp();
    const plant = () => {
      for (const f of ['checkpoint.json.tmp-4242-1700000000000', 'metrics.jsonl.tmp-1-2', 'learning-curve.svg.tmp-3-4', 'notes.txt.tmp-1-2'])
        writeFileSync(join(dir, f), '{"half');
    };
    plant();
    tf.dispose(Object.values((await train(tiny(), { outDir: dir, maxIterations: 1 })).params));
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual(['notes.txt.tmp-1-2']);
    plant();
    tf.dispose(Object.values((await train(tiny(), { outDir: dir, resume: true })).params));
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual(['notes.txt.tmp-1-2']);
  });

  it('loom compare removes them in DIR and in every run folder', async () => {
    const dir = tmp();
    mkdirSync(join(dir, 'tiny', 's1'), { recursive: true });
    writeFileSync(join(dir, 'compare.md.tmp-1-2'), '');
    writeFileSync(join(dir, 'tiny', 's1', 'checkpoint.json.tmp-1-2'), '');
    await compare([tiny()], { outDir: dir, seeds: [1] });
    expect(readdirSync(dir).sort()).toEqual(['compare.csv', 'compare.json', 'compare.md', 'compare.svg', 'profiles.svg', 'tiny']);
    expect(readdirSync(join(dir, 'tiny', 's1')).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});
