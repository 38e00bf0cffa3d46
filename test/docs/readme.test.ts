/**
 * The README matches the repository: every file it names exists, the graph it shows inline is the
 * file it names, it points at nothing outside the repository, and its example commands write their
 * outputs to a git-ignored folder.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loom } from '../helpers/cli.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const FENCE = /^```(\w*)\n([\s\S]*?)^```$/gm;

/** Paths into the repository's folders, as the README writes them (placeholders like <variant> excluded). */
function repoPaths(text: string): string[] {
  const found = text.match(/\b(?:graphs|docs|schemas|profiles|compiler|runtime|cli|bench|test)\/[\w./-]*[\w/]/g) ?? [];
  return [...new Set(found)].filter((p) => !text.includes(`${p}<`));
}

const shellLines = [...README.matchAll(FENCE)].filter((m) => m[1] === 'sh').flatMap((m) => m[2]!.split('\n'));

describe('README.md', () => {
  it('names only files and folders that exist', () => {
    const paths = repoPaths(README);
    expect(paths).toContain('graphs/examples/affine.graph.json');
    expect(paths.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
  });

  it('shows each inline JSON block as exactly the file named after it', () => {
    const blocks = [...README.matchAll(FENCE)].filter((m) => m[1] === 'json');
    expect(blocks.length).toBeGreaterThan(0);
    for (const b of blocks) {
      const after = README.slice(b.index! + b[0].length);
      const file = /^\s*This is `([^`]+)`/.exec(after)?.[1];
      expect(file, `the file named after the JSON block at offset ${b.index}`).toBeDefined();
      expect(b[2]).toBe(readFileSync(join(ROOT, file!), 'utf8'));
    }
  });

  it('shows the error `loom check` prints for the file it names', async () => {
    const m = /`npx loom (check [^`]+)` prints:\n\n```\n([\s\S]*?)```/.exec(README);
    expect(m).not.toBeNull();
    const r = await loom(...m![1]!.split(' '));
    expect(r.code).toBe(1);
    expect(r.err).toBe(m![2]);
  });

  it('points at nothing outside the repository (links, and paths outside graph-file snippets)', () => {
    for (const m of README.matchAll(/\]\(([^)#]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      expect(relative(ROOT, resolve(ROOT, target)).startsWith('..'), target).toBe(false);
      expect(existsSync(join(ROOT, target)), target).toBe(true);
    }
    // Relative paths inside JSON (a graph's "$schema", a call's "graph") are relative to that graph file.
    const prose = README.replace(FENCE, '').replace(/`[^`]*"[^`]*`/g, '');
    expect(prose.match(/\.\.\/[\w./-]+/g) ?? []).toEqual([]);
  });

  it('has its example commands write outputs (--out, --svg) under a git-ignored folder', () => {
    const outputs = shellLines.flatMap((l) => [...l.matchAll(/--(?:out|svg) (\S+)/g)].map((m) => m[1]!));
    expect(outputs.length).toBeGreaterThan(0);
    for (const o of outputs) {
      const r = spawnSync('git', ['check-ignore', '--no-index', '-q', o], { cwd: ROOT });
      expect({ output: o, ignored: r.status === 0 }).toEqual({ output: o, ignored: true });
    }
  });

  it("gives loom experts' optimum as the command prints it", async () => {
    const line = shellLines.find((l) => l.startsWith('npx loom experts '))!;
    const args = line.replace(/^npx loom /, '').split(/\s+/).filter((a, i, all) => a !== '--svg' && all[i - 1] !== '--svg');
    const r = await loom(...args);
    expect(r.code).toBe(0);
    const claim = /prints the continuous optimum \(([\d.]+)\), the integer optimum E\* = (\d+) \(s = (\d+)\)/.exec(README);
    expect(claim).not.toBeNull();
    const printed = /continuous optimum: E = ([\d.]+)/.exec(r.out)?.[1];
    expect(Number(printed).toFixed(claim![1]!.split('.')[1]!.length)).toBe(claim![1]);
    expect(r.out).toContain(`integer optimum: E* = ${claim![2]}, s = d0/E* = ${claim![3]}`);
  });
});
