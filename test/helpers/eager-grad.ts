/**
 * An eager gradient checker for single ops: the gradient rule runs with every op's shape rule
 * and reference kernel at once, and is compared with central finite differences.
 */
import { expect } from 'vitest';
import { tf } from './ops.ts';
import { getOp, type GradBuilder } from '../../compiler/ops/registry.ts';
import { makeShapeCtx } from '../../compiler/frontend/shape-ctx.ts';
import type { Attrs, DType, TensorType } from '../../compiler/ir.ts';
export { loomErr } from './loom-error.ts';

export function close(actual: number[], expected: number[], tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(expected[i]!))));
}

/** Builds gradient graphs eagerly: every op runs its shape rule and reference kernel at once. */
export class Eager implements GradBuilder {
  readonly vals = new Map<string, tf.Tensor>();
  private n = 0;
  add(x: tf.Tensor): string {
    const id = `v${this.n++}`;
    this.vals.set(id, x);
    return id;
  }
  op(name: string, inputs: string[], attrs: Attrs = {}): string {
    const def = getOp(name);
    if (!def) throw new Error(`gradient uses unknown op ${name}`);
    const ins = inputs.map((i) => this.vals.get(i)!);
    const out = def.shape(ins.map((x) => this.type0(x)), attrs, makeShapeCtx({ op: name }));
    const y = def.kernel(tf, ins, attrs, { outType: { dtype: out.dtype, shape: out.shape as number[] } });
    expect(y.shape).toEqual(out.shape);
    return this.add(y);
  }
  constant(value: number, dtype: DType = 'float32'): string {
    return this.add(tf.scalar(value, dtype));
  }
  type(id: string): TensorType {
    return this.type0(this.vals.get(id)!);
  }
  private type0(x: tf.Tensor): TensorType {
    return { dtype: x.dtype as DType, shape: x.shape };
  }
  dispose(): void {
    for (const v of this.vals.values()) v.dispose();
  }
}

/** The same builder as the {b, put, get, dispose} record some tests destructure. */
export function eagerBuilder() {
  const e = new Eager();
  return { b: e as GradBuilder, put: (x: tf.Tensor) => e.add(x), get: (id: string) => e.vals.get(id)!, dispose: () => e.dispose() };
}

/** A fixed, irregular upstream gradient. */
export const dyValues = (n: number) => Array.from({ length: n }, (_, i) => 0.7 + 0.5 * Math.sin(1.3 * i + 0.4));

/** The analytic gradients of `op` for upstream gradient `dy` (null entries stay null). */
export function analytic(op: string, inputs: tf.Tensor[], attrs: Attrs, dy?: number[]): (number[] | null)[] {
  const b = new Eager();
  const ids = inputs.map((x) => b.add(x.clone()));
  const out = b.op(op, ids, attrs);
  const ty = b.type(out);
  const size = ty.shape.reduce<number>((p, d) => p * (d as number), 1);
  const dyId = b.add(tf.tensor(dy ?? dyValues(size), ty.shape as number[]));
  const gs = getOp(op)!.grad!(b, { inputs: ids, output: out, attrs, dy: dyId });
  expect(gs.length).toBe(inputs.length);
  const res = gs.map((g, i) => {
    if (g === null) return null;
    expect(b.type(g).shape).toEqual(inputs[i]!.shape);
    return Array.from(b.vals.get(g)!.dataSync());
  });
  b.dispose();
  return res;
}

/** Central finite differences of sum(dy * op(inputs)) in float64 over float32 kernels. */
export function numeric(op: string, inputs: tf.Tensor[], attrs: Attrs, which: number, eps = 1e-2): number[] {
  const def = getOp(op)!;
  const types = inputs.map((x) => ({ dtype: x.dtype as DType, shape: x.shape }));
  const outType = def.shape(types, attrs, makeShapeCtx({ op }));
  const ctx = { outType: { dtype: outType.dtype, shape: outType.shape as number[] } };
  const size = (outType.shape as number[]).reduce((p, d) => p * d, 1);
  const dy = dyValues(size);
  const base = Array.from(inputs[which]!.dataSync());
  const loss = (vals: number[]) => {
    const xi = tf.tensor(vals, inputs[which]!.shape);
    const ins = inputs.map((x, k) => (k === which ? xi : x));
    const y = def.kernel(tf, ins, attrs, ctx);
    const ys = y.dataSync();
    y.dispose();
    xi.dispose();
    return Array.from(ys).reduce((s, v, k) => s + v * dy[k]!, 0);
  };
  return base.map((_, j) => {
    const p = [...base];
    const m = [...base];
    p[j]! += eps;
    m[j]! -= eps;
    return (loss(p) - loss(m)) / (2 * eps);
  });
}

/** Checks every non-null gradient against finite differences. */
export function gradCheck(op: string, inputs: tf.Tensor[], attrs: Attrs = {}, tol = 5e-3): void {
  const gs = analytic(op, inputs, attrs);
  gs.forEach((g, i) => {
    if (g === null) return;
    close(g, numeric(op, inputs, attrs, i), tol);
  });
}
