import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraphJson, memoryFiles } from '../../compiler/frontend/load.ts';
import { LoomError } from '../../compiler/errors.ts';
import { initParams, interpret } from '../../runtime/interpreter.ts';
import { initialValues } from '../../runtime/init.ts';

await tf.setBackend('cpu');

const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('parameter initialisation', () => {
  const param = (kind: string, shape: number[], args: Record<string, number> = {}) => ({ name: 'p', type: { dtype: 'float32' as const, shape }, init: { kind, args } });

  it('orthogonal gives orthonormal columns scaled by the gain, as torch.nn.init.orthogonal_', () => {
    for (const shape of [[8, 3], [3, 8], [5, 5]]) {
      const w = initialValues(param('orthogonal', shape, { gain: 2 }), 7);
      const [r, c] = shape as [number, number];
      // W^T W = gain^2 I when rows >= cols, W W^T = gain^2 I otherwise.
      const k = Math.min(r, c);
      for (let i = 0; i < k; i++)
        for (let j = 0; j < k; j++) {
          let dot = 0;
          for (let t = 0; t < Math.max(r, c); t++) dot += r >= c ? w[t * c + i]! * w[t * c + j]! : w[i * c + t]! * w[j * c + t]!;
          expect(dot).toBeCloseTo(i === j ? 4 : 0, 4);
        }
    }
  });

  it('is a function of the seed and the param name only', () => {
    const a = initialValues(param('normal', [100], { std: 1 }), 1);
    const b = initialValues(param('normal', [100], { std: 1 }), 1);
    const c = initialValues(param('normal', [100], { std: 1 }), 2);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    expect(Math.abs(mean)).toBeLessThan(0.35);
  });

  it('uniform and glorot stay within their bounds; constant, zeros, ones are exact', () => {
    const u = initialValues(param('uniform', [1000], { min: -2, max: 3 }), 0);
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...u)).toBeLessThan(3);
    const lim = Math.sqrt(6 / (10 + 20));
    const gl = initialValues(param('glorot_uniform', [10, 20]), 0);
    expect(Math.max(...gl.map(Math.abs))).toBeLessThanOrEqual(lim);
    expect(Array.from(initialValues(param('constant', [3], { value: 1.5 }), 0))).toEqual([1.5, 1.5, 1.5]);
    expect(Array.from(initialValues(param('ones', [2]), 0))).toEqual([1, 1]);
    expect(Array.from(initialValues(param('zeros', [2]), 0))).toEqual([0, 0]);
  });
});

describe('interpret', () => {
  const files = memoryFiles({
    '/g/sq.graph.json': {
      graph: 'scaled-square',
      inputs: { v: { shape: ['N'] } },
      params: { s: { shape: [1], init: { constant: { value: 3 } } } },
      nodes: [
        { id: 'q', op: 'square', in: ['v'] },
        { id: 'y', op: 'mul', in: ['q', 's'] },
      ],
      outputs: { y: 'y' },
    },
  });
  const main = {
    graph: 'main',
    inputs: { x: { shape: ['B'] } },
    nodes: [
      { id: 'c', op: 'call', graph: 'sq.graph.json', in: { v: 'x' } },
      { id: 'loss', op: 'sum', in: ['c.y'] },
      { id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: ['x', 'c/s'] } },
    ],
    outputs: { y: 'c.y', loss: 'loss', dx: 'g.x', ds: 'g.c/s' },
  };

  it('evaluates calls and grads: y = s x^2, dloss/dx = 2 s x, dloss/ds = sum x^2', () => {
    const g = loadGraphJson(main, '/g/main.graph.json', { files });
    const params = initParams(g, 0);
    const x = tf.tensor1d([1, -2, 0.5]);
    const out = interpret(g, { x }, params);
    expect(values(out.y!)).toEqual([3, 12, 0.75]);
    expect(values(out.loss!)[0]).toBeCloseTo(15.75, 5);
    expect(values(out.dx!)).toEqual([6, -12, 3]);
    expect(values(out.ds!)[0]).toBeCloseTo(5.25, 5);
    tf.dispose([x, ...Object.values(out), ...Object.values(params)]);
  });

  it('differentiates through where(0 < x < 2.5, x, 0): bool-valued ops block the gradient', () => {
    const g = loadGraphJson(
      {
        graph: 'relu-by-where',
        inputs: { x: { shape: [3] } },
        nodes: [
          { id: 'lo', op: 'greater', in: ['x', 0] },
          { id: 'hi', op: 'less', in: ['x', 2.5] },
          { id: 'c', op: 'logical_and', in: ['lo', 'hi'] },
          { id: 'y', op: 'where', in: ['c', 'x', 0] },
          { id: 'l', op: 'sum', in: ['y'] },
          { id: 'g', op: 'grad', in: ['l'], attrs: { wrt: ['x'] } },
        ],
        outputs: { d: 'g.x' },
      },
      '/g/w.graph.json',
      { files },
    );
    const x = tf.tensor1d([-1, 2, 3]);
    const out = interpret(g, { x }, {});
    expect(values(out.d!)).toEqual([0, 1, 0]);
    tf.dispose([x, ...Object.values(out)]);
  });

  it('binds symbols from the inputs and rejects disagreeing ones', () => {
    const g = loadGraphJson(
      { graph: 'two', inputs: { a: { shape: ['B', 2] }, b: { shape: ['B'] } }, nodes: [{ id: 's', op: 'sum', in: ['a'], attrs: { axes: [1] } }, { id: 'y', op: 'add', in: ['s', 'b'] }], outputs: { y: 'y' } },
      '/g/two.graph.json',
      { files },
    );
    const a = tf.ones([3, 2]);
    const b = tf.ones([4]);
    expect(() => interpret(g, { a, b }, {})).toThrow(/input "b" disagrees with the other inputs on axis 0 \(B = 3\)/);
    tf.dispose([a, b]);
  });

  it('rejects results too large to allocate before allocating them', () => {
    const g = loadGraphJson(
      { graph: 'big', inputs: { a: { shape: ['N', 1] }, b: { shape: [1, 'M'] } }, nodes: [{ id: 'y', op: 'mul', in: ['a', 'b'] }], outputs: { y: 'y' } },
      '/g/big.graph.json',
      { files },
    );
    // A fake tensor-like input is enough: the size check runs before any kernel.
    const a = tf.zeros([100000, 1]);
    const b = tf.zeros([1, 100000]);
    let err: unknown;
    try {
      interpret(g, { a, b }, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoomError);
    expect((err as LoomError).info.code).toBe('E_SIZE');
    expect((err as LoomError).info.node).toBe('y');
    tf.dispose([a, b]);
  });
});
