/**
 * Progress on stderr: a cli-progress bar redrawn in place on a TTY, plain periodic lines otherwise
 * (logs, CI, pipes). Both show elapsed time, the ETA, env steps/s over the last few seconds (not
 * since the start, which would count compilation and warm-up) and the recent return. The clock
 * and the stream are injected, so tests drive it with a fake clock and a fake TTY.
 */
import cliProgress from 'cli-progress';
import { printable } from '../../compiler/text.ts';

export interface ProgressInfo {
  iteration: number;
  iterations: number;
  globalStep: number;
  totalSteps: number;
  /** Mean return of the last (up to) 20 finished episodes; null before the first one. */
  recentReturn: number | null;
}

/** Where progress goes: stderr in the CLI. A TTY gets the redrawn bar, anything else lines. */
export interface ProgressStream {
  write(text: string): void;
  isTTY?: boolean;
  /** Terminal width; the bar line is cut to fit so a redraw never wraps. */
  columns?: number;
}

export interface ProgressOptions {
  /** Milliseconds (Date.now by default; a fake clock in tests). */
  now?: () => number;
  /** Seconds between lines when not a TTY (the last iteration always gets one). */
  lineEverySec?: number;
  /** Seconds of recent iterations over which steps/s, and so the ETA, are measured. */
  windowSec?: number;
  /** Prefix of the line, e.g. compare's "ppo-cartpole seed 2" (escaped here: it comes from a file). */
  label?: string;
}

export interface Progress {
  /** What runs before the first iteration ("compiling 7 graphs"), so a slow start is not silent. */
  stage(text: string): void;
  update(p: ProgressInfo): void;
  /** Leaves the last state on screen and ends the line. */
  done(): void;
}

/**
 * Steps per second over a sliding window of (time, steps) samples. The first sample is the end
 * of the first iteration the meter sees, so that iteration (compilation, warm-up) never counts;
 * older samples leave the window, keeping one that starts it so a slow iteration still has a rate.
 */
export class RecentRate {
  private samples: { t: number; steps: number }[] = [];
  constructor(private readonly windowMs: number) {}

  add(t: number, steps: number): void {
    this.samples.push({ t, steps });
    while (this.samples.length > 2 && t - this.samples[1]!.t >= this.windowMs) this.samples.shift();
  }

  /** Null until two samples some time apart. */
  perSec(): number | null {
    const a = this.samples[0];
    const b = this.samples[this.samples.length - 1];
    if (!a || !b || b.t <= a.t) return null;
    return ((b.steps - a.steps) * 1000) / (b.t - a.t);
  }
}

/** "45s", "3m05s", "2h07m": short and fixed in form, for a line that is redrawn. */
export function formatDuration(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The numbers one line shows, from the run's state and the meter's clock. */
export interface ProgressView extends ProgressInfo {
  elapsedSec: number;
  stepsPerSec: number | null;
  etaSec: number | null;
}

function fields(v: ProgressView): string {
  const sps = v.stepsPerSec === null ? '-' : String(Math.round(v.stepsPerSec));
  const ret = v.recentReturn === null ? '-' : v.recentReturn.toFixed(1);
  return `${sps} steps/s  return ${ret}  elapsed ${formatDuration(v.elapsedSec)}  eta ${v.etaSec === null ? '-' : formatDuration(v.etaSec)}`;
}

/** A line of the log form; the bar drops the iteration and step counts, which the bar shows. */
export function progressText(v: ProgressView): string {
  return `iter ${v.iteration}/${v.iterations}  steps ${v.globalStep}/${v.totalSteps}  ${fields(v)}`;
}

export function makeProgress(stream: ProgressStream, opts: ProgressOptions = {}): Progress {
  const now = opts.now ?? Date.now;
  const start = now();
  const rate = new RecentRate((opts.windowSec ?? 10) * 1000);
  const prefix = opts.label === undefined ? '' : `${printable(opts.label)}: `;
  const view = (p: ProgressInfo): ProgressView => {
    const t = now();
    rate.add(t, p.globalStep);
    const sps = rate.perSec();
    return { ...p, elapsedSec: (t - start) / 1000, stepsPerSec: sps, etaSec: sps ? Math.max(0, p.totalSteps - p.globalStep) / sps : null };
  };
  const stage = (text: string) => stream.write(`${prefix}${text}…\n`);
  return stream.isTTY ? ttyProgress(stream, now, view, prefix, stage) : lineProgress(stream, now, view, prefix, stage, (opts.lineEverySec ?? 10) * 1000);
}

function lineProgress(stream: ProgressStream, now: () => number, view: (p: ProgressInfo) => ProgressView, prefix: string, stage: (t: string) => void, everyMs: number): Progress {
  let last = -Infinity;
  return {
    stage,
    update(p) {
      // Every update feeds the rate window, printed or not.
      const v = view(p);
      const t = now();
      if (t - last < everyMs && p.iteration !== p.iterations) return;
      last = t;
      stream.write(`${prefix}${progressText(v)}\n`);
    },
    done() {},
  };
}

// One redraw per 100 ms at most: a fast pipeline finishes an iteration every few milliseconds.
const REDRAW_MS = 100;

function ttyProgress(stream: ProgressStream, now: () => number, view: (p: ProgressInfo) => ProgressView, prefix: string, stage: (t: string) => void): Progress {
  const width = Math.max(20, (stream.columns ?? 80) - 1);
  // cli-progress writes through this adapter. Its start and stop save and restore the cursor
  // (ESC 7 / ESC 8): restoring would jump back above any line printed while the bar ran (the
  // Ctrl-C notice), so those two are dropped. Everything else (column 1, erase to end) passes.
  const out = {
    isTTY: true,
    columns: width + 1,
    write(text: string, cb?: () => void): boolean {
      const t = text.replace(/\x1b[78]/g, '');
      if (t) stream.write(t);
      cb?.();
      return true;
    },
  };
  const bar = new cliProgress.SingleBar({
    stream: out as unknown as NodeJS.WritableStream,
    barsize: 16,
    hideCursor: false,
    // true: cut to the width instead of switching the terminal's line wrapping off and back on
    // (a killed run would leave it off).
    linewrap: true,
    gracefulExit: false,
    // update() never redraws on cli-progress's wall clock: this meter decides, on its own clock
    // (cli-progress's timer still draws a skipped state when the event loop is idle).
    synchronousUpdate: false,
    format: (options, params, payload: { text?: string }) =>
      `${prefix}${cliProgress.Format.BarFormat(params.progress, options)} ${Math.floor(params.progress * 100)}%  ${payload.text ?? ''}`.slice(0, width),
  });
  let started = false;
  let lastDraw = -Infinity;
  return {
    stage,
    update(p) {
      const v = view(p);
      const payload = { text: fields(v) };
      if (!started) {
        bar.start(p.totalSteps, p.globalStep, payload);
        started = true;
        lastDraw = now();
        return;
      }
      bar.update(p.globalStep, payload);
      const t = now();
      if (t - lastDraw < REDRAW_MS && p.iteration !== p.iterations) return;
      lastDraw = t;
      bar.render();
    },
    done() {
      if (started) bar.stop();
      started = false;
    },
  };
}
