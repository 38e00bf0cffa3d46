/**
 * GPU benchmark: the webgpu backend against wasm, side by side in one process on the same
 * machine (tf.setBackend between timed blocks, the two alternating within each repetition so a
 * slow spell hits both alike). Each figure is the median of --reps timed blocks after warm-up; the
 * headline is the ratio wasm time / webgpu time, with the times per call beside it.
 *
 *  1. PPO update step on CartPole's 4-64-64 actor and critic: loss and gradient
 *     (graphs/algorithms/ppo-cartpole.loss.graph.json), global-norm clip
 *     (graphs/optimizers/clip-grad-norm.graph.json) and Adam (graphs/optimizers/adam.graph.json) on
 *     the flat params, as the training driver chains them, at minibatch 128 (CleanRL's) and 4096;
 *  2. tanh(a*x + b)*c + d over 1M elements (one fused kernel on wasm);
 *  3. the sectional-MoE layer's forward and backward (compiler/cost/moe-graph.ts) at d0 = 1024
 *     and 4096, L = 256 (--moe-l), L' = L/4, E = 8, one head, expert FFN m = 4, batch 1;
 *  4. the CartPole-v1 step graph (graphs/envs/cartpole.step.graph.json) at N = 4096 and 65,536.
 *
 * Each case is first run once on both backends from the same inputs and its outputs compared
 * (the "max rel diff" column). Every timed block ends by awaiting a read of its last result: on
 * webgpu the calls only queue GPU work (one queue, run in order), so the read returns once all of
 * it has run; `dataSync` would throw there in Node.
 *
 * Executors: wasm runs the compiled executor as `loom train` does (generated kernels, own wasm
 * product); webgpu runs it as `loom train --backend webgpu` does, fused nodes as WGSL kernels
 * (--webgpu-fused ops: their bodies op by op through tfjs-backend-webgpu's kernels instead, the
 * executor before the WGSL kernels, for comparison).
 *
 * The adapter is printed first; a software one (lavapipe, llvmpipe) is refused unless
 * --allow-software, because its figures are a CPU's. --quick: small sizes, one block, for a
 * check that the whole path runs.
 *
 *   npm run bench:gpu -- [--allow-software] [--quick] [--reps N] [--moe-l L] [--sections 1,2,3,4] [--webgpu-fused wgsl|ops]
 */
import * as tf from '@tensorflow/tfjs';
import { loadGraph, loadGraphJson, memoryFiles } from '../compiler/frontend/load.ts';
import { generateMoeStep } from '../compiler/cost/moe-graph.ts';
import { isLoomError } from '../compiler/errors.ts';
import type { IRGraph } from '../compiler/ir.ts';
import { initBackend, type BackendChoice } from '../runtime/backend.ts';
import { compileProgram, type Program, type ProgramOptions } from '../runtime/exec.ts';
import { initialValues } from '../runtime/init.ts';
import type { TensorMap } from '../runtime/interpreter.ts';
import { benchArgs } from './args.ts';
import { chainJson, loadJson } from './graphs.ts';

const USAGE =
  'usage: npm run bench:gpu -- [--allow-software] [--quick (small sizes, one block)] [--reps N (timed blocks per figure, default 5)] [--moe-l L (MoE sequence length, default 256)] [--sections 1,2,3,4 (which to run, default all)] [--webgpu-fused wgsl|ops (fused nodes on webgpu: WGSL kernels, default, or op by op)]';
const values = benchArgs(USAGE, {
  'allow-software': { type: 'boolean' },
  quick: { type: 'boolean' },
  reps: { type: 'string', default: '5' },
  'moe-l': { type: 'string', default: '256' },
  sections: { type: 'string', default: '1,2,3,4' },
  'webgpu-fused': { type: 'string', default: 'wgsl' },
});
const QUICK = values.quick === true;
const REPS = QUICK ? 1 : Number(values.reps);
const WARM = QUICK ? 1 : 2;
const MOE_L = QUICK ? 16 : Number(values['moe-l']);
for (const [flag, v] of [['--reps', REPS], ['--moe-l', MOE_L]] as const)
  if (!Number.isInteger(v) || v < 1 || (flag === '--moe-l' && v % 4 !== 0)) {
    process.stderr.write(`${flag} must be a positive integer${flag === '--moe-l' ? ' divisible by 4' : ''}, found ${flag === '--reps' ? values.reps : values['moe-l']}\n${USAGE}\n`);
    process.exit(2);
  }
const SECTIONS = new Set(values.sections!.split(','));
if (![...SECTIONS].every((k) => ['1', '2', '3', '4'].includes(k))) {
  process.stderr.write(`--sections takes numbers among 1,2,3,4 separated by commas, found ${values.sections}\n${USAGE}\n`);
  process.exit(2);
}
const out = (s = '') => process.stdout.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const BACKENDS = ['wasm', 'webgpu'] as const;
type Backend = (typeof BACKENDS)[number];
const FUSED = values['webgpu-fused'];
if (FUSED !== 'wgsl' && FUSED !== 'ops') {
  process.stderr.write(`--webgpu-fused is wgsl or ops, found ${FUSED}\n${USAGE}\n`);
  process.exit(2);
}
const OPTIONS: Record<Backend, ProgramOptions> = { wasm: { backend: 'wasm' }, webgpu: { backend: 'webgpu', codegen: FUSED === 'wgsl' } };

let choice: BackendChoice;
try {
  choice = await initBackend('webgpu', () => {});
} catch (e) {
  if (!isLoomError(e)) throw e;
  process.stderr.write(`bench:gpu: ${e.info.message}; hint: install the GPU's Vulkan driver (the bundle's run.sh lists the drivers it finds; docs/gpu-bench.md)\n`);
  process.exit(1);
}
const a = choice.adapter!;
const adapterLine = `vendor ${a.vendor}, architecture ${a.architecture}, description ${a.description || '(none)'}, route ${a.route}${a.software ? ' (a software adapter: a CPU, not a GPU)' : ''}`;
if (a.software && !values['allow-software']) {
  process.stderr.write(`bench:gpu: refusing the software WebGPU adapter found (${adapterLine}); its figures would be a CPU's. Pass --allow-software to measure it anyway.\n`);
  process.exit(3);
}
await initBackend('wasm', () => {});

out(`tensorloom GPU benchmark (node ${process.version}; wasm and webgpu alternating in one process; medians of ${REPS} timed block${REPS > 1 ? 's' : ''} after ${WARM} warm-up${QUICK ? '; --quick: small sizes' : ''})`);
out(`adapter: ${adapterLine}`);
if (a.software) out('NOTE: software adapter (--allow-software): the webgpu column below is WebGPU emulated on the CPU, not GPU figures.');
out(
  `executors: wasm = compiled (generated kernels, own wasm product); webgpu = compiled, ${FUSED === 'wgsl' ? 'fused nodes as WGSL kernels' : 'fused bodies op by op on tfjs-backend-webgpu kernels (--webgpu-fused ops)'}`,
);
out();

/** One case on one backend: its state lives in tensors of that backend. */
interface Runner {
  /** One unit of work (a train step, a chain evaluation, an env step). */
  call(): void | Promise<void>;
  /** Awaits a read of the latest result (the queued work has then run); returns what is compared across backends. */
  read(): Promise<Float32Array[]>;
  dispose(): void;
}
interface Case {
  label: string;
  /** Calls per timed block. */
  calls: number;
  /** What a call does, for a rate column: e.g. [4096, 'env steps']. */
  per?: [number, string];
  make(): Runner | Promise<Runner>;
}

/** Tensors on the active backend from host arrays (made once, on the host, so both backends start alike). */
function upload(values: Record<string, { data: Float32Array | Int32Array; shape: number[] }>): TensorMap {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, tf.tensor(v.data, v.shape, v.data instanceof Int32Array ? 'int32' : 'float32')]));
}
function hostParams(g: IRGraph, seed: number): Record<string, { data: Float32Array; shape: number[] }> {
  return Object.fromEntries(g.params.map((p) => [p.name, { data: initialValues(p, seed), shape: p.type.shape as number[] }]));
}
/** Deterministic uniform values in [lo, hi) (an LCG, so both backends get the same inputs). */
function uniform(n: number, lo: number, hi: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return a;
}
const scalar = (v: number) => ({ data: new Float32Array([v]), shape: [] });

async function runCase(c: Case): Promise<void> {
  const runners = {} as Record<Backend, Runner>;
  const first = {} as Record<Backend, Float32Array[]>;
  for (const b of BACKENDS) {
    await tf.setBackend(b);
    runners[b] = await c.make();
    await runners[b].call();
    first[b] = await runners[b].read();
  }
  // Largest difference over the compared outputs, relative to the largest wasm magnitude of each.
  let rel = 0;
  first.wasm.forEach((ref, k) => {
    const got = first.webgpu[k]!;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < ref.length; i++) {
      scale = Math.max(scale, Math.abs(ref[i]!));
      diff = Math.max(diff, Math.abs(ref[i]! - got[i]!));
    }
    rel = Math.max(rel, Number.isNaN(diff) ? Infinity : diff / (scale || 1));
  });
  const times = { wasm: [] as number[], webgpu: [] as number[] };
  for (let rep = 0; rep < WARM + REPS; rep++)
    for (const b of BACKENDS) {
      await tf.setBackend(b);
      const r = runners[b];
      const t0 = performance.now();
      for (let i = 0; i < c.calls; i++) await r.call();
      await r.read();
      if (rep >= WARM) times[b].push((performance.now() - t0) / c.calls);
    }
  for (const b of BACKENDS) {
    await tf.setBackend(b);
    runners[b].dispose();
  }
  const ms = { wasm: median(times.wasm), webgpu: median(times.webgpu) };
  // Two significant digits at least: webgpu can be hundreds of times slower on a software adapter.
  const ratio = (r: number) => (r >= 0.1 ? r.toFixed(2) : r.toPrecision(2));
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));
  const rate = (b: Backend) => (c.per ? `  ${((c.per[0] / ms[b]) * 1e3).toExponential(2)} ${c.per[1]}/s` : '');
  out(
    `  ${c.label.padEnd(40)} ${ratio(ms.wasm / ms.webgpu).padStart(7)}x   wasm ${fmt(ms.wasm).padStart(8)} ms${rate('wasm')}   webgpu ${fmt(ms.webgpu).padStart(8)} ms${rate('webgpu')}   max rel diff ${rel.toExponential(1)}${rel > 1e-3 ? ' (DISAGREE)' : ''}`,
  );
}

// ------------------------------------------------------------------ 1. PPO update step
function ppoStep(B: number): Case {
  const lossGraph = loadGraph('graphs/algorithms/ppo-cartpole.loss.graph.json');
  const clipGraph = loadGraph('graphs/optimizers/clip-grad-norm.graph.json');
  const adamGraph = loadGraph('graphs/optimizers/adam.graph.json');
  const probe = compileProgram(lossGraph, { log: () => {} });
  const names = probe.graph.params.map((p) => p.name);
  const shapes = probe.graph.params.map((p) => p.type.shape as number[]);
  const init = hostParams(probe.graph, 1);
  const P = shapes.reduce((s, sh) => s + sh.reduce((x, y) => x * y, 1), 0);
  const flat = new Float32Array(P);
  let at = 0;
  for (const n of names) {
    flat.set(init[n]!.data, at);
    at += init[n]!.data.length;
  }
  const host = {
    obs: { data: uniform(B * 4, -2, 2, 1), shape: [B, 4] },
    actions: { data: Int32Array.from(uniform(B, 0, 2, 2), Math.floor), shape: [B] },
    logp_old: { data: uniform(B, -0.9, -0.5, 3), shape: [B] },
    advantages: { data: uniform(B, -1, 1, 4), shape: [B] },
    returns: { data: uniform(B, 0, 5, 5), shape: [B] },
    values_old: { data: uniform(B, 0, 5, 6), shape: [B] },
    clip_coef: scalar(0.2),
    ent_coef: scalar(0.01),
    vf_coef: scalar(0.5),
    norm_adv: scalar(1),
    clip_vloss: scalar(1),
  };
  return {
    label: `PPO loss+grad+clip+Adam, B = ${B}`,
    calls: QUICK ? 2 : 10,
    per: [B, 'samples'],
    make() {
      const b = tf.getBackend() as Backend;
      const [loss, clip, adam] = [lossGraph, clipGraph, adamGraph].map((g) => compileProgram(g, { ...OPTIONS[b], log: () => {} })) as [Program, Program, Program];
      const batch = upload(host);
      const hyper = upload({ max_norm: scalar(0.5), lr: scalar(2.5e-4), beta1: scalar(0.9), beta2: scalar(0.999), eps: scalar(1e-5) });
      let state: TensorMap = { params: tf.tensor1d(flat), m: tf.zeros([P]), v: tf.zeros([P]), step: tf.scalar(0, 'int32') };
      let lastLoss: tf.Tensor | undefined;
      return {
        call() {
          const parts = tf.split(state.params!, shapes.map((s) => s.reduce((x, y) => x * y, 1)));
          const params = Object.fromEntries(names.map((n, k) => [n, parts[k]!.reshape(shapes[k]!)]));
          tf.dispose(parts);
          const o = loss.run(batch, params);
          const grads = tf.concat(names.map((n) => o[`grad__${n.replaceAll('/', '__')}`]!.reshape([-1])));
          const c = clip.run({ grads, max_norm: hyper.max_norm! }, {});
          const s = adam.run({ params: state.params!, grads: c.grads!, m: state.m!, v: state.v!, step: state.step!, lr: hyper.lr!, beta1: hyper.beta1!, beta2: hyper.beta2!, eps: hyper.eps! }, {});
          tf.dispose([...Object.values(params), grads, ...Object.values(c), ...Object.values(state), lastLoss ?? []].flat());
          lastLoss = o.loss;
          for (const [k, t] of Object.entries(o)) if (k !== 'loss') t.dispose();
          state = s;
        },
        read: async () => [(await lastLoss!.data()) as Float32Array, (await state.params!.data()) as Float32Array],
        dispose: () => tf.dispose([...Object.values(batch), ...Object.values(hyper), ...Object.values(state), lastLoss ?? []].flat()),
      };
    },
  };
}

// ------------------------------------------------------------------ 2. Elementwise chain
function chain(n: number): Case {
  const g = loadJson(chainJson(), 'tanh-chain');
  const host = { x: { data: uniform(n, -2, 2, 7), shape: [n] }, a: scalar(1.5), b: scalar(-0.25), c: scalar(0.75), d: scalar(0.5) };
  return {
    label: `tanh(a*x+b)*c+d, ${n >= 1 << 20 ? `${n / (1 << 20)}M` : `${n / 1024}K`} elements`,
    calls: QUICK ? 2 : 20,
    per: [n, 'elements'],
    make() {
      const prog = compileProgram(g, { ...OPTIONS[tf.getBackend() as Backend], log: () => {} });
      const ins = upload(host);
      let y: tf.Tensor | undefined;
      return {
        call() {
          y?.dispose();
          y = prog.run(ins, {}).y!;
        },
        read: async () => [(await y!.data()) as Float32Array],
        dispose: () => tf.dispose([...Object.values(ins), y ?? []].flat()),
      };
    },
  };
}

// ------------------------------------------------------------------ 3. Sectional MoE
function moe(d0: number, L: number, E: number): Case {
  const cfg = { d0, E, L, Lp: L / 4, heads: 1, m: 4, mix: true };
  const g = loadGraphJson(generateMoeStep(cfg), `bench/moe-d${d0}-e${E}.graph.json`, { files: memoryFiles({}) });
  const probe = compileProgram(g, { log: () => {} });
  const init = hostParams(probe.graph, 1);
  const B = 1;
  const host = { x: { data: uniform(B * L * d0, -1, 1, 8), shape: [B, L, d0] } };
  return {
    label: `sectional MoE fwd+bwd, d0 = ${d0}, L = ${L}`,
    calls: 1,
    make() {
      const prog = compileProgram(g, { ...OPTIONS[tf.getBackend() as Backend], log: () => {} });
      const params = upload(init);
      const ins = upload(host);
      let o: TensorMap = {};
      return {
        call() {
          tf.dispose(Object.values(o));
          o = prog.run(ins, params);
        },
        read: async () => [(await o.obj!.data()) as Float32Array, (await o[`d_${Object.keys(init)[0]}`]!.data()) as Float32Array],
        dispose: () => tf.dispose([...Object.values(params), ...Object.values(ins), ...Object.values(o)]),
      };
    },
  };
}

// ------------------------------------------------------------------ 4. CartPole step
function envStep(n: number): Case {
  const step = loadGraph('graphs/envs/cartpole.step.graph.json');
  const reset = loadGraph('graphs/envs/cartpole.reset.graph.json');
  return {
    label: `CartPole-v1 step, N = ${n}`,
    calls: QUICK ? 5 : 50,
    per: [n, 'env steps'],
    // The graphs sample (reset, auto-reset): on webgpu they run with runAsync, which awaits the key's read.
    async make() {
      const opts = { ...OPTIONS[tf.getBackend() as Backend], log: () => {} };
      const [stepProg, resetProg] = [step, reset].map((gr) => compileProgram(gr, opts)) as [Program, Program];
      const key = tf.tensor1d([0, 1], 'int32');
      const like = tf.zeros([n], 'int32');
      const start = await resetProg.runAsync({ key, like }, {});
      const action = tf.tensor1d(Int32Array.from(uniform(n, 0, 2, 9), Math.floor), 'int32');
      let state = start.state!;
      let t = start.t!;
      start.obs!.dispose();
      like.dispose();
      return {
        async call() {
          const o = await stepProg.runAsync({ state, t, action, key }, {});
          tf.dispose([state, t]);
          state = o.state!;
          t = o.t!;
          for (const [k, v] of Object.entries(o)) if (k !== 'state' && k !== 't') v.dispose();
        },
        read: async () => [(await state.data()) as Float32Array],
        dispose: () => tf.dispose([key, action, state, t]),
      };
    },
  };
}

// Cases are built when their turn comes (a wide MoE layer takes a while to generate and compile).
const sections: [string, (() => Case)[]][] = [
  ['1. PPO update step (CartPole 4-64-64 actor and critic)', (QUICK ? [128] : [128, 4096]).map((b) => () => ppoStep(b))],
  ['2. fused elementwise chain', [() => chain(QUICK ? 1 << 16 : 1 << 20)]],
  [`3. sectional MoE layer, forward and backward (batch 1, L' = L/4, E = 8, one head, FFN m = 4)`, (QUICK ? [64, 128] : [1024, 4096]).map((d0) => () => moe(d0, MOE_L, 8))],
  ['4. CartPole-v1 step graph (auto-reset included)', (QUICK ? [256, 4096] : [4096, 65536]).map((n) => () => envStep(n))],
];
out(`  ${'case'.padEnd(40)} ${'speed-up'.padStart(8)}   (webgpu over wasm: wasm time / webgpu time; then the time per call of each)`);
for (const [title, cases] of sections) {
  if (!SECTIONS.has(title.split('.')[0]!)) continue;
  out(title);
  for (const c of cases) await runCase(c());
}
