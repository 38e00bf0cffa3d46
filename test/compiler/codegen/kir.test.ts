import { describe, expect, it } from 'vitest';
import { run, tf } from '../../helpers/ops.ts';
import { evalExpr, exprText, instantiate, isDiscontinuous, kir, loadsOf, mapLoads } from '../../../compiler/codegen/kir.ts';
import { allOps } from '../../../compiler/ops/registry.ts';
import { makeShapeCtx } from '../../../compiler/frontend/shape-ctx.ts';
import type { Attrs, DType } from '../../../compiler/ir.ts';

/** Sample operands per dtype, positive where an op needs them (log, sqrt, pow's base). */
const SAMPLES: Record<DType, number[][]> = {
  float32: [
    [-2.5, -1, -0.3, 0, 0.7, 1.5, 3, 8],
    [0.5, 2, -1.25, 3, -0.5, 1, -2, 0.75],
    [1.5, 0.25, 2, 0.5, 3, 1, 4, 0.1],
  ],
  int32: [
    [-7, -2, 0, 1, 3, 5, 9, -3],
    [2, 3, -4, 1, 5, -1, 2, 3],
    [1, 0, 2, 5, 1, 3, 4, 2],
  ],
  bool: [
    [0, 1, 0, 1, 1, 0, 1, 0],
    [0, 0, 1, 1, 0, 1, 1, 0],
    [1, 0, 1, 0, 1, 1, 0, 0],
  ],
};
const POSITIVE = new Set(['log', 'log1p', 'sqrt', 'rsqrt', 'pow', 'normal_log_prob', 'reciprocal']);
const ATTRS: Record<string, Attrs> = { clip: { min: -1, max: 2 }, cast: { dtype: 'int32' }, broadcast_to: { shape: [8] } };

/** The dtypes of each operand an op accepts, found through its own shape rule (where's cond is bool). */
function operandTypes(name: string, arity: number): DType[] | undefined {
  const def = allOps().find((d) => d.name === name)!;
  for (const dt of ['float32', 'int32', 'bool'] as DType[]) {
    const types = Array.from({ length: arity }, (_v, k) => (name === 'where' && k === 0 ? 'bool' : dt));
    try {
      def.shape(types.map((dtype) => ({ dtype, shape: [8] })), ATTRS[name] ?? {}, makeShapeCtx({ node: 'n', op: name }));
      return types;
    } catch {
      // the next dtype
    }
  }
  return undefined;
}

describe('kernel IR', () => {
  const elementwise = allOps().filter((d) => d.fusion === 'elementwise' && d.scalar && d.pure !== false);

  it('every elementwise op body, evaluated in float64, agrees with its reference kernel', () => {
    expect(elementwise.length).toBeGreaterThan(30);
    for (const def of elementwise) {
      const arity = def.inputs.length;
      const types = operandTypes(def.name, arity);
      if (!types) throw new Error(`no operand dtypes for ${def.name}`);
      const cols = types.map((dt, k) => {
        const xs = SAMPLES[dt][k]!;
        return dt === 'float32' && POSITIVE.has(def.name) ? xs.map((x) => Math.abs(x) + 0.25) : xs;
      });
      const attrs = ATTRS[def.name] ?? {};
      const body = def.scalar!(types.map((dt, k) => kir.load(k, dt)), attrs);
      const want = run(def.name, cols.map((c, k) => tf.tensor1d(c, types[k])), attrs);
      const got = cols[0]!.map((_x, i) => evalExpr(body, cols.map((c) => c[i]!)));
      got.forEach((g, i) => {
        const w = want.values[i]!;
        const v = want.dtype === 'float32' ? Math.fround(g) : want.dtype === 'int32' ? Math.trunc(g) | 0 : g ? 1 : 0;
        expect(Math.abs(v - w), `${def.name}(${cols.map((c) => c[i]).join(', ')}): ${exprText(body)} = ${v}, kernel ${w}`).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(w)));
      });
    }
  });

  it('types literals by their operand, comparisons and logic as bool', () => {
    const i = kir.load(0, 'int32');
    expect(kir.max(i, kir.c(0))).toEqual({ k: 'binary', op: 'max', x: i, y: { k: 'const', value: 0, dtype: 'int32' }, dtype: 'int32' });
    expect(kir.lt(kir.c(1), kir.load(0, 'float32')).dtype).toBe('bool');
    expect(kir.select(kir.load(0, 'bool'), kir.c(1), i).dtype).toBe('int32');
    expect(kir.cast(i, 'float32').dtype).toBe('float32');
  });

  it('finds, renames and classifies loads', () => {
    const e = kir.select(kir.gt(kir.load(2, 'float32'), kir.c(0)), kir.exp(kir.load(0, 'float32')), kir.load(2, 'float32'));
    expect(loadsOf(e)).toEqual([2, 0]);
    expect(loadsOf(mapLoads(e, (ref, dt) => kir.load(ref + 10, dt)))).toEqual([12, 10]);
    expect(isDiscontinuous(e)).toBe(true);
    expect(isDiscontinuous(kir.tanh(kir.load(0, 'float32')))).toBe(false);
    expect(isDiscontinuous(kir.cast(kir.load(0, 'float32'), 'int32'))).toBe(true);
  });

  it('instantiates a reduction at a dtype with the count baked into finish', () => {
    const mean = instantiate({ op: 'mean', identity: 0, combine: kir.add, finish: kir.div }, 'float32', 4);
    expect(evalExpr(mean.combine, [1.5, 2])).toBe(3.5);
    expect(evalExpr(mean.finish!, [10])).toBe(2.5);
  });
});
