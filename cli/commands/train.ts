import { LoomError } from '../../compiler/errors.ts';
import { outputPath } from '../../runtime/fs.ts';
import { makeProgress } from '../../runtime/pipeline/progress.ts';
import { BACKEND_OPTION, numberFlag, type Command } from '../command.ts';

export const train: Command = {
  name: 'train',
  summary: 'run a training pipeline (PPO and its variants) with progress, metrics, checkpoints, a learning curve and a final evaluation',
  usage: 'loom train PIPELINE.json [--env E] [--seed N] [--steps N] [--out DIR] [--backend B] [--resume]',
  options: {
    env: { type: 'string', description: 'override the env: a name under graphs/envs (e.g. cartpole) whose step/reset graphs replace the pipeline\'s', valueName: 'E' },
    seed: { type: 'string', description: 'override the pipeline seed', valueName: 'N' },
    steps: { type: 'string', description: 'override total_steps (env steps over all envs)', valueName: 'N' },
    out: { type: 'string', description: 'output folder for metrics.jsonl, metrics.csv, learning-curve.svg, checkpoint.json (default runs/<pipeline>-s<seed>)', valueName: 'DIR' },
    backend: BACKEND_OPTION,
    resume: { type: 'boolean', description: 'continue from DIR/checkpoint.json (bit-identical on the same backend)' },
  },
  details:
    'Ctrl-C saves a checkpoint at the end of the current iteration and exits; --resume continues from it.\n\nExample:\n  loom train graphs/pipelines/ppo-cartpole.json --steps 50000 --out runs/cp',
  async run(args, io) {
    const [file, ...extra] = args.positionals;
    if (!file || extra.length) throw new LoomError({ code: 'E_USAGE', message: 'loom train takes exactly one PIPELINE file', hint: 'run `loom train --help`' });
    const { loadPipeline, withEnv } = await import('../../runtime/pipeline/config.ts');
    const { initBackend } = await import('../../runtime/backend.ts');
    const { trainAsync } = await import('../../runtime/pipeline/driver.ts');
    const env = args.values.env as string | undefined;
    const cfg = env === undefined ? loadPipeline(file) : withEnv(loadPipeline(file), env);
    const seed = numberFlag(args, 'seed', { integer: true, min: 0, max: 2 ** 31 - 1 });
    if (seed !== undefined) cfg.seed = seed;
    const steps = numberFlag(args, 'steps', { integer: true, min: 1 });
    if (steps !== undefined) cfg.total_steps = steps;
    const outDir = (args.values.out as string | undefined) ?? outputPath('runs', `${cfg.pipeline}-s${cfg.seed}`);
    const backend = await initBackend(args.values.backend as string | undefined);
    const progress = makeProgress(io.err, Boolean(process.stderr.isTTY));
    let interrupted = false;
    const onSigint = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      io.err('\nloom: interrupted; saving a checkpoint after this iteration (Ctrl-C again to abort)\n');
    };
    process.on('SIGINT', onSigint);
    try {
      const r = await trainAsync(cfg, { outDir, resume: Boolean(args.values.resume), shouldStop: () => interrupted, onProgress: (p) => progress.update(p), backend: backend.name, log: io.err });
      progress.done();
      Object.values(r.params).forEach((t) => t.dispose());
      io.out(`${r.stopped ? 'stopped' : 'finished'} at iteration ${r.iterations} (${r.globalStep} env steps); checkpoint ${r.checkpoint}\n`);
      const last = r.lastEpisodes;
      if (last.length) io.out(`mean return over the last ${last.length} training episodes: ${(last.reduce((s, x) => s + x, 0) / last.length).toFixed(2)}\n`);
      if (r.eval) io.out(`evaluation: ${r.eval.episodes} episodes, mean return ${r.eval.meanReturn?.toFixed(2) ?? '-'}\n`);
      io.out(`metrics: ${outDir}/metrics.jsonl, ${outDir}/metrics.csv, ${outDir}/learning-curve.svg\n`);
      return interrupted ? 130 : 0;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};
