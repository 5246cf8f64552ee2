// The one way the library opens a file a user named: only regular files, checked without
// blocking, with a size cap from the file's format, and every failure a ResNetError naming
// the path.
//
// Why not fs.readFile: opening a FIFO blocks in open() until a writer appears (forever, and it
// holds one of libuv's threads, so even process.exit hangs); a symlink to /dev/zero reads
// without end; a directory or a symlink loop fails with a bare errno. Here the file is opened
// with O_NONBLOCK (which makes open() of a FIFO return at once and changes nothing for a
// regular file), fstat'ed on the descriptor (so what is checked is what is read), and refused
// unless it is a regular file no larger than the caller's cap.
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

import { ResNetError } from '../errors.js';

// Windows has neither FIFOs nor O_NONBLOCK.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

export interface RegularFileOptions {
  /** The operation named in errors: 'loadKeras', 'datasets.imageFolder', … */
  op: string;
  /** The largest size this kind of file may have; a larger file is E_FORMAT. */
  maxBytes: number;
  /** What the file is, for the size error: 'an image', 'a weight shard', … */
  what?: string;
}

/** Node's errno → a few words ('not found'), as the data loaders have always said it. */
function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return 'not found';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ELOOP':
      return 'too many levels of symbolic links (a symlink loop?)';
    case 'EISDIR':
      return 'is a directory, not a file';
    default:
      return e?.message ?? String(err); // Node's message starts with the code
  }
}

/** E_IO `${op}: cannot read ${path}: ${why}` (unquoted, as the data loaders' messages are). */
export function readError(op: string, path: string, why: unknown): ResNetError {
  return new ResNetError('E_IO', `${op}: cannot read ${path}: ${typeof why === 'string' ? why : reason(why)}`);
}

function kind(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens `path` for reading if it is a regular file (symlinks followed), never blocking.
 * Returns the handle and the file's size; the caller closes the handle. E_IO naming the path
 * for anything else (missing, unreadable, a directory, a FIFO, a device, a symlink loop).
 */
export async function openRegularFile(path: string, op: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (err) {
    throw readError(op, path, err);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw readError(op, path, `is ${kind(st)}, not a regular file`);
    return { handle, size: st.size };
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err instanceof ResNetError ? err : readError(op, path, err);
  }
}

/**
 * Fills `target` with the file's bytes from `position` on. A file that ends early was
 * truncated or changed while being read: E_IO naming it. Returns `target`.
 */
export async function readInto(handle: FileHandle, target: Uint8Array, position: number, op: string, path: string): Promise<Uint8Array> {
  const length = target.length;
  let done = 0;
  while (done < length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(target, done, length - done, position + done));
    } catch (err) {
      throw readError(op, path, err);
    }
    if (bytesRead === 0) {
      throw readError(
        op,
        path,
        `the file ended at byte ${position + done} while reading ${length} bytes at ${position} (truncated or changed while reading?)`,
      );
    }
    done += bytesRead;
  }
  return target;
}

/** `length` bytes at `position`, in a new buffer (see readInto). */
export function readExactly(handle: FileHandle, position: number, length: number, op: string, path: string): Promise<Uint8Array> {
  return readInto(handle, new Uint8Array(length), position, op, path);
}

/** The whole of a regular file of at most `maxBytes` bytes (see openRegularFile). */
export async function readRegularFile(path: string, options: RegularFileOptions): Promise<Buffer> {
  const { op, maxBytes, what = 'this file' } = options;
  const { handle, size } = await openRegularFile(path, op);
  try {
    if (size > maxBytes) {
      throw new ResNetError('E_FORMAT', `${op}: ${path} is ${size} bytes, above the limit of ${maxBytes} bytes for ${what}`);
    }
    const bytes = await readExactly(handle, 0, size, op, path);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } finally {
    await handle.close().catch(() => undefined);
  }
}
