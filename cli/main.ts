/** `loom`: dispatches to subcommands; turns user errors into one clear message and exit code 1. */
import { isLoomError } from '../compiler/errors.ts';
import { packageVersion } from '../compiler/package-root.ts';
import { printable, printableBlock } from '../compiler/text.ts';
import { helpText, parseCommandArgs, type Command, type Io } from './command.ts';
import { check } from './commands/check.ts';
import { run } from './commands/run.ts';
import { ops } from './commands/ops.ts';
import { experts } from './commands/experts.ts';
import { compile } from './commands/compile.ts';
import { train } from './commands/train.ts';
import { compare } from './commands/compare.ts';
import { sweep } from './commands/sweep.ts';
import { simulate } from './commands/simulate.ts';
import { calibrate } from './commands/calibrate.ts';
import { diff } from './commands/diff.ts';
import { evalCommand } from './commands/eval.ts';
import { exportCommand } from './commands/export.ts';
import { worker } from './commands/worker.ts';

export const COMMANDS: Command[] = [check, compile, diff, run, train, evalCommand, exportCommand, compare, sweep, worker, ops, experts, simulate, calibrate];

const stdio: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  live: (t) => process.stderr.write(t),
};

/**
 * The sink every command writes through. Names from files are escaped where they are printed;
 * this is the backstop for any path that was missed: no control character other than a line
 * break or a tab reaches the terminal, except on the `live` progress channel.
 */
export function escapingIo(io: Io): Io {
  const raw = io.live ?? io.err;
  return { out: (t) => io.out(printableBlock(t)), err: (t) => io.err(printableBlock(t)), live: (t) => raw(t) };
}

function mainHelp(): string {
  const lines = ['usage: loom COMMAND [options]', '', 'Commands:'];
  for (const c of COMMANDS) lines.push(`  ${c.name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `loom COMMAND --help` for the options of a command; `loom --version` prints the version.');
  return lines.join('\n') + '\n';
}

export async function main(argv: string[], rawIo: Io = stdio): Promise<number> {
  const io = escapingIo(rawIo);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    io.out(`${packageVersion()}\n`);
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    io.err(`error[E_USAGE]: unknown command "${printable(name)}"\n  expected: one of ${COMMANDS.map((c) => c.name).join(', ')}\n`);
    return 2;
  }
  try {
    const parsed = parseCommandArgs(cmd, rest);
    if (parsed === 'help') {
      io.out(helpText(cmd));
      return 0;
    }
    return await cmd.run(parsed, io);
  } catch (e) {
    if (isLoomError(e)) {
      io.err(e.message + '\n');
      return e.code === 'E_USAGE' ? 2 : 1;
    }
    io.err(`internal error (a bug in loom, please report it):\n${(e as Error).stack ?? String(e)}\n`);
    return 70;
  }
}
