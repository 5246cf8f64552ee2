// The csvLogger callback: one row per epoch in a CSV file, with the columns of Keras'
// CSVLogger: `epoch`, then the epoch log's keys sorted (by code point, as Python's sorted()),
// fixed by the first row written; a key a later epoch lacks is written "NA". Unlike Keras,
// `epoch` is the 1-based epoch number History holds (Keras writes the 0-based index), and the
// keys are History's (valLoss, imagesPerSecond, …), so the file and history.json agree.
import { existsSync, statSync } from 'node:fs';
import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';

import { ResNetError } from '../errors.js';
import { atomicWrite } from '../io/atomic_write.js';
import { readRegularFile } from '../io/read_file.js';
import * as validate from '../validate.js';
import type { Callback, EpochLog, TrainContext } from './callbacks.js';

export interface CsvLoggerOptions {
  /** The CSV file (its folder is created if missing). */
  path: string;
  /** Between values. Default ','. */
  separator?: string;
  /**
   * Add to an existing file instead of replacing it (Keras' `append`; the header is written
   * only into an empty file). When fit resumes from a checkpoint, rows of epochs after the
   * checkpoint's (written by the interrupted run) are removed first. Default false.
   */
  append?: boolean;
}

/** A CSV file larger than this is not read back for append (it is not a log of epochs). */
const MAX_APPEND_BYTES = 64 << 20;

function ioError(op: string, what: string, err: unknown): ResNetError {
  if (err instanceof ResNetError) return err;
  const e = err as NodeJS.ErrnoException;
  const why =
    e?.code === 'EISDIR'
      ? 'it is a folder'
      : e?.code === 'EEXIST' || e?.code === 'ENOTDIR'
        ? 'a folder above it exists and is not a folder'
        : e?.code === 'EACCES' || e?.code === 'EPERM'
          ? 'permission denied'
          : `${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`;
  return new ResNetError('E_IO', `${op}: ${what}: ${why}`);
}

/** E_IO when `path` exists and is not a regular file (a FIFO would block the open, a device take the rows). */
function checkWritable(path: string, op: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    return; // missing: created by the open
  }
  if (!st.isFile())
    throw new ResNetError('E_IO', `${op}: cannot write '${path}': ${st.isDirectory() ? 'it is a folder' : 'it is not a regular file'}`);
}

/**
 * The existing file's header keys and its rows of epochs ≤ `keepEpochs` (all rows when
 * undefined); undefined when the file is missing or empty.
 */
async function existingLog(path: string, separator: string, keepEpochs: number | undefined, op: string) {
  if (!existsSync(path)) return undefined;
  const text = (await readRegularFile(path, { op, maxBytes: MAX_APPEND_BYTES, what: 'a log to append to' })).toString('utf8');
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  if (lines.length === 0) return undefined;
  const header = lines[0]!.split(separator);
  const rows = lines.slice(1);
  const kept = keepEpochs === undefined ? rows : rows.filter((r) => Number(r.split(separator)[0]) <= keepEpochs);
  return {
    keys: header[0] === 'epoch' ? header.slice(1) : undefined,
    header: lines[0]!,
    rows: kept,
    dropped: rows.length - kept.length,
    endsWithNewline: text.endsWith('\n'),
  };
}

/**
 * Streams each epoch's log to a CSV file, as Keras' CSVLogger: a row per epoch, flushed and
 * fsynced when written, the file closed when fit ends or fails. An unwritable path is E_IO
 * when fit starts.
 */
export function csvLogger(options: CsvLoggerOptions): Callback {
  const op = 'csvLogger';
  validate.keys(options, op, ['path', 'separator', 'append']);
  if (typeof options.path !== 'string' || options.path.length === 0) throw new ResNetError('E_ARG', `${op}: path must be a file path`);
  const path = options.path;
  const separator = options.separator ?? ',';
  if (typeof separator !== 'string' || separator.length === 0 || /["\r\n]/.test(separator) || /[0-9.eE+-]/.test(separator)) {
    throw new ResNetError(
      'E_ARG',
      `${op}: separator must be a non-empty string without quotes, newlines, digits or number signs, got ${JSON.stringify(separator)}`,
    );
  }
  const append = validate.boolean(options.append ?? false, op, 'append');

  let handle: FileHandle | undefined;
  let keys: string[] | undefined;
  let headerWritten = false;

  const close = async (): Promise<void> => {
    const h = handle;
    handle = undefined;
    if (!h) return;
    try {
      await h.sync();
    } finally {
      await h.close().catch(() => undefined);
    }
  };

  const write = async (text: string): Promise<void> => {
    try {
      await handle!.write(text);
      await handle!.sync();
    } catch (err) {
      throw ioError(op, `cannot write '${path}'`, err);
    }
  };

  return {
    async onTrainBegin(ctx: TrainContext) {
      await close().catch(() => undefined);
      keys = undefined;
      headerWritten = false;
      try {
        await mkdir(dirname(path), { recursive: true });
      } catch (err) {
        throw ioError(op, `cannot create the folder of '${path}'`, err);
      }
      let unterminated = false; // the last line of the file to append to has no newline
      if (append) {
        const existing = await existingLog(path, separator, ctx.step > 0 ? ctx.epoch : undefined, op);
        unterminated = existing !== undefined && existing.dropped === 0 && !existing.endsWithNewline;
        if (existing) {
          keys = existing.keys;
          headerWritten = true;
          if (existing.dropped > 0) {
            const text = [existing.header, ...existing.rows].map((l) => `${l}\n`).join('');
            await atomicWrite(path, op, async (fh) => void (await fh.write(text)));
          }
        }
      }
      checkWritable(path, op);
      try {
        handle = await open(path, append ? 'a' : 'w');
      } catch (err) {
        throw ioError(op, `cannot open '${path}' for writing`, err);
      }
      if (unterminated) await write('\n');
    },
    async onEpochEnd(log: EpochLog) {
      if (!handle) return;
      const record = log as unknown as Record<string, unknown>;
      keys ??= Object.keys(log)
        .filter((k) => k !== 'epoch')
        .sort();
      let text = '';
      if (!headerWritten) {
        text += `${['epoch', ...keys].join(separator)}\n`;
        headerWritten = true;
      }
      const cell = (v: unknown): string => (typeof v === 'number' ? String(v) : v === undefined ? 'NA' : JSON.stringify(v));
      text += `${[String(log.epoch), ...keys.map((k) => cell(record[k]))].join(separator)}\n`;
      await write(text);
    },
    async onTrainEnd() {
      await close();
    },
    async onTrainAbort() {
      await close().catch(() => undefined);
    },
  };
}
