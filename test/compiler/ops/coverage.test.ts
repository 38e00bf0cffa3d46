import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../../compiler/ops/index.ts';
import { allOps } from '../../../compiler/ops/registry.ts';

// Every op must be exercised by name in the op test files, so a new op cannot land untested.
describe('op test coverage', () => {
  it('every registered op is named in a test under test/compiler/ops', () => {
    const dir = join(import.meta.dirname, '.');
    const text = readdirSync(dir)
      .filter((f) => f.endsWith('.test.ts') && f !== 'coverage.test.ts')
      .map((f) => readFileSync(join(dir, f), 'utf8'))
      .join('\n');
    const missing = allOps()
      .map((o) => o.name)
      .filter((name) => !new RegExp(`['"\`]${name}['"\`]|\\b${name}:`).test(text));
    expect(missing).toEqual([]);
  });
});
