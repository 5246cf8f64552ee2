// resnet-native: train and run ResNet-family image classifiers at native speed.
export { ResNetError, type ResNetErrorCode } from './errors.js';
export { Tensor } from './tensor.js';
export * as ops from './ops.js';
export { runtimeInfo } from './runtime.js';
