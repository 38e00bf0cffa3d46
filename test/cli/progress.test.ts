/**
 * What `loom train` and `loom compare` print while they work, without a TTY (as here): a line
 * before the slow start-up, then progress lines with the run's label, never a carriage return.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { G, writeTinyPipeline } from '../helpers/tiny-pipeline.ts';
import { loom } from '../helpers/cli.ts';

/** A tiny CartPole pipeline (2 envs x 8 steps; 32 steps are 2 iterations). */
function pipelineFile(dir: string): string {
  return writeTinyPipeline(dir, { update: { epochs: 1, minibatches: 1 }, total_steps: 32, checkpoint: undefined });
}

describe('progress output', () => {
  it('loom train says what it does before the first iteration, then prints lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-progress-'));
    const r = await loom('train', pipelineFile(dir), '--backend', 'cpu', '--out', join(dir, 'run'));
    expect(r.code, r.err).toBe(0);
    const lines = r.err.split('\n');
    expect(lines[0]).toBe('loading pipeline…');
    const compiling = lines.indexOf('compiling 7 graphs…');
    const first = lines.findIndex((l) => l.startsWith('iter 1/2  steps 16/32  - steps/s  return '));
    expect(compiling).toBeGreaterThan(0);
    expect(first).toBeGreaterThan(compiling);
    expect(lines.filter((l) => /^iter 2\/2  steps 32\/32  \d+ steps\/s  return \S+  elapsed \d+s  eta 0s$/.test(l))).toHaveLength(1);
    expect(r.err).not.toContain('\r');
  });

  it('loom compare prints each run with its label when it starts and when it ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-progress-'));
    const r = await loom('compare', pipelineFile(dir), '--seeds', '2', '--steps', '32', '--backend', 'cpu', '--out', join(dir, 'out'), '--workers', '1');
    expect(r.code, r.err).toBe(0);
    const lines = r.err.split('\n');
    expect(lines[0]).toBe('loading 1 pipeline…');
    expect(lines).toContain('loom compare: 2 runs (1 pipeline x 2 seeds) on 1 worker process');
    for (const seed of [1, 2]) {
      const start = lines.indexOf(`tiny seed ${seed}: start`);
      const done = lines.findIndex((l) => l.startsWith(`tiny seed ${seed}: done in `));
      expect([start >= 0, start < done]).toEqual([true, true]);
    }
    expect(r.err).not.toContain('\r');
  });
});
