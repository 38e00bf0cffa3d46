/**
 * Checks an op's host kernel against its reference kernel (tfjs, cpu backend): same output
 * dtype and shape, integer and bool values exactly, float values to float32 rounding.
 */
import { expect } from 'vitest';
import { tf } from './ops.ts';
import { getOp } from '../../compiler/ops/registry.ts';
import { makeShapeCtx } from '../../compiler/frontend/shape-ctx.ts';
import type { HostArray, HostTensor } from '../../compiler/ops/registry.ts';
import type { Attrs, DType } from '../../compiler/ir.ts';

function hostArray(dtype: DType, n: number): HostArray {
  // Filled with a sentinel so that an element the kernel forgets to write shows up.
  return dtype === 'float32' ? new Float32Array(n).fill(Number.NaN) : dtype === 'int32' ? new Int32Array(n).fill(-123456789) : new Uint8Array(n).fill(7);
}

/** Runs the op's host kernel on the tensors' values; returns the output. */
export function runHost(op: string, inputs: tf.Tensor[], attrs: Attrs = {}): HostTensor {
  const def = getOp(op);
  if (!def?.host) throw new Error(`op ${op} has no host kernel`);
  const outType = def.shape(
    inputs.map((x) => ({ dtype: x.dtype as DType, shape: x.shape })),
    attrs,
    makeShapeCtx({ node: 'n', op }),
  );
  const shape = outType.shape as number[];
  const ins: HostTensor[] = inputs.map((x) => ({ data: x.dataSync() as HostArray, shape: x.shape, dtype: x.dtype as DType }));
  const out: HostTensor = { data: hostArray(outType.dtype, shape.reduce((a, b) => a * b, 1)), shape, dtype: outType.dtype };
  def.host(ins, out, attrs);
  return out;
}

/** Asserts that host and reference kernels agree on these inputs. */
export function expectHostMatches(op: string, inputs: tf.Tensor[], attrs: Attrs = {}, tol = 1e-6): void {
  const def = getOp(op)!;
  const host = runHost(op, inputs, attrs);
  const ref = def.kernel(tf, inputs, attrs, { outType: { dtype: host.dtype, shape: [...host.shape] } });
  try {
    expect(host.shape).toEqual(ref.shape);
    expect(host.dtype).toBe(ref.dtype);
    const want = ref.dataSync();
    const got = host.data;
    expect(got.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) {
      const w = want[i]!;
      const g = got[i]!;
      if (host.dtype !== 'float32' || !Number.isFinite(w)) expect(g, `${op} element ${i}`).toBe(w);
      else expect(Math.abs(g - w), `${op} element ${i}: host ${g}, reference ${w}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(w)));
    }
  } finally {
    ref.dispose();
  }
}
