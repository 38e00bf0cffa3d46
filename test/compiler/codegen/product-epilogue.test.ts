/**
 * Product epilogues: with `productEpilogue`, a fused group's rank-2 matmul takes over the bias add
 * and the activation that follow it (the wasm product computes act(a x b + bias)); the loop then
 * reads the product's result. The lowering must leave every other shape of group alone, and the
 * compiled program must compute what the interpreter computes on every backend.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.ts';
import { exprText } from '../../../compiler/codegen/kir.ts';
import { lowerFused } from '../../../compiler/codegen/spec.ts';
import type { IRGraph } from '../../../compiler/ir.ts';
import { fusion } from '../../../compiler/passes/fusion.ts';
import { valueTypes } from '../../../compiler/passes/util.ts';
import { compileProgram } from '../../../runtime/exec.ts';
import { interpret } from '../../../runtime/interpreter.ts';
import { inlineGraph } from '../../helpers/inline-graph.ts';

function layer(extra: { nodes?: Record<string, unknown>[]; outputs?: Record<string, string>; bias?: (string | number)[] } = {}): IRGraph {
  return inlineGraph({
    graph: 'layer',
    inputs: { x: { shape: ['B', 3] }, w: { shape: [3, 5] }, b: { shape: extra.bias ?? [5] } },
    nodes: [
      { id: 'm', op: 'matmul', in: ['x', 'w'] },
      { id: 'z', op: 'add', in: ['m', 'b'] },
      { id: 'h', op: 'tanh', in: ['z'] },
      { id: 'd', op: 'square', in: ['h'] },
      ...(extra.nodes ?? []),
    ],
    outputs: extra.outputs ?? { h: 'h', d: 'd' },
  });
}

/** The layer over a stack of K = 3 matrices (vmap's K seeds): x [3, B, 3], w [3, 3, 5] (or one shared [3, 5]). */
function stackedLayer(bias: (string | number)[], w: number[] = [3, 3, 5]): IRGraph {
  return inlineGraph({
    graph: 'stacked',
    inputs: { x: { shape: [3, 'B', 3] }, w: { shape: w }, b: { shape: bias } },
    nodes: [
      { id: 'm', op: 'matmul', in: ['x', 'w'] },
      { id: 'z', op: 'add', in: ['m', 'b'] },
      { id: 'h', op: 'tanh', in: ['z'] },
      { id: 'd', op: 'square', in: ['h'] },
    ],
    outputs: { h: 'h', d: 'd' },
  });
}

function lowered(g: IRGraph, productEpilogue: boolean) {
  const f = fusion.run(g);
  const node = f.nodes.find((n) => n.op === 'fused' && n.body!.some((b) => b.op === 'matmul'));
  if (!node) throw new Error('no fused matmul');
  const types = valueTypes(f);
  const { spec } = lowerFused(node, new Map([['B', 4]]), node.inputs.map((r) => types.get(r)!), new Map(), { productEpilogue });
  const exprs = spec.values.flatMap((v) => (v.kind === 'expr' ? [exprText(v.expr)] : []));
  return { spec, exprs, inputOf: (id: string) => node.inputs.indexOf(id) };
}

describe('product epilogue lowering', () => {
  it('moves the bias add and tanh into the product; the loop keeps the rest', () => {
    const { spec, exprs, inputOf } = lowered(layer(), true);
    expect(spec.matmul).toMatchObject({ bias: inputOf('b'), activation: 'tanh' });
    expect(exprs.some((e) => e.includes('tanh'))).toBe(false);
    expect(exprs).toHaveLength(1); // the square
    // The exported tanh is the product's own buffer.
    expect(spec.inPlace).toBe(0);
  });

  it('leaves the group as it is when off', () => {
    const { spec, exprs } = lowered(layer(), false);
    expect(spec.matmul?.bias).toBeUndefined();
    expect(spec.matmul?.activation).toBeUndefined();
    expect(exprs.some((e) => e.includes('tanh'))).toBe(true);
  });

  it('takes a [1, N] bias as a row', () => {
    const { spec, inputOf } = lowered(layer({ bias: [1, 5] }), true);
    expect(spec.matmul).toMatchObject({ bias: inputOf('b'), activation: 'tanh' });
  });

  it('keeps the activation in the loop when the pre-activation is also read', () => {
    const { spec, exprs, inputOf } = lowered(layer({ outputs: { h: 'h', d: 'd', z: 'z' } }), true);
    expect(spec.matmul?.bias).toBe(inputOf('b'));
    expect(spec.matmul?.activation).toBeUndefined();
    expect(exprs.some((e) => e.includes('tanh'))).toBe(true);
  });

  it('takes one bias row per matrix of a stacked product, or one row shared by all of them', () => {
    const per = lowered(stackedLayer([3, 1, 5]), true);
    expect(per.spec.matmul).toMatchObject({ bias: per.inputOf('b'), biasPerMatrix: true, activation: 'tanh', shape: [3, 4, 5] });
    expect(per.exprs).toHaveLength(1);
    for (const shared of [[5], [1, 5], [1, 1, 5]]) {
      const { spec, inputOf } = lowered(stackedLayer(shared), true);
      expect(spec.matmul).toMatchObject({ bias: inputOf('b'), activation: 'tanh' });
      expect(spec.matmul?.biasPerMatrix).toBeUndefined();
    }
    // A stack times one shared weight matrix is a stacked product too.
    expect(lowered(stackedLayer([3, 1, 5], [3, 5]), true).spec.matmul).toMatchObject({ biasPerMatrix: true, activation: 'tanh' });
  });

  it('takes a per-matrix bias that reaches the add through a view after the product (as vmap writes it)', () => {
    const g = inlineGraph({
      graph: 'vmapped-layer',
      inputs: { x: { shape: [3, 'B', 3] }, w: { shape: [3, 3, 5] }, b: { shape: [3, 5] } },
      nodes: [
        { id: 'm', op: 'matmul', in: ['x', 'w'] },
        { id: 'rows', op: 'expand_dims', in: ['b'], attrs: { axis: 1 } },
        { id: 'z', op: 'add', in: ['m', 'rows'] },
        { id: 'h', op: 'tanh', in: ['z'] },
      ],
      outputs: { h: 'h' },
    });
    const { spec, exprs, inputOf } = lowered(g, true);
    expect(spec.matmul).toMatchObject({ bias: inputOf('b'), biasPerMatrix: true, activation: 'tanh', shape: [3, 4, 5] });
    expect(exprs).toHaveLength(0);
  });

  it('absorbs no addend of a stacked product that is neither one row nor one row per matrix', () => {
    for (const bias of [[3, 'B', 5], [1, 'B', 5], [3, 1, 1]]) {
      const { spec, exprs } = lowered(stackedLayer(bias), true);
      expect(spec.matmul?.bias, bias.join(',')).toBeUndefined();
      expect(spec.matmul?.activation).toBeUndefined();
      expect(exprs.some((e) => e.includes('tanh'))).toBe(true);
    }
  });

  it('absorbs nothing when the product is read twice, or the addend is not one row', () => {
    const twice = lowered(layer({ nodes: [{ id: 'n', op: 'neg', in: ['m'] }], outputs: { h: 'h', n: 'n' } }), true);
    expect(twice.spec.matmul?.bias).toBeUndefined();
    expect(twice.spec.matmul?.activation).toBeUndefined();
    const full = lowered(layer({ bias: ['B', 5] }), true);
    expect(full.spec.matmul?.bias).toBeUndefined();
    expect(full.spec.matmul?.activation).toBeUndefined();
  });
});

describe('product epilogue, compiled against the interpreter', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });
  const cases: [string, IRGraph][] = [
    ['bias + tanh', layer()],
    ['bias only (pre-activation read)', layer({ outputs: { h: 'h', z: 'z' } })],
    ['[1, N] bias', layer({ bias: [1, 5] })],
    ['stacked product, a bias row per matrix', stackedLayer([3, 1, 5])],
    ['stacked product, one shared bias row', stackedLayer([5])],
    ['stack times one matrix, a bias row per matrix', stackedLayer([3, 1, 5], [3, 5])],
  ];
  for (const backend of ['wasm', 'cpu'])
    for (const [name, g] of cases)
      it(`${name} on ${backend}`, async () => {
        await tf.setBackend(backend);
        const prog = compileProgram(g, { log: () => {} });
        const shapeOf = (name: string) => g.inputs.find((i) => i.name === name)!.type.shape.map((d) => (d === 'B' ? 4 : d)) as number[];
        const bShape = shapeOf('b');
        const sets = [1, 2].map((s) => ({
          x: tf.randomUniform(shapeOf('x'), -2, 2, 'float32', s),
          w: tf.randomUniform(shapeOf('w'), -1, 1, 'float32', s + 10),
          b: tf.randomUniform(bShape, -1, 1, 'float32', s + 20),
        }));
        try {
          const kernels = prog.kernels(sets[0]!);
          // On wasm the product applies tanh; elsewhere the loop does.
          const loopTanh = kernels.some((k) => /loom_tanh32\(/.test(k.source));
          expect(loopTanh).toBe(backend !== 'wasm' || name.startsWith('bias only'));
          for (const set of sets) {
            const out = prog.run(set, {});
            const ref = interpret(g, set, {});
            for (const k of Object.keys(ref)) {
              const diff = tf.max(tf.abs(tf.sub(out[k]!, ref[k]!))).dataSync()[0]!;
              expect(diff, k).toBeLessThan(1e-5);
            }
            tf.dispose([...Object.values(out), ...Object.values(ref)]);
          }
        } finally {
          tf.dispose(sets.flatMap((s) => Object.values(s)));
        }
      });
});
