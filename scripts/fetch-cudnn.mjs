#!/usr/bin/env node
// Build-time cuDNN for the CUDA plugin: takes the nvidia-cudnn-cu13 wheel from the
// machine's Python package index (`pip download`) and unpacks only what compiling and
// linking need — the headers and the libcudnn.so.9 front library — into .cudnn/ (ignored).
// At run time the plugin loads the user's own cuDNN (RESNET_CUDNN_PATH, CUDNN_ROOT,
// LD_LIBRARY_PATH, or a Python site-packages' nvidia/cudnn), never this copy's engines.
//
//   node scripts/fetch-cudnn.mjs            # no-op when .cudnn/ is already complete
//   node scripts/fetch-cudnn.mjs --force
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, '.cudnn');
const ready = existsSync(join(target, 'include', 'cudnn.h')) && existsSync(join(target, 'lib', 'libcudnn.so.9'));
if (ready && !process.argv.includes('--force')) {
  console.log(`cuDNN: ${target} is ready`);
  process.exit(0);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log('cuDNN: the CUDA plugin is built on linux-x64 only; nothing to fetch');
  process.exit(0);
}

const python = process.env.PYTHON ?? 'python3';
const work = mkdtempSync(join(tmpdir(), 'resnet-cudnn-'));
try {
  console.log('cuDNN: pip download --no-deps nvidia-cudnn-cu13 …');
  execFileSync(
    python,
    ['-m', 'pip', 'download', '--no-deps', '--quiet', '--disable-pip-version-check', '--retries', '1', '-d', work, 'nvidia-cudnn-cu13'],
    { stdio: 'inherit' },
  );
  const wheel = readdirSync(work).find((f) => f.endsWith('.whl'));
  if (!wheel) throw new Error('pip produced no wheel');
  // A wheel is a zip; Python's zipfile extracts the members we name.
  const extract = `
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for name in z.namelist():
    if name.startswith('nvidia/cudnn/include/') or name == 'nvidia/cudnn/lib/libcudnn.so.9':
        z.extract(name, sys.argv[2])
`;
  execFileSync(python, ['-c', extract, join(work, wheel), work], { stdio: 'inherit' });
  rmSync(target, { recursive: true, force: true });
  execFileSync('mv', [join(work, 'nvidia', 'cudnn'), target]);
  symlinkSync('libcudnn.so.9', join(target, 'lib', 'libcudnn.so'));
  console.log(`cuDNN: headers and libcudnn.so.9 from ${wheel} in ${target}`);
} catch (err) {
  console.error(
    `cuDNN: could not fetch the nvidia-cudnn-cu13 wheel (${err.message.split('\n')[0]}); ` +
      'the CUDA plugin will not be built unless CUDNN_ROOT or RESNET_CUDNN_PATH points at a cuDNN 9',
  );
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
