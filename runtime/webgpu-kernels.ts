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
  return {
    variableNames: shader.reads.map((r) => r.name),
    outputShape: [...shape],
    shaderKey: `loom_${shader.hash}`,
    dispatchLayout: { x: shape.map((_d, i) => i) },
    dispatch: shader.dispatch,
    workgroupSize: shader.workgroupSize,
    // tfjs binds its uniforms whatever the shader reads, and an unread binding fails validation: read the size there.
    size: true,
    getUserCode: () => `${shader.body}\n\nfn main(index: i32) {\n  if (index < uniforms.size) { result[index] = loom_value(index); }\n}\n`,
  };
}

/**
 * Runs `kernel` on the active tfjs backend, which must be 'webgpu'; `inputs` are the spec's
 * tensor inputs, in order. Returns one tensor per output, which the caller owns (read them with
 * `await data()`).
 */
export function runWgslKernel(kernel: WgslKernel, inputs: readonly tf.Tensor[]): tf.Tensor[] {
  const backend = tf.backend();
  if (!isWebGpuBackend(backend)) throw new Error(`WGSL kernels run on the webgpu backend; the active backend is ${tf.getBackend()}`);
  const spec = kernel.spec;
  if (inputs.length !== spec.inputs.length) throw new Error(`kernel ${kernel.name} takes ${spec.inputs.length} inputs, got ${inputs.length}`);
  const mm = spec.matmul;
  const product = mm
    ? tf.tidy(() => {
        let p = tf.matMul(inputs[mm.a]!, inputs[mm.b]!, mm.transposeA, mm.transposeB);
        if (mm.bias !== undefined) p = tf.add(p, tf.reshape(inputs[mm.bias]!, [-1]));
        if (mm.activation === 'tanh') p = tf.tanh(p);
        return p;
      })
    : undefined;
  // The output and every buffer read are storage bindings; WebGPU's default limit is 8 (the
  // backend's device must ask for the adapter's own limit to run larger groups).
  const limit = backend.device.limits.maxStorageBuffersPerShaderStage;
  for (const shader of kernel.shaders)
    if (1 + shader.reads.length > limit)
      throw new Error(
        `kernel ${kernel.name} (${spec.label}): the shader of output ${shader.output} binds ${1 + shader.reads.length} storage buffers, the device allows ${limit} (maxStorageBuffersPerShaderStage); request the adapter's limit when creating the device`,
      );
  try {
    return kernel.shaders.map((shader) => {
      const args = shader.reads.map((r) => ('matmul' in r.buffer ? product! : inputs[r.buffer.input]!));
      const out = spec.outputs[shader.output]!;
      const info = backend.runWebGPUProgram(wgslProgram(shader, out.shape), args, out.dtype);
      return tf.engine().makeTensorFromTensorInfo(info);
    });
  } finally {
    product?.dispose();
  }
}
