// The model and data options of a training run, kept in <out>/run.json so that
// `train --resume <out>/model.safetensors` continues the same run: options left out are taken
// from the run, and options that differ from it are refused, named, unless --force.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { atomicWrite } from '../io/atomic_write.js';
import { readRegularFile } from '../io/read_file.js';
import { UsageError, type Values } from './args.js';

export const RUN_SETTINGS_FILE = 'run.json';

/** The options that decide the model and the data it sees; the order in which differences are named. */
export const RUN_FLAGS = ['model', 'dataset', 'data', 'test-data', 'image-size', 'batch-size', 'limit', 'test-limit', 'seed', 'weights'] as const;
export type RunFlag = (typeof RUN_FLAGS)[number];

/** Each run flag's resolved value (null: not set; --seed is recorded with --limit only, whose subset it draws). */
export type RunSettings = Record<RunFlag, string | number | null>;

/** What the options resolve to (paths absolute, the model name lower-case, defaults filled in). */
export function runSettings(o: {
  modelName: string;
  datasetName: string;
  data: string | undefined;
  testData: string | undefined;
  imageSize: number | undefined;
  batchSize: number;
  limit: number | undefined;
  testLimit: number | undefined;
  seed: number;
  /** --weights: the resolved weight set name or the file's absolute path. */
  weights?: string | undefined;
}): RunSettings {
  return {
    model: o.modelName.toLowerCase(),
    dataset: o.datasetName,
    data: o.data === undefined ? null : resolve(o.data),
    'test-data': o.testData === undefined ? null : resolve(o.testData),
    'image-size': o.imageSize ?? null,
    'batch-size': o.batchSize,
    limit: o.limit ?? null,
    'test-limit': o.testLimit ?? null,
    seed: o.limit === undefined ? null : o.seed,
    weights: o.weights ?? null,
  };
}

/** The settings recorded beside a checkpoint, or undefined when there are none (a run from before run.json, a copied file). */
export async function recordedSettings(checkpointPath: string): Promise<RunSettings | undefined> {
  const path = join(dirname(checkpointPath), RUN_SETTINGS_FILE);
  if (!existsSync(path)) return undefined;
  const text = (await readRegularFile(path, { op: 'train --resume', maxBytes: 1 << 20, what: 'a run.json' })).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UsageError(`${path} is not valid JSON (remove it to resume without the run's settings)`);
  }
  const s = (parsed as { settings?: unknown })?.settings;
  if (typeof s !== 'object' || s === null) return undefined;
  const out = {} as RunSettings;
  for (const flag of RUN_FLAGS) {
    const v = (s as Record<string, unknown>)[flag];
    out[flag] = typeof v === 'string' || typeof v === 'number' ? v : null;
  }
  return out;
}

/** Fills the run flags the command line leaves out with the recorded run's values (before the options are read). */
export function fillFromRun(v: Values, recorded: RunSettings): void {
  for (const flag of RUN_FLAGS) {
    const r = recorded[flag];
    if (v[flag] === undefined && r !== null && !(flag === 'seed' && recorded.limit === null)) v[flag] = String(r);
  }
}

function show(flag: RunFlag, value: string | number | null): string {
  return value === null ? `no --${flag}` : `--${flag} ${value}`;
}

/** The flags whose values differ from the recorded run's, as "--model resnet18 (the run: --model resnet20)". */
export function differences(recorded: RunSettings, now: RunSettings): string[] {
  return RUN_FLAGS.filter((f) => recorded[f] !== now[f]).map((f) => `${show(f, now[f])} (the run: ${show(f, recorded[f])})`);
}

/** Writes <out>/run.json (atomically): the settings, and the command for people reading it. */
export async function writeRunSettings(out: string, settings: RunSettings, args: readonly string[]): Promise<void> {
  const text = `${JSON.stringify({ command: ['train', ...args], settings }, null, 2)}\n`;
  await atomicWrite(join(out, RUN_SETTINGS_FILE), 'train', async (fh) => void (await fh.write(text)));
}
