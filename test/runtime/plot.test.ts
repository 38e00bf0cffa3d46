import { Resvg } from '@resvg/resvg-js';
import { describe, expect, it } from 'vitest';
import { compareTitle, curvesSvg, summarise, type SeedRun } from '../../runtime/compare.ts';
import { rollingReturns, type IterationMetrics } from '../../runtime/pipeline/metrics.ts';
import { bandedCurvesSpec, costCurveSpec, learningCurveSpec, OKABE_ITO, renderSvg, SERIES_COLORS } from '../../runtime/plot.ts';
import { findAll, marks, parseSvg, pathPoints, texts, translate, type SvgNode } from '../helpers/svg.ts';

const row = (iteration: number, ret: number | null, episodes: number): IterationMetrics => ({
  iteration, global_step: iteration * 1000, lr: 0, episodic_return: ret, episodic_length: ret, episodes,
  loss: 0, pg_loss: 0, v_loss: 0, entropy: 0, approx_kl: 0, clipfrac: 0, grad_norm: 0, grad_clip_frac: 0, explained_variance: 0, steps_per_sec: 0,
});

/** The reference: every row expanded into its episodes, then the mean of the last `window`. */
function rollingByEpisodes(rows: readonly IterationMetrics[], window: number): (number | null)[] {
  const eps: number[] = [];
  return rows.map((r) => {
    if (r.episodic_return !== null) for (let k = 0; k < Math.max(1, r.episodes); k++) eps.push(r.episodic_return);
    const last = eps.slice(-window);
    return last.length ? last.reduce((a, b) => a + b, 0) / last.length : null;
  });
}

/** A deterministic pseudo-random sequence. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

/** Value of a y pixel, from the y axis's tick marks and labels (vega writes U+2212 for minus). */
function yAxis(svg: SvgNode): (py: number) => number {
  const axis = findAll(svg, (n) => n.attrs.class === 'mark-group role-axis' && marks(n, 'rule', 'role-axis-tick').flat().some((t) => t.attrs.y2 === '0'))[0]!;
  const ticks = marks(axis, 'rule', 'role-axis-tick').flat().map((t) => translate(t)[1]);
  const values = texts(axis, 'role-axis-label').map((t) => Number(t.replace('\u2212', '-')));
  expect(ticks.length).toBe(values.length);
  const [p0, p1, v0, v1] = [ticks[0]!, ticks[ticks.length - 1]!, values[0]!, values[values.length - 1]!];
  // Tick marks sit half a pixel off the plot's grid (crisp lines).
  return (py: number) => v0 + ((py + 0.5 - p0) * (v1 - v0)) / (p1 - p0);
}

describe('rollingReturns', () => {
  it('is the mean of the last W episodes, rows counting as their episodes at their mean (checked against expanding them)', () => {
    const rnd = lcg(7);
    const rows = Array.from({ length: 300 }, (_, i) => {
      const episodes = Math.floor(rnd() * 6);
      return row(i + 1, episodes === 0 ? null : Math.round(rnd() * 500), episodes);
    });
    for (const w of [1, 3, 20]) {
      const got = rollingReturns(rows, w);
      const want = rollingByEpisodes(rows, w);
      expect(got.map((g) => g === null)).toEqual(want.map((x) => x === null));
      got.forEach((g, i) => expect(g ?? 0).toBeCloseTo(want[i] ?? 0, 9));
    }
  });

  it('by hand: a row of 3 episodes, then one of 2, window 4', () => {
    // [10, 10, 10], then [40, 40]: the window holds 10, 10, 40, 40.
    expect(rollingReturns([row(1, null, 0), row(2, 10, 3), row(3, 40, 2), row(4, null, 0)], 4)).toEqual([null, 10, 25, 25]);
  });
});

describe('learning curve', () => {
  const rnd = lcg(3);
  const points = Array.from({ length: 100 }, (_, i) => ({ step: (i + 1) * 2048, raw: 400 * (1 - Math.exp(-i / 30)) + rnd() * 100, smooth: 400 * (1 - Math.exp(-i / 30)) }));

  it('draws the rolling mean over the faint raw curve, states the window, and labels ticks 100k', async () => {
    const svg = parseSvg(await renderSvg(learningCurveSpec({ title: 'ppo (CartPole-v1, seed 1)', points, window: 20 })));
    const lines = marks(svg, 'line').flat();
    expect(lines).toHaveLength(2);
    // The raw curve first (underneath), faint; the rolling mean on top, opaque; both Okabe–Ito.
    expect(lines.map((l) => l.attrs.stroke)).toEqual(['#56B4E9', '#0072B2']);
    expect(Number(lines[0]!.attrs.opacity)).toBeLessThan(0.7);
    expect(Number(lines[1]!.attrs.opacity)).toBe(1);
    for (const l of lines) expect(OKABE_ITO).toContain(l.attrs.stroke);
    // One vertex per point, and the rolling mean's values are the ones plotted.
    const y = yAxis(svg);
    const smooth = pathPoints(lines[1]!.attrs.d!);
    expect(smooth).toHaveLength(100);
    smooth.forEach(([, py], i) => expect(Math.abs(y(py) - points[i]!.smooth)).toBeLessThan(1.5));
    expect(texts(svg, 'role-legend-label')).toEqual(['rolling mean over the last 20 episodes', 'mean return per iteration']);
    expect(texts(svg, 'role-title-text')).toEqual(['ppo (CartPole-v1, seed 1)']);
    const labels = texts(svg, 'role-axis-label');
    expect(labels).toContain('100k');
    expect(labels).toContain('200k');
    // Each label carries its own prefix: the origin reads 0, not 0k.
    expect(labels).toContain('0');
    expect(labels).not.toContain('0k');
    expect(labels.filter((l) => /\d{4}/.test(l))).toEqual([]);
  });

  it('reads 1M at a million steps and drops non-finite points', async () => {
    const pts = [{ step: 0, raw: 1, smooth: 1 }, { step: 5e5, raw: NaN, smooth: 2 }, { step: 1e6, raw: 3, smooth: Infinity }, { step: 1.2e6, raw: 4, smooth: 4 }];
    const text = await renderSvg(learningCurveSpec({ title: 't', points: pts, window: 5 }));
    const svg = parseSvg(text);
    expect(texts(svg, 'role-axis-label')).toContain('1M');
    expect(marks(svg, 'line').flat().map((l) => pathPoints(l.attrs.d!).length)).toEqual([2, 2]);
    expect(text).not.toMatch(/NaN|Infinity/);
  });

  it('is deterministic', async () => {
    const spec = learningCurveSpec({ title: 't', points, window: 20 });
    expect(await renderSvg(spec)).toBe(await renderSvg(structuredClone(spec)));
  });
});

describe('compare curves', () => {
  // Two seeds, one episode an iteration, different returns: their rolling means differ at every step.
  const rnd = lcg(11);
  const seedRows = [1, 2].map((s) => Array.from({ length: 40 }, (_, i) => row(i + 1, i === 0 ? null : Math.round(rnd() * 100 * s), i === 0 ? 0 : 1)));
  const runs: SeedRun[] = seedRows.map((metrics, i) => ({ seed: i + 1, metrics, wallSec: 1, envSteps: 40000 }));

  it('bands are the 95% CI clipped to the seeds\' range: with 2 seeds, exactly their min and max', () => {
    const s = summarise('p', runs, null);
    const [a, b] = seedRows.map((r) => rollingByEpisodes(r, 20));
    expect(s.curve).toHaveLength(39);
    for (const p of s.curve) {
      const i = p.step / 1000 - 1;
      const [u, v] = [a![i]!, b![i]!];
      expect(p.mean).toBeCloseTo((u + v) / 2, 9);
      // t(0.975, 1) = 12.706 stretches the interval far past both seeds; the band stops at them.
      expect(p.lo).toBeCloseTo(Math.min(u, v), 9);
      expect(p.hi).toBeCloseTo(Math.max(u, v), 9);
      expect(p.raw).toBeCloseTo((seedRows[0]![i]!.episodic_return! + seedRows[1]![i]!.episodic_return!) / 2, 9);
    }
  });

  it('draws one band, one faint and one solid line per pipeline, in palette order, within the data range', async () => {
    const rows = [summarise('ppo', runs, null), summarise('amppo', runs.map((r) => ({ ...r, metrics: r.metrics.map((m) => ({ ...m, episodic_return: m.episodic_return === null ? null : m.episodic_return + 300 })) })), null)];
    const svg = parseSvg(await curvesSvg(rows, 'CartPole-v1: 2 seeds, 40000 steps'));
    const areas = marks(svg, 'area').map((g) => g[0]!);
    const lines = marks(svg, 'line').map((g) => g[0]!);
    expect(areas).toHaveLength(2);
    expect(lines).toHaveLength(4);
    expect(areas.map((a) => a.attrs.fill)).toEqual(SERIES_COLORS.slice(0, 2));
    expect(lines.map((l) => l.attrs.stroke)).toEqual([...SERIES_COLORS.slice(0, 2), ...SERIES_COLORS.slice(0, 2)]);
    for (const c of SERIES_COLORS) expect(OKABE_ITO).toContain(c);
    // Each band goes along lo and back along hi, at the plotted values (to within a pixel).
    const y = yAxis(svg);
    areas.forEach((a, k) => {
      const v = pathPoints(a.attrs.d!).map(([, py]) => y(py));
      const c = rows[k]!.curve;
      expect(v).toHaveLength(2 * c.length);
      c.forEach((p, i) => {
        expect(Math.abs(v[i]! - p.lo)).toBeLessThan(1.5);
        expect(Math.abs(v[v.length - 1 - i]! - p.hi)).toBeLessThan(1.5);
      });
    });
    // No seed went below 0, so neither does the axis (an unclipped t band would).
    expect(texts(svg, 'role-axis-label').filter((t) => t.startsWith('\u2212') || t.startsWith('-'))).toEqual([]);
    expect(texts(svg, 'role-legend-label')).toEqual(['ppo (2 seeds)', 'amppo (2 seeds)']);
    expect(texts(svg, 'role-title-subtitle').join(' ')).toMatch(/rolling mean over the last 20 episodes.*95% CI, clipped to the seeds' range/);
  });

  it('the title names every environment and budget', () => {
    const p = (name: string, total_steps: number) => ({ env: { name }, total_steps });
    expect(compareTitle([p('CartPole-v1', 1000), p('Acrobot-v1', 1000), p('CartPole-v1', 1000)], 3)).toBe('CartPole-v1, Acrobot-v1: 3 seeds, 1000 steps');
    expect(compareTitle([p('Pendulum-v1', 1000), p('Pendulum-v1', 2000)], 1)).toBe('Pendulum-v1: 1 seeds, 1000, 2000 steps');
  });

  it('escapes names: markup and ampersands are text, not elements', async () => {
    const name = 'a <script>alert(1)</script> & "b"';
    const text = await renderSvg(bandedCurvesSpec({ title: `${name} title`, subtitle: ['s'], yTitle: 'y', series: [{ name, points: [{ step: 0, mean: 1, lo: 0, hi: 2, raw: 1 }, { step: 1, mean: 2, lo: 1, hi: 3, raw: 2 }] }] }));
    expect(text).not.toContain('<script');
    expect(text).toContain('&lt;script&gt;');
    const svg = parseSvg(text);
    expect(findAll(svg, (n) => n.name === 'script')).toEqual([]);
    expect(texts(svg, 'role-legend-label')).toEqual([name]);
    expect(texts(svg, 'role-title-text')).toEqual([`${name} title`]);
  });
});

describe('cost curve', () => {
  // A convex J over divisors of 768 with its minimum at E = 12.
  const Es = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 768];
  const J = (E: number) => 1e9 / E + 7e6 * E;
  const spec = costCurveSpec({ title: 'J(E)', xTitle: 'E', yTitle: 'J', points: Es.map((E) => ({ x: E, y: J(E) })), optimum: { x: 12, y: J(12), label: 'E* = 12' } });

  it('marks the optimum on the curve, with its label below it where the curve never goes', async () => {
    const svg = parseSvg(await renderSvg(spec));
    const [dots, marker] = marks(svg, 'symbol');
    expect(dots).toHaveLength(Es.length);
    expect(marker).toHaveLength(1);
    const [mx, my] = translate(marker![0]!);
    const [dx, dy] = translate(dots![Es.indexOf(12)]!);
    expect(mx).toBeCloseTo(dx, 6);
    expect(my).toBeCloseTo(dy, 6);
    expect(OKABE_ITO).toContain(marker![0]!.attrs.fill);
    // The label (and its halo) is centred under the marker; every vertex of the curve, hence every
    // segment, is above the marker, so nothing covers the label.
    const labels = marks(svg, 'text').flat();
    expect(labels.map((t) => t.text)).toEqual(['E* = 12', 'E* = 12']);
    for (const t of labels) {
      const [tx, ty] = translate(t);
      expect(tx).toBeCloseTo(mx, 6);
      expect(ty).toBeGreaterThan(my + 8);
      expect(ty + 14).toBeLessThan(320);
    }
    const curve = pathPoints(marks(svg, 'line')[0]![0]!.attrs.d!);
    expect(curve).toHaveLength(Es.length);
    for (const [, py] of curve) expect(py).toBeLessThanOrEqual(my + 1e-3); // vega rounds paths to 3 decimals
    expect(texts(svg, 'role-axis-label')).toContain('100M');
  });

  it('renders to a PNG of the SVG\'s size', async () => {
    const text = await renderSvg(spec);
    const svg = parseSvg(text);
    const png = new Resvg(text, { font: { loadSystemFonts: false } }).render().asPng();
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // IHDR: width and height, big-endian, after the 8-byte signature and the chunk's length and type.
    expect(png.subarray(12, 16).toString('ascii')).toBe('IHDR');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([Number(svg.attrs.width), Number(svg.attrs.height)]);
    expect(Number(svg.attrs.width)).toBeGreaterThan(600);
  });
});
