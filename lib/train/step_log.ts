// steps.jsonl: one JSON line per optimizer step (step, epoch, loss, accuracy, lr), the per-step
// curves of `resnet-native report` (history.json holds epochs only). Lines are kept in memory
// during an epoch and appended when it ends, beside the checkpoint of that epoch, so the file
// and the checkpoint agree; a resumed run first drops the lines after the checkpoint's step
// (those of an epoch that was interrupted).
import { appendFile, readFile, writeFile } from 'node:fs/promises';

import { ResNetError } from '../errors.js';
import type { BatchLog, Callback } from './callbacks.js';

export const STEP_LOG_FILE = 'steps.jsonl';

/** The largest steps.jsonl a resumed run rereads to trim (some 10 M steps). */
const MAX_STEP_LOG_BYTES = 1 << 30;

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  accuracy: number;
  lr: number;
}

/** The lines of `text` whose step is at most `lastStep` (the rest, and anything unreadable, dropped). */
export function stepLinesUpTo(text: string, lastStep: number): string {
  const kept: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const step = (JSON.parse(line) as { step?: unknown }).step;
      if (typeof step === 'number' && step <= lastStep) kept.push(line);
    } catch {
      // a torn last line: dropped
    }
  }
  return kept.length > 0 ? `${kept.join('\n')}\n` : '';
}

/** A callback writing `path` (one line per step); the CLI's train passes <out>/steps.jsonl. */
export function stepLog(path: string): Callback {
  let pending: string[] = [];
  const fail = (err: unknown): never => {
    throw new ResNetError('E_IO', `stepLog: could not write '${path}': ${(err as Error).message}`);
  };
  return {
    async onTrainBegin(ctx) {
      pending = [];
      let kept = '';
      if (ctx.step > 0) {
        try {
          const text = await readFile(path, 'utf8');
          if (text.length <= MAX_STEP_LOG_BYTES) kept = stepLinesUpTo(text, ctx.step);
        } catch {
          // no earlier log: the curve starts at the resumed step
        }
      }
      await writeFile(path, kept).catch(fail);
    },
    onBatchEnd(b: BatchLog) {
      const record: StepRecord = { step: b.globalStep, epoch: b.epoch, loss: b.loss, accuracy: b.accuracy, lr: b.lr };
      pending.push(JSON.stringify(record));
    },
    async onEpochEnd() {
      if (pending.length === 0) return;
      const text = `${pending.join('\n')}\n`;
      pending = [];
      await appendFile(path, text).catch(fail);
    },
  };
}
