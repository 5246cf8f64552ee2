// The install script's decision: can a prebuild serve this system, and if not, what does the
// user read? Fed systems this machine is not (musl, old glibc, other architectures).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { compareVersions, maxGlibcRequired, MIN_GLIBC, prebuildUnsupportedReason, runtimeGlibc } from '../../scripts/prebuild-support.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shipped = ['darwin-arm64', 'linux-arm64', 'linux-x64', 'win32-x64'];

describe('prebuildUnsupportedReason', () => {
  it('accepts a shipped platform with a new enough glibc (and any darwin / win32)', () => {
    expect(prebuildUnsupportedReason({ platform: 'linux', arch: 'x64', glibc: '2.36' }, shipped)).toBeNull();
    expect(prebuildUnsupportedReason({ platform: 'linux', arch: 'arm64', glibc: MIN_GLIBC }, shipped)).toBeNull();
    expect(prebuildUnsupportedReason({ platform: 'darwin', arch: 'arm64', glibc: null }, shipped)).toBeNull();
    expect(prebuildUnsupportedReason({ platform: 'win32', arch: 'x64', glibc: null }, shipped)).toBeNull();
  });

  it('names the platform and the ones the package has when there is no prebuild for it', () => {
    expect(prebuildUnsupportedReason({ platform: 'linux', arch: 'riscv64', glibc: '2.36' }, shipped)).toBe(
      'no prebuilt binary for linux-riscv64 (this package has them for darwin-arm64, linux-arm64, linux-x64, win32-x64)',
    );
    expect(prebuildUnsupportedReason({ platform: 'darwin', arch: 'x64', glibc: null }, [])).toBe(
      'no prebuilt binary for darwin-x64 (this copy has no prebuilds/)',
    );
  });

  it('refuses glibc older than 2.28, and musl', () => {
    expect(prebuildUnsupportedReason({ platform: 'linux', arch: 'x64', glibc: '2.17' }, shipped)).toBe(
      'the linux-x64 prebuild needs glibc ≥ 2.28; this system has glibc 2.17',
    );
    expect(prebuildUnsupportedReason({ platform: 'linux', arch: 'x64', glibc: null }, shipped)).toBe(
      "the Linux prebuilds need glibc ≥ 2.28; this system's C library is not glibc (musl?)",
    );
  });

  it('names the newer glibc a binary really needs (one built on a newer system)', () => {
    expect(prebuildUnsupportedReason({ platform: 'linux', arch: 'x64', glibc: '2.31' }, shipped, '2.34')).toBe(
      'the linux-x64 prebuild needs glibc ≥ 2.34; this system has glibc 2.31',
    );
    expect(prebuildUnsupportedReason({ platform: 'linux', arch: 'x64', glibc: '2.31' }, shipped, '2.17')).toBeNull();
  });
});

describe('glibc versions', () => {
  it('compares numerically, not as text', () => {
    expect(compareVersions('2.2.5', '2.17')).toBeLessThan(0);
    expect(compareVersions('2.28', '2.28.0')).toBe(0);
    expect(compareVersions('2.34', '2.4')).toBeGreaterThan(0);
  });

  it('finds the newest GLIBC_ version a binary references', () => {
    const elfish = Buffer.from('\0libc.so.6\0GLIBC_2.2.5\0memcpy\0GLIBC_2.14\0GLIBC_2.34\0GLIBC_2.17\0GLIBCXX_3.4.30\0', 'latin1');
    expect(maxGlibcRequired(elfish)).toBe('2.34');
    expect(maxGlibcRequired(Buffer.from('no versions here'))).toBeNull();
  });

  it("this machine's prebuild (when built) needs no newer glibc than this machine has", (ctx) => {
    const glibc = runtimeGlibc();
    const folder = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
    let files: string[] = [];
    try {
      files = readdirSync(folder).filter((f) => f.endsWith('.node'));
    } catch {
      // not built
    }
    if (glibc === null || files.length === 0) {
      console.log(`prebuild_support: skipped: ${glibc === null ? 'not a glibc system' : `no prebuild in ${folder}`}`);
      ctx.skip();
    }
    for (const f of files) {
      const needs = maxGlibcRequired(readFileSync(join(folder, f)));
      expect(needs).not.toBeNull();
      expect(compareVersions(needs!, glibc!)).toBeLessThanOrEqual(0);
    }
  });
});
