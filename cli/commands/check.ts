import { isLoomError } from '../../compiler/errors.ts';
import { printable } from '../../compiler/text.ts';
import { ALLOW_PATH_OPTION, allowedRoots, setFlags, SET_OPTION, type Command } from '../command.ts';

export const check: Command = {
  name: 'check',
  summary: 'validate graph and pipeline files and print their inferred signatures',
  usage: 'loom check FILE... [--set PATH=VALUE]...',
  options: {
    quiet: { type: 'boolean', short: 'q', description: 'print only errors' },
    'allow-path': ALLOW_PATH_OPTION,
    set: { ...SET_OPTION, description: 'override a field of every pipeline checked, e.g. --set update.epochs=10 (repeatable)' },
  },
  details:
    'A pipeline file (one with a "pipeline" or "extends" key) is checked with every graph it names; a program pipeline (one with a "program" key) with its init, iteration and evaluate graphs and the contract between them.\n\nExample:\n  loom check graphs/nets/mlp.graph.json graphs/pipelines/amppo-cartpole.json\n\nExit code 1 if any file has an error; every file is checked.',
  async run(args, io) {
    const { loadGraph } = await import('../../compiler/frontend/load.ts');
    const { signature } = await import('../../compiler/inspect.ts');
    const { isPipelineFile, loadPipeline, loadPipelineGraphs, parseOverride, pipelineGraphsByRole } = await import('../../runtime/pipeline/config.ts');
    const { isProgramFile, loadProgram, loadProgramGraphs } = await import('../../runtime/program/config.ts');
    if (args.positionals.length === 0) {
      io.err('error[E_USAGE]: loom check needs at least one FILE\n  hint:     run `loom check --help`\n');
      return 2;
    }
    const roots = allowedRoots(args);
    const overrides = setFlags(args).map(parseOverride);
    let failed = 0;
    for (const file of args.positionals) {
      try {
        if (isProgramFile(file)) {
          const cfg = loadProgram(file, { allow: roots, overrides });
          const g = loadProgramGraphs(cfg, overrides);
          if (!args.values.quiet) io.out(`${printable(file)}: ok (program ${printable(cfg.program)}, ${Object.keys(g.state).length} state tensors, metrics ${g.metrics.map(printable).join(', ')})\n`);
        } else if (isPipelineFile(file)) {
          const cfg = loadPipeline(file, { allow: roots, overrides });
          const graphs = loadPipelineGraphs(cfg);
          if (!args.values.quiet) io.out(`${printable(file)}: ok (pipeline ${printable(cfg.pipeline)}, ${cfg.algorithm}, ${pipelineGraphsByRole(graphs).size} graphs)\n`);
        } else {
          const g = loadGraph(file, { roots });
          if (!args.values.quiet) io.out(`${printable(file)}: ok\n${signature(g)}\n`);
        }
      } catch (e) {
        if (!isLoomError(e)) throw e;
        io.err(e.message + '\n');
        failed++;
      }
    }
    return failed ? 1 : 0;
  },
};

