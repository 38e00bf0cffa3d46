import { LoomError } from '../../compiler/errors.ts';
import { printable } from '../../compiler/text.ts';
import { makeProgress, type Progress } from '../../runtime/pipeline/progress.ts';
import { ALLOW_PATH_OPTION, allowedRoots, BACKEND_OPTION, interruptible, invocation, numberFlag, progressStream, setFlags, SET_OPTION, type Command } from '../command.ts';

export const compare: Command = {
  name: 'compare',
  summary: 'train several pipelines over K seeds each and tabulate final return (mean ± 95% CI), steps to a threshold, wall time and env steps/s, with a plot of mean learning curves',
  usage: 'loom compare PIPELINE... --seeds K --steps N [--set PATH=VALUE]... [--env E] [--out DIR] [--threshold R] [--backend B] [--force]',
  options: {
    set: { ...SET_OPTION, description: 'override a field of every pipeline, e.g. --set update.epochs=10 (repeatable)' },
    env: { type: 'string', description: "override every pipeline's env: a Gymnasium id (e.g. CartPole-v1) or a name under graphs/envs", valueName: 'E' },
    seeds: { type: 'string', description: 'number of seeds per pipeline (seeds 1..K, the same for every pipeline)', valueName: 'K' },
    steps: { type: 'string', description: 'total env steps per run', valueName: 'N' },
    out: { type: 'string', description: 'output folder (default runs/compare): compare.md, compare.csv, compare.json, compare.svg and one run folder per pipeline and seed', valueName: 'DIR' },
    threshold: { type: 'string', description: 'return threshold for the steps-to-threshold column', valueName: 'R' },
    backend: BACKEND_OPTION,
    'allow-path': ALLOW_PATH_OPTION,
    force: { type: 'boolean', description: 'start over in run folders that hold finished runs or checkpoints' },
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
    const env = args.values.env as string | undefined;
    const allow = allowedRoots(args);
    makeProgress(progressStream(io)).stage(`loading ${files.length} pipeline${files.length === 1 ? '' : 's'}`);
    const { loadPipeline, parseOverride, withEnv } = await import('../../runtime/pipeline/config.ts');
    const overrides = setFlags(args).map(parseOverride);
    const cfgs = files.map((f) => {
      const loaded = loadPipeline(f, { allow, overrides });
      const c = env === undefined ? loaded : withEnv(loaded, env, io.err);
      c.total_steps = steps;
      return c;
    });
    const outDir = (args.values.out as string | undefined) ?? 'runs/compare';
    // tfjs and the driver take seconds to load, so they are loaded after the first line is out.
    const [{ initBackend }, { compare: runCompare, markdownTable }] = await Promise.all([import('../../runtime/backend.ts'), import('../../runtime/compare.ts')]);
    const backend = await initBackend(args.values.backend as string | undefined);
    // One meter per run, ended by compare's own line at the end of the run: on a terminal, each
    // finished run leaves its last bar as a line.
    let meter: Progress | null = null;
    const endRun = () => {
      meter?.done();
      meter = null;
    };
    const runMeter = (label: string): Progress => (meter ??= makeProgress(progressStream(io), { label }));
    const sigint = interruptible(io);
    try {
      const r = await runCompare(cfgs, {
        outDir,
        seeds: Array.from({ length: seeds }, (_, i) => i + 1),
        threshold,
        backend: backend.name,
        force: Boolean(args.values.force),
        overrides: overrides.map((o) => o.text),
        invocation: invocation('compare', args),
        log: (line) => {
          endRun();
          io.err(line);
        },
        onStage: (label, text) => runMeter(label).stage(text),
        onProgress: (label, p) => runMeter(label).update(p),
        shouldStop: sigint.interrupted,
      });
      if (r.stopped) {
        endRun();
        io.err(`${r.stopped.label}: stopped at iteration ${r.stopped.iteration} (checkpoint in ${printable(r.stopped.dir)}); no tables written: run loom compare again with --force to start over\n`);
        return 130;
      }
      io.out(markdownTable(r.rows, threshold));
      io.out(`wrote ${r.files.markdown}, ${r.files.csv}, ${r.files.json}, ${r.files.svg}\n`);
    } finally {
      endRun();
      sigint.release();
    }
    return 0;
  },
};
