// ResNet-family model builders: pure functions from options to a ModelSpec (spec.ts). No
// native code is involved; the engine compiles the spec later. resnetSpec() is the one
// generic builder; every named builder (resnet18 … resnetCifar) is a preset of it.
//
// Layer naming (torchvision module names where torchvision has the module, so weight import
// is a lookup; every name is unique, the first layer reads 'input'):
//   stem        'imagenet': conv1, bn1, relu, maxpool        'cifar': conv1, bn1, relu
//               explicit stems: conv{k}, bn{k} (k counts that kind from 1); relu, maxpool,
//               pad, stem_avgpool for the first of their kind, then relu2, maxpool2, pad2, …;
//               a descriptor's own `name` overrides.
//   blocks      prefix layer{i}.{j}: i = stage from 1, j = block in the stage from 0.
//               post-activation (basic, bottleneck):
//                 {p}.conv1, {p}.bn1, {p}.relu1, {p}.conv2, {p}.bn2, [{p}.relu2, {p}.conv3, {p}.bn3],
//                 [{p}.se], shortcut, {p}.add, {p}.relu
//               pre-activation (preactBasic, preactBottleneck): bn{k}/relu{k} precede conv{k}:
//                 [{p}.bn1, {p}.relu1,] {p}.conv1, {p}.bn2, {p}.relu2, {p}.conv2, [{p}.bn3, {p}.relu3, {p}.conv3],
//                 [{p}.se], shortcut, {p}.add            (no ReLU after the add)
//               shortcut: {p}.downsample.0 (1×1 conv), {p}.downsample.1 (its batch-norm, if any);
//                 parameter-free shortcuts (zero-pad, 1×1 max-pool subsampling) are {p}.shortcut;
//                 identity shortcuts add no layer.
//   after the stages (pre-activation models): post_bn, post_relu   (Keras ResNetV2's names)
//   head        avgpool (global or windowed average pool) | head_maxpool, flatten,
//               fc_hidden{k} + fc_hidden{k}_relu (hidden dense layers, k from 1), fc (the logits).
//
// The code is split: builder_options.ts (option types and their checks), build_resnet.ts
// (the generic builder) and presets.ts (the named ResNets); this module is their public face.

export type {
  BlockType,
  Size2,
  StemConvOptions,
  StemBatchNormOptions,
  StemReluOptions,
  PoolWindowOptions,
  StemPoolOptions,
  StemZeroPadOptions,
  StemLayerOptions,
  StemOptions,
  HeadOptions,
  StageOptions,
  SqueezeExciteOptions,
  ResNetOptions,
  ResNetPresetOptions,
  ResNetV1Options,
  ResNetCifarOptions,
} from './builder_options.js';
export { resnetSpec } from './build_resnet.js';
export {
  resnet18,
  resnet34,
  resnet50,
  resnet101,
  resnet152,
  resnet50v2,
  resnet101v2,
  resnet152v2,
  resnext50_32x4d,
  resnext101_32x8d,
  resnext101_64x4d,
  wideResnet50_2,
  wideResnet101_2,
  seResnet50,
  resnetCifar,
} from './presets.js';
