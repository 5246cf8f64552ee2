// The global help text (each command's own help lives beside it in lib/cli/<command>.ts).
import { NAME } from './output.js';

export const GLOBAL_HELP = `Usage: ${NAME} <command> [options]

Train and run ResNet image classifiers at native speed.

Commands:
  train     train a model on a dataset; writes <out>/model.safetensors and best.safetensors
  eval      loss, top-1 and top-5 accuracy of a checkpoint on a dataset
  predict   the top-5 classes of image files, with probabilities
  summary   a model's layers, output shapes and parameter counts
  bench     images/s of training and inference on random data
  doctor    which native addon loaded (prebuild or source build), CPU features, threads, CUDA
  report    one HTML page of a run: curves, confusion matrix, per-class F1, misclassified images
  export    write a checkpoint's model as ONNX (onnxruntime, TensorRT, OpenVINO)

Options:
  -h, --help     show this help (or a command's: ${NAME} <command> --help)
  -v, --version  show the version

Example:
  ${NAME} train --model resnet20 --dataset mnist --epochs 4 --out runs/mnist
`;
