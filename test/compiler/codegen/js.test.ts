import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '../../../compiler/ops/index.ts';
import { JsTarget, jsTarget } from '../../../compiler/codegen/js.ts';
import { kir } from '../../../compiler/codegen/kir.ts';
import { lowerFused, type KernelSpec } from '../../../compiler/codegen/spec.ts';
import { loadGraphJson, memoryFiles } from '../../../compiler/frontend/load.ts';
import type { IRGraph, IRNode } from '../../../compiler/ir.ts';
import { fusion } from '../../../compiler/passes/fusion.ts';
import { valueTypes } from '../../../compiler/passes/util.ts';
import { kernelFunction, loadKernels, runKernel } from '../../../runtime/jit.ts';

await tf.setBackend('cpu');

function fusedOf(json: Record<string, unknown>): { g: IRGraph; node: IRNode } {
  const g = fusion.run(loadGraphJson({ version: 1, ...json }, '/virtual/k.graph.json', { files: memoryFiles({}) }));
  const node = g.nodes.find((n) => n.op === 'fused');
  if (!node) throw new Error('nothing fused');
  return { g, node };
}

function lower(json: Record<string, unknown>, env: Record<string, number> = {}) {
  const { g, node } = fusedOf(json);
  const types = valueTypes(g);
  return lowerFused(node, new Map(Object.entries(env)), node.inputs.map((r) => types.get(r)!));
}

describe('js codegen target', () => {
  it('compiles broadcasting into strides and computes the right values', () => {
    const { spec } = lower({
      graph: 'bcast',
      inputs: { x: { shape: [2, 3] }, r: { shape: [2, 1] }, c: { shape: [3] } },
      nodes: [
        { id: 'a', op: 'add', in: ['x', 'r'] },
        { id: 'm', op: 'mul', in: ['a', 'c'] },
      ],
      outputs: { m: 'm' },
    });
    expect(spec.domain).toEqual([2, 3]);
    const loads = spec.values.filter((v) => v.kind === 'load').map((v) => (v as { strides: number[] }).strides);
    expect(loads).toEqual([[3, 1], [1, 0], [0, 1]]);
    const k = jsTarget.emit(spec);
    jsTarget.check([k]);
    loadKernels([k]);
    const out = new Float32Array(6);
    kernelFunction(k.name)(new Float32Array([1, 2, 3, 4, 5, 6]), new Float32Array([10, 20]), new Float32Array([1, 2, 3]), out);
    // (x + r) * c, by hand.
    expect(Array.from(out)).toEqual([11, 24, 39, 24, 50, 78]);
  });

  it('merges axes that every index treats alike', () => {
    const { spec } = lower({
      graph: 'coalesce',
      inputs: { x: { shape: [2, 3, 4] }, y: { shape: [2, 3, 4] } },
      nodes: [
        { id: 'a', op: 'sub', in: ['x', 'y'] },
        { id: 'b', op: 'abs', in: ['a'] },
      ],
      outputs: { b: 'b' },
    });
    const k = jsTarget.emit(spec);
    // One flat loop over 24 elements.
    expect(k.source.match(/for \(/g)).toHaveLength(1);
    expect(k.source).toContain('< 24');
  });

  it('reduces over leading axes into a scratch row and over trailing axes into a local', () => {
    const json = (axes: number[]) => ({
      graph: 'reduce',
      inputs: { x: { shape: [2, 3] } },
      nodes: [
        { id: 'e', op: 'square', in: ['x'] },
        { id: 's', op: 'sum', in: ['e'], attrs: { axes, keepdims: true } },
        { id: 'n', op: 'neg', in: ['e'] },
      ],
      outputs: { s: 's', n: 'n' },
    });
    const x = new Float32Array([1, 2, 3, 4, 5, 6]);
    const run = (axes: number[], n: number) => {
      const { spec } = lower(json(axes));
      const k = jsTarget.emit(spec);
      jsTarget.check([k]);
      loadKernels([k]);
      const outs = spec.outputs.map((o) => new Float32Array(o.shape.reduce((a, b) => a * b, 1)));
      kernelFunction(k.name)(x, ...outs);
      // Outputs come in body order: s (the sum), then n.
      const [s, neg] = outs.map((o) => Array.from(o));
      expect(s).toHaveLength(n);
      return { s: s!, n: neg!, source: k.source };
    };
    const cols = run([0], 3);
    expect(cols.s).toEqual([1 + 16, 4 + 25, 9 + 36]);
    expect(cols.source).toContain('new Float64Array(3)');
    const rows = run([1], 2);
    expect(rows.s).toEqual([1 + 4 + 9, 16 + 25 + 36]);
    expect(rows.source).not.toContain('Float64Array');
    expect(rows.n).toEqual([-1, -4, -9, -16, -25, -36]);
  });

  it('hoists values that do not vary along inner loops', () => {
    const { spec } = lower({
      graph: 'hoist',
      inputs: { x: { shape: [4, 5] }, r: { shape: [4, 1] } },
      nodes: [
        { id: 'e', op: 'exp', in: ['r'] },
        { id: 'm', op: 'mul', in: ['x', 'e'] },
        { id: 'q', op: 'sin', in: ['m'] },
      ],
      outputs: { q: 'q' },
    });
    // e = exp(r) has shape [4, 1]: not in the [4, 5] group (different domain), so it is a plain
    // input; its load happens in the outer loop only.
    const k = jsTarget.emit(spec);
    const lines = k.source.split('\n');
    const outer = lines.findIndex((l) => l.includes('for (let i0'));
    const inner = lines.findIndex((l) => l.includes('for (let i1'));
    const loadE = lines.findIndex((l) => /const v\d+ = in\d+\[o\d+_1\];/.test(l));
    expect(outer).toBeGreaterThanOrEqual(0);
    expect(loadE).toBeGreaterThan(outer);
    expect(loadE).toBeLessThan(inner);
  });

  it('runs as a registered tfjs kernel on tensors', () => {
    const { spec } = lower({
      graph: 'tfjs',
      inputs: { x: { shape: [3] }, y: { shape: [3] } },
      nodes: [
        { id: 'g', op: 'greater', in: ['x', 'y'] },
        { id: 'w', op: 'where', in: ['g', 'x', 'y'] },
        { id: 'i', op: 'cast', in: ['w'], attrs: { dtype: 'int32' } },
      ],
      outputs: { g: 'g', i: 'i' },
    });
    const k = jsTarget.emit(spec);
    jsTarget.check([k]);
    loadKernels([k]);
    const before = tf.memory().numTensors;
    const x = tf.tensor1d([1.5, -2.5, 3]);
    const y = tf.tensor1d([0, 0, 7]);
    const [g, i] = runKernel(k.name, [x, y]);
    expect(g!.dtype).toBe('bool');
    expect(Array.from(g!.dataSync())).toEqual([1, 0, 0]);
    expect(i!.dtype).toBe('int32');
    expect(Array.from(i!.dataSync())).toEqual([1, 0, 7]);
    tf.dispose([x, y, g!, i!]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rounds to float32 only before discontinuous steps, unless asked to round every op', () => {
    const { spec } = lower({
      graph: 'round',
      inputs: { x: { shape: [3] } },
      nodes: [
        { id: 'a', op: 'mul', in: ['x', 3] },
        { id: 'b', op: 'sin', in: ['a'] },
        { id: 'c', op: 'floor', in: ['a'] },
        { id: 'd', op: 'add', in: ['b', 'c'] },
      ],
      outputs: { d: 'd' },
    });
    const lazy = jsTarget.emit(spec).source;
    // a feeds floor: rounded; b, c, d are smooth or already integral: not rounded.
    expect(lazy.match(/Math\.fround/g)).toHaveLength(1);
    expect(lazy).toMatch(/const v\d+ = Math\.fround\(\(v\d+ \* v\d+\)\);/);
    const strict = new JsTarget({ roundIntermediates: true }).emit(spec).source;
    expect(strict.match(/Math\.fround/g)).toHaveLength(4);
  });

  it('rejects a kernel that does not type-check, with the diagnostics', () => {
    const spec: KernelSpec = {
      domain: [2],
      inputs: [{ dtype: 'float32', size: 2 }],
      values: [
        { kind: 'load', buffer: { input: 0 }, strides: [1], dtype: 'float32' },
        { kind: 'expr', expr: kir.exp(kir.load(0, 'float32')), args: [0], dtype: 'float32' },
      ],
      outputs: [{ value: 1, dtype: 'float32', shape: [2] }],
      label: 'bad',
    };
    // Kernel IR renders only well-typed code: tamper with the source to see the checker object.
    const good = jsTarget.emit(spec);
    const k = { ...good, name: `${good.name}_bad`, source: good.source.replace('Math.exp(', 'Math.frobnicate(') };
    expect(k.source).toContain('Math.frobnicate(v0)');
    expect(() => jsTarget.check([k])).toThrow(/frobnicate/);
  });

  it('uses a float32-accurate fast tanh, and Math.tanh when fast math is off', () => {
    const json = {
      graph: 'tanh',
      inputs: { x: { shape: [4001] } },
      nodes: [
        { id: 't', op: 'tanh', in: ['x'] },
        { id: 'n', op: 'neg', in: ['t'] },
      ],
      outputs: { n: 'n' },
    };
    const { spec } = lower(json);
    const fast = jsTarget.emit(spec);
    const exact = new JsTarget({ fastMath: false }).emit(spec);
    expect(fast.source).toContain('loom_tanh32(');
    expect(exact.source).toContain('Math.tanh(');
    expect(fast.name).not.toBe(exact.name);
    jsTarget.check([fast, exact]);
    loadKernels([fast, exact]);
    const x = Float32Array.from({ length: 4001 }, (_v, i) => (i - 2000) / 200); // [-10, 10]
    const a = new Float32Array(4001);
    const b = new Float32Array(4001);
    kernelFunction(fast.name)(x, a);
    kernelFunction(exact.name)(x, b);
    let worst = 0;
    for (let i = 0; i < x.length; i++) {
      expect(b[i]).toBe(Math.fround(-Math.tanh(x[i]!)));
      worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    }
    expect(worst).toBeLessThan(3e-7);
  });
});
