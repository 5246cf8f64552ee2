// npm run test:fast — the quick tier: the whole suite except the slow files listed here, for the
// edit-test loop (under 2 minutes on the 2-core machine). `npm test` (what CI runs) still runs
// everything. The list comes from per-file durations on that machine (the JSON report,
// build/test-report/vitest.json): a file goes in SLOW when it takes about 10 s or more on its own.
// Its report goes to build/test-report/fast/ so it never replaces the full run's.
import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';

import base from './vitest.config.js';

export const SLOW = [
  // every builder, whole models against tfjs (measured 49 s and 32 s)
  'test/model/models.test.ts',
  'test/model/model_vs_tfjs.test.ts',
  // torchvision / Keras imports, seeded fuzzing, hostile option values (13–24 s each)
  'test/io/import.test.ts',
  'test/io/fuzz_import.test.ts',
  // seeded .pth fuzzing (22 s)
  'test/io/fuzz_pth.test.ts',
  // models.pretrained end to end: a 23 MB resnet18 .pth served, loaded twice (13 s)
  'test/model/pretrained.test.ts',
  'test/io/fuzz_checkpoint.test.ts',
  'test/io/fuzz_data.test.ts',
  'test/io/fuzz_images.test.ts',
  // ONNX export of every family run in onnxruntime (wasm), full resnet18 and resnet50 (~45 s)
  'test/io/onnx_export.test.ts',
  'test/train/hostile_options.test.ts',
  // Keras .keras / .h5 files against Keras, and their fuzzing (HDF5 in a worker; 10–30 s each)
  'test/io/keras_files.test.ts',
  'test/io/fuzz_keras.test.ts',
  // worker threads, child processes, plans at scale, memory budgets (15–34 s each)
  'test/native/workers.test.ts',
  'test/native/kernels_vs_reference.test.ts',
  'test/native/winograd4_vs_reference.test.ts', // 512-channel 3×3 convolutions on the reference kernels (~45 s)
  'test/native/plan_scaling.test.ts',
  'test/native/memory_budget.test.ts',
  // the CLI end to end, pack + install into an empty project, MNIST training (10–18 s each)
  'test/package/cli.test.ts',
  'test/package/cli_images.test.ts',
  'test/package/cli_export.test.ts',
  'test/package/cli_train_options.test.ts', // train --resume / --log runs (about 40 s)
  'test/package/pack_install.test.ts',
  // train --freeze end to end (14 s)
  'test/package/cli_freeze.test.ts',
  // train --weights from a local mirror, fine-tune on a folder, predict (about 45 s)
  'test/package/cli_finetune.test.ts',
  'test/data/mnist_convergence.test.ts',
  // train → eval → report through the CLI, then the page in headless Chromium (about 18 s)
  'test/package/report.test.ts',
];

export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [...configDefaults.exclude, ...SLOW],
      outputFile: { json: 'build/test-report/fast/vitest.json' },
    },
  }),
);
