// The built-in dataset loaders, gathered as the `datasets` namespace.
export { mnist, type MnistOptions } from './mnist.js';
export { cifar10, cifar100, type CifarOptions, type Cifar100Options } from './cifar.js';
export { imageFolder, type ImageFolderOptions } from './image_folder.js';
