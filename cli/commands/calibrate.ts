/**
 * `loom calibrate`: measures this machine on the active tfjs backend and writes a hardware
 * profile (schemas/profile.schema.json) for `loom simulate --profile FILE` and
 * `loom experts --profile FILE`.
 */
import { LoomError } from '../../compiler/errors.ts';
import { prepareOutputFile, writeFileAtomic } from '../../runtime/fs.ts';
import type { Command } from '../command.ts';

export const calibrate: Command = {
  name: 'calibrate',
  summary: 'Measure this machine (matmul throughput, bandwidth, dispatch overhead) and write a hardware profile.',
  usage: 'loom calibrate [--out FILE] [--backend tensorflow|webgpu|wasm|cpu] [--quick]',
  options: {
    out: { type: 'string', valueName: 'FILE', description: 'write the profile to FILE (default: print it)' },
    backend: { type: 'string', valueName: 'B', description: 'tfjs backend to measure (default: the usual resolution order)' },
    quick: { type: 'boolean', description: 'fewer sizes and repeats (a rough profile in about a second)' },
  },
  details: `Measures, with medians of repeated timed batches after a warm-up:
  peakFlops.float32   best float32 matmul rate over n x n products, n in 64..512 (2 n^3 flops each)
  memoryBandwidth     best rate of x + y over 256K..4M elements (12 bytes per element)
  kernelOverhead      time of a one-element add (no work: the fixed cost of one kernel)
  moe.w1, moe.w2      from the overhead: one kernel costs overhead * peak/2 multiply-accumulates;
                      w1 = 10 kernels per expert, w2 = 1 kernel per expert pair (see docs/moe.md)

Examples:
  loom calibrate --out profiles/local.json
  loom simulate graphs/moe/sectional.graph.json --profile profiles/local.json --batch 8`,
  async run(args, io) {
    if (args.positionals.length) throw new LoomError({ code: 'E_USAGE', message: `unexpected argument "${args.positionals[0]}"`, hint: 'run `loom calibrate --help`' });
    const out = args.values.out;
    if (typeof out === 'string') prepareOutputFile(out);
    const { initBackend } = await import('../../runtime/backend.ts');
    const { calibrate: measure } = await import('../../runtime/calibrate.ts');
    await initBackend(args.values.backend as string | undefined, (m) => io.err(m + '\n'));
    const profile = await measure({ quick: args.values.quick === true, log: (m) => io.err(m + '\n') });
    const text = JSON.stringify(profile, null, 2) + '\n';
    if (typeof out === 'string') {
      writeFileAtomic(out, text);
      io.out(`wrote ${out}\n`);
    } else io.out(text);
    return 0;
  },
};
