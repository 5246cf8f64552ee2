// models.pretrained and the weights download cache (lib/model/pretrained.ts,
// lib/model/pretrained_weights.ts, lib/io/weights_cache.ts), against a local HTTP server on
// 127.0.0.1 serving generated files: a good download then offline reuse, a wrong hash, a
// truncated body, a 404, redirects (followed, and too many), no server at all, two downloads of
// one file at once, a damaged cached file, a mirror, progress output. RESNET_NATIVE_HOME points
// at a temporary folder for the whole file.
//
// End to end: a resnet18-shaped state_dict (torchvision's keys and shapes from
// test/fixtures/torchvision/architectures.json, BF16 pattern values) is written as a .pth whose
// name carries its own SHA-256 prefix, registered for resnet18 / IMAGENET1K_V1 through the
// test-only overrideWeightSet, served by the mirror, and loaded by models.pretrained('resnet18').
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

import { models } from '../../lib/index.js';
import { fetchWeights, hashPrefixOf, weightsDir } from '../../lib/io/weights_cache.js';
import { IMAGENET_CLASSES } from '../../lib/model/imagenet_classes.js';
import { findWeightSet, overrideWeightSet, PRETRAINED_WEIGHTS } from '../../lib/model/pretrained_weights.js';
import { expectCode } from '../support/expect_error.js';
import { encodePth } from '../support/pth_writer.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'rn-pretrained-'));
const saved = { home: process.env.RESNET_NATIVE_HOME, mirror: process.env.RESNET_WEIGHTS_URL };
let home = '';
let homeCount = 0;

/** A fresh, empty cache for each test. */
function freshHome(): string {
  home = join(root, `home${homeCount++}`);
  process.env.RESNET_NATIVE_HOME = home;
  delete process.env.RESNET_WEIGHTS_URL;
  return home;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A file named as torchvision names them: <stem>-<first 8 hex of its SHA-256>.pth. */
function named(stem: string, data: Uint8Array): { name: string; data: Uint8Array } {
  return { name: `${stem}-${sha256(data).slice(0, 8)}.pth`, data };
}

const small = named(
  'small',
  new Uint8Array(300_000).map((_, i) => (i * 7919) % 251),
);
const files = new Map<string, Uint8Array>([[small.name, small.data]]);
let requests: string[] = [];
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push(url);
    const [, route, name = ''] = url.split('/');
    const data = files.get(name);
    if (route === 'redirect') {
      res.writeHead(302, { location: `/mirror/${name}` });
      res.end();
    } else if (route === 'relative-redirect') {
      res.writeHead(301, { location: `../redirect/${name}` });
      res.end();
    } else if (route === 'loop') {
      res.writeHead(307, { location: `/loop/${name}` });
      res.end();
    } else if (route === 'wrong' && data) {
      const other = data.slice();
      other[1000] ^= 0xff;
      res.writeHead(200, { 'content-length': other.length });
      res.end(other);
    } else if (route === 'truncated' && data) {
      res.writeHead(200, { 'content-length': data.length });
      res.write(data.subarray(0, data.length >> 1), () => res.socket?.destroy());
    } else if (route === 'slow' && data) {
      // 16 KiB every 40 ms: about 0.8 s for the small file, time enough to kill a download.
      res.writeHead(200, { 'content-length': data.length });
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed) return clearInterval(timer);
        if (at >= data.length) {
          clearInterval(timer);
          return res.end();
        }
        res.write(data.subarray(at, at + 16384));
        at += 16384;
      }, 40);
    } else if (route === 'mirror' && data) {
      res.writeHead(200, { 'content-length': data.length });
      // In pieces, so that two downloads at once interleave.
      let at = 0;
      const next = () => {
        if (at >= data.length) return res.end();
        const piece = data.subarray(at, at + 65536);
        at += piece.length;
        res.write(piece, () => setImmediate(next));
      };
      next();
    } else {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(root, { recursive: true, force: true });
  if (saved.home === undefined) delete process.env.RESNET_NATIVE_HOME;
  else process.env.RESNET_NATIVE_HOME = saved.home;
  if (saved.mirror === undefined) delete process.env.RESNET_WEIGHTS_URL;
  else process.env.RESNET_WEIGHTS_URL = saved.mirror;
});

afterEach(() => {
  requests = [];
  vi.restoreAllMocks();
});

const quiet = { progress: false };
/** Only the finished files: no temporary file is left in the cache. */
const cacheListing = () => (existsSync(weightsDir()) ? readdirSync(weightsDir()).sort() : []);

describe('fetchWeights: the download cache', () => {
  it('downloads into $RESNET_NATIVE_HOME/weights, then reuses the file without network', async () => {
    freshHome();
    const path = await fetchWeights(`${base}/mirror/${small.name}`, small.name, quiet);
    expect(path).toBe(join(home, 'weights', small.name));
    expect(sha256(readFileSync(path))).toBe(sha256(small.data));
    expect(requests).toEqual([`/mirror/${small.name}`]);
    expect(cacheListing()).toEqual([small.name]);
    // The URL now points nowhere: the cached file is used as it is.
    const again = await fetchWeights('http://127.0.0.1:1/gone.pth', small.name, quiet);
    expect(again).toBe(path);
    expect(requests).toEqual([`/mirror/${small.name}`]);
  });

  it('checks the SHA-256 prefix in the name, as torchvision: a wrong file is E_FORMAT and is not kept', async () => {
    freshHome();
    expect(hashPrefixOf('resnet18-f37072fd.pth')).toBe('f37072fd');
    expect(hashPrefixOf('wide_resnet50_2-95faca4d.pth')).toBe('95faca4d');
    await expectCode(() => fetchWeights(`${base}/wrong/${small.name}`, small.name, quiet), 'E_FORMAT', 'SHA-256', small.name.slice(6, 14));
    expect(cacheListing()).toEqual([]);
  });

  it('refuses a truncated download (Content-Length not reached) and keeps nothing', async () => {
    freshHome();
    await expectCode(
      () => fetchWeights(`${base}/truncated/${small.name}`, small.name, quiet),
      'E_IO',
      `${base}/truncated/${small.name}`,
      'truncated',
    );
    expect(cacheListing()).toEqual([]);
  });

  it('an HTTP error is E_IO naming the URL, the status and the path to place the file at', async () => {
    freshHome();
    const url = `${base}/missing/${small.name}`;
    await expectCode(() => fetchWeights(url, small.name, quiet), 'E_IO', url, 'HTTP 404', join(home, 'weights', small.name));
    expect(cacheListing()).toEqual([]);
  });

  it('follows redirects (absolute and relative) but not endlessly', async () => {
    freshHome();
    await fetchWeights(`${base}/relative-redirect/${small.name}`, small.name, quiet);
    expect(requests).toEqual([`/relative-redirect/${small.name}`, `/redirect/${small.name}`, `/mirror/${small.name}`]);
    expect(sha256(readFileSync(join(home, 'weights', small.name)))).toBe(sha256(small.data));
    freshHome();
    requests = [];
    await expectCode(() => fetchWeights(`${base}/loop/${small.name}`, small.name, quiet), 'E_IO', 'redirects');
    expect(requests.length).toBe(6);
  });

  it('without a server: E_IO naming the URL and the exact path to place the file by hand', async () => {
    freshHome();
    const url = `http://127.0.0.1:1/${small.name}`;
    const err = await expectCode(() => fetchWeights(url, small.name, quiet), 'E_IO', url, join(home, 'weights', small.name), 'place the file at');
    expect(err.message).toContain('ECONNREFUSED');
  });

  it('RESNET_WEIGHTS_URL replaces the published URL with a mirror', async () => {
    freshHome();
    process.env.RESNET_WEIGHTS_URL = `${base}/mirror/`;
    await fetchWeights('http://127.0.0.1:1/never-asked.pth', small.name, quiet);
    expect(requests).toEqual([`/mirror/${small.name}`]);
  });

  it('two downloads of one file at once both succeed and leave one whole file', async () => {
    freshHome();
    const url = `${base}/mirror/${small.name}`;
    const [a, b] = await Promise.all([fetchWeights(url, small.name, quiet), fetchWeights(url, small.name, quiet)]);
    expect(a).toBe(b);
    expect(requests.length).toBe(2);
    expect(sha256(readFileSync(a))).toBe(sha256(small.data));
    expect(cacheListing()).toEqual([small.name]);
  });

  it('two processes downloading one file both succeed; a process killed mid-download leaves nothing the next one keeps', async () => {
    if (!existsSync(join(process.cwd(), 'dist', 'io', 'weights_cache.js'))) {
      throw new Error('dist/ is missing: run `npm run build:ts` (the child processes load the built package)');
    }
    freshHome();
    const child = join(HERE, '..', 'support', 'download_child.mjs');
    const env = { ...process.env, RESNET_NATIVE_HOME: home };
    const run = () =>
      new Promise<{ status: number | null; out: string }>((resolve) => {
        const p = spawn(process.execPath, [child, `${base}/slow/${small.name}`, small.name], { env });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.on('close', (status) => resolve({ status, out }));
      });
    const [a, b] = await Promise.all([run(), run()]);
    expect(a).toEqual({ status: 0, out: `${join(home, 'weights', small.name)}\n` });
    expect(b).toEqual(a);
    expect(sha256(readFileSync(join(home, 'weights', small.name)))).toBe(sha256(small.data));
    expect(cacheListing()).toEqual([small.name]);

    // Killed mid-download: only its temporary file remains, and the next download removes it.
    freshHome();
    const victim = spawn(process.execPath, [child, `${base}/slow/${small.name}`, small.name], { env: { ...env, RESNET_NATIVE_HOME: home } });
    const tmpName = await new Promise<string>((resolve, reject) => {
      const poll = setInterval(() => {
        const partial = cacheListing().find((n) => n.startsWith(`${small.name}.tmp-`));
        if (partial && readFileSync(join(weightsDir(), partial)).length > 0) {
          clearInterval(poll);
          resolve(partial);
        }
      }, 20);
      victim.on('close', () => {
        clearInterval(poll);
        reject(new Error('the download finished before it could be killed'));
      });
    });
    victim.kill('SIGKILL');
    await new Promise((resolve) => victim.on('close', resolve));
    expect(cacheListing()).toEqual([tmpName]);
    await expectCode(() => fetchWeights(`${base}/missing/${small.name}`, small.name, quiet), 'E_IO', 'HTTP 404');
    expect(cacheListing()).toEqual([]); // the dead process's temporary file is gone, nothing else was written
    await fetchWeights(`${base}/mirror/${small.name}`, small.name, quiet);
    expect(cacheListing()).toEqual([small.name]);
  });

  it('a damaged cached file is E_FORMAT naming its path', async () => {
    freshHome();
    const path = await fetchWeights(`${base}/mirror/${small.name}`, small.name, quiet);
    const damaged = readFileSync(path);
    damaged[5] ^= 1;
    writeFileSync(path, damaged);
    await expectCode(() => fetchWeights(`${base}/mirror/${small.name}`, small.name, quiet), 'E_FORMAT', path, 'delete it');
  });

  it('reports progress on stderr unless told not to', async () => {
    freshHome();
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    await fetchWeights(`${base}/mirror/${small.name}`, small.name, quiet);
    expect(lines).toEqual([]);
    freshHome();
    await fetchWeights(`${base}/mirror/${small.name}`, small.name);
    expect(lines.join('')).toContain(`Downloading ${base}/mirror/${small.name}`);
    expect(lines.join('')).toContain(join(home, 'weights', small.name));
  });

  it('refuses a file name that is not a plain name', async () => {
    freshHome();
    await expectCode(() => fetchWeights(`${base}/mirror/x`, '../escape-12345678.pth', quiet), 'E_ARG');
  });
});

describe('the pretrained weights table', () => {
  it('lists every torchvision ResNet / ResNeXt / Wide-ResNet set with its file, transform and accuracy', () => {
    expect(Object.keys(PRETRAINED_WEIGHTS).sort()).toEqual(
      [
        'resnet18',
        'resnet34',
        'resnet50',
        'resnet101',
        'resnet152',
        'resnext50_32x4d',
        'resnext101_32x8d',
        'resnext101_64x4d',
        'wide_resnet50_2',
        'wide_resnet101_2',
      ].sort(),
    );
    for (const [name, m] of Object.entries(PRETRAINED_WEIGHTS)) {
      expect(m.sets[m.DEFAULT]).toBeDefined();
      for (const s of Object.values(m.sets)) {
        expect(s.url).toBe(`https://download.pytorch.org/models/${s.fileName}`);
        expect(s.fileName).toMatch(new RegExp(`^${name}-[0-9a-f]{8}\\.pth$`));
        expect(s.cropSize).toBe(224);
        // torchvision: the original recipe evaluates at resize 256, the new one at 232.
        expect(s.resizeSize).toBe(s.recipe.includes('references/classification') || s.recipe.includes('pull/912') ? 256 : 232);
        expect(s.mean).toEqual([0.485, 0.456, 0.406]);
        expect(s.std).toEqual([0.229, 0.224, 0.225]);
      }
    }
    // A few of torchvision's published facts, verbatim.
    expect(findWeightSet('resnet50', 'DEFAULT')).toMatchObject({ fileName: 'resnet50-11ad3fa6.pth', resizeSize: 232, acc1: 80.858 });
    expect(findWeightSet('resnet18', 'DEFAULT')).toMatchObject({ fileName: 'resnet18-f37072fd.pth', resizeSize: 256, acc1: 69.758 });
    expect(findWeightSet('resnext101_64x4d', 'IMAGENET1K_V1')).toMatchObject({ resizeSize: 232, acc1: 83.246 });
    expect(findWeightSet('resnext101_64x4d', 'IMAGENET1K_V2')).toBeUndefined();
    expect(IMAGENET_CLASSES.length).toBe(1000);
    expect([IMAGENET_CLASSES[0], IMAGENET_CLASSES[207], IMAGENET_CLASSES[281], IMAGENET_CLASSES[999]]).toEqual([
      'tench',
      'golden retriever',
      'tabby',
      'toilet tissue',
    ]);
    expect(new Set(IMAGENET_CLASSES).size).toBe(1000);
  });
});

describe('models.pretrained', () => {
  const architectures = JSON.parse(readFileSync(join(HERE, '..', 'fixtures', 'torchvision', 'architectures.json'), 'utf8')) as Record<
    string,
    [string, number[], string][]
  >;
  // BF16 pattern 0x3f80 + (i mod 128): values in [1, 2); positive, so valid batch-norm variances.
  const bf16 = (i: number) => new Float32Array(new Uint32Array([(0x3f80 + (i % 128)) << 16]).buffer)[0]!;
  const resnet18 = named(
    'resnet18',
    encodePth(
      architectures.resnet18!.map(([name, shape, dtype]) => {
        const numel = shape.reduce((a, b) => a * b, 1);
        if (dtype === 'int64') return { name, storage: 'LongStorage', shape, data: new Uint8Array(8 * numel) };
        const bits = new Uint16Array(numel);
        for (let i = 0; i < numel; i++) bits[i] = 0x3f80 + (i & 127);
        return { name, storage: 'BFloat16Storage', shape, data: new Uint8Array(bits.buffer) };
      }),
    ),
  );

  it('downloads, loads and describes resnet18 (a generated file registered for IMAGENET1K_V1), then works offline', async () => {
    freshHome();
    files.set(resnet18.name, resnet18.data);
    process.env.RESNET_WEIGHTS_URL = `${base}/mirror`;
    const real = findWeightSet('resnet18', 'IMAGENET1K_V1')!;
    const restore = overrideWeightSet({ ...real, url: `http://127.0.0.1:1/${resnet18.name}`, fileName: resnet18.name });
    try {
      const model = await models.pretrained('resnet18', { weights: 'IMAGENET1K_V1', progress: false, seed: 3 });
      expect(requests).toEqual([`/mirror/${resnet18.name}`]);
      expect(model.spec.name).toBe('resnet18');
      expect(model.preprocessing).toEqual({
        imageSize: [224, 224],
        resizeTo: 256,
        channelOrder: 'rgb',
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      });
      expect(model.classNames).toEqual(IMAGENET_CLASSES);
      // conv1 [64, 3, 7, 7] (OIHW) at torch index (o, i, y, x) is ours at (y, x, i, o).
      const conv1 = model.getParameter('conv1.weight');
      for (const [o, i, y, x] of [
        [0, 0, 0, 0],
        [63, 2, 6, 6],
        [17, 1, 3, 5],
      ] as const) {
        expect(conv1[((y * 7 + x) * 3 + i) * 64 + o]).toBe(bf16(((o * 3 + i) * 7 + y) * 7 + x));
      }
      model.dispose();

      // Offline: no server asked, the cached file is used; 'DEFAULT' is IMAGENET1K_V1 for resnet18.
      delete process.env.RESNET_WEIGHTS_URL;
      const again = await models.pretrained('resnet18', { progress: false });
      expect(requests.length).toBe(1);
      expect(again.getParameter('conv1.weight')).toEqual(conv1);
      again.dispose();

      // Built for another input size, the transform keeps torchvision's resize / crop ratio (256 / 224).
      const smaller = await models.pretrained('resnet18', { progress: false, inputShape: [160, 192, 3] });
      expect(smaller.preprocessing).toMatchObject({ imageSize: [160, 192], resizeTo: Math.round((256 * 160) / 224) });
      expect(requests.length).toBe(1);
      smaller.dispose();
    } finally {
      restore();
      files.delete(resnet18.name);
    }
  }, 60_000);

  it('rejects unknown names and weight sets and other class counts with E_ARG, before any download', async () => {
    freshHome();
    await expectCode(() => models.pretrained('resnet19'), 'E_ARG', "'resnet19'", 'resnet18', 'wide_resnet101_2');
    await expectCode(() => models.pretrained('resnet18', { weights: 'IMAGENET1K_V2' }), 'E_ARG', 'IMAGENET1K_V2', "'IMAGENET1K_V1'");
    await expectCode(() => models.pretrained('resnet50', { classes: 10 }), 'E_ARG', '1000 classes', 'exclude');
    await expectCode(() => models.pretrained('resnet50', { progress: 'yes' as never }), 'E_ARG', 'progress');
    await expectCode(() => models.pretrained('resnet50', { depth: 3 } as never), 'E_ARG', 'depth');
    expect(requests).toEqual([]);
    expect(existsSync(weightsDir())).toBe(false);
  });
});
