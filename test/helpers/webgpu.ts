/**
 * A Dawn WebGPU device for tests (npm `webgpu`), with a runner for the WGSL target's shaders:
 * storage buffers in, one dispatch, the output mapped back. `webgpuDevice()` gives the device or
 * a one-line reason there is none, for `describe.skipIf` and a visible message.
 */
import type { WgslShader } from '../../compiler/codegen/wgsl.ts';

export type GpuArray = Float32Array | Int32Array;

export interface TestGpu {
  /** The adapter, in words. */
  adapter: string;
  /** Runs `shader` on `inputs` (one per entry of `shader.reads`, in order); resolves to its output. */
  run(shader: WgslShader, inputs: readonly GpuArray[]): Promise<GpuArray>;
}

// The object create() returns must outlive every GPU object, or Dawn crashes once it is collected.
let instance: GPU | undefined;
let cached: Promise<{ gpu: TestGpu; reason?: undefined } | { gpu: null; reason: string }> | undefined;

export function webgpuDevice(): Promise<{ gpu: TestGpu; reason?: undefined } | { gpu: null; reason: string }> {
  cached ??= open().catch((e: unknown) => ({ gpu: null, reason: `WebGPU unavailable: ${String((e as Error).message ?? e).split('\n')[0]}` }));
  return cached;
}

async function open(): Promise<{ gpu: TestGpu } | { gpu: null; reason: string }> {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  instance = create([]);
  const adapter = await instance.requestAdapter();
  if (!adapter) return { gpu: null, reason: 'no WebGPU adapter (Dawn found no Vulkan/Metal/D3D device; a software one is Mesa lavapipe >= 25)' };
  // The adapter's own limits: a fused group may read more buffers than WebGPU's default 8.
  const limits = ['maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension'] as const;
  const device = await adapter.requestDevice({ requiredLimits: Object.fromEntries(limits.map((k) => [k, adapter.limits[k]])) });
  const name = adapter.info.description || adapter.info.device || adapter.info.vendor || 'unnamed adapter';
  const pipelines = new Map<string, Promise<GPUComputePipeline>>();

  const pipeline = (shader: WgslShader): Promise<GPUComputePipeline> => {
    let p = pipelines.get(shader.hash);
    if (!p) {
      p = (async () => {
        device.pushErrorScope('validation');
        const module = device.createShaderModule({ code: shader.source });
        const info = await module.getCompilationInfo();
        const errors = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
        const made = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } }).catch((e: Error) => e);
        const err = await device.popErrorScope();
        if (errors.length || err || made instanceof Error) throw new Error(`WGSL shader ${shader.hash} failed: ${[...errors, err?.message, made instanceof Error ? made.message : ''].filter(Boolean).join('; ')}\n${shader.source}`);
        return made;
      })();
      pipelines.set(shader.hash, p);
    }
    return p;
  };

  const storage = (data: GpuArray): GPUBuffer => {
    // Zero-length bindings are invalid: keep at least one element.
    const b = device.createBuffer({ size: Math.max(4, data.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
    if (data.byteLength) device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    return b;
  };

  const run = async (shader: WgslShader, inputs: readonly GpuArray[]): Promise<GpuArray> => {
    if (inputs.length !== shader.reads.length) throw new Error(`shader ${shader.hash} reads ${shader.reads.length} buffers, got ${inputs.length}`);
    const p = await pipeline(shader);
    const bytes = Math.max(4, shader.size * 4);
    const out = device.createBuffer({ size: bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const ins = inputs.map(storage);
    const group = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [out, ...ins].map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const read = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(p);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(...shader.dispatch);
    pass.end();
    enc.copyBufferToBuffer(out, 0, read, 0, bytes);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const raw = read.getMappedRange().slice(0, shader.size * 4);
    read.unmap();
    for (const b of [out, read, ...ins]) b.destroy();
    return shader.dtype === 'float32' ? new Float32Array(raw) : new Int32Array(raw);
  };

  return { gpu: { adapter: name, run } };
}
