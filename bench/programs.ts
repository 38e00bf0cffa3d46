/**
 * Env steps/s of each PPO program of tools/ppo-programs.ts (Acrobot, Pendulum, MountainCarContinuous)
 * against the classic driver on the pipeline it equals, in one process (wasm backend unless --backend):
 * `--iterations` iterations of each under its driver, as `loom train --max-iterations` runs them, the
 * classic run and the program run taking turns. The figure is the median steps_per_sec of the
 * iterations after the first (which compiles).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../runtime/backend.ts';
import { GRAPHS_DIR, loadPipeline, withEnv } from '../runtime/pipeline/config.ts';
import { train } from '../runtime/pipeline/driver.ts';
import { loadProgram } from '../runtime/program/config.ts';
import { trainProgram } from '../runtime/program/driver.ts';
import { PROGRAMS } from '../tools/ppo-programs.ts';
import { benchArgs } from './args.ts';

const values = benchArgs('usage: npm run bench:programs -- [--backend wasm|cpu|tensorflow] [--iterations N (per run, default 6)]', {
  backend: { type: 'string', default: 'wasm' },
  iterations: { type: 'string', default: '6' },
});
const K = Number(values.iterations);
await initBackend(values.backend, () => {});
const out = (s: string) => process.stdout.write(s + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const dir = mkdtempSync(join(tmpdir(), 'loom-bench-programs-'));

out(`PPO programs against the classic driver (node ${process.version}, backend ${tf.getBackend()}; median env steps/s of iterations 2..${K})\n`);
out('program                        classic    program   program/classic');
try {
  for (const spec of PROGRAMS) {
    let cfg = loadPipeline(join(GRAPHS_DIR, spec.pipeline));
    if (spec.env) cfg = withEnv(cfg, spec.env);
    const classic: number[] = [];
    await train(cfg, { outDir: join(dir, `${spec.name}-classic`), maxIterations: K, onMetrics: (r) => void classic.push(r.steps_per_sec) });
    const program: number[] = [];
    const r = await trainProgram(loadProgram(join(GRAPHS_DIR, 'programs', spec.name, 'program.json')), { outDir: join(dir, `${spec.name}-program`), maxIterations: K, onMetrics: (row) => void program.push(row.steps_per_sec as number) });
    tf.dispose(Object.values(r.state));
    const [c, p] = [median(classic.slice(1)), median(program.slice(1))];
    out(`${spec.name.padEnd(30)} ${c.toFixed(0).padStart(7)}   ${p.toFixed(0).padStart(7)}   ${(p / c).toFixed(2)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
