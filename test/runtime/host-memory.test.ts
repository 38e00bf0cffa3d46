/** Host access to backend memory: reading values, and inputs rewritten in place from step to step. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { hostConcat, hostCopy, hostSplit, hostTensor, hostValues, StagedInput } from '../../runtime/host-memory.ts';

await tf.setBackend('cpu');

for (const backend of ['cpu', 'wasm']) {
  describe(`host memory on ${backend}`, () => {
    beforeAll(async () => {
      await tf.setBackend(backend);
    });
    afterAll(async () => {
      await tf.setBackend('cpu');
    });

    it('reads float32, int32 and bool values', () => {
      const ts = [tf.tensor([1.5, -2, 3.25], [3]), tf.tensor([7, -8], [2], 'int32'), tf.tensor([true, false, true], [3], 'bool')];
      try {
        for (const t of ts) expect(Array.from(hostValues(t))).toEqual(Array.from(t.dataSync()));
      } finally {
        tf.dispose(ts);
      }
    });

    it('a view stays valid for its tensor: reused while the heap stands, taken anew once it grows, and never one of freed memory', () => {
      const x = tf.tensor([1, 2, 3, 4]);
      const first = hostValues(x);
      expect(hostValues(x)).toBe(backend === 'wasm' ? first : hostValues(x));
      // Growing the wasm heap detaches every view taken before.
      const big = tf.zeros([64 << 20]);
      const after = hostValues(x);
      expect(Array.from(after)).toEqual([1, 2, 3, 4]);
      after[0] = 9;
      expect(Array.from(x.dataSync())).toEqual([9, 2, 3, 4]);
      tf.dispose([x, big]);
      // Memory freed and handed to a tensor of another type reads as that tensor's values.
      const ys = [tf.tensor([5, 6, 7, 8], [4], 'int32'), tf.tensor([true, false, true, true, false], [5], 'bool')];
      try {
        expect(Array.from(hostValues(ys[0]!))).toEqual([5, 6, 7, 8]);
        expect(Array.from(hostValues(ys[1]!))).toEqual([1, 0, 1, 1, 0]);
      } finally {
        tf.dispose(ys);
      }
    });

    it('copies a tensor into memory of its own', () => {
      const x = tf.tensor([[1, 2], [3, 4]]);
      const y = hostCopy(x);
      try {
        expect(y.shape).toEqual([2, 2]);
        expect(y.dtype).toBe('float32');
        expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
        hostValues(x).set([9, 9, 9, 9]);
        expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
      } finally {
        tf.dispose([x, y]);
      }
    });

    it('fills new tensors, concatenates into a flat vector and splits it back, with flat memory', () => {
      const a = tf.tensor([[1, 2, 3], [4, 5, 6]]);
      const b = tf.tensor([7]);
      const c = tf.tensor([[8], [9]]);
      const tensors = tf.memory().numTensors;
      const filled = hostTensor([2, 2], 'int32', (out) => out.set([3, -1, 4, 1]));
      expect(filled.dtype).toBe('int32');
      expect(filled.arraySync()).toEqual([[3, -1], [4, 1]]);
      const flat = hostConcat([a, b, c]);
      expect(flat.shape).toEqual([9]);
      expect(Array.from(flat.dataSync())).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const parts = hostSplit(flat, [a.shape, b.shape, c.shape]);
      expect(parts.map((p) => p.shape)).toEqual([a.shape, b.shape, c.shape]);
      expect(parts.map((p) => p.arraySync())).toEqual([a.arraySync(), b.arraySync(), c.arraySync()]);
      // The pieces own their memory: the flat vector can go.
      flat.dispose();
      expect(Array.from(parts[2]!.dataSync())).toEqual([8, 9]);
      tf.dispose([filled, ...parts]);
      expect(tf.memory().numTensors).toBe(tensors);
      tf.dispose([a, b, c]);
    });

    it('a staged input holds the values of each set, in one tensor, with flat memory', () => {
      const staged = new StagedInput([2], 'int32');
      const first = staged.set(Int32Array.from([1, 2]));
      expect(Array.from(first.dataSync())).toEqual([1, 2]);
      const tensors = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) {
        const t = staged.set(Int32Array.from([i, 10 - i]));
        expect(t).toBe(first);
        expect(Array.from(t.dataSync())).toEqual([i, 10 - i]);
        // A kernel reading it sees the new values.
        const y = tf.tidy(() => tf.add(t, tf.scalar(1, 'int32')));
        expect(Array.from(y.dataSync())).toEqual([i + 1, 11 - i]);
        y.dispose();
      }
      expect(tf.memory().numTensors).toBe(tensors);
      staged.dispose();
      expect(first.isDisposed).toBe(true);
    });
  });
}
