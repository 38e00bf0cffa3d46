/**
 * Checkpoints: one JSON file, written atomically, holding every tensor as base64 of its raw
 * bytes (bit-exact on reload) plus the host-side state, and a SHA-256 of the body so a truncated
 * or edited file is reported as corrupt instead of resuming from garbage.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../../compiler/errors.ts';
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
  const text = JSON.stringify(body);
  const sha256 = createHash('sha256').update(text).digest('hex');
  writeFileAtomic(path, `{"sha256":"${sha256}","body":${text}}\n`);
}

/** `purpose` words the errors: resuming a run, or reading a saved policy (loom eval, loom export). */
export function readCheckpoint(path: string, purpose: 'resume' | 'policy' = 'resume'): CheckpointBody {
  const resume = purpose === 'resume';
  if (!existsSync(path))
    throw new LoomError({ code: 'E_IO', message: resume ? `no checkpoint to resume from at ${path}` : `no checkpoint at ${path}`, file: path, hint: resume ? 'run without --resume to start fresh' : 'give a run folder (holding checkpoint.json, or best/checkpoint.json) or a checkpoint file' });
  const corrupt = (why: string): never => {
    throw new LoomError({ code: 'E_IO', message: `checkpoint ${path} is corrupt: ${why}`, file: path, hint: resume ? 'delete it (or restore a backup) and run without --resume' : 'use another checkpoint of the run, e.g. its best/checkpoint.json' });
  };
  const text = readFileSync(path, 'utf8');
  const m = /^\{"sha256":"([0-9a-f]{64})","body":([\s\S]*)\}\n?$/.exec(text);
  if (!m) return corrupt('not a loom checkpoint file (or truncated)');
  if (createHash('sha256').update(m[2]!).digest('hex') !== m[1]) corrupt('its checksum does not match its contents');
  let body: CheckpointBody;
  try {
    body = JSON.parse(m[2]!) as CheckpointBody;
  } catch (e) {
    return corrupt(`invalid JSON (${(e as Error).message})`);
  }
  if (body.format !== 'loom-checkpoint' || body.version !== 1) corrupt(`unknown format ${String(body.format)} v${String(body.version)}`);
  return body;
}
