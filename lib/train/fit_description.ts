// What Trainer.fit tells the model about its inputs. After fit, model.preprocessing and
// model.classNames describe the images the weights were trained on, so that every file saved
// from the run (the checkpoint callback, model.save, the CLI) predicts on image files as
// training saw them.
//
// The rule:
// - mean / std: when fit got none (neither augment nor normalize), the model's own
//   preprocessing supplies them (a pretrained model's ImageNet statistics, a resumed run's);
//   without either, the inputs stay in [0, 1] (mean 0, std 1).
// - preprocessing: kept when it already says what fit feeds (RGB, same image size, mean and
//   std: its resizeTo stays, e.g. a pretrained model's 256 → 224 crop); otherwise replaced by
//   { imageSize: the dataset's, resizeTo: its larger side (the dataset's images were resized to
//   cover that size and centre-cropped, as imageFolder does), channelOrder: 'rgb', mean, std };
//   with randomResizedCrop, the crop's size and validation's centre-crop resize instead (the
//   model takes crops of the stored images).
//   Datasets hold RGB images and fit feeds them as they are, so a 'bgr' model (Keras' caffe
//   weights) is described as 'rgb' after fit, with its statistics reordered to match.
// - classNames: the dataset's, when it has one name per class of the model; otherwise the
//   model's stay.
import type { Model } from '../model/model.js';
import type { Preprocessing } from '../model/preprocessing.js';
import type { FitPlan } from './fit_setup.js';

const sameList = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, i) => Math.fround(x) === Math.fround(b[i]!));

/** Applies the rule above to `model` and `plan` (its mean / std when the caller gave none). */
export function describeTrainingInputs(model: Model, plan: FitPlan): void {
  const channels = plan.ds.imageShape[2];
  const current = model.preprocessing;
  if (!plan.normalizeGiven && current && current.mean.length === channels) {
    // A 'bgr' model's statistics are in its channel order; the dataset's channels are RGB.
    const order = current.channelOrder === 'bgr' ? (a: readonly number[]) => [...a].reverse() : (a: readonly number[]) => [...a];
    plan.mean = order(current.mean);
    plan.std = order(current.std);
  }
  // With random-resized-crops the model takes the crops: validation's centre crop of the stored
  // images (resized so their shorter side is centerCrop.resize) is what predicting must do.
  const crop = plan.imagenet.validation;
  const [height, width] = crop.outputSize ?? plan.ds.imageShape;
  const fits =
    current !== undefined &&
    current.channelOrder === 'rgb' &&
    current.imageSize[0] === height &&
    current.imageSize[1] === width &&
    sameList(current.mean, plan.mean) &&
    sameList(current.std, plan.std);
  if (!fits) {
    const described: Preprocessing = {
      imageSize: [height, width],
      resizeTo: crop.options.centerCrop?.resize ?? Math.max(height, width),
      channelOrder: 'rgb',
      mean: [...plan.mean],
      std: [...plan.std],
    };
    model.preprocessing = described;
  }
  const names = plan.ds.classNames;
  if (names && names.length === model.classes) {
    const differs = !model.classNames || model.classNames.some((n, i) => n !== names[i]);
    if (differs) model.classNames = [...names];
  }
}
