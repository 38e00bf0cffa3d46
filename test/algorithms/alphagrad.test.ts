import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadGraphJson } from '../../compiler/frontend/load.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';

await tf.setBackend('cpu');
const startTensors = tf.memory().numTensors;
afterAll(() => expect(tf.memory().numTensors).toBe(startTensors));

const AG = resolve('graphs/optimizers/alphagrad.graph.json');

interface Hp { alpha: number; eps: number; momentum: number; dampening: number; weight_decay: number; nesterov: number; maximize: number }
const DEFAULTS: Hp = { alpha: 1, eps: 1e-8, momentum: 0, dampening: 0, weight_decay: 0, nesterov: 0, maximize: 0 };

/** Loads the optimizer with some `hp_*` const nodes overridden (how a pipeline configures them). */
function load(hp: Partial<Hp> = {}): IRGraph {
  const json = JSON.parse(readFileSync(AG, 'utf8')) as { nodes: { id: string; op: string; attrs?: { value?: unknown } }[] };
  for (const [name, value] of Object.entries(hp)) json.nodes.find((x) => x.id === `hp_${name}` && x.op === 'const')!.attrs!.value = value;
  return loadGraphJson(json, AG);
}

interface State { param: number[]; buf: number[]; step: number }
function step(g: IRGraph, s: State, grad: number[], lr: number, segment: number[] = grad.map(() => 0)): State {
  const t: TensorMap = {
    param: tf.tensor1d(s.param),
    grad: tf.tensor1d(grad),
    buf: tf.tensor1d(s.buf),
    segment: tf.tensor1d(segment, 'int32'),
    step: tf.scalar(s.step, 'int32'),
    lr: tf.scalar(lr),
  };
  const o = interpret(g, t, {});
  const r = { param: Array.from(o.param!.dataSync()), buf: Array.from(o.buf!.dataSync()), step: o.step!.dataSync()[0]! };
  tf.dispose([...Object.values(t), ...Object.values(o)]);
  return r;
}

/** Float64 reference of spec §3.2 (PyTorch-SGD momentum form), written from the spec. */
function refStep(s: State, grad: number[], lr: number, hp: Hp = DEFAULTS): State {
  const g = grad.map((x) => (hp.maximize ? -x : x));
  const norm = Math.sqrt(g.reduce((a, x) => a + x * x, 0));
  let d = g.map((x, i) => Math.tanh((hp.alpha * x) / (norm + hp.eps)) + hp.weight_decay * s.param[i]!);
  let buf = s.buf;
  if (hp.momentum !== 0) {
    buf = s.step === 0 ? d : s.buf.map((b, i) => hp.momentum * b + (1 - hp.dampening) * d[i]!);
    d = hp.nesterov ? d.map((x, i) => x + hp.momentum * buf[i]!) : buf;
  }
  return { param: s.param.map((p, i) => p - lr * d[i]!), buf, step: s.step + 1 };
}

const close = (a: number[], b: number[], tol: number) => {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(Math.abs(x - b[i]!), `index ${i}: ${x} vs ${b[i]}`).toBeLessThan(tol));
};

describe('alphagrad: hand-computed updates', () => {
  it('no momentum: g = [3, 4] -> g~ = [0.6, 0.8], step = lr tanh(g~)', () => {
    // tanh(0.6) = 0.5370496, tanh(0.8) = 0.6640368
    const s = step(load(), { param: [1, -1], buf: [0, 0], step: 0 }, [3, 4], 1e-3);
    close(s.param, [1 - 0.5370496e-3, -1 - 0.6640368e-3], 1e-7);
    expect(s.step).toBe(1);
  });

  it('momentum 0.9: buffer = g\' on the first step, then 0.9 buf + g\'', () => {
    const g = load({ momentum: 0.9 });
    const s1 = step(g, { param: [1, -1], buf: [0, 0], step: 0 }, [3, 4], 0.1);
    close(s1.buf, [0.5370496, 0.6640368], 1e-6);
    close(s1.param, [1 - 0.05370496, -1 - 0.06640368], 1e-6);
    // second gradient [0, -2] -> g~ = [0, -1], g' = [0, -0.7615942]; buf = [0.4833446, 0.5976331 - 0.7615942]
    const s2 = step(g, s1, [0, -2], 0.1);
    close(s2.buf, [0.4833446, -0.1639611], 1e-6);
    close(s2.param, [s1.param[0]! - 0.04833446, s1.param[1]! + 0.01639611], 1e-6);
  });

  it('alpha -> 0 gives the normalised gradient direction (scaled by alpha)', () => {
    const grad = [0.3, -1.2, 0.05, 2.0];
    const norm = Math.hypot(...grad);
    const alpha = 1e-3;
    const s = step(load({ alpha }), { param: [0, 0, 0, 0], buf: [0, 0, 0, 0], step: 0 }, grad, 1);
    close(s.param.map((p) => -p / alpha), grad.map((x) => x / norm), 1e-4);
  });

  it('large alpha gives sign updates; weight decay is added after tanh', () => {
    const grad = [0.3, -1.2, 0.05, 2.0, -0.01];
    const s = step(load({ alpha: 1e5 }), { param: [0, 0, 0, 0, 0], buf: [0, 0, 0, 0, 0], step: 0 }, grad, 0.01);
    close(s.param, grad.map((x) => -0.01 * Math.sign(x)), 1e-7);
    // wd 0.5 on param 2: direction = tanh(...) + 1 -> with alpha 1e5 and g > 0: 2
    const w = step(load({ alpha: 1e5, weight_decay: 0.5 }), { param: [2, 2], buf: [0, 0], step: 0 }, [1, -1], 0.1);
    close(w.param, [2 - 0.1 * 2, 2 - 0.1 * 0], 1e-6);
  });

  it('a zero gradient gives no update (eps guards the norm)', () => {
    const s = step(load(), { param: [1, 2], buf: [0, 0], step: 3 }, [0, 0], 0.1);
    expect(s.param).toEqual([1, 2]);
  });
});

describe('alphagrad against the float64 reference over several steps', () => {
  const grads = (k: number, n: number) => Array.from({ length: n }, (_, i) => Math.sin(1.3 * k + 0.7 * i) * (1 + (i % 3)) + 0.1 * k);
  const cases: [string, Partial<Hp>][] = [
    ['defaults', {}],
    ['momentum 0.9', { momentum: 0.9 }],
    ['momentum, dampening, weight decay, alpha 3', { momentum: 0.9, dampening: 0.1, weight_decay: 0.01, alpha: 3 }],
    ['nesterov', { momentum: 0.8, nesterov: 1 }],
    ['maximize', { maximize: 1, momentum: 0.5 }],
  ];
  for (const [name, hp] of cases)
    it(name, () => {
      const g = load(hp);
      const full = { ...DEFAULTS, ...hp };
      let a: State = { param: Array.from({ length: 7 }, (_, i) => 0.1 * i - 0.3), buf: Array(7).fill(0), step: 0 };
      let b = a;
      for (let k = 0; k < 12; k++) {
        const lr = 0.05 * (1 - k / 12); // annealed lr
        a = step(g, a, grads(k, 7), lr);
        b = refStep(b, grads(k, 7), lr, full);
      }
      close(a.param, b.param, 2e-6);
      expect(a.step).toBe(12);
    });

  it('with constant lr the PyTorch form equals the paper form v = mu v + lr g\', theta -= v (A10)', () => {
    const g = load({ momentum: 0.9 });
    let s: State = { param: [0.5, -0.5, 1], buf: [0, 0, 0], step: 0 };
    let theta = [...s.param];
    let v = [0, 0, 0];
    for (let k = 0; k < 8; k++) {
      const gr = grads(k, 3);
      s = step(g, s, gr, 0.02);
      const n = Math.hypot(...gr);
      v = v.map((x, i) => 0.9 * x + 0.02 * Math.tanh(gr[i]! / (n + 1e-8)));
      theta = theta.map((x, i) => x - v[i]!);
    }
    close(s.param, theta, 2e-6);
  });
});

describe('per-tensor wiring', () => {
  it('a [3, 4] tensor is flattened, updated with its whole-tensor norm, and reshaped back', () => {
    const wrapper = {
      graph: 'alphagrad-matrix',
      inputs: { W: { shape: [3, 4] }, dW: { shape: [3, 4] }, buf: { shape: [12] }, seg: { dtype: 'int32', shape: [12] }, step: { dtype: 'int32', shape: [] }, lr: { shape: [] } },
      nodes: [
        { id: 'w_flat', op: 'reshape', in: ['W'], attrs: { shape: [-1] } },
        { id: 'g_flat', op: 'reshape', in: ['dW'], attrs: { shape: [-1] } },
        { id: 'opt', op: 'call', graph: 'alphagrad.graph.json', in: { param: 'w_flat', grad: 'g_flat', buf: 'buf', segment: 'seg', step: 'step', lr: 'lr' } },
        { id: 'W_new', op: 'reshape', in: ['opt.param'], attrs: { shape: [3, 4] } },
      ],
      outputs: { W: 'W_new', buf: 'opt.buf', step: 'opt.step' },
    };
    const g = loadGraphJson(wrapper, resolve('graphs/optimizers/matrix.graph.json'));
    const W = Array.from({ length: 12 }, (_, i) => i / 10);
    const dW = Array.from({ length: 12 }, (_, i) => Math.cos(i));
    const t: TensorMap = { W: tf.tensor2d(W, [3, 4]), dW: tf.tensor2d(dW, [3, 4]), buf: tf.zeros([12]), seg: tf.zeros([12], 'int32'), step: tf.scalar(0, 'int32'), lr: tf.scalar(0.1) };
    const o = interpret(g, t, {});
    expect(o.W!.shape).toEqual([3, 4]);
    close(Array.from(o.W!.dataSync()), refStep({ param: W, buf: Array(12).fill(0), step: 0 }, dW, 0.1).param, 1e-6);
    tf.dispose([...Object.values(t), ...Object.values(o)]);
  });

  it('several tensors concatenated with segment ids are each normalised by their own norm', () => {
    // tensors a (3 elements), b (2), c (4) in one flat vector, as a driver that concatenates all params would pass them
    const sizes = [3, 2, 4];
    const segment = sizes.flatMap((n, k) => Array(n).fill(k) as number[]);
    const g = load({ momentum: 0.9, weight_decay: 0.01 });
    const hp = { ...DEFAULTS, momentum: 0.9, weight_decay: 0.01 };
    const P = segment.length;
    let flat: State = { param: Array.from({ length: P }, (_, i) => Math.sin(i)), buf: Array(P).fill(0), step: 0 };
    let parts: State[] = sizes.map((n, k) => ({ param: flat.param.slice(segment.indexOf(k), segment.indexOf(k) + n), buf: Array(n).fill(0), step: 0 }));
    for (let it = 0; it < 4; it++) {
      const grad = Array.from({ length: P }, (_, i) => (i < 3 ? 100 : i < 5 ? 0.01 : 1) * Math.cos(i + it));
      flat = step(g, flat, grad, 0.1, segment);
      parts = parts.map((st, k) => refStep(st, grad.slice(segment.indexOf(k), segment.indexOf(k) + sizes[k]!), 0.1, hp));
    }
    close(flat.param, parts.flatMap((p) => p.param), 2e-6);
    // with one segment the tensors would share a norm dominated by the first one: a different result
    const joint = step(g, { param: Array(P).fill(0), buf: Array(P).fill(0), step: 0 }, Array.from({ length: P }, (_, i) => (i < 3 ? 100 : 0.01)), 1);
    expect(Math.abs(joint.param[4]!)).toBeLessThan(1e-3);
  });
});
