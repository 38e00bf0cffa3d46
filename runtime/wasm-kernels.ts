/**
 * Generated kernels as WebAssembly on the wasm backend: the wasm target's functions
 * (compiler/codegen/wasm.ts) assembled by wabt, one module per kernel, and instantiated with the
 * backend's own memory, so they read and write tensors where they lie (arguments are byte
 * offsets; nothing is allocated). As for the own product (wasm-gemm.ts), wabt is loaded once per
 * process (`prepareWasmKernels`, which `initBackend` awaits when it selects wasm); each kernel is
 * then assembled synchronously the first time a plan asks for it, and cached by name.
 */
import type * as tf from '@tensorflow/tfjs';
import { wasmModuleText, type WasmKernel } from '../compiler/codegen/wasm.ts';

type Wabt = Awaited<ReturnType<typeof import('wabt')>>;
let wabt: Wabt | undefined;
let preparing: Promise<string | undefined> | undefined;

/** Statistics, for tests and benchmarks: modules assembled, and calls of a wasm kernel. */
export const wasmKernelStats = { assembled: 0, assembleMs: 0, calls: 0 };

/** Loads the assembler once per process; resolves to why wasm kernels are unavailable, or undefined. */
export function prepareWasmKernels(): Promise<string | undefined> {
  preparing ??= (async () => {
    try {
      const { default: loadWabt } = await import('wabt');
      wabt = await loadWabt();
      return undefined;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  })();
  return preparing;
}

/** Whether `prepareWasmKernels` has made kernels assemblable. */
export function wasmKernelsReady(): boolean {
  return wabt !== undefined;
}

const modules = new Map<string, WebAssembly.Module>();

/** Assembles a kernel's module (once per name); throws with wabt's message on an invalid one. */
export function assembleWasmKernel(kernel: WasmKernel): void {
  if (modules.has(kernel.name)) return;
  if (!wabt) throw new Error('internal: wasm kernels are assembled before prepareWasmKernels resolved');
  const t0 = performance.now();
  const parsed = wabt.parseWat(`${kernel.name}.wat`, wasmModuleText([kernel]), { simd: true });
  try {
    parsed.validate();
    // With its names, so profiles show the kernel by name (bench/cpu-profile.ts).
    modules.set(kernel.name, new WebAssembly.Module(parsed.toBinary({ write_debug_names: true }).buffer as Uint8Array<ArrayBuffer>));
  } finally {
    parsed.destroy();
  }
  wasmKernelStats.assembled++;
  wasmKernelStats.assembleMs += performance.now() - t0;
}

/** A kernel's function: byte offsets of its tensors, in the kernel's `params` order. */
export type WasmKernelFn = (...offsets: number[]) => void;

interface WasmBackendLike {
  wasm?: { asm?: { memory?: unknown } };
  dataIdMap?: { get(dataId: object): { memoryOffset: number } | undefined };
}

/** The backend's memory, where a backend is the wasm backend. */
function memoryOf(backend: tf.KernelBackend): WebAssembly.Memory | undefined {
  const memory = (backend as unknown as WasmBackendLike).wasm?.asm?.memory;
  return memory instanceof WebAssembly.Memory ? memory : undefined;
}

const instances = new WeakMap<WebAssembly.Memory, Map<string, WasmKernelFn>>();

/** A kernel's function over this backend's memory, or undefined where it is not assembled or the memory is out of reach. */
export function wasmKernelFn(name: string, backend: tf.KernelBackend): WasmKernelFn | undefined {
  const memory = memoryOf(backend);
  return memory && wasmKernelOn(name, memory);
}

/** An assembled kernel's function over `memory` (instantiated once per memory), or undefined where it is not assembled. */
export function wasmKernelOn(name: string, memory: WebAssembly.Memory): WasmKernelFn | undefined {
  const module = modules.get(name);
  if (!module) return undefined;
  let fns = instances.get(memory);
  if (!fns) instances.set(memory, (fns = new Map()));
  let fn = fns.get(name);
  if (!fn) {
    fn = new WebAssembly.Instance(module, { env: { memory } }).exports[name] as WasmKernelFn;
    fns.set(name, fn);
  }
  return fn;
}

/** The byte offset of a tensor's data in the wasm backend's memory. */
export function heapOffset(backend: tf.KernelBackend, t: tf.TensorInfo): number {
  const d = (backend as unknown as WasmBackendLike).dataIdMap?.get(t.dataId);
  if (!d) throw new Error('internal: a wasm kernel was given a tensor the wasm backend does not hold');
  return d.memoryOffset;
}
