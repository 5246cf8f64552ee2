/**
 * Learning-rate schedules: pure functions of the step index (plus one stateful scheduler,
 * {@link ReduceLROnPlateau}, that reacts to a metric). Each follows the PyTorch scheduler of
 * the same idea (`torch.optim.lr_scheduler`), so numbers from a PyTorch recipe carry over.
 *
 * PyTorch schedulers mutate an optimizer and count calls to `scheduler.step()`; here a
 * schedule is a closed-form function `at(step)`, so a training loop asks for the lr of the
 * step it is about to take:
 *
 * ```ts
 * const sched = oneCycle({ maxLr: 0.1, totalSteps: epochs * batchesPerEpoch });
 * for (let step = 0; step < totalSteps; step++) optimizer.step(grads, { lr: sched.at(step) });
 * ```
 *
 * `at(0)` is the lr PyTorch sets when the scheduler is constructed (used by the first
 * optimizer step), `at(k)` the lr after `k` calls of `scheduler.step()`.
 *
 * Past the end of a schedule with an end (`cosine`, `oneCycle`: `step >= totalSteps`) `at`
 * returns the schedule's final value; the others have no end.
 *
 * Every factory and constructor validates its options and throws
 * `ResNetError('E_ARG', …)` naming the offending option; `at` throws the same for a step
 * that is negative, NaN or infinite.
 *
 * @module
 */
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';
import type { MonitorName } from './callbacks.js';

/** A learning-rate schedule: a pure function of the step index. */
export interface LrSchedule {
  /**
   * The lr for optimizer step `step` (0-based). `step` must be a finite number ≥ 0;
   * fractional values are accepted (e.g. fractional epochs) and follow the same formula.
   */
  at(step: number): number;
}

// ---------------------------------------------------------------------------------------
// validation helpers

function fail(where: string, message: string): never {
  throw new ResNetError('E_ARG', `${where}: ${message}`);
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  return String(v);
}

// The generic checks are validate.ts's, `(value, op, name, ...range)`; these name the
// ranges schedules use.

/** A finite number ≥ 0 (a learning rate, a threshold, …). */
function nonNegative(v: unknown, where: string, name: string): number {
  return validate.number(v, where, name, 0, Infinity);
}

/** A finite number > 0. */
function positive(v: unknown, where: string, name: string): number {
  return validate.number(v, where, name, 0, Infinity, 'min');
}

/** An integer ≥ `min` (step counts: up to 2^53 - 1). */
function integer(v: unknown, where: string, name: string, min: number): number {
  return validate.integer(v, where, name, min, Number.MAX_SAFE_INTEGER);
}

/** Any object (unlike validate.options, undefined is refused: every schedule has a required option). */
function options(opts: unknown, where: string): Record<string, unknown> {
  if (typeof opts !== 'object' || opts === null) validate.invalid(opts, where, 'options', 'an object');
  return opts as Record<string, unknown>;
}

function checkStep(step: unknown, where: string): number {
  return nonNegative(step, where, 'step');
}

// ---------------------------------------------------------------------------------------
// constant

/**
 * The same lr at every step (PyTorch: no scheduler at all).
 *
 * @param lr finite, ≥ 0.
 */
export function constant(lr: number): LrSchedule {
  const where = 'constant';
  const value = nonNegative(lr, where, 'lr');
  return {
    at(step: number): number {
      checkStep(step, where);
      return value;
    },
  };
}

// ---------------------------------------------------------------------------------------
// StepLR

/** Options of {@link stepDecay}. */
export interface StepDecayOptions {
  /** Initial lr (finite, ≥ 0). */
  lr: number;
  /** Decay every `stepSize` units of `step` (an integer ≥ 1). */
  stepSize: number;
  /** Multiplicative decay per period (finite, > 0). Default 0.1. */
  gamma?: number;
}

/**
 * Step decay, as PyTorch's `StepLR`: `lr * gamma ** floor(step / stepSize)`.
 *
 * `step` is whatever unit the caller counts: pass the epoch index to decay every
 * `stepSize` epochs (the usual PyTorch use, `scheduler.step()` once per epoch), or the
 * optimizer-step index to decay every `stepSize` iterations.
 */
export function stepDecay(opts: StepDecayOptions): LrSchedule {
  const where = 'stepDecay';
  const o = options(opts, where);
  const lr = nonNegative(o.lr, where, 'lr');
  const stepSize = integer(o.stepSize, where, 'stepSize', 1);
  const gamma = positive(o.gamma ?? 0.1, where, 'gamma');
  return {
    at(step: number): number {
      checkStep(step, where);
      return lr * gamma ** Math.floor(step / stepSize);
    },
  };
}

// ---------------------------------------------------------------------------------------
// MultiStepLR

/** Options of {@link multiStep}. */
export interface MultiStepOptions {
  /** Initial lr (finite, ≥ 0). */
  lr: number;
  /**
   * Steps (or epochs: the caller's unit, as for {@link stepDecay}) at which the lr is
   * multiplied by `gamma`: integers ≥ 0 in non-decreasing order. A milestone listed twice
   * applies `gamma` twice, as in PyTorch (which counts milestones with a `Counter`).
   */
  milestones: readonly number[];
  /** Multiplicative decay per milestone (finite, > 0). Default 0.1. */
  gamma?: number;
}

/**
 * Decay at fixed milestones, as PyTorch's `MultiStepLR`:
 * `lr * gamma ** (number of milestones <= step)`, so the new lr applies from the milestone
 * step itself on.
 */
export function multiStep(opts: MultiStepOptions): LrSchedule {
  const where = 'multiStep';
  const o = options(opts, where);
  const lr = nonNegative(o.lr, where, 'lr');
  const raw = o.milestones;
  if (!Array.isArray(raw)) validate.invalid(raw, where, 'milestones', 'an array of integers');
  const milestones: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const m = integer(raw[i], where, `milestones[${i}]`, 0);
    if (i > 0 && m < milestones[i - 1]!) {
      fail(where, `milestones must be sorted in non-decreasing order, got ${show(raw)}`);
    }
    milestones.push(m);
  }
  const gamma = positive(o.gamma ?? 0.1, where, 'gamma');
  return {
    at(step: number): number {
      checkStep(step, where);
      // bisect_right: how many milestones are <= step.
      let lo = 0;
      let hi = milestones.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (milestones[mid]! <= step) lo = mid + 1;
        else hi = mid;
      }
      return lr * gamma ** lo;
    },
  };
}

// ---------------------------------------------------------------------------------------
// cosine with linear warmup

/** Options of {@link cosine}. */
export interface CosineOptions {
  /** Peak lr, reached at the end of warmup (finite, ≥ 0). */
  lr: number;
  /** Length of the whole schedule, warmup included (an integer ≥ 1). */
  totalSteps: number;
  /** Linear-warmup length (an integer, 0 ≤ warmupSteps < totalSteps). Default 0. */
  warmupSteps?: number;
  /**
   * lr at step 0 when warming up (finite, ≥ 0). Default `lr / warmupSteps`, so the first step
   * already learns (PyTorch's LinearLR idea of a `start_factor` above 0; 0 would waste a step).
   */
  warmupStartLr?: number;
  /** Floor reached at `totalSteps` and held after it (finite, 0 ≤ minLr ≤ lr). Default 0. */
  minLr?: number;
}

/**
 * Linear warmup then cosine annealing.
 *
 * - `step < warmupSteps`: `warmupStartLr + (lr - warmupStartLr) * step / warmupSteps`;
 * - `warmupSteps <= step <= totalSteps`, with `t = step - warmupSteps`,
 *   `T = totalSteps - warmupSteps`: `minLr + (lr - minLr) * (1 + cos(pi * t / T)) / 2`;
 * - `step > totalSteps`: `minLr`.
 *
 * Without warmup this is PyTorch's `CosineAnnealingLR(T_max=totalSteps, eta_min=minLr)`
 * over its first half-period (PyTorch keeps oscillating past `T_max`; this holds
 * `minLr`). With warmup it matches the common `SequentialLR([LinearLR, CosineAnnealingLR])`
 * recipe with `LinearLR(start_factor=warmupStartLr/lr, total_iters=warmupSteps)` and
 * `T_max = totalSteps - warmupSteps`. `minLr` is reached at `step = totalSteps`, so over
 * steps `0 .. totalSteps-1` the last optimizer step uses a value just above it.
 */
export function cosine(opts: CosineOptions): LrSchedule {
  const where = 'cosine';
  const o = options(opts, where);
  const lr = nonNegative(o.lr, where, 'lr');
  const totalSteps = integer(o.totalSteps, where, 'totalSteps', 1);
  const warmupSteps = integer(o.warmupSteps ?? 0, where, 'warmupSteps', 0);
  if (warmupSteps >= totalSteps) {
    fail(where, `warmupSteps must be < totalSteps, got warmupSteps=${warmupSteps}, totalSteps=${totalSteps}`);
  }
  const warmupStartLr = nonNegative(o.warmupStartLr ?? (warmupSteps > 0 ? lr / warmupSteps : 0), where, 'warmupStartLr');
  const minLr = nonNegative(o.minLr ?? 0, where, 'minLr');
  if (minLr > lr) fail(where, `minLr must be <= lr, got minLr=${minLr}, lr=${lr}`);
  const decaySteps = totalSteps - warmupSteps;
  return {
    at(step: number): number {
      checkStep(step, where);
      if (step < warmupSteps) return warmupStartLr + ((lr - warmupStartLr) * step) / warmupSteps;
      if (step >= totalSteps) return minLr;
      const t = step - warmupSteps;
      return minLr + ((lr - minLr) * (1 + Math.cos((Math.PI * t) / decaySteps))) / 2;
    },
  };
}

// ---------------------------------------------------------------------------------------
// OneCycleLR

/** Options of {@link oneCycle}. Names and defaults follow PyTorch's `OneCycleLR`. */
export interface OneCycleOptions {
  /** Peak lr (finite, > 0). */
  maxLr: number;
  /** Number of optimizer steps in the cycle (an integer ≥ 1). */
  totalSteps: number;
  /** Fraction of the cycle spent increasing the lr (0 ≤ pctStart ≤ 1). Default 0.3. */
  pctStart?: number;
  /** Initial lr is `maxLr / divFactor` (finite, > 0). Default 25. */
  divFactor?: number;
  /** Final lr is `initialLr / finalDivFactor` (finite, > 0). Default 1e4. */
  finalDivFactor?: number;
  /** How each phase interpolates. Default 'cos'. */
  annealStrategy?: 'cos' | 'linear';
  /**
   * `true`: up to `maxLr`, back down to `initialLr` symmetrically, then down to the
   * final lr (the paper's schedule). `false`: up, then straight down to the final lr
   * (fastai's two-phase variant, PyTorch's default). Default false.
   */
  threePhase?: boolean;
  /** Momentum (or Adam's beta1) at the lr peak (finite, ≥ 0). Default 0.85. */
  baseMomentum?: number;
  /** Momentum at the start and end of the cycle (finite, ≥ baseMomentum). Default 0.95. */
  maxMomentum?: number;
}

/** A one-cycle schedule: the lr plus the momentum PyTorch cycles alongside it. */
export interface OneCycleSchedule extends LrSchedule {
  /**
   * The lr for optimizer step `step`. From `totalSteps - 1` on it is the final lr, `minLr`:
   * past the end every schedule here holds its final value (PyTorch raises past
   * `total_steps` instead).
   */
  at(step: number): number;
  /**
   * The momentum (SGD momentum or Adam beta1) for step `step`, as PyTorch's
   * `OneCycleLR(cycle_momentum=True)` sets it: cycled inversely to the lr, from
   * `maxMomentum` down to `baseMomentum` at the lr peak and back; past the end, the final momentum.
   */
  momentumAt(step: number): number;
  /** `maxLr / divFactor`: the lr at step 0. */
  readonly initialLr: number;
  /** The peak lr. */
  readonly maxLr: number;
  /** `initialLr / finalDivFactor`: the lr at the last step. */
  readonly minLr: number;
  /** The cycle length. */
  readonly totalSteps: number;
}

interface Phase {
  endStep: number;
  startLr: number;
  endLr: number;
  startMomentum: number;
  endMomentum: number;
}

/**
 * The 1cycle policy, with exactly PyTorch's `OneCycleLR` formula.
 *
 * With `initialLr = maxLr / divFactor`, `minLr = initialLr / finalDivFactor` and
 * `p = pctStart * totalSteps`, the phases end at (inclusive, possibly fractional) steps:
 *
 * - two-phase: `p - 1` (initialLr → maxLr), `totalSteps - 1` (maxLr → minLr);
 * - three-phase: `p - 1` (initialLr → maxLr), `2p - 2` (maxLr → initialLr),
 *   `totalSteps - 1` (initialLr → minLr).
 *
 * A step belongs to the first phase whose end it does not pass (the last phase takes
 * everything after). Within a phase running from `start` (the previous phase's end, or 0)
 * to `end`, `pct = (step - start) / (end - start)` and the value is
 * `cos`: `to + (from - to) / 2 * (cos(pi * pct) + 1)`, or `linear`: `from + (to - from) * pct`.
 * Momentum runs maxMomentum → baseMomentum → maxMomentum over the same phases (held at
 * maxMomentum in the third).
 *
 * `pctStart * totalSteps === 1` is rejected: the first phase then has zero length and
 * PyTorch divides by zero at step 0.
 */
export function oneCycle(opts: OneCycleOptions): OneCycleSchedule {
  const where = 'oneCycle';
  const o = options(opts, where);
  const maxLr = positive(o.maxLr, where, 'maxLr');
  const totalSteps = integer(o.totalSteps, where, 'totalSteps', 1);
  const pctStart = validate.number(o.pctStart ?? 0.3, where, 'pctStart', 0, 1);
  const divFactor = positive(o.divFactor ?? 25, where, 'divFactor');
  const finalDivFactor = positive(o.finalDivFactor ?? 1e4, where, 'finalDivFactor');
  const anneal = validate.oneOf(o.annealStrategy ?? 'cos', where, 'annealStrategy', ['cos', 'linear'] as const);
  const threePhase = validate.boolean(o.threePhase ?? false, where, 'threePhase');
  const baseMomentum = nonNegative(o.baseMomentum ?? 0.85, where, 'baseMomentum');
  const maxMomentum = nonNegative(o.maxMomentum ?? 0.95, where, 'maxMomentum');
  if (baseMomentum > maxMomentum) {
    fail(where, `baseMomentum must be <= maxMomentum, got baseMomentum=${baseMomentum}, maxMomentum=${maxMomentum}`);
  }
  const p = pctStart * totalSteps;
  if (p - 1 === 0) {
    fail(
      where,
      `pctStart * totalSteps must not equal 1 (the warmup phase would have zero length), ` + `got pctStart=${pctStart}, totalSteps=${totalSteps}`,
    );
  }

  const initialLr = maxLr / divFactor;
  const minLr = initialLr / finalDivFactor;
  const phases: Phase[] = threePhase
    ? [
        { endStep: p - 1, startLr: initialLr, endLr: maxLr, startMomentum: maxMomentum, endMomentum: baseMomentum },
        { endStep: 2 * p - 2, startLr: maxLr, endLr: initialLr, startMomentum: baseMomentum, endMomentum: maxMomentum },
        { endStep: totalSteps - 1, startLr: initialLr, endLr: minLr, startMomentum: maxMomentum, endMomentum: maxMomentum },
      ]
    : [
        { endStep: p - 1, startLr: initialLr, endLr: maxLr, startMomentum: maxMomentum, endMomentum: baseMomentum },
        { endStep: totalSteps - 1, startLr: maxLr, endLr: minLr, startMomentum: baseMomentum, endMomentum: maxMomentum },
      ];

  const interp =
    anneal === 'cos'
      ? (from: number, to: number, pct: number) => to + ((from - to) / 2) * (Math.cos(Math.PI * pct) + 1)
      : (from: number, to: number, pct: number) => (to - from) * pct + from;

  /** The phase holding `step` and how far into it `step` is. */
  function locate(step: number): { phase: Phase; pct: number } {
    checkStep(step, where);
    step = Math.min(step, totalSteps - 1); // past the end: the final value (see at)
    let start = 0;
    for (let i = 0; i < phases.length; i++) {
      const phase = phases[i]!;
      if (step <= phase.endStep || i === phases.length - 1) {
        // end > start here for every step in [0, totalSteps) once p !== 1 (see above).
        return { phase, pct: (step - start) / (phase.endStep - start) };
      }
      start = phase.endStep;
    }
    throw new ResNetError('E_INTERNAL', `${where}: no phase for step ${step}`);
  }

  return {
    at(step: number): number {
      const { phase, pct } = locate(step);
      return interp(phase.startLr, phase.endLr, pct);
    },
    momentumAt(step: number): number {
      const { phase, pct } = locate(step);
      return interp(phase.startMomentum, phase.endMomentum, pct);
    },
    initialLr,
    maxLr,
    minLr,
    totalSteps,
  };
}

// ---------------------------------------------------------------------------------------
// ReduceLROnPlateau

/** Options of {@link ReduceLROnPlateau}. Names and defaults follow PyTorch. */
export interface ReduceLROnPlateauOptions {
  /** Starting lr (finite, ≥ 0). */
  lr: number;
  /**
   * As Trainer.fit's `schedule`: the epoch-log metric stepped on after every epoch. Default
   * 'valLoss' (Keras' default monitor). Calling step() yourself, it is not used.
   */
  monitor?: MonitorName;
  /**
   * 'min': the metric should fall (a loss); 'max': it should rise (an accuracy). Default 'min',
   * or with a `monitor` that is not a loss, 'max'.
   */
  mode?: 'min' | 'max';
  /** New lr = lr * factor (finite, 0 ≤ factor < 1). Default 0.1. */
  factor?: number;
  /**
   * Epochs without improvement tolerated before the lr is cut (an integer ≥ 0): the cut
   * happens on the `patience + 1`-th consecutive bad epoch. Default 10.
   */
  patience?: number;
  /** How much better than the best a metric must be to count as an improvement (finite, ≥ 0). Default 1e-4. */
  threshold?: number;
  /**
   * 'rel': better means `< best * (1 - threshold)` ('min') or `> best * (1 + threshold)`
   * ('max'); 'abs': `< best - threshold` or `> best + threshold`. Default 'rel'.
   */
  thresholdMode?: 'rel' | 'abs';
  /** Epochs after a cut during which bad epochs are not counted (an integer ≥ 0). Default 0. */
  cooldown?: number;
  /** The lr never goes below this (finite, ≥ 0). Default 0. */
  minLr?: number;
  /** A cut smaller than this is skipped (finite, ≥ 0). Default 1e-8. */
  eps?: number;
}

const MONITORS: readonly MonitorName[] = ['loss', 'accuracy', 'top5', 'valLoss', 'valAccuracy', 'valTop5'];

/**
 * Cut the lr when a metric stops improving, as PyTorch's `ReduceLROnPlateau`.
 *
 * Passed as Trainer.fit's `schedule`, fit sets each epoch's lr to {@link ReduceLROnPlateau.lr}
 * and calls step() with the epoch log's `monitor` after every epoch (a resumed run replays its
 * history first, so it continues exactly):
 *
 * ```ts
 * await trainer.fit(train, { epochs: 50, batchSize: 128, validation: test,
 *   schedule: new schedules.ReduceLROnPlateau({ lr: 0.1, monitor: 'valLoss', patience: 3 }) });
 * ```
 *
 * Call {@link ReduceLROnPlateau.step} once per epoch with the monitored metric; it returns
 * the lr to use next. Per call, exactly as PyTorch:
 *
 * 1. if the metric is better than `best` (see `threshold`/`thresholdMode`), it becomes
 *    `best` and `numBadEpochs = 0`; otherwise `numBadEpochs += 1`;
 * 2. if `cooldownCounter > 0`: `cooldownCounter -= 1` and `numBadEpochs = 0`;
 * 3. if `numBadEpochs > patience`: `newLr = max(lr * factor, minLr)`, applied only if
 *    `lr - newLr > eps`; then `cooldownCounter = cooldown` and `numBadEpochs = 0`.
 *
 * `best` starts at +Infinity ('min') or -Infinity ('max'), so the first metric always
 * improves. A NaN metric compares as not better (a bad epoch), as in PyTorch.
 */
export class ReduceLROnPlateau {
  readonly monitor: MonitorName;
  readonly mode: 'min' | 'max';
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly thresholdMode: 'rel' | 'abs';
  readonly cooldown: number;
  readonly minLr: number;
  readonly eps: number;

  readonly #initialLr: number;
  #lr: number;
  #best: number;
  #numBadEpochs = 0;
  #cooldownCounter = 0;

  constructor(opts: ReduceLROnPlateauOptions) {
    const where = 'ReduceLROnPlateau';
    const o = options(opts, where);
    this.#lr = this.#initialLr = nonNegative(o.lr, where, 'lr');
    this.monitor = validate.oneOf(o.monitor ?? 'valLoss', where, 'monitor', MONITORS);
    const defaultMode = o.monitor === undefined || this.monitor.toLowerCase().endsWith('loss') ? 'min' : 'max';
    this.mode = validate.oneOf(o.mode ?? defaultMode, where, 'mode', ['min', 'max'] as const);
    this.factor = validate.number(o.factor ?? 0.1, where, 'factor', 0, 1, 'max');
    this.patience = integer(o.patience ?? 10, where, 'patience', 0);
    this.threshold = nonNegative(o.threshold ?? 1e-4, where, 'threshold');
    this.thresholdMode = validate.oneOf(o.thresholdMode ?? 'rel', where, 'thresholdMode', ['rel', 'abs'] as const);
    this.cooldown = integer(o.cooldown ?? 0, where, 'cooldown', 0);
    this.minLr = nonNegative(o.minLr ?? 0, where, 'minLr');
    this.eps = nonNegative(o.eps ?? 1e-8, where, 'eps');
    this.#best = this.mode === 'min' ? Infinity : -Infinity;
  }

  /** Back to the state the constructor made (Trainer.fit does this, then replays a resumed run's history). */
  reset(): void {
    this.#lr = this.#initialLr;
    this.#best = this.mode === 'min' ? Infinity : -Infinity;
    this.#numBadEpochs = 0;
    this.#cooldownCounter = 0;
  }

  /** The current lr. */
  get lr(): number {
    return this.#lr;
  }

  /** The best metric seen so far (±Infinity before the first step). */
  get best(): number {
    return this.#best;
  }

  /** Consecutive epochs without improvement, as counted by PyTorch's `num_bad_epochs`. */
  get numBadEpochs(): number {
    return this.#numBadEpochs;
  }

  /** Remaining cooldown epochs (PyTorch's `cooldown_counter`). */
  get cooldownCounter(): number {
    return this.#cooldownCounter;
  }

  /** Whether the scheduler is in cooldown (`cooldownCounter > 0`). */
  get inCooldown(): boolean {
    return this.#cooldownCounter > 0;
  }

  /**
   * Record this epoch's metric and return the lr to use from now on.
   *
   * @param metric the monitored value (a number; NaN counts as a bad epoch).
   */
  step(metric: number): number {
    if (typeof metric !== 'number') {
      validate.invalid(metric, 'ReduceLROnPlateau.step', 'metric', 'a number');
    }
    if (this.#isBetter(metric, this.#best)) {
      this.#best = metric;
      this.#numBadEpochs = 0;
    } else {
      this.#numBadEpochs += 1;
    }
    if (this.#cooldownCounter > 0) {
      this.#cooldownCounter -= 1;
      this.#numBadEpochs = 0;
    }
    if (this.#numBadEpochs > this.patience) {
      const newLr = Math.max(this.#lr * this.factor, this.minLr);
      if (this.#lr - newLr > this.eps) this.#lr = newLr;
      this.#cooldownCounter = this.cooldown;
      this.#numBadEpochs = 0;
    }
    return this.#lr;
  }

  #isBetter(a: number, best: number): boolean {
    if (this.mode === 'min') {
      return this.thresholdMode === 'rel' ? a < best * (1 - this.threshold) : a < best - this.threshold;
    }
    return this.thresholdMode === 'rel' ? a > best * (this.threshold + 1) : a > best + this.threshold;
  }
}
