// The `io` namespace: checkpoints (save / load / resume) and the safetensors format under them.
export {
  saveModel,
  loadModel,
  loadCheckpoint,
  loadWeightsInto,
  snapshotModel,
  writeCheckpoint,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  type TrainingState,
  type SaveModelOptions,
  type LoadModelOptions,
  type LoadWeightsOptions,
  type Checkpoint,
  type CheckpointSnapshot,
} from './checkpoint.js';
export { TorchFile, type TorchEntry } from './torch_file.js';
export { fetchWeights, weightsDir, type FetchWeightsOptions } from './weights_cache.js';
export {
  SafetensorsReader,
  readSafetensors,
  writeSafetensors,
  encodeSafetensors,
  decodeSafetensors,
  parseSafetensorsHeader,
  float16ToFloat32,
  bfloat16ToFloat32,
  toFloat32,
  dtypeSize,
  isSafetensorsDtype,
  MAX_HEADER_BYTES,
  type SafetensorsDtype,
  type SafetensorsArray,
  type SafetensorsEntry,
  type SafetensorsHeader,
  type SafetensorsTensor,
  type SafetensorsTensorInput,
} from './safetensors.js';
export { loadTorchvision, type LoadTorchvisionOptions, type LoadTorchvisionResult } from './torchvision.js';
export { loadKeras, type LoadKerasOptions, type LoadKerasResult, type KerasEpsilonMismatch } from './keras.js';
export { decodeImage, decodeImages, type DecodeImageOptions, type ImageSource, type ImageModel } from './decode_image.js';
export { type OnnxExportOptions, type OnnxLayout } from './onnx_export.js';
export { loadKerasModel, loadKerasModelWithInfo, type LoadKerasModelOptions, type KerasModelInfo } from './keras_model.js';
export { describeFile, wrongFormatError, type FileDescription, type FileKind } from './file_kind.js';
