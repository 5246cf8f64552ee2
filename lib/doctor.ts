// `resnet-native doctor` and doctor(): what this installation runs with — which addon file
// loaded (a prebuild or a source build), the Node and Node-API versions, the platform and
// glibc, the CPU features the kernels dispatched to, threads, and the CUDA plugin's state
// or exactly why it is unavailable. The addon is imported lazily so that a failed load is
// reported here, not thrown before anything can be said.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { CudaStatus } from './native.js';
import type { RuntimeInfo } from './runtime.js';

/** What the addon's cudaStatus() returns (native/addon/device_bindings.cpp). */
export type { CudaStatus };
/** One GPU as the CUDA plugin reports it. */
export type CudaDevice = NonNullable<CudaStatus['devices']>[number];

export type AddonOrigin = 'prebuild' | 'source build' | 'other';

export interface DoctorReport {
  packageVersion: string;
  node: { version: string; napiVersion: number };
  /** The Node-API version the addon is compiled against (package.json binary.napi_versions). */
  addonNapiVersion: number | null;
  platform: { os: string; arch: string; glibc: string | null };
  cpu: { model: string; cores: number };
  /** prebuilds/ folders this copy of the package ships, e.g. ["linux-x64"]. */
  prebuilds: string[];
  addon: { loaded: true; path: string; origin: AddonOrigin } | { loaded: false; error: string };
  /** runtimeInfo() when the addon loaded. */
  runtime: RuntimeInfo | null;
  /** null when the addon has no cudaStatus() (built without the CUDA backend) or did not load. */
  cuda: CudaStatus | null;
}

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

/** 'prebuild' for prebuilds/<platform>-<arch>/…, 'source build' for build/Release or build/Debug. */
export function addonOrigin(path: string): AddonOrigin {
  if (path.includes(`${sep}prebuilds${sep}`)) return 'prebuild';
  if (path.includes(`${sep}build${sep}Release${sep}`) || path.includes(`${sep}build${sep}Debug${sep}`)) return 'source build';
  return 'other';
}

/** Gathers the report; never throws for a missing or broken addon (that is what it reports). */
export async function doctor(): Promise<DoctorReport> {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
    version: string;
    binary?: { napi_versions?: number[] };
  };
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const cpuList = cpus();
  const report: DoctorReport = {
    packageVersion: pkg.version,
    node: { version: process.versions.node, napiVersion: Number(process.versions.napi) },
    addonNapiVersion: pkg.binary?.napi_versions?.[0] ?? null,
    platform: { os: process.platform, arch: process.arch, glibc: header?.glibcVersionRuntime ?? null },
    cpu: { model: cpuList[0]?.model.trim() ?? 'unknown', cores: cpuList.length },
    prebuilds: listPrebuilds(),
    addon: { loaded: false, error: '' },
    runtime: null,
    cuda: null,
  };
  try {
    const { native, addonPath } = await import('./native.js');
    report.addon = { loaded: true, path: addonPath, origin: addonOrigin(addonPath) };
    report.runtime = native.runtimeInfo();
    report.cuda = readCudaStatus(native as unknown as { cudaStatus?: () => CudaStatus });
  } catch (err) {
    report.addon = { loaded: false, error: err instanceof Error ? err.message : String(err) };
  }
  return report;
}

function listPrebuilds(): string[] {
  try {
    return readdirSync(join(packageRoot, 'prebuilds'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

function readCudaStatus(binding: { cudaStatus?: () => CudaStatus }): CudaStatus | null {
  if (typeof binding.cudaStatus !== 'function') return null;
  try {
    return binding.cudaStatus();
  } catch (err) {
    return { available: false, pluginPath: '', reason: `cudaStatus() failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** 12040 → "12.4" (CUDA's driver and runtime version encoding). */
export function cudaVersionString(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 10)}`;
}

/** 90100 → "9.1.0" (cuDNN ≥ 9: 10000·major + 100·minor + patch); 8906 → "8.9.6" (cuDNN 8: 1000·major + …). */
export function cudnnVersionString(v: number): string {
  const major = v >= 10000 ? Math.floor(v / 10000) : Math.floor(v / 1000);
  const rest = v >= 10000 ? v % 10000 : v % 1000;
  return `${major}.${Math.floor(rest / 100)}.${rest % 100}`;
}

/** The report as the lines `resnet-native doctor` prints. */
export function formatDoctorReport(r: DoctorReport): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${`${label}:`.padEnd(13)}${value}`);
  lines.push(`resnet-native ${r.packageVersion}`);
  if (r.addon.loaded) row('addon', `${r.addon.path} (${r.addon.origin})`);
  else row('addon', `not loaded: ${r.addon.error.split('\n')[0]}`);
  row('node', `${r.node.version}, Node-API ${r.node.napiVersion}${r.addonNapiVersion ? ` (the addon needs ${r.addonNapiVersion})` : ''}`);
  row(
    'platform',
    `${r.platform.os}-${r.platform.arch}${r.platform.os === 'linux' ? `, ${r.platform.glibc ? `glibc ${r.platform.glibc}` : 'not glibc (musl?)'}` : ''}`,
  );
  row('prebuilds', r.prebuilds.length ? r.prebuilds.join(', ') : 'none in this copy');
  row('cpu', `${r.cpu.model}, ${r.cpu.cores} logical cores`);
  if (r.runtime) {
    row('simd', r.runtime.simd);
    row('threads', `${r.runtime.threads}${process.env.RESNET_NUM_THREADS ? ' (RESNET_NUM_THREADS)' : ''}`);
    row('engine', r.runtime.engine);
    row('ops kernels', r.runtime.kernels);
  }
  lines.push(...formatCuda(r));
  return `${lines.join('\n')}\n`;
}

function formatCuda(r: DoctorReport): string[] {
  if (!r.addon.loaded) return ['CUDA plugin: unknown (the addon did not load)'];
  const c = r.cuda;
  if (!c) return ['CUDA plugin: not built into this addon'];
  if (!c.available) return [`CUDA plugin: unavailable: ${c.reason ?? 'no reason given'}${c.pluginPath ? ` (${c.pluginPath})` : ''}`];
  const lines = [`CUDA plugin: available${c.pluginPath ? ` (${c.pluginPath})` : ''}`];
  const versions = [
    c.driverVersion !== undefined ? `driver ${cudaVersionString(c.driverVersion)}` : null,
    c.runtimeVersion !== undefined ? `runtime ${cudaVersionString(c.runtimeVersion)}` : null,
    c.cudnnVersion !== undefined ? `cuDNN ${cudnnVersionString(c.cudnnVersion)}` : null,
  ].filter((s): s is string => s !== null);
  if (versions.length) lines.push(`  ${versions.join(', ')}`);
  if (c.cudnnPath) lines.push(`  cuDNN loaded from ${c.cudnnPath}`);
  (c.devices ?? []).forEach((d, i) => {
    lines.push(`  GPU ${i}: ${d.name}, ${(d.memoryBytes / 2 ** 30).toFixed(1)} GiB, compute capability ${d.computeCapability}`);
  });
  return lines;
}
