import { LoomError } from '../../compiler/errors.ts';
import { suggest } from '../../compiler/frontend/schema.ts';
import { allOps } from '../../compiler/ops/index.ts';
import type { Command } from '../command.ts';

export const ops: Command = {
  name: 'ops',
  summary: 'list the ops of the registry with their inputs, attributes, fusion class, and whether they have a gradient and a host kernel',
  usage: 'loom ops [--family NAME]',
  options: { family: { type: 'string', description: 'only ops of this family (elementwise, reduce, shape, ...)' } },
  async run(args, io) {
    const fam = args.values.family as string | undefined;
    const families = [...new Set(allOps().map((o) => o.family))].sort();
    if (fam !== undefined && !families.includes(fam)) {
      const s = suggest(fam, families);
      throw new LoomError({ code: 'E_USAGE', message: `unknown op family "${fam}"`, expected: `one of ${families.join(', ')}`, found: fam, hint: s ? `did you mean "${s}"?` : 'run `loom ops` to list every op' });
    }
    for (const o of allOps()) {
      if (fam !== undefined && o.family !== fam) continue;
      const ins = o.inputs.join(', ') + (o.variadic ? ', ...' : '');
      const attrs = Object.keys(o.attrs.properties);
      io.out(`${o.name.padEnd(22)} (${ins})${attrs.length ? ` {${attrs.join(', ')}}` : ''}  [${o.family}, ${o.fusion}${o.grad ? ', grad' : ''}${o.host ? ', host' : ''}]\n    ${o.doc}\n`);
    }
    return 0;
  },
};
