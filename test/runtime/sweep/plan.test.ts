/** Sweep files: validation located in the sweep file, and deterministic expansion into jobs. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { folderName, loadSweep, planSweep } from '../../../runtime/sweep/plan.ts';
import { loomErr } from '../../helpers/loom-error.ts';
import { writeTinyPipeline } from '../../helpers/tiny-pipeline.ts';

const dir = mkdtempSync(join(tmpdir(), 'loom-plan-'));
const pipeline = writeTinyPipeline(dir);
const file = join(dir, 'sweep.json');
const plan = (over: Record<string, unknown>) => planSweep({ sweep: 's', pipeline: 'p.json', ...over }, file);

describe('grid', () => {
  it('is the cartesian product in key order, the last key fastest, each with every seed', () => {
    const p = plan({ grid: { 'optimizer.lr': [0.001, 0.01], 'update.ent_coef': [0, 0.01, 0.1] }, seeds: 2, budget: { steps: 32 } });
    expect(p.configs.map((c) => c.id)).toEqual([
      'lr=0.001,ent_coef=0', 'lr=0.001,ent_coef=0.01', 'lr=0.001,ent_coef=0.1',
      'lr=0.01,ent_coef=0', 'lr=0.01,ent_coef=0.01', 'lr=0.01,ent_coef=0.1',
    ]);
    expect(p.jobs.map((j) => j.id).slice(0, 3)).toEqual(['lr=0.001,ent_coef=0/s1', 'lr=0.001,ent_coef=0/s2', 'lr=0.001,ent_coef=0.01/s1']);
    expect(p.jobs[5]).toMatchObject({ pipeline, seed: 2, steps: 32, dir: 'lr=0.001,ent_coef=0.1/s2', config: 'lr=0.001,ent_coef=0.1', overrides: ['optimizer.lr=0.001', 'update.ent_coef=0.1'] });
    expect(p.jobs).toHaveLength(12);
    // A list of positive numbers spanning 10x is plotted on a log axis.
    expect(p.params).toEqual([{ path: 'optimizer.lr', label: 'lr', log: true }, { path: 'update.ent_coef', label: 'ent_coef', log: false }]);
  });

  it('ranges include max when it falls on the grid, without float drift in ids', () => {
    const p = plan({ grid: { 'update.clip_coef': { range: { min: 0.1, max: 0.3, step: 0.1 } } } });
    expect(p.configs.map((c) => c.values['update.clip_coef'])).toEqual([0.1, 0.2, 0.3]);
    expect(p.configs.map((c) => c.id)).toEqual(['clip_coef=0.1', 'clip_coef=0.2', 'clip_coef=0.3']);
    expect(plan({ grid: { 'update.epochs': { range: { min: 1, max: 4.5, step: 2 } } } }).configs.map((c) => c.values['update.epochs'])).toEqual([1, 3]);
  });

  it('seeds as a list; common overrides come first in every job; no swept field gives one configuration', () => {
    const p = plan({ seeds: [7, 3], overrides: { 'update.epochs': 1 } });
    expect(p.configs.map((c) => c.id)).toEqual(['base']);
    expect(p.jobs.map((j) => [j.id, j.overrides])).toEqual([['base/s7', ['update.epochs=1']], ['base/s3', ['update.epochs=1']]]);
  });

  it('ids are safe folder names and unique', () => {
    expect(folderName('a/b=../x')).toBe('a_b=__x');
    expect(folderName('..')).toBe('_');
    expect(folderName('-x')).toBe('_-x');
    const p = plan({ grid: { doc: ['a/b', 'a?b'] } });
    expect(p.configs.map((c) => c.id)).toEqual(['doc=a_b', 'doc=a_b_2']);
    // Fields with the same last key keep their whole paths.
    const q = plan({ grid: { 'optimizer.eps': [1e-5], 'normalize.clip': [5], 'update.clip_coef': [0.2] } });
    expect(q.configs[0]!.id).toBe('eps=0.00001,clip=5,clip_coef=0.2');
  });
});

describe('random', () => {
  const spec = (seed: number, samples = 6) => ({ random: { samples, seed, params: { 'optimizer.lr': { log_uniform: [1e-5, 1e-1] }, 'update.clip_coef': { uniform: [0.1, 0.3] }, 'update.epochs': { choice: [1, 2, 4] } } } });

  it('is reproducible from its seed, and another seed draws other values', () => {
    const a = plan(spec(1));
    expect(plan(spec(1)).configs).toEqual(a.configs);
    expect(plan(spec(2)).configs.map((c) => c.values)).not.toEqual(a.configs.map((c) => c.values));
    expect(a.configs).toHaveLength(6);
    for (const c of a.configs) {
      expect([1, 2, 4]).toContain(c.values['update.epochs']);
      expect(c.values['update.clip_coef']).toBeGreaterThanOrEqual(0.1);
      expect(c.values['update.clip_coef']).toBeLessThanOrEqual(0.3);
    }
    expect(a.params.map((p) => [p.label, p.log])).toEqual([['lr', true], ['clip_coef', false], ['epochs', false]]);
    // Ids show 4 significant digits; the overrides carry the exact draw.
    const lr = a.configs[0]!.values['optimizer.lr'] as number;
    expect(a.configs[0]!.id.startsWith(`lr=${Number(lr.toPrecision(4))},`)).toBe(true);
    expect(a.jobs[0]!.overrides[0]).toBe(`optimizer.lr=${JSON.stringify(lr)}`);
  });

  it('log_uniform stays in its bounds and is uniform in the logarithm: each decade gets a quarter', () => {
    const p = plan({ random: { samples: 1000, seed: 5, params: { 'optimizer.lr': { log_uniform: [1e-5, 1e-1] } } } });
    const xs = p.configs.map((c) => c.values['optimizer.lr'] as number);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(1e-5);
    expect(Math.max(...xs)).toBeLessThanOrEqual(1e-1);
    // Binomial(1000, 1/4): sd 13.7, so 250 ± 60 fails by chance with probability < 1e-5.
    for (let d = -5; d < -1; d++) {
      const n = xs.filter((x) => x >= 10 ** d && x < 10 ** (d + 1)).length;
      expect(Math.abs(n - 250)).toBeLessThan(60);
    }
  });

  it('combines with a grid: every grid point with every sample', () => {
    const p = plan({ grid: { 'update.epochs': [1, 2] }, random: { samples: 3, params: { 'optimizer.lr': { uniform: [0.001, 0.002] } } } });
    expect(p.configs.map((c) => c.values['update.epochs'])).toEqual([1, 1, 1, 2, 2, 2]);
    expect(p.configs.slice(0, 3).map((c) => c.values['optimizer.lr'])).toEqual(p.configs.slice(3).map((c) => c.values['optimizer.lr']));
  });
});

describe('errors name the sweep file and the pointer', () => {
  it('schema violations', () => {
    const e = loomErr(() => plan({ grid: { 'optimizer.lr': [] } }));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', file, pointer: '/grid/optimizer.lr' });
    expect(loomErr(() => plan({ sweep: '../x' })).info).toMatchObject({ code: 'E_SCHEMA', pointer: '/sweep' });
    expect(loomErr(() => plan({ metric: 'steps_to_threshold' })).info).toMatchObject({ code: 'E_SCHEMA', file });
    expect(loomErr(() => planSweep({ pipeline: 'p.json' }, file)).info).toMatchObject({ code: 'E_SCHEMA', file, pointer: '/' });
  });

  it('a field the pipeline does not have, with the nearest one', () => {
    const e = loomErr(() => plan({ grid: { lr: [0.1] } }));
    expect(e.info).toMatchObject({ code: 'E_USAGE', file, pointer: '/grid/lr', found: 'lr' });
    expect(e.info.hint).toContain('optimizer.lr');
    expect(loomErr(() => plan({ random: { samples: 2, params: { 'update.epoch': { choice: [1] } } } })).info).toMatchObject({ file, pointer: '/random/params/update.epoch' });
    expect(loomErr(() => plan({ overrides: { 'update.epoch': 1 } })).info).toMatchObject({ file, pointer: '/overrides/update.epoch' });
  });

  it('a value the pipeline rejects names the value in the sweep file', () => {
    const e = loomErr(() => plan({ grid: { 'update.epochs': [2, 'many'] } }));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', file, pointer: '/grid/update.epochs/1' });
    expect(e.message).toContain('/update/epochs');
  });

  it('bad intervals and ranges, and plans over budget', () => {
    expect(loomErr(() => plan({ random: { samples: 2, params: { 'optimizer.lr': { log_uniform: [0, 1] } } } })).info).toMatchObject({ code: 'E_SCHEMA', pointer: '/random/params/optimizer.lr/log_uniform/0' });
    expect(loomErr(() => plan({ random: { samples: 2, params: { 'optimizer.lr': { uniform: [2, 1] } } } })).info).toMatchObject({ pointer: '/random/params/optimizer.lr/uniform' });
    expect(loomErr(() => plan({ grid: { 'optimizer.lr': { range: { min: 1, max: 0, step: 0.1 } } } })).info).toMatchObject({ pointer: '/grid/optimizer.lr/range' });
    expect(loomErr(() => plan({ grid: { 'optimizer.lr': { range: { min: 0, max: 1, step: 1e-6 } } } })).info).toMatchObject({ code: 'E_SIZE', pointer: '/grid/optimizer.lr/range' });
    expect(loomErr(() => plan({ grid: { 'update.epochs': [1, 2, 3] }, seeds: 2, budget: { max_runs: 5 } })).info).toMatchObject({ code: 'E_SCHEMA', pointer: '/budget/max_runs', found: '6' });
  });

  it('the base pipeline must exist and lie under the allowed folders', () => {
    expect(loomErr(() => plan({ pipeline: 'nope.json' })).info).toMatchObject({ code: 'E_IO', file, pointer: '/pipeline' });
    expect(loomErr(() => plan({ pipeline: '/etc/passwd' })).info).toMatchObject({ code: 'E_IO', file, pointer: '/pipeline' });
  });

  it('an unparsable sweep file is named, not echoed', () => {
    const f = join(dir, 'bad.json');
    writeFileSync(f, '{"sweep": "SECRET-TOKEN", ');
    const e = loomErr(() => loadSweep(f));
    expect(e.info.code).toBe('E_JSON');
    expect(e.message).not.toContain('SECRET');
  });
});
