// npm "install" hook: use a prebuilt addon for this platform when one loads,
// otherwise build the native code from source with cmake-js (incrementally, so a
// second `npm install` in a built checkout only relinks what changed).
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const forceSource = process.env.RESNET_NATIVE_BUILD_FROM_SOURCE === '1';

function loadablePrebuild() {
  try {
    const found = require('node-gyp-build').path(root);
    if (!found.includes(`${sep}prebuilds${sep}`)) return null;
    require(found);
    return found;
  } catch {
    return null;
  }
}

const prebuild = forceSource ? null : loadablePrebuild();
if (prebuild) {
  console.log(`resnet-native: using prebuilt addon ${prebuild}`);
  process.exit(0);
}

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--directory', root];
if (process.env.RESNET_CUDA) args.push(`--CDRESNET_CUDA=${process.env.RESNET_CUDA}`);
console.log('resnet-native: building the native addon from source (cmake-js compile)');
const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  console.error(
    'resnet-native: the native build failed. It needs cmake >= 3.18 and a C++20 compiler ' +
      '(g++ >= 10 or clang >= 12); see README.md, "Building from source".',
  );
  process.exit(result.status ?? 1);
}
