// Can a prebuild serve this system? Shared by the install script (use the prebuild or build
// from source, and say why) and the prebuild script (was this prebuild made on a system old
// enough?). Pure functions apart from runtimeGlibc(), so tests can feed them any system.

/** The oldest glibc the Linux prebuilds support (they are built on manylinux_2_28). */
export const MIN_GLIBC = '2.28';

/** The running glibc's version ("2.36"), or null on musl and on other systems. */
export function runtimeGlibc() {
  if (process.platform !== 'linux') return null;
  const header = process.report?.getReport?.().header;
  return header?.glibcVersionRuntime ?? null;
}

/**
 * The newest GLIBC_x.y symbol version an ELF binary references ("2.28"), or null when it
 * references none. Version names are plain strings in the dynamic string table, so a byte
 * scan finds them without binutils.
 */
export function maxGlibcRequired(bytes) {
  let newest = null;
  for (const m of bytes.toString('latin1').matchAll(/GLIBC_(\d+\.\d+(?:\.\d+)?)/g)) {
    if (newest === null || compareVersions(m[1], newest) > 0) newest = m[1];
  }
  return newest;
}

/** Compares dotted versions numerically: negative, zero or positive. */
export function compareVersions(a, b) {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Why no prebuild can serve this system, or null when one may (it is then load-tested).
 * system: { platform, arch, glibc: runtime glibc or null }; shipped: the prebuilds/ folder
 * names; binaryGlibc: the newest glibc the matching Linux binary asks for, when known.
 */
export function prebuildUnsupportedReason(system, shipped, binaryGlibc = null) {
  const tuple = `${system.platform}-${system.arch}`;
  if (!shipped.includes(tuple)) {
    return (
      `no prebuilt binary for ${tuple}` + (shipped.length ? ` (this package has them for ${shipped.join(', ')})` : ' (this copy has no prebuilds/)')
    );
  }
  if (system.platform === 'linux') {
    const needs = binaryGlibc && compareVersions(binaryGlibc, MIN_GLIBC) > 0 ? binaryGlibc : MIN_GLIBC;
    if (system.glibc === null) return `the Linux prebuilds need glibc ≥ ${needs}; this system's C library is not glibc (musl?)`;
    if (compareVersions(system.glibc, needs) < 0) return `the ${tuple} prebuild needs glibc ≥ ${needs}; this system has glibc ${system.glibc}`;
  }
  return null;
}
