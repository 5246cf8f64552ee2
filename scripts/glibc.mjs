// glibc versions: the one this process runs on, and the newest one a binary asks for.
// Shared by the install script (is a prebuild usable here?) and the prebuild script
// (was this prebuild made on a system old enough?).

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
