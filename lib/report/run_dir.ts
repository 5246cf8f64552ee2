// What `resnet-native report` reads from a run folder, each piece optional:
//   history.json  per-epoch metrics (train writes it when the run ends)
//   log.csv       per-epoch metrics in Keras' CSVLogger columns (the --log csv writer; read
//                 when history.json is absent, e.g. while a run is still going)
//   steps.jsonl   per-step loss / accuracy / lr (train writes it after every epoch)
//   eval.json     the confusion matrix and per-class report (`resnet-native eval`)
// A missing piece is `missing`; one that cannot be read or is malformed is `error` with the
// reason, which the page shows; only a run folder that is not a folder fails.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import { ResNetError } from '../errors.js';
import { parseJsonText } from '../io/json_text.js';
import { readError, readRegularFile } from '../io/read_file.js';
import { isPlainObject } from '../validate.js';
import { readEvalFile, type EvalFile } from './eval_file.js';

export type Piece<T> = { state: 'ok'; value: T } | { state: 'missing' } | { state: 'error'; reason: string };

export interface EpochPoint {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  valTop5?: number;
  lr?: number;
}

export interface StepPoint {
  step: number;
  epoch: number;
  loss: number;
  accuracy: number;
  lr: number;
}

export interface RunFolder {
  dir: string;
  /** From history.json, else log.csv. */
  epochs: Piece<EpochPoint[]> & { source?: string };
  steps: Piece<StepPoint[]>;
  evaluation: Piece<EvalFile>;
}

const OP = 'report';
const MAX_HISTORY_BYTES = 64 << 20;
const MAX_STEPS_BYTES = 512 << 20;
/** Lines of steps.jsonl read (beyond this, the rest is left out and the page says so). */
export const MAX_STEP_LINES = 5_000_000;
const MAX_EPOCHS = 1_000_000;

/** A number, NaN for null (JSON's NaN), undefined for anything else. */
function numberOf(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  return v === null ? NaN : undefined;
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** Reads `file` in `dir` as text; undefined when it does not exist. */
async function readText(dir: string, file: string, maxBytes: number): Promise<string | undefined> {
  const path = join(dir, file);
  try {
    await stat(path);
  } catch (err) {
    if (isMissing(err)) return undefined;
  }
  return (await readRegularFile(path, { op: OP, maxBytes, what: `a ${file}` })).toString('utf8');
}

async function piece<T>(read: () => Promise<T | undefined>): Promise<Piece<T>> {
  try {
    const value = await read();
    return value === undefined ? { state: 'missing' } : { state: 'ok', value };
  } catch (err) {
    return { state: 'error', reason: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
}

/** history.json's entries (Trainer's EpochLog); E_FORMAT naming the entry that is not one. */
export function parseHistory(text: string, where: string): EpochPoint[] {
  const json = parseJsonText(text, where);
  if (!Array.isArray(json) || json.length > MAX_EPOCHS) throw new ResNetError('E_FORMAT', `${where} must be a list of epochs`);
  return json.map((e, i) => {
    if (!isPlainObject(e)) throw new ResNetError('E_FORMAT', `${where}: entry ${i} is not an object`);
    const epoch = e.epoch;
    const loss = numberOf(e.loss);
    const accuracy = numberOf(e.accuracy);
    if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || loss === undefined || accuracy === undefined) {
      throw new ResNetError('E_FORMAT', `${where}: entry ${i} needs an integer epoch, a loss and an accuracy`);
    }
    const point: EpochPoint = { epoch, loss, accuracy };
    for (const key of ['valLoss', 'valAccuracy', 'valTop5', 'lr'] as const) {
      const v = numberOf(e[key]);
      if (v !== undefined) point[key] = v;
    }
    return point;
  });
}

/** Keras' CSVLogger file (header: epoch, accuracy, loss, lr, val_accuracy, val_loss, … in any order). Epochs are numbered by row. */
export function parseKerasCsv(text: string, where: string): EpochPoint[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new ResNetError('E_FORMAT', `${where} is empty`);
  if (lines.length > MAX_EPOCHS) throw new ResNetError('E_FORMAT', `${where} has more than ${MAX_EPOCHS} rows`);
  const header = lines[0]!.split(',').map((h) => h.trim());
  const col = (name: string) => header.indexOf(name);
  const [loss, accuracy] = [col('loss'), col('accuracy') >= 0 ? col('accuracy') : col('acc')];
  if (loss < 0 || accuracy < 0) throw new ResNetError('E_FORMAT', `${where}: the header must name loss and accuracy columns`);
  const optional = { valLoss: col('val_loss'), valAccuracy: col('val_accuracy'), valTop5: col('val_top5'), lr: col('lr') };
  const value = (cells: string[], i: number) => (i >= 0 && i < cells.length && cells[i]!.trim() !== '' ? Number(cells[i]) : undefined);
  return lines.slice(1).map((line, row) => {
    const cells = line.split(',');
    const point: EpochPoint = { epoch: row + 1, loss: value(cells, loss) ?? NaN, accuracy: value(cells, accuracy) ?? NaN };
    for (const [key, i] of Object.entries(optional) as [keyof typeof optional, number][]) {
      const v = value(cells, i);
      if (v !== undefined) point[key] = v;
    }
    return point;
  });
}

/** steps.jsonl's lines (a torn or foreign line is skipped; at most MAX_STEP_LINES). */
export function parseSteps(text: string): StepPoint[] {
  const out: StepPoint[] = [];
  let start = 0;
  while (start < text.length && out.length < MAX_STEP_LINES) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      continue;
    }
    if (!isPlainObject(json)) continue;
    const [step, epoch, loss, accuracy, lr] = [json.step, json.epoch, numberOf(json.loss), numberOf(json.accuracy), numberOf(json.lr)];
    if (typeof step !== 'number' || !Number.isSafeInteger(step) || typeof epoch !== 'number' || !Number.isSafeInteger(epoch)) continue;
    if (loss === undefined || accuracy === undefined || lr === undefined) continue;
    out.push({ step, epoch, loss, accuracy, lr });
  }
  return out;
}

/** Reads every piece of the run folder `dir` (E_IO when `dir` is not a readable folder). */
export async function readRunFolder(dir: string): Promise<RunFolder> {
  let isDir: boolean;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch (err) {
    throw readError(OP, dir, err);
  }
  if (!isDir) throw new ResNetError('E_IO', `${OP}: ${dir} is not a folder (pass the run folder train wrote, e.g. runs/mnist-resnet20)`);

  let source: string | undefined;
  const epochs = await piece(async () => {
    const history = await readText(dir, 'history.json', MAX_HISTORY_BYTES);
    if (history !== undefined) {
      source = 'history.json';
      return parseHistory(history, `${OP}: ${join(dir, 'history.json')}`);
    }
    const csv = await readText(dir, 'log.csv', MAX_HISTORY_BYTES);
    if (csv === undefined) return undefined;
    source = 'log.csv';
    return parseKerasCsv(csv, `${OP}: ${join(dir, 'log.csv')}`);
  });
  const steps = await piece(async () => {
    const text = await readText(dir, 'steps.jsonl', MAX_STEPS_BYTES);
    return text === undefined ? undefined : parseSteps(text);
  });
  const evaluation = await piece(async () => {
    const path = join(dir, 'eval.json');
    try {
      await stat(path);
    } catch (err) {
      if (isMissing(err)) return undefined;
    }
    return readEvalFile(path, OP);
  });
  return { dir, epochs: source ? { ...epochs, source } : epochs, steps, evaluation };
}
