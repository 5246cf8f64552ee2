// resnet-native: train and run ResNet-family image classifiers at native speed.
export { ResNetError, type ResNetErrorCode } from './errors.js';
export { Tensor } from './tensor.js';
export * as ops from './ops.js';
export { runtimeInfo, allocationStats, cudaStatus, type CudaStatus } from './runtime.js';
export { doctor, formatDoctorReport, type DoctorReport, type CudaDevice, type AddonOrigin } from './doctor.js';
export * as models from './model/models.js';
export {
  Model,
  type ModelInitOptions,
  type Parameter,
  type StepMetrics,
  type TrainStepMetrics,
  type LayerSummary,
  type LossScaleOptions,
} from './model/model.js';
export type { ModelSpec, LayerSpec, LayerType } from './model/spec.js';
export type { Preprocessing, ChannelOrder, ModelDescriptionOptions } from './model/preprocessing.js';
export type { ImagePrediction, PredictImagesOptions } from './model/predict_images.js';
export type { ReplaceHeadOptions } from './model/replace_head.js';
export type { PredictProfile, LayerTime, ProfilePredictOptions } from './model/profile_predict.js';
export type { FreezeOptions, FreezePattern } from './model/freeze.js';
export type { CompileOptions, OptimizerOptions, SgdOptions, AdamWOptions, ParamGroup } from './train/optimizers.js';
export * as schedules from './train/schedules.js';
export { datasets, augmentBatch, type AugmentOptions } from './data/index.js';
export type { Dataset } from './data/dataset.js';
export type { AugmentResult, CenterCropOptions, ColorJitterOptions, MixOptions, RandomResizedCropOptions } from './data/index.js';
export type { LabelMix } from './model/label_mix.js';
export type { OnnxExportOptions, OnnxLayout } from './io/onnx_export.js';
export * as io from './io/index.js';
export { loadModel, loadCheckpoint, loadTorchvision, loadKeras, type SaveModelOptions, type LoadModelOptions, type Checkpoint } from './io/index.js';
export { loadKerasModel, type LoadKerasModelOptions } from './io/index.js';
export {
  Trainer,
  evaluateModel,
  SeededRandom,
  type FitOptions,
  type TrainerOptions,
  type TrainAugmentOptions,
  type NormalizeOptions,
  type EvaluateOptions,
  type EvaluationResult,
  type EpochSchedule,
} from './train/trainer.js';
export {
  earlyStopping,
  checkpoint,
  CHECKPOINT_FILES,
  type Callback,
  type EpochLog,
  type History,
  type BatchLog,
  type TrainContext,
  type TrainerState,
  type EarlyStoppingOptions,
  type CheckpointOptions,
  type MonitorName,
} from './train/callbacks.js';
export { csvLogger, type CsvLoggerOptions } from './train/csv_logger.js';
export { tensorBoard, type TensorBoardOptions } from './train/tensorboard.js';
export * as metrics from './train/metrics.js';
export { Progress, type ProgressMode, type ProgressOptions, type ProgressStream } from './train/progress.js';
