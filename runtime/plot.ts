/**
 * Figures as Vega-Lite specs, rendered headless to SVG by vega: the learning curve of a run, the
 * banded mean curves and performance profiles of `loom compare`, and the expert-count cost curve. The specs are data, so
 * each figure is one function of its inputs, and one renderer turns any of them into an SVG.
 */
import * as vega from 'vega';
import { printable } from '../compiler/text.ts';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Okabe–Ito, distinguishable with the common colour-vision deficiencies. */
export const OKABE_ITO = ['#E69F00', '#56B4E9', '#009E73', '#F0E442', '#0072B2', '#D55E00', '#CC79A7', '#000000'] as const;
/** The order series take them in: strong colours first; yellow, faint on white, last. */
export const SERIES_COLORS: readonly string[] = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#000000', '#F0E442'];
/** The optimum marker of the cost curve. */
const MARKER_COLOR = '#D55E00';

const WIDTH = 600;
const HEIGHT = 320;
/**
 * SI prefixes, trailing zeros trimmed: 100000 reads 100k, 1500000 reads 1.5M. Each label is
 * formatted alone (an axis `format` shares one prefix across its ticks, so 0 would read 0k).
 */
const SI_AXIS = { labelExpr: "datum.value === 0 ? '0' : format(datum.value, '~s')" } as const;

/** Drops points a chart cannot place: non-finite values, and non-positive ones on a log axis. */
const finite = (...vs: number[]) => vs.every((v) => Number.isFinite(v));

/** Renders a Vega-Lite spec to a standalone SVG document. Text is XML-escaped by vega. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return (await view.toSVG()) + '\n';
  } finally {
    view.finalize();
  }
}

/**
 * Headless, vega sizes text by estimate (0.8 em a character), so long lines widen the figure:
 * subtitles are given as lines of at most about 70 characters. Titles name pipelines and envs from
 * files: their control characters are escaped (vega escapes markup, but XML forbids controls).
 */
const base = (title: string, subtitle: string | string[]) =>
  ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    padding: 8,
    title: { text: printable(title), subtitle: typeof subtitle === 'string' ? printable(subtitle) : subtitle.map((line) => printable(line)), anchor: 'start', subtitleColor: '#444444' },
    // Unquoted: resvg does not match quoted family names.
    config: { font: 'Helvetica, Arial, DejaVu Sans, sans-serif', legend: { orient: 'bottom', direction: 'vertical', labelLimit: 0 }, axis: { labelFontSize: 11, titleFontSize: 12 } },
  }) as const;

export interface LearningCurvePoint {
  step: number;
  /** Mean return of the episodes that finished in this iteration. */
  raw: number;
  /** Rolling mean over the last `window` episodes. */
  smooth: number;
}

export interface LearningCurve {
  title: string;
  points: readonly LearningCurvePoint[];
  /** Episodes in the rolling mean, stated in the legend. */
  window: number;
}

/** One run: the rolling mean as a solid line over the faint per-iteration means. */
export function learningCurveSpec(c: LearningCurve): TopLevelSpec {
  const raw = 'mean return per iteration';
  const smooth = `rolling mean over the last ${c.window} episodes`;
  const pts = c.points.filter((p) => finite(p.step, p.raw, p.smooth));
  // Lines are drawn in the order their first rows come: the raw curve first, under the rolling mean.
  const values = [...pts.map((p) => ({ step: p.step, ret: p.raw, kind: raw })), ...pts.map((p) => ({ step: p.step, ret: p.smooth, kind: smooth }))];
  return {
    ...base(c.title, [`solid: ${smooth}`, `faint: ${raw}`]),
    data: { values },
    mark: { type: 'line', interpolate: 'linear' },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'env steps', axis: SI_AXIS },
      y: { field: 'ret', type: 'quantitative', title: 'episodic return', scale: { zero: false } },
      color: { field: 'kind', type: 'nominal', title: null, sort: [smooth, raw], scale: { domain: [smooth, raw], range: ['#0072B2', '#56B4E9'] } },
      opacity: { field: 'kind', type: 'nominal', title: null, sort: [smooth, raw], scale: { domain: [smooth, raw], range: [1, 0.55] } },
      strokeWidth: { field: 'kind', type: 'nominal', title: null, sort: [smooth, raw], scale: { domain: [smooth, raw], range: [2.5, 1.25] } },
    },
  };
}

export interface BandedCurvePoint {
  step: number;
  mean: number;
  lo: number;
  hi: number;
  /** The unsmoothed mean, drawn faint. */
  raw: number;
}

export interface BandedSeries {
  name: string;
  points: readonly BandedCurvePoint[];
}

export interface BandedCurves {
  title: string;
  subtitle: string[];
  yTitle: string;
  series: readonly BandedSeries[];
}

/** Several pipelines: per series a shaded band, a faint raw line and a solid mean line, one colour each. */
export function bandedCurvesSpec(c: BandedCurves): TopLevelSpec {
  const names = c.series.map((s) => printable(s.name));
  const values = c.series.flatMap((s, i) => s.points.filter((p) => finite(p.step, p.mean, p.lo, p.hi, p.raw)).map((p) => ({ ...p, name: names[i]! })));
  const x = { field: 'step', type: 'quantitative', title: 'env steps', axis: SI_AXIS } as const;
  const color = {
    field: 'name',
    type: 'nominal',
    title: null,
    scale: { domain: names, range: names.map((_, i) => SERIES_COLORS[i % SERIES_COLORS.length]!) },
    legend: { symbolType: 'stroke', symbolStrokeWidth: 3, symbolOpacity: 1 },
  } as const;
  return {
    ...base(c.title, c.subtitle),
    data: { values },
    layer: [
      { mark: { type: 'area', opacity: 0.2 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: c.yTitle, scale: { zero: false } }, y2: { field: 'hi' }, color } },
      { mark: { type: 'line', opacity: 0.35, strokeWidth: 1 }, encoding: { x, y: { field: 'raw', type: 'quantitative' }, color } },
      { mark: { type: 'line', strokeWidth: 2.5 }, encoding: { x, y: { field: 'mean', type: 'quantitative' }, color } },
    ],
  };
}

export interface ProfileSeries {
  name: string;
  /** At each threshold τ: the fraction of runs scoring above it, with its 95% CI [lo, hi]. */
  points: readonly { tau: number; frac: number; lo: number; hi: number }[];
}

export interface Profiles {
  title: string;
  subtitle: string[];
  xTitle: string;
  series: readonly ProfileSeries[];
}

/** Performance profiles (rliable): per series a step line of the fraction of runs above τ, over its shaded CI band. */
export function profilesSpec(c: Profiles): TopLevelSpec {
  const names = c.series.map((s) => printable(s.name));
  const values = c.series.flatMap((s, i) => s.points.filter((p) => finite(p.tau, p.frac, p.lo, p.hi)).map((p) => ({ ...p, name: names[i]! })));
  const x = { field: 'tau', type: 'quantitative', title: c.xTitle, scale: { zero: false } } as const;
  const color = { field: 'name', type: 'nominal', title: null, scale: { domain: names, range: names.map((_, i) => SERIES_COLORS[i % SERIES_COLORS.length]!) }, legend: { symbolType: 'stroke', symbolStrokeWidth: 3, symbolOpacity: 1 } } as const;
  return {
    ...base(c.title, c.subtitle),
    data: { values },
    layer: [
      { mark: { type: 'area', opacity: 0.2, interpolate: 'step-after' }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'fraction of runs with score > τ', scale: { domain: [0, 1] } }, y2: { field: 'hi' }, color } },
      { mark: { type: 'line', strokeWidth: 2.5, interpolate: 'step-after' }, encoding: { x, y: { field: 'frac', type: 'quantitative' }, color } },
    ],
  };
}

export interface SensitivityPanel {
  /** The swept field, as the x axis title. */
  param: string;
  /** A log x axis (log-uniform draws, or values spanning decades). */
  log: boolean;
  /** One point per configuration: its value of the field and the metric's mean with its 95% CI. */
  points: readonly { x: number | string; mean: number; lo: number; hi: number }[];
}

export interface Sensitivity {
  title: string;
  subtitle: string[];
  yTitle: string;
  panels: readonly SensitivityPanel[];
}

/** A sweep's parameter sensitivity: side by side, per swept field, the metric of each configuration (mean, with a 95% CI bar) against its value. */
export function sensitivitySpec(c: Sensitivity): TopLevelSpec {
  const { width: _w, height: _h, ...top } = base(c.title, c.subtitle);
  const panelWidth = Math.max(200, Math.floor(WIDTH / Math.max(1, c.panels.length)));
  return {
    ...top,
    hconcat: c.panels.map((p) => {
      const numeric = p.points.every((q) => typeof q.x === 'number');
      const values = p.points.filter((q) => finite(q.mean, q.lo, q.hi) && (!numeric || (finite(q.x as number) && (!p.log || (q.x as number) > 0)))).map((q) => ({ ...q, x: typeof q.x === 'string' ? printable(q.x) : q.x }));
      const x = numeric ? ({ field: 'x', type: 'quantitative', title: printable(p.param), scale: p.log ? { type: 'log', padding: 16 } : { zero: false, padding: 16 } } as const) : ({ field: 'x', type: 'nominal', title: printable(p.param) } as const);
      return {
        width: panelWidth,
        height: HEIGHT,
        data: { values },
        layer: [
          { mark: { type: 'rule', color: SERIES_COLORS[0] }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: c.yTitle, scale: { zero: false } }, y2: { field: 'hi' } } },
          { mark: { type: 'point', filled: true, size: 60, color: SERIES_COLORS[0] }, encoding: { x, y: { field: 'mean', type: 'quantitative' } } },
        ],
      };
    }),
  } as TopLevelSpec;
}

export interface CostCurve {
  title: string;
  xTitle: string;
  yTitle: string;
  points: readonly { x: number; y: number }[];
  optimum: { x: number; y: number; label: string };
}

/**
 * A log-log cost curve with its minimum marked on the curve. The label sits below the marker: the
 * optimum is the curve's lowest point, so nothing of the curve is drawn there.
 */
export function costCurveSpec(c: CostCurve): TopLevelSpec {
  const ok = (p: { x: number; y: number }) => finite(p.x, p.y) && p.x > 0 && p.y > 0;
  const x = { field: 'x', type: 'quantitative', title: c.xTitle, scale: { type: 'log' }, axis: SI_AXIS } as const;
  // Padding keeps the marker and its label inside the plot at the bottom of the y range.
  const y = { field: 'y', type: 'quantitative', title: c.yTitle, scale: { type: 'log', padding: 40 }, axis: SI_AXIS } as const;
  const optimum = ok(c.optimum) ? [c.optimum] : [];
  const label = { align: 'center', baseline: 'top', dy: 14, fontSize: 12, fontWeight: 'bold' } as const;
  return {
    ...base(c.title, 'dots: feasible expert counts; marked: the optimum'),
    layer: [
      { data: { values: c.points.filter(ok) }, mark: { type: 'line', color: '#0072B2', strokeWidth: 2, point: { filled: true, size: 30, color: '#0072B2' } }, encoding: { x, y } },
      { data: { values: optimum }, mark: { type: 'point', filled: true, size: 140, color: MARKER_COLOR, stroke: 'white', strokeWidth: 1.5, opacity: 1 }, encoding: { x, y } },
      // A white halo under the label keeps it legible over grid lines.
      { data: { values: optimum }, mark: { type: 'text', ...label, stroke: 'white', strokeWidth: 4, strokeJoin: 'round' }, encoding: { x, y, text: { field: 'label' } } },
      { data: { values: optimum }, mark: { type: 'text', ...label, color: MARKER_COLOR }, encoding: { x, y, text: { field: 'label' } } },
    ],
  };
}
