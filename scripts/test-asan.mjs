// npm run test:asan — the native code built with AddressSanitizer + UndefinedBehaviorSanitizer
// into build-asan/ (the normal build/ is untouched), then the whole vitest suite against it.
//
// Node itself is not instrumented, so the ASan runtime is preloaded (LD_PRELOAD) and the addon
// is chosen with RESNET_NATIVE_ADDON (lib/native.ts). Leak checking is off (Node's own
// allocations would drown ours; test/native/soak.test.ts covers our leaks); allocator_may_return_null lets an
// absurd allocation fail as std::bad_alloc (→ E_ALLOC), as it does without ASan; the
// quarantine of freed memory is 64 MB instead of 256 MB, so that tests bounding resident memory
// (finalizers reclaiming dropped tensors) measure the library rather than ASan; any UBSan
// report halts the process, which fails the test that triggered it.
//
// The JSON report goes to build/test-report/asan/vitest.json; scripts/test-summary.mjs adds its
// totals to the normal run's. Extra arguments are passed to vitest (e.g. a test file).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const run = (cmd, args, env) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: env ?? process.env }).status ?? 1;

const buildDir = 'build-asan';
if (run('npx', ['cmake-js', 'compile', '--out', buildDir, '--CDRESNET_SANITIZE=ON', '--CDRESNET_CUDA=OFF']) !== 0) {
  console.error('test:asan: the sanitizer build failed');
  process.exit(1);
}
const addon = join(root, buildDir, 'Release', 'resnet_native.node');
if (!existsSync(addon)) {
  console.error(`test:asan: no addon at ${addon} after the build`);
  process.exit(1);
}

const libasan = execFileSync(process.env.CXX ?? 'g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
if (!existsSync(libasan)) {
  console.error(`test:asan: the compiler reports no ASan runtime (${libasan})`);
  process.exit(1);
}
const reportDir = join(root, 'build', 'test-report', 'asan');
mkdirSync(reportDir, { recursive: true });
const env = {
  ...process.env,
  LD_PRELOAD: [libasan, process.env.LD_PRELOAD].filter(Boolean).join(' '),
  ASAN_OPTIONS: 'detect_leaks=0:allocator_may_return_null=1:abort_on_error=1:quarantine_size_mb=64',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  RESNET_NATIVE_ADDON: addon,
  RESNET_SANITIZED: '1',
};
// Instrumented kernels at -O1 run several times slower than the release build: the longest
// test (MNIST convergence, ~1 min normally) needs more than the suite's 120 s default.
const timeouts = ['--testTimeout=900000', '--hookTimeout=900000'];
const status = run('npx', ['vitest', 'run', ...timeouts, `--outputFile.json=${join(reportDir, 'vitest.json')}`, ...process.argv.slice(2)], env);
process.exit(status);
