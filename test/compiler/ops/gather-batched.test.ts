/**
 * gather with batch_dims 1 (what vmap makes of a gather whose indices are batched): the reference
 * kernel on every backend, and the host kernel, against gathers written out here by hand. On wasm the
 * library's own batched gather reads the wrong rows, which this checks the op does not rely on.
 */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../../../compiler/ops/index.ts';
import { getOp } from '../../../compiler/ops/index.ts';
import { compileProgram } from '../../../runtime/exec.ts';
import { loadGraphJson } from '../../../compiler/frontend/load.ts';

/** out[b, i..., p...] = x[b, ..., idx[b, i...], p...] along `axis`, by index arithmetic. */
function byHand(x: number[], xs: number[], idx: number[], is: number[], axis: number): number[] {
  const B = xs[0]!;
  const pre = xs.slice(1, axis).reduce((a, b) => a * b, 1);
  const A = xs[axis]!;
  const post = xs.slice(axis + 1).reduce((a, b) => a * b, 1);
  const I = is.slice(1).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let b = 0; b < B; b++) for (let p = 0; p < pre; p++) for (let i = 0; i < I; i++) for (let q = 0; q < post; q++) out.push(x[((b * pre + p) * A + idx[b * I + i]!) * post + q]!);
  return out;
}

const CASES: [number[], number[], number][] = [
  [[4, 16, 4], [4, 1], 1],
  [[4, 16], [4], 1],
  [[3, 4, 16, 4], [3, 4, 1], 2],
  [[2, 5, 3], [2, 3, 2], 1],
];

describe('gather with batch_dims 1', () => {
  for (const backend of ['cpu', 'wasm'])
    it(`reference kernel and compiled program on ${backend} equal the gather by hand`, async () => {
      await tf.setBackend(backend);
      const def = getOp('gather')!;
      for (const [xs, is, axis] of CASES) {
        const n = xs.reduce((a, b) => a * b, 1);
        const x = Array.from({ length: n }, (_, i) => i);
        const idx = Array.from({ length: is.reduce((a, b) => a * b, 1) }, (_, i) => (i * 7 + 3) % xs[axis]!);
        const want = byHand(x, xs, idx, is, axis);
        const outShape = [xs[0]!, ...xs.slice(1, axis), ...is.slice(1), ...xs.slice(axis + 1)];
        const ref = def.kernel(tf, [tf.tensor(x, xs), tf.tensor(idx, is, 'int32')], { axis, batch_dims: 1 }, { outType: { dtype: 'float32', shape: outShape } });
        expect(Array.from(ref.dataSync()), `${xs} ${is} ${axis}`).toEqual(want);
        const g = loadGraphJson(
          { graph: 'g', inputs: { x: { shape: xs }, i: { dtype: 'int32', shape: is } }, nodes: [{ id: 'y', op: 'gather', in: ['x', 'i'], attrs: { axis, batch_dims: 1 } }], outputs: { y: 'y' } },
          'g.graph.json',
        );
        const got = compileProgram(g, { log: () => {} }).run({ x: tf.tensor(x, xs), i: tf.tensor(idx, is, 'int32') }, {});
        expect(Array.from(got.y!.dataSync()), `compiled ${xs} ${is} ${axis}`).toEqual(want);
      }
      await tf.setBackend('cpu');
    });
});
