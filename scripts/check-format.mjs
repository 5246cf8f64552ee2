#!/usr/bin/env node
// clang-format for native/ (style: .clang-format at the repository root).
//   node scripts/check-format.mjs           check: clang-format --dry-run -Werror, exit 1 on any difference
//   node scripts/check-format.mjs --write   format the files in place (clang-format -i)
// Without clang-format (Debian/Ubuntu: apt-get install clang-format) it prints why and exits 0.
// CLANG_FORMAT=/path/to/clang-format picks the binary. Versions differ slightly in output;
// the style was measured with Debian 12's clang-format 14.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const write = process.argv.includes('--write');
const bin = process.env.CLANG_FORMAT || 'clang-format';
const EXTENSIONS = /\.(cpp|cc|hpp|h|cu|cuh)$/;

const version = spawnSync(bin, ['--version'], { encoding: 'utf8' });
if (version.error || version.status !== 0) {
  const why = version.error?.code === 'ENOENT' ? 'not found on PATH' : (version.error?.message ?? version.stderr.trim());
  console.log(`clang-format check skipped: ${bin} ${why} (install it: apt-get install clang-format)`);
  process.exit(0);
}

function walk(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(path));
    else if (entry.isFile() && EXTENSIONS.test(entry.name)) out.push(path);
  }
  return out;
}

const files = walk(join(root, 'native'))
  .map((f) => relative(root, f))
  .sort();
const args = write ? ['-i', '--style=file', ...files] : ['--dry-run', '-Werror', '--style=file', ...files];
const run = spawnSync(bin, args, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
if (run.error) throw run.error;
process.stderr.write(run.stderr);

const v = version.stdout.trim();
if (write) {
  console.log(`clang-format: formatted ${files.length} files under native/ (${v})`);
} else if (run.status === 0) {
  console.log(`clang-format: ${files.length} files under native/ are formatted (${v})`);
} else {
  const failing = new Set([...run.stderr.matchAll(/^(.+?):\d+:\d+: (?:error|warning):/gm)].map((m) => m[1]));
  console.log(`clang-format: ${failing.size} of ${files.length} files under native/ need formatting (${v}); npm run format fixes them`);
}
process.exit(run.status ?? 1);
