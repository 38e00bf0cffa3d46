/**
 * `npm run bundle:gpu` builds a folder that runs `bench:gpu` on its own: built into a temporary
 * folder outside the checkout (no node_modules above it) and run there with `run.sh --quick`. Every
 * row's webgpu outputs must match its wasm outputs (the two backends are each other's reference);
 * a software adapter is refused without --allow-software, in one line naming it; with no Vulkan
 * driver the benchmark says so in one line. Needs a WebGPU adapter (a software one here).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebgpu } from '../helpers/webgpu.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DOC = readFileSync(join(ROOT, 'docs', 'gpu-bench.md'), 'utf8');

/** Runs a command to its end without blocking the test worker. */
function sh(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string> }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function sizeOf(path: string): number {
  const s = statSync(path);
  return s.isDirectory() ? readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0) : s.size;
}

/** The benchmark's own lines (Dawn writes its Vulkan warnings to stderr too). */
const ownLines = (text: string) => text.split('\n').filter((l) => l.startsWith('bench:gpu'));
/** A JavaScript stack frame. */
const STACK = /^\s+at .*\.m?[jt]s:\d+/m;

const choice = await startWebgpu('gpu benchmark bundle');

describe.skipIf(!choice)('the GPU benchmark bundle', () => {
  let tmp = '';
  let bundle = '';
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'loom-gpu-bundle-'));
    bundle = join(tmp, 'dist-gpu');
    const r = await sh(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', '--silent', 'bundle:gpu', '--', '--out', bundle], { cwd: ROOT });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*dist-gpu: [\d.]+ MiB/);
  }, 120_000);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('holds the module, the wasm binaries, dawn.node, the graphs and the run script, within 64 MiB', () => {
    for (const f of ['gpu.mjs', 'run.sh', 'package.json', 'tfjs-backend-wasm-simd.wasm', 'node_modules/webgpu/dist/linux-x64/dawn.node', 'graphs/algorithms/ppo-cartpole.loss.graph.json', 'schemas/graph.schema.json'])
      expect(existsSync(join(bundle, f)), f).toBe(true);
    expect(existsSync(join(tmp, 'node_modules'))).toBe(false);
    expect(sizeOf(bundle)).toBeLessThanOrEqual(64 * 2 ** 20);
  });

  it('runs the quick benchmark from the copy alone, webgpu agreeing with wasm on every row', async () => {
    const r = await sh('bash', [join(bundle, 'run.sh'), '--allow-software', '--quick'], { cwd: tmpdir() });
    expect(r.status, r.stderr).toBe(0);
    const a = choice!.adapter!;
    expect(r.stdout).toContain(`adapter: vendor ${a.vendor}, architecture ${a.architecture}, description ${a.description}`);
    if (a.software) expect(r.stdout).toMatch(/^NOTE: software adapter .*not GPU figures/m);
    for (const s of ['1. PPO update step', '2. fused elementwise chain', '3. sectional MoE layer', '4. CartPole-v1 step graph']) expect(r.stdout).toContain(s);
    const rows = r.stdout.split('\n').filter((l) => / max rel diff /.test(l));
    // Quick sizes: PPO at B = 128, the chain, MoE at d0 = 64 and 128, CartPole at N = 256 and 4096.
    expect(rows).toHaveLength(6);
    for (const row of rows) {
      const m = /^ {2}(.+?)\s+(\d+\.\d+)x\s+wasm\s+([\d.]+) ms.*webgpu\s+([\d.]+) ms.*max rel diff (\S+)$/.exec(row);
      expect(m, row).not.toBeNull();
      const [, , ratio, wasm, webgpu, diff] = m!;
      // The ratio printed is the two times printed, divided (to their printed precision).
      expect(Number(ratio)).toBeCloseTo(Number(wasm) / Number(webgpu), 1);
      expect(Number(diff), row).toBeLessThan(1e-5);
    }
  }, 120_000);

  it.skipIf(!choice?.adapter?.software)('refuses a software adapter without --allow-software, in one line naming it', async () => {
    const r = await sh('bash', [join(bundle, 'run.sh'), '--quick'], { cwd: tmpdir() });
    expect(r.status).toBe(3);
    const lines = ownLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^bench:gpu: refusing the software WebGPU adapter found \(vendor .*description .*\); .* Pass --allow-software/);
    expect(lines[0]).toContain(choice!.adapter!.description);
    expect(r.stderr).not.toMatch(STACK);
    // docs/gpu-bench.md quotes it (with the adapter of the machine it was written on).
    expect(DOC).toContain(lines[0]!.slice(lines[0]!.indexOf('); its figures')));
    expect(r.stdout).not.toMatch(/max rel diff/);
  }, 60_000);

  it('says in one line that no adapter was found when the Vulkan loader sees no driver', async () => {
    const r = await sh('bash', [join(bundle, 'run.sh'), '--quick'], { cwd: tmpdir(), env: { LOOM_WEBGPU_ROUTE: 'core', VK_ICD_FILENAMES: '/nonexistent.json', VK_DRIVER_FILES: '/nonexistent.json' } });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('Vulkan ICDs (from VK_DRIVER_FILES / VK_ICD_FILENAMES): /nonexistent.json');
    const lines = ownLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^bench:gpu: the webgpu backend cannot start: no WebGPU adapter \(core: no adapter\); hint: install the GPU's Vulkan driver/);
    expect(r.stderr).not.toMatch(STACK);
    expect(DOC).toContain('```\n' + lines[0] + '\n```');
  }, 60_000);
});
