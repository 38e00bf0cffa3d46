/**
 * Generated kernels as WebAssembly SIMD (the wasm target) against the JS target's functions, on the
 * wasm backend, in one process: kernels of the PPO CartPole update step alone (Adam over the 9155
 * parameters, 3 outputs; a backward product with its `mm * x` and column sum; a forward product with
 * its tanh and `1 - a^2`, the product itself the same on both sides), and the whole update step (MB = 128 rows of a B = 512 batch) compiled with and without
 * the wasm kernels. The two take turns, one block of calls each, so that a load that changes during
 * the run weighs on both alike; figures are medians over the blocks.
 */
import * as tf from '@tensorflow/tfjs';
import { loadGraph } from '../compiler/frontend/load.ts';
import { initBackend } from '../runtime/backend.ts';
import { compileProgram, type Program } from '../runtime/exec.ts';
import type { TensorMap } from '../runtime/interpreter.ts';
import { kernelRunner, wasmTarget, wasmUnsupported, type KernelRunner } from '../runtime/jit.ts';
import { assembleWasmKernel, wasmKernelsReady } from '../runtime/wasm-kernels.ts';
import { benchArgs } from './args.ts';

const values = benchArgs('usage: npm run bench:wasm-kernels -- [--blocks N (of each, default 21)] [--mb N (default 128)] [--b N (default 512)]', {
  blocks: { type: 'string', default: '21' },
  mb: { type: 'string', default: '128' },
  b: { type: 'string', default: '512' },
});
const BLOCKS = Number(values.blocks);
const MB = Number(values.mb);
const B = Number(values.b);
await initBackend('wasm', () => {});
if (!wasmKernelsReady()) throw new Error('the wasm kernels are unavailable on this machine');
const out = (s: string) => process.stdout.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let seed = 7;
/** Reproducible uniform values in [lo, hi). */
function uniform(n: number, lo: number, hi: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    v[i] = lo + ((hi - lo) * seed) / 2 ** 32;
  }
  return v;
}

const g = loadGraph('graphs/programs/ppo-cartpole/update-step.graph.json');
const P = g.inputs.find((i) => i.name === 'params')!.type.shape[0] as number;
const HYPER = { lr: 2.5e-4, clip_coef: 0.2, ent_coef: 0.01, vf_coef: 0.5, norm_adv: 1, clip_vloss: 1, max_grad_norm: 0.5, beta1: 0.9, beta2: 0.999, eps: 1e-5 };
const inputs: TensorMap = {
  params: tf.tensor(uniform(P, -0.5, 0.5)),
  m: tf.tensor(uniform(P, -0.01, 0.01)),
  v: tf.tensor(uniform(P, 0, 1e-4)),
  step: tf.scalar(3, 'int32'),
  rows: tf.tensor(Array.from(uniform(MB, 0, B), Math.floor), [MB], 'int32'),
  obs: tf.tensor(uniform(4 * B, -1, 1), [B, 4]),
  actions: tf.tensor(Array.from(uniform(B, 0, 2), Math.floor), [B], 'int32'),
  logp: tf.tensor(uniform(B, -1.2, -0.3)),
  advantages: tf.tensor(uniform(B, -2, 2)),
  returns: tf.tensor(uniform(B, -1, 3)),
  values: tf.tensor(uniform(B, -0.5, 0.5)),
  ...Object.fromEntries(Object.entries(HYPER).map(([k, v]) => [k, tf.scalar(v)])),
};

/** Runs `a` and `b` in turns, `calls` per block, and prints the medians of the blocks' mean times. */
function sideBySide(what: string, unit: 'us' | 'ms', calls: number, a: () => void, b: () => void): void {
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < 3; i++) (a(), b());
  for (let k = 0; k < BLOCKS; k++)
    [a, b].forEach((f, j) => {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) f();
      times[j]!.push((performance.now() - t0) / calls);
    });
  const [js, wasm] = times.map((t) => median(t) * (unit === 'us' ? 1000 : 1));
  out(`${what.padEnd(44)} ${js!.toFixed(unit === 'us' ? 1 : 3).padStart(9)} ${unit}  ${wasm!.toFixed(unit === 'us' ? 1 : 3).padStart(9)} ${unit}   ${(js! / wasm!).toFixed(2)}x`);
}

out(`Generated kernels, JS target vs wasm SIMD (node ${process.version}, backend ${tf.getBackend()}; medians of ${BLOCKS} blocks, taking turns)\n`);
out(`${'kernel'.padEnd(44)} ${'JS'.padStart(12)}  ${'wasm'.padStart(12)}   JS/wasm`);

// Kernels alone: the plan's JS kernel, run with and without its wasm function, into the same outputs.
const withWasm: Program = compileProgram(g, { log: () => {} });
const kernels = withWasm.kernels(inputs).filter((k) => !wasmUnsupported(k.spec));
const made: tf.Tensor[] = [];
function kernelSideBySide(what: string, k: (typeof kernels)[number] | undefined): void {
  if (!k) throw new Error(`the update step's kernel "${what}" was not found`);
  const wk = wasmTarget.emit(k.spec);
  assembleWasmKernel(wk);
  // Flat inputs, but the product's operands as matrices: [m, kk] x [kk, n] (transposed as the spec says).
  const mm = k.spec.matmul;
  const shapeOf = (j: number, size: number): number[] => {
    if (!mm || (j !== mm.a && j !== mm.b)) return [size];
    const [m, n] = mm.shape.slice(-2) as [number, number];
    const kk = j === mm.a ? size / m : size / n;
    if (j === mm.a) return mm.transposeA ? [kk, m] : [m, kk];
    return mm.transposeB ? [n, kk] : [kk, n];
  };
  const args = k.spec.inputs.map((inp, j) => tf.tensor(uniform(inp.size, 0.01, 1), shapeOf(j, inp.size), inp.dtype));
  // An output written into the product's buffer is not given one.
  const into = k.spec.outputs.map((o, j) => (j === k.spec.inPlace ? undefined : tf.zeros(o.shape, o.dtype)));
  made.push(...args, ...into.filter((t): t is tf.Tensor => t !== undefined));
  const runJs: KernelRunner = kernelRunner(k.name, true);
  const runWasm: KernelRunner = kernelRunner(k.name, true, wk.name);
  const call = (run: KernelRunner) => () => {
    const ys = run(args, into);
    ys.forEach((y, j) => into[j] === undefined && y.dispose());
  };
  sideBySide(what, 'us', 200, call(runJs), call(runWasm));
}
kernelSideBySide(`Adam (${P} elements, 3 outputs)`, kernels.find((k) => /\bsqrt\b/.test(k.spec.label) && /\bsquare\b/.test(k.spec.label) && k.spec.outputs.length === 3));
const colSum = kernels.find((k) => k.spec.matmul && k.spec.values.some((v) => v.kind === 'reduce'));
kernelSideBySide(`product + mm * x + column sum [${colSum?.spec.domain.join(', ')}]`, colSum);
const tail = kernels.find((k) => k.spec.matmul?.activation && k.spec.outputs.length > 1);
kernelSideBySide(`product + tanh + 1 - a^2 [${tail?.spec.domain.join(', ')}]`, tail);

// The whole update step.
const withoutWasm = compileProgram(g, { log: () => {}, wasmKernels: false });
const step = (prog: Program) => () => tf.dispose(Object.values(prog.run(inputs, {})));
const wasmRuns = withWasm.fused(inputs).filter((r) => r.as === 'wasm').length;
sideBySide(`PPO update step, MB=${MB} B=${B} (${wasmRuns}/${withWasm.fused(inputs).length} wasm)`, 'ms', 20, step(withoutWasm), step(withWasm));
tf.dispose([...Object.values(inputs), ...made]);
