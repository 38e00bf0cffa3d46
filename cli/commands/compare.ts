import { LoomError } from '../../compiler/errors.ts';
import { BACKEND_OPTION, numberFlag, type Command } from '../command.ts';

export const compare: Command = {
  name: 'compare',
  summary: 'train several pipelines over K seeds each and tabulate final return (mean ± 95% CI), steps to a threshold, wall time and env steps/s, with a plot of mean learning curves',
  usage: 'loom compare PIPELINE... --seeds K --steps N [--env E] [--out DIR] [--threshold R] [--backend B]',
  options: {
    env: { type: 'string', description: "override every pipeline's env: a name under graphs/envs (e.g. cartpole)", valueName: 'E' },
    seeds: { type: 'string', description: 'number of seeds per pipeline (seeds 1..K, the same for every pipeline)', valueName: 'K' },
    steps: { type: 'string', description: 'total env steps per run', valueName: 'N' },
    out: { type: 'string', description: 'output folder (default runs/compare): compare.md, compare.csv, compare.json, compare.svg and one run folder per pipeline and seed', valueName: 'DIR' },
    threshold: { type: 'string', description: 'return threshold for the steps-to-threshold column', valueName: 'R' },
    backend: BACKEND_OPTION,
  },
  details:
    'Runs are sequential. The final return of a run is the mean of its learning curve over the last 10% of\niterations; the CI uses the t distribution over seeds.\n\nExample:\n  loom compare graphs/pipelines/ppo-cartpole.json graphs/pipelines/amppo-cartpole.json --env cartpole --seeds 3 --steps 50000 --threshold 195',
  async run(args, io) {
    const files = args.positionals;
    if (!files.length) throw new LoomError({ code: 'E_USAGE', message: 'loom compare needs at least one PIPELINE file', hint: 'run `loom compare --help`' });
    const seeds = numberFlag(args, 'seeds', { integer: true, min: 1, max: 1000 });
    const steps = numberFlag(args, 'steps', { integer: true, min: 1 });
    if (seeds === undefined || steps === undefined) throw new LoomError({ code: 'E_USAGE', message: 'loom compare needs --seeds K and --steps N', hint: 'run `loom compare --help`' });
    const threshold = numberFlag(args, 'threshold') ?? null;
    const { initBackend } = await import('../../runtime/backend.ts');
    const { compare: runCompare, markdownTable } = await import('../../runtime/compare.ts');
    const { loadPipeline, withEnv } = await import('../../runtime/pipeline/config.ts');
    const env = args.values.env as string | undefined;
    const cfgs = files.map((f) => {
      const c = env === undefined ? loadPipeline(f) : withEnv(loadPipeline(f), env);
      c.total_steps = steps;
      return c;
    });
    const outDir = (args.values.out as string | undefined) ?? 'runs/compare';
    const backend = await initBackend(args.values.backend as string | undefined);
    let last = 0;
    const r = runCompare(cfgs, {
      outDir,
      seeds: Array.from({ length: seeds }, (_, i) => i + 1),
      threshold,
      backend: backend.name,
      log: io.err,
      onProgress: (label, p) => {
        // A line every 10 s per run keeps logs short.
        const now = Date.now();
        if (now - last < 10000 && p.iteration !== p.iterations) return;
        last = now;
        io.err(`${label}: iter ${p.iteration}/${p.iterations}  steps ${p.globalStep}/${p.totalSteps}  ${Math.round(p.stepsPerSec)} steps/s  return ${p.recentReturn === null ? '-' : p.recentReturn.toFixed(1)}\n`);
      },
    });
    io.out(markdownTable(r.rows, threshold));
    io.out(`wrote ${r.files.markdown}, ${r.files.csv}, ${r.files.json}, ${r.files.svg}\n`);
    return 0;
  },
};
