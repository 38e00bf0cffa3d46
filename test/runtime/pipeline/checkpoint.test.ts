import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint, type CheckpointBody } from '../../../runtime/pipeline/checkpoint.ts';
import { withEnv } from '../../../runtime/pipeline/config.ts';
import { train } from '../../../runtime/pipeline/driver.ts';
import { loomErr, loomErrAsync } from '../../helpers/loom-error.ts';
import { G, tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-ckpt-'));
type Json = Record<string, unknown>;

let dir: string;
let good: Json;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = tmp();
  tf.dispose(Object.values((await train(tiny(), { outDir: dir, maxIterations: 1 })).params));
  good = (JSON.parse(readFileSync(join(dir, 'checkpoint.json'), 'utf8')) as { body: Json }).body;
});

/** A checkpoint with a valid SHA-256 over the body that `mutate` returns. */
function written(mutate: (b: Json) => unknown): string {
  const f = join(tmp(), 'checkpoint.json');
  writeCheckpoint(f, mutate(structuredClone(good)) as CheckpointBody);
  return f;
}

const tensors = (b: Json) => b.tensors as Record<string, Record<string, Json>>;
const host = (b: Json) => b.host as Json;
const w1 = (b: Json) => tensors(b).params!['agent/actor_w1']!;
const set = (f: (b: Json) => void) => (b: Json) => (f(b), b);

describe('checkpoint bodies are validated after the checksum', () => {
  it('reads back the body it wrote', () => {
    expect(readCheckpoint(written((b) => b))).toEqual(good);
  });

  const cases: [string, (b: Json) => unknown, string, RegExp][] = [
    ['a null body', () => null, '/body', /wrong type/],
    ['an array body', () => [], '/body', /wrong type/],
    ['no tensors', set((b) => delete b.tensors), '/body', /"tensors"/],
    ['no params group', set((b) => delete tensors(b).params), '/body/tensors', /"params"/],
    ['an empty params group', set((b) => (tensors(b).params = {})), '/body/tensors/params', /fewer than 1|at least/],
    ['empty host state', set((b) => (b.host = {})), '/body/host', /"key"/],
    ['an unknown dtype', set((b) => (w1(b).dtype = 'float64')), '/body/tensors/params/agent~1actor_w1/dtype', /not allowed/],
    ['a negative dim', set((b) => (w1(b).shape = [-4, 64])), '/body/tensors/params/agent~1actor_w1/shape/0', /out of range/],
    ['malformed base64', set((b) => (w1(b).data = '@@@@')), '/body/tensors/params/agent~1actor_w1/data', /not base64/],
    ['base64 with a bad length', set((b) => (w1(b).data = 'AAA')), '/body/tensors/params/agent~1actor_w1/data', /not base64/],
    ['short data', set((b) => (w1(b).data = (w1(b).data as string).slice(8))), '/body/tensors/params/agent~1actor_w1/data', /1018 bytes.*\[4, 64\] needs 1024/],
    ['a negative iteration', set((b) => (b.iteration = -1)), '/body/iteration', /out of range/],
    ['a fractional iteration', set((b) => (b.iteration = 1.5)), '/body/iteration', /wrong type/],
    ['a string iteration', set((b) => (b.iteration = '1')), '/body/iteration', /wrong type/],
    ['an iteration of 1e300', set((b) => (b.iteration = 1e300)), '/body/iteration', /out of range/],
    ['a global_step of 2^60', set((b) => (b.global_step = 2 ** 60)), '/body/global_step', /out of range/],
    ['an RNG key of 3 words', set((b) => (host(b).key = [1, 2, 3])), '/body/host/key', /more than 2|at most/],
    ['an RNG key of 1 word', set((b) => (host(b).key = [1])), '/body/host/key', /fewer than 2|at least/],
    ['a negative RNG word', set((b) => (host(b).key = [1, -2])), '/body/host/key/1', /out of range/],
    // loom eval and export load the pipeline a checkpoint names: its record of it is checked too.
    ['a string seed in the recorded source', set((b) => (host(b).source = { pipeline: 'p.json', env: { name: 'e', step: 's', reset: 'r' }, seed: '1' })), '/body/host/source/seed', /wrong type/],
    ['a recorded source without its env', set((b) => (host(b).source = { pipeline: 'p.json', seed: 1 })), '/body/host/source', /"env"/],
  ];
  for (const [what, mutate, pointer, message] of cases)
    it(`rejects ${what} at ${pointer}`, () => {
      const f = written(mutate);
      const e = loomErr(() => readCheckpoint(f));
      expect(e.info).toMatchObject({ code: 'E_SCHEMA', file: f, pointer });
      expect(e.info.message).toMatch(/^checkpoint .* is corrupt: /);
      expect(e.info.message).toMatch(message);
      expect(e.info.hint).toMatch(/without --resume/);
    });
});

describe('a checkpoint of another pipeline shape', () => {
  const resume = (cfg: ReturnType<typeof tiny>) => {
    const out = tmp();
    writeCheckpoint(join(out, 'checkpoint.json'), good as unknown as CheckpointBody);
    return loomErrAsync(() => train(cfg, { outDir: out, resume: true }));
  };

  it('says so and lists what differs (num_envs)', async () => {
    const e = await resume(tiny({ env: { step: G('envs/cartpole.step.graph.json'), reset: G('envs/cartpole.reset.graph.json'), num_envs: 4 } }));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/body' });
    expect(e.info.message).toMatch(/^checkpoint .* does not match this pipeline/);
    expect(e.info.found).toContain('tensors.env.state: float32[2, 4] in the checkpoint, float32[4, 4] here');
    expect(e.info.message).not.toMatch(/adam\.graph\.json/);
  });

  it('says so and lists what differs (another env and agent)', async () => {
    const e = await resume(withEnv(tiny({ policy: { act: G('algorithms/ppo-acrobot.act.graph.json') }, loss: G('algorithms/ppo-acrobot.loss.graph.json') }), 'acrobot'));
    expect(e.info.message).toMatch(/does not match this pipeline/);
    expect(e.info.found).toContain('tensors.params.agent/actor_w1: float32[4, 64] in the checkpoint, float32[6, 64] here');
    expect(e.info.found).toContain('tensors.optimizer.m: float32[');
  });

  it('names another pipeline', async () => {
    const e = await resume(tiny({ pipeline: 'other' }));
    expect(e.info.message).toMatch(/does not match this pipeline/);
    expect(e.info.found).toContain('pipeline: "tiny" in the checkpoint, "other" here');
  });

  it('rejects host state of the wrong size', async () => {
    const out = tmp();
    writeCheckpoint(join(out, 'checkpoint.json'), { ...good, host: { ...host(good), epReturn: [0, 0, 0] } } as unknown as CheckpointBody);
    const e = await loomErrAsync(() => train(tiny(), { outDir: out, resume: true }));
    expect(e.info.message).toMatch(/does not match this pipeline/);
    expect(e.info.found).toContain('host.epReturn: 3 entries in the checkpoint, 2 here');
  });
});
