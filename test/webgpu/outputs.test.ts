/**
 * A compiled program on webgpu whose outputs include an input passed through and one value under
 * two names: each output is a tensor of its own (freeing one leaves the others readable), with
 * the values the program computes, read asynchronously.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { compileProgram } from '../../runtime/exec.ts';
import { inlineGraph } from '../helpers/inline-graph.ts';
import { startWebgpu } from '../helpers/webgpu.ts';

const choice = await startWebgpu('webgpu program outputs');

describe.skipIf(!choice)('compiled program outputs on webgpu', () => {
  it('hands back an input passed through and a value named twice as separate tensors', async () => {
    const g = inlineGraph({
      graph: 'passthrough',
      inputs: { x: { shape: [3] }, k: { dtype: 'int32', shape: [2] } },
      nodes: [{ id: 'y', op: 'mul', in: ['x', 2] }],
      outputs: { x_again: 'x', key: 'k', y: 'y', y_too: 'y' },
    });
    const prog = compileProgram(g, { backend: 'webgpu', codegen: false, log: () => {} });
    // Small ops run on the CPU unless told otherwise, and a tensor made from values keeps them on
    // the host: the inputs are results of GPU kernels, so only the GPU holds them.
    const forward = tf.env().getBool('WEBGPU_CPU_FORWARD');
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    onTestFinished(() => tf.env().set('WEBGPU_CPU_FORWARD', forward));
    const x = tf.tidy(() => tf.add(tf.tensor1d([1, -2, 3.5]), 0));
    const k = tf.tidy(() => tf.add(tf.tensor1d([7, 11], 'int32'), tf.scalar(0, 'int32')));
    const o = prog.run({ x, k }, {});
    expect(o.x_again).not.toBe(x);
    expect(o.key).not.toBe(k);
    expect(o.y_too).not.toBe(o.y);
    expect(o.key!.dtype).toBe('int32');
    // Freeing the caller's inputs and one of the twins leaves every other output intact.
    tf.dispose([x, k, o.y!]);
    expect(Array.from(await o.x_again!.data())).toEqual([1, -2, 3.5]);
    expect(Array.from(await o.key!.data())).toEqual([7, 11]);
    expect(Array.from(await o.y_too!.data())).toEqual([2, -4, 7]);
    tf.dispose([o.x_again!, o.key!, o.y_too!]);
  });
});
