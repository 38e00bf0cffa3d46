import { allOps } from '../../compiler/ops/index.ts';
import type { Command } from '../command.ts';

export const ops: Command = {
  name: 'ops',
  summary: 'list the ops of the registry with their inputs, attributes, fusion class, and whether they have a gradient and a host kernel',
  usage: 'loom ops [--family NAME]',
  options: { family: { type: 'string', description: 'only ops of this family (elementwise, reduce, shape, ...)' } },
  async run(args, io) {
    const fam = args.values.family as string | undefined;
    for (const o of allOps()) {
      if (fam && o.family !== fam) continue;
      const ins = o.inputs.join(', ') + (o.variadic ? ', ...' : '');
      const attrs = Object.keys(o.attrs.properties);
      io.out(`${o.name.padEnd(22)} (${ins})${attrs.length ? ` {${attrs.join(', ')}}` : ''}  [${o.family}, ${o.fusion}${o.grad ? ', grad' : ''}${o.host ? ', host' : ''}]\n    ${o.doc}\n`);
    }
    return 0;
  },
};
