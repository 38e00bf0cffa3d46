/**
 * A worker process of the local sweep pool: it runs the jobs the pool sends over IPC, one at a
 * time, with `runJob`, and sends each result back. Stopping (the pool's message, or Ctrl-C, which
 * reaches every process of the terminal's group) ends the current run after its iteration, with a
 * checkpoint; the pool decides what happens next. Started by pool.ts only.
 */
import type { ErrorInfo } from '../../compiler/errors.ts';
import { isLoomError } from '../../compiler/errors.ts';
import { initBackend } from '../backend.ts';
import { runJob, type JobResult, type SweepJob } from './job.ts';

/** What the pool sends. */
export type ToWorker = { type: 'run'; job: SweepJob; outRoot: string; backend?: string; allow: string[] } | { type: 'stop' };
/** What a worker sends back. */
export type FromWorker = { type: 'result'; result: JobResult } | { type: 'error'; id: string; loom?: ErrorInfo; message: string };

let stop = false;
process.on('SIGINT', () => {
  stop = true;
});
// The pool is gone (it exited, or let this worker go): nothing more will come.
process.on('disconnect', () => process.exit(0));

const send = (m: FromWorker) => process.send!(m);

process.on('message', (m: ToWorker) => {
  if (m.type === 'stop') {
    stop = true;
    return;
  }
  void (async () => {
    try {
      // The pool chose and announced the backend; this only activates it here.
      await initBackend(m.backend, () => {});
      send({ type: 'result', result: await runJob(m.job, { outRoot: m.outRoot, backend: m.backend, allow: m.allow, shouldStop: () => stop }) });
    } catch (e) {
      send(isLoomError(e) ? { type: 'error', id: m.job.id, loom: e.info, message: e.message } : { type: 'error', id: m.job.id, message: (e as Error)?.stack ?? String(e) });
    }
  })();
});
