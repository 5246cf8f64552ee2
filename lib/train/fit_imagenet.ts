// Trainer.fit's ImageNet-style augment options (random-resized-crop, colour jitter, mixup /
// cutmix; validation's resize + centre crop) checked once and split into what the training
// and the validation pipelines pass to augmentBatch.
import { centerCropResize, colorJitterOptions, mixAlpha, randomResizedCropOptions } from '../data/imagenet_augment.js';
import * as validate from '../validate.js';
import type { ImagenetAugment, TrainAugmentOptions } from './batches.js';

/** torchvision's evaluation ratio: Resize(256) then CenterCrop(224). */
const CENTER_CROP_FRACTION = 0.875;

export function fitImagenetAugment(
  augment: TrainAugmentOptions,
  padding: number,
  op: string,
): { train: ImagenetAugment; validation: ImagenetAugment; mixes: boolean } {
  const train: ImagenetAugment = { options: {} };
  const validation: ImagenetAugment = { options: {} };
  const rrc = augment.randomResizedCrop;
  if (rrc !== undefined) {
    if (!validate.isPlainObject(rrc)) validate.invalid(rrc, op, 'augment.randomResizedCrop', 'an object { size, scale, ratio }');
    if (padding !== 0) validate.fail('E_ARG', `${op}: augment.padding cannot be combined with augment.randomResizedCrop`);
    const size = validate.pair(rrc.size, op, 'augment.randomResizedCrop.size');
    const { scale, ratio } = randomResizedCropOptions(rrc, op, 'augment.randomResizedCrop');
    train.outputSize = size;
    train.options.randomResizedCrop = { scale, ratio };
  }
  const cc = augment.centerCrop;
  if (cc !== undefined || train.outputSize) {
    const given = cc === undefined ? {} : cc;
    if (!validate.isPlainObject(given)) validate.invalid(cc, op, 'augment.centerCrop', 'an object { size, resize }');
    const sizeValue = given.size ?? train.outputSize;
    if (sizeValue === undefined) validate.fail('E_ARG', `${op}: augment.centerCrop needs a size (or augment.randomResizedCrop's)`);
    const size = validate.pair(sizeValue, op, 'augment.centerCrop.size');
    const resize =
      given.resize === undefined
        ? Math.round(Math.max(size[0], size[1]) / CENTER_CROP_FRACTION)
        : centerCropResize({ resize: given.resize }, op, size, 'augment.centerCrop');
    validation.outputSize = size;
    validation.options.centerCrop = { resize };
  }
  if (augment.colorJitter !== undefined) {
    colorJitterOptions(augment.colorJitter, op, 'augment.colorJitter'); // checked here, passed on as given
    train.options.colorJitter = augment.colorJitter;
  }
  if (augment.mixup !== undefined) train.options.mixup = { alpha: mixAlpha(augment.mixup, op, 'mixup') };
  if (augment.cutmix !== undefined) train.options.cutmix = { alpha: mixAlpha(augment.cutmix, op, 'cutmix') };
  return { train, validation, mixes: train.options.mixup !== undefined || train.options.cutmix !== undefined };
}
