/**
 * Host access to a backend's tensor memory: on cpu through the backend's data map, on wasm as
 * views of the module's heap (no copies); other backends fall back to readSync and
 * makeTensorInfo (a copy per tensor). Generated kernels and the ops' host kernels run on it, and
 * the training driver reads and fills its small per-step and per-minibatch tensors through it.
 */
import * as tf from '@tensorflow/tfjs';
import type { Attrs, DType } from '../compiler/ir.ts';
import { sizeOf, type HostArray, type HostTensor } from '../compiler/ops/registry.ts';

export type { HostArray, HostTensor };

/** Backends whose tensor memory the host reads and writes in place. */
export const HOST_ADDRESSABLE: ReadonlySet<string> = new Set(['cpu', 'wasm']);

/** Backends whose tensors cannot be read synchronously in Node (`dataSync` throws on webgpu). */
const ASYNC_READS: ReadonlySet<string> = new Set(['webgpu']);

/** Whether `dataSync` works on this backend's tensors; where not, read them with `await data()`. */
export function syncReadable(backendName: string): boolean {
  return !ASYNC_READS.has(backendName);
}

interface WebGpuBackendLike {
  tensorMap: { get(id: object): { values?: ArrayLike<number> | null } | undefined };
}

/**
 * The value of a one-element tensor if the host can read it now: always where `syncReadable`;
 * on webgpu only while tfjs still holds its values on the host (a constant made there, or
 * computed by one of tfjs's small-tensor CPU kernels), since a GPU read would have to be awaited.
 */
export function hostScalar(t: tf.Tensor, backendName: string): number | undefined {
  if (t.size !== 1) return undefined;
  if (syncReadable(backendName)) return t.dataSync()[0];
  const values = (tf.engine().backend as unknown as Partial<WebGpuBackendLike>).tensorMap?.get(t.dataId)?.values;
  return values ? values[0] : undefined;
}

/** Host access to a backend's tensor memory. */
export interface HostIO {
  alloc(shape: number[], dtype: DType): tf.TensorInfo;
  /** A writable view (cpu, wasm) or a copy (other backends) of a tensor's data. */
  array(t: tf.TensorInfo): HostArray;
  /** Publishes data written to a copy back to the tensor (no-op where views are used). */
  commit(t: tf.TensorInfo, a: HostArray): tf.TensorInfo;
  dispose(t: tf.TensorInfo): void;
}

interface CpuBackendLike {
  data: { get(id: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: DType, values?: unknown): tf.TensorInfo;
  disposeData(id: object): void;
}
interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: DType): tf.TensorInfo;
  disposeData(id: object): void;
}
interface GenericBackendLike {
  readSync(id: object): unknown;
  makeTensorInfo(shape: number[], dtype: DType, values?: unknown): tf.TensorInfo;
  disposeData(id: object): void;
}

function newArray(dtype: DType, n: number): HostArray {
  return dtype === 'float32' ? new Float32Array(n) : dtype === 'int32' ? new Int32Array(n) : new Uint8Array(n);
}

/** Views of wasm tensors by the backend's data record, with the heap they view. */
const views = new WeakMap<object, { buffer: ArrayBufferLike; dtype: string; view: HostArray }>();

export function hostIO(backendName: string, backend: tf.KernelBackend): HostIO {
  if (backendName === 'wasm') {
    const b = backend as unknown as WasmBackendLike;
    return {
      alloc: (shape, dtype) => b.makeOutput(shape, dtype),
      array: (t) => {
        // A tensor's memory stays put until it is freed, so its view serves until the heap grows
        // (which detaches every view): the loops of a training step reuse the same buffers. Views
        // are kept by the backend's record of the data, which it replaces when data moves.
        const record = b.dataIdMap.get(t.dataId);
        const heap = b.wasm.HEAPU8.buffer;
        const size = sizeOf(t.shape);
        const known = views.get(record);
        // (The dtype is checked too: an info given for an in-place output names its own.)
        if (known !== undefined && known.buffer === heap && known.dtype === t.dtype && known.view.length === size) return known.view;
        const view = t.dtype === 'float32' ? new Float32Array(heap, record.memoryOffset, size) : t.dtype === 'int32' ? new Int32Array(heap, record.memoryOffset, size) : new Uint8Array(heap, record.memoryOffset, size);
        views.set(record, { buffer: heap, dtype: t.dtype, view });
        return view;
      },
      commit: (t) => t,
      dispose: (t) => b.disposeData(t.dataId),
    };
  }
  if (backendName === 'cpu') {
    const b = backend as unknown as CpuBackendLike;
    return {
      alloc: (shape, dtype) => b.makeTensorInfo(shape, dtype, newArray(dtype, sizeOf(shape))),
      array: (t) => b.data.get(t.dataId).values as HostArray,
      commit: (t) => t,
      dispose: (t) => b.disposeData(t.dataId),
    };
  }
  const b = backend as unknown as GenericBackendLike;
  return {
    alloc: (shape, dtype) => ({ dataId: {}, shape, dtype }) as unknown as tf.TensorInfo,
    array: (t) => {
      const v = b.readSync(t.dataId) as ArrayLike<number>;
      const a = newArray(t.dtype as DType, sizeOf(t.shape));
      a.set(v);
      return a;
    },
    commit: (t, a) => b.makeTensorInfo(t.shape, t.dtype as DType, a),
    dispose: (t) => b.disposeData(t.dataId),
  };
}

/** The parts of tfjs's engine that host access uses. */
export interface EngineLike {
  backend: tf.KernelBackend;
  backendName: string;
  makeTensorFromTensorInfo(t: tf.TensorInfo, backend?: tf.KernelBackend): tf.Tensor;
}

type HostKernel = (ins: readonly HostTensor[], out: HostTensor, attrs: Attrs) => void;

/**
 * A caller of an op's host kernel on the active backend's tensors (cpu or wasm): allocates the
 * output (or overwrites `into`, a tensor of the output's type), hands the kernel views of the
 * inputs and output, and returns the output as a tracked tensor. No engine dispatch, so a small
 * op costs about one loop over its elements.
 */
export function hostOpRunner(host: HostKernel, attrs: Attrs, out: { dtype: DType; shape: number[] }): (inputs: readonly tf.Tensor[], into?: readonly (tf.Tensor | undefined)[]) => tf.Tensor[] {
  // Input views are taken after the output's allocation: growing the wasm heap detaches older views.
  const run = (data: HostArray, inputs: readonly tf.Tensor[]): void => {
    const ins: HostTensor[] = new Array(inputs.length);
    for (let k = 0; k < inputs.length; k++) {
      const x = inputs[k]!;
      ins[k] = { data: hostValues(x), shape: x.shape, dtype: x.dtype as DType };
    }
    host(ins, { data, shape: out.shape, dtype: out.dtype }, attrs);
  };
  return (inputs, into) => {
    const given = into?.[0];
    if (given) {
      run(hostValues(given), inputs);
      return [given];
    }
    return [hostTensor(out.shape, out.dtype, (data) => run(data, inputs))];
  };
}

let readIO: { backend: tf.KernelBackend; io: HostIO | null } | undefined;

/** The active backend's host access where its memory is host-addressable (cpu, wasm), else null. */
function activeIO(): HostIO | null {
  const engine = tf.engine() as unknown as EngineLike;
  if (readIO?.backend !== engine.backend) readIO = { backend: engine.backend, io: HOST_ADDRESSABLE.has(engine.backendName) ? hostIO(engine.backendName, engine.backend) : null };
  return readIO.io;
}

/**
 * A tensor's values on the host: a view of the backend's memory on cpu and wasm (no copy; read
 * it before anything else is allocated, which may move wasm memory), a copy elsewhere.
 */
export function hostValues(t: tf.Tensor): HostArray {
  const io = activeIO();
  return io ? io.array(t) : (t.dataSync() as HostArray);
}

/**
 * A small input tensor that a loop feeds a program on every step (a PRNG key): its values are
 * rewritten in place where the backend's memory is host-addressable, instead of a new tensor per
 * step. The programs it feeds must not keep it past a call, nor output it unchanged: on cpu such
 * an output may share its memory (the training driver checks its graphs for that).
 */
export class StagedInput {
  private tensor: tf.Tensor | undefined;
  constructor(
    private readonly shape: number[],
    private readonly dtype: DType,
  ) {}

  /** The tensor holding `values` (owned by this object: do not dispose it). */
  set(values: HostArray): tf.Tensor {
    const io = activeIO();
    if (io && this.tensor && !this.tensor.isDisposed) {
      io.array(this.tensor).set(values);
      return this.tensor;
    }
    this.tensor?.dispose();
    this.tensor = tf.tensor(values, this.shape, this.dtype);
    return this.tensor;
  }

  dispose(): void {
    this.tensor?.dispose();
    this.tensor = undefined;
  }
}

/** A copy of a tensor with memory of its own (tf.clone shares the memory on cpu). */
export function hostCopy(t: tf.Tensor): tf.Tensor {
  // Where memory is not host-addressable nothing writes into a tensor in place, so a clone is a copy
  // (and it needs no synchronous read, which webgpu lacks).
  if (!activeIO()) return tf.clone(t);
  // The source view is taken inside fill, after the copy's allocation (which may move wasm memory).
  return hostTensor([...t.shape], t.dtype as DType, (out) => out.set(hostValues(t)));
}

/**
 * A new tensor of `shape` whose values `fill` writes into a host array: directly into the
 * backend's memory on cpu and wasm, else through a copy. `fill` must not allocate tensors.
 */
export function hostTensor(shape: number[], dtype: DType, fill: (out: HostArray) => void): tf.Tensor {
  const io = activeIO();
  if (!io) {
    const a = newArray(dtype, sizeOf(shape));
    fill(a);
    return tf.tensor(a, shape, dtype);
  }
  const engine = tf.engine() as unknown as EngineLike;
  const y = io.alloc(shape, dtype);
  fill(io.array(y));
  return engine.makeTensorFromTensorInfo(y, engine.backend);
}

/** One flat float32 vector of the tensors' values, in order. */
export function hostConcat(ts: readonly tf.Tensor[]): tf.Tensor {
  const n = ts.reduce((acc, t) => acc + t.size, 0);
  return hostTensor([n], 'float32', (out) => {
    let off = 0;
    // Each view is taken after the output's allocation and copied out at once.
    for (const t of ts) {
      out.set(hostValues(t), off);
      off += t.size;
    }
  });
}

/** Consecutive pieces of a flat vector, as new tensors of the given shapes (the vector is kept). */
export function hostSplit(flat: tf.Tensor, shapes: readonly number[][]): tf.Tensor[] {
  let off = 0;
  return shapes.map((shape) => {
    const n = sizeOf(shape);
    const at = off;
    off += n;
    return hostTensor(shape, flat.dtype as DType, (out) => out.set(hostValues(flat).subarray(at, at + n)));
  });
}
