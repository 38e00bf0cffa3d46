/**
 * Numbers on the command line: counts are safe integers within each flag's range, and a value
 * out of range is a usage error (exit 2) naming the flag, before any work starts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loom } from '../helpers/cli.ts';

const GRAPH = 'graphs/examples/affine.graph.json';
const PIPELINE = 'graphs/pipelines/ppo-cartpole.json';

async function usage(argv: string[], flag: string): Promise<string> {
  const r = await loom(...argv);
  expect(r.err).toMatch(new RegExp(`^error\\[E_USAGE\\].*${flag}`));
  expect(r.code).toBe(2);
  return r.err;
}

describe('numeric flags', () => {
  it('simulate --batch 0 is a usage error', async () => {
    const err = await usage(['simulate', GRAPH, '--profile', 'h100', '--batch', '0'], '--batch');
    expect(err).toMatch(/must be >= 1/);
  });

  it('simulate --batch beyond the largest tensor is a usage error', async () => {
    await usage(['simulate', GRAPH, '--profile', 'h100', '--batch', '4294967296'], '--batch');
  });

  it('simulate and compile --dim take sizes from 1 to 2^31-1', async () => {
    await usage(['simulate', GRAPH, '--profile', 'h100', '--dim', 'B=0'], '--dim');
    await usage(['simulate', GRAPH, '--profile', 'h100', '--dim', 'B=99999999999999999999'], '--dim');
    await usage(['compile', GRAPH, '--emit', 'ts', '--dim', 'B=99999999999999999999'], '--dim');
  });

  it('train and compare --steps 1e99 are usage errors: counts are safe integers', async () => {
    const out = mkdtempSync(join(tmpdir(), 'loom-limits-'));
    const err = await usage(['train', PIPELINE, '--steps', '1e99', '--out', out], '--steps');
    expect(err).toMatch(/9007199254740991/);
    await usage(['compare', PIPELINE, '--seeds', '1', '--steps', '1e99', '--out', out], '--steps');
  });

  it('experts --d0 beyond a safe integer is a usage error', async () => {
    await usage(['experts', '--d0', '1e20', '--L', '8', '--w2', '1'], '--d0');
  });
});
