// Replacing a file atomically: write a temporary file beside it, fsync, rename over the
// target, fsync the directory. A reader sees the old file or the whole new one, never a part.
//
// A process killed mid-write (SIGKILL, OOM killer, power loss) leaves its temporary file
// behind; checkpoints are large, so a run killed again and again fills the disk. Each write
// therefore first removes the temporaries that dead processes left in the same folder. The
// temporary's name says whose it is: `${target}.tmp-${pid}-${host}-${random}`, host being a
// hash of the host name, so that only files of this host (where the pid means something)
// whose process is gone — process.kill(pid, 0) fails with ESRCH — are removed; this process's
// own are removed only when no write of its own is using them.
import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, lstat, open, readdir, rename, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';

import { ResNetError } from '../errors.js';

const HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
const TEMP_NAME = /^.+\.tmp-([1-9][0-9]{0,9})-([0-9a-f]{8})-[0-9a-f]{12}$/;

/** Temporary files this process is writing now (full paths). */
const inFlight = new Set<string>();

/** @internal The temporary file a write of `target` (an absolute path) by process `pid` goes through. */
export function temporaryPath(target: string, pid = process.pid): string {
  return join(dirname(target), `${basename(target)}.tmp-${pid}-${HOST}-${randomBytes(6).toString('hex')}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: alive, someone else's
  }
}

/**
 * Removes the temporary files of dead processes of this host from `dir` (see above). Best
 * effort: what cannot be listed or removed is left, and a write never fails because of it.
 * Returns the names removed.
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || m[2] !== HOST) continue;
    const pid = Number(m[1]);
    const path = join(dir, name);
    if (pid === process.pid ? inFlight.has(path) : isAlive(pid)) continue;
    try {
      if (!(await lstat(path)).isFile()) continue; // a symlink or folder of that name is not ours
      await unlink(path);
      removed.push(name);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}

/**
 * Writes `path` through `fill` into a temporary file, then renames it over `path`. On any
 * failure the temporary file is removed, an existing `path` is left as it was, and the error
 * is E_IO naming the path (a ResNetError thrown by `fill` passes through as it is).
 */
export async function atomicWrite(path: string, op: string, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
  const target = resolve(path);
  const dir = dirname(target);
  await removeStaleTemporaries(dir);
  const tmp = temporaryPath(target);
  let fh: FileHandle | undefined;
  let created = false;
  inFlight.add(tmp);
  try {
    fh = await open(tmp, 'wx');
    created = true;
    await fill(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, target);
    created = false;
  } catch (err) {
    if (fh) await fh.close().catch(() => undefined);
    if (created) await unlink(tmp).catch(() => undefined);
    if (err instanceof ResNetError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw new ResNetError('E_IO', `${op}: could not write '${path}': ${e?.code ? `${e.code} ` : ''}${e?.message ?? String(err)}`);
  } finally {
    inFlight.delete(tmp);
  }
  await syncDirectory(dir, path, op);
}

async function syncDirectory(dir: string, path: string, op: string): Promise<void> {
  let dh: FileHandle | undefined;
  try {
    dh = await open(dir, 'r');
    await dh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    // Platforms (Windows) and file systems that cannot open or fsync a directory.
    if (code === 'EISDIR' || code === 'EPERM' || code === 'EACCES' || code === 'EINVAL' || code === 'ENOTSUP' || code === 'EBADF') return;
    throw new ResNetError('E_IO', `${op}: wrote '${path}' but could not sync its directory: ${code ?? ''} ${(err as Error)?.message ?? String(err)}`);
  } finally {
    if (dh) await dh.close().catch(() => undefined);
  }
}
