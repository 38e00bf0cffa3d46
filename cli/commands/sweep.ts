import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { LoomError } from '../../compiler/errors.ts';
import { printable } from '../../compiler/text.ts';
import type { SweepPlan } from '../../runtime/sweep/plan.ts';
import { ALLOW_PATH_OPTION, allowedRoots, BACKEND_OPTION, interruptible, numberFlag, type Command, type Io, type ParsedArgs } from '../command.ts';

export const sweep: Command = {
  name: 'sweep',
  summary: 'run a sweep file: a grid or random search over pipeline fields, over seeds, on a pool of local worker processes; ranks the configurations with 95% CIs and plots parameter sensitivity',
  usage: 'loom sweep SWEEP.json [--out DIR] [--workers N] [--backend B] [--allow-path DIR]... [--dry-run] [--queue URL [--results DIR] [--status]]',
  options: {
    out: { type: 'string', description: 'output folder (default runs/<sweep>): one run folder per configuration and seed, and sweep.md, sweep.csv, sweep.json, sensitivity.svg, curves.svg', valueName: 'DIR' },
    workers: { type: 'string', description: 'worker processes (default: one per core)', valueName: 'N' },
    backend: BACKEND_OPTION,
    'allow-path': ALLOW_PATH_OPTION,
    'dry-run': { type: 'boolean', description: 'print the planned runs and their overrides, and run nothing' },
    queue: { type: 'string', description: 'enqueue the runs on Redis (BullMQ) for `loom worker` processes instead of the local pool, wait, and write the report (password in the URL or LOOM_REDIS_PASSWORD)', valueName: 'redis://HOST:PORT[/DB]' },
    results: { type: 'string', description: 'with --queue: the shared folder the workers run into; without it, metrics rows come back through Redis', valueName: 'DIR' },
    status: { type: 'boolean', description: 'with --queue: print where the sweep stands (done, running, waiting, failed, retried; ETA) and exit' },
  },
  details:
    'The sweep file format is in docs/sweeps.md. Running the same command again skips finished runs and resumes\nstopped ones from their checkpoints; Ctrl-C stops every running run after its iteration, with a checkpoint.\n\nExample:\n  loom sweep graphs/sweeps/ppo-cartpole-lr-ent.json --workers 2 --out runs/lr-ent',
  async run(args, io) {
    if (args.positionals.length !== 1) throw new LoomError({ code: 'E_USAGE', message: 'loom sweep takes one SWEEP file', found: `${args.positionals.length} arguments`, hint: 'run `loom sweep --help`' });
    const file = args.positionals[0]!;
    const workers = numberFlag(args, 'workers', { integer: true, min: 1, max: 1024 });
    // Besides the --allow-path folders, the pipeline may read where the sweep file lives, as a
    // pipeline may read its own folder.
    const allow = [...allowedRoots(args), dirname(resolve(file))];
    const { loadSweep } = await import('../../runtime/sweep/plan.ts');
    const plan = loadSweep(file, { allow });
    if (args.values['dry-run']) {
      io.out(planText(plan));
      return 0;
    }
    const queue = args.values.queue as string | undefined;
    if (queue === undefined && (args.values.status || args.values.results !== undefined))
      throw new LoomError({ code: 'E_USAGE', message: `--${args.values.status ? 'status' : 'results'} needs --queue URL`, hint: 'run `loom sweep --help`' });
    // The executor: BullMQ workers anywhere, or the local pool of worker processes.
    return queue !== undefined ? runQueued(plan, queue, args, io) : runLocal(plan, args, io, { allow, workers });
  },
};

/** The plan as `--dry-run` prints it: the sweep, then each run with its overrides. */
function planText(plan: SweepPlan): string {
  const lines = [
    `sweep ${plan.sweep}: ${plan.configs.length} configuration${plan.configs.length === 1 ? '' : 's'} x ${plan.seeds.length} seed${plan.seeds.length === 1 ? '' : 's'} = ${plan.jobs.length} runs of ${plan.pipeline}${plan.steps !== undefined ? `, ${plan.steps} steps each` : ''}; ranked by ${plan.metric}`,
  ];
  for (const j of plan.jobs) lines.push(`  ${j.id}: ${[...j.overrides.map((o) => `--set ${o}`), `--seed ${j.seed}`, ...(j.steps !== undefined ? [`--steps ${j.steps}`] : [])].join(' ')}`);
  return lines.map(printable).join('\n') + '\n';
}

/** Enqueues the plan on Redis for `loom worker` processes, waits for every run, then writes the report. */
async function runQueued(plan: SweepPlan, url: string, args: ParsedArgs, io: Io): Promise<number> {
  const [{ parseQueueUrl, queueStatus, statusText, sweepOnQueue }, { writeReport, rankingTable }] = await Promise.all([import('../../runtime/sweep/queue.ts'), import('../../runtime/sweep/report.ts')]);
  const target = parseQueueUrl(url);
  if (args.values.status) {
    io.out(`sweep ${printable(plan.sweep)}: ${statusText(await queueStatus(target, plan.sweep))}\n`);
    return 0;
  }
  const outDir = (args.values.out as string | undefined) ?? `runs/${plan.sweep}`;
  const sigint = interruptible(io);
  let last = '';
  try {
    io.err(`loom sweep: ${plan.jobs.length} runs enqueued for loom worker --sweep ${printable(plan.sweep)}\n`);
    const results = await sweepOnQueue(target, plan.jobs, {
      resultsDir: args.values.results as string | undefined,
      shouldStop: sigint.interrupted,
      // A line when something changed, not one per look at the queue.
      onStatus: (st) => {
        const line = statusText(st);
        if (line !== last) io.err(`sweep ${printable(plan.sweep)}: ${line}\n`);
        last = line;
      },
    });
    if (results === null) {
      io.err('loom sweep: stopped waiting; the runs stay on the queue for the workers (loom sweep --status shows them)\n');
      return 130;
    }
    const { ranked, files } = await writeReport(plan, results, outDir);
    io.out(rankingTable(plan, ranked));
    io.out(`wrote ${files.markdown}, ${files.csv}, ${files.json}, ${files.sensitivity}, ${files.curves}\n`);
    return 0;
  } finally {
    sigint.release();
  }
}

/** Runs the plan on a pool of worker processes on this machine, then writes the report. */
async function runLocal(plan: SweepPlan, args: ParsedArgs, io: Io, o: { allow: string[]; workers?: number }): Promise<number> {
  const outDir = (args.values.out as string | undefined) ?? `runs/${plan.sweep}`;
  const [{ initBackend }, { ensureDir }, { checkJobFolder, jobConfig, jobDir }, { runPool }, { writeReport, rankingTable }, { finalReturn }, { formatDuration }] = await Promise.all([
    import('../../runtime/backend.ts'),
    import('../../runtime/fs.ts'),
    import('../../runtime/sweep/job.ts'),
    import('../../runtime/sweep/pool.ts'),
    import('../../runtime/sweep/report.ts'),
    import('../../runtime/compare.ts'),
    import('../../runtime/pipeline/progress.ts'),
  ]);
  ensureDir(outDir);
  // Every run folder is checked before the first run, not when its turn comes hours later.
  for (const j of plan.jobs) if (existsSync(jobDir(j, outDir))) checkJobFolder(j, jobDir(j, outDir), jobConfig(j, o.allow));
  const backend = await initBackend(args.values.backend as string | undefined, (m) => io.err(m + '\n'));
  const total = plan.jobs.length;
  const t0 = performance.now();
  let ran = 0;
  const sigint = interruptible(io);
  try {
    const n = Math.min(o.workers ?? availableParallelism(), total);
    io.err(`loom sweep: ${total} runs of ${plan.configs.length} configurations on ${n} worker process${n === 1 ? '' : 'es'}\n`);
    const r = await runPool(plan.jobs, {
      workers: o.workers,
      outRoot: outDir,
      backend: backend.name,
      allow: o.allow,
      shouldStop: sigint.interrupted,
      onResult: (job, res, c) => {
        const fr = finalReturn(res.metrics);
        const ret = fr === null ? '-' : fr.toFixed(1);
        let what: string;
        if (res.status === 'stopped') what = `stopped at iteration ${res.metrics.at(-1)?.iteration ?? 0}, with a checkpoint`;
        else if (res.status === 'skipped') what = `already finished, final return ${ret}`;
        else {
          ran++;
          what = `done in ${res.wallSec.toFixed(1)} s, final return ${ret}`;
        }
        // Runs per second so far, all workers together, over the runs not yet finished.
        const eta = ran > 0 && c.running + c.left > 0 ? `, ETA ${formatDuration(((performance.now() - t0) / 1000 / ran) * (c.running + c.left))}` : '';
        io.err(`[${c.done}/${total}] ${printable(job.id)}: ${what} (running ${c.running}, left ${c.left}${eta})\n`);
      },
    });
    if (r.stopped) {
      const done = total - r.unfinished.length;
      io.err(`loom sweep: stopped with ${done} of ${total} runs done and ${r.unfinished.length} left (stopped runs keep a checkpoint); no report written: run the same command again to resume\n`);
      return 130;
    }
    const { ranked, files } = await writeReport(plan, r.results, outDir);
    io.out(rankingTable(plan, ranked));
    io.out(`wrote ${files.markdown}, ${files.csv}, ${files.json}, ${files.sensitivity}, ${files.curves}\n`);
    return 0;
  } finally {
    sigint.release();
  }
}
