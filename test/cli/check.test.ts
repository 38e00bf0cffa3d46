/**
 * `loom check`: exit 0 and the signature for good files; exit 1 with the formatted error (and no
 * stack trace) for bad ones, checking every file; exit 2 for bad usage.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loom } from '../helpers/cli.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const AFFINE = join(ROOT, 'graphs', 'examples', 'affine.graph.json');
const FIX = join(ROOT, 'test', 'fixtures', 'frontend');
const BAD = join(FIX, 'bad');

/** No stack frames and no internal-error banner: the user sees only the formatted error. */
function expectNoStack(text: string): void {
  expect(text).not.toMatch(/^\s+at /m);
  expect(text).not.toMatch(/internal error/);
}

describe('loom check', () => {
  it('prints the signature of a good file and exits 0', async () => {
    const r = await loom('check', AFFINE);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const lines = r.out.split('\n');
    expect(lines[0]).toBe(`${AFFINE}: ok`);
    expect(lines).toContain('graph affine-tanh');
    expect(lines).toContain('  input  x: float32[B, 3]');
    expect(lines).toContain('  param  w: float32[3, 2] = constant(value=0.5)');
    expect(lines).toContain('  param  b: float32[2] = zeros');
    expect(lines).toContain('  output y: float32[B, 2]');
  });

  it('shows symbolic dims bound through a call', async () => {
    const r = await loom('check', join(FIX, 'caller.graph.json'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('  input  obs: float32[N, 3]');
    expect(r.out).toContain('  param  l1/w: float32[3, 2]');
    expect(r.out).toContain('  output s: float32[N, 2]');
  });

  it('--quiet prints nothing for good files', async () => {
    const r = await loom('check', '--quiet', AFFINE);
    expect(r).toEqual({ code: 0, out: '', err: '' });
  });

  it('a shape error: exit 1, the formatted error, no stack', async () => {
    const r = await loom('check', join(BAD, 'shape.graph.json'));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    const lines = r.err.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^error\[E_SHAPE\] \S*test\/fixtures\/frontend\/bad\/shape\.graph\.json#\/nodes\/0 \(node "h"\): matmul: .*inner dimensions differ \(3 vs 4\)$/);
    expect(lines).toContain('  found:    a [B, 3], b [4, 2]');
    expectNoStack(r.err);
  });

  it('invalid JSON: line and column', async () => {
    const r = await loom('check', join(BAD, 'syntax.graph.json'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error\[E_JSON\] \S*syntax\.graph\.json: invalid JSON at line 5, column 1: /);
    expectNoStack(r.err);
  });

  it('a recursive call names the chain', async () => {
    const r = await loom('check', join(BAD, 'rec-a.graph.json'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error\[E_IMPORT\] \S*rec-b\.graph\.json#\/nodes\/0\/graph \(node "viaA"\): recursive call: \S*rec-a\.graph\.json -> \S*rec-b\.graph\.json -> \S*rec-a\.graph\.json/);
    expectNoStack(r.err);
  });

  it('a missing call target and a missing file', async () => {
    const call = await loom('check', join(BAD, 'missing-call.graph.json'));
    expect(call.code).toBe(1);
    expect(call.err).toMatch(/^error\[E_IMPORT\] .*#\/nodes\/0\/graph \(node "c"\): called graph file not found: \S*does-not-exist\.graph\.json/);
    const file = await loom('check', join(BAD, 'no-such-file.graph.json'));
    expect(file.code).toBe(1);
    expect(file.err).toMatch(/^error\[E_IO\] .*cannot read graph file \S*no-such-file\.graph\.json: no such file/);
    expectNoStack(call.err + file.err);
  });

  it('checks every file when one is bad', async () => {
    const r = await loom('check', AFFINE, join(BAD, 'shape.graph.json'), join(FIX, 'lin.graph.json'), join(BAD, 'syntax.graph.json'));
    expect(r.code).toBe(1);
    // Both good files are reported, the one after the first bad file included.
    expect(r.out).toContain(`${AFFINE}: ok`);
    expect(r.out).toContain(`${join(FIX, 'lin.graph.json')}: ok`);
    expect(r.out).toContain('graph lin');
    // Both bad files are reported, each once.
    expect(r.err.match(/^error\[/gm)).toHaveLength(2);
    expect(r.err).toMatch(/^error\[E_SHAPE\]/m);
    expect(r.err).toMatch(/^error\[E_JSON\]/m);
    expectNoStack(r.err);
  });

  it('checks a pipeline with every graph it names, and reports a broken one at its pointer', async () => {
    const good = join(ROOT, 'graphs', 'pipelines', 'amppo-pendulum.json');
    const dir = mkdtempSync(join(tmpdir(), 'loom-check-'));
    const bad = join(dir, 'v.json');
    writeFileSync(bad, JSON.stringify({ extends: good, loss: 'missing.graph.json' }));
    const r = await loom('check', good, bad);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`${good}: ok (pipeline amppo-pendulum, ppo, 9 graphs)`);
    expect(r.err).toMatch(new RegExp(`^error\\[E_IO\\] ${bad.replace(/[.]/g, '\\.')}#/loss: graph file .*missing\\.graph\\.json does not exist`, 'm'));
    expectNoStack(r.err);
  });

  it('an unknown flag exits 2 with a usage error', async () => {
    const r = await loom('check', '--frobnicate', AFFINE);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^error\[E_USAGE\]: .*--frobnicate/);
    expect(r.err).toMatch(/loom check --help/);
    expectNoStack(r.err);
  });

  it('no file exits 2', async () => {
    const r = await loom('check');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error\[E_USAGE\]: loom check needs at least one FILE/);
  });

  it('--help exits 0 with the usage', async () => {
    const r = await loom('check', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^loom check FILE\.\.\./);
  });
});
