/**
 * `loom --help` and `loom COMMAND --help` load no TensorFlow.js and no TypeScript compiler: the
 * commands import their heavy modules when they run, so help (and usage errors) answer at once.
 * A child process records every module it resolves through a loader hook.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/main.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const HEAVY = /@tensorflow\/|\/ts-morph\/|\/typescript\/|\/vega(-lite)?\//;

describe('loom start-up', () => {
  it('help for loom and for every command resolves no tfjs, ts-morph or vega', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-startup-'));
    const log = join(dir, 'resolved.txt');
    writeFileSync(log, '');
    writeFileSync(
      join(dir, 'hooks.mjs'),
      `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`,
    );
    // After each help text, the modules resolved so far: the first command that pulls in a heavy one is named.
    const script = `
      import { register } from 'node:module';
      import { readFileSync } from 'node:fs';
      register(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});
      const { register: tsx } = await import('tsx/esm/api');
      tsx();
      const { main } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'cli', 'main.ts')).href)});
      const io = { out() {}, err() {} };
      const report = {};
      for (const argv of ${JSON.stringify([['--help'], ...COMMANDS.map((c) => [c.name, '--help'])])}) {
        const code = await main(argv, io);
        report[argv.join(' ')] = { code, heavy: readFileSync(${JSON.stringify(log)}, 'utf8').split('\\n').filter((u) => ${HEAVY}.test(u)).length };
      }
      process.stdout.write(JSON.stringify(report));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const report = JSON.parse(r.stdout) as Record<string, { code: number; heavy: number }>;
    expect(Object.keys(report)).toHaveLength(COMMANDS.length + 1);
    for (const [argv, { code, heavy }] of Object.entries(report)) {
      expect({ argv, code, heavy }).toEqual({ argv, code: 0, heavy: 0 });
    }
  }, 60_000);
});
