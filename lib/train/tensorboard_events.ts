// TensorBoard event files: TFRecords (lib/io/tfrecord.ts) of `Event` protocol buffers, as
// tensorboard/compat/proto/event.proto and summary.proto define them:
//
//   Event          wall_time double = 1, step int64 = 2, file_version string = 3,
//                  summary Summary = 5, session_log SessionLog = 7,
//                  source_metadata SourceMetadata = 10 (writer string = 1)
//   Summary        value repeated Value = 1
//   Summary.Value  tag string = 1, simple_value float = 2, histo HistogramProto = 5
//   HistogramProto min = 1, max = 2, num = 3, sum = 4, sum_squares = 5 (doubles),
//                  bucket_limit = 6, bucket = 7 (packed repeated doubles)
//   SessionLog     status enum = 1 (START = 1)
//
// A file starts with an Event holding file_version "brain.Event:2" and the writer's name, and is named
// events.out.tfevents.<seconds>.<hostname>.<pid>.<n>, as TensorBoard's own writer names it
// (the reader picks files by the "tfevents" in the name).
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { ResNetError } from '../errors.js';
import { tfRecord } from '../io/tfrecord.js';
import { ProtoMessage } from '../io/protobuf.js';

export const FILE_VERSION = 'brain.Event:2';

/** Seconds since the epoch, as Event.wall_time holds them. */
const now = (): number => Date.now() / 1000;

function event(step: number, wallTime: number, fill: (w: ProtoMessage) => void): Uint8Array {
  const w = new ProtoMessage().double(1, wallTime).int64(2, step);
  fill(w);
  return w.finish();
}

/** An Event with one scalar (Summary.Value.simple_value, a float32). */
export function scalarEvent(tag: string, value: number, step: number, wallTime = now()): Uint8Array {
  const summaryValue = new ProtoMessage().string(1, tag).float(2, value).finish();
  const summary = new ProtoMessage().bytes(1, summaryValue).finish();
  return event(step, wallTime, (w) => w.bytes(5, summary));
}

/** The statistics and buckets of a HistogramProto. */
export interface Histogram {
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  /** Right edge of each bucket (the first bucket starts at min). */
  bucketLimit: number[];
  bucket: number[];
}

/**
 * `values` in `buckets` equal-width buckets between their min and max (TensorFlow 2's default
 * is 30); all-equal values make one bucket. Non-finite values are left out of the buckets and
 * the statistics. Undefined when no value is finite.
 */
export function histogram(values: ArrayLike<number>, buckets = 30): Histogram | undefined {
  let min = Infinity;
  let max = -Infinity;
  let num = 0;
  let sum = 0;
  let sumSquares = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    num++;
    sum += v;
    sumSquares += v * v;
  }
  if (num === 0) return undefined;
  if (min === max) return { min, max, num, sum, sumSquares, bucketLimit: [max], bucket: [num] };
  const width = (max - min) / buckets;
  const bucket = new Array<number>(buckets).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    bucket[Math.min(buckets - 1, Math.floor((v - min) / width))]!++;
  }
  const bucketLimit = bucket.map((_, k) => (k === buckets - 1 ? max : min + width * (k + 1)));
  return { min, max, num, sum, sumSquares, bucketLimit, bucket };
}

/** An Event with one histogram (Summary.Value.histo). */
export function histogramEvent(tag: string, h: Histogram, step: number, wallTime = now()): Uint8Array {
  const histo = new ProtoMessage()
    .double(1, h.min)
    .double(2, h.max)
    .double(3, h.num)
    .double(4, h.sum)
    .double(5, h.sumSquares)
    .packedDoubles(6, h.bucketLimit)
    .packedDoubles(7, h.bucket)
    .finish();
  const summaryValue = new ProtoMessage().string(1, tag).bytes(5, histo).finish();
  const summary = new ProtoMessage().bytes(1, summaryValue).finish();
  return event(step, wallTime, (w) => w.bytes(5, summary));
}

/** The first Event of every file: the format version and who wrote the file. */
export function fileVersionEvent(wallTime = now(), writer = 'resnet-native'): Uint8Array {
  const sourceMetadata = new ProtoMessage().string(1, writer).finish();
  return new ProtoMessage().double(1, wallTime).string(3, FILE_VERSION).bytes(10, sourceMetadata).finish();
}

/**
 * SessionLog START at `step`: TensorBoard's reader drops what earlier files hold at this step
 * and after (the steps of a run that crashed after its last checkpoint), so a resumed run's
 * curves do not double back.
 */
export function sessionStartEvent(step: number, wallTime = now()): Uint8Array {
  const sessionLog = new ProtoMessage().int64(1, 1).finish();
  return event(step, wallTime, (w) => w.bytes(7, sessionLog));
}

let fileCount = 0;

/** events.out.tfevents.<seconds>.<host>.<pid>.<n>, as TensorBoard's EventFileWriter names its files. */
export function eventFileName(): string {
  const host = hostname().replace(/[^A-Za-z0-9._-]/g, '_') || 'localhost';
  return `events.out.tfevents.${String(Math.floor(now())).padStart(10, '0')}.${host}.${process.pid}.${fileCount++}`;
}

/** A flush every this many bytes of pending records, at the latest. */
const FLUSH_BYTES = 1 << 20;

/**
 * One event file, written in order. Records are buffered and written by flush() (which the
 * callback calls at every epoch end, and close()); `sync` also fsyncs, so an epoch's events
 * survive a crash. Errors are E_IO naming the file.
 */
export class EventFileWriter {
  readonly path: string;
  readonly #op: string;
  #handle: FileHandle | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #lastFlush = performance.now();

  private constructor(path: string, handle: FileHandle, op: string) {
    this.path = path;
    this.#handle = handle;
    this.#op = op;
  }

  /** Creates `dir` if needed and a new event file in it, starting with the file_version event. */
  static async create(dir: string, op: string): Promise<EventFileWriter> {
    const path = join(dir, eventFileName());
    let handle: FileHandle;
    try {
      await mkdir(dir, { recursive: true });
      handle = await open(path, 'wx');
    } catch (err) {
      throw ioError(op, `cannot create an event file in '${dir}'`, err);
    }
    const writer = new EventFileWriter(path, handle, op);
    writer.write(fileVersionEvent());
    await writer.flush(true);
    return writer;
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /** Queues one Event (an encoded message); written by the next flush. */
  write(eventBytes: Uint8Array): void {
    if (!this.#handle) throw new ResNetError('E_IO', `${this.#op}: ${this.path} is closed`);
    const record = tfRecord(eventBytes);
    this.#pending.push(record);
    this.#pendingBytes += record.length;
  }

  /** Whether enough is pending (bytes, or seconds since the last flush) to flush now. */
  due(seconds: number): boolean {
    return this.#pendingBytes >= FLUSH_BYTES || (this.#pendingBytes > 0 && performance.now() - this.#lastFlush >= seconds * 1000);
  }

  /** Writes what is pending; `sync`: and fsyncs the file. */
  async flush(sync = false): Promise<void> {
    const handle = this.#handle;
    if (!handle) return;
    const chunks = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#lastFlush = performance.now();
    try {
      if (chunks.length > 0) await handle.writev(chunks);
      if (sync) await handle.sync();
    } catch (err) {
      throw ioError(this.#op, `cannot write '${this.path}'`, err);
    }
  }

  /** Flushes, fsyncs and closes; a second close does nothing. */
  async close(): Promise<void> {
    if (!this.#handle) return;
    try {
      await this.flush(true);
    } finally {
      const handle = this.#handle;
      this.#handle = undefined;
      await handle.close().catch(() => undefined);
    }
  }
}

function ioError(op: string, what: string, err: unknown): ResNetError {
  if (err instanceof ResNetError) return err;
  const e = err as NodeJS.ErrnoException;
  const why =
    e?.code === 'EEXIST' || e?.code === 'ENOTDIR'
      ? 'it, or a folder above it, exists and is not a folder'
      : e?.code === 'EACCES' || e?.code === 'EPERM'
        ? 'permission denied'
        : `${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`;
  return new ResNetError('E_IO', `${op}: ${what}: ${why}`);
}
