// Data: the Dataset interface, the built-in loaders (`datasets.mnist`, `datasets.cifar10`,
// `datasets.cifar100`, `datasets.imageFolder`) and native batch augmentation.
export type { Dataset } from './dataset.js';
export * as datasets from './datasets.js';
export type { MnistOptions, CifarOptions, Cifar100Options, ImageFolderOptions } from './datasets.js';
export { augmentBatch, type AugmentOptions } from './augment.js';
export type { AugmentResult, CenterCropOptions, ColorJitterOptions, MixOptions, RandomResizedCropOptions } from './imagenet_augment.js';
