// Command-line arguments: node:util parseArgs with one-line usage errors, and readers for
// integers, numbers, choices, shapes and the device / thread options.
//
// Nothing here loads the native addon (lib/validate.ts imports only errors.ts): these checks
// run before it is imported, as --help must not need it and --threads must be in
// RESNET_NUM_THREADS first. The readers check ranges with validate.ts (integer, number,
// PRECISIONS) but keep the CLI's own messages, which name the flag (--batch-size) and exit
// with status 2 (a UsageError), not validate's "op: name must be …" E_ARG.
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';
import { NAME } from './output.js';

/** A usage error: printed as one line, exit status 2. */
export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

/** Where a model runs, as the library's model options take it. */
export interface Placement {
  device?: string;
  allowTf32?: boolean;
  precision?: validate.Precision;
}

const COMMON: Options = { help: { type: 'boolean', short: 'h' } };
export const THREADS: Options = { threads: { type: 'string' } };
/** Where models run (train, eval, predict, bench). */
export const DEVICE: Options = { device: { type: 'string' }, 'allow-tf32': { type: 'boolean' }, precision: { type: 'string' } };

/** The help lines of THREADS and DEVICE, for every command that takes them (one copy). */
export const PLACEMENT_HELP = `  --threads <n>          native threads (default: all cores)
  --device <name>        cpu (default) | cuda | cuda:N (an NVIDIA GPU; see doctor)
  --allow-tf32           on a GPU, let fp32 convolutions use TF32 tensor cores
  --precision P          on a GPU: fp32 (default), or fp16 / bf16 mixed precision`;

/** A negative number (-1, -0.5, -.5, -1e-3): a value, not an option, after an option that takes one. */
const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/**
 * `--lr -1` as `--lr=-1`: parseArgs takes any argument starting with '-' for an option (and
 * reports "needs a value"), so a value-taking option's negative-number value is joined to it
 * and reaches the range check, which says what is wrong with it.
 */
function joinNegativeValues(args: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
    if (a === '--') {
      out.push(...args.slice(i + 1));
      break;
    }
  }
  return out;
}

/** parseArgs (strict) with its errors turned into UsageErrors that name the command. */
export function parse(command: string, args: string[], options: Options, positionals = false): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({ args: joinNegativeValues(args, options), options: { ...COMMON, ...options }, strict: true, allowPositionals: positionals });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (err) {
    const e = err as Error & { code?: string };
    const where = command ? `${NAME} ${command}` : NAME;
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(e.message)?.[1] ?? e.message;
      throw new UsageError(`unknown option '${flag}' for '${where}' (see ${where} --help)`);
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /'([^']+)'/.exec(e.message)?.[1];
      throw new UsageError(flag ? `option '${flag.replace(/^-\w, /, '').replace(/ <value>$/, '')}' needs a value` : e.message.split('\n')[0]!);
    }
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']+)'/.exec(e.message)?.[1] ?? '';
      throw new UsageError(`unexpected argument '${arg}' for '${where}' (see ${where} --help)`);
    }
    throw err;
  }
}

export function str(v: Values, key: string): string | undefined {
  const s = v[key];
  return typeof s === 'string' ? s : undefined;
}

/** Runs a validate.ts check; its error (a ResNetError) becomes a UsageError saying `message`. */
function usage<T>(check: () => T, message: string): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof ResNetError) throw new UsageError(message);
    throw err;
  }
}

/** --key as an integer in [min, max] (written in decimal), or undefined when absent. */
export function int(v: Values, key: string, min = 1, max = 2 ** 31 - 1): number | undefined {
  const s = str(v, key);
  if (s === undefined) return undefined;
  const message = `--${key} must be an integer ≥ ${min}${max < 2 ** 31 - 1 ? ` and ≤ ${max}` : ''}, got '${s}'`;
  if (!/^-?\d+$/.test(s.trim())) throw new UsageError(message);
  return usage(() => validate.integer(Number(s), NAME, `--${key}`, min, Math.min(max, Number.MAX_SAFE_INTEGER)), message);
}

/** --key as a finite number in [min, max], or undefined when absent. */
export function num(v: Values, key: string, min = 0, max = Number.MAX_VALUE): number | undefined {
  const s = str(v, key);
  if (s === undefined) return undefined;
  const message = `--${key} must be a number in [${min}, ${max === Number.MAX_VALUE ? '∞' : max}], got '${s}'`;
  if (s.trim() === '') throw new UsageError(message);
  return usage(() => validate.number(Number(s), NAME, `--${key}`, min, max), message);
}

/** --key as one of the allowed words (dflt when absent). */
export function oneOf<T extends string>(v: Values, key: string, allowed: readonly T[], dflt: T): T {
  const s = str(v, key) ?? dflt;
  if (!(allowed as readonly string[]).includes(s)) {
    throw new UsageError(
      `--${key} must be ${allowed
        .map((a) => `'${a}'`)
        .join(', ')
        .replace(/, ([^,]*)$/, ' or $1')}, got '${s}'`,
    );
  }
  return s as T;
}

/** --key as height,width,channels (each an integer in [1, 16384]), or undefined when absent. */
export function shapeArg(v: Values, key: string): [number, number, number] | undefined {
  const s = str(v, key);
  if (s === undefined) return undefined;
  const parts = s.split(/[,x×]/).map((p) => Number(p.trim()));
  if (parts.length !== 3 || !parts.every((p) => Number.isInteger(p) && p >= 1 && p <= 16384)) {
    throw new UsageError(`--${key} must be height,width,channels (e.g. 32,32,3), got '${s}'`);
  }
  return parts as [number, number, number];
}

/** --key, which the command cannot do without. */
export function required(v: Values, key: string, command: string): string {
  const s = str(v, key);
  if (s === undefined || s === '') throw new UsageError(`${command} needs --${key} (see ${NAME} ${command} --help)`);
  return s;
}

/** --device / --allow-tf32 / --precision as model options (the library checks them itself: E_DEVICE / E_ARG). */
export function deviceOptions(v: Values): Placement {
  const o: Placement = {};
  const device = str(v, 'device');
  if (device !== undefined) o.device = device;
  if (v['allow-tf32']) o.allowTf32 = true;
  const precision = str(v, 'precision');
  if (precision !== undefined) {
    if (!(validate.PRECISIONS as readonly string[]).includes(precision)) {
      throw new UsageError(`--precision must be fp32, fp16 or bf16, got '${precision}'`);
    }
    o.precision = precision as validate.Precision;
  }
  return o;
}

/** Sets the native thread count; must run before the library is imported. */
export function applyThreads(v: Values): void {
  const threads = int(v, 'threads', 1, 1024);
  if (threads !== undefined) process.env.RESNET_NUM_THREADS = String(threads);
}
