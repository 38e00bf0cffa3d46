/**
 * The webgpu group: every graph of the library, and 100 random graphs, compiled and run on the
 * webgpu backend match the reference interpreter on cpu, within float32 tolerances (GPU
 * transcendental functions and summation orders differ from the cpu's in the last bits).
 * Skipped, with a console line saying why, only where no WebGPU adapter can be had.
 */
import { relative } from 'node:path';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { loadGraph } from '../../compiler/frontend/load.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { wgslStats } from '../../runtime/webgpu-kernels.ts';
import type { WgslKernel } from '../../compiler/codegen/wgsl.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { graphFiles, GRAPHS_ROOT, inputsFor, LONG_CLOSED_LOOP } from '../helpers/library-graphs.ts';
import { buildGraph, instrArb, randomInputs } from '../helpers/random-graph.ts';
import { inlineGraph } from '../helpers/inline-graph.ts';
import { loadGraphJson } from '../../compiler/frontend/load.ts';
import { startWebgpu } from '../helpers/webgpu.ts';
import { loomErr } from '../helpers/loom-error.ts';

interface HostValue {
  shape: number[];
  dtype: tf.DataType;
  values: tf.TypedArray;
}
type HostMap = Record<string, HostValue>;

const choice = await startWebgpu('webgpu graphs');

/** Reads tensors on any backend (webgpu needs the awaited read). */
async function read(m: TensorMap): Promise<HostMap> {
  const out: HostMap = {};
  for (const [k, t] of Object.entries(m)) out[k] = { shape: [...t.shape], dtype: t.dtype, values: (await t.data()) as tf.TypedArray };
  return out;
}

function upload(m: HostMap): TensorMap {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, tf.tensor(v.values, v.shape, v.dtype)]));
}

/**
 * The interpreter's outputs on cpu for inputs and params made by `make` (on cpu, so both sides see
 * the same values), and those inputs and params as host values.
 */
async function referenceOnCpu(g: IRGraph, make: () => { inputs: TensorMap; params: TensorMap }): Promise<{ want: HostMap; inputs: HostMap; params: HostMap }> {
  await tf.setBackend('cpu');
  try {
    const { inputs, params } = make();
    const out = interpret(g, inputs, params);
    const res = { want: await read(out), inputs: await read(inputs), params: await read(params) };
    tf.dispose([...Object.values(inputs), ...Object.values(params), ...Object.values(out)]);
    return res;
  } finally {
    await tf.setBackend('webgpu');
  }
}

/** Runs the compiled program on webgpu; every tensor it made is released. */
async function compiledOnWebgpu(g: IRGraph, inputs: HostMap, params: HostMap): Promise<HostMap> {
  expect(tf.getBackend()).toBe('webgpu');
  const ins = upload(inputs);
  const ps = upload(params);
  const out = await compileProgram(g, { log: () => {} }).runAsync(ins, ps);
  const got = await read(out);
  tf.dispose([...Object.values(ins), ...Object.values(ps), ...Object.values(out)]);
  return got;
}

/** The worst |a - b| / (1 + |b|) over outputs (NaN matches NaN); names, shapes and dtypes must agree. */
function worst(got: HostMap, want: HostMap): { err: number; at: string } {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  let err = 0;
  let at = '';
  for (const [k, w] of Object.entries(want)) {
    const c = got[k]!;
    expect(c.shape, k).toEqual(w.shape);
    expect(c.dtype, k).toBe(w.dtype);
    for (let i = 0; i < w.values.length; i++) {
      const a = c.values[i]!;
      const b = w.values[i]!;
      const d = Number.isNaN(a) && Number.isNaN(b) ? 0 : Math.abs(a - b) / (1 + Math.abs(b));
      if (!(d <= err)) {
        err = Number.isNaN(d) ? Infinity : d;
        at = `${k}[${i}]: webgpu ${a} vs cpu interpreter ${b}`;
      }
    }
  }
  return { err, at };
}

describe.skipIf(!choice)('webgpu: every graph in graphs/, compiled on webgpu == interpreted on cpu', () => {
  const files = graphFiles();
  it('finds the library', () => expect(files.length).toBeGreaterThan(40));
  for (const file of files) {
    if (LONG_CLOSED_LOOP.has(relative(GRAPHS_ROOT, file))) continue;
    it(relative(GRAPHS_ROOT, file), async () => {
      const g = loadGraph(file);
      const ref = await referenceOnCpu(g, () => ({ inputs: inputsFor(g), params: initParams(g, 3) }));
      const got = await compiledOnWebgpu(g, ref.inputs, ref.params);
      const { err, at } = worst(got, ref.want);
      expect(err, at).toBeLessThanOrEqual(1e-4);
    });
  }

  it('includes the PPO loss with the gradient of every agent param', async () => {
    const g = loadGraph(`${GRAPHS_ROOT}/algorithms/ppo-cartpole.loss.graph.json`);
    const grads = Object.keys(g.outputs).filter((k) => k.startsWith('grad__'));
    expect(grads.length).toBeGreaterThanOrEqual(6);
    const ref = await referenceOnCpu(g, () => ({ inputs: inputsFor(g), params: initParams(g, 3) }));
    const got = await compiledOnWebgpu(g, ref.inputs, ref.params);
    // A gradient that is zero everywhere would match trivially: these are not.
    for (const k of grads) expect(ref.want[k]!.values.some((v) => v !== 0), k).toBe(true);
    expect(worst(got, ref.want).err).toBeLessThanOrEqual(1e-4);
  });
});

describe.skipIf(!choice)('webgpu: fused nodes run as WGSL kernels', () => {
  for (const [file, least] of [
    ['algorithms/ppo-cartpole.loss.graph.json', 8],
    ['envs/cartpole.step.graph.json', 1],
  ] as const) {
    it(`${file}: every fused node runs as WGSL shaders, with no fallback to op by op, and matches the interpreter`, async () => {
      const g = loadGraph(`${GRAPHS_ROOT}/${file}`);
      const ref = await referenceOnCpu(g, () => ({ inputs: inputsFor(g), params: initParams(g, 3) }));
      const ins = upload(ref.inputs);
      const ps = upload(ref.params);
      const logs: string[] = [];
      const prog = compileProgram(g, { log: (m) => logs.push(m) });
      const runs = prog.fused(ins);
      expect(runs.length).toBeGreaterThanOrEqual(least);
      for (const r of runs) expect(r, `${r.node} (${r.ops.join(' ')})`).toMatchObject({ as: 'wgsl', kernel: expect.stringMatching(/^loom_/) });
      expect(logs).toEqual([]);
      // Every fused node dispatches at least one shader per run (none is a constant evaluated at plan time here).
      const before = wgslStats.launches;
      const out = await prog.runAsync(ins, ps);
      expect(wgslStats.launches - before).toBeGreaterThanOrEqual(runs.length);
      const got = await read(out);
      expect(worst(got, ref.want).err).toBeLessThanOrEqual(1e-4);
      tf.dispose([...Object.values(ins), ...Object.values(ps), ...Object.values(out)]);
    });
  }

  it('bakes known scalars into the shader without reading the GPU', async () => {
    const g = loadGraphJson({ graph: 'affine-scalar', inputs: { x: { shape: [3] } }, nodes: [{ id: 'h', op: 'mul', in: ['x', 0.5] }, { id: 'y', op: 'add', in: ['h', 2] }], outputs: { y: 'y' } }, 'affine-scalar.graph.json');
    const x = tf.tensor1d([1, -4, 6]);
    const prog = compileProgram(g, { log: () => {} });
    const [kernel] = prog.kernels({ x }) as WgslKernel[];
    // x is the kernel's one buffer; 0.5 and 2 are literals of its shader.
    expect(kernel!.spec.inputs).toHaveLength(1);
    expect(kernel!.shaders[0]!.source).toMatch(/0\.5f[\s\S]*2\.0f/);
    const out = await prog.runAsync({ x }, {});
    expect(Array.from(await out.y!.data())).toEqual([2.5, 0, 5]);
    tf.dispose([x, ...Object.values(out)]);
  });

  it('runs op by op, saying why, a group that binds more storage buffers than the device allows', async () => {
    const limit = (tf.backend() as unknown as { device: GPUDevice }).device.limits.maxStorageBuffersPerShaderStage;
    // One elementwise chain over `limit` inputs: its shader binds them and its output.
    const names = Array.from({ length: limit }, (_v, k) => `x${k}`);
    const nodes = names.slice(1).map((x, k) => ({ id: `s${k + 1}`, op: 'add', in: [k === 0 ? 'x0' : `s${k}`, x] }));
    const g = loadGraphJson({ graph: 'wide-sum', inputs: Object.fromEntries(names.map((x) => [x, { shape: [3] }])), nodes, outputs: { y: nodes.at(-1)!.id } }, 'wide-sum.graph.json');
    const ins = Object.fromEntries(names.map((x, k) => [x, tf.tensor1d([k, 2 * k, -k])]));
    const logs: string[] = [];
    const prog = compileProgram(g, { log: (m) => logs.push(m) });
    const [run, ...rest] = prog.fused(ins);
    expect(rest).toEqual([]);
    expect(run).toMatchObject({ as: 'ops', why: `its shaders bind up to ${limit + 1} storage buffers, the device allows ${limit} (maxStorageBuffersPerShaderStage)` });
    expect(logs).toEqual([`loom: wide-sum on webgpu: 1 of 1 fused nodes run op by op: ${run!.node} (${run!.why})`]);
    const before = wgslStats.launches;
    const out = await prog.runAsync(ins, {});
    expect(wgslStats.launches).toBe(before);
    // sum over k of (k, 2k, -k), k < limit.
    const s = (limit * (limit - 1)) / 2;
    expect(Array.from(await out.y!.data())).toEqual([s, 2 * s, -s]);
    tf.dispose([...Object.values(ins), ...Object.values(out)]);
  });
});

describe.skipIf(!choice)('webgpu: ops that read values on the host', () => {
  it('run refuses a program that samples, naming the node; runAsync runs it', async () => {
    const g = loadGraph(`${GRAPHS_ROOT}/algorithms/ppo-cartpole.act.graph.json`);
    const ref = await referenceOnCpu(g, () => ({ inputs: inputsFor(g), params: initParams(g, 3) }));
    const ins = upload(ref.inputs);
    const ps = upload(ref.params);
    const prog = compileProgram(g, { log: () => {} });
    const e = loomErr(() => prog.run(ins, ps));
    expect(e.code).toBe('E_BACKEND');
    expect(e.message).toMatch(/reads values on the host at node \S+ \(random_categorical\), which the webgpu backend allows only asynchronously/);
    expect(e.info.hint).toBe('run it with runAsync');
    const out = await prog.runAsync(ins, ps);
    // Sampled actions are integers: they must be the same, not merely close.
    expect(Array.from(await out.action!.data())).toEqual(Array.from(ref.want.action!.values));
    tf.dispose([...Object.values(ins), ...Object.values(ps), ...Object.values(out)]);
  });
});

describe.skipIf(!choice)('webgpu: random well-typed graphs, compiled on webgpu == interpreted on cpu', () => {
  it('agrees on 100 random graphs', async () => {
    let ran = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(instrArb, { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 4 }), fc.nat(1000), async (instrs, b, seed) => {
        const json = buildGraph(instrs);
        if (Object.keys(json.outputs as object).length === 0) return;
        const g = inlineGraph(json);
        const ref = await referenceOnCpu(g, () => ({ inputs: randomInputs(b, seed), params: {} }));
        const got = await compiledOnWebgpu(g, ref.inputs, ref.params);
        const { err, at } = worst(got, ref.want);
        expect(err, at).toBeLessThanOrEqual(1e-4);
        ran++;
      }),
      { numRuns: 100, seed: 20261206 },
    );
    expect(ran).toBeGreaterThan(90);
  });
});
