/** The CLI's own surface: --version, unknown flags with a suggestion, and every command's options in its help. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../cli/main.ts';
import { loom } from '../helpers/cli.ts';

const ROOT = join(import.meta.dirname, '..', '..');

describe('loom --version', () => {
  it("prints package.json's version, for --version and -V", async () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) expect(await loom(flag)).toEqual({ code: 0, out: `${version}\n`, err: '' });
  });
});

describe('loom | head', () => {
  it('stops quietly with exit code 0 when the reader closes the pipe', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'loom.js'), 'ops'], { cwd: ROOT, env: { ...process.env, LOOM_FROM_SOURCES: '1' } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((res) => child.on('close', res));
    expect({ code, err }).toEqual({ code: 0, err: '' });
  }, 30_000);
});

describe('unknown flags', () => {
  it('suggest the nearest flag of the command', async () => {
    const r = await loom('train', 'graphs/pipelines/ppo-cartpole.json', '--stpes', '100');
    expect(r.code).toBe(2);
    expect(r.err).toContain('error[E_USAGE]: loom train: unknown option --stpes');
    expect(r.err).toMatch(/found: +--stpes/);
    expect(r.err).toContain('hint:     did you mean --steps?');
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('suggest per command: --sed to run is --seed, --profle to simulate is --profile', async () => {
    expect((await loom('run', 'x.json', '--sed', '1')).err).toContain('did you mean --seed?');
    expect((await loom('simulate', 'x.json', '--profle', 'h100')).err).toContain('did you mean --profile?');
  });

  it('with no near flag, list the flags and point at the help', async () => {
    const r = await loom('diff', 'a.json', 'b.json', '--frobnicate');
    expect(r.code).toBe(2);
    expect(r.err).toContain('expected: --allow-path, --help');
    expect(r.err).toContain('hint:     run `loom diff --help`');
    expect(r.err).not.toContain('did you mean');
  });
});

describe('loom COMMAND --help', () => {
  for (const c of COMMANDS) {
    it(`${c.name}: lists every option and --help`, async () => {
      const r = await loom(c.name, '--help');
      expect(r.code).toBe(0);
      const section = r.out.split('\nOptions:\n')[1];
      expect(section, 'an Options: section').toBeDefined();
      const flags = [...section!.matchAll(/^ {2}(--[\w-]+)/gm)].map((m) => m[1]);
      expect(flags).toEqual([...Object.keys(c.options).map((k) => `--${k}`), '--help']);
    });
  }
});
