/**
 * Runs a fused kernel rendered by the WGSL target (compiler/codegen/wgsl.ts) on tfjs's webgpu
 * backend: one `runWebGPUProgram` per output shader, with the shader's hash as `shaderKey`, so
 * tfjs compiles each distinct shader once and caches its pipeline. tfjs declares the buffers
 * (`result`, then the program's `variableNames`, which are the shader's `x0`, `x1`, ...) and the
 * entry point that calls `main(index)`; the program supplies the shader's body and `main`.
 *
 * A kernel with a product (matmul) computes it first with the library's matMul (and, when the
 * spec says so, the bias add and activation), as the JS target's host glue does.
 */
import * as tf from '@tensorflow/tfjs';
import type { WgslKernel, WgslShader } from '../compiler/codegen/wgsl.ts';

/** What tfjs-backend-webgpu needs of a program (its `WebGPUProgram` interface, the parts used here). */
interface WgslProgram {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  /** Declares `uniforms.size` (the output's element count). */
  size: boolean;
  getUserCode(): string;
}

/** The part of tfjs-backend-webgpu's backend this module calls. */
interface WebGpuBackendLike {
  runWebGPUProgram(program: WgslProgram, inputs: tf.TensorInfo[], outputDtype: tf.DataType): tf.TensorInfo;
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
}

function isWebGpuBackend(b: unknown): b is WebGpuBackendLike {
  return typeof (b as Partial<WebGpuBackendLike> | undefined)?.runWebGPUProgram === 'function';
}

/** The tfjs program of one shader; `shape` is its output's shape. */
export function wgslProgram(shader: WgslShader, shape: readonly number[]): WgslProgram {
  const userCode = `${shader.body}\n\nfn main(index: i32) {\n  if (index < uniforms.size) { result[index] = loom_value(index); }\n}\n`;
  return {
    variableNames: shader.reads.map((r) => r.name),
    outputShape: [...shape],
    shaderKey: `loom_${shader.hash}`,
    dispatchLayout: { x: shape.map((_d, i) => i) },
    dispatch: shader.dispatch,
    workgroupSize: shader.workgroupSize,
    // tfjs binds its uniforms whatever the shader reads, and an unread binding fails validation: read the size there.
    size: true,
    getUserCode: () => userCode,
  };
}

/** Backends whose fused nodes run as WGSL kernels (through this module). */
const WGSL_BACKENDS: ReadonlySet<string> = new Set(['webgpu']);

export function runsWgsl(backendName: string): boolean {
  return WGSL_BACKENDS.has(backendName);
}

/** Statistics, for tests and benchmarks: WGSL shaders dispatched by this module. */
export const wgslStats = { launches: 0 };

function webgpuBackend(what: string): WebGpuBackendLike {
  const backend = tf.backend();
  if (!isWebGpuBackend(backend)) throw new Error(`${what} runs on the webgpu backend; the active backend is ${tf.getBackend()}`);
  return backend;
}

/**
 * Why `kernel` cannot run on the active webgpu backend's device, or undefined: the output and
 * every buffer a shader reads are storage bindings, and the device allows so many per stage
 * (WebGPU's default is 8; runtime/backend.ts asks for the adapter's own limit).
 */
export function wgslUnfit(kernel: WgslKernel): string | undefined {
  const limit = webgpuBackend(`kernel ${kernel.name}`).device.limits.maxStorageBuffersPerShaderStage;
  const worst = Math.max(...kernel.shaders.map((s) => 1 + s.reads.length));
  if (worst > limit) return `its shaders bind up to ${worst} storage buffers, the device allows ${limit} (maxStorageBuffersPerShaderStage)`;
  return undefined;
}

/**
 * A runner of `kernel` on the webgpu backend, its programs built once (tfjs compiles each
 * distinct shader into a pipeline on its first dispatch and keeps it by `shaderKey`). `inputs` are
 * the spec's tensor inputs, in order; it returns one tensor per output, which the caller owns.
 * Nothing is read on the host.
 */
export function wgslRunner(kernel: WgslKernel): (inputs: readonly tf.Tensor[]) => tf.Tensor[] {
  const spec = kernel.spec;
  const mm = spec.matmul;
  const programs = kernel.shaders.map((shader) => {
    const out = spec.outputs[shader.output]!;
    const reads = shader.reads.map((r) => ('matmul' in r.buffer ? -1 : r.buffer.input));
    return { program: wgslProgram(shader, out.shape), reads, dtype: out.dtype };
  });
  return (inputs) => {
    const backend = webgpuBackend(`kernel ${kernel.name}`);
    if (inputs.length !== spec.inputs.length) throw new Error(`kernel ${kernel.name} takes ${spec.inputs.length} inputs, got ${inputs.length}`);
    const product = mm
      ? tf.tidy(() => {
          let p = tf.matMul(inputs[mm.a]!, inputs[mm.b]!, mm.transposeA, mm.transposeB);
          if (mm.bias !== undefined) p = tf.add(p, tf.reshape(inputs[mm.bias]!, mm.biasPerMatrix ? [...mm.shape.slice(0, -2), 1, -1] : [-1]));
          if (mm.activation === 'tanh') p = tf.tanh(p);
          return p;
        })
      : undefined;
    try {
      return programs.map(({ program, reads, dtype }) => {
        const args = reads.map((k) => (k < 0 ? product! : inputs[k]!));
        // tfjs extends the program's shaderKey with the operands' ranks and dtypes: a fresh copy per dispatch.
        const info = backend.runWebGPUProgram({ ...program }, args, dtype);
        wgslStats.launches++;
        return tf.engine().makeTensorFromTensorInfo(info);
      });
    } finally {
      product?.dispose();
    }
  };
}

/**
 * Runs `kernel` once on the active tfjs backend, which must be 'webgpu'; `inputs` are the spec's
 * tensor inputs, in order. Returns one tensor per output, which the caller owns (read them with
 * `await data()`).
 */
export function runWgslKernel(kernel: WgslKernel, inputs: readonly tf.Tensor[]): tf.Tensor[] {
  const unfit = wgslUnfit(kernel);
  if (unfit) throw new Error(`kernel ${kernel.name} (${kernel.spec.label}): ${unfit}; request the adapter's limit when creating the device`);
  return wgslRunner(kernel)(inputs);
}
