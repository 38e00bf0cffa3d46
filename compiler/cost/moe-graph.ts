/**
 * Generates the sectional-MoE layer (spec Part A.3) as graph JSON for a given (d0, E, L, L',
 * heads). E changes param shapes, so the shipped graphs/moe/*.graph.json are this generator's
 * output for a default config (regenerate with `node bin/run-ts.js bench/moe.ts --write-graphs`).
 *
 * Layer, for x: [B, L, d0]:
 * 1. pre-expert block: single-head self-attention at width d0 with output projection and residual;
 * 2. reduction L -> L': attention pooling with L' learned queries (default) or strided mean pooling;
 * 3. sectioning: [B, L', d0] -> [B, L', E, s] -> [B, E, L', s]; the E experts run as one batched
 *    program (their weights are stacked [E, s, s] and matmul broadcasts over E);
 * 4. expert e: self-attention of width s with `heads` heads, output projection, residual, and an
 *    optional FFN s -> m*s -> s (relu) with residual;
 * 5. recombination: back to [B, L', d0], optional d0 x d0 mixing projection, residual from step 2.
 */
import { LoomError } from '../errors.ts';

export interface MoeGraphConfig {
  d0: number;
  E: number;
  L: number;
  /** L' (reduced sequence length). */
  Lp: number;
  /** Attention heads per expert; must divide s = d0/E. Default 1. */
  heads?: number;
  /** Expert FFN expansion ratio; 0 = no FFN. Default 0. */
  m?: number;
  /** Output mixing projection d0 x d0. Default true. */
  mix?: boolean;
  /**
   * How the experts run: 'batched' (default) as one program over stacked [E, s, s] weights, so the
   * kernel count does not depend on E; 'per-expert' as E separate blocks (slice, own [s, s] weights,
   * concat), so every expert issues its own kernels, as when experts are dispatched one by one.
   */
  dispatch?: 'batched' | 'per-expert';
  /** Sequence reduction: learned-query attention pooling (default) or strided mean pooling (needs L' | L). */
  reduction?: 'attention' | 'mean';
}

type Json = Record<string, unknown>;
type Node = { id: string; op: string; in: (string | number)[]; attrs?: Json; doc?: string };
type Param = { shape: number[]; init: unknown; doc?: string };

export interface MoeGraphJson {
  $schema: string;
  graph: string;
  version: 1;
  doc: string;
  inputs: Record<string, { dtype: 'float32' | 'int32'; shape: (number | string)[]; doc?: string }>;
  params: Record<string, Param>;
  nodes: Node[];
  outputs: Record<string, string>;
}

/** Checks the config; every violation is an E_SHAPE LoomError that says what would have to hold. */
export function checkMoeConfig(c: MoeGraphConfig): Required<MoeGraphConfig> & { s: number } {
  const heads = c.heads ?? 1;
  const full = { heads, m: c.m ?? 0, mix: c.mix ?? true, reduction: c.reduction ?? 'attention', dispatch: c.dispatch ?? 'batched', ...c, s: 0 } as Required<MoeGraphConfig> & { s: number };
  const bad = (message: string, expected: string, found: string): never => {
    throw new LoomError({ code: 'E_SHAPE', message: `sectional MoE: ${message}`, expected, found });
  };
  for (const k of ['d0', 'E', 'L', 'Lp'] as const)
    if (!Number.isInteger(c[k]) || c[k] < 1) bad(`${k} must be a positive integer`, 'an integer >= 1', String(c[k]));
  if (!Number.isInteger(heads) || heads < 1) bad('heads must be a positive integer', 'an integer >= 1', String(heads));
  if (!(full.m >= 0) || !Number.isInteger(full.m)) bad('the FFN ratio m must be a non-negative integer', 'an integer >= 0', String(full.m));
  if (c.d0 % c.E !== 0) bad(`E = ${c.E} does not divide d0 = ${c.d0}`, `E a divisor of ${c.d0}`, `d0 mod E = ${c.d0 % c.E}`);
  const s = c.d0 / c.E;
  if (s % heads !== 0) bad(`heads = ${heads} does not divide the section width s = d0/E = ${s}`, `heads a divisor of ${s}`, `s mod heads = ${s % heads}`);
  if (full.dispatch === 'per-expert' && heads !== 1) bad('per-expert dispatch supports one head per expert', 'heads = 1', String(heads));
  if (c.Lp > c.L) bad(`L' = ${c.Lp} exceeds L = ${c.L}`, `L' <= ${c.L}`, String(c.Lp));
  if (full.reduction === 'mean' && c.L % c.Lp !== 0) bad(`strided mean pooling needs L' | L`, `L' a divisor of ${c.L}`, `L mod L' = ${c.L % c.Lp}`);
  full.s = s;
  return full;
}

/** Emits the layer's params and nodes; values are prefixed with `p` (e.g. "" or "moe_"). */
function layerBody(c: ReturnType<typeof checkMoeConfig>, x: string, p = ''): { params: Record<string, Param>; nodes: Node[]; out: string } {
  const { d0, E, L, Lp, heads, m, s } = c;
  const dh = s / heads;
  const params: Record<string, Param> = {};
  const nodes: Node[] = [];
  const glorot = 'glorot_uniform';
  const op = (id: string, o: string, inputs: (string | number)[], attrs?: Json): string => {
    nodes.push({ id: p + id, op: o, in: inputs, ...(attrs ? { attrs } : {}) });
    return p + id;
  };
  const param = (name: string, shape: number[], init: unknown = glorot): string => {
    params[p + name] = { shape, init };
    return p + name;
  };
  // 1. pre-expert self-attention at width d0.
  const wq = param('pre_wq', [d0, d0]);
  const wk = param('pre_wk', [d0, d0]);
  const wv = param('pre_wv', [d0, d0]);
  const wo = param('pre_wo', [d0, d0]);
  const q = op('pre_q', 'matmul', [x, wq]);
  const k = op('pre_k', 'matmul', [x, wk]);
  const v = op('pre_v', 'matmul', [x, wv]);
  const sc = op('pre_scores', 'matmul', [q, k], { transpose_b: true });
  const scs = op('pre_scaled', 'mul', [sc, 1 / Math.sqrt(d0)]);
  const att = op('pre_att', 'softmax', [scs], { axis: -1 });
  const ctx = op('pre_ctx', 'matmul', [att, v]);
  const proj = op('pre_proj', 'matmul', [ctx, wo]);
  const h = op('pre_out', 'add', [x, proj]);
  // 2. reduction L -> L'.
  let z: string;
  if (c.reduction === 'mean') {
    const r = op('pool_split', 'reshape', [h], { shape: ['B', Lp, L / Lp, d0] });
    z = op('pool', 'mean', [r], { axes: [2] });
  } else {
    const queries = param('pool_queries', [Lp, d0], { normal: { std: 1 } });
    const pwq = param('pool_wq', [d0, d0]);
    const pwk = param('pool_wk', [d0, d0]);
    const pwv = param('pool_wv', [d0, d0]);
    const pq = op('pool_q', 'matmul', [queries, pwq]);
    const pk = op('pool_k', 'matmul', [h, pwk]);
    const pv = op('pool_v', 'matmul', [h, pwv]);
    const psc = op('pool_scores', 'matmul', [pq, pk], { transpose_b: true });
    const pss = op('pool_scaled', 'mul', [psc, 1 / Math.sqrt(d0)]);
    const patt = op('pool_att', 'softmax', [pss], { axis: -1 });
    z = op('pool', 'matmul', [patt, pv]);
  }
  if (c.dispatch === 'per-expert') {
    // 3-4. expert e on its own section [B, L', s] with its own weights; 5. concat back to d0.
    const outs: string[] = [];
    for (let e = 0; e < E; e++) {
      const w = (name: string, shape: number[]) => param(`exp${e}_${name}`, shape);
      const ze = op(`exp${e}_in`, 'slice', [z], { begin: [0, 0, e * s], size: [-1, Lp, s] });
      const eq = op(`exp${e}_q`, 'matmul', [ze, w('wq', [s, s])]);
      const ek = op(`exp${e}_k`, 'matmul', [ze, w('wk', [s, s])]);
      const ev = op(`exp${e}_v`, 'matmul', [ze, w('wv', [s, s])]);
      const esc = op(`exp${e}_scores`, 'matmul', [eq, ek], { transpose_b: true });
      const ess = op(`exp${e}_scaled`, 'mul', [esc, 1 / Math.sqrt(s)]);
      const eatt = op(`exp${e}_att`, 'softmax', [ess], { axis: -1 });
      const ectx = op(`exp${e}_ctx`, 'matmul', [eatt, ev]);
      let ey = op(`exp${e}_out`, 'add', [ze, op(`exp${e}_proj`, 'matmul', [ectx, w('wo', [s, s])])]);
      if (m > 0) {
        const fa = op(`exp${e}_ffn_act`, 'relu', [op(`exp${e}_ffn1`, 'matmul', [ey, w('ffn_w1', [s, m * s])])]);
        ey = op(`exp${e}_ffn_out`, 'add', [ey, op(`exp${e}_ffn2`, 'matmul', [fa, w('ffn_w2', [m * s, s])])]);
      }
      outs.push(ey);
    }
    let y = E === 1 ? outs[0]! : op('recombined', 'concat', outs, { axis: 2 });
    if (c.mix) y = op('mixed', 'matmul', [y, param('mix_w', [d0, d0])]);
    return { params, nodes, out: op('out', 'add', [z, y]) };
  }
  // 3. sectioning: [B, L', d0] -> [B, E, L', s].
  const zs = op('sections', 'reshape', [z], { shape: ['B', Lp, E, s] });
  const ze = op('experts_in', 'transpose', [zs], { perm: [0, 2, 1, 3] });
  // 4. E experts as one batched block; weights stacked over E.
  const eq = op('exp_q', 'matmul', [ze, param('exp_wq', [E, s, s])]);
  const ek = op('exp_k', 'matmul', [ze, param('exp_wk', [E, s, s])]);
  const ev = op('exp_v', 'matmul', [ze, param('exp_wv', [E, s, s])]);
  let ectx: string;
  if (heads === 1) {
    const esc = op('exp_scores', 'matmul', [eq, ek], { transpose_b: true });
    const ess = op('exp_scaled', 'mul', [esc, 1 / Math.sqrt(s)]);
    const eatt = op('exp_att', 'softmax', [ess], { axis: -1 });
    ectx = op('exp_ctx', 'matmul', [eatt, ev]);
  } else {
    // [B, E, L', s] -> [B, E, heads, L', dh]
    const split = (name: string, t: string) =>
      op(`${name}_heads`, 'transpose', [op(`${name}_split`, 'reshape', [t], { shape: ['B', E, Lp, heads, dh] })], { perm: [0, 1, 3, 2, 4] });
    const hq = split('exp_q', eq);
    const hk = split('exp_k', ek);
    const hv = split('exp_v', ev);
    const esc = op('exp_scores', 'matmul', [hq, hk], { transpose_b: true });
    const ess = op('exp_scaled', 'mul', [esc, 1 / Math.sqrt(dh)]);
    const eatt = op('exp_att', 'softmax', [ess], { axis: -1 });
    const hctx = op('exp_ctx_heads', 'matmul', [eatt, hv]);
    const merged = op('exp_ctx_merge', 'transpose', [hctx], { perm: [0, 1, 3, 2, 4] });
    ectx = op('exp_ctx', 'reshape', [merged], { shape: ['B', E, Lp, s] });
  }
  const eproj = op('exp_proj', 'matmul', [ectx, param('exp_wo', [E, s, s])]);
  let ey = op('exp_out', 'add', [ze, eproj]);
  if (m > 0) {
    const f1 = op('exp_ffn1', 'matmul', [ey, param('exp_ffn_w1', [E, s, m * s])]);
    const fa = op('exp_ffn_act', 'relu', [f1]);
    const f2 = op('exp_ffn2', 'matmul', [fa, param('exp_ffn_w2', [E, m * s, s])]);
    ey = op('exp_ffn_out', 'add', [ey, f2]);
  }
  // 5. recombination.
  const yt = op('experts_out', 'transpose', [ey], { perm: [0, 2, 1, 3] });
  let y = op('recombined', 'reshape', [yt], { shape: ['B', Lp, d0] });
  if (c.mix) y = op('mixed', 'matmul', [y, param('mix_w', [d0, d0])]);
  const out = op('out', 'add', [z, y]);
  return { params, nodes, out };
}

function describe(c: ReturnType<typeof checkMoeConfig>): string {
  return `d0=${c.d0} E=${c.E} s=${c.s} L=${c.L} L'=${c.Lp} heads=${c.heads} m=${c.m} mix=${c.mix} reduction=${c.reduction}${c.dispatch === 'per-expert' ? ' dispatch=per-expert' : ''}`;
}

/** The layer alone: x [B, L, d0] -> y [B, L', d0]. */
export function generateMoeLayer(cfg: MoeGraphConfig): MoeGraphJson {
  const c = checkMoeConfig(cfg);
  const body = layerBody(c, 'x');
  return {
    $schema: '../../schemas/graph.schema.json',
    graph: `sectional-moe-d${c.d0}-e${c.E}${c.reduction === 'mean' ? '-meanpool' : ''}`,
    version: 1,
    doc: `Generated by compiler/cost/moe-graph.ts: transformer-augmented sectional MoE layer (spec Part A.3), ${describe(c)}.`,
    inputs: { x: { dtype: 'float32', shape: ['B', c.L, c.d0] } },
    params: body.params,
    nodes: body.nodes,
    outputs: { y: body.out },
  };
}

/**
 * The synthetic task: x ~ N(0,1) [B, L, d0]; target t [B] = sqrt(L*s) * mean over tokens and
 * features of the first section x[:, :, 0:s] (scaled to unit variance, so predicting a constant
 * scores a loss of about 1). Head: mean over L' of the layer output, then d0 -> 1. Loss: mean
 * squared error. One training step: loss, gradients of every param, and plain SGD
 * (`new_<param>` = param - lr * grad), with lr a scalar input.
 */
export function generateMoeTrain(cfg: MoeGraphConfig): MoeGraphJson {
  const c = checkMoeConfig(cfg);
  const body = layerBody(c, 'x', 'moe_');
  const nodes = [...body.nodes];
  const params: Record<string, Param> = { ...body.params, head_w: { shape: [c.d0, 1], init: 'glorot_uniform' }, head_b: { shape: [1], init: 'zeros' } };
  const add = (id: string, op: string, inputs: (string | number)[], attrs?: Json) => nodes.push({ id, op, in: inputs, ...(attrs ? { attrs } : {}) });
  add('feat', 'mean', [body.out], { axes: [1] });
  add('pred_2d', 'matmul', ['feat', 'head_w']);
  add('pred_b', 'add', ['pred_2d', 'head_b']);
  add('pred', 'reshape', ['pred_b'], { shape: ['B'] });
  add('err', 'sub', ['pred', 'target']);
  add('sq', 'square', ['err']);
  add('loss', 'mean', ['sq']);
  const names = Object.keys(params);
  add('g', 'grad', ['loss'], { wrt: names });
  const outputs: Record<string, string> = { loss: 'loss' };
  for (const n of names) {
    add(`step_${n}`, 'mul', [`g.${n}`, 'lr']);
    add(`new_${n}`, 'sub', [n, `step_${n}`]);
    outputs[`new_${n}`] = `new_${n}`;
  }
  return {
    $schema: '../../schemas/graph.schema.json',
    graph: `sectional-moe-train-d${c.d0}-e${c.E}`,
    version: 1,
    doc: `Generated by compiler/cost/moe-graph.ts: one SGD step of the sectional MoE (${describe(c)}) on the synthetic task: predict sqrt(L*s) times the mean of the first feature section of x.`,
    inputs: {
      x: { dtype: 'float32', shape: ['B', c.L, c.d0] },
      target: { dtype: 'float32', shape: ['B'], doc: 'sqrt(L*s) * mean of x[:, :, 0:s] per sequence' },
      lr: { dtype: 'float32', shape: [], doc: 'SGD learning rate' },
    },
    params,
    nodes: nodes as Node[],
    outputs,
  };
}

/** Forward + backward of the layer alone (a scalar sum of the output, differentiated w.r.t. all params), for timing. */
export function generateMoeStep(cfg: MoeGraphConfig): MoeGraphJson {
  const c = checkMoeConfig(cfg);
  const body = layerBody(c, 'x');
  const names = Object.keys(body.params);
  const nodes: Node[] = [...body.nodes, { id: 'obj', op: 'mean', in: [body.out] }, { id: 'g', op: 'grad', in: ['obj'], attrs: { wrt: names } }];
  const outputs: Record<string, string> = { obj: 'obj' };
  for (const n of names) outputs[`d_${n}`] = `g.${n}`;
  return {
    $schema: '../../schemas/graph.schema.json',
    graph: `sectional-moe-step-d${c.d0}-e${c.E}`,
    version: 1,
    doc: `Generated by compiler/cost/moe-graph.ts: forward and backward of the sectional MoE layer (${describe(c)}).`,
    inputs: { x: { dtype: 'float32', shape: ['B', c.L, c.d0] } },
    params: body.params,
    nodes,
    outputs,
  };
}

/** The config of the shipped graphs/moe files. */
export const DEFAULT_MOE_CONFIG: MoeGraphConfig = { d0: 32, E: 4, L: 16, Lp: 4, heads: 2, m: 2, mix: true };

/** The shipped files: name -> JSON. */
export function defaultMoeGraphs(): Record<string, MoeGraphJson> {
  return {
    'sectional.graph.json': generateMoeLayer(DEFAULT_MOE_CONFIG),
    'sectional-meanpool.graph.json': generateMoeLayer({ ...DEFAULT_MOE_CONFIG, reduction: 'mean' }),
    'sectional-train.graph.json': generateMoeTrain(DEFAULT_MOE_CONFIG),
  };
}
