/**
 * Graphs the compiler benchmark and the executor tests share: a 4-64-64-2 tanh MLP train step
 * (forward, mean-squared-error loss, backward by the autodiff pass, Adam written as graph ops)
 * and a 1-D elementwise chain.
 */
import { loadGraphJson, memoryFiles } from '../compiler/frontend/load.ts';
import type { IRGraph } from '../compiler/ir.ts';

export const MLP_PARAMS = ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;
export const MLP_SHAPES: Record<(typeof MLP_PARAMS)[number], number[]> = { w1: [4, 64], b1: [64], w2: [64, 64], b2: [64], w3: [64, 2], b3: [2] };
export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

type Json = Record<string, unknown>;

/**
 * One Adam step of an MSE-trained MLP. Inputs: obs [B, 4], target [B, 2], the step count t
 * (float, from 1), the learning rate, and Adam's moments m_<p>, v_<p>. Outputs: the loss, the
 * new params new_<p> and the new moments m_<p>, v_<p>. Same update as tf.train.adam:
 * p -= lr * m̂ / (sqrt(v̂) + eps).
 */
export function mlpTrainStepJson(): Json {
  const { beta1, beta2, epsilon } = ADAM;
  const nodes: Json[] = [
    { id: 'h1', op: 'matmul', in: ['obs', 'w1'] },
    { id: 'z1', op: 'add', in: ['h1', 'b1'] },
    { id: 'a1', op: 'tanh', in: ['z1'] },
    { id: 'h2', op: 'matmul', in: ['a1', 'w2'] },
    { id: 'z2', op: 'add', in: ['h2', 'b2'] },
    { id: 'a2', op: 'tanh', in: ['z2'] },
    { id: 'h3', op: 'matmul', in: ['a2', 'w3'] },
    { id: 'y', op: 'add', in: ['h3', 'b3'] },
    { id: 'd', op: 'sub', in: ['y', 'target'] },
    { id: 'sq', op: 'square', in: ['d'] },
    { id: 'loss', op: 'mean', in: ['sq'] },
    { id: 'g', op: 'grad', in: ['loss'], attrs: { wrt: [...MLP_PARAMS] } },
    { id: 'bp1', op: 'pow', in: [beta1, 't'] },
    { id: 'c1', op: 'sub', in: [1, 'bp1'] },
    { id: 'bp2', op: 'pow', in: [beta2, 't'] },
    { id: 'c2', op: 'sub', in: [1, 'bp2'] },
  ];
  const outputs: Record<string, string> = { loss: 'loss' };
  const inputs: Json = { obs: { shape: ['B', 4] }, target: { shape: ['B', 2] }, t: { shape: [] }, lr: { shape: [] } };
  const params: Json = {};
  for (const p of MLP_PARAMS) {
    const gp = `g.${p}`;
    nodes.push(
      { id: `ma_${p}`, op: 'mul', in: [beta1, `m_${p}`] },
      { id: `mb_${p}`, op: 'mul', in: [1 - beta1, gp] },
      { id: `mn_${p}`, op: 'add', in: [`ma_${p}`, `mb_${p}`] },
      { id: `va_${p}`, op: 'mul', in: [beta2, `v_${p}`] },
      { id: `gg_${p}`, op: 'square', in: [gp] },
      { id: `vb_${p}`, op: 'mul', in: [1 - beta2, `gg_${p}`] },
      { id: `vn_${p}`, op: 'add', in: [`va_${p}`, `vb_${p}`] },
      { id: `mh_${p}`, op: 'div', in: [`mn_${p}`, 'c1'] },
      { id: `vh_${p}`, op: 'div', in: [`vn_${p}`, 'c2'] },
      { id: `sv_${p}`, op: 'sqrt', in: [`vh_${p}`] },
      { id: `de_${p}`, op: 'add', in: [`sv_${p}`, epsilon] },
      { id: `r_${p}`, op: 'div', in: [`mh_${p}`, `de_${p}`] },
      { id: `u_${p}`, op: 'mul', in: [`r_${p}`, 'lr'] },
      { id: `pn_${p}`, op: 'sub', in: [p, `u_${p}`] },
    );
    outputs[`new_${p}`] = `pn_${p}`;
    outputs[`m_${p}`] = `mn_${p}`;
    outputs[`v_${p}`] = `vn_${p}`;
    inputs[`m_${p}`] = { shape: MLP_SHAPES[p] };
    inputs[`v_${p}`] = { shape: MLP_SHAPES[p] };
    params[p] = { shape: MLP_SHAPES[p], init: p.startsWith('w') ? 'glorot_uniform' : 'zeros' };
  }
  return { graph: 'mlp-4-64-64-2-adam-step', version: 1, inputs, params, nodes, outputs };
}

/** tanh(a*x + b)*c + d over a 1-D input of any length. */
export function chainJson(): Json {
  return {
    graph: 'tanh-chain',
    version: 1,
    inputs: { x: { shape: ['N'] }, a: { shape: [] }, b: { shape: [] }, c: { shape: [] }, d: { shape: [] } },
    nodes: [
      { id: 'ax', op: 'mul', in: ['a', 'x'] },
      { id: 'z', op: 'add', in: ['ax', 'b'] },
      { id: 't', op: 'tanh', in: ['z'] },
      { id: 'tc', op: 'mul', in: ['t', 'c'] },
      { id: 'y', op: 'add', in: ['tc', 'd'] },
    ],
    outputs: { y: 'y' },
  };
}

export function loadJson(json: Json, name: string): IRGraph {
  return loadGraphJson(json, `bench/${name}.graph.json`, { files: memoryFiles({}) });
}
