import { availableParallelism } from 'node:os';
import { LoomError } from '../../compiler/errors.ts';
import { printable } from '../../compiler/text.ts';
import { makeProgress } from '../../runtime/pipeline/progress.ts';
import { ALLOW_PATH_OPTION, allowedRoots, BACKEND_OPTION, interruptible, invocation, numberFlag, progressStream, setFlags, SET_OPTION, type Command } from '../command.ts';

export const compare: Command = {
  name: 'compare',
  summary: 'train several pipelines over K seeds each on a pool of local worker processes and tabulate final return (IQM and mean with bootstrap CIs), AUC, evaluation return, probability of improvement over a baseline with Holm-adjusted p-values, steps to a threshold, wall time and env steps/s, with learning curves and performance profiles',
  usage: 'loom compare PIPELINE... --seeds K [--steps N] [--set PATH=VALUE]... [--env E] [--metric M] [--eval-metric E] [--out DIR] [--threshold R] [--baseline NAME] [--reps N] [--workers N] [--report-only] [--backend B]',
  options: {
    set: { ...SET_OPTION, description: 'override a field of every pipeline, e.g. --set update.epochs=10 (repeatable)' },
    env: { type: 'string', description: "override every pipeline's env: a Gymnasium id (e.g. CartPole-v1) or a name under graphs/envs", valueName: 'E' },
    seeds: { type: 'string', description: 'number of seeds per pipeline (seeds 1..K, the same for every pipeline)', valueName: 'K' },
    steps: { type: 'string', description: 'total env steps per run (required for pipelines; a program pipeline runs its total_steps unless given)', valueName: 'N' },
    metric: { type: 'string', description: 'program pipelines: the iteration metric whose curve is compared (default episodic_return)', valueName: 'M' },
    'eval-metric': { type: 'string', description: 'program pipelines: the evaluate graph output that is the eval return (default return_mean)', valueName: 'E' },
    out: { type: 'string', description: 'output folder (default runs/compare): compare.md, compare.csv, compare.json, compare.svg, profiles.svg and one run folder per pipeline and seed, DIR/<pipeline>/s<seed> (a program pipeline\'s: DIR/<program>/seed-<s>)', valueName: 'DIR' },
    threshold: { type: 'string', description: 'return threshold for the steps-to-threshold column', valueName: 'R' },
    baseline: { type: 'string', description: 'the pipeline (its "pipeline" name) the others are compared with: probability of improvement and p-values (default: the first)', valueName: 'NAME' },
    reps: { type: 'string', description: 'bootstrap replicates of the confidence intervals (default 2000)', valueName: 'N' },
    workers: { type: 'string', description: 'worker processes that run the pipelines x seeds (default: one per core); program pipelines run in this process', valueName: 'N' },
    'report-only': { type: 'boolean', description: 'run nothing: write the tables and figures from the finished runs in DIR' },
    backend: BACKEND_OPTION,
    'allow-path': ALLOW_PATH_OPTION,
  },
  details:
    "Each run is configured exactly as `loom train PIPELINE --seed S --steps N` configures it (the pipeline's\nevaluation included) and runs in DIR/<pipeline>/s<seed>. Running the same command again skips finished runs\n(those of `loom train ... --out DIR/<pipeline>/s<seed>` too) and resumes stopped ones from their checkpoints;\nCtrl-C stops every running run after its iteration, with a checkpoint. The final return of a run is the mean\nof its learning curve over the last 10% of iterations. The statistics are in docs/results.md.\n\nA program pipeline (docs/programs.md) runs its K seeds as one vmapped program, as `loom train PROGRAM --seeds K\n--out DIR/<program>` does, into DIR/<program>/seed-<s>; its curve is the metric --metric names and its eval return\nthe evaluate output --eval-metric names.\n\nExamples:\n  loom compare graphs/pipelines/ppo-cartpole.json graphs/pipelines/amppo-cartpole.json --env cartpole --seeds 3 --steps 50000 --threshold 195 --workers 2\n  loom compare graphs/programs/ppo-cartpole/program.json graphs/programs/ppo-penalty-cartpole/program.json --seeds 10",
  async run(args, io) {
    const files = args.positionals;
    if (!files.length) throw new LoomError({ code: 'E_USAGE', message: 'loom compare needs at least one PIPELINE file', hint: 'run `loom compare --help`' });
    const seeds = numberFlag(args, 'seeds', { integer: true, min: 1, max: 1000 });
    const steps = numberFlag(args, 'steps', { integer: true, min: 1 });
    const threshold = numberFlag(args, 'threshold') ?? null;
    const reps = numberFlag(args, 'reps', { integer: true, min: 1, max: 1_000_000 });
    const workers = numberFlag(args, 'workers', { integer: true, min: 1, max: 1024 });
    const reportOnly = Boolean(args.values['report-only']);
    const env = args.values.env as string | undefined;
    const allow = allowedRoots(args);
    const metric = args.values.metric as string | undefined;
    const evalMetric = args.values['eval-metric'] as string | undefined;
    makeProgress(progressStream(io)).stage(`loading ${files.length} pipeline${files.length === 1 ? '' : 's'}`);
    const [{ loadPipeline, parseOverride, withEnv }, { isProgramFile, loadProgram, MAX_SEEDS }] = await Promise.all([import('../../runtime/pipeline/config.ts'), import('../../runtime/program/config.ts')]);
    const programFiles = files.filter((f) => isProgramFile(f));
    const pipelineFiles = files.filter((f) => !programFiles.includes(f));
    if (seeds === undefined || (steps === undefined && pipelineFiles.length))
      throw new LoomError({ code: 'E_USAGE', message: `loom compare needs --seeds K${pipelineFiles.length ? ' and --steps N' : ''}`, ...(seeds !== undefined ? { hint: `--steps sets the budget of the pipelines (${pipelineFiles.map((f) => printable(f)).join(', ')}); a program pipeline runs its total_steps` } : { hint: 'run `loom compare --help`' }) });
    if (programFiles.length && seeds > MAX_SEEDS) throw new LoomError({ code: 'E_USAGE', message: `a program pipeline runs at most ${MAX_SEEDS} seeds together`, found: `--seeds ${seeds}`, hint: `compare at most ${MAX_SEEDS} seeds` });
    if (programFiles.length && env !== undefined)
      throw new LoomError({ code: 'E_USAGE', message: '--env applies to pipelines; a program pipeline names its env in its graphs', file: programFiles[0]!, hint: 'compare the program pipelines without --env, or give --env only with pipelines' });
    if (!programFiles.length && (metric !== undefined || evalMetric !== undefined))
      throw new LoomError({ code: 'E_USAGE', message: `--${metric !== undefined ? 'metric' : 'eval-metric'} applies to program pipelines`, hint: 'a pipeline\'s curve is its episodic return and its eval return its evaluation\'s mean return' });
    const overrides = setFlags(args).map(parseOverride);
    const cfgs = files.map((f) => {
      if (programFiles.includes(f)) {
        const p = loadProgram(f, { allow, overrides });
        if (steps !== undefined) p.total_steps = steps;
        return p;
      }
      const loaded = loadPipeline(f, { allow, overrides });
      const c = env === undefined ? loaded : withEnv(loaded, env, io.err);
      c.total_steps = steps!;
      return c;
    });
    const outDir = (args.values.out as string | undefined) ?? 'runs/compare';
    // tfjs and the driver take seconds to load, so they are loaded after the first line is out.
    const [{ initBackend }, { compare: runCompare, markdownTable }] = await Promise.all([import('../../runtime/backend.ts'), import('../../runtime/compare.ts')]);
    const backend = await initBackend(args.values.backend as string | undefined);
    const runs = cfgs.length * seeds;
    const pooled = pipelineFiles.length * seeds;
    const n = Math.max(1, Math.min(workers ?? availableParallelism(), pooled));
    const pool = `on ${n} worker process${n === 1 ? '' : 'es'}`;
    const vmapped = `as ${programFiles.length} vmapped program${programFiles.length === 1 ? '' : 's'} in this process`;
    const where = !programFiles.length ? pool : !pooled ? vmapped : `${pooled} ${pool}, ${programFiles.length * seeds} ${vmapped}`;
    if (!reportOnly) io.err(`loom compare: ${runs} runs (${cfgs.length} pipeline${cfgs.length === 1 ? '' : 's'} x ${seeds} seed${seeds === 1 ? '' : 's'}) ${where}\n`);
    const sigint = interruptible(io);
    try {
      const r = await runCompare(cfgs, {
        outDir,
        seeds: Array.from({ length: seeds }, (_, i) => i + 1),
        threshold,
        backend: backend.name,
        overrides: overrides.map((o) => o.text),
        ...(env !== undefined ? { env } : {}),
        allow,
        invocation: invocation('compare', args),
        workers: n,
        reportOnly,
        ...(args.values.baseline !== undefined ? { baseline: args.values.baseline as string } : {}),
        ...(reps !== undefined ? { reps } : {}),
        readout: { ...(metric !== undefined ? { metric } : {}), ...(evalMetric !== undefined ? { evalOutput: evalMetric } : {}) },
        log: (line) => io.err(line),
        shouldStop: sigint.interrupted,
      });
      if (r.stopped) {
        for (const s of r.stopped) io.err(`${s.label}: stopped at iteration ${s.iteration} (checkpoint in ${printable(s.dir)})\n`);
        io.err('loom compare: no tables written: run the same command again to resume\n');
        return 130;
      }
      if (r.missing?.length) io.err(`loom compare: not finished in ${printable(outDir)}, left out of the tables: ${r.missing.map((m) => printable(m)).join(', ')}\n`);
      io.out(markdownTable(r.rows, threshold));
      io.out(`${r.comparisons} comparison${r.comparisons === 1 ? '' : 's'} against the baseline, p-values Holm–Bonferroni adjusted\n`);
      io.out(`wrote ${r.files.markdown}, ${r.files.csv}, ${r.files.json}, ${r.files.svg}, ${r.files.profiles}\n`);
    } finally {
      sigint.release();
    }
    return 0;
  },
};
