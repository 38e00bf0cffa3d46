/**
 * Compiler benchmark: measured side by side in one process, medians of repeated runs after
 * warm-up, printed as ratios (absolute times are shown only next to their ratio).
 *
 *  (a) 4-64-64-2 tanh MLP, MSE loss, Adam, batch 64: one compiled train step (wasm backend)
 *      vs the same model in plain tfjs (tf.variableGrads + tf.train.adam) on wasm.
 *  (b) tanh(a*x + b)*c + d over 1M elements: compiled vs the reference interpreter (wasm, cpu).
 *  (c) both against jax-js (jit, wasm device), when @jax-js/jax is installed.
 *  Also: the compile time of the largest graph in graphs/ and of the benchmark graphs.
 *
 * Usage: npm run bench:compiler [-- --reps 9 --steps 100]
 */
import * as tf from '@tensorflow/tfjs';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadGraph } from '../compiler/frontend/load.ts';
import { isStatic, substShape } from '../compiler/dims.ts';
import type { IRGraph } from '../compiler/ir.ts';
import { initBackend } from '../runtime/backend.ts';
import { clearCompileCache, compileLog, compileProgram, type Program } from '../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../runtime/interpreter.ts';
import { ADAM, chainJson, loadJson, MLP_PARAMS, MLP_SHAPES, mlpTrainStepJson } from './graphs.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const REPS = Math.max(7, opt('reps', 9));
const STEPS = opt('steps', 100);
const BATCH = 64;
const LR = 0.01;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (ms: number): string => (ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));
const out = (s = '') => process.stdout.write(s + '\n');

/**
 * Times several contenders in alternation; returns the median per call of each, in ms. A
 * contender's `finish` (waiting for lazily queued work) runs inside its timed block.
 */
function sideBySide(fns: Record<string, () => void>, reps: number, calls: number, warm = 3, finish: Record<string, () => void> = {}): Record<string, number> {
  for (const [k, f] of Object.entries(fns)) {
    for (let i = 0; i < warm; i++) f();
    finish[k]?.();
  }
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
  for (let r = 0; r < reps; r++)
    for (const [k, f] of Object.entries(fns)) {
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) f();
      finish[k]?.();
      times[k]!.push((performance.now() - t0) / calls);
    }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
}

// ---------------------------------------------------------------------------- (a) MLP train step

interface Trainer {
  step(): void;
  /** Current params, as plain arrays. */
  params(): Record<string, Float32Array>;
  loss(): number;
  dispose(): void;
}

function compiledTrainer(prog: Program, init: TensorMap, obs: tf.Tensor, target: tf.Tensor): Trainer {
  let params: TensorMap = Object.fromEntries(Object.entries(init).map(([k, t]) => [k, tf.clone(t)]));
  let state: TensorMap = {};
  for (const p of MLP_PARAMS) {
    state[`m_${p}`] = tf.zeros(MLP_SHAPES[p]);
    state[`v_${p}`] = tf.zeros(MLP_SHAPES[p]);
  }
  const lr = tf.scalar(LR);
  let t = 0;
  let lastLoss: tf.Tensor | undefined;
  return {
    step() {
      t++;
      const tt = tf.scalar(t);
      const o = prog.run({ obs, target, t: tt, lr, ...state }, params);
      tt.dispose();
      tf.dispose([...Object.values(params), ...Object.values(state)]);
      lastLoss?.dispose();
      params = {};
      state = {};
      for (const p of MLP_PARAMS) {
        params[p] = o[`new_${p}`]!;
        state[`m_${p}`] = o[`m_${p}`]!;
        state[`v_${p}`] = o[`v_${p}`]!;
      }
      lastLoss = o.loss;
    },
    params: () => Object.fromEntries(MLP_PARAMS.map((p) => [p, params[p]!.dataSync() as Float32Array])),
    loss: () => lastLoss!.dataSync()[0]!,
    dispose: () => tf.dispose([...Object.values(params), ...Object.values(state), lr, ...(lastLoss ? [lastLoss] : [])]),
  };
}

function tfjsTrainer(init: TensorMap, obs: tf.Tensor, target: tf.Tensor): Trainer {
  const vars: Record<string, tf.Variable> = Object.fromEntries(MLP_PARAMS.map((p) => [p, tf.variable(tf.clone(init[p]!), true, `bench_${p}_${Math.random()}`)]));
  const list = MLP_PARAMS.map((p) => vars[p]!);
  const adam = tf.train.adam(LR, ADAM.beta1, ADAM.beta2, ADAM.epsilon);
  let lastLoss: tf.Scalar | undefined;
  const f = (): tf.Scalar => {
    const h1 = tf.tanh(tf.add(tf.matMul(obs, vars.w1!), vars.b1!));
    const h2 = tf.tanh(tf.add(tf.matMul(h1, vars.w2!), vars.b2!));
    const y = tf.add(tf.matMul(h2, vars.w3!), vars.b3!);
    return tf.mean(tf.square(tf.sub(y, target)));
  };
  return {
    step() {
      const { value, grads } = tf.variableGrads(f, list);
      adam.applyGradients(grads as tf.NamedTensorMap as Record<string, tf.Variable>);
      tf.dispose(grads);
      lastLoss?.dispose();
      lastLoss = value;
    },
    params: () => Object.fromEntries(MLP_PARAMS.map((p) => [p, vars[p]!.dataSync() as Float32Array])),
    loss: () => lastLoss!.dataSync()[0]!,
    dispose: () => {
      tf.dispose([...list, ...(lastLoss ? [lastLoss] : [])]);
      adam.dispose();
    },
  };
}

// ---------------------------------------------------------------------------- jax-js

/** The same two workloads in jax-js (jit), or undefined when the package is absent. */
async function jaxContenders(init: Record<string, Float32Array>, obs: Float32Array, target: Float32Array, x: Float32Array) {
  let jax: typeof import('@jax-js/jax');
  try {
    jax = await import('@jax-js/jax');
  } catch {
    return undefined;
  }
  const { numpy: np, jit, valueAndGrad, tree } = jax;
  await jax.init('wasm');
  type A = InstanceType<typeof jax.Array>;
  const arr = (data: Float32Array, shape: number[]): A => np.array(data).reshape(shape);
  const xs = arr(x, [x.length]);
  const chain = jit((v: A, a: A, b: A, c: A, d: A) => np.tanh(v.mul(a).add(b)).mul(c).add(d));
  const scal = (v: number) => np.array(v);
  const runChain = () => {
    chain(xs.ref, scal(1.1), scal(0.2), scal(0.9), scal(0.1)).dataSync();
  };

  type P = Record<string, A>;
  let p: P = {};
  let m: P = {};
  let v: P = {};
  for (const k of MLP_PARAMS) {
    p[k] = arr(init[k]!, MLP_SHAPES[k]);
    m[k] = np.zeros(MLP_SHAPES[k]);
    v[k] = np.zeros(MLP_SHAPES[k]);
  }
  const o = arr(obs, [BATCH, 4]);
  const tg = arr(target, [BATCH, 2]);
  const loss = (pp: P, ob: A, ta: A): A => {
    const h1 = np.tanh(np.matmul(ob, pp.w1!).add(pp.b1!));
    const h2 = np.tanh(np.matmul(h1, pp.w2!).add(pp.b2!));
    const d = np.matmul(h2, pp.w3!).add(pp.b3!).sub(ta);
    return np.mean(d.ref.mul(d));
  };
  const step = jit((pp: P, mm: P, vv: P, ob: A, ta: A, c1: A, c2: A, lr: A) => {
    const [l, g] = valueAndGrad(loss)(tree.ref(pp), ob, ta) as unknown as [A, P];
    const np2: P = {};
    const nm: P = {};
    const nv: P = {};
    for (const k of MLP_PARAMS) {
      const mk = mm[k]!.mul(ADAM.beta1).add(g[k]!.ref.mul(1 - ADAM.beta1));
      const vk = vv[k]!.mul(ADAM.beta2).add(g[k]!.ref.mul(g[k]!).mul(1 - ADAM.beta2));
      const upd = mk.ref.div(c1.ref).div(np.sqrt(vk.ref.div(c2.ref)).add(ADAM.epsilon)).mul(lr.ref);
      np2[k] = pp[k]!.sub(upd);
      nm[k] = mk;
      nv[k] = vk;
    }
    c1.dispose();
    c2.dispose();
    lr.dispose();
    return [l, np2, nm, nv];
  });
  let t = 0;
  let last: A | undefined;
  const trainer: Trainer = {
    step() {
      t++;
      const [l, a, b, c] = step(p, m, v, o.ref, tg.ref, scal(1 - ADAM.beta1 ** t), scal(1 - ADAM.beta2 ** t), scal(LR)) as unknown as [A, P, P, P];
      p = a;
      m = b;
      v = c;
      last?.dispose();
      last = l;
    },
    params: () => Object.fromEntries(MLP_PARAMS.map((k) => [k, p[k]!.ref.dataSync() as Float32Array])),
    loss: () => last!.ref.dataSync()[0] as number,
    dispose: () => {},
  };
  return { runChain, trainer };
}

// ---------------------------------------------------------------------------- compile times

function graphFiles(dir: string): string[] {
  const outFiles: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) outFiles.push(...graphFiles(p));
    else if (name.endsWith('.graph.json')) outFiles.push(p);
  }
  return outFiles;
}

/** Zero inputs for a graph with every symbolic dim set to `n`. */
function zeroInputs(g: IRGraph, n: number): TensorMap {
  const env = new Map<string, number>();
  const inputs: TensorMap = {};
  for (const i of g.inputs) {
    for (const d of i.type.shape) if (typeof d === 'string') for (const s of d.split('*')) if (!/^\d+$/.test(s)) env.set(s, n);
    const shape = substShape(i.type.shape, env);
    if (!shape.every(isStatic)) throw new Error('unbound dims');
    inputs[i.name] = tf.zeros(shape as number[], i.type.dtype);
  }
  return inputs;
}

interface CompileTime {
  name: string;
  nodes: number;
  fused: number;
  kernels: number;
  passMs: number;
  planMs: number;
}

function compileTime(g: IRGraph, inputs: TensorMap): CompileTime {
  const before = compileLog.length;
  const prog = compileProgram(g, { log: () => {} });
  const kernels = prog.kernels(inputs).length;
  const planMs = compileLog.slice(before).reduce((s, e) => s + e.ms, 0);
  return { name: g.name, nodes: prog.graph.nodes.length, fused: prog.graph.nodes.filter((n) => n.op === 'fused').length, kernels, passMs: prog.passMs, planMs };
}

// ---------------------------------------------------------------------------- main

async function main(): Promise<void> {
  await initBackend('wasm', () => {});
  out(`tensorloom compiler benchmark  (node ${process.version}, backend ${tf.getBackend()}; medians of ${REPS} runs after warm-up)`);
  out();

  // Compile times: the benchmark graphs first (cold: includes starting the type checker).
  const mlpGraph = loadJson(mlpTrainStepJson(), 'mlp-train-step');
  const chainGraph = loadJson(chainJson(), 'tanh-chain');
  const mlpInit = initParams(mlpGraph, 0);
  const obs = tf.randomNormal([BATCH, 4], 0, 1, 'float32', 1);
  const target = tf.randomNormal([BATCH, 2], 0, 1, 'float32', 2);
  const mlpInputs: TensorMap = { obs, target, t: tf.scalar(1), lr: tf.scalar(LR) };
  for (const p of MLP_PARAMS) {
    mlpInputs[`m_${p}`] = tf.zeros(MLP_SHAPES[p]);
    mlpInputs[`v_${p}`] = tf.zeros(MLP_SHAPES[p]);
  }
  const times: CompileTime[] = [compileTime(mlpGraph, mlpInputs)];
  for (const f of graphFiles(join(import.meta.dirname, '..', 'graphs'))) {
    try {
      const g = loadGraph(f);
      const inputs = zeroInputs(g, 16);
      times.push(compileTime(g, inputs));
      tf.dispose(Object.values(inputs));
    } catch {
      // Graphs that need inputs zeros cannot describe are skipped.
    }
  }
  const largest = times.reduce((a, b) => (b.nodes > a.nodes ? b : a));
  out('compile time (passes + plan: lowering, codegen, type-check, load)');
  out(`  ${'graph'.padEnd(34)} ${'nodes'.padStart(6)} ${'fused'.padStart(6)} ${'kernels'.padStart(8)} ${'passes ms'.padStart(10)} ${'plan ms'.padStart(9)} ${'total ms'.padStart(9)}`);
  for (const t of times.sort((a, b) => b.nodes - a.nodes).slice(0, 6))
    out(`  ${t.name.slice(0, 34).padEnd(34)} ${String(t.nodes).padStart(6)} ${String(t.fused).padStart(6)} ${String(t.kernels).padStart(8)} ${fmt(t.passMs).padStart(10)} ${fmt(t.planMs).padStart(9)} ${fmt(t.passMs + t.planMs).padStart(9)}`);
  out(`  largest graph: ${largest.name} (${largest.nodes} nodes after passes), ${fmt(largest.passMs + largest.planMs)} ms  ${largest.passMs + largest.planMs < 1000 ? '(< 1 s)' : '(OVER 1 s)'}`);
  out(`  first graph compiled cold (type checker start-up included): ${times.find((t) => t.name === mlpGraph.name) ? fmt(times.find((t) => t.name === mlpGraph.name)!.passMs + times.find((t) => t.name === mlpGraph.name)!.planMs) : '?'} ms`);
  out();

  // (a) MLP train step.
  const prog = compileProgram(mlpGraph);
  const compiled = compiledTrainer(prog, mlpInit, obs, target);
  const plain = tfjsTrainer(mlpInit, obs, target);
  const initArrays = Object.fromEntries(MLP_PARAMS.map((p) => [p, mlpInit[p]!.dataSync() as Float32Array]));
  const xChain = tf.randomUniform([1 << 20], -2, 2, 'float32', 3);
  const jaxc = await jaxContenders(initArrays, obs.dataSync() as Float32Array, target.dataSync() as Float32Array, xChain.dataSync() as Float32Array);

  // Same start, same batch, 5 steps: the trainers must agree before they are timed.
  const trainers: Record<string, Trainer> = { compiled, tfjs: plain, ...(jaxc ? { 'jax-js': jaxc.trainer } : {}) };
  for (let i = 0; i < 5; i++) for (const t of Object.values(trainers)) t.step();
  const ref = plain.params();
  const agree = Object.entries(trainers).map(([k, t]) => {
    const ps = t.params();
    let d = 0;
    for (const p of MLP_PARAMS) for (let i = 0; i < ref[p]!.length; i++) d = Math.max(d, Math.abs(ps[p]![i]! - ref[p]![i]!));
    return `${k} loss ${t.loss().toFixed(6)}, max |param - tfjs param| ${d.toExponential(1)}`;
  });

  const launches = async (f: () => void) => (await tf.profile(() => void f())).kernels.length;
  const nCompiled = await launches(() => compiled.step());
  const nPlain = await launches(() => plain.step());

  const stepFns: Record<string, () => void> = { compiled: () => compiled.step(), tfjs: () => plain.step() };
  if (jaxc) stepFns['jax-js'] = () => jaxc.trainer.step();
  // jax-js queues work lazily: its block of steps ends by reading the loss.
  const mlp = sideBySide(stepFns, REPS, STEPS, 3, jaxc ? { 'jax-js': () => void jaxc.trainer.loss() } : {});
  // Finish pending work of the last step of each contender (tfjs wasm and jax-js are synchronous here).
  compiled.loss();
  plain.loss();

  out(`(a) MLP 4-64-64-2 tanh, MSE, Adam, batch ${BATCH}: one train step (forward, loss, backward, update), wasm`);
  for (const line of agree) out(`  check after 5 steps: ${line}`);
  out(`  kernel launches per step: compiled ${nCompiled}, tfjs ${nPlain}`);
  out(`  compiled ${fmt(mlp.compiled!)} ms   tfjs ${fmt(mlp.tfjs!)} ms   -> compiled is ${(mlp.tfjs! / mlp.compiled!).toFixed(2)}x faster than tfjs (target >= 3x)`);
  if (mlp['jax-js']) out(`  jax-js jit ${fmt(mlp['jax-js'])} ms   -> compiled is ${(mlp['jax-js'] / mlp.compiled!).toFixed(2)}x faster than jax-js`);
  out();

  // (b) 1M-element chain.
  const chainProg = compileProgram(chainGraph);
  const cIn: TensorMap = { x: xChain, a: tf.scalar(1.1), b: tf.scalar(0.2), c: tf.scalar(0.9), d: tf.scalar(0.1) };
  // cpu and wasm run synchronously: a result exists when run returns; reading it back (a 4 MB copy
  // on wasm) is left out of every contender's time.
  const consume = (m: TensorMap) => m.y!.dispose();
  out(`(b) tanh(a*x + b)*c + d over ${(1 << 20).toLocaleString('en-US')} elements`);
  const rows: [string, Record<string, number>][] = [];
  for (const backend of ['wasm', 'cpu']) {
    await initBackend(backend, () => {});
    const x = tf.tensor(xChain.dataSync(), [1 << 20]);
    const inp: TensorMap = { ...cIn, x };
    const check = tf.tidy(() => {
      const a = chainProg.run(inp, {}).y!;
      const b = interpret(chainGraph, inp, {}).y!;
      return tf.max(tf.abs(tf.sub(a, b)));
    });
    const maxDiff = check.dataSync()[0]!;
    check.dispose();
    const fns: Record<string, () => void> = { compiled: () => consume(chainProg.run(inp, {})), interpreter: () => consume(interpret(chainGraph, inp, {})) };
    if (backend === 'wasm' && jaxc) {
      // jax-js computes lazily, when the result is read: compare it with a compiled run that reads too.
      fns['jax-js'] = jaxc.runChain;
      fns['compiled+read'] = () => {
        const y = chainProg.run(inp, {}).y!;
        y.dataSync();
        y.dispose();
      };
    }
    const r = sideBySide(fns, REPS, 1, 2);
    rows.push([backend, r]);
    out(`  ${backend.padEnd(5)} compiled ${fmt(r.compiled!)} ms   interpreter ${fmt(r.interpreter!)} ms   -> ${(r.interpreter! / r.compiled!).toFixed(2)}x faster (target >= 3x); max |compiled - interpreted| ${maxDiff.toExponential(1)}`);
    if (r['jax-js'])
      out(`        with the result read back: compiled ${fmt(r['compiled+read']!)} ms   jax-js jit ${fmt(r['jax-js'])} ms   -> compiled is ${(r['jax-js'] / r['compiled+read']!).toFixed(2)}x faster than jax-js`);
    x.dispose();
  }
  await initBackend('wasm', () => {});
  out();
  if (!jaxc) out('(c) jax-js: not installed (npm i -D @jax-js/jax), skipped');
  else out('(c) jax-js: numbers above (init("wasm"), jit; the MLP step uses valueAndGrad inside jit)');
  const recompiles = compileLog.filter((e) => e.recompile);
  out(`plans compiled: ${compileLog.length} (${recompiles.length} recompilations${recompiles.length ? ': ' + recompiles.map((e) => `${e.graph}: ${e.reason}`).join('; ') : ''})`);
  compiled.dispose();
  plain.dispose();
  clearCompileCache();
}

await main();
