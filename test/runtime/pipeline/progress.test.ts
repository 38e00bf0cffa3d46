/**
 * The progress meter, driven by a fake clock: recent steps/s (warm-up excluded, a sliding window),
 * the ETA, the line format without a TTY, and the cli-progress bar redrawn in place on a fake TTY.
 */
import { describe, expect, it } from 'vitest';
import { formatDuration, makeProgress, RecentRate, type ProgressInfo } from '../../../runtime/pipeline/progress.ts';

/** A run of `iterations` iterations of `per` env steps each. */
const info = (iteration: number, iterations = 100, per = 1000, recentReturn: number | null = 12.5): ProgressInfo => ({
  iteration,
  iterations,
  globalStep: iteration * per,
  totalSteps: iterations * per,
  recentReturn,
});

function capture(tty?: { columns: number }) {
  const writes: string[] = [];
  return { writes, stream: { write: (s: string) => void writes.push(s), isTTY: tty !== undefined, columns: tty?.columns } };
}

describe('RecentRate', () => {
  it('is unknown after one sample and measures from the end of the first iteration, not from the start', () => {
    const r = new RecentRate(10_000);
    // The first iteration took 5 s (compilation); each later one 100 ms for 1000 steps.
    r.add(5000, 1000);
    expect(r.perSec()).toBeNull();
    r.add(5100, 2000);
    expect(r.perSec()).toBe(10_000);
    r.add(5200, 3000);
    expect(r.perSec()).toBe(10_000);
  });

  it('forgets samples older than the window', () => {
    const r = new RecentRate(10_000);
    // 20 s at 1000 steps/s, then 10 s at 3000 steps/s: since the start that averages 1667.
    let steps = 0;
    for (let t = 1; t <= 20; t++) r.add(t * 1000, (steps += 1000));
    for (let t = 21; t <= 30; t++) r.add(t * 1000, (steps += 3000));
    expect(r.perSec()).toBe(3000);
  });

  it('keeps the last interval when one iteration is longer than the window', () => {
    const r = new RecentRate(10_000);
    r.add(0, 0);
    r.add(30_000, 3000);
    r.add(90_000, 9000);
    expect(r.perSec()).toBe(100);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [59.4, '59s'],
    [65, '1m05s'],
    [3599, '59m59s'],
    [7620, '2h07m'],
  ])('%d s is %s', (s, text) => expect(formatDuration(s)).toBe(text));
});

describe('progress without a TTY', () => {
  it('prints one line per interval and the last iteration, with recent steps/s, the ETA and elapsed time', () => {
    let t = 0;
    const { writes, stream } = capture();
    const p = makeProgress(stream, { now: () => t, lineEverySec: 10, windowSec: 3 });
    p.stage('compiling 7 graphs');
    t = 5000; // compilation and the first iteration
    p.update(info(1, 200));
    // 1000 steps per iteration: 100 ms each (10000 steps/s) up to 12 s, then 50 ms each (20000 steps/s).
    for (let i = 2; i <= 200; i++) {
      t += i <= 71 ? 100 : 50;
      p.update(info(i, 200, 1000, i === 200 ? null : 12.5));
    }
    p.done();
    expect(writes).toEqual([
      'compiling 7 graphs…\n',
      'iter 1/200  steps 1000/200000  - steps/s  return 12.5  elapsed 5s  eta -\n',
      // 10 s later. The last 3 s ran at 20000 steps/s (since the start: 131000 / 15 s = 8733;
      // between the two lines: 13000), so 69000 steps to go take 3.45 s.
      'iter 131/200  steps 131000/200000  20000 steps/s  return 12.5  elapsed 15s  eta 3s\n',
      'iter 200/200  steps 200000/200000  20000 steps/s  return -  elapsed 18s  eta 0s\n',
    ]);
  });

  it('escapes the label, which comes from a pipeline file', () => {
    const { writes, stream } = capture();
    makeProgress(stream, { now: () => 0, label: 'evil\x1b[2J\r seed 1' }).update(info(1, 1));
    expect(writes).toEqual(['evil\\x1b[2J\\r seed 1: iter 1/1  steps 1000/1000  - steps/s  return 12.5  elapsed 0s  eta -\n']);
  });
});

describe('progress on a TTY', () => {
  it('draws a cli-progress bar redrawn in place (column 1, erase to the end), at most every 100 ms', () => {
    let t = 0;
    const { writes, stream } = capture({ columns: 80 });
    const p = makeProgress(stream, { now: () => t });
    p.stage('compiling 7 graphs');
    t = 5000;
    p.update(info(1, 10));
    t = 5100;
    p.update(info(2, 10));
    const drawn = writes.length;
    t = 5150; // too soon: drawn by the next redraw, here the last one
    p.update(info(3, 10));
    expect(writes.length).toBe(drawn);
    p.done();
    const all = writes.join('');
    expect(all.startsWith('compiling 7 graphs…\n')).toBe(true);
    expect(all.slice('compiling 7 graphs…\n'.length).split('\x1b[1G')).toEqual([
      '',
      '==-------------- 10%  - steps/s  return 12.5  elapsed 5s  eta -\x1b[0K',
      '===------------- 20%  10000 steps/s  return 12.5  elapsed 5s  eta 1s\x1b[0K',
      '=====----------- 30%  13333 steps/s  return 12.5  elapsed 5s  eta 1s\x1b[0K\n',
    ]);
    // No cursor save/restore, no carriage return: one line, ended once at the end.
    expect(all).not.toMatch(/\x1b[78]|\r/);
  });

  it('cuts the line to the terminal width, so a redraw never wraps', () => {
    const { writes, stream } = capture({ columns: 40 });
    const p = makeProgress(stream, { now: () => 0, label: 'ppo-cartpole seed 1' });
    p.update(info(1, 10));
    p.done();
    expect(writes.join('')).toBe('\x1b[1Gppo-cartpole seed 1: ==-------------- 1\x1b[0K\n');
  });

  it('ends the line only if a bar was drawn', () => {
    const { writes, stream } = capture({ columns: 80 });
    makeProgress(stream, { now: () => 0 }).done();
    expect(writes).toEqual([]);
  });
});
