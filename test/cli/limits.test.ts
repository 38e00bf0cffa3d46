/**
 * Numbers on the command line: counts are safe integers within each flag's range, and a value
 * out of range is a usage error (exit 2) naming the flag, before any work starts.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loom } from '../helpers/cli.ts';

const GRAPH = 'graphs/examples/affine.graph.json';
const PIPELINE = 'graphs/pipelines/ppo-cartpole.json';

async function usage(argv: string[], flag: string): Promise<string> {
  const r = await loom(...argv);
  expect(r.err).toMatch(new RegExp(`^error\\[E_USAGE\\].*${flag}`, 'm'));
  expect(r.code).toBe(2);
  return r.err;
}

describe('numeric flags', () => {
  it('simulate --batch 0 is a usage error', async () => {
    const err = await usage(['simulate', GRAPH, '--profile', 'h100', '--batch', '0'], '--batch');
    expect(err).toMatch(/must be >= 1/);
  });

  it('simulate --batch beyond the largest tensor is a usage error', async () => {
    await usage(['simulate', GRAPH, '--profile', 'h100', '--batch', '4294967296'], '--batch');
  });

  it('simulate and compile --dim take sizes from 1 to 2^31-1', async () => {
    await usage(['simulate', GRAPH, '--profile', 'h100', '--dim', 'B=0'], '--dim');
    await usage(['simulate', GRAPH, '--profile', 'h100', '--dim', 'B=99999999999999999999'], '--dim');
    await usage(['compile', GRAPH, '--emit', 'ts', '--dim', 'B=99999999999999999999'], '--dim');
  });

  it('train and compare --steps 1e99 are usage errors: counts are safe integers', async () => {
    const out = mkdtempSync(join(tmpdir(), 'loom-limits-'));
    const err = await usage(['train', PIPELINE, '--steps', '1e99', '--out', out], '--steps');
    expect(err).toMatch(/9007199254740991/);
    await usage(['compare', PIPELINE, '--seeds', '1', '--steps', '1e99', '--out', out], '--steps');
  });

  it('experts --d0 beyond a safe integer is a usage error', async () => {
    await usage(['experts', '--d0', '1e20', '--L', '8', '--w2', '1'], '--d0');
  });
});

describe('run --inputs numbers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'loom-run-limits-'));
  const write = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  /** y = x (int32) and z = log(f) (float32), so NaN and infinities come out of ordinary inputs. */
  const graph = write(
    'g.graph.json',
    JSON.stringify({
      graph: 'g',
      inputs: { i: { dtype: 'int32', shape: [2] }, f: { shape: [2, 2] } },
      nodes: [
        { id: 'y', op: 'neg', in: ['i'] },
        { id: 'z', op: 'log', in: ['f'] },
      ],
      outputs: { y: 'y', z: 'z' },
    }),
  );
  const run = (inputs: string) => loom('run', graph, '--inputs', write('in.json', inputs), '--backend', 'cpu');

  async function inputError(inputs: string, pointer: string): Promise<string> {
    const r = await run(inputs);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error\[E_INPUT\]/);
    expect(r.err).toContain(`in.json#${pointer}:`);
    return r.err;
  }

  it('an int32 beyond 2^31-1 is E_INPUT at the element, not wrapped to -2^31', async () => {
    const err = await inputError('{"i": [1, 2147483648], "f": [[1, 1], [1, 1]]}', '/i/1');
    expect(err).toMatch(/-2147483648 to 2147483647/);
    await inputError('{"i": [-2147483649, 0], "f": [[1, 1], [1, 1]]}', '/i/0');
  });

  it('a non-integer int32 is E_INPUT at the element', async () => {
    await inputError('{"i": [1, 2.5], "f": [[1, 1], [1, 1]]}', '/i/1');
  });

  it('1e999 (Infinity once parsed) is E_INPUT at the element, as in graph files', async () => {
    const err = await inputError('{"i": [1, 2], "f": [[1, 1], [1, 1e999]]}', '/f/1/1');
    expect(err).toMatch(/"Infinity"/);
    await inputError('{"i": [1, 2], "f": [[1, 1e39], [1, 1]]}', '/f/0/1');
  });

  it('the strings "NaN", "Infinity" and "-Infinity" are float32 values; others are errors', async () => {
    const r = await run('{"i": [1, 2], "f": [["NaN", "Infinity"], ["-Infinity", 1]]}');
    expect(r.err).toBe('');
    expect(JSON.parse(r.out).z).toEqual([['NaN', 'Infinity'], ['NaN', 0]]);
    await inputError('{"i": [1, 2], "f": [["nan", 1], [1, 1]]}', '/f/0/0');
    await inputError('{"i": ["NaN", 2], "f": [[1, 1], [1, 1]]}', '/i/0');
  });

  it('NaN and infinite outputs print as strings, and the output read back as inputs gives the same outputs', async () => {
    const first = await run('{"i": [2147483647, -2147483647], "f": [[0, -1], [1, "Infinity"]]}');
    expect(first.code).toBe(0);
    const out = JSON.parse(first.out);
    expect(out).toEqual({ y: [-2147483647, 2147483647], z: [['-Infinity', 'NaN'], [0, 'Infinity']] });
    expect(first.out).not.toMatch(/null/);
    // z fed back as f: log(-Infinity) = NaN, log(NaN) = NaN, log(0) = -Infinity, log(Infinity) = Infinity.
    const again = await run(JSON.stringify({ i: out.y, f: out.z }));
    expect(again.code).toBe(0);
    expect(JSON.parse(again.out)).toEqual({ y: [2147483647, -2147483647], z: [['NaN', 'NaN'], ['-Infinity', 'Infinity']] });
  });
});
