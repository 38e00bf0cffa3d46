import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { loadGraph, loadGraphJson } from '../../compiler/frontend/load.ts';
import { checkMoeConfig, defaultMoeGraphs, DEFAULT_MOE_CONFIG, generateMoeLayer } from '../../compiler/cost/moe-graph.ts';
import { initParams, interpret } from '../../runtime/interpreter.ts';
import { loomErr } from '../helpers/loom-error.ts';

await tf.setBackend('cpu');

describe('generator shape checks', () => {
  it('rejects E not dividing d0', () => {
    const e = loomErr(() => generateMoeLayer({ d0: 30, E: 4, L: 8, Lp: 2 }));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toContain('E = 4 does not divide d0 = 30');
  });

  it('rejects heads not dividing s', () => {
    const e = loomErr(() => generateMoeLayer({ d0: 32, E: 4, L: 8, Lp: 2, heads: 3 }));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toContain('heads = 3 does not divide the section width s = d0/E = 8');
  });

  it("rejects mean pooling when L' does not divide L, and L' > L", () => {
    expect(loomErr(() => generateMoeLayer({ d0: 8, E: 2, L: 10, Lp: 4, reduction: 'mean' })).message).toContain("L' | L");
    expect(loomErr(() => generateMoeLayer({ d0: 8, E: 2, L: 4, Lp: 8 })).message).toContain('exceeds L');
  });

  it('the frontend rejects a hand-edited sectioning reshape that does not split d0', () => {
    const json = generateMoeLayer({ d0: 32, E: 4, L: 8, Lp: 2 });
    const sec = json.nodes.find((n) => n.id === 'sections')!;
    sec.attrs = { shape: ['B', 2, 3, 8] }; // 3 * 8 = 24 != 32
    const e = loomErr(() => loadGraphJson(json, 'graphs/moe/bad.graph.json'));
    expect(e.code).toBe('E_SHAPE');
    expect(e.info.node).toBe('sections');
  });

  it('accepts every divisor of d0 as E', () => {
    const ok = [1, 2, 3, 4, 6, 8, 12, 24].map((E) => checkMoeConfig({ d0: 24, E, L: 4, Lp: 2 }).s);
    expect(ok).toEqual([24, 12, 8, 6, 4, 3, 2, 1]);
  });
});

describe('shipped graphs', () => {
  it('are the generator output for the default config', () => {
    for (const [name, json] of Object.entries(defaultMoeGraphs())) {
      const onDisk = JSON.parse(readFileSync(`graphs/moe/${name}`, 'utf8'));
      expect(onDisk, `${name} is stale: regenerate with node bin/run-ts.js bench/moe.ts --write-graphs`).toEqual(json);
    }
  });
});

describe('forward shapes', () => {
  const { d0, L, Lp, E } = DEFAULT_MOE_CONFIG;
  for (const file of ['graphs/moe/sectional.graph.json', 'graphs/moe/sectional-meanpool.graph.json']) {
    it(`${file}: [B, L, d0] -> [B, L', d0] and stacked expert weights [E, s, s]`, () => {
      const g = loadGraph(file);
      const p = initParams(g, 3);
      const x = tf.randomNormal([3, L, d0], 0, 1, 'float32', 1);
      const out = interpret(g, { x }, p);
      expect(out.y!.shape).toEqual([3, Lp, d0]);
      expect(Array.from(out.y!.dataSync()).every(Number.isFinite)).toBe(true);
      expect(g.params.find((q) => q.name === 'exp_wq')!.type.shape).toEqual([E, d0 / E, d0 / E]);
    });
  }

  it('mean pooling is the strided mean of the pre-expert output', () => {
    const g = loadGraph('graphs/moe/sectional-meanpool.graph.json');
    const probe = { ...g, outputs: { pre: 'pre_out', pool: 'pool' } };
    const out = interpret(probe, { x: tf.randomNormal([2, L, d0], 0, 1, 'float32', 2) }, initParams(g, 1));
    const ref = tf.mean(tf.reshape(out.pre!, [2, Lp, L / Lp, d0]), 2);
    const a = out.pool!.dataSync();
    const b = ref.dataSync();
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 5);
  });

  it('the batched experts equal E separate narrow attention blocks on the sections', () => {
    const cfg = { d0: 12, E: 3, L: 6, Lp: 3, heads: 1, m: 0, mix: false };
    const g = loadGraphJson(generateMoeLayer(cfg), 'graphs/moe/t.graph.json');
    const params = initParams(g, 5);
    const probe = { ...g, outputs: { z: 'pool', y: 'out' } };
    const out = interpret(probe, { x: tf.randomNormal([2, 6, 12], 0, 1, 'float32', 4) }, params);
    const s = 4;
    for (let e = 0; e < 3; e++) {
      // Expert e by hand: its section of z, its own weights, residual.
      const w = (n: string) => tf.squeeze(tf.slice(params[n]!, [e, 0, 0], [1, s, s]), [0]);
      const ze = tf.slice(out.z!, [0, 0, e * s], [-1, -1, s]);
      const q = tf.matMul(ze, w('exp_wq'));
      const k = tf.matMul(ze, w('exp_wk'));
      const v = tf.matMul(ze, w('exp_wv'));
      const att = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(s)));
      const ye = tf.add(ze, tf.matMul(tf.matMul(att, v), w('exp_wo')));
      // Without mixing, out = z + recombined experts: section e of out - z is ye.
      const got = tf.sub(tf.slice(out.y!, [0, 0, e * s], [-1, -1, s]), ze).dataSync();
      const want = ye.dataSync();
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 4);
    }
  });
  it("per-expert dispatch computes the batched layer: expert e's weights are slice e of the stacked ones", () => {
    const cfg = { d0: 12, E: 3, L: 6, Lp: 3, heads: 1, m: 2, mix: true };
    const batched = loadGraphJson(generateMoeLayer(cfg), 'graphs/moe/t.graph.json');
    const split = loadGraphJson(generateMoeLayer({ ...cfg, dispatch: 'per-expert' }), 'graphs/moe/t2.graph.json');
    const params = initParams(batched, 5);
    const own: Record<string, tf.Tensor> = {};
    for (const q of split.params) {
      const m = /^exp(\d+)_(.+)$/.exec(q.name);
      if (!m) own[q.name] = params[q.name]!;
      else {
        const stacked = params[`exp_${m[2]}`]!;
        own[q.name] = tf.squeeze(tf.slice(stacked, [Number(m[1]), 0, 0], [1, -1, -1]), [0]);
      }
    }
    expect(Object.keys(own).length).toBe(split.params.length);
    // 3 experts x 6 matrices each; no stacked weights.
    expect(split.params.filter((q) => q.name.startsWith('exp')).map((q) => q.type.shape)).toContainEqual([4, 8]);
    expect(split.params.some((q) => q.name.startsWith('exp_'))).toBe(false);
    const x = tf.randomNormal([2, 6, 12], 0, 1, 'float32', 4);
    const want = interpret(batched, { x }, params).y!.dataSync();
    const got = interpret(split, { x }, own).y!.dataSync();
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 4);
    expect(loomErr(() => generateMoeLayer({ ...cfg, heads: 2, d0: 24, dispatch: 'per-expert' })).message).toContain('one head per expert');
  });
});
