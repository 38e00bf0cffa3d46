/**
 * Backend selection. Order: --backend / LOOM_BACKEND if given; else `tensorflow` when
 * @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node is installed; else `wasm` (embedded
 * default); else `cpu`. `webgpu` is never chosen unless asked for. The choice and its reason
 * are reported once ("loom: backend webgpu (requested by --backend; adapter ...)").
 *
 * API:
 * - `initBackend(requested?, log?)`: selects and initialises the backend (idempotent for the
 *   same request) and returns `{name, reason, adapter?}`; a requested backend that cannot load
 *   is an E_BACKEND LoomError saying why, with a hint.
 * - `activeAdapter()`: the WebGPU adapter in use (vendor, architecture, description, software,
 *   route), or undefined when webgpu is not initialised.
 * - `syncReadable(name)` (host-memory.ts): whether a backend's tensors can be read with
 *   `dataSync`; on webgpu they cannot (in Node it throws), so callers read with `await data()`.
 *
 * WebGPU in Node is Dawn (the `webgpu` package). The loader tries the core adapter of Dawn's
 * default backend (Vulkan on Linux: a GPU driver or Mesa lavapipe >= 25), then Dawn's OpenGL ES
 * backend at the 'compatibility' feature level (stock Mesa llvmpipe through EGL, surfaceless).
 * LOOM_WEBGPU_ROUTE=core|gles tries only one of them. `navigator.gpu` is set before
 * @tensorflow/tfjs-backend-webgpu is imported (it registers itself only if it sees one), and the
 * Dawn instance stays referenced from this module for the life of the process: dropping it
 * makes later GPU calls hang or crash. The device is requested with the adapter's own limits
 * (storage buffers per stage, buffer sizes, workgroups), not WebGPU's defaults.
 */
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../compiler/errors.ts';
import { prepareWasmGemm } from './wasm-gemm.ts';
import { prepareWasmKernels } from './wasm-kernels.ts';

export const BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** The WebGPU adapter a webgpu backend runs on. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  /** A CPU implementation (lavapipe, llvmpipe, SwiftShader) rather than a GPU. */
  software: boolean;
  /** core: Dawn's default backend (Vulkan on Linux); gles: OpenGL ES at the compatibility feature level. */
  route: 'core' | 'gles';
}

export interface BackendChoice {
  name: BackendName;
  reason: string;
  /** The WebGPU adapter, for webgpu. */
  adapter?: AdapterSummary;
}

let active: BackendChoice | undefined;
let announced = false;

async function tryImport(mod: string): Promise<boolean> {
  try {
    await import(mod);
    return true;
  } catch {
    return false;
  }
}

async function loadTensorflow(): Promise<string | undefined> {
  for (const mod of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) if (await tryImport(mod)) return mod;
  return undefined;
}

interface DawnModule {
  create(options: string[]): GPU;
  globals: object;
}

/** The Dawn instance behind navigator.gpu: held here for the process's life (see the header). */
let dawn: { gpu: GPU; adapter: AdapterSummary } | undefined;

export function activeAdapter(): AdapterSummary | undefined {
  return dawn?.adapter;
}

function summarise(info: GPUAdapterInfo, route: AdapterSummary['route']): AdapterSummary {
  const description = info.description || info.device || '';
  const software = info.architecture === 'software' || /lavapipe|llvmpipe|swiftshader/i.test(`${description} ${info.device}`);
  return { vendor: info.vendor || 'unknown', architecture: info.architecture || 'unknown', description, software, route };
}

export function describeAdapter(a: AdapterSummary): string {
  const kind = a.software ? 'software' : a.architecture;
  return `adapter ${a.vendor} ${kind}: ${a.description || 'no description'}${a.route === 'gles' ? ' (OpenGL ES, compatibility)' : ''}`;
}

/**
 * Finds a WebGPU adapter and sets navigator.gpu to its Dawn instance; returns why not otherwise.
 * Only the instance whose adapter is used is kept (dropping one that found none is harmless).
 */
async function findAdapter(): Promise<string | undefined> {
  if (dawn) return undefined;
  let mod: DawnModule;
  try {
    mod = (await import('webgpu')) as unknown as DawnModule;
  } catch (e) {
    return `Dawn's Node module (the webgpu package) failed to load on ${process.platform}-${process.arch}: ${(e as Error).message.split('\n')[0]}`;
  }
  Object.assign(globalThis, mod.globals); // GPUBufferUsage, GPUMapMode, ... as in a browser
  const only = process.env.LOOM_WEBGPU_ROUTE || undefined;
  if (only !== undefined && only !== 'core' && only !== 'gles') return `LOOM_WEBGPU_ROUTE is "${only}"; it must be core or gles (or unset: both)`;
  const routes: { route: AdapterSummary['route']; options: string[]; request: GPURequestAdapterOptions }[] = [];
  if (only !== 'gles') routes.push({ route: 'core', options: [], request: {} });
  if (only !== 'core') routes.push({ route: 'gles', options: ['backend=opengles'], request: { featureLevel: 'compatibility' } });
  const tried: string[] = [];
  for (const r of routes) {
    // Mesa's EGL needs no display server with the surfaceless platform.
    if (r.route === 'gles') process.env.EGL_PLATFORM ??= 'surfaceless';
    let gpu: GPU;
    let adapter: GPUAdapter | null;
    try {
      gpu = mod.create(r.options);
      adapter = await gpu.requestAdapter(r.request);
    } catch (e) {
      tried.push(`${r.route}: ${(e as Error).message}`);
      continue;
    }
    if (!adapter) {
      tried.push(`${r.route}: no adapter`);
      continue;
    }
    if (r.route === 'gles') {
      // tfjs asks for a core adapter; Dawn's GL backend offers only the compatibility level.
      const request = gpu.requestAdapter.bind(gpu);
      gpu.requestAdapter = (o?: GPURequestAdapterOptions) => request({ ...o, ...r.request });
    }
    dawn = { gpu, adapter: summarise(adapter.info, r.route) };
    // Node 21+ has a navigator of its own: gpu is added to it; Node 20 has none.
    const nav = (globalThis as { navigator?: object }).navigator;
    if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    return undefined;
  }
  return `no WebGPU adapter (${tried.join('; ')})`;
}

/**
 * Device limits requested at the adapter's own values: those tfjs-backend-webgpu asks for, and
 * the storage buffers per shader stage, since a fused group's WGSL kernel binds one per buffer it
 * reads plus its output, and WebGPU's default of 8 is too few for real groups (10 to 15).
 */
const DEVICE_LIMITS = [
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeInvocationsPerWorkgroup',
] as const;

/** The `requiredLimits` of a device that may use all the adapter offers (see DEVICE_LIMITS). */
export function adapterLimits(adapter: GPUAdapter): Record<string, number> {
  return Object.fromEntries(DEVICE_LIMITS.map((k) => [k, adapter.limits[k]]));
}

let limitsRequested = false;

async function loadWebgpu(): Promise<string | undefined> {
  const why = await findAdapter();
  if (why) return why;
  let mod: typeof import('@tensorflow/tfjs-backend-webgpu');
  try {
    mod = await import('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    return `@tensorflow/tfjs-backend-webgpu failed to load: ${(e as Error).message.split('\n')[0]}`;
  }
  if (limitsRequested) return undefined;
  // Registered again as the package does it (same features), but with DEVICE_LIMITS; once, since
  // removing a started backend would drop its tensors.
  const gpu = dawn!.gpu;
  tf.removeBackend('webgpu');
  limitsRequested = true;
  tf.registerBackend(
    'webgpu',
    async () => {
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) throw new Error('the WebGPU adapter went away');
      const requiredFeatures = (['timestamp-query', 'bgra8unorm-storage'] as const).filter((f) => adapter.features.has(f));
      const device = await adapter.requestDevice({ requiredFeatures, requiredLimits: adapterLimits(adapter) });
      return new mod.WebGPUBackend(device, adapter.info);
    },
    3,
  );
  return undefined;
}

async function activate(name: BackendName): Promise<boolean> {
  // A literal import (not tryImport's variable), so that a bundler includes the backend (npm run bundle:gpu).
  if (name === 'wasm' && !(await import('@tensorflow/tfjs-backend-wasm').then(() => true, () => false))) return false;
  try {
    return (await tf.setBackend(name)) && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/** Selects and initialises the backend; idempotent for the same request. */
export async function initBackend(requested?: string, log: (msg: string) => void = (m) => process.stderr.write(m + '\n')): Promise<BackendChoice> {
  const req = requested ?? process.env.LOOM_BACKEND ?? undefined;
  if (req !== undefined && req !== '' && !(BACKENDS as readonly string[]).includes(req))
    throw new LoomError({ code: 'E_USAGE', message: `unknown backend "${req}"`, expected: BACKENDS.join(' | '), found: req });
  if (active && (!req || req === active.name)) return active;

  let choice: BackendChoice | undefined;
  if (req) {
    const via = requested !== undefined ? '--backend' : 'LOOM_BACKEND';
    if (req === 'tensorflow') {
      const mod = await loadTensorflow();
      if (!mod || !(await activate('tensorflow')))
        throw new LoomError({
          code: 'E_BACKEND',
          message: 'the tensorflow backend needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, and neither is installed',
          hint: 'install one of them (its installer downloads libtensorflow), or use --backend wasm',
        });
      choice = { name: 'tensorflow', reason: `requested by ${via} (${mod})` };
    } else if (req === 'webgpu') {
      const why = await loadWebgpu();
      if (why || !(await activate('webgpu')))
        throw new LoomError({
          code: 'E_BACKEND',
          message: `the webgpu backend cannot start: ${why ?? 'tfjs could not create a device on the adapter'}`,
          hint: 'install a Vulkan driver (a GPU\'s, or Mesa lavapipe >= 25), or Mesa\'s EGL for the OpenGL ES route (docs/gpu.md); or use --backend wasm',
        });
      choice = { name: 'webgpu', reason: `requested by ${via}; ${describeAdapter(dawn!.adapter)}`, adapter: dawn!.adapter };
    } else {
      if (!(await activate(req as BackendName))) throw new LoomError({ code: 'E_BACKEND', message: `the ${req} backend failed to initialise` });
      choice = { name: req as BackendName, reason: `requested by ${via}` };
    }
  } else {
    const mod = await loadTensorflow();
    if (mod && (await activate('tensorflow'))) choice = { name: 'tensorflow', reason: `${mod} is installed` };
    else if (await activate('wasm')) choice = { name: 'wasm', reason: 'embedded default (tfjs-node is not installed)' };
    else if (await activate('cpu')) choice = { name: 'cpu', reason: 'wasm backend failed to initialise' };
    else throw new LoomError({ code: 'E_BACKEND', message: 'no TensorFlow.js backend could be initialised' });
  }
  await tf.ready();
  // Generated kernels multiply with their own product on wasm (see wasm-gemm.ts).
  const unprepared = choice.name === 'wasm' ? await prepareWasmGemm() : undefined;
  if (unprepared) log(`loom: the own wasm product is unavailable (${unprepared}); products run as the library's matmul`);
  // Generated elementwise kernels run as WebAssembly on wasm (see wasm-kernels.ts).
  const noKernels = choice.name === 'wasm' ? await prepareWasmKernels() : undefined;
  if (noKernels) log(`loom: wasm kernels are unavailable (${noKernels}); generated kernels run as JavaScript`);
  active = choice;
  if (!announced || requested) {
    log(`loom: backend ${choice.name} (${choice.reason})`);
    announced = true;
  }
  return choice;
}

export { tf };
