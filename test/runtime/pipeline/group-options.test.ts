/**
 * The group rollout is chosen by declared options (group.advantage, group.value, update.vf_coef,
 * update.norm_adv), not by the `algorithm` label: inconsistent combinations are errors at their
 * pointer, a new label with the options runs exactly as the legacy name did, and files from before
 * the options (a legacy name, no group.advantage) and their run records read as they did.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { configDiff, GRAPHS_DIR, loadPipeline, loadPipelineGraphs, parseOverride, type PipelineConfig } from '../../../runtime/pipeline/config.ts';
import { Trainer } from '../../../runtime/pipeline/driver.ts';
import type { IterationMetrics } from '../../../runtime/pipeline/metrics.ts';
import { loomErr } from '../../helpers/loom-error.ts';
import { G, tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const GRPO_ADV = G('algorithms/grpo/advantage.graph.json');
const HYBRID_ADV = G('algorithms/hybrid-grpo/advantage.graph.json');

/** The metrics of two iterations, without the timing column. */
function twoIterations(cfg: PipelineConfig): Omit<IterationMetrics, 'steps_per_sec'>[] {
  const t = new Trainer(cfg);
  t.init();
  const rows = [t.iterate(), t.iterate()].map(({ steps_per_sec: _, ...m }) => m);
  t.dispose();
  return rows;
}

describe('inconsistent group options are errors at their pointer', () => {
  it('a group without an advantage graph', () => {
    const e = loomErr(() => tiny({ algorithm: 'my-grpo', group: { size: 2 } }));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', file: '/virtual/tiny.json', pointer: '/group' });
    expect(e.info.hint).toMatch(/"advantage": "graphs\/algorithms\/grpo\/advantage\.graph\.json"/);
  });

  it('value none with the value-based branch choice', () => {
    const e = loomErr(() => tiny({ group: { advantage: GRPO_ADV, size: 2, select: 'argmax' }, update: { vf_coef: 0 } }));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/group/select', expected: 'uniform', found: '"argmax"' });
    expect(e.info.hint).toMatch(/"value": "bootstrap"/);
  });

  it('value none with a value loss: there are no value targets to train on', () => {
    // vf_coef left at its default 0.5.
    const e = loomErr(() => tiny({ group: { advantage: GRPO_ADV, value: 'none', size: 2 } }));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/update/vf_coef', expected: '0', found: '0.5' });
    expect(e.info.hint).toMatch(/"vf_coef": 0/);
  });

  it("group.value that does not match the advantage graph's inputs, when the graphs load", () => {
    const boot = loomErr(() => loadPipelineGraphs(tiny({ group: { advantage: GRPO_ADV, value: 'bootstrap', size: 2 } })));
    expect(boot.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/group/advantage' });
    expect(boot.info.message).toMatch(/role group\.advantage expects input "R"/);
    expect(boot.info.hint).toMatch(/needs "value": "none"/);
    const none = loomErr(() => loadPipelineGraphs(tiny({ group: { advantage: HYBRID_ADV, value: 'none', size: 2 }, update: { vf_coef: 0 } })));
    expect(none.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/group/advantage' });
    expect(none.info.hint).toMatch(/needs "value": "bootstrap"/);
  });

  it('an advantage graph path that is missing or outside the allowed folders', () => {
    const missing = loomErr(() => loadPipelineGraphs(tiny({ group: { advantage: G('algorithms/nope.graph.json'), value: 'none', size: 2 }, update: { vf_coef: 0 } })));
    expect(missing.info).toMatchObject({ code: 'E_IO', pointer: '/group/advantage' });
    const outside = loomErr(() => tiny({ group: { advantage: '/etc/passwd', value: 'none', size: 2 }, update: { vf_coef: 0 } }));
    expect(outside.info).toMatchObject({ code: 'E_IO', pointer: '/group/advantage' });
  });
});

describe('the algorithm label selects nothing', () => {
  it('a new label with the options declared runs exactly as the legacy grpo name', () => {
    const legacy = tiny({ algorithm: 'grpo', group: { size: 2, horizon: 2 } });
    const declared = tiny({ algorithm: 'my-grpo', group: { advantage: GRPO_ADV, value: 'none', size: 2, horizon: 2 }, update: { epochs: 2, minibatches: 2, norm_adv: false, vf_coef: 0 } });
    expect(configDiff(legacy, declared)).toEqual(['algorithm: "grpo" -> "my-grpo"']);
    expect(twoIterations(declared)).toEqual(twoIterations(legacy));
  });

  it('a new label with the options declared runs exactly as the legacy hybrid-grpo name', () => {
    const legacy = tiny({ algorithm: 'hybrid-grpo', group: { size: 2, horizon: 3, select: 'argmax' }, total_steps: 256 });
    const declared = tiny({ algorithm: 'mine', group: { advantage: HYBRID_ADV, value: 'bootstrap', size: 2, horizon: 3, select: 'argmax' }, total_steps: 256 });
    expect(configDiff(legacy, declared)).toEqual(['algorithm: "hybrid-grpo" -> "mine"']);
    const rows = twoIterations(declared);
    expect(rows).toEqual(twoIterations(legacy));
    // The bootstrapped value target is trained: explained variance is measured, not NaN.
    expect(Number.isFinite(rows[0]!.explained_variance)).toBe(true);
  });

  it('group.hp.gamma defaults to gamma^horizon for a bootstrapping graph, whatever the label', () => {
    expect(tiny({ algorithm: 'x', group: { advantage: HYBRID_ADV, value: 'bootstrap', size: 2, horizon: 3 }, advantage: { gamma: 0.9 } }).group!.hp.gamma).toBeCloseTo(0.729, 12);
    expect(tiny({ group: { advantage: GRPO_ADV, size: 2 }, update: { vf_coef: 0 } }).group!.hp).toEqual({});
  });

  it('every shipped pipeline declares its options: relabelled, it loads to the same configuration', () => {
    const dir = join(GRAPHS_DIR, 'pipelines');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
      const file = join(dir, f);
      const relabelled = loadPipeline(file, { overrides: [parseOverride('algorithm=a-label')] });
      expect(configDiff(loadPipeline(file), relabelled).filter((l) => !l.startsWith('algorithm:')), f).toEqual([]);
    }
  });
});

describe('files and run records from before the group options', () => {
  it('a legacy name without group.advantage gets the options it stood for', () => {
    const grpo = tiny({ algorithm: 'grpo', group: { size: 2 }, update: { vf_coef: 0.5 } });
    expect(grpo.group).toMatchObject({ advantage: GRPO_ADV, value: 'none' });
    // Those rollouts trained no value function whatever vf_coef said.
    expect(grpo.update).toMatchObject({ vf_coef: 0, norm_adv: false });
    const hybrid = tiny({ algorithm: 'hybrid-grpo', group: { size: 2, horizon: 2 } });
    expect(hybrid.group).toMatchObject({ advantage: HYBRID_ADV, value: 'bootstrap', hp: { gamma: 0.99 ** 2 } });
    expect(hybrid.update).toMatchObject({ vf_coef: 0.5, norm_adv: true });
  });

  it('a run record written before the options matches the pipeline it ran', () => {
    const now = loadPipeline(join(GRAPHS_DIR, 'pipelines/grpo-cartpole.json'));
    // As recorded then: no group.advantage or group.value, and the inherited vf_coef 0.5, which GRPO ignored.
    const { advantage: _, value: __, ...group } = now.group!;
    const recorded = { ...now, group, update: { ...now.update, vf_coef: 0.5 } };
    expect(configDiff(recorded, now)).toEqual([]);
    expect(configDiff({ ...recorded, update: { ...recorded.update, epochs: 3 } }, now)).toEqual(['update.epochs: 3 -> 4']);
  });
});
