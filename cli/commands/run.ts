import type { IRGraph } from '../../compiler/ir.ts';
import { LoomError } from '../../compiler/errors.ts';
import { writeFileAtomic } from '../../runtime/fs.ts';
import { ALLOW_PATH_OPTION, allowedRoots, BACKEND_OPTION, numberFlag, type Command } from '../command.ts';

export const run: Command = {
  name: 'run',
  summary: 'evaluate a graph with the reference interpreter and print its outputs as JSON',
  usage: 'loom run FILE [--inputs IN.json] [--seed N] [--out OUT.json] [--backend B]',
  options: {
    inputs: { type: 'string', description: 'JSON object {inputName: nested array}', valueName: 'IN.json' },
    seed: { type: 'string', description: 'seed for param initialisation and for RNG-key inputs left out (default 0)', valueName: 'N' },
    out: { type: 'string', description: 'write the outputs here (atomically) instead of stdout', valueName: 'OUT.json' },
    backend: BACKEND_OPTION,
    'allow-path': ALLOW_PATH_OPTION,
  },
  details:
    'Inputs of type int32[2] that --inputs leaves out are RNG keys derived from --seed.\n\nExample:\n  loom run graphs/examples/affine.graph.json --inputs graphs/examples/affine.inputs.json --seed 1',
  async run(args, io) {
    const [file, ...extra] = args.positionals;
    if (!file || extra.length) throw new LoomError({ code: 'E_USAGE', message: 'loom run takes exactly one FILE', hint: 'run `loom run --help`' });
    const seed = numberFlag(args, 'seed', { integer: true, min: 0, max: 2 ** 31 - 1 }) ?? 0;
    const { loadGraph } = await import('../../compiler/frontend/load.ts');
    const { parseJsonText, readUntrusted } = await import('../../compiler/frontend/files.ts');
    const { initBackend } = await import('../../runtime/backend.ts');
    const { compactJson } = await import('../../runtime/tensor-json.ts');
    const g = loadGraph(file, { roots: allowedRoots(args) });
    let json: unknown = {};
    const inFile = args.values.inputs as string | undefined;
    if (inFile !== undefined) {
      json = parseJsonText(readUntrusted(inFile, { what: 'inputs file' }), inFile);
    }
    await initBackend(args.values.backend as string | undefined);
    const outputs = await runOnce(g, json, inFile ?? '(no --inputs)', seed);
    const text = compactJson(outputs) + '\n';
    const out = args.values.out as string | undefined;
    if (out) writeFileAtomic(out, text);
    else io.out(text);
    return 0;
  },
};

/** One evaluation; every tensor it makes is released before it returns. */
export async function runOnce(g: IRGraph, inputsJson: unknown, inputsFile: string, seed: number): Promise<Record<string, unknown>> {
  const { tf } = await import('../../runtime/backend.ts');
  const { initParams, interpret } = await import('../../runtime/interpreter.ts');
  const { inputsFromJson, tensorToJson } = await import('../../runtime/tensor-json.ts');
  const inputs = inputsFromJson(g, inputsJson, inputsFile, seed);
  const params = initParams(g, seed);
  try {
    const outs = interpret(g, inputs, params);
    const json: Record<string, unknown> = {};
    for (const [k, t] of Object.entries(outs)) {
      json[k] = tensorToJson(t, await t.array());
      t.dispose();
    }
    return json;
  } finally {
    tf.dispose([...Object.values(inputs), ...Object.values(params)]);
  }
}
