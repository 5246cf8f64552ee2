// Tests that run the package in a child process (soak, crash safety) use the compiled dist/,
// as users do; this builds it first when lib/ is newer (as test/package/cli.test.ts does).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const entry = join(packageRoot, 'dist', 'index.js');

function newestTs(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestTs(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

export async function ensureDist(): Promise<void> {
  if (existsSync(entry) && statSync(entry).mtimeMs >= newestTs(join(packageRoot, 'lib'))) return;
  const tsc = join(packageRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: packageRoot }).catch((err: unknown) => {
    // Type errors elsewhere still emit JavaScript; only a missing entry point is fatal.
    if (!existsSync(entry)) throw err;
  });
}
