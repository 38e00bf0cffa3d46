/**
 * The executor of compiled programs.
 *
 * compileProgram runs the compiler passes once (shape-independent), and each run looks up a
 * plan for the concrete input shapes and the active backend: the fused nodes lowered to
 * kernels, generated, type-checked and loaded (runtime/jit.ts), constants evaluated once, and
 * every node resolved to a closure over value slots. Plans are cached by graph hash + input
 * shapes + backend; every compilation is recorded with its reason, and a recompilation (a new
 * shape or backend for a graph already planned) is also reported through `log`.
 *
 * Library ops run through the op registry's reference kernels, fused nodes through their
 * registered kernels. Each intermediate is disposed right after its last use (the liveness
 * pass marks where); there is no tf.tidy around the program.
 */
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../compiler/errors.ts';
import { printable } from '../compiler/text.ts';
import type { DType, IRGraph, IRNode, TensorType } from '../compiler/ir.ts';
import { getOp } from '../compiler/ops/index.ts';
import { HOST_ADDRESSABLE, hostCopy, hostOpRunner, hostScalar, hostTensor, hostValues, syncReadable } from './host-memory.ts';
import { bindInputs, concreteType, scanLayout, scanLength, type TensorMap } from './interpreter.ts';
import {
  compileGraph,
  hashText,
  isLoaded,
  jsTarget,
  loadKernels,
  lowerFused,
  ownsProducts,
  roleOf,
  kernelRunner,
  takesBuffers,
  type KernelRunner,
  stableStringify,
  type CodegenTarget,
  type CompileOptions,
  type GeneratedKernel,
  type StageReport,
  wgslTarget,
  wgslUnsupported,
  type WgslKernel,
  wasmTarget,
  wasmUnsupported,
} from './jit.ts';
import { productFits } from './wasm-gemm.ts';
import { assembleWasmKernel, wasmKernelsReady } from './wasm-kernels.ts';
import { runsWgsl, wgslRunner, wgslUnfit } from './webgpu-kernels.ts';

export interface ProgramOptions {
  /** The backend the program must run on; a run on another active backend is an error. */
  backend?: string;
  /** Passes to switch off (by name). */
  disabled?: ReadonlySet<string>;
  /**
   * Generate code for fused nodes (default): host kernels (the JS target) on cpu, wasm and
   * tensorflow, WGSL shaders on webgpu. Off, their bodies run op by op through reference kernels.
   */
  codegen?: boolean;
  target?: CodegenTarget;
  /**
   * Run library ops through their host kernels (the registry's `host`) on backends whose memory
   * the host addresses (cpu, wasm), when the op's inputs and output together hold at most this
   * many elements; 0 switches host kernels off. Default HOST_MAX_ELEMENTS.
   */
  hostMaxElements?: number;
  /**
   * Give small intermediates (at most hostMaxElements elements) that only generated and host
   * kernels write and read one buffer per plan, overwritten on every run, instead of a fresh
   * tensor per run (default true; cpu and wasm).
   */
  reuseBuffers?: boolean;
  /**
   * On wasm, generated kernels multiply matrices (and stacks of them) with the own WebAssembly product
   * (runtime/wasm-gemm.ts) once `initBackend` has prepared it (default true); false: the library's
   * BatchMatMul, whose operator cache keeps every right operand a fresh tensor.
   */
  wasmProduct?: boolean;
  /**
   * On wasm, generated kernels the wasm target renders (elementwise work and column reductions;
   * see compiler/codegen/wasm.ts) run as WebAssembly SIMD functions, every op rounded to float32, once
   * `initBackend` has prepared the assembler (default true); false, or a kernel it cannot render:
   * the JS target's function.
   */
  wasmKernels?: boolean;
  /** Receives recompilation reports (default: stderr). */
  log?: (msg: string) => void;
  /**
   * Adds the milliseconds each step of a run takes to this map, under its node's id (a scan's
   * whole loop under the scan's id, each step of its body under `<scan id> > <body node id>`, the
   * slicing of xs and the stacking of ys under `<scan id> > (xs)` and `<scan id> > (ys)`): where
   * the time of a program goes, at the cost of a clock read per step. Off by default.
   */
  profile?: Map<string, number>;
}

export interface CompileEvent {
  graph: string;
  key: string;
  /** Why this plan was built: a first compilation, or what differs from the last plan of the graph. */
  reason: string;
  recompile: boolean;
  /** Milliseconds spent building the plan (lowering, codegen, type-check, load). */
  ms: number;
  kernels: number;
  /** Kernels generated here that no earlier plan had generated. */
  newKernels: number;
}

/** How a fused node of a plan runs. */
export interface FusedRun {
  /** The fused node's id. */
  node: string;
  /** Its ops, in order. */
  ops: string[];
  /** A generated host kernel (the JS target, or the wasm target's function), WGSL shaders, or its ops one by one on the backend's kernels. */
  as: 'js' | 'wasm' | 'wgsl' | 'ops';
  /** The generated kernel's name. */
  kernel?: string;
  /** Why it runs op by op where a kernel was wanted (a WGSL target limit, the device's storage buffers). */
  why?: string;
}

export interface Program {
  /** The compiled IR (fused nodes, liveness marks). */
  readonly graph: IRGraph;
  readonly stages: readonly StageReport[];
  /** Milliseconds the compiler passes took. */
  readonly passMs: number;
  readonly stats: { runs: number; hits: number; misses: number };
  readonly events: readonly CompileEvent[];
  run(inputs: TensorMap, params: TensorMap): TensorMap;
  /**
   * `run` that awaits the reads of the inputs of ops that read values on the host (sampling,
   * scans), where the backend's tensors cannot be read synchronously (webgpu); elsewhere it is run.
   */
  runAsync(inputs: TensorMap, params: TensorMap): Promise<TensorMap>;
  /** The generated kernels of the plan for these inputs on the active backend (built if needed): host kernels, then WGSL kernels. */
  kernels(inputs: TensorMap): GeneratedKernel[];
  /** How each fused node runs in the plan for these inputs on the active backend (built if needed). */
  fused(inputs: TensorMap): readonly FusedRun[];
  /** How many intermediates of that plan are buffers it owns and overwrites on every run. */
  buffers(inputs: TensorMap): number;
}

/**
 * Runs a step; `into[k]`, where given, is the plan's buffer that output k is written into. A scan
 * adds the times of its body's steps to `profile`, where given.
 */
type Exec = (ins: tf.Tensor[], into?: readonly (tf.Tensor | undefined)[], profile?: Map<string, number>) => tf.Tensor[];

interface Step {
  node: IRNode;
  ins: number[];
  outs: number[];
  free: number[];
  exec: Exec;
  /** The plan's buffers for this step's outputs (undefined: a fresh tensor per run). */
  into?: (tf.Tensor | undefined)[];
  /** Its inputs must be read (awaited) before it runs: an op reading values on the host, on webgpu. */
  awaits?: boolean;
  /** The step as awaited work, where running it needs reads the backend allows only asynchronously (a scan on webgpu). */
  execAsync?: (ins: tf.Tensor[]) => Promise<tf.Tensor[]>;
}

interface Plan {
  key: string;
  backend: string;
  shapes: Record<string, string>;
  /** Slot values fixed by the plan (constants), shared by every run. */
  fixed: (tf.Tensor | undefined)[];
  /** Buffers the plan owns and its kernels overwrite on every run (intermediates only). */
  buffers: tf.Tensor[];
  inputSlots: number[];
  /** The first node whose inputs must be read before it runs (see Step.awaits): run refuses such a plan. */
  awaits: IRNode | undefined;
  paramSlots: number[];
  steps: Step[];
  outputs: [string, number][];
  /** Slots a run must not dispose or hand out as is: inputs, params, constants. */
  borrowed: boolean[];
  /** The input dtypes and shapes the plan was built for, in graph input order. */
  inputTypes: { dtype: string; shape: number[] }[];
  /** Host kernels (loaded), then WGSL kernels. */
  kernels: GeneratedKernel[];
  fused: FusedRun[];
  /**
   * Per output: the step that computes it and the index among that step's outputs, where that
   * step can write it into a buffer the caller gives (a bound run's `into`), else undefined.
   */
  outputWriters: ({ step: Step; k: number } | undefined)[];
}

interface CompiledGraph {
  hash: string;
  graph: IRGraph;
  stages: StageReport[];
  passMs: number;
}

/**
 * Default size limit of host kernels: RL rollouts and minibatches (a few thousand elements) are
 * far below it, where one library kernel's dispatch costs more than the loop; large tensors stay
 * with the library's (SIMD) kernels.
 */
export const HOST_MAX_ELEMENTS = 1 << 16;

const irCache = new Map<string, CompiledGraph>();
const planCache = new Map<string, Plan>();
/** Last plan key per graph hash, to explain recompilations. */
const lastPlan = new Map<string, Plan>();
/** Every plan compilation of this process, in order. */
export const compileLog: CompileEvent[] = [];

/** Forgets every compiled graph and plan (and frees the plans' constants). */
export function clearCompileCache(): void {
  for (const p of planCache.values()) tf.dispose([...p.fixed.filter((t): t is tf.Tensor => t !== undefined), ...p.buffers]);
  irCache.clear();
  planCache.clear();
  lastPlan.clear();
}

function graphHash(g: IRGraph, opts: ProgramOptions): string {
  const { file: _f, outputSources: _o, ...rest } = g;
  const strip = (k: string, v: unknown) => (k === 'source' ? undefined : v);
  const text = JSON.stringify(JSON.parse(JSON.stringify(rest, strip)), null, 0);
  return hashText(`${stableStringify(JSON.parse(text))}|disabled=${[...(opts.disabled ?? [])].sort().join(',')}|codegen=${opts.codegen !== false}|host=${opts.hostMaxElements ?? HOST_MAX_ELEMENTS}|reuse=${opts.reuseBuffers !== false}|wasmProduct=${opts.wasmProduct !== false}|wasmKernels=${opts.wasmKernels !== false}`);
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function shapeText(t: { dtype: string; shape: readonly number[] }): string {
  return `${t.dtype}[${t.shape.join(',')}]`;
}

function explain(prev: Plan | undefined, backend: string, shapes: Record<string, string>): string {
  if (!prev) return 'first compilation';
  const diffs: string[] = [];
  if (prev.backend !== backend) diffs.push(`backend ${backend} (cached plan: ${prev.backend})`);
  for (const [k, s] of Object.entries(shapes)) if (prev.shapes[k] !== s) diffs.push(`input ${k} is ${s} (cached plan: ${prev.shapes[k]})`);
  return diffs.join('; ') || 'plan evicted';
}

class CompiledProgram implements Program {
  readonly stats = { runs: 0, hits: 0, misses: 0 };
  readonly events: CompileEvent[] = [];
  private last: Plan | undefined;

  constructor(
    private readonly compiled: CompiledGraph,
    private readonly opts: ProgramOptions,
  ) {}

  get graph(): IRGraph {
    return this.compiled.graph;
  }
  get stages(): readonly StageReport[] {
    return this.compiled.stages;
  }
  get passMs(): number {
    return this.compiled.passMs;
  }

  /** Whether the last plan fits these inputs on the active backend (no key built: this runs per call). */
  private lastFits(inputs: TensorMap, backend: string): boolean {
    const last = this.last;
    if (!last || last.backend !== backend) return false;
    const ins = this.compiled.graph.inputs;
    for (let k = 0; k < ins.length; k++) {
      const x = inputs[ins[k]!.name];
      const want = last.inputTypes[k]!;
      if (!x || x.dtype !== want.dtype || x.shape.length !== want.shape.length) return false;
      for (let d = 0; d < want.shape.length; d++) if (x.shape[d] !== want.shape[d]) return false;
    }
    return true;
  }

  private planFor(inputs: TensorMap): Plan {
    const g = this.compiled.graph;
    const backend = tf.getBackend();
    if (this.lastFits(inputs, backend)) {
      this.stats.hits++;
      return this.last!;
    }
    if (this.opts.backend && backend !== this.opts.backend)
      throw new LoomError({ code: 'E_BACKEND', message: `program ${g.name} was compiled for the ${this.opts.backend} backend but ${backend} is active`, hint: 'call initBackend first' });
    let key = `${this.compiled.hash}|${backend}`;
    for (const i of g.inputs) {
      const x = inputs[i.name];
      key += x ? `|${x.dtype}[${x.shape.join(',')}]` : '|?';
    }
    const last = this.last;
    if (last && last.key === key) {
      this.stats.hits++;
      return last;
    }
    let plan = planCache.get(key);
    if (plan) {
      this.stats.hits++;
      lastPlan.set(this.compiled.hash, plan);
    } else {
      this.stats.misses++;
      const env = bindInputs(g, inputs);
      const shapes = Object.fromEntries(g.inputs.map((i) => [i.name, shapeText(inputs[i.name]!)]));
      const prev = lastPlan.get(this.compiled.hash);
      const reason = explain(prev, backend, shapes);
      const t0 = performance.now();
      const inputTypes = g.inputs.map((i) => ({ dtype: inputs[i.name]!.dtype, shape: [...inputs[i.name]!.shape] }));
      const built = buildPlan(g, env, key, backend, shapes, inputTypes, this.opts);
      plan = built.plan;
      const ev: CompileEvent = { graph: g.name, key, reason, recompile: !!prev, ms: performance.now() - t0, kernels: plan.kernels.length, newKernels: built.newKernels };
      this.events.push(ev);
      compileLog.push(ev);
      const log = this.opts.log ?? ((m: string) => process.stderr.write(m + '\n'));
      if (prev) log(`loom: recompiled ${printable(g.name)}: ${reason} (${ev.ms.toFixed(1)} ms)`);
      const fallbacks = plan.fused.filter((f) => f.why);
      if (fallbacks.length)
        log(`loom: ${printable(g.name)} on ${backend}: ${fallbacks.length} of ${plan.fused.length} fused nodes run op by op: ${fallbacks.map((f) => `${printable(f.node)} (${f.why})`).join('; ')}`);
      planCache.set(key, plan);
      lastPlan.set(this.compiled.hash, plan);
    }
    this.last = plan;
    return plan;
  }

  kernels(inputs: TensorMap): GeneratedKernel[] {
    return this.planFor(inputs).kernels;
  }

  fused(inputs: TensorMap): readonly FusedRun[] {
    return this.planFor(inputs).fused;
  }

  buffers(inputs: TensorMap): number {
    return this.planFor(inputs).buffers.length;
  }

  run(inputs: TensorMap, params: TensorMap): TensorMap {
    return this.runProfiled(inputs, params, this.opts.profile);
  }

  /** `run`, adding the time of each step to `profile` where given (a scan's body steps under `<scan id> > `). */
  runProfiled(inputs: TensorMap, params: TensorMap, profile: Map<string, number> | undefined): TensorMap {
    const { plan, vals } = this.begin(inputs, params);
    this.refuseAwaits(plan);
    try {
      runSteps(plan, vals, profile);
      return outputsOf(plan, vals);
    } catch (e) {
      releaseRun(plan, vals);
      throw e;
    }
  }

  /**
   * For a loop that runs this program many times on inputs of the same types (a scan's body): the
   * plan for `inputs` and the params are bound once, and each run takes the inputs as an array in
   * `inputNames` order and gives the outputs in `outputNames` order, with none of the maps, key
   * and shape checks of `run`. The caller must pass inputs of the types `inputs` had.
   */
  bind(inputs: TensorMap, params: TensorMap): BoundRun {
    const { plan, vals: base } = this.begin(inputs, params);
    this.stats.runs--; // begin counts a run; each call of the bound runner counts its own
    this.refuseAwaits(plan);
    const g = this.compiled.graph;
    const slots = plan.inputSlots;
    // For a run with `into`: each step that computes writable outputs, with its own buffers and
    // (swapped in for the run) a list that also holds the given ones.
    const writers = plan.outputWriters;
    const bySteps = new Map<Step, { step: Step; own: Step['into']; list: (tf.Tensor | undefined)[]; outs: [number, number][] }>();
    writers.forEach((w, j) => {
      if (!w) return;
      let e = bySteps.get(w.step);
      if (!e) bySteps.set(w.step, (e = { step: w.step, own: w.step.into, list: [...(w.step.into ?? new Array<undefined>(w.step.outs.length))], outs: [] }));
      e.outs.push([j, w.k]);
    });
    const swaps = [...bySteps.values()];
    return {
      inputNames: g.inputs.map((i) => i.name),
      outputNames: plan.outputs.map(([name]) => name),
      writable: writers.map((w) => w !== undefined),
      run: (ins, profile, into) => {
        this.stats.runs++;
        const vals = base.slice();
        for (let k = 0; k < slots.length; k++) vals[slots[k]!] = ins[k];
        if (into)
          for (const e of swaps) {
            for (const [j, k] of e.outs) e.list[k] = into[j] ?? e.own?.[k];
            e.step.into = e.list;
          }
        try {
          runSteps(plan, vals, profile);
          return outputList(plan, vals);
        } catch (e) {
          releaseRun(plan, vals);
          throw e;
        } finally {
          if (into) for (const e of swaps) e.step.into = e.own;
        }
      },
    };
  }

  private refuseAwaits(plan: Plan): void {
    const waits = plan.awaits;
    if (waits)
      throw new LoomError({
        code: 'E_BACKEND',
        message: `program ${printable(this.compiled.graph.name)} reads values on the host at node ${printable(waits.id)} (${waits.op}), which the ${plan.backend} backend allows only asynchronously`,
        node: waits.id,
        hint: 'run it with runAsync',
      });
  }

  async runAsync(inputs: TensorMap, params: TensorMap): Promise<TensorMap> {
    const { plan, vals } = this.begin(inputs, params);
    try {
      for (const s of plan.steps) {
        if (s.execAsync) {
          await runStepAsync(s, vals);
          continue;
        }
        // A read caches the values on the host, so the kernel's synchronous reads then succeed.
        if (s.awaits) await Promise.all(s.ins.map((k) => vals[k]!.data()));
        runStep(s, vals);
      }
      return outputsOf(plan, vals);
    } catch (e) {
      releaseRun(plan, vals);
      throw e;
    }
  }

  /** The plan for these inputs and its value slots, with the inputs and params bound. */
  private begin(inputs: TensorMap, params: TensorMap): { plan: Plan; vals: (tf.Tensor | undefined)[] } {
    const g = this.compiled.graph;
    if (Object.keys(inputs).length !== g.inputs.length) bindInputs(g, inputs); // throws the precise error
    const plan = this.planFor(inputs);
    this.stats.runs++;
    const vals = plan.fixed.slice();
    g.inputs.forEach((i, k) => (vals[plan.inputSlots[k]!] = inputs[i.name]!));
    g.params.forEach((p, k) => {
      const t = params[p.name];
      if (!t) throw new LoomError({ code: 'E_INPUT', message: `missing param "${p.name}"`, file: p.source?.file, pointer: p.source?.pointer });
      vals[plan.paramSlots[k]!] = t;
    });
    return { plan, vals };
  }
}

/** A program's plan bound to its params, for a loop (see CompiledProgram.bind). */
interface BoundRun {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Per output: whether `run` can write it into a given buffer. */
  readonly writable: readonly boolean[];
  /**
   * `into[k]`, where given for a writable output, is a tensor of output k's type that the run
   * overwrites and hands back as output k (the caller keeps owning it). It must not be one of `ins`.
   */
  run(ins: readonly tf.Tensor[], profile?: Map<string, number>, into?: readonly (tf.Tensor | undefined)[]): tf.Tensor[];
}

function runSteps(plan: Plan, vals: (tf.Tensor | undefined)[], profile: Map<string, number> | undefined): void {
  if (profile)
    for (const s of plan.steps) {
      const t0 = performance.now();
      runStep(s, vals, profile);
      profile.set(s.node.id, (profile.get(s.node.id) ?? 0) + performance.now() - t0);
    }
  else for (const s of plan.steps) runStep(s, vals);
}

function runStep(s: Step, vals: (tf.Tensor | undefined)[], profile?: Map<string, number>): void {
  const ins = s.ins.map((k) => vals[k]!);
  const outs = profile ? s.exec(ins, s.into, profile) : s.exec(ins, s.into);
  for (let k = 0; k < s.outs.length; k++) vals[s.outs[k]!] = outs[k];
  for (const f of s.free) {
    vals[f]!.dispose();
    vals[f] = undefined;
  }
}

async function runStepAsync(s: Step, vals: (tf.Tensor | undefined)[]): Promise<void> {
  const outs = await s.execAsync!(s.ins.map((k) => vals[k]!));
  for (let k = 0; k < s.outs.length; k++) vals[s.outs[k]!] = outs[k];
  for (const f of s.free) {
    vals[f]!.dispose();
    vals[f] = undefined;
  }
}

function outputsOf(plan: Plan, vals: (tf.Tensor | undefined)[]): TensorMap {
  const list = outputList(plan, vals);
  const out: TensorMap = {};
  for (let k = 0; k < list.length; k++) out[plan.outputs[k]![0]] = list[k]!;
  return out;
}

/** The outputs in plan order, each a tensor of its own that the caller owns. */
function outputList(plan: Plan, vals: (tf.Tensor | undefined)[]): tf.Tensor[] {
  const out: tf.Tensor[] = new Array(plan.outputs.length);
  for (let k = 0; k < out.length; k++) {
    const slot = plan.outputs[k]![1];
    const t = vals[slot]!;
    let again = false;
    for (let j = 0; j < k && !again; j++) again = plan.outputs[j]![1] === slot;
    out[k] = plan.borrowed[slot] || again ? hostCopy(t) : t;
  }
  return out;
}

/** Frees what a failed run made (never its inputs, params, constants or buffers). */
function releaseRun(plan: Plan, vals: (tf.Tensor | undefined)[]): void {
  for (let k = 0; k < vals.length; k++) if (!plan.borrowed[k]) vals[k]?.dispose();
}

/** Evaluates a fused node's body op by op with reference kernels (codegen off). */
function referenceFused(node: IRNode, env: ReadonlyMap<string, number>): (ins: tf.Tensor[]) => tf.Tensor[] {
  const exported = Object.keys(node.outputTypes!);
  return (ins) =>
    tf.tidy(() => {
      const vals = new Map<string, tf.Tensor>();
      node.inputs.forEach((r, k) => vals.set(r, ins[k]!));
      for (const b of node.body!) {
        const def = getOp(b.op)!;
        vals.set(b.id, def.kernel(tf, b.inputs.map((r) => vals.get(r)!), b.attrs, { outType: concreteType(b.type!, env, b) }));
      }
      return exported.map((id) => vals.get(id)!);
    });
}

/** One backend kernel call of a recorded library op: slots are the op's inputs, then earlier calls' outputs. */
interface TraceCall {
  kernel: tf.KernelFunc;
  names: string[];
  /** Inputs passed as an array (Pack, Concat, AddN) rather than by name. */
  list: boolean;
  ins: number[];
  attrs: tf.NamedAttrMap;
  outs: number[];
  /** Slots (call outputs) whose last use is this call. */
  free: number[];
}
interface Trace {
  backend: tf.KernelBackend;
  calls: TraceCall[];
  slots: number;
  result: number;
}

interface RecordingEngine {
  backend: tf.KernelBackend;
  backendName: string;
  runKernel(name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor | tf.Tensor[];
  readSync(dataId: object): unknown;
  read(dataId: object): unknown;
  makeTensorFromTensorInfo(t: tf.TensorInfo, backend?: tf.KernelBackend): tf.Tensor;
}

/**
 * Runs a library op's reference kernel once while recording the backend kernels it dispatches,
 * then replays those kernels directly on the backend (no op wrappers, scopes, broadcasting
 * checks or tensor objects for intermediates). A plan is specialised to shapes and a backend, so
 * a pure op that reads no data on the host and creates no tensors of its own dispatches the same
 * kernels with the same attributes every time. Anything else (a host read, a tensor made inside
 * the kernel, a kernel registered for another backend) keeps the op on the ordinary path.
 */
function replayable(direct: (xs: tf.Tensor[]) => tf.Tensor[]): (xs: tf.Tensor[]) => tf.Tensor[] {
  let trace: Trace | null | undefined;
  const engine = tf.engine() as unknown as RecordingEngine;
  return (xs) => {
    if (trace === undefined) {
      // The trace maps tensors to input positions, so it is taken on a call whose inputs are distinct tensors.
      if (new Set(xs).size !== xs.length) return direct(xs);
      const rec = record(engine, xs, direct);
      trace = rec.trace;
      return rec.out;
    }
    if (trace === null || engine.backend !== trace.backend) return direct(xs);
    return [replay(engine, trace, xs)];
  };
}

function record(engine: RecordingEngine, xs: tf.Tensor[], direct: (xs: tf.Tensor[]) => tf.Tensor[]): { out: tf.Tensor[]; trace: Trace | null } {
  const slotOf = new Map<tf.Tensor, number>(xs.map((x, k) => [x, k]));
  let slots = xs.length;
  const calls: TraceCall[] = [];
  let ok = true;
  const backend = engine.backend;
  const backendName = engine.backendName;
  const own = engine as unknown as Record<string, unknown>;
  const runKernel = engine.runKernel;
  own.runKernel = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap) => {
    const out = runKernel.call(engine, name, inputs, attrs);
    if (!ok) return out;
    const cfg = tf.getKernel(name, backendName);
    const names = Object.keys(inputs);
    const ins = names.map((k) => slotOf.get(inputs[k]!));
    if (!cfg || ins.some((i) => i === undefined) || Object.values(attrs ?? {}).some((v) => v instanceof tf.Tensor)) {
      ok = false;
      return out;
    }
    const outList = Array.isArray(out) ? out : [out];
    // A kernel that hands back a tensor it was given cannot be replayed on bare infos.
    if (outList.some((t) => slotOf.has(t))) {
      ok = false;
      return out;
    }
    const outs = outList.map((t) => {
      slotOf.set(t, slots);
      return slots++;
    });
    calls.push({ kernel: cfg.kernelFunc, names, list: Array.isArray(inputs), ins: ins as number[], attrs: { ...(attrs ?? {}) }, outs, free: [] });
    return out;
  };
  const fail = () => {
    ok = false;
  };
  own.readSync = (dataId: object) => (fail(), engine.constructor.prototype.readSync.call(engine, dataId));
  own.read = (dataId: object) => (fail(), engine.constructor.prototype.read.call(engine, dataId));
  let out: tf.Tensor[];
  try {
    out = direct(xs);
  } finally {
    delete own.runKernel;
    delete own.readSync;
    delete own.read;
  }
  // The op's result: a recorded kernel output (direct() clones an input it would hand back).
  const result = out.length === 1 ? slotOf.get(out[0]!) : undefined;
  if (!ok || result === undefined || result < xs.length || calls.length === 0) return { out, trace: null };
  // Frees: every call output except the result, after its last use (or at once if unused).
  const last = new Map<number, number>();
  calls.forEach((c, i) => {
    for (const o of c.outs) last.set(o, i);
    for (const s of c.ins) if (s >= xs.length) last.set(s, i);
  });
  for (const [s, i] of last) if (s !== result) calls[i]!.free.push(s);
  return { out, trace: { backend, calls, slots, result } };
}

function replay(engine: RecordingEngine, trace: Trace, xs: tf.Tensor[]): tf.Tensor {
  const backend = trace.backend;
  const vals: (tf.TensorInfo | undefined)[] = new Array(trace.slots);
  for (let k = 0; k < xs.length; k++) vals[k] = xs[k];
  try {
    for (const c of trace.calls) {
      let inputs: tf.NamedTensorInfoMap;
      if (c.list) inputs = c.ins.map((s) => vals[s]!) as unknown as tf.NamedTensorInfoMap;
      else {
        inputs = {};
        for (let k = 0; k < c.names.length; k++) inputs[c.names[k]!] = vals[c.ins[k]!]!;
      }
      const out = c.kernel({ inputs, backend, attrs: c.attrs }) as tf.TensorInfo | tf.TensorInfo[];
      if (Array.isArray(out)) for (let k = 0; k < c.outs.length; k++) vals[c.outs[k]!] = out[k];
      else vals[c.outs[0]!] = out;
      for (const f of c.free) {
        release(backend, vals[f]!);
        vals[f] = undefined;
      }
    }
  } catch (e) {
    for (let k = xs.length; k < vals.length; k++) if (vals[k]) release(backend, vals[k]!);
    throw e;
  }
  const y = vals[trace.result]!;
  return y instanceof tf.Tensor ? y : engine.makeTensorFromTensorInfo(y, backend);
}

/** Frees a kernel output: some kernels (the cpu backend's) hand back tracked tensors, not bare infos. */
function release(backend: tf.KernelBackend, v: tf.TensorInfo): void {
  if (v instanceof tf.Tensor) v.dispose();
  else backend.disposeData(v.dataId);
}

/**
 * A lone float32 matmul of matrices (or stacks of them, see productFits) as a one-member fused node (else undefined): where the kernels own
 * their products, it runs as one, reading transposed operands in place and writing into a buffer.
 */
function loneMatmul(n: IRNode, types: ReadonlyMap<string, TensorType>): IRNode | undefined {
  if (n.op === 'fused' || roleOf(n.op) !== 'matmul' || n.inputs.length !== 2 || !n.type) return undefined;
  const [a, b] = n.inputs.map((r) => types.get(r));
  if (a?.dtype !== 'float32' || b?.dtype !== 'float32' || !productFits(a.shape, b.shape)) return undefined;
  const { free: _f, ...member } = n;
  return { ...member, op: 'fused', attrs: {}, body: [member], outputTypes: { [n.id]: n.type } };
}

/** Calls a kernel directly once it is loaded (it is, from the end of buildPlan on, before any run). */
function directRunner(name: string, ownProduct: boolean, wasm?: string): Exec {
  let run: KernelRunner | undefined;
  return (xs, into) => (run ??= kernelRunner(name, ownProduct, wasm))(xs, into);
}

function buildPlan(
  g: IRGraph,
  env: ReadonlyMap<string, number>,
  key: string,
  backend: string,
  shapes: Record<string, string>,
  inputTypes: Plan['inputTypes'],
  opts: ProgramOptions,
): { plan: Plan; newKernels: number } {
  const slots = new Map<string, number>();
  const slot = (r: string): number => {
    let s = slots.get(r);
    if (s === undefined) {
      s = slots.size;
      slots.set(r, s);
    }
    return s;
  };
  const types = new Map<string, TensorType>();
  for (const i of g.inputs) types.set(i.name, i.type);
  for (const p of g.params) types.set(p.name, p.type);
  const inputSlots = g.inputs.map((i) => slot(i.name));
  const paramSlots = g.params.map((p) => slot(p.name));
  const fixed: (tf.Tensor | undefined)[] = [];
  const hoisted = new Set<number>();
  const steps: Step[] = [];
  const kernels: GeneratedKernel[] = [];
  const target = opts.target ?? jsTarget;
  // Generated kernels run on the host where the backend's tensors can be read synchronously;
  // on webgpu, fused nodes run as WGSL shaders instead (op by op where those cannot serve).
  const codegen = opts.codegen !== false && syncReadable(backend);
  const wgsl = opts.codegen !== false && runsWgsl(backend);
  const fused: FusedRun[] = [];
  const wgslKernels: WgslKernel[] = [];
  const hostMax = opts.hostMaxElements ?? HOST_MAX_ELEMENTS;
  const ownProducts = opts.wasmProduct !== false && ownsProducts(backend);
  const wasmKernels = opts.wasmKernels !== false && backend === 'wasm' && wasmKernelsReady();
  /** Slots written by a kernel that can write into a given buffer. */
  const ownable = new Set<number>();
  /** Slots that must be a fresh tensor on every run: read by library kernels, or the right operand of a library product. */
  const pinned = new Set<number>();
  /** Kernels loaded while planning (for a constants-only step); they still count as new for this plan. */
  const loadedEarly = new Set<string>();

  for (const n of g.nodes) {
    if (n.op === 'call' || n.op === 'grad')
      throw new Error(`internal: node ${n.id} (${n.op}) survived compilation; the inline and autodiff passes are required`);
    if (n.op === 'scan') {
      for (const [k, t] of Object.entries(n.outputTypes!)) types.set(`${n.id}.${k}`, t);
      const loop = scanLoop(n, env, n.inputs.map((r) => concreteType(types.get(r)!, env, n)), backend, opts);
      const outs = Object.keys(n.outputTypes!).map((k) => slot(`${n.id}.${k}`));
      steps.push({ node: n, ins: n.inputs.map(slot), outs, free: [], exec: loop.exec, ...(loop.awaits ? { execAsync: loop.execAsync } : {}) });
      continue;
    }
    const outRefs = n.outputTypes ? Object.keys(n.outputTypes).map((k) => `${n.id}.${k}`) : [n.id];
    if (n.outputTypes) for (const [k, t] of Object.entries(n.outputTypes)) types.set(`${n.id}.${k}`, t);
    else types.set(n.id, n.type!);
    const ins = n.inputs.map(slot);
    const outs = outRefs.map(slot);
    let exec: Exec;
    let pure: boolean;
    // Whether the step's outputs may be plan buffers: generated and host kernels write them in place.
    let writesInto = false;
    const lone = codegen && ownProducts ? loneMatmul(n, types) : undefined;
    if (lone || (n.op === 'fused' && codegen)) {
      const kernelNode = lone ?? n;
      pure = kernelNode.body!.every((b) => getOp(b.op)?.pure !== false);
      // Known scalars (constants) are baked into the kernel.
      const constants = new Map<string, number>();
      n.inputs.forEach((r, k) => {
        const s = ins[k]!;
        const t = fixed[s];
        if (hoisted.has(s) && t && t.size === 1) constants.set(r, t.dataSync()[0]!);
      });
      const lowered = lowerFused(kernelNode, env, n.inputs.map((r) => types.get(r)!), constants, { productEpilogue: ownProducts });
      const gk = target.emit(lowered.spec);
      kernels.push(gk);
      // On wasm the kernel runs as the wasm target's function where it renders one (the JS one stays as the registered kernel).
      const wk = wasmKernels && !wasmUnsupported(lowered.spec) ? wasmTarget.emit(lowered.spec) : undefined;
      if (wk) assembleWasmKernel(wk);
      if (!lone) fused.push({ node: n.id, ops: n.body!.map((b) => b.op), as: wk ? 'wasm' : 'js', kernel: wk?.name ?? gk.name });
      const tensorArgs = lowered.bindings.flatMap((b, k) => (b.kind === 'tensor' ? [k] : []));
      const run = directRunner(gk.name, ownProducts, wk?.name);
      exec = (xs, into) => run(tensorArgs.map((k) => xs[k]!), into);
      writesInto = takesBuffers(lowered.spec, ownProducts);
      // The library product may cache its right operand by tensor id (packed weights): it must be a fresh tensor.
      const mm = lowered.spec.matmul;
      if (mm && !ownProducts) pinned.add(ins[tensorArgs[mm.b]!]!);
    } else if (n.op === 'fused') {
      pure = n.body!.every((b) => getOp(b.op)?.pure !== false);
      const shaders = wgsl ? wgslKernel(n, env, ins, n.inputs.map((r) => types.get(r)!), fixed, hoisted, backend) : undefined;
      const run: FusedRun = { node: n.id, ops: n.body!.map((b) => b.op), as: 'ops' };
      if (shaders && 'kernel' in shaders) {
        const { kernel, tensorArgs } = shaders;
        const launch = wgslRunner(kernel);
        exec = (xs) => launch(tensorArgs.map((k) => xs[k]!));
        wgslKernels.push(kernel);
        run.as = 'wgsl';
        run.kernel = kernel.name;
      } else {
        exec = referenceFused(n, env);
        if (shaders) run.why = shaders.why;
      }
      fused.push(run);
      ins.forEach((s) => pinned.add(s));
    } else {
      const def = getOp(n.op);
      if (!def) throw new LoomError({ code: 'E_UNKNOWN_OP', message: `no op ${n.op} (node ${n.id})`, node: n.id });
      pure = def.pure !== false;
      const outType = concreteType(n.type!, env, n);
      const attrs = n.attrs;
      const elements = n.inputs.reduce((acc, r) => acc + size(concreteType(types.get(r)!, env, n).shape), size(outType.shape));
      if (def.host && HOST_ADDRESSABLE.has(backend) && (elements <= hostMax || (def.hostAtAnySize === true && hostMax > 0))) {
        exec = hostOpRunner(def.host, attrs, outType);
        writesInto = true;
      } else {
        // Library kernels may hand back views of their inputs (reshape) or cache them.
        ins.forEach((s) => pinned.add(s));
        const direct = (xs: tf.Tensor[]): tf.Tensor[] => {
          const y = def.kernel(tf, xs, attrs, { outType });
          // A kernel may hand back one of its inputs; the caller must own what it frees.
          return [xs.includes(y) ? tf.clone(y) : y];
        };
        exec = pure ? replayable(direct) : direct;
      }
    }
    if (pure && ins.every((s) => hoisted.has(s))) {
      // Depends on constants only: evaluated once, here, so its generated kernel must be loaded now.
      const pendingKernels = uniqueKernels(kernels).filter((k) => !isLoaded(k.name));
      if (pendingKernels.length) {
        target.check(pendingKernels);
        loadKernels(pendingKernels);
        pendingKernels.forEach((k) => loadedEarly.add(k.name));
      }
      const ys = exec(ins.map((s) => fixed[s]!));
      outs.forEach((s, k) => {
        fixed[s] = tf.keep(ys[k]!);
        hoisted.add(s);
      });
      continue;
    }
    const readsHost = (n.body ?? [n]).some((b) => getOp(b.op)?.readsHost);
    steps.push({ node: n, ins, outs, free: [], exec, ...(readsHost && !syncReadable(backend) ? { awaits: true } : {}) });
    if (writesInto) for (const s of outs) ownable.add(s);
  }

  // Frees from the liveness marks (constants are never freed by a run).
  const byNode = new Map(steps.map((s) => [s.node, s]));
  const pending: number[] = [];
  for (const n of g.nodes) {
    for (const r of n.free ?? []) {
      const s = slots.get(r);
      if (s === undefined || hoisted.has(s)) continue;
      pending.push(s);
    }
    const st = byNode.get(n);
    if (st) {
      st.free.push(...pending);
      pending.length = 0;
    }
  }
  const outputs: [string, number][] = Object.entries(g.outputs).map(([k, r]) => [k, slot(r)]);
  // An output may go into a caller's buffer where its step writes into buffers and nothing else
  // needs it fresh (an input, a constant, a library kernel's operand, another output's value).
  const writerOf = new Map<number, { step: Step; k: number }>();
  for (const st of steps) st.outs.forEach((s, k) => writerOf.set(s, { step: st, k }));
  const outputWriters = outputs.map(([, s], j) =>
    HOST_ADDRESSABLE.has(backend) && ownable.has(s) && !pinned.has(s) && !hoisted.has(s) && !inputSlots.includes(s) && outputs.every(([, o], i) => i === j || o !== s) ? writerOf.get(s) : undefined,
  );
  const buffers: tf.Tensor[] = [];
  const owned = new Set<number>();
  if (opts.reuseBuffers !== false && HOST_ADDRESSABLE.has(backend)) {
    for (const [, s] of outputs) pinned.add(s);
    const refOf = new Map([...slots].map(([r, s]) => [s, r]));
    for (const st of steps)
      st.into = st.outs.map((s) => {
        if (!ownable.has(s) || pinned.has(s)) return undefined;
        const t = concreteType(types.get(refOf.get(s)!)!, env, st.node);
        if (size(t.shape) > hostMax) return undefined;
        const buf = tf.zeros(t.shape, t.dtype);
        buffers.push(buf);
        owned.add(s);
        return buf;
      });
    for (const st of steps) {
      if (st.into?.every((b) => b === undefined)) st.into = undefined;
      st.free = st.free.filter((s) => !owned.has(s));
    }
  }
  const borrowed: boolean[] = [];
  for (let s = 0; s < slots.size; s++) borrowed[s] = hoisted.has(s) || inputSlots.includes(s) || paramSlots.includes(s) || owned.has(s);
  for (let s = 0; s < slots.size; s++) if (!(s in fixed)) fixed[s] = undefined;

  const uniq = uniqueKernels(kernels);
  const newKernels = uniq.filter((k) => !isLoaded(k.name) || loadedEarly.has(k.name)).length;
  target.check(uniq);
  loadKernels(uniq);
  const shaders = uniqueKernels(wgslKernels);
  const plan: Plan = { key, backend, shapes, fixed, buffers, inputSlots, awaits: steps.find((s) => s.awaits)?.node, paramSlots, steps, outputs, borrowed, inputTypes, kernels: [...uniq, ...shaders], fused, outputWriters };
  return { plan, newKernels: newKernels + shaders.filter((k) => !wgslSeen.has(k.name) && wgslSeen.add(k.name)).length };
}

/**
 * A scan as one step of the plan: the body is compiled once (its own passes and plan, cached like
 * any program) and run T times, the carries handed from step to step, each xs sliced and each y
 * stacked in host memory where the backend allows it.
 */
function scanLoop(
  n: IRNode,
  env: ReadonlyMap<string, number>,
  inTypes: readonly { shape: number[] }[],
  backend: string,
  opts: ProgramOptions,
): { exec: Exec; execAsync: (ins: tf.Tensor[]) => Promise<tf.Tensor[]>; awaits: boolean } {
  const body = n.callee!;
  const program = compileProgram(body, { ...opts, backend: undefined, profile: undefined }) as CompiledProgram;
  const { xs, carries, ys, reverse } = scanLayout(n);
  const outNames = Object.keys(n.outputTypes!);
  const outTypes = outNames.map((o) => concreteType(n.outputTypes![o]!, env, n));
  const firstXs = body.inputs.findIndex((bi) => xs.has(bi.name));
  const T = firstXs >= 0 ? inTypes[firstXs]!.shape[0]! : scanLength(n, env);
  const host = HOST_ADDRESSABLE.has(backend);
  const nIn = body.inputs.length;

  /** The inputs of every step, the params, and the xs to slice. */
  const split = (ins: tf.Tensor[]) => {
    const fixed: TensorMap = {};
    const sliced: [string, tf.Tensor][] = [];
    body.inputs.forEach((bi, k) => (xs.has(bi.name) ? sliced.push([bi.name, ins[k]!]) : (fixed[bi.name] = ins[k]!)));
    const params: TensorMap = {};
    body.params.forEach((p, k) => (params[p.name] = ins[nIn + k]!));
    return { fixed, sliced, params };
  };
  const sliceAt = (x: tf.Tensor, t: number): tf.Tensor => {
    if (!host) return tf.gather(x, t);
    const shape = x.shape.slice(1);
    const w = shape.reduce((a, b) => a * b, 1);
    return hostTensor(shape, x.dtype as DType, (out) => out.set(hostValues(x).subarray(t * w, (t + 1) * w)));
  };
  const stack = (parts: tf.Tensor[], k: number): tf.Tensor => {
    const t = outTypes[k]!;
    if (parts.length === 0) return tf.zeros(t.shape, t.dtype);
    if (!host) return tf.stack(parts);
    const w = parts[0]!.size;
    return hostTensor(t.shape, t.dtype, (out) => parts.forEach((p, s) => out.set(hostValues(p), s * w)));
  };
  /**
   * The scan's outputs from the last carries and each step's ys (`y(step, name)`), which are freed;
   * `stacked` holds the ys already stacked as the steps ran.
   */
  const finish = (ins: tf.Tensor[], carry: (name: string) => tf.Tensor, y: (t: number, name: string) => tf.Tensor, stacked?: ReadonlyMap<string, tf.Tensor>): tf.Tensor[] => {
    const parts = (o: string) => Array.from({ length: T }, (_v, t) => y(t, o));
    const result = outNames.map((o, k) => {
      if (!carries.includes(o)) return stacked?.get(o) ?? stack(parts(o), k);
      const c = carry(o);
      // With no steps the carry is still the caller's input, which the plan must not hand out as is.
      return ins.includes(c) ? hostCopy(c) : c;
    });
    for (let t = 0; t < T; t++) for (const name of ys) if (!stacked?.has(name)) y(t, name).dispose();
    return result;
  };
  /** One step: the body on the carries, a slice of each xs and the invariants; the old carries are freed. */
  const step = (fixed: TensorMap, sliced: [string, tf.Tensor][], carry: TensorMap, t: number): TensorMap => {
    const inputs: TensorMap = { ...fixed, ...carry };
    for (const [name, x] of sliced) inputs[name] = sliceAt(x, t);
    return inputs;
  };
  const advance = (ins: tf.Tensor[], inputs: TensorMap, sliced: [string, tf.Tensor][], carry: TensorMap, out: TensorMap): TensorMap => {
    for (const [name] of sliced) inputs[name]!.dispose();
    for (const c of carries) if (!ins.includes(carry[c]!)) carry[c]!.dispose();
    return Object.fromEntries(carries.map((c) => [c, out[c]!]));
  };
  // Synchronous runs drive the body's bound plan with arrays: no input maps, plan lookups or shape
  // checks per step. The plan bound on the first step serves every step: the frontend checks that
  // each carry keeps its type, and every slice of an xs has the same type.
  const carryIndex = new Map(carries.map((c, i) => [c, i]));
  const exec: Exec = (ins, _into, profile) => {
    const { fixed, sliced, params } = split(ins);
    let carry: tf.Tensor[] = carries.map((c) => fixed[c]!);
    const stepsOut: tf.Tensor[][] = new Array(T);
    const inner = profile ? new Map<string, number>() : undefined;
    let bound: BoundRun | undefined;
    /** Per body input in bound order: >= 0 a carry's index, -1 - j the j-th sliced xs, else (null) invariant. */
    let from: (number | null)[] = [];
    let row: tf.Tensor[] = [];
    let carryOut: number[] = [];
    let outAt = new Map<string, number>();
    const slices: tf.Tensor[] = new Array(sliced.length);
    // From the second step on, on host backends, the body writes what it can into the loop's
    // tensors instead of fresh ones: a carry alternates between two (its first step's output and
    // one more), and a y is written into one and copied into its stacked output (made on that
    // step, with the first step's y copied in).
    let into: (tf.Tensor | undefined)[] | undefined;
    /** Per carry: the other tensor of its pair (undefined: a fresh tensor every step). */
    let spare: (tf.Tensor | undefined)[] = [];
    const stacked = new Map<string, tf.Tensor>();
    /** Per y written in place: its output index, its stacked output and row width. */
    let rows: { k: number; all: tf.Tensor; w: number }[] = [];
    const copyRow = (r: { k: number; all: tf.Tensor; w: number }, y: tf.Tensor, t: number) => hostValues(r.all).set(hostValues(y), t * r.w);
    for (let s = 0; s < T; s++) {
      const t = reverse ? T - 1 - s : s;
      const x0 = inner ? performance.now() : 0;
      if (s === 1 && host && bound!.writable.some((w) => w)) {
        const first = stepsOut[reverse ? T - 1 : 0]!;
        into = new Array(outNames.length);
        spare = carryOut.map((k, i) => (bound!.writable[k] ? tf.zeros(carry[i]!.shape, carry[i]!.dtype) : undefined));
        rows = ys.flatMap((name) => {
          const k = outAt.get(name)!;
          if (!bound!.writable[k] || carryOut.includes(k)) return [];
          const y = first[k]!;
          const r = { k, all: tf.zeros([T, ...y.shape], y.dtype), w: y.size };
          stacked.set(name, r.all);
          copyRow(r, y, reverse ? T - 1 : 0);
          into![k] = y;
          return [r];
        });
      }
      if (into) for (let i = 0; i < carryOut.length; i++) if (spare[i]) into[carryOut[i]!] = spare[i];
      for (let j = 0; j < sliced.length; j++) slices[j] = sliceAt(sliced[j]![1], t);
      if (!bound) {
        const inputs: TensorMap = { ...fixed };
        carries.forEach((c, i) => (inputs[c] = carry[i]!));
        sliced.forEach(([name], j) => (inputs[name] = slices[j]!));
        bound = program.bind(inputs, params);
        const slicedAt = new Map(sliced.map(([name], j) => [name, j]));
        from = bound.inputNames.map((name) => carryIndex.get(name) ?? (slicedAt.has(name) ? -1 - slicedAt.get(name)! : null));
        row = bound.inputNames.map((name) => inputs[name]!);
        outAt = new Map(bound.outputNames.map((name, k) => [name, k]));
        carryOut = carries.map((c) => outAt.get(c)!);
      }
      for (let k = 0; k < from.length; k++) {
        const f = from[k]!;
        if (f !== null) row[k] = f >= 0 ? carry[f]! : slices[-1 - f]!;
      }
      if (inner) inner.set('(xs)', (inner.get('(xs)') ?? 0) + performance.now() - x0);
      const out = bound.run(row, inner, into);
      for (const x of slices) x.dispose();
      // The carries of the first step are the scan's inputs, which it does not own; a carry written
      // into its pair's other tensor keeps the one it read as the next step's spare.
      if (s > 0)
        carry.forEach((c, i) => {
          const given = into && spare[i];
          if (!given) return c.dispose();
          // (Were the output a fresh tensor after all, the unused one is freed.)
          if (out[carryOut[i]!] !== given) given.dispose();
          spare[i] = c;
        });
      carry = carryOut.map((k) => out[k]!);
      for (const r of rows) {
        copyRow(r, out[r.k]!, t);
        if (out[r.k] !== into![r.k]) out[r.k]!.dispose();
      }
      stepsOut[t] = out;
    }
    const t0 = performance.now();
    for (const r of rows) into![r.k]!.dispose();
    for (const x of spare) x?.dispose();
    const result = finish(
      ins,
      (name) => carry[carryIndex.get(name)!]!,
      (t, name) => stepsOut[t]![outAt.get(name)!]!,
      stacked,
    );
    if (profile) {
      for (const [k, ms] of inner!) profile.set(`${n.id} > ${k}`, (profile.get(`${n.id} > ${k}`) ?? 0) + ms);
      profile.set(`${n.id} > (ys)`, (profile.get(`${n.id} > (ys)`) ?? 0) + performance.now() - t0);
    }
    return result;
  };
  const execAsync = async (ins: tf.Tensor[]): Promise<tf.Tensor[]> => {
    const { fixed, sliced, params } = split(ins);
    let carry: TensorMap = Object.fromEntries(carries.map((c) => [c, fixed[c]!]));
    const stepsOut: TensorMap[] = new Array(T);
    for (let s = 0; s < T; s++) {
      const t = reverse ? T - 1 - s : s;
      const inputs = step(fixed, sliced, carry, t);
      const out = await program.runAsync(inputs, params);
      carry = advance(ins, inputs, sliced, carry, out);
      stepsOut[t] = out;
    }
    return finish(
      ins,
      (name) => carry[name]!,
      (t, name) => stepsOut[t]![name]!,
    );
  };
  return { exec, execAsync, awaits: !syncReadable(backend) };
}

/** Names of the WGSL kernels any plan of this process has generated (for CompileEvent.newKernels). */
const wgslSeen = new Set<string>();

/**
 * A fused node lowered and rendered as WGSL for the webgpu backend, with the positions of its
 * tensor arguments among the node's inputs; or why it cannot run so. Known scalars are baked in
 * where the host holds their values (no GPU reads at plan time).
 */
function wgslKernel(
  n: IRNode,
  env: ReadonlyMap<string, number>,
  ins: readonly number[],
  inputTypes: readonly TensorType[],
  fixed: readonly (tf.Tensor | undefined)[],
  hoisted: ReadonlySet<number>,
  backend: string,
): { kernel: WgslKernel; tensorArgs: number[] } | { why: string } {
  const constants = new Map<string, number>();
  n.inputs.forEach((r, k) => {
    const t = fixed[ins[k]!];
    const v = hoisted.has(ins[k]!) && t ? hostScalar(t, backend) : undefined;
    if (v !== undefined) constants.set(r, v);
  });
  // The bias add and activation after a product run in the shader, not as library kernels.
  const lowered = lowerFused(n, env, inputTypes, constants);
  const unsupported = wgslUnsupported(lowered.spec);
  if (unsupported) return { why: unsupported };
  const kernel = wgslTarget.emit(lowered.spec);
  const unfit = wgslUnfit(kernel);
  if (unfit) return { why: unfit };
  return { kernel, tensorArgs: lowered.bindings.flatMap((b, k) => (b.kind === 'tensor' ? [k] : [])) };
}

function uniqueKernels(kernels: GeneratedKernel[]): GeneratedKernel[] {
  const seen = new Set<string>();
  return kernels.filter((k) => !seen.has(k.name) && seen.add(k.name));
}

/** Compiles a loaded graph (passes once; plans per input shapes and backend on first run). */
export function compileProgram(graph: IRGraph, opts: ProgramOptions = {}): Program {
  const hash = graphHash(graph, opts);
  let compiled = irCache.get(hash);
  if (!compiled) {
    const t0 = performance.now();
    const copts: CompileOptions = { disabled: opts.disabled };
    const res = compileGraph(graph, copts);
    compiled = { hash, graph: res.graph, stages: res.stages, passMs: performance.now() - t0 };
    irCache.set(hash, compiled);
  }
  return new CompiledProgram(compiled, opts);
}

