/** configDiff: what --resume and loom compare's reuse of finished runs count as a changed setting. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configDiff, SETTINGS_ADDED_LATER, type PipelineConfig } from '../../../runtime/pipeline/config.ts';
import { tinyPipeline } from '../../helpers/tiny-pipeline.ts';

/** The configuration as a record made before `paths` existed holds it: without them. */
function recordedBefore(cfg: PipelineConfig, paths: string[]): PipelineConfig {
  const copy = JSON.parse(JSON.stringify(cfg)) as Record<string, unknown>;
  for (const p of paths) {
    const keys = p.split('.');
    let o = copy as Record<string, unknown>;
    for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
    delete o[keys.at(-1)!];
  }
  return copy as unknown as PipelineConfig;
}

describe('configDiff', () => {
  const now = tinyPipeline({ normalize: { obs: true, reward: false, clip: 10 } });

  it('reports a changed setting as path: recorded -> now', () => {
    expect(configDiff(now, { ...now, update: { ...now.update, epochs: now.update.epochs + 1 } })).toEqual([`update.epochs: ${now.update.epochs} -> ${now.update.epochs + 1}`]);
  });

  it('does not count a setting added later, at the value that keeps the earlier behaviour, as a difference', () => {
    expect(now.normalize.per_env).toBe(SETTINGS_ADDED_LATER['normalize.per_env']);
    expect(now.update.kl_coef).toBe(SETTINGS_ADDED_LATER['update.kl_coef']);
    const old = recordedBefore(now, ['normalize.per_env', 'update.kl_coef']);
    expect(configDiff(old, now)).toEqual([]);
  });

  it('counts a setting added later when it now has another value', () => {
    const old = recordedBefore(now, ['normalize.per_env', 'update.kl_coef']);
    expect(configDiff(old, { ...now, normalize: { ...now.normalize, per_env: true }, update: { ...now.update, kl_coef: 0.04 } })).toEqual([
      'normalize.per_env: false -> true',
      'update.kl_coef: 0 -> 0.04',
    ]);
  });
});

describe('configDiff of program configurations', () => {
  it("does not count a program's policy, which only says what loom export writes, as a difference", async () => {
    const { loadProgram } = await import('../../../runtime/program/config.ts');
    const now = loadProgram(join(import.meta.dirname, '../../../graphs/programs/ppo-pendulum/program.json'));
    expect(now.policy?.obs_norm).toBeDefined();
    const { policy: _p, ...before } = now;
    expect(configDiff(before, now)).toEqual([]);
    expect(configDiff(before, { ...now, hyper: { ...now.hyper, lr: 1 } })).toEqual([`hyper.lr: ${now.hyper.lr} -> 1`]);
  });
});
