import { LoomError } from '../../compiler/errors.ts';
import { printable } from '../../compiler/text.ts';
import { ALLOW_PATH_OPTION, allowedRoots, BACKEND_OPTION, formatScalars, numberFlag, type Command } from '../command.ts';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'evaluate a trained policy (a run folder or a checkpoint) over episodes; deterministic actions by default',
  usage: 'loom eval RUN_DIR|CHECKPOINT [--episodes N] [--deterministic | --stochastic] [--seed N] [--pipeline FILE] [--checkpoint FILE] [--backend B] [--allow-path DIR]',
  options: {
    episodes: { type: 'string', description: "episodes to play (default: the pipeline's eval.episodes, or 10 when that is 0)", valueName: 'N' },
    deterministic: { type: 'boolean', description: "act with the act graph's action_mode: argmax / Gaussian mean (the default, as in Stable-Baselines3, unless the pipeline sets eval.deterministic false)" },
    stochastic: { type: 'boolean', description: 'sample actions as during training' },
    seed: { type: 'string', description: "seed of the evaluation episodes (default: the run's seed, so the result matches the run's final evaluation)", valueName: 'N' },
    pipeline: { type: 'string', description: 'the pipeline (or program) file, for a checkpoint that does not record it or whose pipeline has moved', valueName: 'FILE' },
    checkpoint: { type: 'string', description: "program runs: evaluate this checkpoint file instead of RUN_DIR's latest, configured by RUN_DIR's run.json", valueName: 'FILE' },
    backend: BACKEND_OPTION,
    'allow-path': ALLOW_PATH_OPTION,
  },
  details:
    'RUN_DIR is a `loom train --out` folder (its checkpoint.json); RUN_DIR/best is the best policy kept with eval.every.\nThe pipeline is configured as the run was: its --set overrides (from RUN_DIR/run.json), its env and its seed.\nObservation normalisation statistics are frozen as saved.\nA program run (docs/programs.md) runs its program\'s evaluate graph on the checkpoint\'s state and prints its outputs;\n--episodes feeds the graph\'s input episodes, --seed the evaluation key, and the graph decides how the policy acts.\nA run of several seeds has one folder per seed: give RUN_DIR/seed-<s>.\n\nExamples:\n  loom eval runs/cp --episodes 20\n  loom eval runs/cp/best --stochastic --seed 7\n  loom eval runs/ppo-program\n  loom eval runs/ppo-k8/seed-3 --seed 11',
  async run(args, io) {
    const [target, ...extra] = args.positionals;
    if (!target || extra.length) throw new LoomError({ code: 'E_USAGE', message: 'loom eval takes exactly one RUN_DIR or CHECKPOINT', hint: 'run `loom eval --help`' });
    if (args.values.deterministic && args.values.stochastic) throw new LoomError({ code: 'E_USAGE', message: '--deterministic and --stochastic exclude each other', hint: "the default is the pipeline's eval.deterministic (true unless it says otherwise)" });
    const episodesFlag = numberFlag(args, 'episodes', { integer: true, min: 1, max: 100000 });
    const seedFlag = numberFlag(args, 'seed', { integer: true, min: 0, max: 2 ** 31 - 1 });
    // tfjs and the driver take seconds to load: only once the flags are known to be good.
    const [{ initBackend }, { evaluatePolicyAsync, openPolicy }, { isProgramRun, evaluateProgramRun, openProgramRun }] = await Promise.all([import('../../runtime/backend.ts'), import('../../runtime/pipeline/policy.ts'), import('../../runtime/program/saved.ts')]);
    const allow = allowedRoots(args);
    const checkpoint = args.values.checkpoint as string | undefined;
    if (isProgramRun(target)) {
      if (args.values.deterministic || args.values.stochastic)
        throw new LoomError({ code: 'E_USAGE', message: `--${args.values.deterministic ? 'deterministic' : 'stochastic'} applies to pipelines: ${target} is a program run, whose evaluate graph decides how the policy acts`, hint: 'leave the flag out' });
      const run = openProgramRun(target, { program: args.values.pipeline as string | undefined, checkpoint, allow });
      await initBackend(args.values.backend as string | undefined);
      const e = await evaluateProgramRun(run, { ...(episodesFlag !== undefined ? { episodes: episodesFlag } : {}), ...(seedFlag !== undefined ? { seed: seedFlag } : {}) });
      const b = run.body;
      io.out(`${printable(run.file)}: pipeline ${printable(run.cfg.program)}, iteration ${b.iteration} (${b.global_step} env steps)\n`);
      io.out(`evaluation: evaluate graph ${printable(e.graph)}, seed ${e.seed}${e.episodes === null ? '' : `, episodes ${e.episodes}`}\n`);
      io.out(`${formatScalars(e.outputs)}\n`);
      return 0;
    }
    if (checkpoint !== undefined) throw new LoomError({ code: 'E_USAGE', message: `--checkpoint applies to program runs; ${target} is a pipeline run`, hint: 'give the checkpoint file itself: loom eval CHECKPOINT' });
    const policy = openPolicy(target, { pipeline: args.values.pipeline as string | undefined, allow });
    const episodes = episodesFlag ?? (policy.cfg.eval.episodes || 10);
    const seed = seedFlag ?? policy.cfg.seed;
    const deterministic = args.values.stochastic ? false : args.values.deterministic ? true : policy.cfg.eval.deterministic;
    await initBackend(args.values.backend as string | undefined);
    if (policy.cfg.env.host !== undefined) await (await import('../../runtime/host-env/host-env.ts')).loadHostEnv(policy.cfg.env.host, policy.cfg.file);
    const returns = await evaluatePolicyAsync(policy, { episodes, seed, deterministic });
    const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
    const std = Math.sqrt(returns.reduce((a, b) => a + (b - mean) ** 2, 0) / returns.length);
    const b = policy.body;
    io.out(`${printable(policy.file)}: pipeline ${printable(policy.cfg.pipeline)}, iteration ${b.iteration} (${b.global_step} env steps)\n`);
    io.out(`evaluation: ${returns.length} episodes, ${deterministic ? 'deterministic' : 'stochastic'}, seed ${seed}\n`);
    io.out(`mean return ${mean.toFixed(2)} (std ${std.toFixed(2)}, min ${Math.min(...returns).toFixed(2)}, max ${Math.max(...returns).toFixed(2)})\n`);
    return 0;
  },
};
