/**
 * TensorBoard event files (`events.out.tfevents.*`): `tensorboard.Event` protos encoded with
 * protobufjs, one per TFRecord: uint64 length (little endian), masked CRC32C of those 8 bytes,
 * the data, masked CRC32C of the data. Scalars are
 * `simple_value`s, as CleanRL's SummaryWriter writes them; TensorBoard reads them into its scalars
 * dashboard. Every record is appended as it is written, so a killed run keeps all but the record
 * being written, which TensorBoard skips as truncated.
 */
import { readdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import CRC32C from 'crc-32/crc32c.js';
import protobuf from 'protobufjs';
import { appendOutput, outputError, outputPath } from '../fs.ts';

/** TensorBoard reads the files of a run whose name contains "tfevents", in name order. */
const EVENT_FILE = /^events\.out\.tfevents\.(\d+)\./;

export const FILE_VERSION = 'brain.Event:2';

/**
 * The part of TensorBoard's `Event` and `Summary` messages that loom writes, declared with
 * protobufjs's JSON descriptors. Message names, field names and numbers are the wire contract
 * TensorBoard reads. The oneofs matter: a scalar of 0 is still written, because TensorBoard keeps
 * a `Summary.Value` only when one member of its `value` oneof is set.
 */
const TENSORBOARD_MESSAGES = {
  nested: {
    tensorboard: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ['file_version', 'summary', 'session_log'] } },
          fields: {
            wall_time: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            file_version: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
            session_log: { type: 'SessionLog', id: 7 },
            source_metadata: { type: 'SourceMetadata', id: 10 },
          },
        },
        SourceMetadata: { fields: { writer: { type: 'string', id: 1 } } },
        SessionLog: {
          fields: { status: { type: 'SessionStatus', id: 1 }, checkpoint_path: { type: 'string', id: 2 }, msg: { type: 'string', id: 3 } },
          nested: { SessionStatus: { values: { STATUS_UNSPECIFIED: 0, START: 1, STOP: 2, CHECKPOINT: 3 } } },
        },
        Summary: {
          fields: { value: { rule: 'repeated', type: 'Value', id: 1 } },
          nested: {
            Value: {
              oneofs: { value: { oneof: ['simple_value'] } },
              fields: { tag: { type: 'string', id: 1 }, simple_value: { type: 'float', id: 2 } },
            },
          },
        },
      },
    },
  },
};

let eventType: protobuf.Type | null = null;

/** Built on first use: most commands never write an event file. */
function Event(): protobuf.Type {
  eventType ??= protobuf.Root.fromJSON(TENSORBOARD_MESSAGES).lookupType('tensorboard.Event');
  return eventType;
}

/** CRC32C as TFRecord stores it: rotated right by 15 bits plus a constant (uint32). */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = CRC32C.buf(data) >>> 0;
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord holding `data`. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** The event files in `dir`, in the order TensorBoard reads them. */
export function eventFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw outputError(e, 'read folder', dir);
  }
  return names.filter((f) => EVENT_FILE.test(f)).sort();
}

/** Removes the event files in `dir`: a run started afresh in a folder replaces its metrics. */
export function removeEventFiles(dir: string): void {
  for (const f of eventFiles(dir)) {
    try {
      rmSync(join(dir, f), { force: true });
    } catch (e) {
      throw outputError(e, 'remove', join(dir, f));
    }
  }
}

export interface EventFileOptions {
  /**
   * A resumed run: the first step it redoes. A `SessionLog` START at this step tells TensorBoard
   * to discard the events of earlier files from this step on (they were logged after the
   * checkpoint the run resumes from), as TensorFlow's writers do on restart.
   */
  restartStep?: number;
}

/** A new event file in `dir`, named as TensorFlow names them; a file per run start. */
export class EventFileWriter {
  readonly path: string;

  constructor(dir: string, opts: EventFileOptions = {}) {
    // The name starts with the time in seconds, and TensorBoard reads files in name order: a
    // resume within the same second as the previous start still gets a later name.
    const last = eventFiles(dir).map((f) => Number(EVENT_FILE.exec(f)![1]));
    const seconds = Math.max(Math.floor(Date.now() / 1000), ...last.map((s) => s + 1));
    this.path = outputPath(dir, `events.out.tfevents.${seconds}.${hostname()}.${process.pid}`);
    this.write({ wall_time: Date.now() / 1000, step: 0, file_version: FILE_VERSION, source_metadata: { writer: 'tensorloom' } });
    if (opts.restartStep !== undefined) this.write({ wall_time: Date.now() / 1000, step: opts.restartStep, session_log: { status: 'START' } });
  }

  /** One event holding a scalar per tag, at `step`. */
  scalars(step: number, values: ReadonlyArray<readonly [tag: string, value: number]>, wallTime = Date.now() / 1000): void {
    this.write({ wall_time: wallTime, step, summary: { value: values.map(([tag, v]) => ({ tag, simple_value: v })) } });
  }

  private write(event: Record<string, unknown>): void {
    const E = Event();
    appendOutput(this.path, tfRecord(E.encode(E.fromObject(event)).finish()));
  }
}
