// The download cache of pretrained weight files.
//
// Where: `$RESNET_NATIVE_HOME/weights/<file name>`, RESNET_NATIVE_HOME defaulting to
// ~/.cache/resnet-native. A file found there is used as it is, without network. Otherwise it
// is downloaded from its published URL, or, when RESNET_WEIGHTS_URL is set, from
// `$RESNET_WEIGHTS_URL/<file name>` (a mirror; then only the mirror is asked).
//
// A download follows at most MAX_REDIRECTS redirects, refuses any status but 200, streams to a
// temporary file beside the target (never the whole file in memory) while hashing it, refuses a
// body shorter or longer than its Content-Length, checks the SHA-256 against the hex prefix in
// the file name (the part after the last '-' before the extension, as torchvision's
// check_hash), then fsyncs and renames the temporary file onto the target. So the cache holds
// complete, verified files or nothing: a process killed mid-download leaves only a temporary
// file (removed by the next write into the folder once that process is gone, see
// atomic_write.ts), and two processes downloading the same file each write their own temporary
// file and rename a complete, verified copy over the other's (rename is atomic).
//
// A cached file's hash is checked again each time it is used (reading it is cheap next to
// loading it), so a file placed by hand or damaged on disk is caught, naming the path.
//
// Progress goes to stderr: a bar redrawn in place when stderr is a terminal, otherwise one line
// when the download starts and one when it ends; `progress: false` silences both.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { ResNetError } from '../errors.js';
import { removeStaleTemporaries, temporaryPath } from './atomic_write.js';

export const MAX_REDIRECTS = 5;
/** No byte for this long: the download is abandoned. */
const IDLE_TIMEOUT_MS = 60_000;
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

export interface FetchWeightsOptions {
  /** Progress on stderr (default true). */
  progress?: boolean;
  /** The operation named in errors (default 'models.pretrained'). */
  op?: string;
}

/** `$RESNET_NATIVE_HOME` or ~/.cache/resnet-native. */
export function cacheHome(): string {
  const home = process.env.RESNET_NATIVE_HOME;
  return home !== undefined && home !== '' ? home : join(homedir(), '.cache', 'resnet-native');
}

/** The folder of cached weight files. */
export function weightsDir(): string {
  return join(cacheHome(), 'weights');
}

/** The SHA-256 prefix a file name carries ('resnet18-f37072fd.pth' → 'f37072fd'), or undefined. */
export function hashPrefixOf(fileName: string): string | undefined {
  const m = /-([0-9a-f]+)\.[^.-]*$/.exec(fileName);
  return m ? m[1] : undefined;
}

/**
 * The local path of weight file `fileName` published at `url`: from the cache, or downloaded
 * into it (see above). `expectedHashPrefix` defaults to the one in the file name.
 * E_IO when it cannot be had (the message names the URL and where to put the file by hand),
 * E_FORMAT when its SHA-256 does not match.
 */
export async function fetchWeights(
  url: string,
  fileName: string,
  options: FetchWeightsOptions = {},
  expectedHashPrefix = hashPrefixOf(fileName),
): Promise<string> {
  const op = options.op ?? 'models.pretrained';
  if (!FILE_NAME.test(fileName) || fileName.includes('..')) throw new ResNetError('E_ARG', `${op}: '${fileName}' is not a plain file name`);
  const dir = weightsDir();
  const target = join(dir, fileName);
  const mirror = process.env.RESNET_WEIGHTS_URL;
  const source = mirror !== undefined && mirror !== '' ? `${mirror.replace(/\/+$/, '')}/${fileName}` : url;

  if (await isFile(target)) {
    const digest = await sha256File(target, op);
    if (expectedHashPrefix !== undefined && !digest.startsWith(expectedHashPrefix)) {
      throw new ResNetError(
        'E_FORMAT',
        `${op}: the cached file ${target} has SHA-256 ${digest}, which does not start with ${expectedHashPrefix} as its name says ` +
          `(damaged or not the published file); delete it to download it again from ${source}`,
      );
    }
    return target;
  }

  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new ResNetError(
      'E_IO',
      `${op}: cannot create the weights cache ${dir}: ${(err as Error).message} (set RESNET_NATIVE_HOME to a writable folder)`,
    );
  }
  await removeStaleTemporaries(dir);
  await download(source, target, expectedHashPrefix, op, options.progress !== false);
  return target;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function sha256File(path: string, op: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  } catch (err) {
    throw new ResNetError('E_IO', `${op}: cannot read ${path}: ${(err as Error).message}`);
  }
  return hash.digest('hex');
}

/** Why the download failed, with the way out: the URL and the exact path to place the file at. */
function downloadError(op: string, url: string, target: string, why: string): ResNetError {
  return new ResNetError(
    'E_IO',
    `${op}: could not download ${url}: ${why}. Without network, fetch that URL elsewhere and place the file at ${target} ` +
      `(or set RESNET_WEIGHTS_URL to a mirror holding it)`,
  );
}

/** GET `url`, following redirects; resolves with the 200 response. */
async function get(url: string, op: string, target: string): Promise<http.IncomingMessage> {
  let current = url;
  for (let hop = 0; ; hop++) {
    let parsed: URL;
    try {
      parsed = new URL(current);
    } catch {
      throw downloadError(op, url, target, `'${current}' is not a URL`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw downloadError(op, url, target, `${parsed.protocol} URLs are not fetched`);
    const client = parsed.protocol === 'https:' ? https : http;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = client.get(parsed, { headers: { 'user-agent': 'resnet-native', 'accept-encoding': 'identity' } }, resolve);
      req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`no response for ${IDLE_TIMEOUT_MS / 1000} s`)));
      req.on('error', reject);
    }).catch((err: NodeJS.ErrnoException) => {
      throw downloadError(op, url, target, err.code ? `${err.code} (${err.message})` : err.message);
    });
    const status = res.statusCode ?? 0;
    if ([301, 302, 303, 307, 308].includes(status)) {
      res.resume();
      const location = res.headers.location;
      if (!location) throw downloadError(op, url, target, `HTTP ${status} without a Location`);
      if (hop >= MAX_REDIRECTS) throw downloadError(op, url, target, `more than ${MAX_REDIRECTS} redirects`);
      current = new URL(location, parsed).toString();
      continue;
    }
    if (status !== 200) {
      res.resume();
      throw downloadError(
        op,
        url,
        target,
        `HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}${current !== url ? ` from ${current}` : ''}`,
      );
    }
    return res;
  }
}

async function download(url: string, target: string, expectedHashPrefix: string | undefined, op: string, showProgress: boolean): Promise<void> {
  const res = await get(url, op, target);
  const declared = res.headers['content-length'] === undefined ? undefined : Number(res.headers['content-length']);
  const progress = showProgress ? new Progress(url, target, declared) : undefined;
  const tmp = temporaryPath(target);
  const hash = createHash('sha256');
  let fh: FileHandle | undefined;
  let received = 0;
  try {
    try {
      fh = await open(tmp, 'wx');
    } catch (err) {
      throw new ResNetError('E_IO', `${op}: cannot write ${tmp}: ${(err as Error).message}`);
    }
    res.setTimeout(IDLE_TIMEOUT_MS, () => res.destroy(new Error(`no data for ${IDLE_TIMEOUT_MS / 1000} s`)));
    try {
      for await (const chunk of res) {
        const bytes = chunk as Buffer;
        received += bytes.length;
        if (declared !== undefined && received > declared) throw new Error(`the server sent more than the ${declared} bytes it announced`);
        hash.update(bytes);
        await fh.write(bytes);
        progress?.update(received);
      }
    } catch (err) {
      if (err instanceof ResNetError) throw err;
      throw downloadError(op, url, target, `the transfer failed after ${received} bytes: ${(err as Error).message}`);
    }
    if (!res.complete) throw downloadError(op, url, target, `the connection closed after ${received} bytes (truncated download)`);
    if (declared !== undefined && received !== declared) {
      throw downloadError(op, url, target, `received ${received} bytes of the ${declared} announced (truncated download)`);
    }
    const digest = hash.digest('hex');
    if (expectedHashPrefix !== undefined && !digest.startsWith(expectedHashPrefix)) {
      throw new ResNetError(
        'E_FORMAT',
        `${op}: the file downloaded from ${url} has SHA-256 ${digest}, which does not start with ${expectedHashPrefix} as its name says ` +
          `(corrupted in transit, or the mirror serves another file); nothing was written to ${target}`,
      );
    }
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, target);
    progress?.done(received);
  } catch (err) {
    progress?.failed();
    res.destroy();
    if (fh) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    if (err instanceof ResNetError) throw err;
    throw new ResNetError('E_IO', `${op}: could not write ${target}: ${(err as Error).message}`);
  }
}

/** A progress bar on a terminal, two plain lines otherwise. */
class Progress {
  readonly #tty = process.stderr.isTTY === true;
  readonly #total: number | undefined;
  #last = 0;

  constructor(url: string, target: string, total: number | undefined) {
    this.#total = total;
    process.stderr.write(`Downloading ${url} to ${target}${total !== undefined ? ` (${mb(total)})` : ''}\n`);
  }

  update(received: number): void {
    if (!this.#tty) return;
    const now = Date.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    this.#draw(received);
  }

  #draw(received: number): void {
    const total = this.#total;
    if (total === undefined || total === 0) {
      process.stderr.write(`\r${mb(received)}`);
      return;
    }
    const width = 30;
    const frac = Math.min(1, received / total);
    const filled = Math.round(frac * width);
    process.stderr.write(
      `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb(received)} / ${mb(total)}`,
    );
  }

  done(received: number): void {
    if (this.#tty) {
      this.#draw(received);
      process.stderr.write('\n');
    } else {
      process.stderr.write(`Downloaded ${mb(received)}\n`);
    }
  }

  failed(): void {
    if (this.#tty) process.stderr.write('\n');
  }
}

function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
