// The published package installs and runs without a compiler: `npm pack`, then `npm install`
// of the tarball into an empty project whose PATH has no cmake, make or C/C++ compiler, then
// predict with a small model there and ask `resnet-native doctor` what loaded. The package's
// dependencies come from the npm registry (through the npm cache).
//
// Slow on a clean checkout: builds the prebuild first when prebuilds/<platform>-<arch>/ is
// empty (npm run prebuild, its own CMake tree).
import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ensureDist } from '../support/dist.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const tuple = `${process.platform}-${process.arch}`;
const prebuildDir = join(root, 'prebuilds', tuple);
// Symlinking a PATH is a POSIX affair; the Windows prebuild is checked by the workflow.
const supported = process.platform !== 'win32';
if (!supported) console.log('pack_install: skipped on Windows (the test builds a PATH of symlinks)');

/** Build tools a source build would need: none of them may be reachable in the project. */
const BUILD_TOOL = /^(cmake|ctest|cpack|ccmake|make|gmake|ninja|nvcc)(-[\d.]+)?$|(^|-)(gcc|g\+\+|c\+\+|cpp|cc|clang|clang\+\+)(-[\d.]+)?$/;

let tmp: string;
let app: string;
let noCompilerPath: string;
let tarball: string;
let packedFiles: string[];
let tarballBytes: number;

/** The environment of a user's shell: no npm_* variables from the `npm test` running us. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'INIT_CWD' && !k.startsWith('RESNET_')) env[k] = v;
  }
  return { ...env, PATH: noCompilerPath, ...extra };
}

function sh(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.error) throw r.error;
  return r;
}

/** A folder of symlinks to every program on PATH except the build tools. */
function makeNoCompilerPath(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const seen = new Set<string>();
  for (const from of (process.env.PATH ?? '').split(delimiter)) {
    let names: string[];
    try {
      names = readdirSync(from);
    } catch {
      continue;
    }
    for (const name of names) {
      if (seen.has(name) || BUILD_TOOL.test(name)) continue;
      seen.add(name);
      symlinkSync(join(from, name), join(dir, name));
    }
  }
  return dir;
}

// Computes class probabilities of a seeded ResNet-8 on fixed images with the given build of
// the package; prints them as JSON.
const PREDICT = `
const rn = await import(process.argv[2]);
const model = rn.models.resnetCifar({ depth: 8, inputShape: [16, 16, 3], classes: 10, seed: 7 });
const n = 4, size = n * 16 * 16 * 3;
const data = new Float32Array(size);
for (let i = 0; i < size; i++) data[i] = Math.sin(i * 0.37) * 0.8;
const x = rn.Tensor.fromArray(data, [n, 16, 16, 3]);
const probs = await model.predict(x, { softmax: true });
console.log(JSON.stringify({ shape: probs.shape, values: Array.from(probs.toFloat32Array()) }));
`;

// The same model from CommonJS (require(esm): Node ≥ 20.19 / 22.12 load the ES module graph
// synchronously) and from a static ES import; each prints its probabilities as JSON.
const PREDICT_TAIL = `
const model = rn.models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 3, seed: 5 });
const data = new Float32Array(2 * 8 * 8 * 3).map((_, i) => Math.cos(i * 0.21));
const x = rn.Tensor.fromArray(data, [2, 8, 8, 3]);
model.predict(x, { softmax: true }).then((p) => {
  console.log(JSON.stringify({ error: rn.ResNetError.name, values: Array.from(p.toFloat32Array()) }));
});
`;
const REQUIRE_CJS = `'use strict';\nconst rn = require('resnet-native');\n${PREDICT_TAIL}`;
const IMPORT_MJS = `import * as rn from 'resnet-native';\n${PREDICT_TAIL}`;
// Types for both: a CommonJS (.cts) and an ES (.mts) consumer type-check against the installed
// package under module nodenext (TypeScript ≥ 5.8 types require() of ES modules).
const TYPES_CTS = `import rn = require('resnet-native');\nconst m: rn.Model = rn.models.resnetCifar({ depth: 8 });\nexport const classes: number = m.classes;\n`;
const TYPES_MTS = `import { models, type Model } from 'resnet-native';\nconst m: Model = models.resnetCifar({ depth: 8 });\nexport const classes: number = m.classes;\n`;

beforeAll(async () => {
  if (!supported) return;
  tmp = await mkdtemp(join(tmpdir(), 'rn-pack-'));
  noCompilerPath = makeNoCompilerPath(join(tmp, 'bin'));

  const hasPrebuild = existsSync(prebuildDir) && readdirSync(prebuildDir).some((f) => f.endsWith('.node'));
  if (!hasPrebuild) {
    console.log(`pack_install: ${prebuildDir} is empty, building the prebuild (npm run prebuild)`);
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'prebuild.mjs')], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`npm run prebuild failed:\n${r.stdout}\n${r.stderr}`);
    console.log(
      r.stdout
        .split('\n')
        .filter((l) => l.startsWith('prebuild'))
        .join('\n'),
    );
  }

  // dist/ is what the package ships; compile it when lib/ is newer (npm install compiles it too).
  await ensureDist();

  // --ignore-scripts: dist/ was compiled just above (pack's prepare hook would do the same).
  const pack = spawnSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: root, encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`npm pack failed:\n${pack.stderr}`);
  const info = (JSON.parse(pack.stdout) as { filename: string; size: number; files: { path: string }[] }[])[0]!;
  tarball = join(tmp, info.filename);
  tarballBytes = statSync(tarball).size;
  packedFiles = info.files.map((f) => f.path);
  console.log(`pack_install: ${info.filename} is ${(tarballBytes / 2 ** 20).toFixed(2)} MB (${tarballBytes} bytes), ${packedFiles.length} files`);

  app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'resnet-native-install-check', version: '1.0.0', private: true, type: 'module' }));
  writeFileSync(join(app, 'predict.mjs'), PREDICT);
  writeFileSync(join(app, 'require.cjs'), REQUIRE_CJS);
  writeFileSync(join(app, 'import.mjs'), IMPORT_MJS);
  writeFileSync(join(app, 'types.cts'), TYPES_CTS);
  writeFileSync(join(app, 'types.mts'), TYPES_MTS);
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      files: ['types.cts', 'types.mts'],
    }),
  );
}, 1_200_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe.runIf(supported)('npm pack + install without a compiler', () => {
  it('the tarball ships dist/, the install script and the prebuild, and no build trees, tests or fixtures', () => {
    expect(packedFiles).toContain('dist/index.js');
    expect(packedFiles).toContain('dist/cli.js');
    expect(packedFiles).toContain('scripts/install.mjs');
    expect(packedFiles).toContain('scripts/prebuild-support.mjs');
    expect(packedFiles).toContain('CMakeLists.txt');
    const prebuilds = packedFiles.filter((f) => f.startsWith(`prebuilds/${tuple}/`));
    expect(prebuilds.some((f) => f.endsWith('.node'))).toBe(true);
    for (const f of packedFiles) expect(f).not.toMatch(/^(build|test|bench|node_modules|lib|\.github|\.ci)\/|^native\/bench\//);
    expect(tarballBytes).toBeLessThan(30 * 2 ** 20);
  });

  it('the prebuild is compiled for any CPU of its architecture: no -march/-mtune=native, no -mavx*/-mfma', (ctx) => {
    const commands = join(root, 'build', 'prebuild', 'compile_commands.json');
    if (!existsSync(commands)) {
      console.log(`pack_install: skipped the compile-flags check: ${commands} is absent (prebuilds/ came from elsewhere)`);
      ctx.skip();
    }
    const entries = JSON.parse(readFileSync(commands, 'utf8')) as { command?: string; arguments?: string[]; file: string }[];
    expect(entries.some((e) => e.file.endsWith('gemm.cpp'))).toBe(true);
    for (const e of entries) {
      const command = e.command ?? (e.arguments ?? []).join(' ');
      expect(command, e.file).not.toMatch(/-m(arch|tune|cpu)=native|-mavx|-mfma|-march=(haswell|skylake|x86-64-v[234])/);
    }
  });

  it('the project PATH reaches node and npm but no cmake, make or C/C++ compiler', () => {
    const probe = (name: string) => sh('sh', ['-c', `command -v ${name}`], tmp, cleanEnv()).status === 0;
    expect(probe('node')).toBe(true);
    expect(probe('npm')).toBe(true);
    for (const tool of ['cmake', 'make', 'ninja', 'c++', 'g++', 'gcc', 'cc', 'clang', 'clang++']) expect(probe(tool), tool).toBe(false);
  });

  it('npm install of the tarball uses the prebuild and compiles nothing', () => {
    const r = sh('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts'], app, cleanEnv());
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out).toBe(0);
    expect(out).toMatch(new RegExp(`resnet-native: using the prebuilt addon .*prebuilds/${tuple}/`));
    expect(out).not.toMatch(/building the native addon from source/);
    expect(existsSync(join(app, 'node_modules', 'resnet-native', 'build'))).toBe(false);
  });

  it('resnet-native doctor in the project says the addon is the prebuild', () => {
    const r = sh(join(app, 'node_modules', '.bin', 'resnet-native'), ['doctor'], app, cleanEnv());
    expect(r.status, r.stderr).toBe(0);
    console.log(`pack_install: doctor in the installed project:\n${r.stdout}`);
    const addon = r.stdout.split('\n').find((l) => l.startsWith('addon:'));
    const installed = join(app, 'node_modules', 'resnet-native', 'prebuilds', tuple);
    expect(addon).toMatch(new RegExp(`^addon: +${installed.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\S+\\.node \\(prebuild\\)$`));
  });

  it("predicts with a small model, the same probabilities as this checkout's own build", () => {
    const env = cleanEnv({ RESNET_NUM_THREADS: '1' });
    const installed = sh(process.execPath, ['predict.mjs', 'resnet-native'], app, env);
    expect(installed.status, installed.stderr).toBe(0);
    const checkout = sh(process.execPath, [join(app, 'predict.mjs'), pathToFileURL(join(root, 'dist', 'index.js')).href], root, env);
    expect(checkout.status, checkout.stderr).toBe(0);
    const a = JSON.parse(installed.stdout) as { shape: number[]; values: number[] };
    const b = JSON.parse(checkout.stdout) as { shape: number[]; values: number[] };
    expect(a.shape).toEqual([4, 10]);
    expect(b.shape).toEqual([4, 10]);
    for (let i = 0; i < 4; i++) {
      const row = a.values.slice(i * 10, i * 10 + 10);
      expect(Math.abs(row.reduce((s, v) => s + v, 0) - 1)).toBeLessThan(1e-5);
    }
    // Same sources, flags and kernels (one thread): only the build tree differs.
    for (let i = 0; i < a.values.length; i++) expect(Math.abs(a.values[i]! - b.values[i]!)).toBeLessThanOrEqual(1e-6);
  });

  it('require() from a .cjs file and import from a .mjs file give the same model, without warnings', () => {
    const env = cleanEnv({ RESNET_NUM_THREADS: '1' });
    const required = sh(process.execPath, ['require.cjs'], app, env);
    expect(required.status, required.stderr).toBe(0);
    expect(required.stderr).toBe(''); // no ExperimentalWarning
    const imported = sh(process.execPath, ['import.mjs'], app, env);
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stderr).toBe('');
    const a = JSON.parse(required.stdout) as { error: string; values: number[] };
    const b = JSON.parse(imported.stdout) as { error: string; values: number[] };
    expect(a.error).toBe('ResNetError');
    expect(a.values).toHaveLength(6);
    expect(a.values).toEqual(b.values);
  });

  it('types resolve for CommonJS (.cts) and ES module (.mts) consumers', async () => {
    // Asynchronous: a type check takes seconds, and a blocked worker misses vitest's RPC deadlines.
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: app, env: cleanEnv() }).catch(
      (err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: `${err.stderr ?? ''}\n${String(err)}`, failed: true }),
    );
    expect('failed' in r, `${r.stdout}\n${r.stderr}`).toBe(false);
  });

  it('without a matching prebuild, install says why and that the source build needs cmake and a compiler', () => {
    const pkgDir = join(app, 'node_modules', 'resnet-native');
    const shipped = join(pkgDir, 'prebuilds', tuple);
    const elsewhere = join(pkgDir, 'prebuilds', `${process.platform}-s390x`);
    renameSync(shipped, elsewhere);
    try {
      const r = sh('npm', ['rebuild', 'resnet-native', '--foreground-scripts'], app, cleanEnv());
      const out = `${r.stdout}\n${r.stderr}`;
      expect(r.status).not.toBe(0);
      expect(out).toContain(`no prebuilt binary for ${tuple} (this package has them for ${process.platform}-s390x)`);
      expect(out).toMatch(/the native build failed .*needs cmake >= 3\.18 and a C\+\+20 compiler/);
    } finally {
      renameSync(elsewhere, shipped);
    }
    const forced = sh('npm', ['rebuild', 'resnet-native', '--foreground-scripts'], app, cleanEnv({ RESNET_NATIVE_BUILD_FROM_SOURCE: '1' }));
    expect(forced.status).not.toBe(0);
    expect(`${forced.stdout}\n${forced.stderr}`).toContain(
      'building the native addon from source (cmake-js compile): RESNET_NATIVE_BUILD_FROM_SOURCE=1',
    );
  });
});
