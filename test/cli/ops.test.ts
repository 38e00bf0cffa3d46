/** `loom ops`: one entry per registry op of a family, with its fusion class, gradient and host-kernel marks. */
import { describe, expect, it } from 'vitest';
import { allOps } from '../../compiler/ops/index.ts';
import { loom } from '../helpers/cli.ts';

/** The bracketed tags of each listed op, by name. */
async function listed(family: string): Promise<Map<string, string[]>> {
  const r = await loom('ops', '--family', family);
  expect(r.code).toBe(0);
  const tags = new Map<string, string[]>();
  for (const m of r.out.matchAll(/^(\S+)\s+\(.*?\).*\[([^\]]+)\]$/gm)) tags.set(m[1]!, m[2]!.split(', '));
  return tags;
}

describe('loom ops', () => {
  for (const family of ['nn', 'linalg', 'random']) {
    it(`lists every ${family} op with its family, fusion class and marks`, async () => {
      const tags = await listed(family);
      const ops = allOps().filter((o) => o.family === family);
      expect([...tags.keys()].sort()).toEqual(ops.map((o) => o.name).sort());
      for (const o of ops) {
        const t = tags.get(o.name)!;
        expect(t.slice(0, 2)).toEqual([family, o.fusion]);
        expect(t.includes('grad'), o.name).toBe(o.grad !== undefined);
        expect(t.includes('host'), o.name).toBe(o.host !== undefined);
      }
    });
  }

  it('marks host kernels where the registry has them: categorical ops do, matmul does not', async () => {
    expect((await listed('nn')).get('categorical_log_prob')).toContain('host');
    expect((await listed('linalg')).get('matmul')).not.toContain('host');
  });
});

describe('loom ops --family with an unknown family', () => {
  const families = [...new Set(allOps().map((o) => o.family))].sort();

  it('is a usage error listing the known families', async () => {
    const r = await loom('ops', '--family', 'nope');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^error\[E_USAGE\]: unknown op family "nope"/);
    expect(r.err).toContain(`expected: one of ${families.join(', ')}`);
  });

  it('suggests the family meant', async () => {
    const r = await loom('ops', '--family', 'linalgg');
    expect(r.code).toBe(2);
    expect(r.err).toContain('hint:     did you mean "linalg"?');
  });

  it('an empty family is an error too, not the whole list', async () => {
    const r = await loom('ops', '--family', '');
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
  });
});
