/**
 * WGSL kernels through tfjs's webgpu backend (runWebGPUProgram, shaderKey = the shader's hash):
 * fused groups of real graphs and random chains, against the reference interpreter on cpu.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { wgslTarget } from '../../compiler/codegen/wgsl.ts';
import { loadGraph, loadGraphJson } from '../../compiler/frontend/load.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { runWgslKernel, wgslProgram } from '../../runtime/webgpu-kernels.ts';
import { groupCases, mismatch, randomChain } from '../helpers/fused-groups.ts';
import { webgpuTfjs } from '../helpers/webgpu.ts';

const setup = await webgpuTfjs();
if (!setup.ok) console.warn(`WGSL kernels on tfjs's webgpu backend skipped: ${setup.reason}`);
else console.log(`WGSL kernels on tfjs's webgpu backend: ${setup.adapter}`);

/** Runs every fused group of `g` as WGSL on tfjs-webgpu and compares with the interpreter (cpu); returns the shaders run. */
async function check(g: IRGraph, env: ReadonlyMap<string, number>, seed: number, what: string): Promise<number> {
  await tf.setBackend('cpu');
  const cases = groupCases(g, env, seed, what);
  await tf.setBackend('webgpu');
  let shaders = 0;
  for (const c of cases) {
    const kernel = wgslTarget.emit(c.spec);
    const inputs = c.inputs.map((inp) => tf.tensor(inp.values, inp.shape, inp.dtype));
    const outs = runWgslKernel(kernel, inputs);
    for (const [k, out] of outs.entries()) {
      expect(out.shape, c.label).toEqual(c.spec.outputs[k]!.shape);
      expect(out.dtype, c.label).toBe(c.spec.outputs[k]!.dtype);
      const { err, at } = mismatch(await out.data(), c.want[k]!, out.dtype as 'float32' | 'int32' | 'bool');
      expect(err, `${c.label} output ${k}: ${at}\n${kernel.shaders[k]!.source}`).toBeLessThan(2e-5);
      shaders++;
    }
    tf.dispose([...inputs, ...outs]);
  }
  return shaders;
}

describe.skipIf(!setup.ok)("WGSL kernels on tfjs's webgpu backend vs the reference interpreter (cpu)", () => {
  it('runs the fused groups of the PPO loss (matmul epilogues, reductions, several outputs) and the CartPole step (bool)', async () => {
    expect(await check(loadGraph('graphs/algorithms/ppo-cartpole.loss.graph.json'), new Map([['B', 37]]), 1, 'ppo loss')).toBeGreaterThan(5);
    expect(await check(loadGraph('graphs/envs/cartpole.step.graph.json'), new Map([['N', 70]]), 2, 'cartpole step')).toBeGreaterThan(2);
  });

  it('runs random elementwise chains', async () => {
    let shaders = 0;
    for (let seed = 1; seed <= 8; seed++) shaders += await check(loadGraphJson(randomChain(seed), `chain-${seed}.graph.json`), new Map([['A', 9], ['B', 23]]), seed * 100, `chain ${seed}`);
    expect(shaders).toBeGreaterThan(10);
  });

  it('reads a float32 input that tfjs keeps in an int32 buffer (a cast from int32 keeps the data)', async () => {
    await tf.setBackend('cpu');
    const json = { graph: 'cast-input', inputs: { x: { shape: ['N'] }, y: { shape: ['N'] } }, nodes: [{ id: 'a', op: 'add', in: ['x', 'x'] }, { id: 'b', op: 'sub', in: ['a', 'y'] }], outputs: { o: 'b' } };
    const [c] = groupCases(loadGraphJson(json, 'cast-input.graph.json'), new Map([['N', 4]]), 1, 'cast input');
    await tf.setBackend('webgpu');
    const x = tf.cast(tf.tensor1d([1, -2, 3, 40], 'int32'), 'float32');
    const y = tf.tensor1d([0.5, 0.25, -1, 3]);
    const [out] = runWgslKernel(wgslTarget.emit(c!.spec), [x, y]);
    expect(Array.from(await out!.data())).toEqual([1.5, -4.25, 7, 77]);
    tf.dispose([x, y, out!]);
  });

  it("keys tfjs's pipeline cache by the shader's hash", async () => {
    await tf.setBackend('cpu');
    const [c] = groupCases(loadGraph('graphs/nets/mlp.graph.json'), new Map([['B', 4]]), 3, 'mlp');
    const shader = wgslTarget.emit(c!.spec).shaders[0]!;
    expect(wgslProgram(shader, c!.spec.outputs[0]!.shape).shaderKey).toBe(`loom_${shader.hash}`);
  });
});
