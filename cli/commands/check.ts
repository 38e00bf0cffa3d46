import { loadGraph } from '../../compiler/frontend/load.ts';
import { isLoomError } from '../../compiler/errors.ts';
import { signature } from '../../compiler/inspect.ts';
import type { Command } from '../command.ts';

export const check: Command = {
  name: 'check',
  summary: 'validate graph files and print their inferred signatures',
  usage: 'loom check FILE...',
  options: {
    quiet: { type: 'boolean', short: 'q', description: 'print only errors' },
  },
  details: 'Example:\n  loom check graphs/nets/mlp.graph.json\n\nExit code 1 if any file has an error; every file is checked.',
  async run(args, io) {
    if (args.positionals.length === 0) {
      io.err('error[E_USAGE]: loom check needs at least one FILE\n  hint:     run `loom check --help`\n');
      return 2;
    }
    let failed = 0;
    for (const file of args.positionals) {
      try {
        const g = loadGraph(file);
        if (!args.values.quiet) io.out(`${file}: ok\n${signature(g)}\n`);
      } catch (e) {
        if (!isLoomError(e)) throw e;
        io.err(e.message + '\n');
        failed++;
      }
    }
    return failed ? 1 : 0;
  },
};
