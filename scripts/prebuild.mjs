// npm run prebuild (the project's full build is `npm run compile`, not "build", because npm
// runs a "prebuild" script as a hook before any "build" script): the prebuilt addon for this machine's platform and architecture, in
// prebuilds/<platform>-<arch>/ with node-gyp-build's naming, made by prebuildify. prebuildify
// runs scripts/prebuild-node-gyp.mjs in place of node-gyp (it drives cmake-js); with
// RESNET_CUDA=ON on linux-x64 the CUDA plugin (libresnet_cuda.so) lands beside the addon.
//
// Environment: RESNET_CUDA=ON|OFF (the CUDA plugin; unset, CMake decides), RESNET_PREBUILD_MAX_GLIBC=2.28
// (Linux: fail when the binaries need a newer glibc, so a prebuild made on a too-new system
// is never shipped), RESNET_PREBUILD_CMAKE_JS_ARGS (extra cmake-js arguments).
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch as osArch, platform as osPlatform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { compareVersions, maxGlibcRequired } from './prebuild-support.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const prebuildify = require('prebuildify');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const platform = process.env.PREBUILD_PLATFORM || osPlatform();
const arch = process.env.PREBUILD_ARCH || osArch();
const folder = join(root, 'prebuilds', `${platform}-${arch}`);
// prebuildify works in its cwd's build/Release; a staging folder keeps that away from the
// developer's own build/Release (which tests running meanwhile load).
const stage = join(root, 'build', 'prebuildify');
const shim = join(root, 'scripts', 'prebuild-node-gyp.mjs');

rmSync(folder, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });

const options = {
  cwd: stage,
  out: root,
  // "<name>.napi[.glibc].node": the napi tag tells node-gyp-build the binary serves every
  // Node version with Node-API 8 (prebuildify 6 leaves it out of the name by itself).
  name: `${pkg.name}.napi`,
  napi: true,
  targets: [],
  // Linux binaries are tagged glibc so that node-gyp-build on musl (Alpine) skips them.
  tagLibc: platform === 'linux',
  strip: platform === 'linux' || platform === 'darwin',
  // Through a shell on every platform, so that "node script" works as the command.
  nodeGyp: `"${process.execPath}" "${shim}"`,
  shell: true,
};

console.log(`prebuild: ${platform}-${arch} with prebuildify (cmake-js via ${shim})`);
await new Promise((done, fail) => prebuildify(options, (err) => (err ? fail(err) : done())));

let tooNew = false;
const limit = process.env.RESNET_PREBUILD_MAX_GLIBC;
for (const file of readdirSync(folder).sort()) {
  const path = join(folder, file);
  const mb = (statSync(path).size / 2 ** 20).toFixed(2);
  let note = '';
  if (platform === 'linux') {
    const needs = maxGlibcRequired(readFileSync(path));
    note = needs ? `, needs glibc ≥ ${needs}` : '';
    if (needs && limit && compareVersions(needs, limit) > 0) tooNew = true;
  }
  console.log(`prebuild: ${join('prebuilds', `${platform}-${arch}`, file)}  ${mb} MB${note}`);
}
if (platform === 'linux' && arch === 'x64' && !readdirSync(folder).includes('libresnet_cuda.so')) {
  console.log('prebuild: no CUDA plugin in this prebuild (RESNET_CUDA=ON builds it where the CUDA toolkit and cuDNN are installed)');
}
if (tooNew) {
  console.error(`prebuild: a binary needs a glibc newer than RESNET_PREBUILD_MAX_GLIBC=${limit}; build on an older system (e.g. manylinux_2_28)`);
  process.exit(1);
}
