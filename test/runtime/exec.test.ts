import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import '../../compiler/ops/index.ts';
import { clearCompileCache, compileProgram, type Program } from '../../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { mismatch } from '../helpers/mismatch.ts';
import { loadJson, MLP_PARAMS, MLP_SHAPES, mlpTrainStepJson } from '../../bench/graphs.ts';
import { inlineGraph as load } from '../helpers/inline-graph.ts';
import { buildGraph, instrArb, randomInputs } from '../helpers/random-graph.ts';

await tf.setBackend('cpu');

function mlpInputs(batch: number, seed: number): TensorMap {
  const inputs: TensorMap = {
    obs: tf.randomNormal([batch, 4], 0, 1, 'float32', seed),
    target: tf.randomNormal([batch, 2], 0, 1, 'float32', seed + 1),
    t: tf.scalar(3),
    lr: tf.scalar(0.01),
  };
  for (const p of MLP_PARAMS) {
    inputs[`m_${p}`] = tf.randomNormal(MLP_SHAPES[p], 0, 0.1, 'float32', seed + 2);
    inputs[`v_${p}`] = tf.randomUniform(MLP_SHAPES[p], 0, 0.01, 'float32', seed + 3);
  }
  return inputs;
}

describe('compiled programs vs the reference interpreter', () => {
  const mlp = loadJson(mlpTrainStepJson(), 'mlp-exec-test');

  it('runs the MLP Adam train step like the interpreter (cpu), in few kernels', () => {
    const params = initParams(mlp, 7);
    const inputs = mlpInputs(16, 11);
    const prog = compileProgram(mlp);
    const out = prog.run(inputs, params);
    const ref = interpret(mlp, inputs, params);
    // Same matmul kernel; fused chains round once per stored value and use a float32-accurate tanh.
    expect(mismatch(out, ref)).toBeLessThan(1e-5);
    // Forward, backward and Adam in a handful of launches (the rest is constants, hoisted).
    const launched = prog.graph.nodes.filter((n) => n.op !== 'const');
    expect(launched.length).toBeLessThanOrEqual(16);
    tf.dispose([...Object.values(out), ...Object.values(ref), ...Object.values(inputs), ...Object.values(params)]);
  });

  it('runs the MLP train step on the wasm backend too', async () => {
    await tf.setBackend('wasm');
    try {
      const params = initParams(mlp, 3);
      const inputs = mlpInputs(8, 5);
      const out = compileProgram(mlp, { backend: 'wasm' }).run(inputs, params);
      const ref = interpret(mlp, inputs, params);
      expect(mismatch(out, ref)).toBeLessThan(1e-5);
      tf.dispose([...Object.values(out), ...Object.values(ref), ...Object.values(inputs), ...Object.values(params)]);
    } finally {
      await tf.setBackend('cpu');
    }
  });

  it('keeps tf.memory().numTensors flat across repeated runs', () => {
    const params = initParams(mlp, 1);
    const inputs = mlpInputs(8, 2);
    const prog = compileProgram(mlp);
    tf.dispose(Object.values(prog.run(inputs, params))); // plans and hoists constants
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) {
      const out = prog.run(inputs, params);
      // Outputs are fresh tensors the caller owns: one per output, nothing else survives.
      expect(tf.memory().numTensors).toBe(before + Object.keys(out).length);
      tf.dispose(Object.values(out));
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([...Object.values(inputs), ...Object.values(params)]);
  });

  it('hands out outputs that alias inputs or each other as separate tensors', () => {
    const g = load({ graph: 'alias', inputs: { x: { shape: [2] } }, nodes: [{ id: 'n', op: 'neg', in: ['x'] }], outputs: { a: 'x', b: 'n', c: 'n' } });
    const x = tf.tensor1d([1, 2]);
    const out = compileProgram(g).run({ x }, {});
    tf.dispose(Object.values(out));
    expect(Array.from(x.dataSync())).toEqual([1, 2]); // still alive
    x.dispose();
  });

  it('caches plans by input shapes and backend and reports every recompilation with its reason', async () => {
    const g = load({
      graph: 'cache',
      inputs: { x: { shape: ['N'] } },
      nodes: [
        { id: 'a', op: 'exp', in: ['x'] },
        { id: 'b', op: 'neg', in: ['a'] },
      ],
      outputs: { b: 'b' },
    }, '/virtual/cache-test.graph.json');
    const logs: string[] = [];
    const prog = compileProgram(g, { log: (m) => logs.push(m) });
    const run = (p: Program, n: number) => tf.dispose(Object.values(p.run({ x: tf.zeros([n]) }, {})));
    run(prog, 3);
    run(prog, 3);
    expect(prog.stats).toMatchObject({ runs: 2, misses: 1, hits: 1 });
    expect(prog.events.map((e) => e.reason)).toEqual(['first compilation']);
    expect(logs).toEqual([]);
    run(prog, 5);
    expect(prog.events[1]!.reason).toBe('input x is float32[5] (cached plan: float32[3])');
    expect(logs).toHaveLength(1);
    expect(logs[0]).toContain('recompiled cache: input x is float32[5] (cached plan: float32[3])');
    run(prog, 3); // back to a cached shape: no recompilation
    expect(prog.stats.misses).toBe(2);
    await tf.setBackend('wasm');
    try {
      run(prog, 3);
    } finally {
      await tf.setBackend('cpu');
    }
    expect(prog.events[2]!.reason).toBe('backend wasm (cached plan: cpu)');
    // A second program of the same graph shares the cache.
    const again = compileProgram(g, { log: (m) => logs.push(m) });
    run(again, 5);
    expect(again.stats).toMatchObject({ misses: 0, hits: 1 });
    expect(logs).toHaveLength(2);
  });

  it('refuses to run on another backend than the one it was compiled for', () => {
    const g = load({ graph: 'pin', inputs: { x: { shape: [1] } }, nodes: [{ id: 'n', op: 'neg', in: ['x'] }], outputs: { n: 'n' } });
    const x = tf.tensor1d([1]);
    expect(() => compileProgram(g, { backend: 'wasm' }).run({ x }, {})).toThrow(/compiled for the wasm backend but cpu is active/);
    x.dispose();
  });
});

describe('random well-typed graphs: compiled == interpreted', () => {
  afterAll(() => clearCompileCache());

  it('agrees on several hundred random graphs (cpu), with shrinking on failure', () => {
    // How often each kind of fused node occurred, so the property is known to exercise them.
    const kinds: Record<string, number> = {};
    fc.assert(
      fc.property(fc.array(instrArb, { minLength: 1, maxLength: 12 }), fc.integer({ min: 1, max: 4 }), fc.nat(1000), (instrs, b, seed) => {
        const json = buildGraph(instrs);
        if (Object.keys(json.outputs as object).length === 0) return;
        const g = load(json);
        const inputs = randomInputs(b, seed);
        try {
          const prog = compileProgram(g, { log: () => {} });
          for (const n of prog.graph.nodes) if (n.op === 'fused') kinds[n.attrs.kind as string] = (kinds[n.attrs.kind as string] ?? 0) + 1;
          tf.dispose(Object.values(prog.run(inputs, {}))); // plans (constants stay with the plan)
          const before = tf.memory().numTensors;
          const ref = interpret(g, inputs, {});
          const out = prog.run(inputs, {});
          const m = mismatch(out, ref);
          tf.dispose([...Object.values(out), ...Object.values(ref)]);
          expect(tf.memory().numTensors).toBe(before);
          expect(m).toBeLessThan(1e-4);
        } finally {
          tf.dispose(Object.values(inputs));
        }
      }),
      { numRuns: 300, seed: 20240611 },
    );
    expect(kinds.elementwise).toBeGreaterThan(50);
    expect(kinds.reduction).toBeGreaterThan(20);
    expect(kinds.matmul).toBeGreaterThan(5);
  }, 300_000);

  it('agrees on gradients of random graphs: autodiff + fusion vs tfjs autodiff in the interpreter', () => {
    fc.assert(
      fc.property(fc.array(instrArb, { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 3 }), fc.nat(1000), (instrs, b, seed) => {
        const json = buildGraph(instrs, true) as { nodes: Record<string, unknown>[]; outputs: Record<string, string> };
        const outs = Object.values(json.outputs);
        if (outs.length === 0) return;
        // loss = sum over outputs of sum(o^2); differentiate w.r.t. every input.
        const nodes = [...json.nodes];
        outs.forEach((r, i) => {
          // The cast makes bool outputs (comparisons) float; on float outputs it is the identity.
          nodes.push({ id: `f${i}`, op: 'cast', in: [r], attrs: { dtype: 'float32' } });
          nodes.push({ id: `sq${i}`, op: 'square', in: [`f${i}`] }, { id: `r${i}`, op: 'sum', in: [`sq${i}`] });
          nodes.push({ id: `l${i}`, op: 'add', in: [i === 0 ? 0 : `l${i - 1}`, `r${i}`] });
        });
        const wrt = ['x', 'y', 'z', 'p', 's', 'q'];
        nodes.push({ id: 'g', op: 'grad', in: [`l${outs.length - 1}`], attrs: { wrt } });
        const g = load({ ...json, nodes, outputs: Object.fromEntries(wrt.map((w) => [`d_${w}`, `g.${w}`])) });
        const inputs = randomInputs(b, seed);
        try {
          const prog = compileProgram(g, { log: () => {} });
          const out = prog.run(inputs, {});
          const ref = interpret(g, inputs, {});
          const m = mismatch(out, ref);
          tf.dispose([...Object.values(out), ...Object.values(ref)]);
          expect(m).toBeLessThan(1e-3);
        } finally {
          tf.dispose(Object.values(inputs));
        }
      }),
      { numRuns: 150, seed: 99 },
    );
  }, 300_000);

  it('agrees with code generation off (fused bodies run op by op) on random graphs', () => {
    fc.assert(
      fc.property(fc.array(instrArb, { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 3 }), (instrs, b) => {
        const json = buildGraph(instrs);
        if (Object.keys(json.outputs as object).length === 0) return;
        const g = load(json);
        const inputs = randomInputs(b, 1);
        const ref = interpret(g, inputs, {});
        const out = compileProgram(g, { codegen: false, log: () => {} }).run(inputs, {});
        expect(mismatch(out, ref)).toBeLessThan(1e-6);
        tf.dispose([...Object.values(out), ...Object.values(ref), ...Object.values(inputs)]);
      }),
      { numRuns: 100, seed: 7 },
    );
  }, 300_000);
});
