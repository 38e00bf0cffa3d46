/**
 * TensorBoard event files decoded without the writer's libraries: the TFRecord framing by hand,
 * every masked CRC32C against a table-driven CRC32C, the Event protos with a minimal wire-format
 * reader; and what TensorBoard would show of a run folder, against what its metrics.jsonl says.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), one table lookup per byte.
const TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});
export function crc32c(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
const masked = (bytes: Uint8Array) => {
  const c = crc32c(bytes);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
};

/** The records of a TFRecord file; every length and data CRC is checked. */
function records(file: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < file.length) {
    expect(file.length - at).toBeGreaterThanOrEqual(16);
    const len = Number(file.readBigUInt64LE(at));
    expect(file.readUInt32LE(at + 8), `length CRC of record ${out.length}`).toBe(masked(file.subarray(at, at + 8)));
    const data = file.subarray(at + 12, at + 12 + len);
    expect(data.length).toBe(len);
    expect(file.readUInt32LE(at + 12 + len), `data CRC of record ${out.length}`).toBe(masked(data));
    out.push(data);
    at += 12 + len + 4;
  }
  return out;
}

type Field = { no: number; varint?: bigint; bytes?: Buffer; fixed64?: Buffer; fixed32?: Buffer };

/** Protobuf wire format: (field number, wire type) keys, varints, 64-bit, length-delimited, 32-bit. */
function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[at++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (at < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, varint: varint() });
    else if (wire === 1) out.push({ no, fixed64: buf.subarray(at, (at += 8)) });
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ no, bytes: buf.subarray(at, (at += n)) });
    } else if (wire === 5) out.push({ no, fixed32: buf.subarray(at, (at += 4)) });
    else throw new Error(`wire type ${wire}`);
  }
  return out;
}

interface Decoded {
  wallTime: number;
  step: number;
  fileVersion?: string;
  writer?: string;
  sessionStatus?: number;
  scalars?: [string, number][];
}

/** event.proto: wall_time 1 (double), step 2, file_version 3, summary 5, session_log 7, source_metadata 10. */
function decodeEvent(buf: Buffer): Decoded {
  const e: Decoded = { wallTime: 0, step: 0 };
  for (const f of fields(buf)) {
    if (f.no === 1) e.wallTime = f.fixed64!.readDoubleLE(0);
    else if (f.no === 2) e.step = Number(f.varint!);
    else if (f.no === 3) e.fileVersion = f.bytes!.toString('utf8');
    else if (f.no === 10) e.writer = fields(f.bytes!).find((g) => g.no === 1)?.bytes?.toString('utf8');
    else if (f.no === 7) e.sessionStatus = Number(fields(f.bytes!).find((g) => g.no === 1)?.varint ?? 0n);
    else if (f.no === 5)
      // Summary.value 1 -> Value { tag 1, simple_value 2 (float) }
      e.scalars = fields(f.bytes!).map((v) => {
        const vf = fields(v.bytes!);
        return [vf.find((g) => g.no === 1)!.bytes!.toString('utf8'), vf.find((g) => g.no === 2)!.fixed32!.readFloatLE(0)];
      });
    else throw new Error(`unexpected Event field ${f.no}`);
  }
  return e;
}

export const eventFiles = (dir: string) => readdirSync(dir).filter((f) => f.includes('tfevents')).sort();
export const decodeFile = (path: string) => records(readFileSync(path)).map(decodeEvent);

/** The scalar events TensorBoard keeps: files in name order; a START purges steps >= its own. */
export function tensorboardView(dir: string): { step: number; scalars: [string, number][] }[] {
  let kept: { step: number; scalars: [string, number][] }[] = [];
  for (const f of eventFiles(dir))
    for (const e of decodeFile(join(dir, f))) {
      if (e.sessionStatus === 1) kept = kept.filter((k) => k.step < e.step);
      if (e.scalars) kept.push({ step: e.step, scalars: e.scalars });
    }
  return kept;
}

/** CleanRL's tags (cleanrl/ppo.py) for the metrics that have one; others are loom/<name>. */
export const CLEANRL: Record<string, string> = {
  lr: 'charts/learning_rate',
  episodic_return: 'charts/episodic_return',
  episodic_length: 'charts/episodic_length',
  steps_per_sec: 'charts/SPS',
  v_loss: 'losses/value_loss',
  pg_loss: 'losses/policy_loss',
  entropy: 'losses/entropy',
  approx_kl: 'losses/approx_kl',
  clipfrac: 'losses/clipfrac',
  explained_variance: 'losses/explained_variance',
};

/** What metrics.jsonl says TensorBoard should show: every number of a row but the step axes, as float32. */
export function expectedFromJsonl(dir: string): { step: number; scalars: [string, number][] }[] {
  const rows = readFileSync(join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number | null>);
  return rows.map((r) => ({
    step: r.global_step!,
    scalars: Object.entries(r)
      .filter(([k, v]) => k !== 'iteration' && k !== 'global_step' && v !== null)
      .map(([k, v]) => [CLEANRL[k] ?? `loom/${k}`, Math.fround(v!)] as [string, number]),
  }));
}

export const sorted = (v: { step: number; scalars: [string, number][] }[]) => v.map((e) => ({ step: e.step, scalars: [...e.scalars].sort(([a], [b]) => a.localeCompare(b)) }));
