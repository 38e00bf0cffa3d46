/**
 * The packed package works where it is installed: `npm pack` (which builds dist/ through
 * `prepare`), `npm install` of the tarball into an empty project, then, with plain node, the first
 * example of docs/api.md and the `loom` command. The example's number is checked against the
 * reference interpreter run here on the sources. The install needs the npm registry (or npm's
 * cache): without either, the test is skipped and says why.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { initBackend, tf } from '../../runtime/backend.ts';
import { initParams, interpret } from '../../runtime/interpreter.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const OFFLINE = /ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNREFUSED|ECONNRESET|ENOTCACHED|ENETUNREACH/;

/** Runs a command to its end without blocking the test worker (npm pack and install take a while). */
function sh(cmd: string, args: string[], cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The first ```js block of docs/api.md: the run-a-graph example. */
function firstExample(): string {
  const m = /```js\n([\s\S]*?)```/.exec(readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8'));
  if (!m) throw new Error('docs/api.md has no js example');
  return m[1]!;
}

async function interpreterValue(): Promise<number> {
  await initBackend('cpu', () => {});
  const g = loadGraph(join(ROOT, 'graphs/examples/affine.graph.json'));
  const params = initParams(g, 1);
  const x = tf.tensor2d([[1, 2, 3]]);
  const y = interpret(g, { x }, params).y!;
  const v = (y.arraySync() as number[][])[0]![0]!;
  tf.dispose([x, y, ...Object.values(params)]);
  return v;
}

describe('the npm package', () => {
  it('installs from its tarball and runs the docs/api.md example and loom with plain node', async (ctx) => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-pack-'));
    const pack = await sh(NPM, ['pack', '--silent', '--pack-destination', dir], ROOT);
    expect(pack.status, pack.stderr).toBe(0);
    const tarball = join(dir, pack.stdout.trim().split('\n').pop()!);

    const project = join(dir, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'uses-tensorloom', version: '1.0.0', private: true, type: 'module' }));
    const install = await sh(NPM, ['install', '--prefer-offline', '--no-package-lock', tarball], project);
    if (install.status !== 0 && OFFLINE.test(install.stderr)) {
      console.warn(`skipped: npm install of the tarball needs the registry or npm's cache, and neither answered:\n${install.stderr.split('\n').slice(0, 3).join('\n')}`);
      ctx.skip();
    }
    expect(install.status, install.stderr).toBe(0);

    writeFileSync(join(project, 'example.mjs'), firstExample());
    const ex = await sh(process.execPath, ['example.mjs'], project);
    expect(ex.status, ex.stderr).toBe(0);
    const printed = Number(ex.stdout.trim().split('\n').pop());
    expect(printed).toBeCloseTo(await interpreterValue(), 6);

    // The installed command runs the compiled dist/ (no note about running the sources).
    const bin = join(project, 'node_modules', '.bin', 'loom');
    const version = await sh(bin, ['--version'], project);
    expect({ status: version.status, out: version.stdout, err: version.stderr }).toEqual({ status: 0, out: `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`, err: '' });
    const checked = await sh(bin, ['check', join(project, 'node_modules/tensorloom/graphs/pipelines/ppo-cartpole.json')], project);
    expect(checked.status, checked.stderr).toBe(0);
    expect(checked.stdout).toContain('ok (pipeline ppo-cartpole');
  }, 240_000);
});
