#!/usr/bin/env node
// Stands in for node-gyp when prebuildify runs (scripts/prebuild.mjs points its --node-gyp
// hook here): prebuildify has no cmake-js backend, so this translates its call
//   rebuild --target=<node> --devdir=<dir> --arch=<arch> --release|--debug
// into a cmake-js configure + build of the package, in a CMake tree of its own
// (build/prebuild, so a developer's build/ is left alone), then copies the addon, and the
// CUDA plugin when it was built, into ./build/<Config>/ where prebuildify picks them up.
//
// --target and --devdir are ignored: the addon uses Node-API only (package.json
// binary.napi_versions), so cmake-js compiles against node-api-headers, the same for every
// Node version, and downloads nothing.
//
// Environment:
//   RESNET_CUDA=ON|OFF             build the CUDA plugin (CMake target resnet_cuda) or not;
//                                  unset, CMake decides. When built, it ships.
//   RESNET_PREBUILD_CMAKE_JS_ARGS  extra cmake-js arguments, space separated (e.g. the
//                                  Windows workflow's "--generator Ninja --cc clang-cl
//                                  --cxx clang-cl")
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const say = (line) => console.log(`prebuild-node-gyp: ${line}`);

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  strict: false,
  allowPositionals: true,
  options: {
    target: { type: 'string' },
    devdir: { type: 'string' },
    arch: { type: 'string' },
    release: { type: 'boolean' },
    debug: { type: 'boolean' },
  },
});
if (positionals[0] !== 'rebuild') {
  console.error(`prebuild-node-gyp: only 'rebuild' is supported (prebuildify's call), got '${positionals.join(' ')}'`);
  process.exit(2);
}

const config = values.debug ? 'Debug' : 'Release';
const treeDir = join(root, 'build', 'prebuild');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const common = ['--directory', root, '--out', treeDir, '--config', config];
if (typeof values.arch === 'string') common.push('--arch', values.arch);
// A sanitizer build never ships. RESNET_CUDA passes through when set; unset, CMake's
// default (or this tree's cache) decides whether the plugin is built.
common.push('--CDRESNET_SANITIZE=OFF');
if (process.env.RESNET_CUDA) common.push(`--CDRESNET_CUDA=${process.env.RESNET_CUDA}`);
// compile_commands.json lets a test confirm no -march=native / -mavx reached a prebuild
// (SIMD is chosen at run time, per function).
common.push('--CDCMAKE_EXPORT_COMPILE_COMMANDS=ON');
const extra = (process.env.RESNET_PREBUILD_CMAKE_JS_ARGS ?? '').split(/\s+/).filter(Boolean);

const built = join(treeDir, config);
const plugin = join(built, 'libresnet_cuda.so');
// Removed first, so that a plugin present after the build is one this build made (the
// build relinks it when the target is still configured), never one left from before.
rmSync(plugin, { force: true });

// configure every time (cmake-js compile would keep a stale cache's options), then build
// incrementally.
for (const step of ['configure', 'build']) {
  say(`cmake-js ${step} (${config}, tree ${treeDir})`);
  const r = spawnSync(process.execPath, [cmakeJs, step, ...common, ...extra], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) {
    console.error(`prebuild-node-gyp: cmake-js ${step} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

// prebuildify reads <its cwd>/build/<Config>: the addon (*.node) and shared libraries next
// to it, which it copies into prebuilds/<platform>-<arch>/ beside the addon.
const handoff = join(process.cwd(), 'build', config);
rmSync(handoff, { recursive: true, force: true });
mkdirSync(handoff, { recursive: true });

const addon = join(built, 'resnet_native.node');
if (!existsSync(addon)) {
  console.error(`prebuild-node-gyp: the build finished but ${addon} is missing`);
  process.exit(1);
}
copyFileSync(addon, join(handoff, 'resnet_native.node'));
say(`addon ${addon}`);

if (existsSync(plugin)) {
  copyFileSync(plugin, join(handoff, 'libresnet_cuda.so'));
  say(`CUDA plugin ${plugin} (ships beside the addon)`);
} else if (process.env.RESNET_CUDA === 'ON') {
  console.error(
    `prebuild-node-gyp: RESNET_CUDA=ON but the CUDA plugin was not built: ${plugin} is missing (does CMakeLists.txt define resnet_cuda?)`,
  );
  process.exit(1);
} else {
  say('no CUDA plugin was built (RESNET_CUDA=ON builds it where the CUDA toolkit and cuDNN are installed)');
}
