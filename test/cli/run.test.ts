import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { main } from '../../cli/main.ts';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

const AFFINE = 'graphs/examples/affine.graph.json';
const AFFINE_IN = 'graphs/examples/affine.inputs.json';

describe('loom run', () => {
  it('prints outputs computed by hand: y = 0.5 * tanh(x·w + b) with w = 0.5, b = 0', async () => {
    const c = capture();
    expect(await main(['run', AFFINE, '--inputs', AFFINE_IN, '--backend', 'cpu'], c.io)).toBe(0);
    const y = JSON.parse(c.out.join('')).y as number[][];
    expect(y[0]![0]).toBeCloseTo(0.5 * Math.tanh(0.5 * (1 + 2 + 3)), 6);
    expect(y[1]).toEqual([0, 0]);
  });

  it('leaves tf.memory().numTensors flat across repeated runs in one process', async () => {
    const c = capture();
    await main(['run', 'graphs/examples/mlp-loss-grad.graph.json', '--inputs', 'graphs/examples/mlp-loss-grad.inputs.json', '--backend', 'cpu'], c.io);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      expect(await main(['run', 'graphs/examples/mlp-loss-grad.graph.json', '--inputs', 'graphs/examples/mlp-loss-grad.inputs.json', '--backend', 'cpu', '--seed', String(i)], c.io)).toBe(0);
      expect(tf.memory().numTensors).toBe(before);
    }
    // A failing run must not leak either.
    const bad = join(mkdtempSync(join(tmpdir(), 'loom-')), 'bad.json');
    writeFileSync(bad, JSON.stringify({ obs: [[1, 2, 3]], labels: [0] }));
    expect(await main(['run', 'graphs/examples/mlp-loss-grad.graph.json', '--inputs', bad, '--backend', 'cpu'], c.io)).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is reproducible: the same seed gives the same numbers, another seed other numbers', async () => {
    const outs: string[] = [];
    for (const seed of ['3', '3', '4']) {
      const c = capture();
      await main(['run', 'graphs/examples/mlp-loss-grad.graph.json', '--inputs', 'graphs/examples/mlp-loss-grad.inputs.json', '--backend', 'cpu', '--seed', seed], c.io);
      outs.push(c.out.join(''));
    }
    expect(outs[0]).toBe(outs[1]);
    expect(outs[0]).not.toBe(outs[2]);
  });

  it('writes --out atomically and prints nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-'));
    const c = capture();
    expect(await main(['run', AFFINE, '--inputs', AFFINE_IN, '--backend', 'cpu', '--out', join(dir, 'o.json')], c.io)).toBe(0);
    expect(c.out.join('')).toBe('');
    expect(JSON.parse(readFileSync(join(dir, 'o.json'), 'utf8')).y).toHaveLength(2);
  });

  it('reports bad inputs with the file, the pointer and expected vs found, without a stack', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-'));
    const cases: [unknown, RegExp][] = [
      [{ x: [[1, 2]] }, /E_INPUT.*input "x" has the wrong size on axis 1[\s\S]*expected: float32\[B, 3\][\s\S]*found: +float32\[1, 2\]/],
      [{}, /E_INPUT.*#\/x: missing input "x"/],
      [{ x: [[1, 2, 3]], z: 1 }, /E_INPUT.*#\/z: unexpected input "z"/],
      [{ x: [[1, 2, 3], [1]] }, /E_INPUT.*rectangular/],
    ];
    for (const [json, re] of cases) {
      const f = join(dir, 'in.json');
      writeFileSync(f, JSON.stringify(json));
      const c = capture();
      expect(await main(['run', AFFINE, '--inputs', f, '--backend', 'cpu'], c.io)).toBe(1);
      expect(c.err.join('')).toMatch(re);
      expect(c.err.join('')).not.toMatch(/\n\s+at /);
    }
  });

  it('rejects bad flags and missing files with usage or IO errors', async () => {
    let c = capture();
    expect(await main(['run', AFFINE, '--seed', 'x'], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/--seed must be a finite number/);
    c = capture();
    expect(await main(['run', AFFINE, '--bogus'], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/E_USAGE.*bogus/);
    c = capture();
    expect(await main(['run', 'nope.graph.json'], c.io)).toBe(1);
    expect(c.err.join('')).toMatch(/E_IO.*nope\.graph\.json/);
    c = capture();
    expect(await main(['run', AFFINE, '--inputs', 'missing.json'], c.io)).toBe(1);
    expect(c.err.join('')).toMatch(/E_IO.*missing\.json/);
    c = capture();
    expect(await main(['run', AFFINE, '--backend', 'gpu'], c.io)).toBe(2);
    expect(c.err.join('')).toMatch(/unknown backend "gpu"/);
  });
});
