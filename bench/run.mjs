// The model benchmark suite: resnet-native training / inference img/s and batch-1 latency for
// ResNet-20 (CIFAR, batch 128), ResNet-18 and ResNet-50 (224², batch 16), beside tfjs (cpu,
// wasm) and, when Python has them, PyTorch and onnxruntime — all in this one run, as ratios.
// Prints a table and writes bench/results/<date>.json. Reports; asserts nothing.
//
//   npm run compile && npm run bench -- [--models resnet20,resnet18] [--quick] [--device cpu] …
//   npm run bench -- --device cuda     the GPU suite: ResNet-50 batch 256 beside PyTorch (bench/cuda.mjs)
//   (npm run bench -- --help lists the options)
//
// Leave RESNET_NUM_THREADS unset to use every core; PyTorch and onnxruntime get the same count.
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { runtimeInfo } from '../dist/index.js';
import { benchNative } from './suite/native_bench.mjs';
import { parseOptions, USAGE } from './suite/options.mjs';
import { benchPython } from './suite/python_bench.mjs';
import { fmt, table, writeJson } from './suite/report.mjs';
import { benchTfjs } from './suite/tfjs_bench.mjs';
import { WORKLOADS } from './suite/workloads.mjs';

const opts = parseOptions(process.argv.slice(2));
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
if (opts.device?.startsWith('cuda')) {
  // The GPU suite: ResNet-50 at batch 256 (bench/cuda.mjs) beside PyTorch on the same GPU
  // (bench/pytorch_cuda.py), each in its own process so they never share the device.
  const { spawnSync } = await import('node:child_process');
  const here = path.dirname(fileURLToPath(import.meta.url));
  const stamp = new Date().toISOString().slice(0, 10);
  const outDir = path.join(here, 'results');
  const steps = opts.quick ? '4' : '10';
  const ours = spawnSync(
    process.execPath,
    [
      path.join(here, 'cuda.mjs'),
      '--model',
      'resnet50',
      '--batch',
      '256',
      '--steps',
      steps,
      '--modes',
      'fp32,tf32,fp16,bf16',
      '--device',
      opts.device,
      '--json',
      path.join(outDir, `${stamp}-cuda-resnet-native.json`),
    ],
    { stdio: 'inherit' },
  );
  // Mixed precision is implemented on the GPU (fp16 / bf16 activations, fp32 weights and optimizer
  // state): the fp16 and bf16 rows above are resnet-native's, beside PyTorch's AMP below.
  const python = opts.python ?? process.env.BENCH_PYTHON ?? 'python3';
  const probe = spawnSync(python, ['-c', 'import torch, torchvision; assert torch.cuda.is_available()'], { stdio: 'ignore' });
  if (probe.status === 0) {
    spawnSync(
      python,
      [
        path.join(here, 'pytorch_cuda.py'),
        '--model',
        'resnet50',
        '--batch',
        '256',
        '--steps',
        steps,
        '--modes',
        'fp32,tf32,amp',
        '--json',
        path.join(outDir, `${stamp}-cuda-pytorch.json`),
      ],
      { stdio: 'inherit' },
    );
  } else {
    console.log(`PyTorch on the GPU: skipped (${python} has no torch/torchvision with CUDA)`);
  }
  process.exit(ours.status ?? 1);
}
const log = (s) => console.log(s);
const info = runtimeInfo();
const started = new Date();
const environment = {
  command: `node bench/run.mjs${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}`,
  date: started.toISOString(),
  node: process.version,
  cpu: `${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} logical cores`,
  loadAverage: os.loadavg(),
  native: info,
  device: opts.device ?? 'cpu (default)',
};
log(`${environment.command}\n${environment.date}  node ${environment.node}  ${environment.cpu}`);
log(
  `resnet-native: ${info.threads} threads, kernels ${info.kernels}, simd ${info.simd}; load average ${environment.loadAverage.map((v) => v.toFixed(2)).join(' ')}`,
);

// Python first, in its own process, so it never competes with our threads.
log('\nPyTorch / onnxruntime:');
const python = benchPython(opts.python, opts.models, info.threads, opts);
if (!python.available) log(`  skipped: ${python.reason}`);
else {
  log(
    `  torch ${python.torch?.version ?? '—'} (${python.torch?.threads} threads), onnxruntime ${python.onnxruntime?.version ?? `— (${python.onnxruntimeError})`}`,
  );
}

const results = [];
for (const name of opts.models) {
  const w = WORKLOADS[name];
  log(`\n${name}: ${w.note}, ${w.inputShape.join('×')}, batch ${w.batch}`);
  const native = await benchNative(name, w, opts);
  log(
    `  resnet-native: train ${fmt(native.train.imagesPerSecond)} img/s, infer ${fmt(native.infer.imagesPerSecond)} img/s, ` +
      `batch-1 ${fmt(native.latency.msMedian)} ms (${fmt(native.flopsPerImage / 1e9)} GFLOP/image forward)`,
  );
  const frameworks = [native];
  if (python.available) {
    const p = python.models?.[name] ?? {};
    frameworks.push({ framework: 'pytorch', ...(p.pytorch ?? { skipped: 'no result' }) });
    frameworks.push({
      framework: 'onnxruntime',
      trainError: 'inference only',
      ...(p.onnxruntime ?? { skipped: p.onnxruntimeError ?? python.onnxruntimeError ?? 'no result' }),
    });
  } else {
    frameworks.push({ framework: 'pytorch / onnxruntime', skipped: python.reason });
  }
  if (opts.tfjsCpu || opts.tfjsWasm) {
    const model = w.build({ seed: 1 });
    frameworks.push(...(await benchTfjs(name, w, model, opts, log)));
    model.dispose();
  }
  results.push({ model: name, batch: w.batch, inputShape: w.inputShape, frameworks });
}

log(`\n${table(results)}\n`);
const here = path.dirname(fileURLToPath(import.meta.url));
const file = opts.out ?? path.join(here, 'results', `${started.toISOString().slice(0, 19).replace(/:/g, '-')}.json`);
writeJson(file, {
  environment,
  python: python.available ? { torch: python.torch, onnxruntime: python.onnxruntime } : { skipped: python.reason },
  results,
});
log(`wrote ${path.relative(process.cwd(), file)}`);
