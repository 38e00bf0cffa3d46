/**
 * A Dawn WebGPU device for tests (npm `webgpu`), with a runner for the WGSL target's shaders:
 * storage buffers in, one dispatch, the output mapped back. `webgpuDevice()` gives the device or
 * a one-line reason there is none, for `describe.skipIf` and a visible message; `webgpuTfjs()`
 * does the same for tfjs's 'webgpu' backend. `startWebgpu()` starts the webgpu test group: it
 * selects loom's webgpu backend for the test file (vitest runs each file in its own process, so
 * no other file sees it) or says on the console why the group is skipped; only a missing adapter
 * skips, any other failure is an error.
 */
import type { WgslShader } from '../../compiler/codegen/wgsl.ts';
import { isLoomError } from '../../compiler/errors.ts';
import { adapterLimits, initBackend, type BackendChoice } from '../../runtime/backend.ts';

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

/** Dawn's GPU object, created once and kept (with WebGPU's globals installed). */
async function dawn(): Promise<GPU> {
  if (!instance) {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    instance = create([]);
  }
  return instance;
}

const NO_ADAPTER = 'no WebGPU adapter (Dawn found no Vulkan/Metal/D3D device; a software one is Mesa lavapipe >= 25)';

let tfjsCached: Promise<{ ok: true; adapter: string } | { ok: false; reason: string }> | undefined;

/**
 * Makes tfjs's 'webgpu' backend (tfjs-backend-webgpu on Dawn) available and active, or gives a
 * one-line reason it cannot be. navigator.gpu must exist before the backend module is imported:
 * it registers 'webgpu' only if WebGPU is there at import time.
 */
export function webgpuTfjs(): Promise<{ ok: true; adapter: string } | { ok: false; reason: string }> {
  tfjsCached ??= (async (): Promise<{ ok: true; adapter: string } | { ok: false; reason: string }> => {
    const gpu = await dawn();
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { ok: false, reason: NO_ADAPTER };
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
    const tf = await import('@tensorflow/tfjs');
    // As the package registers it, but with the adapter's storage-buffer limit: fused groups may read more than 8 buffers.
    const device = await adapter.requestDevice({ requiredLimits: adapterLimits(adapter) });
    tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter.info), 3);
    if (!(await tf.setBackend('webgpu'))) return { ok: false, reason: "tfjs's webgpu backend failed to start" };
    await tf.ready();
    return { ok: true, adapter: adapter.info.description || adapter.info.device || 'unnamed adapter' };
  })().catch((e: unknown) => ({ ok: false, reason: `tfjs webgpu unavailable: ${String((e as Error).message ?? e).split('\n')[0]}` }));
  return tfjsCached;
}

async function open(): Promise<{ gpu: TestGpu } | { gpu: null; reason: string }> {
  const adapter = await (await dawn()).requestAdapter();
  if (!adapter) return { gpu: null, reason: NO_ADAPTER };
  const device = await adapter.requestDevice({ requiredLimits: adapterLimits(adapter) });
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

export async function startWebgpu(group: string): Promise<BackendChoice | undefined> {
  try {
    return await initBackend('webgpu', () => {});
  } catch (e) {
    if (!isLoomError(e) || e.code !== 'E_BACKEND') throw e;
    console.log(`SKIPPED ${group}: no WebGPU adapter on this machine (${e.info.message}); .ci/install-gpu-adapter.sh installs a software one`);
    return undefined;
  }
}
