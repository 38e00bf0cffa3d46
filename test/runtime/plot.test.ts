import { describe, expect, it } from 'vitest';
import { escapeXml, formatTick, lineChart, type LineChartSpec } from '../../runtime/plot.ts';

/**
 * A tiny well-formedness check: tags balance, attributes are quoted, and text content has no raw
 * '<' or unescaped '&'. Returns the element names in document order.
 */
function checkXml(svg: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < svg.length) {
    const lt = svg.indexOf('<', i);
    const text = svg.slice(i, lt === -1 ? svg.length : lt);
    expect(text).not.toMatch(/&(?!(amp|lt|gt|quot|#39);)/);
    expect(text).not.toContain('>');
    if (lt === -1) break;
    tag.lastIndex = lt;
    const m = tag.exec(svg);
    if (!m) throw new Error(`malformed tag at ${lt}: ${svg.slice(lt, lt + 60)}`);
    const [, close, name, , selfClose] = m;
    if (close) {
      expect(stack.pop()).toBe(name);
    } else {
      names.push(name!);
      if (!selfClose) stack.push(name!);
    }
    i = tag.lastIndex;
  }
  expect(stack).toEqual([]);
  return names;
}

const spec: LineChartSpec = {
  title: 'Returns <PPO> & "GRPO"',
  xLabel: 'env steps',
  yLabel: 'episode return',
  series: [
    {
      name: 'PPO <mean>',
      points: [
        [0, 10],
        [1000, 50],
        [2000, 120],
      ],
      band: [
        [0, 5, 15],
        [1000, 40, 60],
        [2000, 100, 140],
      ],
    },
    {
      name: "Hybrid GRPO & 'N=4'",
      points: [
        [0, 12],
        [1000, 80],
        [2000, 180],
      ],
    },
  ],
  markers: [{ x: 2000, y: 180, label: 'best <here>' }],
};

describe('lineChart', () => {
  it('produces a well-formed standalone SVG with paths, bands, legend and markers', () => {
    const svg = lineChart(spec);
    const names = checkXml(svg);
    expect(names[0]).toBe('svg');
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(names.filter((n) => n === 'path')).toHaveLength(2);
    expect(names.filter((n) => n === 'polygon')).toHaveLength(1);
    // Text is escaped in content and attributes.
    expect(svg).toContain('Returns &lt;PPO&gt; &amp; &quot;GRPO&quot;');
    expect(svg).toContain('>PPO &lt;mean&gt;</text>');
    expect(svg).toContain('>Hybrid GRPO &amp; &#39;N=4&#39;</text>');
    expect(svg).toContain('data-series="Hybrid GRPO &amp; &#39;N=4&#39;"');
    expect(svg).toContain('best &lt;here&gt;');
    expect(svg).not.toContain('<PPO>');
  });

  it('places points with the axis mapping: ends of the data range on nice tick bounds', () => {
    const svg = lineChart({ title: 't', xLabel: 'x', yLabel: 'y', series: [{ name: 's', points: [[0, 0], [10, 100]] }], width: 600, height: 400 });
    // Linear x 0..10, y 0..100: plot area left=78, bottom=400-52=348, top=44; right = 600-20-legend.
    const d = /<path data-series="s" d="([^"]+)"/.exec(svg)![1]!;
    const legendW = Math.min(240, 36 + 7 * 1);
    const right = 600 - 20 - legendW;
    expect(d).toBe(`M78 348 L${right} 44`);
    // Tick labels 0, 20, ..., 100 on y (step 20 gives about five intervals).
    for (const t of ['0', '20', '40', '60', '80', '100']) expect(svg).toMatch(new RegExp(`text-anchor="end">${t}</text>`));
  });

  it('band polygon goes along the upper edge and back along the lower edge', () => {
    const svg = lineChart({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [{ name: 's', points: [[0, 5], [10, 5]], band: [[0, 0, 10], [10, 0, 10]] }],
      width: 600,
      height: 400,
    });
    const pts = /<polygon points="([^"]+)"/.exec(svg)![1]!.split(' ');
    const right = 600 - 20 - Math.min(240, 36 + 7);
    expect(pts).toEqual(['78,44', `${right},44`, `${right},348`, '78,348']);
  });

  it('is deterministic and depends on its input', () => {
    expect(lineChart(spec)).toBe(lineChart(structuredClone(spec)));
    expect(lineChart({ ...spec, title: 'other' })).not.toBe(lineChart(spec));
  });

  it('log axes use decade ticks and drop non-positive values; NaN breaks the line', () => {
    const svg = lineChart({
      title: 'cost',
      xLabel: 'E',
      yLabel: 'J',
      logX: true,
      logY: true,
      series: [{ name: 'J', points: [[1, 1e9], [10, 1e7], [100, NaN], [1000, 1e8], [0, 5], [10000, 1e10]], dots: true }],
    });
    checkXml(svg);
    for (const t of ['1', '10', '100', '1000', '10000']) expect(svg).toContain(`text-anchor="middle">${t}</text>`);
    for (const t of ['1e7', '1e8', '1e9', '1e10']) expect(svg).toContain(`text-anchor="end">${t}</text>`);
    const d = /<path data-series="J" d="([^"]+)"/.exec(svg)![1]!;
    // NaN and the x = 0 point (invalid on a log axis) each break the line: three runs.
    expect(d.match(/M/g)).toHaveLength(3);
    expect(svg.match(/<circle /g)).toHaveLength(4);
    expect(svg).not.toContain('NaN');
    expect(svg).not.toContain('Infinity');
  });

  it('handles empty and constant series without NaN coordinates', () => {
    const empty = lineChart({ title: 'e', xLabel: 'x', yLabel: 'y', series: [] });
    checkXml(empty);
    expect(empty).not.toContain('NaN');
    const flat = lineChart({ title: 'f', xLabel: 'x', yLabel: 'y', series: [{ name: 'c', points: [[3, 7]] }] });
    checkXml(flat);
    expect(flat).not.toContain('NaN');
    expect(flat).toContain('<circle');
  });
});

describe('helpers', () => {
  it('escapeXml escapes the five XML specials', () => {
    expect(escapeXml(`a<b>&"'`)).toBe('a&lt;b&gt;&amp;&quot;&#39;');
  });
  it('formatTick prints compact labels', () => {
    expect(formatTick(0)).toBe('0');
    expect(formatTick(0.30000000000000004)).toBe('0.3');
    expect(formatTick(250000)).toBe('250000');
    expect(formatTick(4.2e9)).toBe('4.2e9');
    expect(formatTick(-1e-5)).toBe('-1e-5');
  });
});
