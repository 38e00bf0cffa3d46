/**
 * loom eval on program runs: the program's evaluate graph on the checkpoint's state, checked
 * against the reference interpreter running that graph on the state read from the checkpoint
 * file, with the evaluation key of the seed; and the errors for what cannot be evaluated.
 */
import { copyFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { toInt32 } from '../../compiler/ops/threefry.ts';
import { interpret } from '../../runtime/interpreter.ts';
import { loadGroup } from '../../runtime/pipeline/checkpoint.ts';
import { evalKey } from '../../runtime/program/driver.ts';
import { loom } from '../helpers/cli.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const FIXTURE = join(import.meta.dirname, '../fixtures/program');
const LINREG = join(import.meta.dirname, '../../graphs/examples/linear-regression/program.json');
const tmp = () => mkdtempSync(join(tmpdir(), 'loom-eval-program-'));

/** The toy program copied into a fresh folder (so it can be edited there); returns its file. */
function toyProgram(over: Record<string, unknown> = {}): string {
  const dir = tmp();
  cpSync(FIXTURE, dir, { recursive: true });
  const file = join(dir, 'toy.program.json');
  const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...json, ...over }));
  return file;
}

async function train(program: string, ...flags: string[]): Promise<string> {
  const out = join(tmp(), 'run');
  const r = await loom('train', program, '--backend', 'cpu', '--out', out, ...flags);
  expect(r.code, r.err).toBe(0);
  return out;
}

/** The toy evaluate graph run by the interpreter on a checkpoint's state, printed as loom prints numbers. */
function reference(ckpt: string, seed: number, episodes: number): string {
  const body = (JSON.parse(readFileSync(ckpt, 'utf8')) as { body: { tensors: { state: Parameters<typeof loadGroup>[0] } } }).body;
  const state = loadGroup(body.tensors.state);
  const out = interpret(loadGraph(join(FIXTURE, 'evaluate.graph.json')), { w: state.w!, key: tf.tensor(toInt32(evalKey(seed)), [2], 'int32'), episodes: tf.scalar(episodes) }, {});
  const line = Object.entries(out).map(([k, t]) => `${k} ${Number(t.dataSync()[0]!.toPrecision(6))}`).join(', ');
  tf.dispose([...Object.values(state), ...Object.values(out)]);
  return line;
}

const lines = (text: string) => text.trim().split('\n');

describe('loom eval on a program run', () => {
  it("runs the evaluate graph on the run's latest state, with the run's seed and eval.episodes, or --seed and --episodes", async () => {
    const run = await train(toyProgram(), '--max-iterations', '3');
    const ckpt = join(run, 'checkpoint.json');
    const e = await loom('eval', run, '--backend', 'cpu');
    expect(e.code, e.err).toBe(0);
    expect(lines(e.out)).toHaveLength(3);
    expect(lines(e.out)[0]).toBe(`${ckpt}: pipeline toy, iteration 3 (24 env steps)`);
    expect(lines(e.out)[2]).toBe(reference(ckpt, 3, 4));
    expect(lines(e.out)[1]).toMatch(/^evaluation: evaluate graph \S*evaluate\.graph\.json, seed 3, episodes 4$/);
    const other = await loom('eval', ckpt, '--backend', 'cpu', '--seed', '11', '--episodes', '9');
    expect(other.code, other.err).toBe(0);
    expect(lines(other.out)[2]).toBe(reference(ckpt, 11, 9));
    expect(lines(other.out)[2]).not.toBe(lines(e.out)[2]);
  });

  it("a finished run's evaluation equals its eval.json; the run's --set overrides configure the program", async () => {
    const run = await train(toyProgram(), '--set', 'eval.episodes=7');
    const saved = JSON.parse(readFileSync(join(run, 'eval.json'), 'utf8')) as Record<string, number>;
    const { iteration: _i, global_step: _g, ...outputs } = saved;
    expect(outputs.episodes).toBe(7);
    const e = await loom('eval', run, '--backend', 'cpu');
    expect(e.code, e.err).toBe(0);
    expect(lines(e.out)[2]).toBe(Object.entries(outputs).map(([k, v]) => `${k} ${Number(v.toPrecision(6))}`).join(', '));
    expect(lines(e.out)[2]).toBe(reference(join(run, 'checkpoint.json'), 3, 7));
  });

  it("--checkpoint evaluates another checkpoint of the run, configured by the run's run.json", async () => {
    const program = toyProgram();
    const run = await train(program, '--max-iterations', '2', '--set', 'eval.episodes=5');
    const early = join(tmp(), 'iteration-2.json');
    copyFileSync(join(run, 'checkpoint.json'), early);
    const r = await loom('train', program, '--backend', 'cpu', '--out', run, '--resume', '--set', 'eval.episodes=5');
    expect(r.code, r.err).toBe(0);
    const e = await loom('eval', run, '--checkpoint', early, '--backend', 'cpu');
    expect(e.code, e.err).toBe(0);
    expect(lines(e.out)[0]).toBe(`${early}: pipeline toy, iteration 2 (16 env steps)`);
    expect(lines(e.out)[2]).toBe(reference(early, 3, 5));
    expect(lines(e.out)[2]).not.toBe(reference(join(run, 'checkpoint.json'), 3, 5));
  });

  it("a run of several seeds: each seed's folder evaluates with its own seed; the folder above says which to give", async () => {
    const run = await train(toyProgram(), '--seed-list', '4,9', '--max-iterations', '2');
    const e = await loom('eval', join(run, 'seed-9'), '--backend', 'cpu');
    expect(e.code, e.err).toBe(0);
    expect(lines(e.out)[2]).toBe(reference(join(run, 'seed-9', 'checkpoint.json'), 9, 4));
    const top = await loom('eval', run, '--backend', 'cpu');
    expect(top.code).toBe(2);
    expect(top.err).toMatch(/^error\[E_USAGE\].*holds a run of several seeds \(seed-4, seed-9\)/);
    expect(top.err).toContain(join(run, 'seed-4'));
  });

  it('errors: no evaluate graph, --episodes without an episodes input, a corrupt checkpoint, --stochastic; none with a stack trace', async () => {
    const noEval = toyProgram({ evaluate: undefined });
    const run = await train(noEval, '--max-iterations', '1');
    const e = await loom('eval', run, '--backend', 'cpu');
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/^error\[E_INPUT\]/);
    expect(e.err).toContain('has no evaluate graph');
    expect(e.err).toContain(`${noEval}`);
    expect(e.err).toContain('/evaluate');
    expect(e.err).toContain('add "evaluate": "evaluate.graph.json"');

    const lin = await train(LINREG, '--steps', '32', '--max-iterations', '1');
    const ep = await loom('eval', lin, '--episodes', '3', '--backend', 'cpu');
    expect(ep.code).toBe(2);
    expect(ep.err).toMatch(/^error\[E_USAGE\].*has no input "episodes"/);
    expect((await loom('eval', lin, '--backend', 'cpu')).code).toBe(0);

    const toy = await train(toyProgram(), '--max-iterations', '1');
    const ckpt = join(toy, 'checkpoint.json');
    const stochastic = await loom('eval', toy, '--stochastic');
    expect(stochastic.code).toBe(2);
    expect(stochastic.err).toMatch(/^error\[E_USAGE\].*--stochastic applies to pipelines/);
    writeFileSync(ckpt, readFileSync(ckpt, 'utf8').replace('"iteration":1', '"iteration":2'));
    const corrupt = await loom('eval', toy, '--backend', 'cpu');
    expect(corrupt.code).toBe(1);
    expect(corrupt.err).toMatch(/^error\[E_IO\].*checkpoint .* is corrupt: its checksum does not match/);
    for (const r of [e, ep, stochastic, corrupt]) expect(r.err).not.toMatch(/\n\s+at /);
  });
});
