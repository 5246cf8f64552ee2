#!/usr/bin/env node
// The `resnet-native` command: train | eval | predict | export | report | summary | bench | doctor.
// This file is the entry (package.json "bin" → dist/cli.js): it dispatches to lib/cli/<command>.ts.
// Commands are imported only when run, and each parses its arguments (node:util parseArgs)
// before the library (and its native addon) is loaded, so that --help needs no addon and
// --threads can size the native thread pool (RESNET_NUM_THREADS).
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { UsageError } from './cli/args.js';
import { GLOBAL_HELP } from './cli/help.js';
import { NAME, say } from './cli/output.js';

type Command = (args: string[]) => Promise<void>;

/** Each command's module, loaded on demand. */
const COMMANDS: Record<string, () => Promise<{ run: Command }>> = {
  train: () => import('./cli/train.js'),
  eval: () => import('./cli/eval.js'),
  predict: () => import('./cli/predict.js'),
  summary: () => import('./cli/summary.js'),
  bench: () => import('./cli/bench.js'),
  doctor: () => import('./cli/doctor.js'),
  report: () => import('./cli/report.js'),
  export: () => import('./cli/export.js'),
};

async function version(): Promise<string> {
  const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json');
  return (JSON.parse(await readFile(pkg, 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
      if (first === 'help' && rest[0] && Object.hasOwn(COMMANDS, rest[0])) return main([rest[0], '--help']);
      process.stdout.write(GLOBAL_HELP);
      return first === undefined ? 2 : 0;
    }
    if (first === '-v' || first === '--version') {
      say(await version());
      return 0;
    }
    if (first.startsWith('-')) throw new UsageError(`unknown option '${first}' (see ${NAME} --help)`);
    const load = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
    if (!load) throw new UsageError(`unknown command '${first}' (commands: ${Object.keys(COMMANDS).join(', ')}; see ${NAME} --help)`);
    await (await load()).run(rest);
    return 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // One prefix: messages that already start with the command's name (the addon loader's) lose theirs.
    const line = message.split('\n')[0]!.replace(new RegExp(`^(${NAME}: (error: )?)+`), '');
    process.stderr.write(`${NAME}: error: ${line}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

// Run when executed (node dist/cli.js, the npm bin link), not when imported.
const self = fileURLToPath(import.meta.url);
const invoked = process.argv[1];
let isMain = false;
if (invoked) {
  try {
    const { realpathSync } = await import('node:fs');
    isMain = realpathSync(invoked) === realpathSync(self);
  } catch {
    isMain = false;
  }
}
if (isMain) {
  process.exitCode = await main(process.argv.slice(2));
}
