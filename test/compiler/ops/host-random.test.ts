/** Host kernels of the random ops: the same numbers as their reference kernels, bit for bit. */
import { describe, expect, it } from 'vitest';
import { tf } from '../../helpers/ops.ts';
import { expectHostMatches } from '../../helpers/host-kernel.ts';
import { allOps } from '../../../compiler/ops/registry.ts';
import type { Attrs } from '../../../compiler/ir.ts';

const key = (a: number, b: number) => tf.tensor([a, b], [2], 'int32');

const CASES: [string, () => tf.Tensor[], Attrs][] = [
  ['random_key', () => [], { seed: 42 }],
  ['random_key', () => [], { seed: -7 }],
  ['random_split', () => [key(1, 2)], { num: 3 }],
  ['random_split', () => [key(-5, 2 ** 30)], { num: 1 }],
  ['random_fold_in', () => [key(3, 4), tf.scalar(17, 'int32')], {}],
  ['random_uniform', () => [key(1, 2)], { shape: [3, 5] }],
  ['random_uniform', () => [key(9, 8)], { shape: [7], min: -2, max: 0.5 }],
  ['random_uniform_like', () => [key(4, 4), tf.zeros([2, 3], 'int32')], { min: 1, max: 3 }],
  ['random_normal', () => [key(5, 6)], { shape: [4, 3] }],
  ['random_normal', () => [key(5, 7)], { shape: [5], mean: 2, std: 0.5 }],
  ['random_categorical', () => [key(1, 1), tf.tensor([[0, 1, 2], [3, -1, -Infinity], [-Infinity, 0, -Infinity]])], {}],
  ['random_categorical', () => [key(2, 3), tf.tensor([[[0.5, 0.25]], [[-3, 3]]])], {}],
  ['random_permutation', () => [key(7, -9)], { n: 37 }],
  ['random_permutation', () => [key(0, 1)], { n: 1 }],
  ['random_int', () => [key(3, -8)], { shape: [3, 5], max: 4 }],
  ['random_int', () => [key(2, 9)], { shape: [6], max: 2 ** 31 }],
];

describe('random host kernels', () => {
  for (const [op, inputs, attrs] of CASES)
    it(`${op} ${JSON.stringify(attrs)} matches the reference kernel exactly`, () => {
      const xs = inputs();
      try {
        expectHostMatches(op, xs, attrs, 0);
      } finally {
        tf.dispose(xs);
      }
    });

  it('covers every op of the random family, and each has a host kernel', () => {
    const family = allOps().filter((o) => o.family === 'random');
    expect(family.every((o) => o.host !== undefined)).toBe(true);
    expect(new Set(CASES.map(([op]) => op))).toEqual(new Set(family.map((o) => o.name)));
  });
});
