/**
 * Program pipeline files: reading them (extends, --set, hostile files) and the contract between
 * the init, iteration and evaluate graphs, each violation reported at its file, pointer and node.
 * Variants of the toy program in test/fixtures/program are written to a temp folder and edited.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseOverride } from '../../../runtime/pipeline/config.ts';
import { isProgramFile, loadProgram, loadProgramGraphs } from '../../../runtime/program/config.ts';
import { loomErr } from '../../helpers/loom-error.ts';

const FIXTURE = join(import.meta.dirname, '../../fixtures/program');
const GRAPHS = ['init', 'iteration', 'evaluate'] as const;
type Json = Record<string, any>;

/** A copy of the toy program in a temp folder; `edit` changes a graph's JSON or the program's before they are written. */
function toy(edit: { program?: (j: Json) => void; init?: (j: Json) => void; iteration?: (j: Json) => void; evaluate?: (j: Json) => void } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'loom-program-'));
  for (const g of GRAPHS) {
    const j = JSON.parse(readFileSync(join(FIXTURE, `${g}.graph.json`), 'utf8')) as Json;
    edit[g]?.(j);
    writeFileSync(join(dir, `${g}.graph.json`), JSON.stringify(j));
  }
  const p = JSON.parse(readFileSync(join(FIXTURE, 'toy.program.json'), 'utf8')) as Json;
  edit.program?.(p);
  writeFileSync(join(dir, 'toy.program.json'), JSON.stringify(p));
  return join(dir, 'toy.program.json');
}

const check = (file: string, sets: string[] = []) => {
  const overrides = sets.map(parseOverride);
  return loadProgramGraphs(loadProgram(file, { overrides }), overrides);
};
const node = (j: Json, id: string) => j.nodes.find((n: Json) => n.id === id) as Json;

describe('the toy program as shipped', () => {
  it('loads, with its state, metrics and defaults', () => {
    const file = toy();
    expect(isProgramFile(file)).toBe(true);
    const cfg = loadProgram(file);
    expect(cfg).toMatchObject({ program: 'toy', hyper: { lr: 0.05 }, total_steps: 48, seed: 3, logging: { every: 1 }, checkpoint: { every: 0 }, eval: { episodes: 4 } });
    const g = loadProgramGraphs(cfg);
    // The iteration takes w as float32[D]: D is bound by the init graph's w.
    expect(g.state).toEqual({ w: { dtype: 'float32', shape: [2] }, key: { dtype: 'int32', shape: [2] }, count: { dtype: 'float32', shape: [] } });
    expect(g.metrics).toEqual(['loss', 'episode_return', 'env_steps']);
  });

  it('--set reaches hyper entries and top-level fields', () => {
    const cfg = loadProgram(toy(), { overrides: ['hyper.lr=1e-3', 'seed=9', 'total_steps=16'].map(parseOverride) });
    expect(cfg).toMatchObject({ hyper: { lr: 1e-3 }, seed: 9, total_steps: 16 });
  });

  it('a pipeline file is not a program file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-program-'));
    writeFileSync(join(dir, 'p.json'), JSON.stringify({ pipeline: 'x', extends: 'y.json' }));
    expect(isProgramFile(join(dir, 'p.json'))).toBe(false);
    expect(isProgramFile(join(dir, 'missing.json'))).toBe(false);
  });
});

describe('the contract between the graphs', () => {
  it('an iteration state input of another type than the init output: E_SHAPE at the input, expected vs found', () => {
    const e = loomErr(() => check(toy({ iteration: (j) => (j.inputs.count.shape = [1]) })));
    expect(e.code).toBe('E_SHAPE');
    expect(e.info.file).toMatch(/iteration\.graph\.json$/);
    expect(e.info.pointer).toBe('/inputs/count');
    expect(e.info.expected).toBe('float32[]');
    expect(e.info.found).toBe('float32[1]');
  });

  it('a dim bound to two sizes by two state inputs is an error', () => {
    const e = loomErr(() =>
      check(
        toy({
          init: (j) => (j.params.u = { shape: [5], init: 'zeros' }, (j.outputs.u = 'u')),
          iteration: (j) => ((j.inputs.u = { dtype: 'float32', shape: ['D'] }), (j.outputs.u = 'u')),
        }),
      ),
    );
    expect(e.code).toBe('E_SHAPE');
    expect(e.info.pointer).toBe('/inputs/u');
    expect(e.info.message).toMatch(/binds dim D to 5, but another state tensor bound it to 2/);
  });

  it('a state tensor the iteration does not output', () => {
    const e = loomErr(() => check(toy({ iteration: (j) => delete j.outputs.count })));
    expect(e.code).toBe('E_SCHEMA');
    expect(e.info.pointer).toBe('/outputs');
    expect(e.info.message).toMatch(/does not output state tensor "count"/);
  });

  it('a state tensor the iteration does not take', () => {
    const e = loomErr(() => check(toy({ init: (j) => (j.outputs.extra = 'count') })));
    expect(e.code).toBe('E_INPUT');
    expect(e.info.file).toMatch(/iteration\.graph\.json$/);
    expect(e.info.expected).toBe('an input "extra": float32[]');
  });

  it('a next state of another type: E_SHAPE at the output, naming its node', () => {
    const e = loomErr(() => check(toy({ iteration: (j) => (j.outputs.count = 'step') })));
    expect(e.code).toBe('E_SHAPE');
    expect(e.info).toMatchObject({ pointer: '/outputs/count', node: 'step', expected: 'float32[]', found: 'float32[2]' });
  });

  it('a metric that is not a float32 scalar', () => {
    const e = loomErr(() => check(toy({ iteration: (j) => (j.outputs.loss = 'sq') })));
    expect(e.code).toBe('E_SHAPE');
    expect(e.info).toMatchObject({ pointer: '/outputs/loss', node: 'sq', expected: 'float32[]', found: 'float32[8]' });
  });

  it('no env_steps metric, with a did-you-mean for a near name', () => {
    const e = loomErr(() => check(toy({ iteration: (j) => ((j.outputs.env_step = j.outputs.env_steps), delete j.outputs.env_steps) })));
    expect(e.code).toBe('E_SCHEMA');
    expect(e.info.pointer).toBe('/outputs');
    expect(e.info.hint).toMatch(/did you mean "env_step"/);
  });

  it('an iteration input that is neither state nor hyper, with a did-you-mean', () => {
    const e = loomErr(() => check(toy({ iteration: (j) => ((j.inputs.lrr = j.inputs.lr), delete j.inputs.lr, (node(j, 'step').in = ['lrr', 'g.w'])) })));
    expect(e.code).toBe('E_INPUT');
    expect(e.info).toMatchObject({ pointer: '/inputs/lrr', found: 'lrr' });
    expect(e.info.hint).toBe('did you mean "lr"?');
  });

  it('a hyper entry no graph reads, from the file or from --set, names the entry (and the --set)', () => {
    const e = loomErr(() => check(toy({ program: (j) => (j.hyper.lerning_rate = 1) })));
    expect(e.code).toBe('E_SCHEMA');
    expect(e.info.pointer).toBe('/hyper/lerning_rate');
    const s = loomErr(() => check(toy(), ['hyper.l_r=1']));
    expect(s.info.pointer).toBe('/hyper/l_r');
    expect(s.info.message).toMatch(/^--set hyper\.l_r=1: hyper\.l_r is read by none/);
    expect(s.info.hint).toBe('did you mean "lr"?');
  });

  it('an unknown --set path suggests the field', () => {
    const e = loomErr(() => loadProgram(toy(), { overrides: [parseOverride('every=3')] }));
    expect(e.code).toBe('E_USAGE');
    expect(e.info.hint).toMatch(/logging\.every" or "checkpoint\.every/);
  });

  it('an int32 hyper input with a fractional value', () => {
    const file = toy({ iteration: (j) => (j.inputs.batches = { dtype: 'int32', shape: [] }), program: (j) => (j.hyper.batches = 2.5) });
    const e = loomErr(() => check(file));
    expect(e.code).toBe('E_DTYPE');
    expect(e.info).toMatchObject({ pointer: '/hyper/batches', found: '2.5' });
    expect(() => check(file, ['hyper.batches=2'])).not.toThrow();
  });

  it('a metric named like a column the driver writes', () => {
    const e = loomErr(() => check(toy({ iteration: (j) => (j.outputs.global_step = 'loss') })));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/outputs/global_step', node: 'loss' });
  });

  it('params in the iteration graph (params are state)', () => {
    const e = loomErr(() => check(toy({ iteration: (j) => (j.params = { v: { shape: [2] } }) })));
    expect(e.code).toBe('E_INPUT');
    expect(e.info.pointer).toBe('/params/v');
  });

  it("the init graph's key input must be int32[2], and the evaluate graph's outputs float32 scalars", () => {
    const k = loomErr(() => check(toy({ init: (j) => (j.inputs.key.shape = [3]) })));
    expect(k.info).toMatchObject({ code: 'E_DTYPE', pointer: '/inputs/key', expected: 'int32[2]', found: 'int32[3]' });
    const ev = loomErr(() => check(toy({ evaluate: (j) => (j.outputs.d = 'd') })));
    expect(ev.info).toMatchObject({ code: 'E_SHAPE', pointer: '/outputs/d', node: 'd', found: 'float32[2]' });
  });
});

describe('program files as untrusted input', () => {
  it('a missing file, and a missing graph at the pointer that names it', () => {
    expect(loomErr(() => loadProgram('/nonexistent/p.json')).code).toBe('E_IO');
    const e = loomErr(() => check(toy({ program: (j) => (j.evaluate = 'nope.graph.json') })));
    expect(e.info).toMatchObject({ code: 'E_IO', pointer: '/evaluate' });
  });

  it('bad JSON is reported by line and column, without echoing the text', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-program-'));
    writeFileSync(join(dir, 'p.json'), '{"program": "x", "hyper": {"token": SECRET-1234}}');
    const e = loomErr(() => loadProgram(join(dir, 'p.json')));
    expect(e.code).toBe('E_JSON');
    expect(e.message).not.toMatch(/SECRET/);
  });

  it('a graph path outside the allowed folders', () => {
    const e = loomErr(() => check(toy({ program: (j) => (j.init = '/etc/passwd') })));
    expect(e.info).toMatchObject({ code: 'E_IO', pointer: '/init' });
    expect(e.message).toMatch(/outside the folders loom may read/);
  });

  it('extends merges hyper entry by entry, resolves the base graph paths against the base, and detects cycles', () => {
    const base = toy();
    const dir = mkdtempSync(join(tmpdir(), 'loom-program-'));
    const child = join(dir, 'child.program.json');
    writeFileSync(child, JSON.stringify({ program: 'child', extends: base, hyper: { lr: 0.5 }, seed: 4 }));
    const cfg = loadProgram(child, { allow: [join(base, '..')] });
    expect(cfg).toMatchObject({ program: 'child', hyper: { lr: 0.5 }, seed: 4, total_steps: 48, init: join(base, '..', 'init.graph.json') });
    const a = join(dir, 'a.json');
    writeFileSync(a, JSON.stringify({ program: 'a', extends: 'b.json' }));
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ program: 'b', extends: 'a.json' }));
    const e = loomErr(() => loadProgram(a));
    expect(e.info.pointer).toBe('/extends');
    expect(e.message).toMatch(/cycle/);
  });

  it('schema violations point into the file', () => {
    const e = loomErr(() => loadProgram(toy({ program: (j) => (j.total_steps = 0) })));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/total_steps' });
  });
});
