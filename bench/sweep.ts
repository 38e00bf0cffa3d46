/**
 * A sweep on the local pool against `loom compare` doing the same runs one after another, side by
 * side on this machine: the sweep file's configurations x seeds (by default lr x ent_coef x 5 seeds
 * of PPO on CartPole, 50k steps a run), once through compare (one pipeline per configuration, in
 * one process) and once through the pool with --workers processes. Both include loading and
 * compiling, and both write their tables. Prints each wall time, the ratio compare / sweep (the
 * median over --repeats), and whether both produced the same final returns.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '../runtime/backend.ts';
import { compare } from '../runtime/compare.ts';
import { loadPipeline, parseOverride } from '../runtime/pipeline/config.ts';
import { loadSweep } from '../runtime/sweep/plan.ts';
import { runPool } from '../runtime/sweep/pool.ts';
import { writeReport } from '../runtime/sweep/report.ts';
import { benchArgs } from './args.ts';

const values = benchArgs('usage: npm run bench:sweep -- [--sweep FILE (default graphs/sweeps/ppo-cartpole-lr-ent.json)] [--workers N (default 2)] [--steps N (per run; default: the sweep budget)] [--repeats N (default 1)] [--backend wasm|cpu|tensorflow]', {
  sweep: { type: 'string', default: 'graphs/sweeps/ppo-cartpole-lr-ent.json' },
  workers: { type: 'string', default: '2' },
  steps: { type: 'string' },
  repeats: { type: 'string', default: '1' },
  backend: { type: 'string', default: 'wasm' },
});
const backend = (await initBackend(values.backend, () => {})).name;
const workers = Number(values.workers);
const repeats = Number(values.repeats);
const loaded = loadSweep(values.sweep);
const steps = values.steps !== undefined ? Number(values.steps) : loaded.steps;
const plan = { ...loaded, ...(steps !== undefined ? { steps } : {}), jobs: loaded.jobs.map((j) => ({ ...j, ...(steps !== undefined ? { steps } : {}) })) };
const out = (s: string) => process.stdout.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// compare's pipelines: one per configuration, named after it, with the sweep's overrides.
const pipelines = plan.configs.map((c) => {
  const job = plan.jobs.find((j) => j.config === c.id)!;
  const cfg = loadPipeline(plan.pipeline, { overrides: job.overrides.map(parseOverride) });
  return { ...cfg, pipeline: c.id, ...(steps !== undefined ? { total_steps: steps } : {}) };
});

out(`sweep ${plan.sweep}: ${plan.configs.length} configurations x ${plan.seeds.length} seeds = ${plan.jobs.length} runs${steps !== undefined ? ` of ${steps} steps` : ''}; backend ${backend}; node ${process.version}; ${availableParallelism()} cores, load average ${loadavg()[0]!.toFixed(1)} before the first repeat (the pool can only be as fast as the idle cores)\n`);
out('| repeat | loom compare (1 process) s | loom sweep (' + workers + ' workers) s | ratio | 1-min load average after |');
out('|---|---|---|---|---|');
const ratios: number[] = [];
for (let k = 1; k <= repeats; k++) {
  const dir = mkdtempSync(join(tmpdir(), 'loom-bench-sweep-'));
  try {
    let t0 = performance.now();
    const c = await compare(pipelines, { outDir: join(dir, 'compare'), seeds: plan.seeds, backend });
    const compareSec = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const r = await runPool(plan.jobs, { workers, outRoot: join(dir, 'sweep'), backend });
    const { ranked } = await writeReport(plan, r.results, join(dir, 'sweep'));
    const sweepSec = (performance.now() - t0) / 1000;
    ratios.push(compareSec / sweepSec);
    out(`| ${k} | ${compareSec.toFixed(1)} | ${sweepSec.toFixed(1)} | ${(compareSec / sweepSec).toFixed(2)} | ${loadavg()[0]!.toFixed(1)} |`);
    const same = c.rows.every((row) => ranked.find((x) => x.config.id === row.pipeline)?.summary.finalReturn.mean === row.finalReturn.mean);
    if (k === 1) out(`\nsame final returns per configuration: ${same ? 'yes' : 'NO'}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
out(`\nspeed-up of the sweep over compare (median of ${repeats}): ${median(ratios).toFixed(2)}x`);
