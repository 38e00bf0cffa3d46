import { spawn } from 'node:child_process';
import { printable } from '../../compiler/text.ts';
import { LoomError } from '../../compiler/errors.ts';
import { packagePath } from '../../compiler/package-root.ts';
import { outputPath } from '../../runtime/fs.ts';
import type { QueueTarget } from '../../runtime/sweep/queue.ts';
import { ALLOW_PATH_OPTION, allowedRoots, BACKEND_OPTION, interruptible, numberFlag, type Command, type Io, type ParsedArgs } from '../command.ts';

export const worker: Command = {
  name: 'worker',
  summary: 'take the runs of a sweep from a Redis queue (loom sweep --queue) and train them, on this machine',
  usage: 'loom worker --queue redis://[USER:PASSWORD@]HOST:PORT[/DB] --sweep NAME [--concurrency N] [--results DIR] [--backend B] [--lock-sec S]',
  options: {
    queue: { type: 'string', description: 'the Redis server of the sweep (rediss:// for TLS; the password may instead be in LOOM_REDIS_PASSWORD)', valueName: 'URL' },
    sweep: { type: 'string', description: 'the sweep whose runs to take: its sweep file\'s "sweep" field', valueName: 'NAME' },
    concurrency: { type: 'string', description: 'runs at a time, each in its own process (default 1)', valueName: 'N' },
    results: { type: 'string', description: 'write runs into this shared folder (the same folder as the sweep\'s --results); default: runs/worker on this machine, with results sent back through Redis', valueName: 'DIR' },
    backend: BACKEND_OPTION,
    'lock-sec': { type: 'string', description: 'seconds without a sign of life after which this worker\'s run goes to another worker (default 30; must exceed the longest training iteration)', valueName: 'S' },
    'allow-path': ALLOW_PATH_OPTION,
  },
  details:
    'Runs until Ctrl-C (or SIGTERM): the current run stops at a checkpoint and goes back to the queue.\nA run whose worker dies is taken by another worker after --lock-sec; it resumes from its checkpoint when --results is a shared folder, and starts over otherwise.\n\nExample:\n  LOOM_REDIS_PASSWORD=... loom worker --queue redis://10.0.0.5:6379 --sweep lr-grid --concurrency 2',
  async run(args, io) {
    if (args.positionals.length) throw new LoomError({ code: 'E_USAGE', message: 'loom worker takes no positional arguments', found: args.positionals.join(' '), hint: 'run `loom worker --help`' });
    const url = args.values.queue as string | undefined;
    const sweep = args.values.sweep as string | undefined;
    if (url === undefined) throw new LoomError({ code: 'E_USAGE', message: 'loom worker needs --queue URL', hint: 'e.g. loom worker --queue redis://HOST:6379 --sweep NAME' });
    if (sweep === undefined || sweep === '') throw new LoomError({ code: 'E_USAGE', message: 'loom worker needs --sweep NAME (the sweep file\'s "sweep" field)', hint: 'e.g. loom worker --queue redis://HOST:6379 --sweep NAME' });
    const concurrency = numberFlag(args, 'concurrency', { integer: true, min: 1, max: 256 }) ?? 1;
    const lockSec = numberFlag(args, 'lock-sec', { min: 1, max: 3600 });
    const allow = allowedRoots(args);
    const results = args.values.results as string | undefined;
    const { parseQueueUrl, startWorker } = await import('../../runtime/sweep/queue.ts');
    const target = parseQueueUrl(url);
    if (concurrency > 1) {
      return spawnWorkers(concurrency, args, target, io);
    }
    const w = await startWorker(target, { sweep, outRoot: results ?? outputPath('runs', 'worker'), shared: results !== undefined, backend: args.values.backend as string | undefined, allow, lockSec, log: io.err });
    // Once the worker runs: a failed start leaves no handler behind.
    const sigint = interruptible(io);
    io.err(`loom worker: taking runs of sweep ${printable(sweep)} from ${target.display}\n`);
    let onTerm = () => {};
    const stop = new Promise<void>((resolve) => {
      const poll = setInterval(() => sigint.interrupted() && onTerm(), 200);
      onTerm = () => {
        clearInterval(poll);
        resolve();
      };
      process.once('SIGTERM', onTerm);
    });
    try {
      await stop;
      await w.close();
    } finally {
      process.off('SIGTERM', onTerm);
      sigint.release();
    }
    io.err('loom worker: stopped\n');
    return 0;
  },
};

/**
 * `--concurrency N`: N worker processes, each running one job at a time. tfjs runs one program at
 * a time per process, so parallel runs need processes; a run that crashes takes only its own down.
 * The password goes to them in the environment, never on a command line other users can read.
 * They have their own process group, so a Ctrl-C on the terminal reaches them once, through here
 * (a second Ctrl-C would abort them without handing their runs back).
 */
async function spawnWorkers(n: number, args: ParsedArgs, t: QueueTarget, io: Io): Promise<number> {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  const user = t.username !== undefined ? `${encodeURIComponent(t.username)}@` : '';
  const url = `${t.tls ? 'rediss' : 'redis'}://${user}${host}:${t.port}/${t.db}`;
  const pass: string[] = [];
  for (const k of ['sweep', 'results', 'backend', 'lock-sec'] as const) if (args.values[k] !== undefined) pass.push(`--${k}`, String(args.values[k]));
  for (const d of (args.values['allow-path'] as string[] | undefined) ?? []) pass.push('--allow-path', d);
  const env = { ...process.env, ...(t.password !== undefined ? { LOOM_REDIS_PASSWORD: t.password } : {}) };
  const children = Array.from({ length: n }, () => spawn(process.execPath, [packagePath('bin', 'loom.js'), 'worker', '--queue', url, ...pass], { env, stdio: ['ignore', 'inherit', 'inherit'], detached: true }));
  const forward = (sig: NodeJS.Signals) => () => children.forEach((c) => c.exitCode === null && c.kill(sig));
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  io.err(`loom worker: ${n} worker processes on ${t.display}\n`);
  try {
    // A child that cannot start counts as failed; it emits 'error' and maybe no 'exit'.
    const codes = await Promise.all(children.map((c) => new Promise<number>((resolve) => (c.once('exit', (code) => resolve(code ?? 1)), c.once('error', () => resolve(1))))));
    return Math.max(...codes);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    // Their own process group would outlive this one: none is left running.
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  }
}
