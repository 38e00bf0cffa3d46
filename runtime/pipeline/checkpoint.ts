/**
 * Checkpoints: one JSON file, written atomically, holding every tensor as base64 of its raw
 * bytes (bit-exact on reload) plus the host-side state, and a SHA-256 of the body so a truncated
 * or edited file is reported as corrupt instead of resuming from garbage. The body is checked
 * against schemas/checkpoint.schema.json, and its tensors' data against their shapes.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { isLoomError, joinPointer, LoomError } from '../../compiler/errors.ts';
import { FILE_LIMITS, tryReadUntrusted } from '../../compiler/frontend/files.ts';
import { assertValid, schemaValidator } from '../../compiler/frontend/schema.ts';
import { writeFileAtomic } from '../fs.ts';
import type { TensorMap } from '../interpreter.ts';

export interface SavedTensor {
  dtype: 'float32' | 'int32' | 'bool';
  shape: number[];
  data: string;
}

export interface CheckpointBody {
  format: 'loom-checkpoint';
  version: 1;
  pipeline: string;
  backend: string;
  iteration: number;
  global_step: number;
  tensors: Record<string, Record<string, SavedTensor>>;
  host: Record<string, unknown>;
  /** In best/: the evaluation during training that made this the best policy so far. */
  eval?: { iteration: number; episodes: number; mean_return: number; deterministic: boolean };
}

/** host.source: the pipeline file, env and seed a checkpoint was trained with. */
export interface CheckpointSource {
  pipeline: string;
  env: { name: string; step: string; reset: string };
  seed: number;
}

export function saveTensor(t: tf.Tensor): SavedTensor {
  const v = t.dataSync();
  const arr = t.dtype === 'float32' ? Float32Array.from(v) : Int32Array.from(v);
  return { dtype: t.dtype as SavedTensor['dtype'], shape: t.shape, data: Buffer.from(arr.buffer).toString('base64') };
}

/** A saved tensor's values, decoded from its base64 bytes. */
export function savedValues(s: SavedTensor): Float32Array | Int32Array {
  const buf = Buffer.from(s.data, 'base64');
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  return s.dtype === 'float32' ? new Float32Array(bytes.buffer) : new Int32Array(bytes.buffer);
}

export function loadTensor(s: SavedTensor): tf.Tensor {
  return tf.tensor(savedValues(s), s.shape, s.dtype);
}

export function saveGroup(m: TensorMap): Record<string, SavedTensor> {
  return Object.fromEntries(Object.entries(m).map(([k, t]) => [k, saveTensor(t)]));
}

export function loadGroup(m: Record<string, SavedTensor>): TensorMap {
  return Object.fromEntries(Object.entries(m).map(([k, s]) => [k, loadTensor(s)]));
}

export function writeCheckpoint(path: string, body: CheckpointBody): void {
  writeChecksummed(path, body);
}

/** Writes `{"sha256": ..., "body": ...}` atomically: the layout every checkpoint file has, whatever its body. */
export function writeChecksummed(path: string, body: object): void {
  const text = JSON.stringify(body);
  const sha256 = createHash('sha256').update(text).digest('hex');
  writeFileAtomic(path, `{"sha256":"${sha256}","body":${text}}\n`);
}

/** `purpose` words the errors: resuming a run, or reading a saved policy (loom eval, loom export). */
export function readCheckpoint(path: string, purpose: 'resume' | 'policy' = 'resume'): CheckpointBody {
  const body = readChecksummed(path, purpose);
  validateBody<CheckpointBody>(body, path, 'checkpoint.schema.json');
  return body;
}

/**
 * Reads a checkpoint file's body, checked against its checksum and not yet against any schema;
 * missing, truncated and edited files are errors that name the file.
 */
export function readChecksummed(path: string, purpose: 'resume' | 'policy' = 'resume'): unknown {
  const resume = purpose === 'resume';
  const text = tryReadUntrusted(path, { what: 'checkpoint', maxBytes: FILE_LIMITS.checkpoint });
  if (text === undefined)
    throw new LoomError({ code: 'E_IO', message: resume ? `no checkpoint to resume from at ${path}` : `no checkpoint at ${path}`, file: path, hint: resume ? 'run without --resume to start fresh' : 'give a run folder (holding checkpoint.json, or best/checkpoint.json) or a checkpoint file' });
  const corrupt = (why: string): never => {
    throw new LoomError({ code: 'E_IO', message: `checkpoint ${path} is corrupt: ${why}`, file: path, hint: resume ? 'delete it (or restore a backup) and run without --resume' : 'use another checkpoint of the run, e.g. its best/checkpoint.json' });
  };
  const m = /^\{"sha256":"([0-9a-f]{64})","body":([\s\S]*)\}\n?$/.exec(text);
  if (!m) return corrupt('not a loom checkpoint file (or truncated)');
  if (createHash('sha256').update(m[2]!).digest('hex') !== m[1]) corrupt('its checksum does not match its contents');
  let body: unknown;
  try {
    body = JSON.parse(m[2]!);
  } catch {
    // The parser's message would quote the file's text.
    return corrupt('its body is not valid JSON');
  }
  return body;
}

const HINT = 'delete it (or restore a backup) and run without --resume';

/**
 * A body whose checksum is right can still be wrong (written by a bug, or edited and re-hashed):
 * the schema, then every tensor's data against its shape. Errors point into the file at /body/...
 */
export function validateBody<B extends Pick<CheckpointBody, 'tensors'>>(body: unknown, path: string, schema: string): asserts body is B {
  try {
    assertValid(schemaValidator(schema), body, path, '/body', 'checkpoint');
  } catch (e) {
    if (!isLoomError(e)) throw e;
    throw new LoomError({ ...e.info, message: `checkpoint ${path} is corrupt: ${e.info.message}`, hint: HINT });
  }
  for (const [group, tensors] of Object.entries((body as Pick<CheckpointBody, 'tensors'>).tensors))
    for (const [name, t] of Object.entries(tensors)) {
      const fail = (why: string): never => {
        throw new LoomError({ code: 'E_SCHEMA', message: `checkpoint ${path} is corrupt: tensor ${group}.${name} ${why}`, file: path, pointer: joinPointer('/body/tensors', group, name, 'data'), hint: HINT });
      };
      if (t.data.length % 4 !== 0 || !BASE64.test(t.data)) fail('data is not base64');
      const bytes = (t.data.length / 4) * 3 - (t.data.endsWith('==') ? 2 : t.data.endsWith('=') ? 1 : 0);
      const want = t.shape.reduce((a, b) => a * b, 1) * 4;
      if (bytes !== want) fail(`has ${bytes} bytes of data; its shape [${t.shape.join(', ')}] needs ${want} (4 per element)`);
    }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** What a checkpoint of a given pipeline holds; built by the driver from the pipeline and its graphs. */
export interface CheckpointLayout {
  pipeline: string;
  /** Group -> tensor name -> dtype and shape. */
  tensors: Record<string, Record<string, { dtype: SavedTensor['dtype']; shape: number[] }>>;
  /** Host entries that are objects here (true) or null (false): obsStat, retStat, amppo. */
  hostPresent: Record<string, boolean>;
  /** Host arrays ("epReturn", "obsStat.mean") and their lengths, where their parent is present. */
  hostLengths: Record<string, number>;
}

const MAX_LISTED = 5;

/**
 * Compares a (valid) checkpoint body with the pipeline being resumed and throws one error listing
 * the first differences, so a checkpoint of another pipeline shape is reported as such rather than
 * as a bad input to whichever graph first meets a mismatched tensor.
 */
export function matchCheckpoint(body: Pick<CheckpointBody, 'pipeline' | 'tensors' | 'host'>, layout: CheckpointLayout, path: string, pipelineFile: string): void {
  const diffs: string[] = [];
  if (body.pipeline !== layout.pipeline) diffs.push(`pipeline: ${JSON.stringify(body.pipeline)} in the checkpoint, ${JSON.stringify(layout.pipeline)} here`);
  const type = (t: { dtype: string; shape: number[] }) => `${t.dtype}[${t.shape.join(', ')}]`;
  for (const [group, want] of Object.entries(layout.tensors)) {
    const have = body.tensors[group] ?? {};
    for (const [name, t] of Object.entries(want)) {
      const h = Object.hasOwn(have, name) ? have[name] : undefined;
      if (!h) diffs.push(`tensors.${group}.${name}: missing from the checkpoint`);
      else if (type(h) !== type(t)) diffs.push(`tensors.${group}.${name}: ${type(h)} in the checkpoint, ${type(t)} here`);
    }
    for (const name of Object.keys(have)) if (!Object.hasOwn(want, name)) diffs.push(`tensors.${group}.${name}: in the checkpoint, not in this pipeline`);
  }
  const host = body.host as Record<string, unknown>;
  for (const [k, present] of Object.entries(layout.hostPresent))
    if ((host[k] !== null) !== present) diffs.push(`host.${k}: ${present ? 'missing from the checkpoint' : 'in the checkpoint, not in this pipeline'}`);
  for (const [k, n] of Object.entries(layout.hostLengths)) {
    const [parent, child] = k.split('.') as [string, string | undefined];
    const v = child === undefined ? host[parent] : (host[parent] as Record<string, unknown> | null)?.[child];
    if (Array.isArray(v) && v.length !== n) diffs.push(`host.${k}: ${v.length} entries in the checkpoint, ${n} here`);
  }
  if (!diffs.length) return;
  const more = diffs.length > MAX_LISTED ? `; and ${diffs.length - MAX_LISTED} more` : '';
  throw new LoomError({
    code: 'E_SCHEMA',
    message: `checkpoint ${path} does not match this pipeline (${pipelineFile})`,
    file: path,
    pointer: '/body',
    expected: `a checkpoint written by pipeline "${layout.pipeline}" as ${pipelineFile} defines it`,
    found: diffs.slice(0, MAX_LISTED).join('; ') + more,
    hint: 'it was written by another pipeline or before this one changed: resume with the pipeline that wrote it, or train into another --out folder (or without --resume)',
  });
}
