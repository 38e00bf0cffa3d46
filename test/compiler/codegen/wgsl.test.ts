/**
 * The WGSL target, run for real: fused groups of graphs in graphs/ and of random elementwise
 * chains are lowered, rendered to WGSL, compiled and run on Dawn (raw WebGPU: storage buffers
 * in, one dispatch per output, the output mapped back), and compared with the reference
 * interpreter on the cpu backend running the group's ops one by one.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.ts';
import { lowerFused } from '../../../compiler/codegen/spec.ts';
import { WgslTarget, wgslTarget, wgslUnsupported } from '../../../compiler/codegen/wgsl.ts';
import { kir } from '../../../compiler/codegen/kir.ts';
import { compileGraph } from '../../../compiler/compile.ts';
import { symbolsOf } from '../../../compiler/dims.ts';
import { loadGraph, loadGraphJson } from '../../../compiler/frontend/load.ts';
import type { IRGraph } from '../../../compiler/ir.ts';
import { fusedNodes, groupCases, mismatch, randomChain } from '../../helpers/fused-groups.ts';
import { webgpuDevice } from '../../helpers/webgpu.ts';

const setup = await webgpuDevice();
if (!setup.gpu) console.warn(`WGSL target tests on Dawn skipped: ${setup.reason}`);
else console.log(`WGSL target tests on Dawn: ${setup.gpu.adapter}`);

/**
 * Lowers every fused node of `g` at `env`, runs each output's shader on the GPU and the node's
 * ops in the interpreter (cpu) on the same random inputs; returns the number of shaders run.
 */
async function checkGraph(g: IRGraph, env: ReadonlyMap<string, number>, seed: number, what: string): Promise<number> {
  const gpu = setup.gpu!;
  let shaders = 0;
  for (const c of groupCases(g, env, seed, what)) {
    for (const shader of wgslTarget.emit(c.spec).shaders) {
      const buffers = shader.reads.map((r) => {
        if ('matmul' in r.buffer) return c.product!;
        const inp = c.inputs[r.buffer.input]!;
        return inp.dtype === 'float32' ? Float32Array.from(inp.values) : Int32Array.from(inp.values);
      });
      const got = await gpu.run(shader, buffers);
      const { err, at } = mismatch(got, c.want[shader.output]!, shader.dtype);
      expect(err, `${c.label} output ${shader.output}: ${at}\n${shader.source}`).toBeLessThan(2e-5);
      shaders++;
    }
  }
  return shaders;
}

const GRAPHS: [string, Record<string, number>][] = [
  ['graphs/algorithms/ppo-cartpole.loss.graph.json', { B: 37 }],
  ['graphs/algorithms/ppo-pendulum.loss.graph.json', { B: 37 }],
  ['graphs/algorithms/amppo/update.graph.json', { B: 37 }],
  ['graphs/algorithms/gae.graph.json', { T: 37 }],
  ['graphs/envs/cartpole.step.graph.json', { N: 70 }],
  ['graphs/envs/acrobot.step.graph.json', { N: 70 }],
  ['graphs/examples/mlp-loss-grad.graph.json', { B: 37 }],
];

describe('the WGSL target: sources', () => {
  it('gives each output its own shader, with a hash that depends only on what it computes', () => {
    const g = compileGraph(loadGraph('graphs/algorithms/ppo-cartpole.loss.graph.json')).graph;
    const env = new Map([['B', 37]]);
    const kernels = fusedNodes(g).map(({ node, inputTypes }) => ({ node, k: new WgslTarget().emit(lowerFused(node, env, inputTypes).spec) }));
    const multi = kernels.find(({ node }) => Object.keys(node.outputTypes!).length > 1)!;
    expect(multi.k.shaders).toHaveLength(Object.keys(multi.node.outputTypes!).length);
    // The same graph lowered again renders the same sources and hashes.
    const again = fusedNodes(g).map(({ node, inputTypes }) => wgslTarget.emit(lowerFused(node, env, inputTypes).spec));
    expect(again.map((k) => k.shaders.map((s) => s.hash))).toEqual(kernels.map(({ k }) => k.shaders.map((s) => s.hash)));
    // Another batch size is another shader, where the size matters.
    const other = fusedNodes(g).map(({ node, inputTypes }) => wgslTarget.emit(lowerFused(node, new Map([['B', 38]]), inputTypes).spec));
    const pairs = other.flatMap((k, i) => k.shaders.map((s, j) => [s, kernels[i]!.k.shaders[j]!] as const));
    expect(pairs.some(([a, b]) => a.size !== b.size)).toBe(true);
    for (const [a, b] of pairs) expect(a.hash === b.hash).toBe(a.source === b.source);
    expect(pairs.filter(([a, b]) => a.size !== b.size).every(([a, b]) => a.hash !== b.hash)).toBe(true);
    for (const { k } of kernels)
      for (const s of k.shaders) {
        expect(s.source).toContain(s.body);
        expect(s.dispatch[0] * s.dispatch[1] * s.workgroupSize[0]).toBeGreaterThanOrEqual(s.size);
      }
  });

  it('says which kernels it cannot render: a value that reads a reduction inside the kernel', () => {
    const g = loadGraphJson({ graph: 'total', inputs: { x: { shape: [4] } }, nodes: [{ id: 'e', op: 'exp', in: ['x'] }, { id: 't', op: 'sum', in: ['e'] }], outputs: { t: 't' } }, 'total.graph.json');
    const [{ node, inputTypes }] = fusedNodes(compileGraph(g).graph);
    const spec = lowerFused(node!, new Map(), inputTypes!).spec;
    expect(wgslUnsupported(spec)).toBeUndefined();
    // As softmax would: the sum read again by a division, inside the same kernel.
    const r = spec.values.findIndex((v) => v.kind === 'reduce');
    const div = { kind: 'expr' as const, expr: kir.div(kir.load(0, 'float32'), kir.load(1, 'float32')), args: [0, r], dtype: 'float32' as const };
    const bad = { ...spec, values: [...spec.values, div], outputs: [{ value: spec.values.length, dtype: 'float32' as const, shape: [4] }] };
    expect(wgslUnsupported(bad)).toBe(`value ${spec.values.length} reads the reduction v${r} inside the kernel; the WGSL target computes a reduction only as an output`);
    expect(() => wgslTarget.emit(bad)).toThrow(/cannot read a reduction inside a kernel/);
  });
});

describe.skipIf(!setup.gpu)('the WGSL target on Dawn vs the reference interpreter (cpu)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  for (const [file, dims] of GRAPHS)
    it(`runs every fused group of ${file}`, async () => {
      const g = loadGraph(file);
      // Sizes that are not multiples of the workgroup size; other symbols get 13.
      const env = new Map(Object.entries(dims));
      for (const s of g.inputs.flatMap((i) => i.type.shape.flatMap(symbolsOf))) if (!env.has(s)) env.set(s, 13);
      expect(await checkGraph(g, env, 1, file)).toBeGreaterThan(0);
    }, 60_000);

  it('runs random elementwise chains with broadcasting, int32 and bool values and reductions', async () => {
    let shaders = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const g = loadGraphJson(randomChain(seed), `chain-${seed}.graph.json`);
      shaders += await checkGraph(g, new Map([['A', 9], ['B', 23]]), seed * 100, `chain ${seed}`);
    }
    expect(shaders).toBeGreaterThan(45);
  }, 120_000);

  it('covers more than 65535 workgroups with a second dispatch dimension', async () => {
    const g = loadGraphJson(
      { graph: 'big', inputs: { x: { shape: ['N'] } }, nodes: [{ id: 'a', op: 'tanh', in: ['x'] }, { id: 'b', op: 'mul', in: ['a', 2] }], outputs: { b: 'b' } },
      'big.graph.json',
    );
    expect(await checkGraph(g, new Map([['N', 65536 * 64 + 100]]), 5, 'big')).toBe(1);
  }, 60_000);
});
