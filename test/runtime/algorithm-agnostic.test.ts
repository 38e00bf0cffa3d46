/**
 * Nothing in the runtime or the CLI branches on an algorithm's name: a behaviour is a declared
 * pipeline option, so that a new algorithm needs graph and pipeline files, not TypeScript. This
 * scans their sources for comparisons against the `algorithm` label or the shipped algorithm names.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const NAMES = '(?:ppo|grpo|hybrid-grpo|amppo|am-ppo)';
const QUOTED = `['"\`]${NAMES}['"\`]`;

/** What a branch on an algorithm's name looks like. */
const ALGORITHM_BRANCH = new RegExp(
  [
    // cfg.algorithm === ..., algorithm !== ... (a typeof check is not a branch on the name)
    String.raw`(?<!typeof\s+[\w.]*)\balgorithm\s*[!=]==?`,
    String.raw`[!=]==?\s*(?:\w+\.)*algorithm\b`,
    // x === 'grpo', 'hybrid-grpo' !== x
    String.raw`[!=]==?\s*${QUOTED}`,
    String.raw`${QUOTED}\s*[!=]==?`,
    // switch (cfg.algorithm), case 'grpo':
    String.raw`switch\s*\(\s*(?:\w+\.)*algorithm\s*\)`,
    String.raw`\bcase\s+${QUOTED}`,
    // a file path built from the label: join(..., cfg.algorithm, ...), `${cfg.algorithm}/...`
    String.raw`join\([^)]*\balgorithm\b`,
    String.raw`\$\{\s*(?:\w+\.)*algorithm\s*\}[/.]`,
  ].join('|'),
);

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** `file:line: text` of every line that branches on an algorithm's name. */
function algorithmBranches(files: readonly string[]): string[] {
  return files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .flatMap((line, i) => (ALGORITHM_BRANCH.test(line) ? [`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`] : [])),
  );
}

describe('the runtime and the CLI are algorithm-agnostic', () => {
  it('the pattern finds the branches it is meant to find, and not a label printed or passed on', () => {
    const branches = [
      "const hybrid = c.algorithm === 'hybrid-grpo';",
      "vf_coef: tf.scalar(c.algorithm === 'grpo' ? 0 : u.vf_coef),",
      "norm_adv: (upd.norm_adv as boolean) ?? algorithm !== 'grpo',",
      "if ('ppo' === name) return null;",
      'switch (cfg.algorithm) {',
      "  case 'hybrid-grpo':",
      "patched(join(GRAPHS_DIR, 'algorithms', cfg.algorithm, 'advantage.graph.json'))",
      'const file = `${cfg.algorithm}/advantage.graph.json`;',
    ];
    for (const line of branches) expect(ALGORITHM_BRANCH.test(line), line).toBe(true);
    const fine = [
      'io.out(`${file}: ok (pipeline ${cfg.pipeline}, ${cfg.algorithm}, ${n} graphs)\\n`);',
      "algorithm: (j.algorithm as string) ?? 'ppo',",
      "const bootstrap = c.group!.value === 'bootstrap';",
      "if (typeof json.algorithm !== 'string') return json;",
      "import { ppo } from './ppo.ts';",
    ];
    for (const line of fine) expect(ALGORITHM_BRANCH.test(line), line).toBe(false);
  });

  it('no source file under runtime/ or cli/ branches on an algorithm name', () => {
    const files = [...sources('runtime'), ...sources('cli')];
    expect(files.length).toBeGreaterThan(20);
    expect(algorithmBranches(files)).toEqual([]);
  });
});
