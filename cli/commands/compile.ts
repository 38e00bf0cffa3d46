import { loadGraph } from '../../compiler/frontend/load.ts';
import { compileGraph, passNames, REQUIRED_PASSES } from '../../compiler/compile.ts';
import { irText, stagesText } from '../../compiler/inspect.ts';
import { LoomError } from '../../compiler/errors.ts';
import type { Command } from '../command.ts';

const EMITS = ['ir', 'opt', 'fused', 'ts'] as const;
type Emit = (typeof EMITS)[number];

export const compile: Command = {
  name: 'compile',
  summary: 'compile a graph and print a stage: ir (as written), opt (after passes), fused, ts (generated code)',
  usage: 'loom compile FILE [--emit ir|opt|fused|ts] [--disable-pass NAME]...',
  options: {
    emit: { type: 'string', description: 'stage to print (default opt)', valueName: 'STAGE' },
    'disable-pass': { type: 'string', multiple: true, description: `switch a pass off (${passNames().join(', ')})`, valueName: 'NAME' },
  },
  details: 'Examples:\n  loom compile graphs/examples/mlp-loss-grad.graph.json --emit opt\n  loom compile graphs/nets/mlp.graph.json --emit fused --disable-pass cse',
  async run(args, io) {
    const [file, ...extra] = args.positionals;
    if (!file || extra.length) throw new LoomError({ code: 'E_USAGE', message: 'loom compile takes exactly one FILE', hint: 'run `loom compile --help`' });
    const emit = (args.values.emit as string | undefined) ?? 'opt';
    if (!(EMITS as readonly string[]).includes(emit)) throw new LoomError({ code: 'E_USAGE', message: `unknown --emit stage "${emit}"`, expected: EMITS.join(' | '), found: emit });
    const disabled = new Set((args.values['disable-pass'] as string[] | undefined) ?? []);
    for (const d of disabled) {
      if (!passNames().includes(d)) throw new LoomError({ code: 'E_USAGE', message: `unknown pass "${d}"`, expected: passNames().join(' | '), found: d });
      if (REQUIRED_PASSES.has(d) && emit !== 'ir')
        throw new LoomError({ code: 'E_USAGE', message: `pass "${d}" cannot be disabled: later stages need its output`, hint: 'use --emit ir to see the graph before any pass' });
    }
    const g = loadGraph(file);
    if ((emit as Emit) === 'ir') {
      io.out(irText(g));
      return 0;
    }
    const { graph, stages } = compileGraph(g, { disabled });
    io.out(stagesText(stages) + '\n' + irText(graph));
    return 0;
  },
};
