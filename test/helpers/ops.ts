/** Test harness for single ops: infer a type, or run the reference kernel on the cpu backend. */
import * as tf from '@tensorflow/tfjs';
import '../../compiler/ops/index.ts';
import { getOp } from '../../compiler/ops/registry.ts';
import { makeShapeCtx } from '../../compiler/frontend/shape-ctx.ts';
import type { Attrs, DType, TensorType } from '../../compiler/ir.ts';
import type { Shape } from '../../compiler/dims.ts';

await tf.setBackend('cpu');

export { tf };

export function t(shape: Shape, dtype: DType = 'float32'): TensorType {
  return { dtype, shape };
}

/** Runs an op's shape rule; throws the LoomError a user would see. */
export function infer(op: string, inputs: TensorType[], attrs: Attrs = {}): TensorType {
  const def = getOp(op);
  if (!def) throw new Error(`no op ${op}`);
  return def.shape(inputs, attrs, makeShapeCtx({ node: 'n', op, source: { file: 'test.graph.json', pointer: '/nodes/0' } }));
}

/** Runs an op's reference kernel and returns [shape, values] as plain arrays. */
export function run(op: string, inputs: tf.Tensor[], attrs: Attrs = {}): { shape: number[]; dtype: string; values: number[] } {
  const def = getOp(op)!;
  const types = inputs.map((x) => ({ dtype: x.dtype as DType, shape: x.shape }));
  const outType = def.shape(types, attrs, makeShapeCtx({ node: 'n', op }));
  const y = def.kernel(tf, inputs, attrs, { outType: { dtype: outType.dtype, shape: outType.shape as number[] } });
  const res = { shape: y.shape, dtype: y.dtype, values: Array.from(y.dataSync()) };
  expect(y.shape).toEqual(outType.shape);
  expect(y.dtype).toEqual(outType.dtype);
  y.dispose();
  return res;
}
