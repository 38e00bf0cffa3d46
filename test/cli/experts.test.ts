import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { experts } from '../../cli/commands/experts.ts';
import { helpText, parseCommandArgs, type Io } from '../../cli/command.ts';
import { LoomError } from '../../compiler/errors.ts';
import { marks, parseSvg } from '../helpers/svg.ts';

const dir = mkdtempSync(join(tmpdir(), 'loom-experts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture(): Io & { text: () => string } {
  const chunks: string[] = [];
  return { out: (s) => chunks.push(s), err: (s) => chunks.push(s), text: () => chunks.join('') };
}

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  const parsed = parseCommandArgs(experts, argv);
  if (parsed === 'help') throw new Error('unexpected help');
  const io = capture();
  const code = await experts.run(parsed, io);
  return { code, out: io.text() };
}

async function expectError(argv: string[], code: string, pattern: RegExp): Promise<void> {
  let err: unknown;
  try {
    await run(argv);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(LoomError);
  expect((err as LoomError).code).toBe(code);
  expect((err as LoomError).message).toMatch(pattern);
}

// Spec A.6 example 1: L = 2048, L' = 512 (rho 4), d0 = 4096, w2 = 1e7 -> E* = 8.
const EX1 = ['--d0', '4096', '--L', '2048', '--w2', '1e7'];

describe('loom experts', () => {
  it('text output for example 1 reports E* = 8 and marks it in the table', async () => {
    const { code, out } = await run(EX1);
    expect(code).toBe(0);
    expect(out).toMatch(/E\* = 8, s = d0\/E\* = 512/);
    expect(out).toMatch(/continuous optimum: E = 10\.8816/);
    expect(out).toContain('J(E*) = 3861225472');
    expect(out).toContain('J(1) = 25779803776');
    expect(out).toMatch(/sectioning pays: no/);
    // Table row for E = 8 is starred, E = 16 is not.
    expect(out).toMatch(/^\*\s+8\s+512\s+3861225472\s/m);
    expect(out).toMatch(/^\s+16\s+256\s+4170612736\s/m);
  });

  it('--json prints a machine-readable object', async () => {
    const { code, out } = await run([...EX1, '--json']);
    expect(code).toBe(0);
    const j = JSON.parse(out) as { E: number; s: number; J: number; J1: number; K: number; candidates: { E: number; J: number }[]; beneficial: boolean; table: { E: number }[] };
    expect(j.E).toBe(8);
    expect(j.s).toBe(512);
    expect(j.J).toBe(3_861_225_472);
    expect(j.J1).toBe(25_779_803_776);
    expect(j.K).toBe(25_769_803_776);
    expect(j.candidates.map((c) => c.E)).toEqual([8, 16]);
    expect(j.beneficial).toBe(false);
    // Divisors of 4096: 2^0 .. 2^12.
    expect(j.table.map((r) => r.E)).toEqual(Array.from({ length: 13 }, (_, i) => 2 ** i));
  });

  it('example 2 with --pre none pays; example 3 with --reduction coupled gives E* = 4', async () => {
    const two = JSON.parse((await run(['--d0', '768', '--L', '1024', '--w1', '5e5', '--w2', '1e5', '--pre', 'none', '--json'])).out) as {
      E: number;
      beneficial: boolean;
    };
    expect(two).toMatchObject({ E: 12, beneficial: true });
    const three = JSON.parse((await run(['--d0', '1024', '--L', '4096', '--reduction', 'coupled', '--w2', '1e8', '--json'])).out) as {
      E: number;
      variant: string;
    };
    expect(three).toMatchObject({ E: 4, variant: 'coupled' });
  });

  it('--reduction coupled with pooling: J shows the pooling term P/E and E* is the E of the largest S(E)', async () => {
    const { out } = await run(['--d0', '512', '--L', '64', '--reduction', 'coupled', '--m', '4', '--w2', '1e3']);
    // P = L d0^2 + c_att L^2 d0 = 64*512^2 + 64^2*512.
    expect(out).toContain('J(E) = P/E + K2/E^2 + w1*E + w2*E^2, P = 18874368');
    expect(out).toMatch(/E\* = 32, s = d0\/E\* = 16/);
    const rows = [...out.matchAll(/^[* ]\s+(\d+)\s+\d+\s+\d+\s+\d+\s+(-?\d+)$/gm)].map((m) => ({ E: Number(m[1]), S: Number(m[2]) }));
    expect(rows.length).toBe(7);
    expect(rows.reduce((a, r) => (r.S > a.S ? r : a)).E).toBe(32);
  });

  it('--emax and --heads constrain the set', async () => {
    const j = JSON.parse((await run([...EX1, '--emax', '4', '--heads', '64', '--json'])).out) as { E: number; table: { E: number }[] };
    expect(j.table.map((r) => r.E)).toEqual([1, 2, 4]);
    expect(j.E).toBe(4);
  });

  it('--svg writes the cost curve atomically', async () => {
    const file = join(dir, 'sub', 'cost.svg');
    const { code, out } = await run([...EX1, '--svg', file]);
    expect(code).toBe(0);
    expect(out).toContain(`wrote ${file}`);
    const svg = parseSvg(readFileSync(file, 'utf8'));
    // 13 feasible E, one dot each, and the optimum marked on the curve with its label.
    const [dots, optimum] = marks(svg, 'symbol');
    expect(dots).toHaveLength(13);
    expect(optimum).toHaveLength(1);
    expect(marks(svg, 'text').flat().map((t) => t.text)).toContain('E* = 8');
    // No temp file is left next to it.
    expect(readdirSync(join(dir, 'sub'))).toEqual(['cost.svg']);
  });

  it('--profile supplies w1/w2; flags override it', async () => {
    const prof = join(dir, 'prof.json');
    writeFileSync(prof, JSON.stringify({ name: 'test', moe: { w1: 5e5, w2: 1e5 } }));
    const a = JSON.parse((await run(['--d0', '768', '--L', '1024', '--profile', prof, '--json'])).out) as { E: number; params: { w1: number; w2: number } };
    expect(a.E).toBe(12);
    expect(a.params).toMatchObject({ w1: 5e5, w2: 1e5 });
    const b = JSON.parse((await run(['--d0', '768', '--L', '1024', '--profile', prof, '--w1', '0', '--json'])).out) as { params: { w1: number } };
    expect(b.params.w1).toBe(0);
  });

  it('--profile takes a shipped profile by name, as simulate does', async () => {
    const shipped = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'profiles', 'h100.json'), 'utf8')) as { moe: { w1: number; w2: number } };
    const a = JSON.parse((await run(['--d0', '768', '--L', '1024', '--profile', 'h100', '--json'])).out) as { params: { w1: number; w2: number } };
    expect(a.params).toMatchObject({ w1: shipped.moe.w1, w2: shipped.moe.w2 });
  });

  it('a missing or corrupt profile names the file', async () => {
    const missing = join(dir, 'nope.json');
    await expectError(['--d0', '768', '--L', '1024', '--profile', missing], 'E_IO', /cannot read profile/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"moe": {"w2": 1e5,,}}');
    let err: unknown;
    try {
      await run(['--d0', '768', '--L', '1024', '--profile', bad]);
    } catch (e) {
      err = e;
    }
    expect((err as LoomError).code).toBe('E_JSON');
    expect((err as LoomError).info.file).toBe(bad);
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ moe: { w2: 'big' } }));
    await expectError(['--d0', '768', '--L', '1024', '--profile', wrong], 'E_SCHEMA', /moe\.w2/);
  });

  it('bad flags are E_USAGE errors', async () => {
    await expectError(['--L', '2048', '--w2', '1e7'], 'E_USAGE', /--d0 is required/);
    await expectError(['--d0', '4096', '--w2', '1e7'], 'E_USAGE', /--L is required/);
    await expectError(['--d0', '4096', '--L', '2048'], 'E_USAGE', /--w2 is required/);
    await expectError(['--d0', 'abc', '--L', '2048', '--w2', '1'], 'E_USAGE', /--d0 must be a finite number/);
    await expectError(['--d0', '40.5', '--L', '2048', '--w2', '1'], 'E_USAGE', /--d0 must be an integer/);
    await expectError([...EX1, '--w1=-3'], 'E_USAGE', /--w1 must be >= 0/);
    await expectError([...EX1, '--reduction', 'fixed:0.5'], 'E_USAGE', /fixed:RHO/);
    await expectError([...EX1, '--reduction', 'stride'], 'E_USAGE', /--reduction must be/);
    await expectError([...EX1, '--pre', '1,2,3'], 'E_USAGE', /--pre must be/);
    await expectError([...EX1, '--emin', '9', '--emax', '8'], 'E_USAGE', /Emin \(9\) is greater than Emax \(8\)/);
    // An infeasible request fails before anything is written.
    await expectError([...EX1, '--emin', '5', '--emax', '7', '--svg', join(dir, 'never.svg')], 'E_USAGE', /no feasible expert count/);
    await expectError([...EX1, 'extra'], 'E_USAGE', /unexpected argument/);
    expect(() => parseCommandArgs(experts, [...EX1, '--bogus'])).toThrow(LoomError);
    expect(existsSync(join(dir, 'never.svg'))).toBe(false);
  });

  it('--help text lists every flag and examples', () => {
    expect(parseCommandArgs(experts, ['--help'])).toBe('help');
    const h = helpText(experts);
    for (const flag of ['--d0', '--L', '--reduction', '--c-att', '--m', '--w0', '--w1', '--w2', '--emin', '--emax', '--smin', '--heads', '--profile', '--json', '--svg']) {
      expect(h).toContain(flag);
    }
    expect(h).toContain('Examples:');
  });
});
