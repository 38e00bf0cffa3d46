/**
 * Fuzzing of pipeline files and checkpoints: every mutant either loads or raises a LoomError
 * (never another exception). Pipelines go through the loader (schema, extends, role contracts);
 * checkpoints, written with a valid SHA-256 over a mutated body, through readCheckpoint and the
 * resume check against the pipeline's checkpoint layout.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import fc from 'fast-check';
import { beforeAll, describe, it } from 'vitest';
import { isLoomError } from '../../../compiler/errors.ts';
import { matchCheckpoint, readCheckpoint, writeCheckpoint, type CheckpointBody } from '../../../runtime/pipeline/checkpoint.ts';
import { loadPipelineGraphs, parsePipeline } from '../../../runtime/pipeline/config.ts';
import { checkpointLayout, train } from '../../../runtime/pipeline/driver.ts';
import { G, tinyPipeline as tiny } from '../../helpers/tiny-pipeline.ts';

type Json = unknown;

/** Runs `f`; a LoomError counts as a clean rejection, anything else fails the property. */
function loadsOrLoomError(f: () => unknown): boolean {
  try {
    f();
  } catch (e) {
    if (!isLoomError(e)) throw e;
  }
  return true;
}

/** Every path (as keys) to a value inside a JSON document. */
function paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

type Mutation = { kind: 'delete' } | { kind: 'set'; value: Json } | { kind: 'add'; key: string; value: Json };

/** obj[k] = v as an own property, as JSON.parse makes it (an assignment to "__proto__" would set the prototype). */
function put(obj: Record<string | number, Json>, k: string | number, v: Json): void {
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Applies a mutation at a path of a deep copy; the root itself is replaced by `set`. */
function mutate(doc: Json, path: (string | number)[], m: Mutation): Json {
  const root = structuredClone(doc);
  const isObject = (v: Json): v is Record<string, Json> => !!v && typeof v === 'object' && !Array.isArray(v);
  if (path.length === 0) {
    if (m.kind === 'set') return m.value;
    if (m.kind === 'add' && isObject(root)) put(root, m.key, m.value);
    return root;
  }
  let parent = root as Record<string | number, Json>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, Json>;
  const leaf = path[path.length - 1]!;
  if (m.kind === 'delete') {
    if (Array.isArray(parent)) parent.splice(leaf as number, 1);
    else delete parent[leaf];
  } else if (m.kind === 'set') put(parent, leaf, m.value);
  else {
    const target = parent[leaf];
    if (isObject(target)) put(target, m.key, m.value);
    else put(parent, leaf, { [m.key]: m.value });
  }
  return root;
}

const numbers = fc.oneof(
  fc.constantFrom(0, -1, 1, 2, 3, 0.5, -0.5, 1e300, -1e300, 2 ** 53, 2 ** 31, 1e-300, NaN, Infinity, -Infinity, -0),
  fc.integer({ min: -5, max: 1000 }),
  fc.double(),
);
const strings = fc.oneof(fc.constantFrom('', 'adam', 'alphagrad', 'clip-grad-norm', 'ppo', 'grpo', 'hybrid-grpo', 'amppo', '__proto__', 'constructor', '../../x', '../envs/cartpole.reset.graph.json', '../algorithms/ppo-acrobot.act.graph.json', '../algorithms/grpo/loss.graph.json', 'ppo-cartpole.json', 'amppo-cartpole.json', 'grpo-cartpole.json', 'nope.json', '../nets/mlp.graph.json'), fc.string({ maxLength: 12 }));
const garbage: fc.Arbitrary<Json> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, numbers, strings, fc.boolean(), fc.constant(null), fc.array(tie('value'), { maxLength: 3 }), fc.dictionary(strings, tie('value'), { maxKeys: 3 })),
})).value;
const keys = fc.constantFrom('extends', 'algorithm', 'group', 'size', 'horizon', 'select', 'hp', 'transform', 'kind', 'num_envs', 'steps', 'minibatches', 'norm_adv', 'name', 'lr', 'pipeline', '__proto__', 'nope');
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant<Mutation>({ kind: 'delete' }),
  garbage.map((value): Mutation => ({ kind: 'set', value })),
  fc.tuple(keys, garbage).map(([key, value]): Mutation => ({ kind: 'add', key, value })),
);

describe('fuzzed pipeline files', () => {
  const dir = G('pipelines');
  const shipped = readdirSync(dir).filter((f) => f.endsWith('.json'));
  it('load or raise a LoomError', () => {
    const docs = shipped.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Json);
    const arb = fc.integer({ min: 0, max: docs.length - 1 }).chain((i) =>
      fc.tuple(fc.constant(i), fc.array(fc.tuple(fc.constantFrom(...paths(docs[i])), mutation), { minLength: 1, maxLength: 3 })),
    );
    fc.assert(
      fc.property(arb, ([i, ms]) => {
        let doc = docs[i];
        // Later mutations may name paths an earlier one removed: those are skipped.
        for (const [p, m] of ms) if (paths(doc).some((q) => q.join('\u0000') === p.join('\u0000'))) doc = mutate(doc, p, m);
        // The mutant stands in the pipelines folder, so relative paths and extends resolve as for the shipped file.
        return loadsOrLoomError(() => loadPipelineGraphs(parsePipeline(doc, join(dir, shipped[i]!))));
      }),
      { numRuns: 400, seed: 15 },
    );
  });
});

describe('fuzzed checkpoints', () => {
  let body: Json;
  const cfg = () => tiny();
  beforeAll(async () => {
    await tf.setBackend('cpu');
    const out = mkdtempSync(join(tmpdir(), 'loom-fuzz-ckpt-'));
    tf.dispose(Object.values((await train(cfg(), { outDir: out, maxIterations: 1 })).params));
    body = (JSON.parse(readFileSync(join(out, 'checkpoint.json'), 'utf8')) as { body: Json }).body;
  });
  it('load and match, or raise a LoomError', () => {
    const c = cfg();
    const layout = checkpointLayout(c, loadPipelineGraphs(c));
    const file = join(mkdtempSync(join(tmpdir(), 'loom-fuzz-ckpt-')), 'checkpoint.json');
    const arb = fc.array(fc.tuple(fc.nat(), mutation), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(arb, (ms) => {
        let doc = body;
        for (const [n, m] of ms) {
          const ps = paths(doc);
          doc = mutate(doc, ps[n % ps.length]!, m);
        }
        writeCheckpoint(file, doc as CheckpointBody);
        return loadsOrLoomError(() => matchCheckpoint(readCheckpoint(file), layout, file, c.file));
      }),
      { numRuns: 300, seed: 15 },
    );
  });
});
