/**
 * The seam where the runtime loads generated code. Kernels from a codegen target are
 * transpiled to JavaScript, instantiated, and registered as tfjs kernels (one kernel name per
 * distinct kernel, for the cpu and wasm backends), so fused kernels and library ops share one
 * tensor world: inputs and outputs are ordinary tfjs tensors, the engine tracks them, and
 * tf.memory() counts them.
 *
 * Inside a kernel the host arrays are reached without copies: on cpu through the backend's
 * data map, on wasm as views of the module's heap. Other backends fall back to readSync and
 * makeTensorInfo (a copy per input).
 */
import * as tf from '@tensorflow/tfjs';
import { ts } from 'ts-morph';
import type { GeneratedKernel } from '../compiler/codegen/target.ts';

// The one seam between runtime and compiler pipeline: the executor reaches the passes and the
// code generator only through these re-exports.
export { compileGraph, type CompileOptions, type StageReport } from '../compiler/compile.ts';
export { jsTarget } from '../compiler/codegen/js.ts';
export { wgslTarget, wgslUnsupported, type WgslKernel } from '../compiler/codegen/wgsl.ts';
export { wasmTarget, wasmUnsupported, type WasmKernel } from '../compiler/codegen/wasm.ts';
export { lowerFused } from '../compiler/codegen/spec.ts';
export { roleOf } from '../compiler/codegen/semantics.ts';
export { hashText, type CodegenTarget, type GeneratedKernel } from '../compiler/codegen/target.ts';
export { stableStringify } from '../compiler/ir.ts';
// The program driver batches an iteration graph over seeds (the required passes, then vmap).
export { vmapGraph } from '../compiler/compile.ts';
import type { KernelSpec } from '../compiler/codegen/spec.ts';
import type { DType } from '../compiler/ir.ts';
import { hostIO, type EngineLike, type HostArray, type HostIO } from './host-memory.ts';
import { productFits, wasmGemm, type Gemm, type GemmEpilogue } from './wasm-gemm.ts';
import { heapOffset, wasmKernelFn, wasmKernelStats, type WasmKernelFn } from './wasm-kernels.ts';

type KernelFn = (...arrays: HostArray[]) => void;

/** Backends every generated kernel is registered for (plus the active one, if different). */
const HOST_BACKENDS = ['cpu', 'wasm'];

interface Loaded {
  kernel: GeneratedKernel;
  fn: KernelFn;
  registered: Set<string>;
}
const loaded = new Map<string, Loaded>();

/** Statistics, for tests and benchmarks. */
export const jitStats = { transpiled: 0, registered: 0, transpileMs: 0 };

/** Runs a kernel; `into[k]`, where given, is a buffer of output k's type that the kernel overwrites. */
type HostRun = (ins: readonly tf.TensorInfo[], backend: tf.KernelBackend, into?: readonly (tf.TensorInfo | undefined)[]) => tf.TensorInfo[];

/**
 * Whether the products of generated kernels on this backend run as the own wasm product
 * (`wasmGemm`): it reads operands where they lie, so a right operand may be a buffer rewritten in
 * place, and it writes into a given output buffer. Elsewhere they run as the library's BatchMatMul.
 */
export function ownsProducts(backendName: string): boolean {
  const backend = backendName === 'wasm' ? tf.findBackend('wasm') : null;
  return backend !== null && wasmGemm(backend) !== undefined;
}

/** The bias and activation a kernel's product applies, if any. */
function epilogue(m: NonNullable<KernelSpec['matmul']>, ins: readonly tf.TensorInfo[]): GemmEpilogue | undefined {
  if (m.bias === undefined && !m.activation) return undefined;
  return { bias: m.bias === undefined ? undefined : ins[m.bias], biasPerMatrix: m.biasPerMatrix, activation: m.activation };
}

/**
 * Calls `fn` with the elements of an array as arguments, through a caller made for its arity: one
 * spread call site shared by every kernel would be megamorphic, and spreading is slow.
 */
function invoker<A>(arity: number): (fn: (...args: A[]) => void, args: A[]) => void {
  const list = Array.from({ length: arity }, (_v, k) => `a[${k}]`).join(', ');
  return new Function('f', 'a', `f(${list});`) as (fn: (...args: A[]) => void, args: A[]) => void;
}

/**
 * Runs a kernel's host function on a backend's tensors: allocates outputs, runs the matmul
 * prologue (with the own wasm product where `ownProduct` and the module is prepared). On wasm,
 * `wasm` names the kernel's assembled WebAssembly function (runtime/wasm-kernels.ts), which then
 * runs instead of `fn`, on the tensors' heap offsets.
 */
function hostRun(backendName: string, spec: KernelSpec, fn: KernelFn, ownProduct: boolean, wasm?: string): HostRun {
  const nIn = spec.inputs.length;
  const nOut = spec.outputs.length;
  const mmAt = spec.matmul ? nIn : -1;
  // Argument list: inputs, the matmul result (if any), outputs; reused by every call.
  const args: HostArray[] = new Array(nIn + (spec.matmul ? 1 : 0) + nOut);
  const call = invoker<HostArray>(args.length);
  const callWasm = invoker<number>(args.length);
  let mmKernel: tf.KernelConfig | undefined;
  let cached: { backend: tf.KernelBackend; io: HostIO; gemm: Gemm | undefined; wasm: WasmKernelFn | undefined } | undefined;
  const offsets: number[] = new Array(args.length);
  return (ins, backend, into) => {
    if (cached?.backend !== backend) cached = { backend, io: hostIO(backendName, backend), gemm: undefined, wasm: wasm && backendName === 'wasm' ? wasmKernelFn(wasm, backend) : undefined };
    const io = cached.io;
    let mm: tf.TensorInfo | undefined;
    if (spec.matmul) {
      const m = spec.matmul;
      const a = ins[m.a]!;
      const b = ins[m.b]!;
      const mmInto = spec.inPlace === undefined ? undefined : into?.[spec.inPlace];
      // Looked up until found: the module may be prepared after this kernel first ran.
      const gemm = ownProduct && backendName === 'wasm' ? (cached.gemm ??= wasmGemm(backend)) : undefined;
      if (gemm && productFits(a.shape, b.shape)) {
        mm = mmInto ?? io.alloc(m.shape, 'float32');
        gemm(a, b, m.transposeA, m.transposeB, mm, epilogue(m, ins));
      } else {
        if (m.bias !== undefined || m.activation) throw new Error(`internal: kernel ${spec.label} needs the own product (bias, activation) on ${backendName}`);
        if (mmInto) throw new Error(`internal: kernel ${spec.label} cannot write its matmul into a given buffer on ${backendName}`);
        mmKernel ??= tf.getKernel('BatchMatMul', backendName);
        if (!mmKernel) throw new Error(`the ${backendName} backend has no BatchMatMul kernel`);
        mm = mmKernel.kernelFunc({ inputs: { a, b }, backend, attrs: { transposeA: m.transposeA, transposeB: m.transposeB } }) as tf.TensorInfo;
      }
    }
    const outs: tf.TensorInfo[] = new Array(nOut);
    for (let k = 0; k < nOut; k++) {
      const o = spec.outputs[k]!;
      outs[k] = k === spec.inPlace ? { dataId: mm!.dataId, shape: o.shape, dtype: o.dtype } : (into?.[k] ?? io.alloc(o.shape, o.dtype));
    }
    if (cached.wasm) {
      // Offsets in the backend's memory, read after every allocation; nothing to commit on wasm.
      for (let k = 0; k < nIn; k++) offsets[k] = heapOffset(backend, ins[k]!);
      if (mm) offsets[mmAt] = heapOffset(backend, mm);
      const outAt = nIn + (mm ? 1 : 0);
      for (let k = 0; k < nOut; k++) offsets[outAt + k] = heapOffset(backend, outs[k]!);
      callWasm(cached.wasm, offsets);
      wasmKernelStats.calls++;
      if (mm && spec.inPlace === undefined) io.dispose(mm);
      return outs;
    }
    // Views are taken only after every allocation: growing the wasm heap detaches older views.
    for (let k = 0; k < nIn; k++) args[k] = io.array(ins[k]!);
    if (mm) args[mmAt] = io.array(mm);
    const outAt = nIn + (mm ? 1 : 0);
    for (let k = 0; k < nOut; k++) args[outAt + k] = k === spec.inPlace ? args[mmAt]! : io.array(outs[k]!);
    call(fn, args);
    if (mm && spec.inPlace === undefined) io.dispose(mm);
    for (let k = 0; k < nOut; k++) outs[k] = io.commit(outs[k]!, args[outAt + k]!);
    // Drop the views: a kept view would pin a detached wasm memory buffer after the heap grows.
    args.fill(undefined as unknown as HostArray);
    return outs;
  };
}

function kernelFunc(backendName: string, spec: KernelSpec, fn: KernelFn): tf.KernelFunc {
  const inputNames = Array.from({ length: spec.inputs.length }, (_v, k) => `x${k}`);
  const run = hostRun(backendName, spec, fn, true);
  return ({ inputs, backend }) => run(inputNames.map((n) => inputs[n] as tf.TensorInfo), backend as tf.KernelBackend);
}

function register(l: Loaded, backendName: string): void {
  if (l.registered.has(backendName)) return;
  if (!tf.getKernel(l.kernel.name, backendName))
    tf.registerKernel({ kernelName: l.kernel.name, backendName, kernelFunc: kernelFunc(backendName, l.kernel.spec, l.fn) });
  l.registered.add(backendName);
  jitStats.registered++;
}

/** Transpiles, instantiates and registers kernels not loaded before (for cpu, wasm and the active backend). */
export function loadKernels(kernels: readonly GeneratedKernel[]): void {
  const fresh = [...new Map(kernels.filter((k) => !loaded.has(k.name)).map((k) => [k.name, k])).values()];
  if (fresh.length) {
    const t0 = performance.now();
    const support = [...new Set(fresh.flatMap((k) => k.support))];
    const src = [...support, ...fresh.map((k) => k.source)].join('\n\n');
    const js = ts.transpileModule(src, { compilerOptions: { target: ts.ScriptTarget.ES2020, module: ts.ModuleKind.None, removeComments: true } }).outputText;
    const names = fresh.map((k) => k.name);
    // The generated source only declares functions over its arguments (checked against a
    // prelude that offers nothing but Math and typed arrays).
    const fns = new Function(`"use strict";\n${js}\nreturn [${names.join(', ')}];`)() as KernelFn[];
    fresh.forEach((k, i) => loaded.set(k.name, { kernel: k, fn: fns[i]!, registered: new Set() }));
    jitStats.transpiled += fresh.length;
    jitStats.transpileMs += performance.now() - t0;
  }
  const backends = new Set([...HOST_BACKENDS, tf.getBackend()]);
  for (const k of kernels) for (const b of backends) register(loaded.get(k.name)!, b);
}

/**
 * A caller of a loaded kernel that skips the engine's kernel dispatch (registry lookups, scopes,
 * tape and profiler checks): the host function runs on the active backend's tensors and its
 * outputs become ordinary tracked tensors. The compiled executor calls thousands of small
 * kernels per training iteration, where that dispatch costs as much as the kernels. `wasm` names
 * the kernel's WebAssembly function, which runs instead on the wasm backend once assembled.
 */
export function kernelRunner(name: string, ownProduct = true, wasm?: string): KernelRunner {
  const l = loaded.get(name);
  if (!l) throw new Error(`kernel ${name} is not loaded`);
  const engine = tf.engine() as unknown as EngineLike;
  let forBackend: tf.KernelBackend | undefined;
  let run: HostRun | undefined;
  return (inputs, into) => {
    const backend = engine.backend;
    if (backend !== forBackend) {
      run = hostRun(engine.backendName, l.kernel.spec, l.fn, ownProduct, wasm);
      forBackend = backend;
    }
    const outs = run!(inputs, backend, into);
    const res: tf.Tensor[] = new Array(outs.length);
    for (let k = 0; k < outs.length; k++) res[k] = into?.[k] ?? engine.makeTensorFromTensorInfo(outs[k]!, backend);
    return res;
  };
}

/**
 * Runs a kernel on tensors of the active backend. `into[k]`, where given, is a tensor of output
 * k's type that the kernel overwrites and hands back (an output written into the matmul result
 * takes one only where the matmul can write into a given buffer: see `ownsProducts`).
 */
export type KernelRunner = (inputs: readonly tf.Tensor[], into?: readonly (tf.Tensor | undefined)[]) => tf.Tensor[];

/**
 * Whether a kernel's outputs may all be given buffers, given whether it runs with the own product
 * (see KernelRunner). A kernel's product always has operands the own product takes (productFits:
 * the fusion pass and the executor's lone products admit no others), stacked or not.
 */
export function takesBuffers(spec: KernelSpec, ownProduct: boolean): boolean {
  if (spec.inPlace === undefined || !spec.matmul) return true;
  return ownProduct;
}

/** Runs a loaded kernel on the active backend; returns one tensor per spec output. */
export function runKernel(name: string, inputs: readonly tf.Tensor[]): tf.Tensor[] {
  const named: tf.NamedTensorMap = {};
  for (let k = 0; k < inputs.length; k++) named[`x${k}`] = inputs[k]!;
  const out = tf.engine().runKernel(name, named, {}) as tf.Tensor | tf.Tensor[];
  return Array.isArray(out) ? out : [out];
}

export function isLoaded(name: string): boolean {
  return loaded.has(name);
}

/** Calls a loaded kernel's function on plain arrays (tests use it to check generated code alone). */
export function kernelFunction(name: string): KernelFn {
  const l = loaded.get(name);
  if (!l) throw new Error(`kernel ${name} is not loaded`);
  return l.fn;
}
