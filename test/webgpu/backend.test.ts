/**
 * The webgpu backend's selection: only on request, the adapter named in the "loom: backend" line,
 * a one-line E_BACKEND error when no adapter fits, and `loom run` on webgpu matching cpu.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startWebgpu } from '../helpers/webgpu.ts';
import { loomErr } from '../helpers/loom-error.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const AFFINE = ['run', 'graphs/examples/mlp-loss-grad.graph.json', '--inputs', 'graphs/examples/mlp-loss-grad.inputs.json', '--seed', '1'];

function loomProcess(args: string[], env: Record<string, string> = {}): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, ['bin/loom.js', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, LOOM_FROM_SOURCES: '1', LOOM_BACKEND: '', ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('webgpu backend selection', () => {
  it('is never the default: with no request the embedded wasm backend is chosen', () => {
    const r = loomProcess(AFFINE);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^loom: backend wasm /m);
  });

  it('says in one line, without a stack, why webgpu cannot start when no adapter fits', () => {
    // A Vulkan loader pointed at no driver, and only the core route: Dawn finds no adapter.
    const r = loomProcess([...AFFINE, '--backend', 'webgpu'], { LOOM_WEBGPU_ROUTE: 'core', VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json' });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/E_BACKEND/);
    expect(r.err).toMatch(/the webgpu backend cannot start: no WebGPU adapter \(core: no adapter\)/);
    expect(r.err).toMatch(/hint: .*docs\/gpu\.md/);
    // (Dawn writes its own Vulkan warnings to stderr; no JavaScript stack follows them.)
    expect(r.err).not.toMatch(/^\s+at .*\.[cm]?[jt]s:\d+/m);
    expect(r.err).not.toMatch(/internal error/);
    expect(r.out).toBe('');
  });
});

const choice = await startWebgpu('webgpu backend');

describe.skipIf(!choice)('webgpu backend on an adapter', () => {
  it('reports the adapter, marking a CPU implementation as software', () => {
    const a = choice!.adapter!;
    expect(choice!.name).toBe('webgpu');
    expect(choice!.reason).toContain(`adapter ${a.vendor} `);
    expect(a.software).toBe(/lavapipe|llvmpipe|swiftshader/i.test(a.description) || a.architecture === 'software');
  });

  it("requests the device with the adapter's own limits, not WebGPU's defaults (8 storage buffers per stage)", async () => {
    const tf = await import('@tensorflow/tfjs');
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    const adapter = (await (globalThis as unknown as { navigator: { gpu: GPU } }).navigator.gpu.requestAdapter())!;
    for (const k of ['maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupsPerDimension'] as const)
      expect(device.limits[k], k).toBe(adapter.limits[k]);
    // Fused groups of the shipped graphs bind up to 15 (the CartPole step).
    if (adapter.limits.maxStorageBuffersPerShaderStage >= 16) expect(device.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(16);
  });

  it('loom run --backend webgpu gives the outputs loom run --backend cpu gives, within float32 tolerance', () => {
    const gpu = loomProcess([...AFFINE, '--backend', 'webgpu']);
    const cpu = loomProcess([...AFFINE, '--backend', 'cpu']);
    expect(gpu.code, gpu.err).toBe(0);
    expect(gpu.err).toMatch(/^loom: backend webgpu \(requested by --backend; adapter /m);
    const a = JSON.parse(gpu.out) as Record<string, unknown>;
    const b = JSON.parse(cpu.out) as Record<string, unknown>;
    expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
    for (const k of Object.keys(b)) {
      const x = [a[k]].flat(3) as number[];
      const y = [b[k]].flat(3) as number[];
      expect(x.length).toBe(y.length);
      x.forEach((v, i) => expect(Math.abs(v - y[i]!), `${k}[${i}]`).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(y[i]!)));
    }
  });
});

describe.skipIf(!choice)('the synchronous API on webgpu', () => {
  it('runGraph refuses webgpu with an E_BACKEND error and a hint', async () => {
    const { runGraph, GRAPHS_DIR } = await import('../../index.ts');
    const e = loomErr(() => runGraph(join(GRAPHS_DIR, 'examples/affine.graph.json'), { inputs: { x: [[1, 2, 3]] } }));
    expect(e.code).toBe('E_BACKEND');
    expect(e.message).toMatch(/runGraph returns its outputs synchronously, which the webgpu backend cannot read/);
    expect(e.info.hint).toMatch(/loom run --backend webgpu/);
  });
});
