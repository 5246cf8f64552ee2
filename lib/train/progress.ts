// Training progress output. On a terminal: one live line per epoch, redrawn in place with
// '\r' at most ~10 times a second (epoch, step/steps, loss, accuracy, img/s, ETA) and
// replaced by the epoch's summary when it ends. Elsewhere (a log file, CI): one line per
// epoch plus a progress line every `logIntervalMs` (30 s by default) in long epochs.
import type { EpochLog } from './callbacks.js';

export type ProgressMode = 'auto' | 'bar' | 'log' | 'none';

/** What Progress writes to: process.stderr by default (anything with write(), isTTY, columns). */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** 'auto' (default): 'bar' when the stream is a TTY, else 'log'. */
  mode?: ProgressMode;
  stream?: ProgressStream;
  /** Minimum time between redraws of the live line. Default 100 ms. */
  redrawMs?: number;
  /** Minimum time between progress lines within an epoch in 'log' mode. Default 30 000 ms. */
  logIntervalMs?: number;
}

/** Seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

function fmt(v: number | undefined, digits = 4): string {
  return v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits);
}

/** Learning rates in a compact form (0.1, 0.0125, 3.2e-5). */
function fmtLr(lr: number): string {
  if (lr === 0) return '0';
  return lr >= 1e-3 ? String(Number(lr.toPrecision(4))) : lr.toExponential(2);
}

/** "epoch 2/4  loss 0.1234  acc 0.9612  val_loss …  lr 0.05  812.3 img/s  12.3s" */
export function formatEpochLine(log: EpochLog, epochs: number): string {
  const parts = [`epoch ${log.epoch}/${epochs}`, `loss ${fmt(log.loss)}`, `acc ${fmt(log.accuracy)}`];
  if (log.top5 !== undefined) parts.push(`top5 ${fmt(log.top5)}`);
  if (log.valLoss !== undefined) parts.push(`val_loss ${fmt(log.valLoss)}`);
  if (log.valAccuracy !== undefined) parts.push(`val_acc ${fmt(log.valAccuracy)}`);
  if (log.valTop5 !== undefined) parts.push(`val_top5 ${fmt(log.valTop5)}`);
  parts.push(`lr ${fmtLr(log.lr)}`, `${log.imagesPerSecond.toFixed(1)} img/s`, `${log.seconds.toFixed(1)}s`);
  return parts.join('  ');
}

export class Progress {
  readonly mode: Exclude<ProgressMode, 'auto'>;
  readonly #stream: ProgressStream;
  readonly #redrawMs: number;
  readonly #logIntervalMs: number;
  #epochs = 0;
  #steps = 0;
  #epoch = 0;
  #epochStart = 0;
  #lastDraw = -Infinity;
  #lastLog = 0;
  #lineOpen = false;

  constructor(options: ProgressOptions = {}) {
    this.#stream = options.stream ?? process.stderr;
    const mode = options.mode ?? 'auto';
    this.mode = mode === 'auto' ? (this.#stream.isTTY ? 'bar' : 'log') : mode;
    this.#redrawMs = options.redrawMs ?? 100;
    this.#logIntervalMs = options.logIntervalMs ?? 30_000;
  }

  trainBegin(epochs: number, stepsPerEpoch: number): void {
    this.#epochs = epochs;
    this.#steps = stepsPerEpoch;
  }

  epochBegin(epoch: number): void {
    this.#epoch = epoch;
    this.#epochStart = performance.now();
    this.#lastDraw = -Infinity;
    this.#lastLog = this.#epochStart;
  }

  /** After `step` of the epoch's steps (1-based), with the epoch's running means so far. */
  batch(step: number, loss: number, accuracy: number, images: number): void {
    if (this.mode === 'none') return;
    const now = performance.now();
    const last = step === this.#steps;
    if (this.mode === 'bar') {
      if (!last && now - this.#lastDraw < this.#redrawMs) return;
      this.#lastDraw = now;
      this.#draw(this.#barLine(step, loss, accuracy, images, now));
    } else if (now - this.#lastLog >= this.#logIntervalMs && !last) {
      this.#lastLog = now;
      this.#stream.write(`${this.#statusLine(step, loss, accuracy, images, now)}\n`);
    }
  }

  /** Shown while validation runs after the epoch's last step. */
  validating(): void {
    if (this.mode === 'bar') this.#draw(`epoch ${this.#epoch}/${this.#epochs}  validating…`);
  }

  epochEnd(log: EpochLog): void {
    if (this.mode === 'none') return;
    this.#clearLine();
    this.#stream.write(`${formatEpochLine(log, this.#epochs)}\n`);
  }

  /** A line that does not break the live bar (it is redrawn at the next batch). */
  message(text: string): void {
    if (this.mode === 'none') return;
    this.#clearLine();
    this.#stream.write(`${text}\n`);
    this.#lastDraw = -Infinity;
  }

  trainEnd(): void {
    this.#clearLine();
  }

  /** The status fields, in the order printed; ETA last. */
  #status(step: number, loss: number, accuracy: number, images: number, now: number) {
    const elapsed = (now - this.#epochStart) / 1000;
    const rate = elapsed > 0 ? images / elapsed : 0;
    const eta = step > 0 ? (elapsed / step) * (this.#steps - step) : NaN;
    return {
      epoch: `epoch ${this.#epoch}/${this.#epochs}`,
      step: `${String(step).padStart(String(this.#steps).length)}/${this.#steps}`,
      loss: `loss ${fmt(loss)}`,
      acc: `acc ${fmt(accuracy)}`,
      rate: `${rate.toFixed(1)} img/s`,
      eta: `ETA ${formatDuration(eta)}`,
    };
  }

  #statusLine(step: number, loss: number, accuracy: number, images: number, now: number): string {
    const f = this.#status(step, loss, accuracy, images, now);
    return `${f.epoch}  ${f.step}  ${f.loss}  ${f.acc}  ${f.rate}  ${f.eta}`;
  }

  /**
   * The live line within the terminal's width (one column is left free so it never wraps): the
   * bar goes first, then img/s, accuracy and loss, so that the step count and the ETA stay.
   */
  #barLine(step: number, loss: number, accuracy: number, images: number, now: number): string {
    const f = this.#status(step, loss, accuracy, images, now);
    const columns = this.#stream.columns ?? 100;
    const rest = `  ${f.step}  ${f.loss}  ${f.acc}  ${f.rate}  ${f.eta}`;
    const width = Math.min(30, columns - 1 - (f.epoch.length + 3 + rest.length));
    if (width >= 10) {
      const done = this.#steps > 0 ? Math.floor((width * step) / this.#steps) : width;
      const bar = '='.repeat(Math.max(0, done - 1)) + (done >= width ? '=' : done > 0 ? '>' : '') + ' '.repeat(width - done);
      return `${f.epoch} [${bar}]${rest}`;
    }
    const optional = [f.loss, f.acc, f.rate];
    for (;;) {
      const line = [f.epoch, f.step, ...optional, f.eta].join('  ');
      if (line.length <= columns - 1) return line;
      if (optional.length === 0) break;
      optional.pop();
    }
    const short = `${f.step}  ${f.eta}`;
    return short.length <= columns - 1 ? short : short.slice(-Math.max(0, columns - 1));
  }

  #draw(line: string): void {
    this.#stream.write(`\r${line}\x1b[K`);
    this.#lineOpen = true;
  }

  #clearLine(): void {
    if (this.#lineOpen) {
      this.#stream.write('\r\x1b[K');
      this.#lineOpen = false;
    }
  }
}
