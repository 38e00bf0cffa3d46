/**
 * `loom compare` on program pipelines: the table it prints is the one computed from the seed folders
 * it writes; --report-only prints it again from them; flags that do not fit the files are usage
 * errors printed without a stack, with hostile text escaped.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loom } from '../helpers/cli.ts';
import { writeTinyPipeline } from '../helpers/tiny-pipeline.ts';

const EXAMPLE = join(import.meta.dirname, '../../graphs/examples/linear-regression/program.json');
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-compare-programs-cli-'));
const lastLoss = (dir: string) => (JSON.parse(readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').at(-1)!) as { loss: number }).loss;

describe('loom compare PROGRAM...', () => {
  it('compares a program with a variant of it, then tabulates the same from the folders with --report-only', async () => {
    const dir = tmp();
    const variant = join(dir, 'lr02.json');
    writeFileSync(variant, JSON.stringify({ program: 'linreg-lr02', extends: EXAMPLE, hyper: { lr: 0.2 } }));
    const out = join(dir, 'out');
    const args = ['compare', EXAMPLE, variant, '--seeds', '2', '--set', 'total_steps=64', '--set', 'logging.every=1', '--metric', 'loss', '--eval-metric', 'mse', '--reps', '100', '--out', out, '--backend', 'cpu'];
    const a = await loom(...args);
    expect(a.code).toBe(0);
    expect(a.err).toContain('loom compare: 4 runs (2 pipelines x 2 seeds) as 2 vmapped programs in this process');
    const json = JSON.parse(readFileSync(join(out, 'compare.json'), 'utf8')) as { results: { pipeline: string; perRun: { seed: number; finalReturn: number; envSteps: number }[] }[] };
    expect(json.results.map((r) => r.pipeline)).toEqual(['linear-regression', 'linreg-lr02']);
    for (const r of json.results) expect(r.perRun.map((p) => [p.seed, p.finalReturn, p.envSteps])).toEqual([1, 2].map((s) => [s, lastLoss(join(out, r.pipeline, `seed-${s}`)), 64]));
    expect(a.out).toMatch(/^\| linreg-lr02 \| 2 \| /m);
    const b = await loom(...args, '--report-only');
    expect(b.code).toBe(0);
    expect(b.err).not.toContain('start');
    expect(b.out).toBe(a.out);
  });

  it('flags that do not fit the files, and hostile values, are usage errors without a stack', async () => {
    const dir = tmp();
    const pipeline = writeTinyPipeline(dir, { pipeline: 'ppo-tiny' });
    const out = ['--out', join(dir, 'out')];
    const cases: [string[], RegExp][] = [
      [[EXAMPLE, pipeline, '--seeds', '2'], /error\[E_USAGE\]: loom compare needs --seeds K and --steps N\n.*hint: +--steps sets the budget of the pipelines \(.*p\.json\); a program pipeline runs its total_steps/s],
      [[EXAMPLE, '--steps', '64'], /error\[E_USAGE\]: loom compare needs --seeds K\n/],
      [[EXAMPLE, pipeline, '--seeds', '2', '--steps', '64', '--env', 'CartPole-v1'], /error\[E_USAGE\].*--env applies to pipelines; a program pipeline names its env in its graphs/],
      [[pipeline, '--seeds', '2', '--steps', '64', '--metric', 'loss'], /error\[E_USAGE\]: --metric applies to program pipelines/],
      [[EXAMPLE, '--seeds', '300'], /error\[E_USAGE\]: a program pipeline runs at most 256 seeds together/],
      [[EXAMPLE, '--seeds', '1', '--metric', 'lo\u001b[2Jss', '--eval-metric', 'mse'], /error\[E_USAGE\].*program linear-regression has no metric "lo\\x1b\[2Jss"/],
    ];
    for (const [argv, want] of cases) {
      const r = await loom('compare', ...argv, ...out);
      expect(r.code, argv.join(' ')).not.toBe(0);
      expect(r.err).toMatch(want);
      expect(r.err).not.toMatch(/^\s+at /m);
      expect(r.err).not.toContain('\u001b[2J');
    }
  });
});
