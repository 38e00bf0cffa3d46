/** The reference interpreter evaluates a graph of 100k chained nodes without exhausting the stack. */
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraphJson, memoryFiles } from '../../compiler/frontend/load.ts';
import { interpret } from '../../runtime/interpreter.ts';

await tf.setBackend('cpu');

describe('interpreter on a long chain', () => {
  it('negates 100,001 times', () => {
    const len = 100_001;
    const nodes = Array.from({ length: len }, (_, i) => ({ id: `n${i}`, op: 'neg', in: [i === 0 ? 'x' : `n${i - 1}`] }));
    const g = loadGraphJson({ graph: 'chain', inputs: { x: { shape: [2] } }, nodes, outputs: { y: `n${len - 1}` } }, '/virtual/chain.graph.json', { files: memoryFiles({}) });
    const x = tf.tensor1d([1, -2]);
    const out = interpret(g, { x }, {});
    expect(Array.from(out.y!.dataSync())).toEqual([-1, 2]);
    tf.dispose([x, out.y!]);
  });
});
