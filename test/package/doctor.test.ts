// `resnet-native doctor` as users run it (dist/cli.js in a child process) and doctor() /
// formatDoctorReport() as functions: which addon file loaded and whether it is a prebuild
// or a source build, versions, platform, SIMD, threads, and each state of the CUDA plugin.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { addonOrigin, doctor, formatDoctorReport, type DoctorReport } from '../../lib/doctor.js';
import { native } from '../../lib/native.js';
import { runtimeInfo } from '../../lib/runtime.js';
import { runCli } from '../support/cli.js';
import { ensureDist } from '../support/dist.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
// Resolved here, independently of lib/native.ts: the file node-gyp-build picks for this checkout.
const expectedAddon = (require('node-gyp-build') as { path(dir: string): string }).path(root);
// npm run test:asan loads its sanitizer build through RESNET_NATIVE_ADDON: this process then
// runs that addon, while the CLI children below resolve the addon the usual way (the override
// is removed from their environment: these tests are about node-gyp-build's resolution).
const override = process.env.RESNET_NATIVE_ADDON;
const inProcessAddon = override ? resolve(override) : expectedAddon;
const childEnv: NodeJS.ProcessEnv = { ...process.env };
delete childEnv.RESNET_NATIVE_ADDON;
const rn = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { env: { ...childEnv, ...env } });

/** The value printed after "label:" on its line. */
function field(stdout: string, label: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`${label}:`));
  if (line === undefined) throw new Error(`no '${label}:' line in:\n${stdout}`);
  return line.slice(label.length + 1).trim();
}

let tmp: string;
beforeAll(async () => {
  // doctor runs from dist/: compile when lib/ is newer (npm install compiles it too).
  await ensureDist();
  tmp = await mkdtemp(join(tmpdir(), 'rn-doctor-'));
}, 300_000);
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('resnet-native doctor', () => {
  it('reports the addon this checkout loads, the versions, platform, SIMD level, threads and CUDA state', async () => {
    const r = await rn(['doctor']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const pkg = require('../../package.json') as { version: string };
    expect(r.stdout.split('\n')[0]).toBe(`resnet-native ${pkg.version}`);
    const origin = expectedAddon.includes(`${sep}prebuilds${sep}`) ? 'prebuild' : 'source build';
    expect(field(r.stdout, 'addon')).toBe(`${expectedAddon} (${origin})`);
    expect(field(r.stdout, 'node')).toBe(`${process.versions.node}, Node-API ${process.versions.napi} (the addon needs 8)`);
    expect(field(r.stdout, 'platform')).toMatch(new RegExp(`^${process.platform}-${process.arch}`));
    if (process.platform === 'linux') {
      const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime;
      expect(field(r.stdout, 'platform')).toBe(`linux-${process.arch}, ${glibc ? `glibc ${glibc}` : 'not glibc (musl?)'}`);
    }
    const info = runtimeInfo();
    expect(field(r.stdout, 'simd')).toBe(info.simd);
    expect(field(r.stdout, 'threads')).toBe(String(info.threads));
    expect(field(r.stdout, 'engine')).toBe(info.engine);
    const cudaLine = r.stdout.split('\n').find((l) => l.startsWith('CUDA plugin:'));
    if (typeof (native as unknown as { cudaStatus?: unknown }).cudaStatus === 'function') {
      console.log(`doctor: this addon has cudaStatus(): ${cudaLine}`);
      expect(cudaLine).toMatch(/^CUDA plugin: (available \(\S+libresnet_cuda\.so\)|unavailable: \S.*)$/);
    } else {
      expect(cudaLine).toBe('CUDA plugin: not built into this addon');
    }
  });

  it('follows RESNET_NUM_THREADS', async () => {
    const r = await rn(['doctor'], { RESNET_NUM_THREADS: '3' });
    expect(r.code).toBe(0);
    expect(field(r.stdout, 'threads')).toBe('3 (RESNET_NUM_THREADS)');
  });

  it('--json prints the same report as a structure', async () => {
    const r = await rn(['doctor', '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.addon).toEqual({ loaded: true, path: expectedAddon, origin: addonOrigin(expectedAddon) });
    expect(report.node).toEqual({ version: process.versions.node, napiVersion: Number(process.versions.napi) });
    expect(report.platform.os).toBe(process.platform);
    expect(report.platform.arch).toBe(process.arch);
    expect(report.runtime).toEqual(runtimeInfo());
    expect(formatDoctorReport(report)).toBe((await rn(['doctor'])).stdout);
  });

  it("says 'prebuild' when the addon comes from a prebuilds/<platform>-<arch>/ folder", async () => {
    // node-gyp-build looks in $RESNET_NATIVE_PREBUILD instead of the package when it is set.
    const pkgDir = join(tmp, 'prebuilt');
    const folder = join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`);
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(pkgDir, 'package.json'), '{"name":"resnet-native"}');
    const file = join(folder, 'resnet-native.napi.node');
    copyFileSync(expectedAddon, file);
    const r = await rn(['doctor'], { RESNET_NATIVE_PREBUILD: pkgDir });
    expect(r.code).toBe(0);
    expect(field(r.stdout, 'addon')).toBe(`${file} (prebuild)`);
  });

  it('reports a missing addon, exits 1 and names the cause', async () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    const r = await rn(['doctor'], { RESNET_NATIVE_PREBUILD: empty });
    expect(r.code).toBe(1);
    expect(field(r.stdout, 'addon')).toMatch(/^not loaded: resnet-native: no native addon for .*No native build was found/);
    expect(field(r.stdout, 'node')).toMatch(/^\d+\.\d+\.\d+, Node-API \d+/);
    expect(r.stdout).toMatch(/^CUDA plugin: unknown \(the addon did not load\)$/m);
    expect(r.stderr).toBe('resnet-native: error: the native addon did not load (see the report above)\n');
  });

  it('rejects unknown options with one line and exit status 2', async () => {
    const r = await rn(['doctor', '--gpu']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("resnet-native: error: unknown option '--gpu' for 'resnet-native doctor' (see resnet-native doctor --help)\n");
    const help = await rn(['doctor', '--help']);
    expect(help.stdout).toMatch(/^Usage: resnet-native doctor \[options\]/);
    expect(help.stdout).toMatch(/--json/);
  });
});

describe('doctor()', () => {
  it('returns the structured report of the loaded addon', async () => {
    const report = await doctor();
    expect(report.addon).toEqual({ loaded: true, path: inProcessAddon, origin: addonOrigin(inProcessAddon) });
    expect(report.addonNapiVersion).toBe(8);
    expect(report.cpu.cores).toBeGreaterThan(0);
    expect(report.runtime).toEqual(runtimeInfo());
  });

  it('classifies addon paths', () => {
    expect(addonOrigin(['', 'x', 'node_modules', 'resnet-native', 'prebuilds', 'linux-x64', 'resnet-native.napi.glibc.node'].join(sep))).toBe(
      'prebuild',
    );
    expect(addonOrigin(['', 'x', 'build', 'Release', 'resnet_native.node'].join(sep))).toBe('source build');
    expect(addonOrigin(['', 'x', 'build', 'Debug', 'resnet_native.node'].join(sep))).toBe('source build');
    expect(addonOrigin(['', 'opt', 'resnet_native.node'].join(sep))).toBe('other');
  });
});

describe('formatDoctorReport: the CUDA plugin states', () => {
  const base: DoctorReport = {
    packageVersion: '9.9.9',
    node: { version: '20.0.0', napiVersion: 9 },
    addonNapiVersion: 8,
    platform: { os: 'linux', arch: 'x64', glibc: '2.28' },
    cpu: { model: 'Test CPU', cores: 4 },
    prebuilds: ['linux-x64'],
    addon: { loaded: true, path: '/p/prebuilds/linux-x64/resnet-native.napi.glibc.node', origin: 'prebuild' },
    runtime: { threads: 4, kernels: 'reference', engine: 'cpu', simd: 'baseline x86-64' },
    cuda: null,
  };
  /** The CUDA lines: the last section of the report. */
  const cudaLines = (r: DoctorReport) => {
    const lines = formatDoctorReport(r).split('\n');
    return lines.slice(
      lines.findIndex((l) => l.startsWith('CUDA')),
      -1,
    );
  };

  it('not built', () => {
    expect(cudaLines(base)).toEqual(['CUDA plugin: not built into this addon']);
  });

  it('unavailable, with the reason and the plugin file', () => {
    const r = { ...base, cuda: { available: false, reason: 'no CUDA driver: libcuda.so.1 not found', pluginPath: '/p/libresnet_cuda.so' } };
    expect(cudaLines(r)).toEqual(['CUDA plugin: unavailable: no CUDA driver: libcuda.so.1 not found (/p/libresnet_cuda.so)']);
  });

  it('available: driver, runtime and cuDNN versions and every GPU', () => {
    const r: DoctorReport = {
      ...base,
      cuda: {
        available: true,
        pluginPath: '/p/libresnet_cuda.so',
        driverVersion: 12040,
        runtimeVersion: 12080,
        cudnnVersion: 90100,
        devices: [
          { name: 'NVIDIA H100 80GB HBM3', memoryBytes: 85_899_345_920, computeCapability: '9.0', multiprocessors: 132 },
          { name: 'NVIDIA A10', memoryBytes: 24_146_608_128, computeCapability: '8.6', multiprocessors: 72 },
        ],
      },
    };
    expect(cudaLines(r)).toEqual([
      'CUDA plugin: available (/p/libresnet_cuda.so)',
      '  driver 12.4, runtime 12.8, cuDNN 9.1.0',
      '  GPU 0: NVIDIA H100 80GB HBM3, 80.0 GiB, compute capability 9.0',
      '  GPU 1: NVIDIA A10, 22.5 GiB, compute capability 8.6',
    ]);
    expect(cudaLines({ ...r, cuda: { available: true, pluginPath: '', cudnnVersion: 8906 } })).toEqual(['CUDA plugin: available', '  cuDNN 8.9.6']);
  });

  it('the whole report, line by line', () => {
    expect(formatDoctorReport(base)).toBe(
      [
        'resnet-native 9.9.9',
        'addon:       /p/prebuilds/linux-x64/resnet-native.napi.glibc.node (prebuild)',
        'node:        20.0.0, Node-API 9 (the addon needs 8)',
        'platform:    linux-x64, glibc 2.28',
        'prebuilds:   linux-x64',
        'cpu:         Test CPU, 4 logical cores',
        'simd:        baseline x86-64',
        `threads:     4${process.env.RESNET_NUM_THREADS ? ' (RESNET_NUM_THREADS)' : ''}`,
        'engine:      cpu',
        'ops kernels: reference',
        'CUDA plugin: not built into this addon',
        '',
      ].join('\n'),
    );
  });
});
