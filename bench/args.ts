/** Command-line options of a benchmark script: `--help` prints the usage; a bad flag prints the problem and the usage, and exits 2. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function benchArgs<O extends NonNullable<ParseArgsConfig['options']>>(usage: string, options: O) {
  try {
    const parsed = parseArgs({ options: { ...options, help: { type: 'boolean' } }, strict: true });
    if ((parsed.values as Record<string, unknown>).help) {
      process.stdout.write(usage + '\n');
      process.exit(0);
    }
    return parsed.values;
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n${usage}\n`);
    process.exit(2);
  }
}
