import { compileGraph, passNames, REQUIRED_PASSES } from '../../compiler/compile.ts';
import { LoomError } from '../../compiler/errors.ts';
import { ALLOW_PATH_OPTION, allowedRoots, dimFlags, type Command } from '../command.ts';

const EMITS = ['ir', 'opt', 'fused', 'ts', 'wgsl', 'wat'] as const;
type Emit = (typeof EMITS)[number];

export const compile: Command = {
  name: 'compile',
  summary: 'compile a graph and print a stage: ir (as written), opt (after passes), fused, ts, wgsl or wat (generated code)',
  usage: 'loom compile FILE [--emit ir|opt|fused|ts|wgsl|wat] [--disable-pass NAME]... [--dim NAME=N]... [--product-epilogue]',
  options: {
    emit: { type: 'string', description: 'stage to print (default opt)', valueName: 'STAGE' },
    'disable-pass': { type: 'string', multiple: true, description: `switch a pass off (${passNames().join(', ')})`, valueName: 'NAME' },
    dim: { type: 'string', multiple: true, description: 'bind a symbolic dim for --emit ts/wgsl/wat (default 8 for unbound dims)', valueName: 'NAME=N' },
    'product-epilogue': { type: 'boolean', description: 'for --emit ts/wgsl/wat: lower as on wasm, where the product applies a following bias add and tanh' },
    'allow-path': ALLOW_PATH_OPTION,
  },
  details:
    'Stages: ir = the graph as loaded; opt = after every pass but fusion; fused = after fusion and liveness, with the\nbody of each fused kernel; ts = the generated TypeScript of each fused kernel at concrete sizes; wgsl = the WGSL\ncompute shaders of each fused kernel (one per output) at concrete sizes; wat = the WebAssembly text module of the\nkernels the wasm backend runs as WebAssembly SIMD (the others say why they stay JavaScript).\n\nExamples:\n  loom compile graphs/examples/mlp-loss-grad.graph.json --emit fused\n  loom compile graphs/algorithms/ppo-cartpole.loss.graph.json --emit ts --dim B=128\n  loom compile graphs/algorithms/ppo-cartpole.loss.graph.json --emit wgsl --dim B=128\n  loom compile graphs/programs/ppo-cartpole/update-step.graph.json --emit wat --dim MB=128 --dim B=512 --product-epilogue\n  loom compile graphs/nets/mlp.graph.json --emit ts --product-epilogue\n  loom compile graphs/nets/mlp.graph.json --emit opt --disable-pass cse',
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
    const { loadGraph } = await import('../../compiler/frontend/load.ts');
    const { irText, kernelsText, stagesText, watText } = await import('../../compiler/inspect.ts');
    const { symbolsOf } = await import('../../compiler/dims.ts');
    const g = loadGraph(file, { roots: allowedRoots(args) });
    if ((emit as Emit) === 'ir') {
      io.out(irText(g));
      return 0;
    }
    const passes = emit === 'opt' ? new Set([...disabled, 'fusion', 'liveness']) : disabled;
    const { graph, stages } = compileGraph(g, { disabled: passes });
    if (emit === 'ts' || emit === 'wgsl' || emit === 'wat') {
      const env = dimFlags(args, 'dim');
      const unbound = [...new Set(g.inputs.flatMap((i) => i.type.shape.flatMap(symbolsOf)))].filter((s) => !env.has(s));
      for (const s of unbound) env.set(s, 8);
      const header = unbound.length ? `// unbound dims set to 8: ${unbound.join(', ')} (use --dim NAME=N)\n` : '';
      const lowering = { productEpilogue: args.values['product-epilogue'] === true };
      if (emit === 'wat') {
        io.out(header.replace(/^\/\//, ';;') + watText(graph, env, lowering));
        return 0;
      }
      const target = emit === 'wgsl' ? (await import('../../compiler/codegen/wgsl.ts')).wgslTarget : undefined;
      io.out(header + kernelsText(graph, env, target, lowering));
      return 0;
    }
    io.out(stagesText(stages) + '\n' + irText(graph));
    return 0;
  },
};
