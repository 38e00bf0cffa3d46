/** Progress on stderr: a redrawn bar on a TTY, plain periodic lines otherwise (logs, CI). */
export interface ProgressInfo {
  iteration: number;
  iterations: number;
  globalStep: number;
  totalSteps: number;
  stepsPerSec: number;
  recentReturn: number | null;
}

export interface Progress {
  update(p: ProgressInfo): void;
  done(): void;
}

export function makeProgress(write: (s: string) => void, isTTY: boolean, lineEverySec = 10, now: () => number = Date.now): Progress {
  let last = -Infinity;
  const text = (p: ProgressInfo) =>
    `iter ${p.iteration}/${p.iterations}  steps ${p.globalStep}/${p.totalSteps}  ${Math.round(p.stepsPerSec)} steps/s  return ${p.recentReturn === null ? '-' : p.recentReturn.toFixed(1)}`;
  if (isTTY) {
    let drawn = false;
    return {
      update(p) {
        const w = 24;
        const fill = Math.round((w * p.globalStep) / Math.max(1, p.totalSteps));
        write(`\r[${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${text(p)}\x1b[K`);
        drawn = true;
      },
      done() {
        if (drawn) write('\n');
      },
    };
  }
  return {
    update(p) {
      const t = now();
      if (t - last < lineEverySec * 1000 && p.iteration !== p.iterations) return;
      last = t;
      write(text(p) + '\n');
    },
    done() {},
  };
}
