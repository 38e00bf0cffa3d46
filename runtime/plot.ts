/**
 * A small dependency-free SVG line chart: axes with nice ticks (linear or log), a legend, shaded
 * bands (e.g. confidence intervals around mean learning curves) and labelled markers.
 * Output is a pure function of the input, so charts diff cleanly and tests can compare strings.
 */
import { printable } from '../compiler/text.ts';

export type Point = [x: number, y: number];
export type BandPoint = [x: number, lo: number, hi: number];

export interface Series {
  name: string;
  points: Point[];
  /** Shaded region drawn behind the line, e.g. a confidence interval. */
  band?: BandPoint[];
  /** Draw a dot at every point (useful for sparse, discrete x such as expert counts). */
  dots?: boolean;
  /** Override the palette colour (any SVG colour). */
  color?: string;
}

export interface Marker {
  x: number;
  y: number;
  label: string;
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  markers?: Marker[];
  logX?: boolean;
  logY?: boolean;
  width?: number;
  height?: number;
}

/** Tableau 10: distinguishable, colour-blind-friendlier than the naive rainbow. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Escapes text for element content and double-quoted attributes. */
export function escapeXml(s: string): string {
  // Control characters are invalid in XML 1.0 (and bidi overrides would reorder the text shown).
  return printable(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Fixed 2-decimal coordinates keep files small and stable. */
function c(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/** Compact tick label: plain decimals in [1e-3, 1e6), otherwise mantissa-e-exponent. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e6) return String(Number(v.toPrecision(6)));
  const [mant, exp] = v.toExponential(3).split('e') as [string, string];
  return `${String(Number(mant))}e${Number(exp)}`;
}

interface Scale {
  lo: number;
  hi: number;
  ticks: number[];
  log: boolean;
}

/** Step of 1, 2 or 5 times a power of ten giving about `target` intervals over the span. */
function niceStep(span: number, target: number): number {
  const raw = span / target;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

/** Rounds away float noise from k*step so labels read 0.3, not 0.30000000000000004. */
function clean(v: number): number {
  return Number(v.toPrecision(12));
}

function linearScale(min: number, max: number): Scale {
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const step = niceStep(max - min, 5);
  const lo = Math.floor(min / step) * step;
  const hi = Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let k = Math.round(lo / step); k * step <= hi + step * 1e-9; k++) ticks.push(clean(k * step));
  return { lo: clean(lo), hi: clean(hi), ticks, log: false };
}

function logScale(min: number, max: number): Scale {
  if (min === max) {
    min /= 2;
    max *= 2;
  }
  const lo = Math.pow(10, Math.floor(Math.log10(min) * 20) / 20); // pad to 1/20 decade
  const hi = Math.pow(10, Math.ceil(Math.log10(max) * 20) / 20);
  const inRange = (v: number) => v >= lo * (1 - 1e-12) && v <= hi * (1 + 1e-12);
  const e0 = Math.floor(Math.log10(lo));
  const e1 = Math.ceil(Math.log10(hi));
  const withMultipliers = (ms: number[]) => {
    const t: number[] = [];
    for (let e = e0; e <= e1; e++) for (const m of ms) t.push(clean(m * Math.pow(10, e)));
    return t.filter(inRange);
  };
  let ticks = withMultipliers([1]);
  if (ticks.length < 4) ticks = withMultipliers([1, 2, 5]);
  if (ticks.length < 3) ticks = linearScale(lo, hi).ticks.filter((v) => v > 0 && inRange(v));
  // Many decades: thin the labels so they do not collide.
  while (ticks.length > 10) ticks = ticks.filter((_, i) => i % 2 === 0);
  return { lo, hi, ticks, log: true };
}

function makeScale(values: number[], log: boolean): Scale {
  const vs = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  if (vs.length === 0) return log ? logScale(1, 10) : linearScale(0, 1);
  let min = vs[0]!;
  let max = vs[0]!;
  for (const v of vs) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return log ? logScale(min, max) : linearScale(min, max);
}

function project(s: Scale, v: number, a: number, b: number): number {
  const t = s.log ? (Math.log10(v) - Math.log10(s.lo)) / (Math.log10(s.hi) - Math.log10(s.lo)) : (v - s.lo) / (s.hi - s.lo);
  return a + t * (b - a);
}

/** Renders the chart as a standalone SVG document. Non-finite points (and non-positive ones on a log axis) break the line. */
export function lineChart(spec: LineChartSpec): string {
  const W = spec.width ?? 720;
  const H = spec.height ?? 440;
  const logX = spec.logX === true;
  const logY = spec.logY === true;
  const markers = spec.markers ?? [];
  const ok = (x: number, y: number) => Number.isFinite(x) && Number.isFinite(y) && (!logX || x > 0) && (!logY || y > 0);

  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of spec.series) {
    for (const [x, y] of s.points) if (ok(x, y)) xs.push(x), ys.push(y);
    for (const [x, lo, hi] of s.band ?? []) if (ok(x, lo) && ok(x, hi)) xs.push(x), ys.push(lo, hi);
  }
  for (const m of markers) if (ok(m.x, m.y)) xs.push(m.x), ys.push(m.y);
  const sx = makeScale(xs, logX);
  const sy = makeScale(ys, logY);

  const legendW = spec.series.length ? Math.min(240, 36 + 7 * Math.max(...spec.series.map((s) => s.name.length))) : 0;
  const left = 78;
  const right = W - 20 - legendW;
  const top = 44;
  const bottom = H - 52;
  const X = (v: number) => project(sx, v, left, right);
  const Y = (v: number) => project(sy, v, bottom, top);
  const color = (i: number) => spec.series[i]!.color ?? PALETTE[i % PALETTE.length]!;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<title>${escapeXml(spec.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${c(W / 2)}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`);

  out.push('<g class="grid" stroke="#e5e5e5" stroke-width="1">');
  for (const t of sx.ticks) out.push(`<line x1="${c(X(t))}" y1="${c(top)}" x2="${c(X(t))}" y2="${c(bottom)}"/>`);
  for (const t of sy.ticks) out.push(`<line x1="${c(left)}" y1="${c(Y(t))}" x2="${c(right)}" y2="${c(Y(t))}"/>`);
  out.push('</g>');

  out.push('<g class="axes" stroke="#333333" stroke-width="1">');
  out.push(`<line x1="${c(left)}" y1="${c(bottom)}" x2="${c(right)}" y2="${c(bottom)}"/>`);
  out.push(`<line x1="${c(left)}" y1="${c(top)}" x2="${c(left)}" y2="${c(bottom)}"/>`);
  for (const t of sx.ticks) out.push(`<line x1="${c(X(t))}" y1="${c(bottom)}" x2="${c(X(t))}" y2="${c(bottom + 5)}"/>`);
  for (const t of sy.ticks) out.push(`<line x1="${c(left - 5)}" y1="${c(Y(t))}" x2="${c(left)}" y2="${c(Y(t))}"/>`);
  out.push('</g>');
  out.push('<g class="tick-labels" fill="#333333">');
  for (const t of sx.ticks) out.push(`<text x="${c(X(t))}" y="${c(bottom + 19)}" text-anchor="middle">${escapeXml(formatTick(t))}</text>`);
  for (const t of sy.ticks) out.push(`<text x="${c(left - 8)}" y="${c(Y(t) + 4)}" text-anchor="end">${escapeXml(formatTick(t))}</text>`);
  out.push('</g>');
  out.push(`<text class="x-label" x="${c((left + right) / 2)}" y="${c(H - 12)}" text-anchor="middle">${escapeXml(spec.xLabel)}</text>`);
  out.push(
    `<text class="y-label" x="16" y="${c((top + bottom) / 2)}" text-anchor="middle" transform="rotate(-90 16 ${c((top + bottom) / 2)})">${escapeXml(spec.yLabel)}</text>`,
  );

  out.push('<g class="bands">');
  spec.series.forEach((s, i) => {
    for (const run of runs(s.band ?? [], (b) => ok(b[0], b[1]) && ok(b[0], b[2]))) {
      if (run.length < 2) continue;
      const upper = run.map((b) => `${c(X(b[0]))},${c(Y(b[2]))}`);
      const lower = run
        .slice()
        .reverse()
        .map((b) => `${c(X(b[0]))},${c(Y(b[1]))}`);
      out.push(`<polygon points="${upper.concat(lower).join(' ')}" fill="${escapeXml(color(i))}" fill-opacity="0.2" stroke="none"/>`);
    }
  });
  out.push('</g>');

  out.push('<g class="series" fill="none" stroke-width="2" stroke-linejoin="round">');
  spec.series.forEach((s, i) => {
    const d = runs(s.points, (p) => ok(p[0], p[1]))
      .map((run) => run.map((p, k) => `${k === 0 ? 'M' : 'L'}${c(X(p[0]))} ${c(Y(p[1]))}`).join(' '))
      .join(' ');
    out.push(`<path data-series="${escapeXml(s.name)}" d="${d}" stroke="${escapeXml(color(i))}"/>`);
    if (s.dots || s.points.filter((p) => ok(p[0], p[1])).length === 1) {
      for (const p of s.points) if (ok(p[0], p[1])) out.push(`<circle cx="${c(X(p[0]))}" cy="${c(Y(p[1]))}" r="3" fill="${escapeXml(color(i))}"/>`);
    }
  });
  out.push('</g>');

  out.push('<g class="markers">');
  for (const m of markers) {
    if (!ok(m.x, m.y)) continue;
    const mx = X(m.x);
    const my = Y(m.y);
    out.push(`<line x1="${c(mx)}" y1="${c(my)}" x2="${c(mx)}" y2="${c(bottom)}" stroke="#555555" stroke-dasharray="4 3"/>`);
    out.push(`<circle cx="${c(mx)}" cy="${c(my)}" r="5" fill="none" stroke="#d62728" stroke-width="2"/>`);
    // Labels sit on the side with more room so they stay inside the plot.
    const anchor = mx > (left + right) / 2 ? 'end' : 'start';
    const dx = anchor === 'end' ? -8 : 8;
    out.push(`<text x="${c(mx + dx)}" y="${c(my - 8)}" text-anchor="${anchor}" fill="#d62728">${escapeXml(m.label)}</text>`);
  }
  out.push('</g>');

  out.push('<g class="legend">');
  spec.series.forEach((s, i) => {
    const ly = top + 8 + i * 18;
    const lx = right + 14;
    if (s.band?.length) out.push(`<rect x="${c(lx)}" y="${c(ly - 6)}" width="20" height="12" fill="${escapeXml(color(i))}" fill-opacity="0.2"/>`);
    out.push(`<line x1="${c(lx)}" y1="${c(ly)}" x2="${c(lx + 20)}" y2="${c(ly)}" stroke="${escapeXml(color(i))}" stroke-width="2"/>`);
    out.push(`<text x="${c(lx + 26)}" y="${c(ly + 4)}">${escapeXml(s.name)}</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Splits a sequence into maximal runs of elements that pass `ok`. */
function runs<T>(xs: T[], ok: (x: T) => boolean): T[][] {
  const result: T[][] = [];
  let cur: T[] = [];
  for (const x of xs) {
    if (ok(x)) cur.push(x);
    else if (cur.length) result.push(cur), (cur = []);
  }
  if (cur.length) result.push(cur);
  return result;
}
