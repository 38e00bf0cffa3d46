import { LoomError } from '../../compiler/errors.ts';
import { printable } from '../../compiler/text.ts';
import { writeFileAtomic } from '../../runtime/fs.ts';
import { ALLOW_PATH_OPTION, allowedRoots, type Command } from '../command.ts';

export const exportCommand: Command = {
  name: 'export',
  summary: 'write the act graph of a trained policy with its params (and observation normalisation) baked in: a standalone graph for `loom run`',
  usage: 'loom export RUN_DIR|CHECKPOINT --out POLICY.graph.json [--pipeline FILE] [--checkpoint FILE] [--allow-path DIR]',
  options: {
    out: { type: 'string', description: 'the graph file to write (atomically)', valueName: 'FILE' },
    pipeline: { type: 'string', description: 'the pipeline (or program) file, for a checkpoint that does not record it or whose pipeline has moved', valueName: 'FILE' },
    checkpoint: { type: 'string', description: "program runs: export from this checkpoint file instead of RUN_DIR's latest, configured by RUN_DIR's run.json", valueName: 'FILE' },
    'allow-path': ALLOW_PATH_OPTION,
  },
  details:
    'The exported graph takes raw env observations (obs) and an RNG key (key, for the sampled action), and gives\nthe act graph\'s outputs: action, logp, value and action_mode (the deterministic action).\nA program run exports the act graph its program file names under "policy", with the state tensors it binds (docs/programs.md).\n\nExample:\n  loom export runs/cp --out policy.graph.json\n  loom run policy.graph.json --inputs obs.json\n  loom export runs/ppo-program --out ppo-policy.graph.json',
  async run(args, io) {
    const [target, ...extra] = args.positionals;
    if (!target || extra.length) throw new LoomError({ code: 'E_USAGE', message: 'loom export takes exactly one RUN_DIR or CHECKPOINT', hint: 'run `loom export --help`' });
    const out = args.values.out as string | undefined;
    if (!out) throw new LoomError({ code: 'E_USAGE', message: 'loom export needs --out FILE', hint: 'e.g. --out policy.graph.json' });
    const [{ exportPolicy, openPolicy }, { exportProgramPolicy, isProgramRun, openProgramRun }, { compactJson }] = await Promise.all([import('../../runtime/pipeline/policy.ts'), import('../../runtime/program/saved.ts'), import('../../runtime/tensor-json.ts')]);
    const pipeline = args.values.pipeline as string | undefined;
    const checkpoint = args.values.checkpoint as string | undefined;
    const program = isProgramRun(target);
    if (!program && checkpoint !== undefined) throw new LoomError({ code: 'E_USAGE', message: `--checkpoint applies to program runs; ${target} is a pipeline run`, hint: 'give the checkpoint file itself: loom export CHECKPOINT --out FILE' });
    const saved = program ? openProgramRun(target, { program: pipeline, checkpoint, allow: allowedRoots(args) }) : openPolicy(target, { pipeline, allow: allowedRoots(args) });
    const doc = 'graphs' in saved ? exportProgramPolicy(saved) : exportPolicy(saved);
    writeFileAtomic(out, compactJson(doc) + '\n');
    io.out(`wrote ${printable(out)}: graph ${printable(String(doc.graph))} from ${printable(saved.file)} (iteration ${saved.body.iteration})\n`);
    return 0;
  },
};
