// eval.json: what `resnet-native eval` writes into the run folder (loss, accuracy, the
// confusion matrix, per-class precision / recall / F1 and the most confidently misclassified
// examples with thumbnails), and its reader for `report`. The reader trusts nothing: every
// field is checked for type and size, class names stay plain strings (the page escapes them),
// and a thumbnail must be base64 of a PNG before it may become a data: URI.
import { ResNetError } from '../errors.js';
import { parseJsonText } from '../io/json_text.js';
import { readRegularFile } from '../io/read_file.js';
import type { ClassMetrics } from '../train/confusion.js';
import { isPlainObject } from '../validate.js';

export const EVAL_FORMAT = 'resnet-native-eval';
/** The largest eval.json read (100 classes and 64 thumbnails take well under 1 MB). */
export const MAX_EVAL_BYTES = 64 << 20;
/** The most classes a report draws (a 4096² matrix is already 16 M cells). */
export const MAX_CLASSES = 4096;
const MAX_THUMBNAIL_CHARS = 1 << 20;
const MAX_MISCLASSIFIED = 10_000;
const MAX_NAME_CHARS = 1000;

export interface EvalMistake {
  /** The example's index in the evaluated dataset (after --limit). */
  index: number;
  label: number;
  predicted: number;
  /** The softmax probability of the (wrong) predicted class. */
  probability: number;
  /** A PNG picture of the example, base64. */
  thumbnail?: string;
}

export interface EvalFile {
  format: typeof EVAL_FORMAT;
  version: 1;
  checkpoint: string;
  dataset: string;
  split: string;
  count: number;
  loss: number;
  accuracy: number;
  top5?: number;
  /** One per class (the checkpoint's or dataset's names, else the class numbers). */
  classNames: string[];
  /** Rows: true class; columns: predicted class. */
  confusionMatrix: number[][];
  perClass: ClassMetrics[];
  macroAvg: ClassMetrics;
  weightedAvg: ClassMetrics;
  misclassified: EvalMistake[];
}

function bad(where: string, what: string): never {
  throw new ResNetError('E_FORMAT', `${where}: ${what}`);
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isRatio = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 1;
/** A number, or null: what JSON.stringify wrote for NaN (a diverged model's loss). */
const isNumberOrNull = (v: unknown): v is number | null => typeof v === 'number' || v === null;
const orNaN = (v: number | null): number => (v === null ? NaN : v);

function metrics(v: unknown, where: string, name: string): ClassMetrics {
  if (!isPlainObject(v)) bad(where, `${name} must be an object`);
  const { precision, recall, f1, support } = v;
  if (!isRatio(precision) || !isRatio(recall) || !isRatio(f1) || !isCount(support)) {
    bad(where, `${name} must hold precision, recall and f1 in [0, 1] and a support count`);
  }
  return { precision, recall, f1, support };
}

/** `thumbnail` when it is base64 of a PNG of bounded size; undefined otherwise (the page then shows no picture). */
export function checkedThumbnail(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_THUMBNAIL_CHARS || v.length % 4 !== 0) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(v)) return undefined;
  // The 8-byte PNG signature is the first 12 base64 characters' "iVBORw0KGgo".
  return v.startsWith('iVBORw0KGgo') ? v : undefined;
}

/** Checks a parsed eval.json; E_FORMAT naming `where` and the field otherwise. */
export function checkEvalFile(json: unknown, where: string): EvalFile {
  if (!isPlainObject(json) || json.format !== EVAL_FORMAT) bad(where, `is not a ${EVAL_FORMAT} file (its "format" field)`);
  if (json.version !== 1) bad(where, `version ${JSON.stringify(json.version)} is not supported (1 is)`);
  const { classNames, confusionMatrix: matrix } = json;
  if (!Array.isArray(classNames) || classNames.length < 1 || classNames.length > MAX_CLASSES)
    bad(where, `classNames must list 1 to ${MAX_CLASSES} classes`);
  const n = classNames.length;
  if (!classNames.every((s) => typeof s === 'string' && s.length <= MAX_NAME_CHARS))
    bad(where, `classNames must be strings of at most ${MAX_NAME_CHARS} characters`);
  if (!Array.isArray(matrix) || matrix.length !== n) bad(where, `confusionMatrix must have ${n} rows (one per class)`);
  for (const [t, row] of matrix.entries()) {
    if (!Array.isArray(row) || row.length !== n || !row.every(isCount)) bad(where, `confusionMatrix row ${t} must hold ${n} counts`);
  }
  const count = json.count;
  if (!isCount(count)) bad(where, 'count must be a count');
  const total = (matrix as number[][]).reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  if (total !== count) bad(where, `the confusionMatrix counts ${total} examples, not count (${count})`);
  if (!Array.isArray(json.perClass) || json.perClass.length !== n) bad(where, `perClass must have ${n} entries`);
  const perClass = json.perClass.map((m, c) => metrics(m, where, `perClass[${c}]`));
  for (const key of ['loss', 'accuracy'] as const) if (!isNumberOrNull(json[key])) bad(where, `${key} must be a number`);
  if (json.top5 !== undefined && !isNumberOrNull(json.top5)) bad(where, 'top5 must be a number');
  if (!Array.isArray(json.misclassified) || json.misclassified.length > MAX_MISCLASSIFIED)
    bad(where, `misclassified must be a list of at most ${MAX_MISCLASSIFIED}`);
  const misclassified = json.misclassified.map((m, i): EvalMistake => {
    if (!isPlainObject(m)) bad(where, `misclassified[${i}] must be an object`);
    const { index, label, predicted, probability } = m;
    if (!isCount(index) || !isCount(label) || label >= n || !isCount(predicted) || predicted >= n || !isNumberOrNull(probability)) {
      bad(where, `misclassified[${i}] must hold an index, a label and a predicted class in [0, ${n}) and a probability`);
    }
    const thumbnail = checkedThumbnail(m.thumbnail);
    return { index, label, predicted, probability: orNaN(probability), ...(thumbnail ? { thumbnail } : {}) };
  });
  const text = (v: unknown) => (typeof v === 'string' ? v.slice(0, MAX_NAME_CHARS) : '');
  return {
    format: EVAL_FORMAT,
    version: 1,
    checkpoint: text(json.checkpoint),
    dataset: text(json.dataset),
    split: text(json.split),
    count,
    loss: orNaN(json.loss as number | null),
    accuracy: orNaN(json.accuracy as number | null),
    ...(json.top5 !== undefined ? { top5: orNaN(json.top5 as number | null) } : {}),
    classNames: classNames as string[],
    confusionMatrix: matrix as number[][],
    perClass,
    macroAvg: metrics(json.macroAvg, where, 'macroAvg'),
    weightedAvg: metrics(json.weightedAvg, where, 'weightedAvg'),
    misclassified,
  };
}

/** Reads and checks an eval.json file. */
export async function readEvalFile(path: string, op: string): Promise<EvalFile> {
  const text = (await readRegularFile(path, { op, maxBytes: MAX_EVAL_BYTES, what: 'an eval.json' })).toString('utf8');
  return checkEvalFile(parseJsonText(text, `${op}: ${path}`), `${op}: ${path}`);
}
