/** Runs the `loom` CLI in-process and captures its output and exit code. */
import { main } from '../../cli/main.ts';
import type { Io } from '../../cli/command.ts';

export async function loom(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await main(argv, io);
  return { code, out, err };
}
