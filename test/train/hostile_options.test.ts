// Hostile values in every numeric and structural option of training: each of the fuzzing
// values (test/support/fuzz.ts, plus NaN, ±Infinity and float32-underflowing numbers) is put
// into one option of compile, trainStep, computeGradients, setLearningRate, Trainer.fit (schedule
// outputs included) and evaluateModel at a time, then a seeded mix of several at once. Each call
// either succeeds, or fails with a ResNetError whose code is E_ARG (a path that does not exist:
// E_IO) and whose message names the option; and the model's parameters are never left non-finite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type CompileOptions,
  type Dataset,
  evaluateModel,
  type FitOptions,
  type Model,
  models,
  ResNetError,
  Tensor,
  Trainer,
} from '../../lib/index.js';
import { HOSTILE_VALUES } from '../support/fuzz.js';
import { Rng } from '../support/random.js';

const VALUES: readonly unknown[] = [...HOSTILE_VALUES, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e-50, 5e-324, -0, 0.999999];

const IMAGE: [number, number, number] = [8, 8, 3];
const CLASSES = 4;

/** Eight seeded examples, held in memory. */
function dataset(seed: number, length = 8): Dataset {
  const per = IMAGE[0] * IMAGE[1] * IMAGE[2];
  const rng = new Rng(seed);
  const images = rng.array(length * per);
  const labels = rng.labels(length, CLASSES);
  return {
    length,
    imageShape: IMAGE,
    classes: CLASSES,
    fill(indices, x, y) {
      for (let i = 0; i < indices.length; i++) {
        const k = indices[i]!;
        x.set(images.subarray(k * per, (k + 1) * per), i * per);
        y[i] = labels[k]!;
      }
    },
  };
}

/** A copy of `base` with `path` ('a.b' or 'a[0].b') set to `value` (unchanged when a value on the way is no longer an object). */
function withOption<T extends object>(base: T, path: string, value: unknown): T {
  const out = structuredCloneKeepingFunctions(base) as Record<string, unknown>;
  const keys = path.replace(/\[(\d+)\]/g, '.$1').split('.');
  let node = out as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) {
    node = node[k] as Record<string, unknown>;
    if (typeof node !== 'object' || node === null) return out as T;
  }
  node[keys[keys.length - 1]!] = value;
  return out as T;
}

function structuredCloneKeepingFunctions(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(structuredCloneKeepingFunctions);
  if (typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, structuredCloneKeepingFunctions(x)]));
  }
  return v; // functions, RegExps, datasets: shared
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v);
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'function') return 'function';
  return JSON.stringify(v) ?? String(v);
}

let model: Model;
let x: Tensor;
let y: Int32Array;
const silent = { write: () => true };

beforeAll(() => {
  model = models.resnetCifar({ depth: 8, inputShape: IMAGE, classes: CLASSES, seed: 5 });
  const rng = new Rng(5);
  x = Tensor.fromArray(rng.array(4 * 8 * 8 * 3), [4, ...IMAGE]);
  y = rng.labels(4, CLASSES);
});
afterAll(() => {
  model.dispose();
  x.dispose();
});

/** The first trainable parameter holding a non-finite value, or undefined. */
function nonFinite(m: Model): string | undefined {
  for (const p of m.parameterInfo()) {
    const v = m.getParameter(p.name);
    const i = v.findIndex((e) => !Number.isFinite(e));
    if (i >= 0) return `${p.name}[${i}] = ${v[i]}`;
  }
  return undefined;
}

/** A fresh start: the seed's weights, a plain optimizer. */
function reset(): void {
  const fresh = models.resnetCifar({ depth: 8, inputShape: IMAGE, classes: CLASSES, seed: 5 });
  for (const p of fresh.parameterInfo()) model.setParameter(p.name, fresh.getParameter(p.name));
  fresh.dispose();
  model.train();
  model.compile({ optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
}

/**
 * Runs `call`; a failure must be a ResNetError with one of `codes` naming `option` (its last
 * key, case-insensitively). Afterwards no parameter may be non-finite. Returns whether it succeeded.
 */
async function expectHandled(what: string, option: string, call: () => unknown, codes: readonly string[] = ['E_ARG']): Promise<boolean> {
  let ok = true;
  try {
    await call();
  } catch (err) {
    ok = false;
    expect(err, `${what}: ${String(err)}`).toBeInstanceOf(ResNetError);
    const e = err as ResNetError;
    expect(codes, `${what}: ${e.code} ${e.message}`).toContain(e.code);
    const leaf = option
      .split(/[.[\]]/)
      .filter(Boolean)
      .pop()!;
    if (e.code === 'E_ARG') expect(e.message.toLowerCase(), what).toContain(leaf.toLowerCase());
  }
  expect(nonFinite(model), `${what}: a parameter went non-finite`).toBeUndefined();
  return ok;
}

// ---------------------------------------------------------------------------------------------

const SGD: CompileOptions = {
  optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 1e-4, decoupledWeightDecay: false },
  labelSmoothing: 0.1,
  clipGradNorm: 5,
  decayNormAndBias: false,
  paramGroups: [{ match: /^fc\./, weightDecay: 0, lrScale: 0.5 }],
};
const ADAMW: CompileOptions = { optimizer: { type: 'adamw', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 } };

const COMPILE_OPTIONS: [base: CompileOptions, path: string][] = [
  [SGD, 'optimizer'],
  [SGD, 'optimizer.type'],
  [SGD, 'optimizer.lr'],
  [SGD, 'optimizer.momentum'],
  [SGD, 'optimizer.nesterov'],
  [SGD, 'optimizer.weightDecay'],
  [SGD, 'optimizer.decoupledWeightDecay'],
  [ADAMW, 'optimizer.lr'],
  [ADAMW, 'optimizer.beta1'],
  [ADAMW, 'optimizer.beta2'],
  [ADAMW, 'optimizer.eps'],
  [ADAMW, 'optimizer.weightDecay'],
  [SGD, 'loss'],
  [SGD, 'labelSmoothing'],
  [SGD, 'clipGradNorm'],
  [SGD, 'decayNormAndBias'],
  [SGD, 'paramGroups'],
  [SGD, 'paramGroups[0]'],
  [SGD, 'paramGroups[0].match'],
  [SGD, 'paramGroups[0].weightDecay'],
  [SGD, 'paramGroups[0].lrScale'],
];

describe('compile options', () => {
  it('every hostile value in every option: E_ARG naming the option, or a model that trains a step to finite parameters', async () => {
    let accepted = 0;
    for (const [base, path] of COMPILE_OPTIONS) {
      for (const v of VALUES) {
        reset();
        const what = `compile ${base.optimizer.type} ${path} = ${show(v)}`;
        const before = model.getParameter('conv1.weight');
        if (await expectHandled(what, path, () => model.compile(withOption(base, path, v)))) {
          accepted++;
          await expectHandled(`${what}, then trainStep`, path, () => model.trainStep(x, y), ['E_NAN']);
        } else {
          // A refused compile changes nothing: the previous optimizer still steps.
          expect(model.getParameter('conv1.weight'), what).toEqual(before);
          await model.trainStep(x, y);
        }
      }
    }
    expect(accepted).toBeGreaterThan(50);
  });

  it("AdamW's eps: 0 (and values float32 rounds to 0 or a subnormal) is refused, naming eps and the value", async () => {
    for (const eps of [0, -0, 1e-50, 5e-324, 1e-39]) {
      const err = await expectHandled(`eps ${eps}`, 'eps', () => model.compile({ optimizer: { type: 'adamw', lr: 1e-3, eps } }));
      expect(err, `eps ${eps} was accepted`).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('per-step options', () => {
  it('trainStep lr, computeGradients labelSmoothing and setLearningRate: E_ARG naming the option, or finite parameters', async () => {
    for (const v of VALUES) {
      reset();
      await expectHandled(`trainStep lr = ${show(v)}`, 'lr', () => model.trainStep(x, y, { lr: v as number }), ['E_ARG', 'E_NAN']);
      await expectHandled(
        `setLearningRate(${show(v)})`,
        'lr',
        async () => {
          model.setLearningRate(v as number);
          await model.trainStep(x, y);
        },
        ['E_ARG', 'E_NAN'],
      );
      await expectHandled(`computeGradients labelSmoothing = ${show(v)}`, 'labelSmoothing', () =>
        model.computeGradients(x, y, { labelSmoothing: v as number }),
      );
      await expectHandled(`trainStep options = ${show(v)}`, 'option', () => model.trainStep(x, y, v as never), ['E_ARG', 'E_NAN']);
    }
  });
});

// ---------------------------------------------------------------------------------------------

const stopAfterOneEpoch = { onEpochEnd: () => false as const };
const FIT: FitOptions = {
  epochs: 1,
  batchSize: 4,
  validation: dataset(2),
  validationBatchSize: 4,
  callbacks: [stopAfterOneEpoch],
  shuffle: true,
  seed: 1,
  augment: { padding: 1, flip: true, mean: [0, 0, 0], std: [1, 1, 1] },
  normalize: { mean: 0, std: 1 },
  dropLast: true,
  progress: 'none',
  verbose: false,
};

const FIT_OPTIONS: [path: string, codes?: string[]][] = [
  ['epochs'],
  ['batchSize'],
  ['validation'],
  ['validationBatchSize'],
  ['callbacks'],
  ['resumeFrom', ['E_ARG', 'E_IO']], // a string is a path: one that is not there is E_IO
  ['shuffle'],
  ['seed'],
  ['augment'],
  ['augment.padding'],
  ['augment.flip'],
  ['augment.mean'],
  ['augment.std'],
  ['augment.mean[1]'],
  ['augment.std[2]'],
  ['normalize'],
  ['normalize.mean'],
  ['normalize.std'],
  ['schedule'],
  ['dropLast'],
  ['progress'],
  ['verbose'],
];

describe('Trainer.fit options', () => {
  const train = dataset(1);

  it('every hostile value in every option: E_ARG naming the option, or a run with finite parameters', async () => {
    let accepted = 0;
    for (const [path, codes] of FIT_OPTIONS) {
      for (const v of VALUES) {
        reset();
        const trainer = new Trainer(model, { progressStream: silent, verbose: false });
        if (await expectHandled(`fit ${path} = ${show(v)}`, path, () => trainer.fit(train, withOption(FIT, path, v)), codes)) accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(40);
  });

  it('schedules whose learning rate is hostile (per step and per epoch): E_ARG naming the schedule call, or finite parameters', async () => {
    for (const v of VALUES) {
      for (const schedule of [{ at: () => v as number }, () => v as number]) {
        reset();
        const trainer = new Trainer(model, { progressStream: silent, verbose: false });
        await expectHandled(`schedule → ${show(v)}`, 'schedule', () => trainer.fit(train, { ...FIT, schedule }), ['E_ARG', 'E_NAN']);
      }
    }
  });

  it('Trainer and evaluateModel options: E_ARG naming the option', async () => {
    reset();
    for (const v of VALUES) {
      for (const key of ['progress', 'progressStream', 'verbose']) {
        // Accepted, the value must also survive a run that reports progress (written to the stream).
        const { progress, verbose, ...reporting } = FIT;
        const options = { progress: 'log', progressStream: silent, [key]: v } as never;
        await expectHandled(`new Trainer ${key} = ${show(v)}`, key, () => new Trainer(model, options).fit(train, reporting));
      }
      for (const key of ['batchSize', 'mean', 'std']) {
        await expectHandled(`evaluateModel ${key} = ${show(v)}`, key, () => evaluateModel(model, train, { [key]: v } as never));
      }
    }
  });

  it('a seeded mix: several hostile options at once still fail cleanly or train to finite parameters', async () => {
    const rng = new Rng(1616);
    const paths = [...COMPILE_OPTIONS.map(([, p]) => `compile.${p}`), ...FIT_OPTIONS.map(([p]) => p)];
    for (let draw = 0; draw < 40; draw++) {
      reset();
      let compile: CompileOptions = rng.next() < 0.5 ? SGD : ADAMW;
      let fit: FitOptions = { ...FIT };
      const changed: string[] = [];
      for (let k = rng.int(2, 4); k > 0; k--) {
        const path = rng.pick(paths);
        const v = rng.pick(VALUES);
        changed.push(`${path} = ${show(v)}`);
        if (path.startsWith('compile.')) compile = withOption(compile, path.slice('compile.'.length), v);
        else fit = withOption(fit, path, v);
      }
      const what = `draw ${draw}: ${changed.join(', ')}`;
      try {
        const trainer = new Trainer(model, { compile, progressStream: silent, verbose: false });
        await trainer.fit(dataset(3), fit);
      } catch (err) {
        expect(err, `${what}: ${String(err)}`).toBeInstanceOf(ResNetError);
        expect(['E_ARG', 'E_IO', 'E_NAN'], `${what}: ${(err as ResNetError).message}`).toContain((err as ResNetError).code);
      }
      expect(nonFinite(model), what).toBeUndefined();
    }
  });
});
