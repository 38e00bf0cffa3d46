/**
 * `loom train` on a program pipeline (a file whose top-level key is "program"): the program driver
 * runs it with the same flags as a pipeline; user errors print one error and no stack.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loom } from '../helpers/cli.ts';
import { writeTinyPipeline } from '../helpers/tiny-pipeline.ts';

const EXAMPLE = join(import.meta.dirname, '../../graphs/examples/linear-regression/program.json');
const TOY = join(import.meta.dirname, '../fixtures/program/toy.program.json');
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-train-program-'));
const rows = (dir: string) => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | null>);

describe('loom train PROGRAM.json', () => {
  it('--max-iterations stops with a checkpoint, --resume finishes and evaluates, with --set, --steps and --executor', async () => {
    const dir = tmp();
    const args = ['train', EXAMPLE, '--out', dir, '--backend', 'cpu', '--steps', '96', '--set', 'logging.every=1', '--set', 'hyper.lr=0.1'];
    const a = await loom(...args, '--max-iterations', '2');
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/^stopped at iteration 2 \(32 env steps\)/m);
    expect(existsSync(join(dir, 'checkpoint.json'))).toBe(true);
    const b = await loom(...args, '--resume', '--executor', 'interpret');
    expect(b.code).toBe(0);
    expect(b.out).toMatch(/^finished at iteration 6 \(96 env steps\)/m);
    expect(b.out).toMatch(/^evaluation: mse [\d.e-]+, weight_error [\d.e-]+$/m);
    expect(rows(dir).map((r) => r.global_step)).toEqual([16, 32, 48, 64, 80, 96]);
    const run = JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8'));
    expect(run).toMatchObject({ status: 'finished', pipeline: 'linear-regression', config: { program: 'linear-regression', hyper: { lr: 0.1 }, total_steps: 96 }, overrides: ['logging.every=1', 'hyper.lr=0.1'] });
    expect(readFileSync(join(dir, 'metrics.csv'), 'utf8').split('\n')[0]).toBe('iteration,global_step,loss,env_steps,steps_per_sec');
  });

  it('a program that breaks the contract: one error at its file and pointer, no stack, exit code non-zero', async () => {
    const dir = tmp();
    const r = await loom('train', TOY, '--out', dir, '--set', 'hyper.lrate=1');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/error\[E_SCHEMA\] .*toy\.program\.json#\/hyper\/lrate: --set hyper\.lrate=1: hyper\.lrate is read by none of the program's graphs/);
    expect(r.err).toMatch(/hint: +did you mean "lr"\?/);
    expect(r.err).not.toMatch(/^\s+at /m);
  });

  it('a NaN stop exits non-zero naming the tensor', async () => {
    const r = await loom('train', TOY, '--out', tmp(), '--backend', 'cpu', '--set', 'hyper.lr=1000', '--steps', '800');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/error\[E_NUMERIC\].*state tensor "w" became non-finite/);
  });

  it('flags that do not apply, and bad values, are usage errors', async () => {
    const env = await loom('train', TOY, '--out', tmp(), '--env', 'CartPole-v1');
    expect(env.code).not.toBe(0);
    expect(env.err).toMatch(/error\[E_USAGE\].*--env applies to pipelines/);
    const ex = await loom('train', TOY, '--out', tmp(), '--executor', 'fast');
    expect(ex.err).toMatch(/error\[E_USAGE\]: unknown --executor "fast"/);
    const mi = await loom('train', TOY, '--out', tmp(), '--max-iterations=-1');
    expect(mi.err).toMatch(/error\[E_USAGE\]: --max-iterations must be >= 0/);
  });

  it('a bad program file is not echoed', async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'p.json'), '{"program": "x", "hyper": {"password": hunter2}}');
    const r = await loom('train', join(dir, 'p.json'), '--out', join(dir, 'out'));
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/error\[E_JSON\]/);
    expect(r.err).not.toMatch(/hunter2/);
  });
});

describe('loom train PROGRAM.json --seeds K', () => {
  it('runs seeds S..S+K-1 into DIR/seed-<s>, vmapped or looped to the same numbers, and resumes them', async () => {
    const dir = tmp();
    const args = ['train', EXAMPLE, '--backend', 'cpu', '--steps', '64', '--set', 'logging.every=1', '--seed', '4', '--seeds', '3'];
    const a = await loom(...args, '--out', dir, '--max-iterations', '2');
    expect(a.code).toBe(0);
    expect(a.err).toContain('compiling 3 graphs (the iteration vmapped over 3 seeds)');
    for (const s of [4, 5, 6]) expect(a.out).toContain(`seed ${s}: stopped at iteration 2 (32 env steps); checkpoint ${join(dir, `seed-${s}`, 'checkpoint.json')}\n`);
    const b = await loom(...args, '--out', dir, '--resume');
    expect(b.code).toBe(0);
    expect(b.out).toMatch(/^seed 6: evaluation: mse [\d.e-]+, weight_error [\d.e-]+$/m);
    const looped = tmp();
    const c = await loom(...args, '--out', looped, '--seeds-mode', 'loop');
    expect(c.code).toBe(0);
    expect(c.err).not.toContain('vmapped');
    for (const s of [4, 5, 6]) {
      const v = rows(join(dir, `seed-${s}`));
      const l = rows(join(looped, `seed-${s}`));
      expect(v.map((r) => r.global_step)).toEqual([16, 32, 48, 64]);
      v.forEach((r, i) => expect(r.loss).toBeCloseTo(l[i]!.loss!, 5));
      expect(JSON.parse(readFileSync(join(dir, `seed-${s}`, 'run.json'), 'utf8'))).toMatchObject({ status: 'finished', seed: s, config: { seed: s } });
    }
    expect(rows(join(dir, 'seed-4'))[3]!.loss).not.toBe(rows(join(dir, 'seed-5'))[3]!.loss);
  });

  it('--seed-list picks the seeds', async () => {
    const dir = tmp();
    const r = await loom('train', TOY, '--backend', 'cpu', '--out', dir, '--seed-list', '9,2');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^seed 9: finished at iteration 6 \(48 env steps\)/m);
    expect(r.out).toMatch(/^seed 2: finished at iteration 6 \(48 env steps\)/m);
    expect(existsSync(join(dir, 'seed-2', 'eval.json'))).toBe(true);
  });

  it('bad seed counts, lists and modes are usage errors before any work starts', async () => {
    const err = async (...a: string[]) => {
      const dir = tmp();
      const r = await loom('train', TOY, '--out', join(dir, 'out'), ...a);
      expect(r.code).not.toBe(0);
      expect(existsSync(join(dir, 'out'))).toBe(false);
      return r.err;
    };
    expect(await err('--seeds', '0')).toMatch(/error\[E_USAGE\]: --seeds must be >= 1/);
    expect(await err('--seeds', '1000000')).toMatch(/error\[E_USAGE\]: --seeds must be <= 256/);
    expect(await err('--seeds', '2.5')).toMatch(/--seeds must be an integer/);
    expect(await err('--seed', '2147483647', '--seeds', '2')).toMatch(/error\[E_USAGE\]: a seed is an integer from 0 to 2\^31 - 1.*\n.*found: +2147483648/);
    expect(await err('--seed-list', '1,x')).toMatch(/--seed-list takes seeds \(integers from 0\) separated by commas/);
    expect(await err('--seed-list', '1,2,1')).toMatch(/seed 1 is given twice/);
    expect(await err('--seeds', '2', '--seed-list', '1,2')).toMatch(/--seeds and --seed-list both choose the seeds/);
    expect(await err('--seeds', '2', '--seeds-mode', 'fast')).toMatch(/unknown --seeds-mode "fast"/);
    expect(await err('--seeds-mode', 'loop')).toMatch(/--seeds-mode applies to runs of several seeds/);
    const pipe = tmp();
    const p = await loom('train', writeTinyPipeline(pipe, {}), '--out', join(pipe, 'out'), '--seeds', '2');
    expect(p.err).toMatch(/error\[E_USAGE\]: --seeds applies to program pipelines/);
  });
});

describe('loom train PIPELINE.json: the flags added with program pipelines', () => {
  it('--max-iterations stops a pipeline too; --executor is refused for a pipeline, pointing at LOOM_EXECUTOR', async () => {
    const dir = tmp();
    const file = writeTinyPipeline(dir, { logging: { every: 1, tensorboard: false } });
    const r = await loom('train', file, '--out', join(dir, 'out'), '--backend', 'cpu', '--max-iterations', '1');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^stopped at iteration 1 \(16 env steps\)/m);
    const ex = await loom('train', file, '--out', join(dir, 'out2'), '--executor', 'interpret');
    expect(ex.code).not.toBe(0);
    expect(ex.err).toMatch(/error\[E_USAGE\]: --executor applies to program pipelines/);
    expect(ex.err).toMatch(/LOOM_EXECUTOR=interpret/);
  });
});

describe('loom check PROGRAM.json', () => {
  it('checks the program with its graphs and the contract between them', async () => {
    const ok = await loom('check', EXAMPLE);
    expect(ok.code).toBe(0);
    expect(ok.out).toBe(`${EXAMPLE}: ok (program linear-regression, 8 state tensors, metrics loss, env_steps)\n`);
    const bad = await loom('check', TOY, '--set', 'hyper.lrate=1');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/#\/hyper\/lrate: --set hyper\.lrate=1: hyper\.lrate is read by none/);
  });
});
