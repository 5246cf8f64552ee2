// Whole models against the same networks in tfjs-layers, built from their spec
// (test/support/tfjs_from_spec.mjs) with every parameter copied over by name:
//  * forward: predict (inference-mode batch norm, random non-trivial running statistics,
//    gammas and betas) and predict({ softmax: true }) against the tfjs model's predict and tf.softmax;
//  * gradients: computeGradients (training-mode batch norm) against tf.variableGrads of the mean
//    softmax cross-entropy (tf.losses.softmaxCrossEntropy, whose label smoothing is
//    (1 - s)·onehot + s / classes as ours) of the tfjs model applied with training: true; every
//    trainable parameter, the loss and the accuracy;
//  * optimizer steps: trainStep after compile (SGD with momentum, Nesterov, AdamW without decay)
//    against tfjs's optimizers applying tfjs's gradients, AdamW with decoupled weight decay
//    against its closed form; two steps each (so that the second one runs on accumulated
//    optimizer state), and the batch-norm running statistics against the PyTorch update
//    (momentum 0.1, unbiased batch variance) computed here from tf.moments of each batch norm's
//    input in the tfjs model.
//
// Reduction lengths for expectClose. Rounding errors of successive layers add up along the
// network, so the length behind a value is the sum, along the longest path from the input, of
// each layer's own reduction: conv kh·kw·cin/groups, dense its input features, training-mode
// batch norm its n·h·w rows (inference mode: 1), average pools their window, softmax /
// cross-entropy the classes. Gradients add the backward reductions along the whole path
// (conv dx kh·kw·cout and dw n·oh·ow, batch norm n·h·w, dense units + n, pools their window)
// to the full forward length, since every gradient depends on the whole forward pass and on
// the backward from the loss down to its layer. A running statistic carries the forward length
// up to its own batch norm.
//
// Gradients (and SGD updates, which are gradient-sized) are compared after dividing both sides
// by s = clamp(RMS of the reference, 1e-3, 1): the absolute part of the tolerance assumes O(1)
// values, and deep layers' gradients have RMS ~1e-2, where it would hide errors of tens of
// percent. s ≤ 1, so this only tightens; the 1e-3 floor stops gradients that vanish
// mathematically (a conv bias under a training-mode batch norm: ~1e-8 of rounding noise on
// both sides) from being magnified into noise comparisons.
//
// Optimizer steps compare the update per unit of learning rate, (p_after − p_before) / lr,
// which is O(1) whatever lr is (comparing p_after alone would hide a small lr's update
// inside the tolerance), with the gradients' reduction length.
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';

import { type Model, models, Tensor } from '../../lib/index.js';
import type { CompileOptions } from '../../lib/train/optimizers.js';
import type { ModelSpec } from '../../lib/model/spec.js';
import { expectClose, reportWorstRatios } from '../support/compare.js';
import { expectCloseNamed, expectCloseScaled, reductionLengths } from '../support/reduction_lengths.js';
import { Rng } from '../support/random.js';
import { tf } from '../support/tf.js';
import { copyWeightsToTfjs, type TfWithLayers, tfjsModelFromSpec, tfjsVariables } from '../support/tfjs_from_spec.mjs';

reportWorstRatios(import.meta.url);

const tfx = { ...tf, ...tfl } as unknown as TfWithLayers;

// ---------------------------------------------------------------------------------------
// Models

/** ResNet-18's torchvision layout at reduced width: 7×7/2 stem (8 filters, pad 3), BN, ReLU, 3×3/2 max-pool (pad 1), 4 × 2 basic blocks. */
function smallResnet18(seed: number): Model {
  return models.resnet({
    name: 'resnet18_small',
    classes: 5,
    inputShape: [32, 32, 3],
    seed,
    block: 'basic',
    stem: [
      { type: 'conv2d', filters: 8, kernelSize: 7, strides: 2, padding: 3 },
      { type: 'batchNorm' },
      { type: 'relu' },
      { type: 'maxPool', poolSize: 3, strides: 2, padding: 1 },
    ],
    stages: [8, 16, 32, 64].map((width, i) => ({ blocks: 2, width, stride: i === 0 ? 1 : 2 })),
  });
}

interface Case {
  label: string;
  make: (seed: number) => Model;
  /** Batch size. */
  n: number;
  /** Also check the gradients under label smoothing 0.1. */
  smoothing?: boolean;
}

const CASES: Case[] = [
  { label: 'resnetCifar20', make: (seed) => models.resnetCifar({ depth: 20, inputShape: [16, 16, 3], seed }), n: 2 },
  { label: 'resnetCifar20 convBias', make: (seed) => models.resnetCifar({ depth: 20, inputShape: [16, 16, 3], seed, convBias: true }), n: 2 },
  // Batch 4: the last stage's maps are 1×1, so its batch norms see n rows (2 would leave x̂ = ±1 and an ill-conditioned backward).
  { label: 'resnet18 small', make: smallResnet18, n: 4, smoothing: true },
];

// ---------------------------------------------------------------------------------------
// Helpers

/**
 * Batch-norm gammas and running variances in [0.5, 1.5), betas and running means in ±0.5;
 * conv and dense biases (where present) in ±0.2. Returns the running statistics set.
 */
function randomizeParameters(model: Model, rng: Rng): Map<string, Float32Array> {
  const stats = new Map<string, Float32Array>();
  for (const layer of model.spec.layers) {
    const n = layer.name;
    if (layer.type === 'batchNorm') {
      const c = model.getParameter(`${n}.weight`).length;
      model.setParameter(
        `${n}.weight`,
        Float32Array.from(rng.array(c, 0.5), (v) => 1 + v),
      );
      model.setParameter(`${n}.bias`, rng.array(c, 0.5));
      const mean = rng.array(c, 0.5);
      const variance = Float32Array.from(rng.array(c, 0.5), (v) => 1 + v);
      model.setParameter(`${n}.running_mean`, mean);
      model.setParameter(`${n}.running_var`, variance);
      stats.set(`${n}.running_mean`, mean);
      stats.set(`${n}.running_var`, variance);
    } else if ((layer.type === 'conv2d' || layer.type === 'dense') && layer.useBias) {
      model.setParameter(`${n}.bias`, rng.array(model.getParameter(`${n}.bias`).length, 0.2));
    }
  }
  return stats;
}

/** Output shape of a tfjs layer without the batch dimension. */
function layerShape(net: tfl.LayersModel, name: string): number[] {
  return (net.getLayer(name).outputShape as (number | null)[]).slice(1) as number[];
}

/** 'conv.weight', 'bn.bias', 'fc.weight', … : the kind of a parameter, to group worst ratios. */
function parameterKind(spec: Readonly<ModelSpec>, name: string): string {
  const layer = spec.layers.find((l) => name.startsWith(`${l.name}.`));
  const suffix = layer === undefined ? name : name.slice(layer.name.length + 1);
  const type = layer === undefined ? '?' : layer.type === 'batchNorm' ? 'bn' : layer.type === 'conv2d' ? 'conv' : layer.type;
  return `${type}.${suffix}`;
}

/** The batch: uniform ±1 images and random labels. */
function batch(rng: Rng, n: number, model: Model): { xData: Float32Array; x: Tensor; tx: tf.Tensor4D; labels: Int32Array; onehot: tf.Tensor2D } {
  const shape = [n, ...model.inputShape] as [number, number, number, number];
  const xData = rng.array(shape.reduce((a, b) => a * b, 1));
  const labels = rng.labels(n, model.classes);
  return {
    xData,
    x: Tensor.fromArray(xData, shape),
    tx: tf.tensor4d(xData, shape),
    labels,
    onehot: tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), model.classes), 'float32') as tf.Tensor2D,
  };
}

/** tfjs: mean softmax cross-entropy of the model in training mode, its gradients (keyed by our names), and the batch accuracy. */
function tfLossAndGradients(
  net: tfl.LayersModel,
  vars: Map<string, tf.Variable>,
  names: readonly string[],
  tx: tf.Tensor4D,
  onehot: tf.Tensor2D,
  labels: Int32Array,
  labelSmoothing: number,
): { loss: number; accuracy: number; grads: Map<string, tf.Tensor> } {
  let logits: tf.Tensor2D | undefined;
  const { value, grads } = tf.variableGrads(
    () => {
      const y = net.apply(tx, { training: true }) as tf.Tensor2D;
      logits = tf.keep(y);
      return tf.losses.softmaxCrossEntropy(onehot, y, undefined, labelSmoothing, tf.Reduction.MEAN) as tf.Scalar;
    },
    names.map((name) => vars.get(name)!),
  );
  const predicted = tf.argMax(logits!, 1).dataSync();
  let correct = 0;
  labels.forEach((label, i) => {
    if (predicted[i] === label) correct++;
  });
  const byName = new Map<string, tf.Tensor>();
  for (const name of names) byName.set(name, grads[vars.get(name)!.name]!);
  const loss = value.dataSync()[0]!;
  value.dispose();
  logits!.dispose();
  return { loss, accuracy: correct / labels.length, grads: byName };
}

/** A model with random batch-norm parameters and its tfjs twin holding the same values. */
function twin(make: (seed: number) => Model, seed: number, rng: Rng): { model: Model; net: tfl.LayersModel; stats: Map<string, Float32Array> } {
  const model = make(seed);
  const stats = randomizeParameters(model, rng);
  const net = tfjsModelFromSpec(tfx, model.spec);
  copyWeightsToTfjs(tf, model, net, model.spec);
  return { model, net, stats };
}

function trainableNames(model: Model): string[] {
  return model
    .parameterInfo()
    .filter((p) => p.trainable)
    .map((p) => p.name);
}

// ---------------------------------------------------------------------------------------
// Forward and gradients

describe('models match tfjs-layers: forward (inference mode) and every parameter gradient (training mode)', () => {
  CASES.forEach((c, ci) => {
    it(`${c.label}: predict logits and softmax`, async () => {
      const rng = new Rng(0xf0f0 + ci);
      const { model, net } = twin(c.make, 11 + ci, rng);
      const { x, tx } = batch(rng, c.n, model);
      const L = reductionLengths(model.spec, (name) => layerShape(net, name), c.n, false);

      const logits = await model.predict(x);
      const probs = await model.predict(x, { softmax: true });
      const tLogits = net.predict(tx) as tf.Tensor2D;
      const tProbs = tf.softmax(tLogits);
      expect(logits.shape).toEqual([c.n, model.classes]);
      expect(probs.shape).toEqual([c.n, model.classes]);
      const expected = tLogits.dataSync();
      // The comparison means something only when the logits are O(1) and differ between classes.
      const spread = Math.max(...expected) - Math.min(...expected);
      expect(spread).toBeGreaterThan(0.1);
      expectClose(`${c.label} logits`, logits.toFloat32Array(), expected, L.forward);
      expectClose(`${c.label} softmax`, probs.toFloat32Array(), tProbs.dataSync(), L.forward + model.classes);
      tf.dispose([tx, tLogits, tProbs]);
      net.dispose();
    });

    const smoothings = c.smoothing ? [0, 0.1] : [0];
    for (const smoothing of smoothings) {
      it(`${c.label}: loss, accuracy and all parameter gradients${smoothing > 0 ? `, label smoothing ${smoothing}` : ''}`, async () => {
        const rng = new Rng(0x9a9a + ci * 16 + smoothing * 10);
        const { model, net } = twin(c.make, 21 + ci, rng);
        const { x, tx, labels, onehot } = batch(rng, c.n, model);
        const L = reductionLengths(model.spec, (name) => layerShape(net, name), c.n, true);
        const names = trainableNames(model);
        const vars = tfjsVariables(net, model.spec);

        const ours = await model.computeGradients(x, labels, smoothing > 0 ? { labelSmoothing: smoothing } : {});
        const ref = tfLossAndGradients(net, vars, names, tx, onehot, labels, smoothing);

        const tag = `${c.label}${smoothing > 0 ? ' smoothed' : ''}`;
        expectClose(`${tag} loss`, [ours.loss], [ref.loss], L.forward + model.classes);
        expect(ours.accuracy).toBe(ref.accuracy);
        expect([...ours.gradients.keys()].sort()).toEqual([...names].sort());
        for (const name of names) {
          const g = ours.gradients.get(name)!;
          const t = ref.grads.get(name)!;
          expectCloseScaled(`${tag} grad ${parameterKind(model.spec, name)}`, name, g, t.dataSync(), L.gradient);
        }
        tf.dispose([tx, onehot, ...ref.grads.values()]);
        net.dispose();
      });
    }
  });
});

// ---------------------------------------------------------------------------------------
// Optimizer steps

/** The reference update of one step, given tfjs's gradients (keyed by our names) at the current tfjs variables. */
type ReferenceUpdate = (grads: Map<string, tf.Tensor>, vars: Map<string, tf.Variable>, names: readonly string[]) => void;

/** tfjs optimizers index their state by position, so the gradient map is built in one fixed order. */
function tfjsOptimizerUpdate(optimizer: tf.Optimizer): ReferenceUpdate {
  return (grads, vars, names) => {
    const named: tf.NamedTensorMap = {};
    for (const name of names) named[vars.get(name)!.name] = grads.get(name)!;
    optimizer.applyGradients(named);
  };
}

/**
 * AdamW (Loshchilov & Hutter, PyTorch's form) in float64:
 * p ← p·(1 − lr·wd) − lr·m̂/(√v̂ + ε), with no decay on 1-D parameters (batch norm, biases: our compile default).
 */
function adamwClosedForm(o: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number }): ReferenceUpdate {
  const m = new Map<string, Float64Array>();
  const v = new Map<string, Float64Array>();
  let t = 0;
  return (grads, vars, names) => {
    t++;
    for (const name of names) {
      const variable = vars.get(name)!;
      const g = grads.get(name)!.dataSync();
      const p = variable.dataSync();
      const mi = m.get(name) ?? new Float64Array(g.length);
      const vi = v.get(name) ?? new Float64Array(g.length);
      m.set(name, mi);
      v.set(name, vi);
      const decay = variable.shape.length > 1 ? o.weightDecay : 0;
      const out = new Float32Array(p.length);
      for (let i = 0; i < p.length; i++) {
        mi[i] = o.beta1 * mi[i]! + (1 - o.beta1) * g[i]!;
        vi[i] = o.beta2 * vi[i]! + (1 - o.beta2) * g[i]! * g[i]!;
        const mHat = mi[i]! / (1 - o.beta1 ** t);
        const vHat = vi[i]! / (1 - o.beta2 ** t);
        out[i] = p[i]! * (1 - o.lr * decay) - (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
      }
      variable.assign(tf.tensor(out, variable.shape));
    }
  };
}

interface StepCase {
  label: string;
  compile: CompileOptions;
  lr: number;
  reference: () => ReferenceUpdate;
}

// ε = 1e-3 rather than PyTorch's 1e-8. With 1e-8, the few weights whose gradient lies within a
// few ε of zero (a handful among ~30k) turn rounding-level gradient differences (~5e-9) into
// update differences of ~3e-3 per unit of lr, since d/dg g/(|g| + ε) = ε/(|g| + ε)²: a test of
// float noise (worst ratios 0.43 and 0.58 measured). 1e-3 keeps every element well conditioned,
// and makes ε's placement (added to the bias-corrected √v̂) visible.
const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-3 };
const STEP_CASES: StepCase[] = [
  {
    label: 'SGD momentum 0.9',
    compile: { optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 } },
    lr: 0.1,
    reference: () => tfjsOptimizerUpdate(tf.train.momentum(0.1, 0.9, false)),
  },
  {
    label: 'SGD Nesterov 0.9',
    compile: { optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true } },
    lr: 0.1,
    reference: () => tfjsOptimizerUpdate(tf.train.momentum(0.1, 0.9, true)),
  },
  {
    label: 'AdamW weightDecay 0',
    compile: { optimizer: { type: 'adamw', lr: 0.01, weightDecay: 0, ...ADAM } },
    lr: 0.01,
    reference: () => tfjsOptimizerUpdate(tf.train.adam(0.01, ADAM.beta1, ADAM.beta2, ADAM.eps)),
  },
  {
    label: 'AdamW weightDecay 0.1',
    compile: { optimizer: { type: 'adamw', lr: 0.01, weightDecay: 0.1, ...ADAM } },
    lr: 0.01,
    reference: () => adamwClosedForm({ lr: 0.01, weightDecay: 0.1, ...ADAM }),
  },
];

describe('trainStep matches tfjs optimizers and the AdamW closed form; running statistics follow PyTorch', () => {
  // ResNet-8 (one basic block per stage) on 8×8 inputs, batch 4: every stage strides or projects.
  const make = (seed: number): Model => models.resnetCifar({ depth: 8, inputShape: [8, 8, 3], classes: 4, seed });
  const n = 4;
  const steps = 2;

  STEP_CASES.forEach((sc, si) => {
    it(`${sc.label}: ${steps} steps, every parameter, loss and batch-norm running statistics`, async () => {
      const rng = new Rng(0x57e9 + si);
      const { model, net, stats } = twin(make, 31 + si, rng);
      model.compile(sc.compile);
      const reference = sc.reference();
      const names = trainableNames(model);
      const vars = tfjsVariables(net, model.spec);
      const L = reductionLengths(model.spec, (name) => layerShape(net, name), n, true);
      const bnLayers = model.spec.layers.filter((l) => l.type === 'batchNorm').map((l) => l.name);
      // The inputs of every batch norm, in training mode (earlier batch norms on batch statistics).
      const bnInputs = tfx.model({ inputs: net.inputs, outputs: bnLayers.map((b) => net.getLayer(b).input as tfl.SymbolicTensor) });
      const running = new Map<string, Float64Array>([...stats].map(([k, v]) => [k, Float64Array.from(v)]));
      const momentum = 0.1;

      for (let step = 1; step <= steps; step++) {
        const { x, tx, labels, onehot } = batch(rng, n, model);
        const tag = `${sc.label} step ${step}`;

        // Expected running statistics, from the batch moments of each batch norm's input.
        const inputs = bnInputs.apply(tx, { training: true }) as tf.Tensor4D[];
        bnLayers.forEach((b, i) => {
          const input = inputs[i]!;
          const rows = input.size / input.shape[3];
          const { mean, variance } = tf.moments(input, [0, 1, 2]);
          const bm = mean.dataSync();
          const bv = variance.dataSync();
          const rm = running.get(`${b}.running_mean`)!;
          const rv = running.get(`${b}.running_var`)!;
          for (let j = 0; j < rm.length; j++) {
            rm[j] = (1 - momentum) * rm[j]! + momentum * bm[j]!;
            rv[j] = (1 - momentum) * rv[j]! + (momentum * bv[j]! * rows) / (rows - 1);
          }
          tf.dispose([mean, variance]);
        });
        tf.dispose(inputs);

        const ref = tfLossAndGradients(net, vars, names, tx, onehot, labels, 0);
        const oursBefore = new Map(names.map((name) => [name, model.getParameter(name)]));
        const tfBefore = new Map(names.map((name) => [name, vars.get(name)!.dataSync().slice()]));

        const metrics = await model.trainStep(x, labels);
        reference(ref.grads, vars, names);

        expectClose(`${sc.label} loss`, [metrics.loss], [ref.loss], L.forward + model.classes);
        expect(metrics.accuracy, `${tag} accuracy`).toBe(ref.accuracy);
        for (const name of names) {
          const before = oursBefore.get(name)!;
          const after = model.getParameter(name);
          const tBefore = tfBefore.get(name)!;
          const tAfter = vars.get(name)!.dataSync();
          const update = Float64Array.from(after, (a, i) => (a - before[i]!) / sc.lr);
          const tUpdate = Float64Array.from(tAfter, (a, i) => (a - tBefore[i]!) / sc.lr);
          const kind = parameterKind(model.spec, name);
          expectCloseScaled(`${sc.label} update/lr ${kind}`, `${tag} ${name}`, update, tUpdate, L.gradient);
          expectCloseNamed(`${sc.label} value ${kind}`, `${tag} ${name}`, after, tAfter, L.gradient);
        }
        // A running statistic carries the reductions up to its batch norm (whose own are its rows).
        for (const b of bnLayers) {
          for (const stat of ['running_mean', 'running_var']) {
            const name = `${b}.${stat}`;
            expectCloseNamed(`${sc.label} ${stat}`, `${tag} ${name}`, model.getParameter(name), running.get(name)!, L.at.get(b)!);
          }
        }
        tf.dispose([tx, onehot, ...ref.grads.values()]);
      }
      net.dispose();
    });
  });
});
