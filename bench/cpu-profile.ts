/**
 * Where the CPU goes in a compiled training iteration: V8's sampling profiler over iterations of a
 * program (PPO CartPole by default), for one seed and for K seeds vmapped into one program, run
 * as the driver runs them (state fed back, metrics read). Samples are grouped by what they are:
 *
 *   products          the own wasm matrix product (runtime/wasm-gemm.ts: loom_gemm, loom_transpose)
 *   generated kernels the fused groups' generated code (JavaScript, or WebAssembly on wasm)
 *   host kernels      the ops' host kernels (compiler/ops: random draws, softmax, copies, ...)
 *   executor          runtime/: plans, scan loops, kernel calls, host memory
 *   tfjs              the library's engine and kernels
 *   gc                the garbage collector
 *   other             everything else (the benchmark's own loop, node)
 *
 * The shares say what bounds an iteration: a share of products near the whole is compute-bound;
 * executor, tfjs and gc are the price of running the graph as many small kernels. Unlike
 * ProgramOptions.profile (a clock read around each node), sampling adds nothing per node.
 *
 * Usage: npm run bench:profile [-- --program graphs/programs/ppo-cartpole/program.json --k 8 --iterations 30 --top 12]
 */
import * as tf from '@tensorflow/tfjs';
import { Session } from 'node:inspector/promises';
import { initBackend } from '../runtime/backend.ts';
import { initParams, type TensorMap } from '../runtime/interpreter.ts';
import { vmapGraph } from '../runtime/jit.ts';
import { makeProgram, type Program } from '../runtime/pipeline/program.ts';
import { loadProgram, loadProgramGraphs } from '../runtime/program/config.ts';
import { initKey, scalarInputs } from '../runtime/program/driver.ts';
import { benchArgs } from './args.ts';

const values = benchArgs('usage: npm run bench:profile -- [--program FILE] [--k K (vmapped seeds, default 8; 0 skips)] [--iterations N (profiled per case, default 30)] [--top N (functions listed, default 12)] [--backend wasm|cpu]', {
  program: { type: 'string', default: 'graphs/programs/ppo-cartpole/program.json' },
  k: { type: 'string', default: '8' },
  iterations: { type: 'string', default: '30' },
  top: { type: 'string', default: '12' },
  backend: { type: 'string', default: 'wasm' },
});
const K = Number(values.k);
const ITERS = Number(values.iterations);
const TOP = Number(values.top);
await initBackend(values.backend, () => {});
const out = (s = '') => process.stdout.write(s + '\n');

const cfg = loadProgram(values.program);
const graphs = loadProgramGraphs(cfg);
const names = Object.keys(graphs.state);
const hyper = scalarInputs(graphs.iteration, cfg, graphs.state, null);

function initState(seed: number): TensorMap {
  const params = initParams(graphs.init, seed);
  const inputs = scalarInputs(graphs.init, cfg, {}, initKey(seed));
  const made = makeProgram(graphs.init, 'compiled')(inputs, params);
  tf.dispose([...Object.values(params), ...Object.values(inputs)]);
  return Object.fromEntries(names.map((k) => [k, made[k]!]));
}

/** One iteration as the driver runs it: the next state kept, every metric read. */
function step(p: Program, state: TensorMap): TensorMap {
  const o = p({ ...state, ...hyper }, {});
  for (const m of graphs.metrics) o[m]!.dataSync();
  tf.dispose(graphs.metrics.map((m) => o[m]!));
  tf.dispose(Object.values(state));
  return Object.fromEntries(names.map((k) => [k, o[k]!]));
}

type Group = 'products' | 'generated kernels' | 'host kernels' | 'executor' | 'tfjs' | 'gc' | 'other';
const GROUPS: Group[] = ['products', 'generated kernels', 'host kernels', 'executor', 'tfjs', 'gc', 'other'];

interface Frame {
  functionName: string;
  url: string;
}
function groupOf(f: Frame): Group {
  if (f.functionName === '(garbage collector)') return 'gc';
  // The own wasm modules name their functions: the product, and the generated kernels (as their JS twins).
  if (f.functionName === 'loom_gemm' || f.functionName === 'loom_transpose') return 'products';
  if (f.functionName.startsWith('loom_')) return 'generated kernels';
  if (f.url.startsWith('wasm://')) return 'tfjs';
  if (f.url.includes('/compiler/ops/')) return 'host kernels';
  if (f.url.includes('/runtime/')) return 'executor';
  if (f.url.includes('@tensorflow')) return 'tfjs';
  return 'other';
}

async function profile(run: () => void): Promise<{ share: Map<Group, number>; top: [string, number][] }> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  run();
  const { profile: p } = await session.post('Profiler.stop');
  session.disconnect();
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const share = new Map<Group, number>();
  const fns = new Map<string, number>();
  const samples = p.samples ?? [];
  for (const id of samples) {
    const f = byId.get(id)!.callFrame;
    const g = groupOf(f);
    share.set(g, (share.get(g) ?? 0) + 1 / samples.length);
    const name = `${f.functionName || '(anonymous)'} ${f.url ? f.url.split('/').slice(-2).join('/') : ''}`.trim();
    fns.set(name, (fns.get(name) ?? 0) + 1 / samples.length);
  }
  return { share, top: [...fns].sort((a, b) => b[1] - a[1]).slice(0, TOP) };
}

out(`tensorloom CPU profile (node ${process.version}, backend ${tf.getBackend()}): ${cfg.program}, ${ITERS} iterations per case, sampled every 100 us`);
const cases: { label: string; run: () => void }[] = [];
{
  const p = makeProgram(graphs.iteration, 'compiled');
  let s = initState(cfg.seed);
  for (let i = 0; i < 3; i++) s = step(p, s); // warm-up: plans, kernels, JIT
  cases.push({ label: '1 seed', run: () => void (s = (() => { for (let i = 0; i < ITERS; i++) s = step(p, s); return s; })()) });
}
if (K > 0) {
  const axes = Object.fromEntries(graphs.iteration.inputs.map((i) => [i.name, Object.hasOwn(graphs.state, i.name) ? (0 as const) : null]));
  const p = makeProgram(vmapGraph(graphs.iteration, { size: K, axes }).graph, 'compiled');
  const per = Array.from({ length: K }, (_v, k) => initState(cfg.seed + k));
  let s: TensorMap = Object.fromEntries(names.map((n) => [n, tf.stack(per.map((m) => m[n]!))]));
  per.forEach((m) => tf.dispose(Object.values(m)));
  for (let i = 0; i < 3; i++) s = step(p, s);
  cases.push({ label: `${K} seeds vmapped`, run: () => void (s = (() => { for (let i = 0; i < ITERS; i++) s = step(p, s); return s; })()) });
}
const results = [];
for (const c of cases) results.push({ label: c.label, ...(await profile(c.run)) });

out();
out(`share of CPU samples   ${results.map((r) => r.label.padStart(18)).join(' ')}`);
for (const g of GROUPS) out(`  ${g.padEnd(20)} ${results.map((r) => `${(100 * (r.share.get(g) ?? 0)).toFixed(1)}%`.padStart(18)).join(' ')}`);
for (const r of results) {
  out();
  out(`largest functions, ${r.label}:`);
  for (const [name, f] of r.top) out(`  ${(100 * f).toFixed(1).padStart(5)}%  ${name}`);
}
