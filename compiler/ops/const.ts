/** Constants: literal tensors written in the graph (or literal numbers in a node's `in`). */
import type { AttrValue, DType } from '../ir.ts';
import { defineOp, bytesOf } from './registry.ts';

/** Shape of a nested-array literal, or a message saying why it is ragged. */
export function literalShape(v: AttrValue): number[] | string {
  if (typeof v === 'number' || typeof v === 'boolean') return [];
  if (!Array.isArray(v)) return 'a constant must be a number, a boolean or a nested array of them';
  if (v.length === 0) return [0];
  const inner = v.map(literalShape);
  const first = inner[0]!;
  if (typeof first === 'string') return first;
  for (const s of inner) if (typeof s === 'string' || s.join(',') !== first.join(',')) return 'a nested-array constant must be rectangular';
  return [v.length, ...first];
}

export function flattenLiteral(v: AttrValue, out: number[] = []): number[] {
  if (Array.isArray(v)) for (const x of v) flattenLiteral(x, out);
  else out.push(typeof v === 'boolean' ? (v ? 1 : 0) : (v as number));
  return out;
}

defineOp({
  name: 'const',
  family: 'const',
  doc: 'a literal tensor: `value` is a number or nested array; dtype defaults to float32',
  inputs: [],
  attrs: {
    properties: {
      value: { anyOf: [{ type: 'number' }, { type: 'boolean' }, { type: 'array' }] },
      dtype: { enum: ['float32', 'int32', 'bool'] },
    },
    required: ['value'],
  },
  shape: (_i, a, ctx) => {
    const s = literalShape(a.value!);
    if (typeof s === 'string') return ctx.fail('E_ATTR', s);
    const dtype = (a.dtype as DType | undefined) ?? (typeof a.value === 'boolean' ? 'bool' : 'float32');
    if (dtype === 'int32' && flattenLiteral(a.value!).some((x) => !Number.isInteger(x)))
      ctx.fail('E_ATTR', 'an int32 constant must hold integers');
    return { dtype, shape: s };
  },
  kernel: (tf, _i, a, ctx) => tf.tensor(flattenLiteral(a.value!), ctx.outType.shape, ctx.outType.dtype),
  fusion: 'opaque',
  cost: (_i, out) => ({ flops: 0, bytes: bytesOf(out) }),
});
