// Learning-rate schedules against hand-worked numbers and the closed forms in the PyTorch
// docs (torch.optim.lr_scheduler). Expected values are written out here or computed from
// those formulas directly, never by calling the schedule under test.
import { describe, expect, it } from 'vitest';

import { constant, cosine, multiStep, oneCycle, ReduceLROnPlateau, stepDecay, type LrSchedule } from '../../lib/train/schedules.js';
import { expectCodeSync } from '../support/expect_error.js';

/** Relative closeness (absolute near zero). */
function close(actual: number, expected: number, tol = 1e-12): void {
  const scale = Math.max(Math.abs(expected), 1e-300);
  expect(Number.isFinite(actual), `got ${actual}, want ${expected}`).toBe(true);
  expect(Math.abs(actual - expected) / scale, `got ${actual}, want ${expected}`).toBeLessThanOrEqual(tol);
}

const expectArg = (fn: () => unknown, ...mentions: string[]): void => void expectCodeSync(fn, 'E_ARG', ...mentions);

const values = (s: LrSchedule, steps: number[]) => steps.map((k) => s.at(k));

describe('constant', () => {
  it('returns the lr at every step', () => {
    const s = constant(0.03);
    expect(values(s, [0, 1, 7, 1e6])).toEqual([0.03, 0.03, 0.03, 0.03]);
  });

  it('rejects a bad lr and a bad step', () => {
    expectArg(() => constant(-0.1), 'constant', 'lr');
    expectArg(() => constant(Number.NaN), 'lr');
    expectArg(() => constant(Infinity), 'lr');
    expectArg(() => constant(0.1).at(-1), 'step');
    expectArg(() => constant(0.1).at(Number.NaN), 'step');
  });
});

describe('stepDecay (StepLR)', () => {
  it('multiplies by gamma at each stepSize boundary', () => {
    // lr * gamma ** floor(step / stepSize) with lr=0.1, stepSize=3, gamma=0.5.
    const s = stepDecay({ lr: 0.1, stepSize: 3, gamma: 0.5 });
    expect(values(s, [0, 1, 2])).toEqual([0.1, 0.1, 0.1]);
    expect(values(s, [3, 4, 5])).toEqual([0.05, 0.05, 0.05]);
    expect(s.at(6)).toBe(0.025);
    expect(s.at(9)).toBe(0.0125);
  });

  it('defaults gamma to 0.1', () => {
    const s = stepDecay({ lr: 1, stepSize: 2 });
    expect(s.at(1)).toBe(1);
    close(s.at(2), 0.1);
    close(s.at(3), 0.1);
    close(s.at(4), 0.01);
  });

  it('floors a fractional step (e.g. a fractional epoch)', () => {
    const s = stepDecay({ lr: 1, stepSize: 10, gamma: 0.5 });
    expect(s.at(9.99)).toBe(1);
    expect(s.at(10)).toBe(0.5);
  });

  it('rejects bad options', () => {
    expectArg(() => stepDecay({ lr: 0.1, stepSize: 0 }), 'stepDecay', 'stepSize');
    expectArg(() => stepDecay({ lr: 0.1, stepSize: 2.5 }), 'stepSize');
    expectArg(() => stepDecay({ lr: -1, stepSize: 2 }), 'lr');
    expectArg(() => stepDecay({ lr: 0.1, stepSize: 2, gamma: 0 }), 'gamma');
    expectArg(() => stepDecay({ lr: 0.1, stepSize: 2, gamma: Number.NaN }), 'gamma');
    expectArg(() => stepDecay({ lr: 0.1, stepSize: 2 }).at(-0.5), 'step');
  });
});

describe('multiStep (MultiStepLR)', () => {
  it('applies gamma from each milestone on', () => {
    const s = multiStep({ lr: 0.8, milestones: [2, 5], gamma: 0.5 });
    expect(values(s, [0, 1, 2, 4, 5, 100])).toEqual([0.8, 0.8, 0.4, 0.4, 0.2, 0.2]);
  });

  it('defaults gamma to 0.1 and matches the PyTorch docs example (milestones 30, 80)', () => {
    // Docs: lr = 0.05 if epoch < 30; 0.005 if 30 <= epoch < 80; 0.0005 if epoch >= 80.
    const s = multiStep({ lr: 0.05, milestones: [30, 80] });
    close(s.at(29), 0.05);
    close(s.at(30), 0.005);
    close(s.at(79), 0.005);
    close(s.at(80), 0.0005);
  });

  it('applies a repeated milestone twice and a milestone 0 at step 0, as PyTorch', () => {
    const s = multiStep({ lr: 1, milestones: [0, 3, 3], gamma: 0.5 });
    expect(s.at(0)).toBe(0.5);
    expect(s.at(2)).toBe(0.5);
    expect(s.at(3)).toBe(0.125);
  });

  it('is constant with no milestones', () => {
    expect(values(multiStep({ lr: 0.2, milestones: [] }), [0, 50])).toEqual([0.2, 0.2]);
  });

  it('rejects bad options', () => {
    expectArg(() => multiStep({ lr: 0.1, milestones: [5, 2] }), 'multiStep', 'milestones', 'sorted');
    expectArg(() => multiStep({ lr: 0.1, milestones: [1, -2] }), 'milestones[1]');
    expectArg(() => multiStep({ lr: 0.1, milestones: [1.5] }), 'milestones[0]');
    expectArg(() => multiStep({ lr: 0.1, milestones: 3 as unknown as number[] }), 'milestones');
    expectArg(() => multiStep({ lr: Number.NaN, milestones: [1] }), 'lr');
    expectArg(() => multiStep({ lr: 0.1, milestones: [1], gamma: -0.1 }), 'gamma');
  });
});

describe('cosine', () => {
  it('without warmup is CosineAnnealingLR: lr at 0, half at T/2, minLr at T and after', () => {
    // eta_min + (eta_max - eta_min) * (1 + cos(pi * t / T)) / 2, eta_max=0.1, eta_min=0, T=100.
    const s = cosine({ lr: 0.1, totalSteps: 100 });
    close(s.at(0), 0.1);
    close(s.at(50), 0.05);
    // (1 + cos(pi/4)) / 2 = (1 + sqrt(2)/2) / 2 = 0.853553390593273...
    close(s.at(25), 0.0853553390593273);
    expect(s.at(100)).toBe(0);
    expect(s.at(250)).toBe(0);
  });

  it('warms up linearly from warmupStartLr to lr, then anneals to minLr', () => {
    // totalSteps 10, warmup 2 (0.1 -> 1), cosine over T = 8 from 1 down to 0.2.
    const s = cosine({ lr: 1, totalSteps: 10, warmupSteps: 2, warmupStartLr: 0.1, minLr: 0.2 });
    close(s.at(0), 0.1);
    close(s.at(1), 0.55);
    close(s.at(2), 1);
    // t = 2: 0.2 + 0.8 * (1 + cos(pi/4)) / 2 = 0.2 + 0.4 * 1.7071067811865475
    close(s.at(4), 0.882842712474619);
    // midpoint of the decay, t = 4 = T/2: 0.2 + 0.8 / 2
    close(s.at(6), 0.6);
    // t = 6: cos(3pi/4) = -sqrt(2)/2 -> 0.2 + 0.4 * 0.2928932188134524
    close(s.at(8), 0.317157287525381);
    close(s.at(10), 0.2);
    close(s.at(11), 0.2);
    close(s.at(1000), 0.2);
  });

  it('warms up from lr / warmupSteps by default (not 0), and is non-increasing after warmup', () => {
    // warmupStartLr = 0.4 / 4 = 0.1, then linear to 0.4 at step 4: 0.1 + 0.3 * k / 4.
    const s = cosine({ lr: 0.4, totalSteps: 20, warmupSteps: 4 });
    close(s.at(0), 0.1);
    close(s.at(1), 0.175);
    close(s.at(2), 0.25);
    close(s.at(3), 0.325);
    close(s.at(4), 0.4);
    for (let k = 5; k <= 25; k++) expect(s.at(k)).toBeLessThanOrEqual(s.at(k - 1));
    // An explicit warmupStartLr, 0 included, is kept.
    expect(cosine({ lr: 0.4, totalSteps: 20, warmupSteps: 4, warmupStartLr: 0 }).at(0)).toBe(0);
    // Without warmup, step 0 is lr.
    close(cosine({ lr: 0.4, totalSteps: 20 }).at(0), 0.4);
  });

  it('rejects bad options', () => {
    expectArg(() => cosine({ lr: 0.1, totalSteps: 0 }), 'cosine', 'totalSteps');
    expectArg(() => cosine({ lr: 0.1, totalSteps: 10.5 }), 'totalSteps');
    expectArg(() => cosine({ lr: 0.1, totalSteps: 10, warmupSteps: 10 }), 'warmupSteps');
    expectArg(() => cosine({ lr: 0.1, totalSteps: 10, warmupSteps: -1 }), 'warmupSteps');
    expectArg(() => cosine({ lr: 0.1, totalSteps: 10, minLr: 0.2 }), 'minLr');
    expectArg(() => cosine({ lr: 0.1, totalSteps: 10, minLr: -0.01 }), 'minLr');
    expectArg(() => cosine({ lr: 0.1, totalSteps: 10, warmupStartLr: Infinity }), 'warmupStartLr');
    expectArg(() => cosine({ lr: -0.1, totalSteps: 10 }), 'lr');
    expectArg(() => cosine({ lr: 0.1, totalSteps: 10 }).at(Infinity), 'step');
  });
});

describe('oneCycle (OneCycleLR)', () => {
  // PyTorch's annealing functions, written out from the docs/source.
  const annealCos = (start: number, end: number, pct: number) => end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);

  it('two-phase cos: initial lr, peak at pctStart*total - 1, min lr at total - 1', () => {
    // maxLr 1, div 25 -> initial 0.04; final div 1e4 -> min 4e-6. Phase ends: 24, 99.
    const s = oneCycle({ maxLr: 1, totalSteps: 100, pctStart: 0.25 });
    expect(s.initialLr).toBe(0.04);
    close(s.minLr, 4e-6);
    close(s.at(0), 0.04);
    close(s.at(12), 0.52); // pct 0.5 of phase 1: (0.04 + 1) / 2
    close(s.at(24), 1);
    close(s.at(99), 4e-6);
    // A point in phase 2: start 24, end 99, pct = 26 / 75.
    close(s.at(50), annealCos(1, 4e-6, 26 / 75));
    // Phase 2 midpoint (pct 0.5) at step 61.5: (1 + 4e-6) / 2.
    close(s.at(61.5), 0.500002);
  });

  it('defaults: pctStart 0.3, divFactor 25, finalDivFactor 1e4', () => {
    const s = oneCycle({ maxLr: 0.1, totalSteps: 1000 });
    close(s.at(0), 0.004);
    close(s.at(299), 0.1); // end of phase 1 = 0.3 * 1000 - 1
    close(s.at(999), 4e-7);
    // Phase 1 interior: pct = 100 / 299.
    close(s.at(100), annealCos(0.004, 0.1, 100 / 299));
    // Monotone up to the peak, then down.
    for (let k = 1; k <= 299; k++) expect(s.at(k)).toBeGreaterThan(s.at(k - 1));
    for (let k = 300; k < 1000; k++) expect(s.at(k)).toBeLessThan(s.at(k - 1));
  });

  it('linear annealing', () => {
    // maxLr 1, div 4 -> initial 0.25, min 2.5e-5; phase ends 24, 99.
    const s = oneCycle({ maxLr: 1, totalSteps: 100, pctStart: 0.25, divFactor: 4, annealStrategy: 'linear' });
    close(s.at(0), 0.25);
    close(s.at(12), 0.625);
    close(s.at(24), 1);
    // step 49: pct 25/75 = 1/3 of the way from 1 to 2.5e-5 -> 1 - (1 - 2.5e-5) / 3
    close(s.at(49), 0.666675);
    // PyTorch's linear form (end - start) * pct + start cancels at pct = 1: ~2e-12 relative error.
    close(s.at(99), 2.5e-5, 1e-10);
  });

  it('three-phase: up to maxLr, back to initial at 2*pct*total - 2, then down to min', () => {
    // initial 0.1, min 0.001; phase ends 24, 48, 99.
    const s = oneCycle({ maxLr: 1, totalSteps: 100, pctStart: 0.25, divFactor: 10, finalDivFactor: 100, threePhase: true });
    close(s.at(0), 0.1);
    close(s.at(24), 1);
    close(s.at(36), 0.55);
    close(s.at(48), 0.1);
    close(s.at(60), annealCos(0.1, 0.001, 12 / 51));
    close(s.at(99), 0.001);
  });

  it('cycles momentum inversely (0.95 -> 0.85 at the peak -> 0.95)', () => {
    const s = oneCycle({ maxLr: 1, totalSteps: 100, pctStart: 0.25 });
    close(s.momentumAt(0), 0.95);
    close(s.momentumAt(12), 0.9);
    close(s.momentumAt(24), 0.85);
    close(s.momentumAt(50), annealCos(0.85, 0.95, 26 / 75));
    close(s.momentumAt(99), 0.95);

    const t = oneCycle({ maxLr: 1, totalSteps: 100, pctStart: 0.25, threePhase: true, baseMomentum: 0.8, maxMomentum: 0.9 });
    close(t.momentumAt(24), 0.8);
    close(t.momentumAt(48), 0.9);
    close(t.momentumAt(70), 0.9); // held in phase 3
  });

  it('pctStart 0 puts step 0 inside the decay phase, as PyTorch (phase 1 ends at -1)', () => {
    // Phase 2 runs from -1 to 99: pct at step 0 = 1 / 100.
    const s = oneCycle({ maxLr: 1, totalSteps: 100, pctStart: 0 });
    close(s.at(0), annealCos(1, 4e-6, 1 / 100));
    close(s.at(99), 4e-6);
  });

  it('a one-step cycle ends at min lr', () => {
    // totalSteps 1, pctStart 0.3: phase 1 ends at -0.7, phase 2 at 0 -> step 0 has pct 1.
    const s = oneCycle({ maxLr: 1, totalSteps: 1 });
    close(s.at(0), 4e-6);
  });

  it('rejects bad options and negative steps', () => {
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 100 }).momentumAt(-1), 'oneCycle', 'step');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 100 }).at(Number.NaN), 'step');
    expectArg(() => oneCycle({ maxLr: 0, totalSteps: 100 }), 'maxLr');
    expectArg(() => oneCycle({ maxLr: Number.NaN, totalSteps: 100 }), 'maxLr');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 0 }), 'totalSteps');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 7.5 }), 'totalSteps');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 100, pctStart: 1.5 }), 'pctStart');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 100, pctStart: -0.1 }), 'pctStart');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 10, pctStart: 0.1 }), 'pctStart'); // zero-length phase 1
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 100, divFactor: 0 }), 'divFactor');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 100, finalDivFactor: -1 }), 'finalDivFactor');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 100, annealStrategy: 'exp' as unknown as 'cos' }), 'annealStrategy');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 100, baseMomentum: 0.96 }), 'baseMomentum');
    expectArg(() => oneCycle({ maxLr: 1, totalSteps: 100, threePhase: 1 as unknown as boolean }), 'threePhase');
  });
});

describe('past the end', () => {
  // One rule for every schedule: past its end a schedule holds its final value; schedules
  // without an end follow their formula at any step.
  const far = [1e3, 1e6, 1e9 + 0.5];

  it('cosine: minLr at totalSteps and after', () => {
    const s = cosine({ lr: 0.1, totalSteps: 100, warmupSteps: 10, minLr: 0.001 });
    for (const k of [100, 100.5, 101, ...far]) expect(s.at(k)).toBe(0.001);
  });

  it('oneCycle: the final lr (initialLr / finalDivFactor) and momentum from totalSteps - 1 on, never an error', () => {
    for (const threePhase of [false, true]) {
      for (const annealStrategy of ['cos', 'linear'] as const) {
        const s = oneCycle({ maxLr: 1, totalSteps: 100, threePhase, annealStrategy });
        close(s.at(99), 1 / 25 / 1e4, 1e-9); // linear interpolation rounds in the last bits
        for (const k of [99.5, 100, 101, ...far]) {
          expect(s.at(k)).toBe(s.at(99));
          close(s.momentumAt(k), 0.95, 1e-9);
        }
      }
    }
  });

  it('constant, stepDecay, multiStep: their formula (they have no end)', () => {
    for (const k of far) {
      expect(constant(0.3).at(k)).toBe(0.3);
      expect(stepDecay({ lr: 1, stepSize: 1e5, gamma: 0.5 }).at(k)).toBe(0.5 ** Math.floor(k / 1e5));
      expect(multiStep({ lr: 1, milestones: [10, 20], gamma: 0.5 }).at(k)).toBe(0.25);
    }
  });
});

describe('ReduceLROnPlateau', () => {
  it('monitor: valLoss by default; mode follows it unless given; reset() restores the start', () => {
    expect(new ReduceLROnPlateau({ lr: 0.1 })).toMatchObject({ monitor: 'valLoss', mode: 'min' });
    expect(new ReduceLROnPlateau({ lr: 0.1, monitor: 'valAccuracy' })).toMatchObject({ monitor: 'valAccuracy', mode: 'max' });
    expect(new ReduceLROnPlateau({ lr: 0.1, monitor: 'loss' }).mode).toBe('min');
    expect(new ReduceLROnPlateau({ lr: 0.1, monitor: 'top5', mode: 'min' }).mode).toBe('min');
    expectArg(() => new ReduceLROnPlateau({ lr: 0.1, monitor: 'val_loss' as never }), 'ReduceLROnPlateau', 'monitor');
    const s = new ReduceLROnPlateau({ lr: 1, patience: 0, factor: 0.5, cooldown: 1, threshold: 0 });
    s.step(1);
    s.step(2);
    expect([s.lr, s.best, s.cooldownCounter]).toEqual([0.5, 1, 1]);
    s.reset();
    expect([s.lr, s.best, s.numBadEpochs, s.cooldownCounter]).toEqual([1, Infinity, 0, 0]);
  });

  const run = (s: ReduceLROnPlateau, metrics: number[]) => metrics.map((m) => s.step(m));

  it('starts with the given lr and a worst-possible best', () => {
    const min = new ReduceLROnPlateau({ lr: 0.1 });
    expect(min.lr).toBe(0.1);
    expect(min.best).toBe(Infinity);
    expect(new ReduceLROnPlateau({ lr: 0.1, mode: 'max' }).best).toBe(-Infinity);
  });

  it('cuts after patience + 1 consecutive bad epochs, and again after another patience + 1', () => {
    const s = new ReduceLROnPlateau({ lr: 1, patience: 2, factor: 0.5, threshold: 0 });
    // epoch 1 sets best=10; epochs 2,3 are bad (1, 2 <= patience); epoch 4 is the 3rd -> cut.
    expect(run(s, [10, 10, 10, 10])).toEqual([1, 1, 1, 0.5]);
    expect(s.numBadEpochs).toBe(0);
    expect(run(s, [10, 10, 10])).toEqual([0.5, 0.5, 0.25]);
    expect(s.lr).toBe(0.25);
  });

  it('an improvement resets the bad-epoch count', () => {
    const s = new ReduceLROnPlateau({ lr: 1, patience: 2, factor: 0.5, threshold: 0 });
    expect(run(s, [10, 11, 12, 9])).toEqual([1, 1, 1, 1]);
    expect(s.best).toBe(9);
    expect(s.numBadEpochs).toBe(0);
    expect(run(s, [9.5, 9.6, 9.7])).toEqual([1, 1, 0.5]);
  });

  it('patience 0: the first worse epoch after the baseline cuts (PyTorch docs example)', () => {
    const s = new ReduceLROnPlateau({ lr: 1, patience: 0, factor: 0.5, threshold: 0 });
    expect(run(s, [3, 4, 2, 2])).toEqual([1, 0.5, 0.5, 0.25]);
  });

  it('cooldown ignores bad epochs for `cooldown` epochs after a cut', () => {
    const s = new ReduceLROnPlateau({ lr: 1, patience: 0, cooldown: 2, factor: 0.5, threshold: 0 });
    const lrs: number[] = [];
    const counters: number[] = [];
    for (const m of [5, 5, 5, 5, 5]) {
      lrs.push(s.step(m));
      counters.push(s.cooldownCounter);
    }
    // 1: baseline. 2: bad -> cut, cooldown 2. 3, 4: in cooldown (counter 1, 0), bad ignored.
    // 5: bad again -> cut, cooldown 2.
    expect(lrs).toEqual([1, 0.5, 0.5, 0.5, 0.25]);
    expect(counters).toEqual([0, 2, 1, 0, 2]);
    expect(s.inCooldown).toBe(true);
  });

  it("threshold 'rel' in min mode: better means below best * (1 - threshold)", () => {
    const s = new ReduceLROnPlateau({ lr: 1, patience: 0, factor: 0.5, threshold: 0.1 });
    // best 100; 95 is not < 90 -> bad -> cut; 89 < 90 -> new best.
    expect(run(s, [100, 95, 89])).toEqual([1, 0.5, 0.5]);
    expect(s.best).toBe(89);
  });

  it("threshold 'abs' vs 'rel' on the same numbers", () => {
    // best 10, threshold 0.5: abs needs < 9.5, rel needs < 5. Metric 9 is better only in abs.
    const abs = new ReduceLROnPlateau({ lr: 1, patience: 0, factor: 0.5, threshold: 0.5, thresholdMode: 'abs' });
    const rel = new ReduceLROnPlateau({ lr: 1, patience: 0, factor: 0.5, threshold: 0.5, thresholdMode: 'rel' });
    expect(run(abs, [10, 9])).toEqual([1, 1]);
    expect(abs.best).toBe(9);
    expect(run(rel, [10, 9])).toEqual([1, 0.5]);
    expect(rel.best).toBe(10);
    // abs: 9.6 is not < 9.5 -> bad.
    const abs2 = new ReduceLROnPlateau({ lr: 1, patience: 0, factor: 0.5, threshold: 0.5, thresholdMode: 'abs' });
    expect(run(abs2, [10, 9.6])).toEqual([1, 0.5]);
  });

  it('never goes below minLr, and a cut smaller than eps is skipped', () => {
    const s = new ReduceLROnPlateau({ lr: 1, patience: 0, factor: 0.1, minLr: 0.05, threshold: 0 });
    const lrs = run(s, [1, 1, 1, 1]);
    expect(lrs[0]).toBe(1);
    close(lrs[1]!, 0.1);
    expect(lrs[2]).toBe(0.05); // max(0.01, 0.05)
    expect(lrs[3]).toBe(0.05);

    // old 1e-7, new 5e-8: the difference 5e-8 is not > eps 1e-7, so the lr stays...
    const big = new ReduceLROnPlateau({ lr: 1e-7, patience: 0, factor: 0.5, eps: 1e-7, threshold: 0, cooldown: 3 });
    expect(run(big, [1, 1])).toEqual([1e-7, 1e-7]);
    // ...but the cut still counts: cooldown starts and the bad count resets, as in PyTorch.
    expect(big.cooldownCounter).toBe(3);
    expect(big.numBadEpochs).toBe(0);
    // With the default eps 1e-8 the same cut goes through.
    const small = new ReduceLROnPlateau({ lr: 1e-7, patience: 0, factor: 0.5, threshold: 0 });
    expect(run(small, [1, 1])).toEqual([1e-7, 5e-8]);
  });

  it("mode 'max' waits for the metric to stop rising", () => {
    const s = new ReduceLROnPlateau({ lr: 1, mode: 'max', patience: 1, factor: 0.5, threshold: 0 });
    // 0.5 baseline, 0.6 better, 0.6 bad (1), 0.55 bad (2 > 1) -> cut.
    expect(run(s, [0.5, 0.6, 0.6, 0.55])).toEqual([1, 1, 1, 0.5]);
    expect(s.best).toBe(0.6);
    // rel in max mode: better means > best * (1 + threshold): 0.65 is not > 0.66.
    const r = new ReduceLROnPlateau({ lr: 1, mode: 'max', patience: 0, factor: 0.5, threshold: 0.1 });
    expect(run(r, [0.6, 0.65, 0.67])).toEqual([1, 0.5, 0.5]);
    expect(r.best).toBe(0.67);
  });

  it('uses the PyTorch defaults (factor 0.1, patience 10, rel 1e-4)', () => {
    const s = new ReduceLROnPlateau({ lr: 1 });
    // 1.0 then ten epochs at 0.99995 (not < 1 * (1 - 1e-4) = 0.9999): 10 bad epochs, no cut.
    const first = run(s, [1, ...Array<number>(10).fill(0.99995)]);
    expect(first.every((v) => v === 1)).toBe(true);
    expect(s.numBadEpochs).toBe(10);
    close(s.step(0.99995), 0.1); // the 11th
  });

  it('counts a NaN metric as a bad epoch, as PyTorch', () => {
    const s = new ReduceLROnPlateau({ lr: 1, patience: 1, factor: 0.5 });
    expect(run(s, [1, Number.NaN, Number.NaN])).toEqual([1, 1, 0.5]);
    expect(s.best).toBe(1);
  });

  it('rejects bad options', () => {
    expectArg(() => new ReduceLROnPlateau({ lr: -1 }), 'ReduceLROnPlateau', 'lr');
    expectArg(() => new ReduceLROnPlateau({ lr: Infinity }), 'lr');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, factor: 1 }), 'factor');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, factor: -0.5 }), 'factor');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, patience: -1 }), 'patience');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, patience: 1.5 }), 'patience');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, mode: 'avg' as unknown as 'min' }), 'mode');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, thresholdMode: 'pct' as unknown as 'rel' }), 'thresholdMode');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, threshold: -1e-4 }), 'threshold');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, cooldown: -1 }), 'cooldown');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, minLr: -0.1 }), 'minLr');
    expectArg(() => new ReduceLROnPlateau({ lr: 1, eps: Number.NaN }), 'eps');
    expectArg(() => new ReduceLROnPlateau({ lr: 1 }).step('0.5' as unknown as number), 'metric');
  });
});
