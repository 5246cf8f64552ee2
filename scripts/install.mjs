// npm "install" hook: use the prebuilt addon for this platform when one loads, otherwise
// build the native code from source with cmake-js (incrementally, so a second
// `npm install` in a built checkout only relinks what changed).
//
// A prebuild is used when prebuilds/<platform>-<arch>/ has one for this system and
// node-gyp-build-test loads it in a child process (a binary that cannot load, e.g. one
// needing a newer glibc, fails there instead of in the user's program). Source builds:
// RESNET_NATIVE_BUILD_FROM_SOURCE=1, a git checkout (developers edit the C++), or no
// usable prebuild (the reason is printed).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { compareVersions, maxGlibcRequired, prebuildUnsupportedReason, runtimeGlibc } from './prebuild-support.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const say = (line) => console.log(`resnet-native: ${line}`);

/** Why no prebuild can serve this system, or null when one may (then it is load-tested). */
function prebuildUnsupported() {
  const system = { platform: process.platform, arch: process.arch, glibc: runtimeGlibc() };
  const prebuilds = join(root, 'prebuilds');
  let shipped = [];
  try {
    shipped = readdirSync(prebuilds).filter((name) => /^[a-z0-9]+-[a-z0-9+]+$/.test(name));
  } catch {
    // no prebuilds/ folder: a checkout or a package published without prebuilds
  }
  // The glibc the Linux binary really asks for, so the message can name it.
  let binaryGlibc = null;
  const folder = join(prebuilds, `${system.platform}-${system.arch}`);
  if (system.platform === 'linux' && existsSync(folder)) {
    for (const file of readdirSync(folder).filter((f) => f.endsWith('.node'))) {
      const needs = maxGlibcRequired(readFileSync(join(folder, file)));
      if (needs && (binaryGlibc === null || compareVersions(needs, binaryGlibc) > 0)) binaryGlibc = needs;
    }
  }
  return prebuildUnsupportedReason(system, shipped, binaryGlibc);
}

/** Loads the matching prebuild in a child process; null when it loads, else why not. */
function prebuildLoadFailure() {
  const test = require.resolve('node-gyp-build/build-test.js');
  // PREBUILDS_ONLY: node-gyp-build must not answer with a build/Release left from a build.
  const r = spawnSync(process.execPath, [test], {
    cwd: root,
    env: { ...process.env, PREBUILDS_ONLY: '1' },
    encoding: 'utf8',
  });
  if (r.status === 0) return null;
  const why = (r.stderr || r.stdout || '').split('\n').find((l) => /Error|error/.test(l)) ?? `exit ${r.status ?? r.signal}`;
  return `the prebuilt binary did not load: ${why.trim()}`;
}

function buildFromSource(reason) {
  say(`building the native addon from source (cmake-js compile): ${reason}`);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'compile', '--directory', root];
  if (process.env.RESNET_CUDA) args.push(`--CDRESNET_CUDA=${process.env.RESNET_CUDA}`);
  const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
  if (result.status !== 0) {
    console.error(
      `resnet-native: the native build failed (it was needed because ${reason}). ` +
        'A source build needs cmake >= 3.18 and a C++20 compiler (g++ >= 10 or clang >= 12); ' +
        'see README.md, "Building from source".',
    );
    process.exit(result.status || 1);
  }
}

if (process.env.RESNET_NATIVE_BUILD_FROM_SOURCE === '1') {
  buildFromSource('RESNET_NATIVE_BUILD_FROM_SOURCE=1');
} else if (existsSync(join(root, '.git'))) {
  buildFromSource('this is a git checkout (prebuilds are for the published package)');
} else {
  const unsupported = prebuildUnsupported();
  const failure = unsupported ?? prebuildLoadFailure();
  if (failure === null) {
    process.env.PREBUILDS_ONLY = '1'; // read when node-gyp-build is first loaded
    const found = require('node-gyp-build').path(root);
    say(`using the prebuilt addon ${found}`);
  } else {
    buildFromSource(failure);
  }
}
