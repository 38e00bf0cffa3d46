/**
 * Checkpoints: one JSON file, written atomically, holding every tensor as base64 of its raw
 * bytes (bit-exact on reload) plus the host-side state, and a SHA-256 of the body so a truncated
 * or edited file is reported as corrupt instead of resuming from garbage.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../../compiler/errors.ts';
import { FILE_LIMITS, tryReadUntrusted } from '../../compiler/frontend/files.ts';
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
}

export function saveTensor(t: tf.Tensor): SavedTensor {
  const v = t.dataSync();
  const arr = t.dtype === 'float32' ? Float32Array.from(v) : Int32Array.from(v);
  return { dtype: t.dtype as SavedTensor['dtype'], shape: t.shape, data: Buffer.from(arr.buffer).toString('base64') };
}

export function loadTensor(s: SavedTensor): tf.Tensor {
  const buf = Buffer.from(s.data, 'base64');
  const bytes = new Uint8Array(buf.byteLength);
  bytes.set(buf);
  const arr = s.dtype === 'float32' ? new Float32Array(bytes.buffer) : new Int32Array(bytes.buffer);
  return tf.tensor(arr, s.shape, s.dtype);
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

export function readCheckpoint(path: string): CheckpointBody {
  const text = tryReadUntrusted(path, { what: 'checkpoint', maxBytes: FILE_LIMITS.checkpoint });
  if (text === undefined) throw new LoomError({ code: 'E_IO', message: `no checkpoint to resume from at ${path}`, file: path, hint: 'run without --resume to start fresh' });
  const corrupt = (why: string): never => {
    throw new LoomError({ code: 'E_IO', message: `checkpoint ${path} is corrupt: ${why}`, file: path, hint: 'delete it (or restore a backup) and run without --resume' });
  };
  const m = /^\{"sha256":"([0-9a-f]{64})","body":([\s\S]*)\}\n?$/.exec(text);
  if (!m) return corrupt('not a loom checkpoint file (or truncated)');
  if (createHash('sha256').update(m[2]!).digest('hex') !== m[1]) corrupt('its checksum does not match its contents');
  let body: CheckpointBody;
  try {
    body = JSON.parse(m[2]!) as CheckpointBody;
  } catch {
    // The parser's message would quote the file's text.
    return corrupt('its body is not valid JSON');
  }
  if (body.format !== 'loom-checkpoint' || body.version !== 1) corrupt(`unknown format ${String(body.format)} v${String(body.version)}`);
  return body;
}
