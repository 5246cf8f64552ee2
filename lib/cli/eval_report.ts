// What `resnet-native eval` adds to its accuracy line: the per-class precision / recall / F1
// table and the confusion matrix (printed), and eval.json in the run folder (the same numbers
// plus the most confidently misclassified examples with thumbnails) for `resnet-native report`.
import { dirname, join } from 'node:path';

import type { Dataset } from '../data/dataset.js';
import { atomicWrite } from '../io/atomic_write.js';
import { EVAL_FORMAT, type EvalFile } from '../report/eval_file.js';
import { datasetThumbnails } from '../report/thumbnails.js';
import { classificationReport, type ClassMetrics } from '../train/confusion.js';
import type { EvaluationResult } from '../train/evaluate.js';
import { say } from './output.js';

/** The confusion matrix is printed up to this many classes (beyond, it is in eval.json only). */
const MAX_PRINTED_MATRIX = 20;
const MAX_PRINTED_NAME = 24;

/** A class name fit for a terminal: no control characters (a folder name could hold escape sequences), at most 24 characters. */
export function printableName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > MAX_PRINTED_NAME ? `${clean.slice(0, MAX_PRINTED_NAME - 1)}…` : clean;
}

/** The class names for the table and eval.json: the checkpoint's, else the dataset's, else the class numbers. */
export function namesFor(classes: number, ...candidates: (readonly string[] | undefined)[]): string[] {
  const names = candidates.find((c) => c !== undefined && c.length === classes);
  return names ? [...names] : Array.from({ length: classes }, (_, i) => String(i));
}

/** scikit-learn's classification_report layout, with 4 decimals. */
export function formatClassTable(names: string[], perClass: ClassMetrics[], macro: ClassMetrics, weighted: ClassMetrics, accuracy: number): string[] {
  const shown = names.map(printableName);
  const w = Math.max(12, ...shown.map((s) => s.length));
  const row = (label: string, m: ClassMetrics) =>
    `${label.padStart(w)}  ${m.precision.toFixed(4).padStart(9)}  ${m.recall.toFixed(4).padStart(6)}  ${m.f1.toFixed(4).padStart(8)}  ${String(m.support).padStart(7)}`;
  return [
    `${''.padStart(w)}  precision  recall  f1-score  support`,
    ...perClass.map((m, c) => row(shown[c]!, m)),
    `${'accuracy'.padStart(w)}  ${''.padStart(9)}  ${''.padStart(6)}  ${accuracy.toFixed(4).padStart(8)}  ${String(macro.support).padStart(7)}`,
    row('macro avg', macro),
    row('weighted avg', weighted),
  ];
}

/** The matrix with class numbers as column heads and "number name" as row heads. */
export function formatConfusionMatrix(names: string[], matrix: number[][]): string[] {
  const n = matrix.length;
  const cell = Math.max(3, ...matrix.flat().map((v) => String(v).length), String(n - 1).length);
  const heads = names.map((name, i) => (name === String(i) ? name : `${i} ${printableName(name)}`));
  const corner = 'true \\ predicted';
  const w = Math.max(corner.length, ...heads.map((h) => h.length));
  return [
    `${corner.padEnd(w)}  ${matrix.map((_, p) => String(p).padStart(cell)).join(' ')}`,
    ...matrix.map((row, t) => `${heads[t]!.padEnd(w)}  ${row.map((v) => String(v).padStart(cell)).join(' ')}`),
  ];
}

/** Prints the class table (and, for up to 20 classes, the matrix). */
export function printClassReport(r: EvaluationResult, names: string[]): void {
  const matrix = r.confusionMatrix!;
  const rep = classificationReport(matrix);
  say();
  for (const line of formatClassTable(names, rep.perClass, rep.macroAvg, rep.weightedAvg, rep.accuracy)) say(line);
  if (matrix.length <= MAX_PRINTED_MATRIX) {
    say();
    say('confusion matrix (rows: true class, columns: predicted class):');
    for (const line of formatConfusionMatrix(names, matrix)) say(line);
  }
  say();
}

export interface EvalRunInfo {
  checkpoint: string;
  dataset: string;
  split: string;
}

/** eval.json's content: the result, its class report, and thumbnails of the misclassified examples drawn from `ds`. */
export async function evalFileContent(r: EvaluationResult, names: string[], ds: Dataset, info: EvalRunInfo): Promise<EvalFile> {
  const matrix = r.confusionMatrix!;
  const rep = classificationReport(matrix);
  const mistakes = r.misclassified ?? [];
  const pictures = await datasetThumbnails(
    ds,
    mistakes.map((m) => m.index),
    'eval',
  );
  return {
    format: EVAL_FORMAT,
    version: 1,
    checkpoint: info.checkpoint,
    dataset: info.dataset,
    split: info.split,
    count: r.count,
    loss: r.loss,
    accuracy: r.accuracy,
    ...(r.top5 !== undefined ? { top5: r.top5 } : {}),
    classNames: names,
    confusionMatrix: matrix,
    perClass: rep.perClass,
    macroAvg: rep.macroAvg,
    weightedAvg: rep.weightedAvg,
    misclassified: mistakes.map((m, i) => ({ ...m, thumbnail: pictures[i]! })),
  };
}

/** Where eval.json goes by default: beside the checkpoint (the run folder train wrote it into). */
export function defaultEvalPath(checkpoint: string): string {
  return join(dirname(checkpoint), 'eval.json');
}

export async function writeEvalFile(path: string, content: EvalFile): Promise<void> {
  const text = `${JSON.stringify(content)}\n`;
  await atomicWrite(path, 'eval', async (fh) => {
    await fh.writeFile(text, 'utf8');
  });
}
