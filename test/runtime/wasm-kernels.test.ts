/**
 * Generated kernels as WebAssembly on the wasm backend (runtime/wasm-kernels.ts), in compiled
 * programs: every graph of the library and random elementwise chains, compiled with the wasm
 * kernels, against the reference interpreter; the PPO update step's Adam kernel runs as one; the
 * off switch runs the JS target's functions instead.
 */
import { relative } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import '../../compiler/ops/index.ts';
import { loadGraph, loadGraphJson } from '../../compiler/frontend/load.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { compileProgram, type ProgramOptions } from '../../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { wasmKernelStats } from '../../runtime/wasm-kernels.ts';
import { randomChain, rng } from '../helpers/fused-groups.ts';
import { graphFiles, GRAPHS_ROOT, inputsFor, LONG_CLOSED_LOOP } from '../helpers/library-graphs.ts';
import { expectCompiledClose } from '../helpers/mismatch.ts';

beforeAll(async () => {
  await tf.setBackend('wasm');
});

/** The compiled program's outputs against the interpreter's, at the library test's tolerance; returns how its fused nodes ran. */
function compare(g: IRGraph, inputs: TensorMap, params: TensorMap, opts: ProgramOptions = {}): string[] {
  const want = interpret(g, inputs, params);
  const prog = compileProgram(g, { log: () => {}, ...opts });
  const got = prog.run(inputs, params);
  expectCompiledClose(got, want, `${g.name} `);
  const runs = prog.fused(inputs).map((r) => r.as);
  tf.dispose([...Object.values(want), ...Object.values(got)]);
  return runs;
}

describe('wasm kernels in compiled programs', () => {
  const ran: string[] = [];
  for (const file of graphFiles()) {
    const name = relative(GRAPHS_ROOT, file);
    if (LONG_CLOSED_LOOP.has(name)) continue;
    it(`${name}: compiled with wasm kernels == interpreted`, () => {
      const g = loadGraph(file);
      const inputs = inputsFor(g);
      const params = initParams(g, 3);
      ran.push(...compare(g, inputs, params));
      tf.dispose([...Object.values(inputs), ...Object.values(params)]);
    });
  }
  it('ran kernels of the library as wasm', () => {
    expect(ran.filter((r) => r === 'wasm').length).toBeGreaterThan(20);
  });

  it('random elementwise chains: compiled with wasm kernels == interpreted', () => {
    let wasm = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const g = loadGraphJson(randomChain(seed), `chain-${seed}.graph.json`);
      const next = rng(seed);
      const shape = (s: string) => ({ x: [5, 7], y: [7], z: [5, 1], s: [], k: [5, 7], m: [7] })[s]!;
      const inputs: TensorMap = {};
      for (const i of g.inputs) {
        const sh = shape(i.name);
        const n = sh.reduce((a, b) => a * b, 1);
        const draw = () => (i.type.dtype === 'float32' ? next() * 3 - 1.5 : i.type.dtype === 'int32' ? Math.floor(next() * 4) : next() < 0.5 ? 1 : 0);
        inputs[i.name] = tf.tensor(Array.from({ length: n }, draw), sh, i.type.dtype);
      }
      wasm += compare(g, inputs, {}).filter((r) => r === 'wasm').length;
      tf.dispose(Object.values(inputs));
    }
    expect(wasm).toBeGreaterThan(10);
  });
});

describe('the PPO update step on wasm', () => {
  const g = loadGraph('graphs/programs/ppo-cartpole/update-step.graph.json');
  const inputs = () => inputsFor(g);

  it('runs its Adam kernel as wasm, one call per run of each wasm kernel, and matches the interpreter', () => {
    const ins = inputs();
    const prog = compileProgram(g, { log: () => {} });
    const runs = prog.fused(ins);
    // Adam's update of params, m and v: the group with the square root of v and the square of the gradient.
    const adam = runs.filter((r) => r.ops.includes('sqrt') && r.ops.includes('square') && r.ops.includes('div'));
    expect(adam.map((r) => r.as)).toEqual(['wasm']);
    const before = wasmKernelStats.calls;
    tf.dispose(Object.values(prog.run(ins, {})));
    expect(wasmKernelStats.calls - before).toBe(runs.filter((r) => r.as === 'wasm').length);
    compare(g, ins, {});
    tf.dispose(Object.values(ins));
  });

  it('with wasmKernels false runs every kernel as JS, and computes the same within float32 rounding', () => {
    const ins = inputs();
    const off = compileProgram(g, { log: () => {}, wasmKernels: false });
    expect(off.fused(ins).some((r) => r.as === 'wasm')).toBe(false);
    const before = wasmKernelStats.calls;
    const a = off.run(ins, {});
    expect(wasmKernelStats.calls).toBe(before);
    const b = compileProgram(g, { log: () => {} }).run(ins, {});
    for (const [k, t] of Object.entries(a)) {
      const x = t.dataSync();
      const y = b[k]!.dataSync();
      for (let i = 0; i < x.length; i++) if (!(Math.abs(x[i]! - y[i]!) <= 1e-5 + 1e-5 * Math.abs(x[i]!))) expect.fail(`${k}[${i}]: ${x[i]} vs ${y[i]}`);
    }
    tf.dispose([...Object.values(ins), ...Object.values(a), ...Object.values(b)]);
  });
});
