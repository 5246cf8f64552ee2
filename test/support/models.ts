// The tiny model most tests train: resnetCifar depth 8 (one basic block per stage) on small RGB
// images — ~78k parameters at 8×8, a few ms a step. One builder instead of a copy per file.
import { type Model, models } from '../../lib/index.js';

export interface TinyModelOptions {
  /** Output classes; the builder's default (10) when left out. */
  classes?: number;
  /** Image height and width (the images have 3 channels). Default 8. */
  side?: number;
}

/** An uncompiled resnetCifar depth 8 on side×side×3 images. */
export function tinyModel(seed = 1, { classes, side = 8 }: TinyModelOptions = {}): Model {
  return models.resnetCifar({ depth: 8, inputShape: [side, side, 3], ...(classes === undefined ? {} : { classes }), seed });
}

/** tinyModel with 4 classes, compiled with SGD (lr 0.05, momentum 0.9). */
export function tinySgd(seed = 1): Model {
  return tinyModel(seed, { classes: 4 }).compile({ optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 } });
}
