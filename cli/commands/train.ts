import { LoomError } from '../../compiler/errors.ts';
import { outputPath } from '../../runtime/fs.ts';
import { makeProgress, type ProgressInfo } from '../../runtime/pipeline/progress.ts';
import { ALLOW_PATH_OPTION, allowedRoots, BACKEND_OPTION, formatScalars, interruptible, invocation, numberFlag, progressStream, setFlags, SET_OPTION, type Command, type Io, type ParsedArgs } from '../command.ts';

export const train: Command = {
  name: 'train',
  summary: 'run a training pipeline (PPO and its variants) or a program pipeline with progress, metrics, checkpoints and a final evaluation',
  usage: 'loom train PIPELINE.json [--set PATH=VALUE]... [--env E] [--seed N] [--steps N] [--out DIR] [--backend B] [--executor X] [--max-iterations N] [--seeds K | --seed-list S,S,...] [--seeds-mode M] [--resume] [--force]',
  options: {
    set: SET_OPTION,
    env: { type: 'string', description: "override the env: a Gymnasium id (CartPole-v1, Acrobot-v1, Pendulum-v1, MountainCarContinuous-v0, HalfCheetah-v4, Hopper-v4) or a name under graphs/envs; a shipped agent that does not fit it is swapped for the env's", valueName: 'E' },
    seed: { type: 'string', description: 'override the pipeline seed', valueName: 'N' },
    steps: { type: 'string', description: 'override total_steps (env steps over all envs)', valueName: 'N' },
    out: { type: 'string', description: 'output folder for metrics.jsonl, metrics.csv, TensorBoard event files, learning-curve.svg, checkpoint.json (default runs/<pipeline>-s<seed>)', valueName: 'DIR' },
    backend: BACKEND_OPTION,
    executor: { type: 'string', description: 'program pipelines: compiled (default) | interpret (the reference interpreter; also LOOM_EXECUTOR, which pipelines read)', valueName: 'X' },
    'max-iterations': { type: 'string', description: 'stop (with a checkpoint) after N iterations of this invocation; --resume continues', valueName: 'N' },
    seeds: { type: 'string', description: 'program pipelines: run K seeds (the pipeline\'s seed, or --seed, and the next K - 1) in one vmapped program, each into DIR/seed-<s>', valueName: 'K' },
    'seed-list': { type: 'string', description: 'program pipelines: the seeds to run, as --seeds does, e.g. 1,5,9', valueName: 'S,S,...' },
    'seeds-mode': { type: 'string', description: 'with --seeds: vmap (default: one program for all seeds) | loop (one seed after another, the reference)', valueName: 'M' },
    resume: { type: 'boolean', description: 'continue from DIR/checkpoint.json (bit-identical on the same backend); refused when the configuration differs from DIR/run.json' },
    force: { type: 'boolean', description: 'start over in a DIR that holds a finished run or a checkpoint, or --resume with a different configuration' },
    'allow-path': ALLOW_PATH_OPTION,
  },
  details:
    'A file whose top-level key is "program" is a program pipeline (docs/programs.md): its iteration graph runs until the env steps it reports reach total_steps.\nCtrl-C saves a checkpoint at the end of the current iteration and exits; --resume continues from it.\nDIR/run.json records the resolved pipeline, the flags, loom\'s version and commit, the backend and the status.\n\nExamples:\n  loom train graphs/pipelines/ppo-cartpole.json --steps 50000 --out runs/cp\n  loom train graphs/examples/linear-regression/program.json --set hyper.lr=0.1 --out runs/lr\n  loom train graphs/examples/linear-regression/program.json --seeds 4 --out runs/lr4',
  async run(args, io) {
    const [file, ...extra] = args.positionals;
    if (!file || extra.length) throw new LoomError({ code: 'E_USAGE', message: 'loom train takes exactly one PIPELINE file', hint: 'run `loom train --help`' });
    const env = args.values.env as string | undefined;
    // Flags first: a bad flag is reported before any work starts.
    const seed = numberFlag(args, 'seed', { integer: true, min: 0, max: 2 ** 31 - 1 });
    const steps = numberFlag(args, 'steps', { integer: true, min: 1 });
    const maxIterations = numberFlag(args, 'max-iterations', { integer: true, min: 0 });
    const executor = args.values.executor as string | undefined;
    if (executor !== undefined && executor !== 'compiled' && executor !== 'interpret')
      throw new LoomError({ code: 'E_USAGE', message: `unknown --executor "${executor}"`, expected: 'compiled | interpret', found: executor });
    const allow = allowedRoots(args);
    const { isProgramFile, MAX_SEEDS } = await import('../../runtime/program/config.ts');
    const seeds = seedsFlags(args, MAX_SEEDS);
    if (isProgramFile(file)) return trainProgramCommand(file, { seed, steps, maxIterations, executor, allow, seeds }, args, io);
    if (seeds !== undefined)
      throw new LoomError({ code: 'E_USAGE', message: `--${args.values.seeds !== undefined ? 'seeds' : 'seed-list'} applies to program pipelines`, hint: 'for a pipeline, run several seeds with `loom sweep` (or one `loom train --seed N` each)' });
    if (executor !== undefined)
      throw new LoomError({ code: 'E_USAGE', message: '--executor applies to program pipelines', hint: 'for a pipeline, set LOOM_EXECUTOR=interpret (or compiled) in the environment' });
    const progress = makeProgress(progressStream(io));
    progress.stage('loading pipeline');
    const { loadPipeline, parseOverride, withEnv } = await import('../../runtime/pipeline/config.ts');
    const overrides = setFlags(args).map(parseOverride);
    const loaded = loadPipeline(file, { allow, overrides });
    const cfg = env === undefined ? loaded : withEnv(loaded, env, io.err);
    if (seed !== undefined) cfg.seed = seed;
    if (steps !== undefined) cfg.total_steps = steps;
    const outDir = (args.values.out as string | undefined) ?? outputPath('runs', `${cfg.pipeline}-s${cfg.seed}`);
    // tfjs and the driver take seconds to load, so they are loaded after the first line is out.
    const [{ initBackend }, { trainAsync }] = await Promise.all([import('../../runtime/backend.ts'), import('../../runtime/pipeline/driver.ts')]);
    const backend = await initBackend(args.values.backend as string | undefined);
    const sigint = interruptible(io);
    try {
      const r = await trainAsync(cfg, { outDir, ...(maxIterations !== undefined ? { maxIterations } : {}), resume: Boolean(args.values.resume), force: Boolean(args.values.force), overrides: overrides.map((o) => o.text), invocation: invocation('train', args), shouldStop: sigint.interrupted, onProgress: (p) => progress.update(p), onStage: (t) => progress.stage(t), backend: backend.name, log: io.err });
      progress.done();
      Object.values(r.params).forEach((t) => t.dispose());
      io.out(`${r.stopped ? 'stopped' : 'finished'} at iteration ${r.iterations} (${r.globalStep} env steps); checkpoint ${r.checkpoint}\n`);
      const last = r.lastEpisodes;
      if (last.length) io.out(`mean return over the last ${last.length} training episodes: ${(last.reduce((s, x) => s + x, 0) / last.length).toFixed(2)}\n`);
      if (r.eval) io.out(`evaluation: ${r.eval.episodes} episodes, mean return ${r.eval.meanReturn?.toFixed(2) ?? '-'}\n`);
      io.out(`metrics: ${outDir}/metrics.jsonl, ${outDir}/metrics.csv, ${outDir}/learning-curve.svg; run record: ${outDir}/run.json\n`);
      if (cfg.logging.tensorboard) io.out(`tensorboard: tensorboard --logdir ${outDir}\n`);
      return sigint.interrupted() ? 130 : 0;
    } finally {
      // Also on an error: the bar's redraw timer would keep the process alive.
      progress.done();
      sigint.release();
    }
  },
};

/** --seeds K, --seed-list and --seeds-mode: undefined for a single-seed run. */
function seedsFlags(args: ParsedArgs, maxSeeds: number): { count?: number; list?: number[]; mode: 'vmap' | 'loop' } | undefined {
  const count = numberFlag(args, 'seeds', { integer: true, min: 1, max: maxSeeds });
  const raw = args.values['seed-list'] as string | undefined;
  const mode = args.values['seeds-mode'] as string | undefined;
  if (count !== undefined && raw !== undefined) throw new LoomError({ code: 'E_USAGE', message: '--seeds and --seed-list both choose the seeds; give one', hint: '--seed S --seeds K runs S, S+1, ..., S+K-1' });
  if (mode !== undefined && mode !== 'vmap' && mode !== 'loop') throw new LoomError({ code: 'E_USAGE', message: `unknown --seeds-mode "${mode}"`, expected: 'vmap | loop', found: mode });
  if (count === undefined && raw === undefined) {
    if (mode !== undefined) throw new LoomError({ code: 'E_USAGE', message: '--seeds-mode applies to runs of several seeds', hint: 'add --seeds K or --seed-list S,S,...' });
    return undefined;
  }
  if (raw === undefined) return { count, mode: mode ?? 'vmap' };
  const parts = raw.split(',').map((p) => p.trim());
  if (!parts.every((p) => /^\d{1,10}$/.test(p))) throw new LoomError({ code: 'E_USAGE', message: '--seed-list takes seeds (integers from 0) separated by commas', found: raw, hint: 'e.g. --seed-list 1,5,9' });
  if (parts.length > maxSeeds) throw new LoomError({ code: 'E_USAGE', message: `--seed-list: at most ${maxSeeds} seeds run together`, found: `${parts.length} seeds` });
  return { list: parts.map(Number), mode: mode ?? 'vmap' };
}

/** `loom train` on a program pipeline: the same flags, run by the program driver. */
async function trainProgramCommand(
  file: string,
  f: { seed?: number; steps?: number; maxIterations?: number; executor?: 'compiled' | 'interpret'; allow: string[]; seeds?: ReturnType<typeof seedsFlags> },
  args: ParsedArgs,
  io: Io,
): Promise<number> {
  if (args.values.env !== undefined)
    throw new LoomError({ code: 'E_USAGE', message: '--env applies to pipelines; a program pipeline names its env in its graphs', file, hint: 'point the program\'s graphs at another env, or --set hyper.NAME=VALUE' });
  const progress = makeProgress(progressStream(io));
  progress.stage('loading program pipeline');
  const { loadProgram } = await import('../../runtime/program/config.ts');
  const { parseOverride } = await import('../../runtime/pipeline/config.ts');
  const overrides = setFlags(args).map(parseOverride);
  const cfg = loadProgram(file, { allow: f.allow, overrides });
  if (f.seed !== undefined) cfg.seed = f.seed;
  if (f.steps !== undefined) cfg.total_steps = f.steps;
  const seeds = f.seeds === undefined ? undefined : (f.seeds.list ?? Array.from({ length: f.seeds.count! }, (_v, k) => cfg.seed + k));
  const outDir = (args.values.out as string | undefined) ?? outputPath('runs', seeds ? `${cfg.program}-k${seeds.length}-s${seeds[0]}` : `${cfg.program}-s${cfg.seed}`);
  const [{ initBackend }, { trainProgram, trainProgramSeeds }] = await Promise.all([import('../../runtime/backend.ts'), import('../../runtime/program/driver.ts')]);
  const backend = await initBackend(args.values.backend as string | undefined);
  const sigint = interruptible(io);
  try {
    const opts = {
      outDir,
      resume: Boolean(args.values.resume),
      force: Boolean(args.values.force),
      ...(f.maxIterations !== undefined ? { maxIterations: f.maxIterations } : {}),
      ...(f.executor !== undefined ? { executor: f.executor } : {}),
      overrides: overrides.map((o) => o.text),
      invocation: invocation('train', args),
      shouldStop: sigint.interrupted,
      onProgress: (p: ProgressInfo) => progress.update(p),
      onStage: (t: string) => progress.stage(t),
      backend: backend.name,
      log: io.err,
    };
    const runs = seeds ? await trainProgramSeeds(cfg, { ...opts, seeds, mode: f.seeds!.mode }) : [{ ...(await trainProgram(cfg, opts)), seed: cfg.seed, outDir }];
    progress.done();
    for (const r of runs) Object.values(r.state).forEach((t) => t.dispose());
    const show = formatScalars;
    for (const r of runs) {
      // One seed's lines carry no prefix, as before; several seeds' lines name theirs.
      const p = seeds ? `seed ${r.seed}: ` : '';
      io.out(`${p}${r.stopped ? 'stopped' : 'finished'} at iteration ${r.iterations} (${r.globalStep} env steps); checkpoint ${r.checkpoint}\n`);
      const last = r.metrics.at(-1);
      if (last) io.out(`${p}last logged metrics: ${show(Object.fromEntries(Object.entries(last).filter(([k]) => k !== 'iteration' && k !== 'global_step' && k !== 'steps_per_sec')))}\n`);
      if (r.eval) io.out(`${p}evaluation: ${show(r.eval)}\n`);
      // The learning curve plots episodic_return: a program that logs none has no curve.
      const curve = r.metrics.length && 'episodic_return' in r.metrics[0]! ? `, ${r.outDir}/learning-curve.svg` : '';
      io.out(`${p}metrics: ${r.outDir}/metrics.jsonl, ${r.outDir}/metrics.csv${curve}; run record: ${r.outDir}/run.json\n`);
    }
    if (cfg.logging.tensorboard !== false) io.out(`tensorboard: tensorboard --logdir ${outDir}\n`);
    return sigint.interrupted() ? 130 : 0;
  } finally {
    progress.done();
    sigint.release();
  }
}
