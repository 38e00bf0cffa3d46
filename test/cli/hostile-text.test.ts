/**
 * Names from files reach the terminal escaped: a graph name, an op name, a JSON key, a pipeline
 * name or a path with ESC sequences, CR/LF or bidi overrides can neither move the cursor nor
 * forge a line, through normal output and through every error path.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { escapingIo } from '../../cli/main.ts';
import { loom } from '../helpers/cli.ts';
import { expectSafeOutput, HOSTILE } from '../helpers/hostile.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PPO = join(ROOT, 'graphs', 'pipelines', 'ppo-cartpole.json');

let dir = '';
const file = (name: string, json: unknown): string => {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(json));
  return p;
};

const graph = (over: Record<string, unknown> = {}) => ({
  graph: HOSTILE,
  version: 1,
  doc: HOSTILE,
  inputs: { x: { shape: ['B', 3] } },
  params: { w: { shape: [3, 2] } },
  nodes: [
    { id: 'h', op: 'matmul', in: ['x', 'w'], doc: HOSTILE },
    { id: 'y', op: 'tanh', in: ['h'] },
  ],
  outputs: { y: 'y' },
  ...over,
});

async function expectSafe(argv: string[], code: number): Promise<{ out: string; err: string }> {
  const r = await loom(...argv);
  expectSafeOutput(r.out);
  expectSafeOutput(r.err);
  expect(r.err).not.toMatch(/internal error/);
  expect(r.code).toBe(code);
  return r;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'loom-hostile-'));
});

describe('hostile names in normal output', () => {
  it('loom check prints the graph name escaped', async () => {
    const r = await expectSafe(['check', file('name.graph.json', graph())], 0);
    expect(r.out).toContain('graph \\x1b[2Jevil\\r\\nall checks passed: ok\\u202e\n');
  });

  for (const emit of ['ir', 'opt', 'fused', 'ts'])
    it(`loom compile --emit ${emit}`, async () => {
      await expectSafe(['compile', file('name.graph.json', graph()), '--emit', emit], 0);
    });

  it('loom compile --emit ts of a graph calling a hostile-named graph', async () => {
    file('callee.graph.json', graph());
    const caller = file('caller.graph.json', {
      graph: `caller${HOSTILE}`,
      inputs: { x: { shape: [2, 3] } },
      nodes: [{ id: 'c', op: 'call', graph: 'callee.graph.json', in: { x: 'x' } }],
      outputs: { y: 'c.y' },
    });
    for (const emit of ['ir', 'fused', 'ts']) await expectSafe(['compile', caller, '--emit', emit], 0);
  });

  it('loom diff of two hostile-named graphs, with a hostile callee', async () => {
    file('callee.graph.json', graph());
    file('callee2.graph.json', graph({ graph: `${HOSTILE}2` }));
    const call = (callee: string, op: string) =>
      graph({ nodes: [{ id: 'c', op: 'call', graph: callee, in: { x: 'x' } }, { id: 'y', op, in: ['c.y'] }], params: {} });
    const a = file('a.graph.json', call('callee.graph.json', 'tanh'));
    const b = file('b.graph.json', call('callee2.graph.json', 'sigmoid'));
    const r = await expectSafe(['diff', a, b], 1);
    expect(r.out).toContain('sigmoid');
    expect(r.out).toContain('-> \\x1b[2Jevil');
  });

  it('loom run of a hostile-named graph', async () => {
    const g = file('run.graph.json', graph({ inputs: { x: { shape: [1, 3] } } }));
    const inputs = file('run.inputs.json', { x: [[1, 2, 3]] });
    const r = await expectSafe(['run', g, '--inputs', inputs, '--backend', 'cpu'], 0);
    expect(r.out).toContain('"y"');
  });

  it('loom check of a pipeline with a hostile name: refused (it becomes a folder name), the name escaped', async () => {
    const a = file('a.pipeline.json', { extends: PPO, pipeline: HOSTILE });
    const r = await expectSafe(['check', a], 1);
    expect(r.err).toContain('E_SCHEMA');
    // Quoted as JSON, then escaped: the name stays on one line, visible.
    expect(r.err).toContain('"\\u001b[2Jevil\\r\\nall checks passed: ok\\u202e"');
  });

  it('loom diff of pipelines with a hostile env name', async () => {
    const a = file('a.pipeline.json', { extends: PPO, pipeline: 'a' });
    const b = file('b.pipeline.json', { extends: PPO, pipeline: 'b', env: { name: HOSTILE } });
    const r = await expectSafe(['diff', a, b], 1);
    expect(r.out).toContain('env.name: "CartPole-v1" -> "\\u001b[2Jevil\\r\\nall checks passed: ok\\u202e"');
  });
});

describe('hostile names in errors', () => {
  it('an unknown op', async () => {
    const g = file('op.graph.json', graph({ nodes: [{ id: 'y', op: HOSTILE, in: ['x'] }] }));
    const r = await expectSafe(['check', g], 1);
    expect(r.err).toContain('E_UNKNOWN_OP');
  });

  it('an unknown property: the key is in the message, the pointer and found', async () => {
    const g = file('key.graph.json', graph({ nodes: [{ id: 'y', op: 'tanh', in: ['x'], [HOSTILE]: 1 }] }));
    const r = await expectSafe(['check', g], 1);
    expect(r.err).toContain('E_SCHEMA');
  });

  it('a malformed node id', async () => {
    const g = file('id.graph.json', graph({ nodes: [{ id: HOSTILE, op: 'tanh', in: ['x'] }], outputs: { y: 'x' } }));
    const r = await expectSafe(['check', g], 1);
    expect(r.err).toContain('E_SCHEMA');
  });

  it('a call of a missing graph file with a hostile path', async () => {
    const g = file('call.graph.json', graph({ nodes: [{ id: 'c', op: 'call', graph: `${HOSTILE}.graph.json`, in: { x: 'x' } }], outputs: { y: 'x' } }));
    await expectSafe(['check', g], 1);
  });

  it('a file path with control characters', async () => {
    await expectSafe(['check', join(dir, `${HOSTILE}.graph.json`)], 1);
  });

  it('an inputs file naming a hostile input', async () => {
    const g = file('in.graph.json', graph({ inputs: { x: { shape: [1, 3] } } }));
    const inputs = file('in.inputs.json', { x: [[1, 2, 3]], [HOSTILE]: [1] });
    await expectSafe(['run', g, '--inputs', inputs, '--backend', 'cpu'], 1);
  });

  it('a hostile op family', async () => {
    const r = await expectSafe(['ops', '--family', HOSTILE], 2);
    expect(r.err).toContain('E_USAGE');
  });

  it('a hostile command name', async () => {
    await expectSafe([HOSTILE], 2);
  });
});

describe('the output sink', () => {
  it('escapes every control character but line breaks and tabs on out and err; live passes through', () => {
    const got: string[] = [];
    const io = escapingIo({ out: (t) => got.push(`out:${t}`), err: (t) => got.push(`err:${t}`), live: (t) => got.push(`live:${t}`) });
    io.out('a\x1b[2J\tb\r\n');
    io.err('\u202ec\x9b\n');
    io.live!('\r[##..] iter 1/2\x1b[K');
    expect(got).toEqual(['out:a\\x1b[2J\tb\\r\n', 'err:\\u202ec\\x9b\n', 'live:\r[##..] iter 1/2\x1b[K']);
  });

  it('without a live channel, progress goes to err unescaped', () => {
    const got: string[] = [];
    escapingIo({ out: () => {}, err: (t) => got.push(t) }).live!('\r\x1b[K');
    expect(got).toEqual(['\r\x1b[K']);
  });
});
