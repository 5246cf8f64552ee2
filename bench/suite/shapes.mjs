// The benchmarked workloads' input size, classes and batch, without the addon (bench/run.mjs's
// parent process loads no model code; workloads.mjs adds the builders).
export const SHAPES = {
  resnet20: { inputShape: [32, 32, 3], classes: 10, batch: 128, note: "Keras' CIFAR-10 ResNet-20 v1" },
  resnet18: { inputShape: [224, 224, 3], classes: 1000, batch: 16, note: 'torchvision resnet18' },
  resnet50: { inputShape: [224, 224, 3], classes: 1000, batch: 16, note: 'torchvision resnet50 (v1.5)' },
};
