// The model benchmark suite, CPU: ResNet-20 (CIFAR, batch 128), ResNet-18 and ResNet-50 (224²,
// batch 16) — training img/s beside PyTorch (channels_last; BENCH_TORCH_LAYOUT=contiguous for NCHW), inference
// img/s beside onnxruntime and PyTorch, and batch-1 latency beside onnxruntime and PyTorch.
//
// Fair and repeatable: per model, resnet-native, PyTorch and onnxruntime run alternately, each in
// its own fresh process (no other run of the suite is alive while one is timed), for R rounds in the
// order A B C, C B A, … (bench/suite/rounds.mjs: a load that drifts steadily favours no one). Each
// round's figure is that process's median step; the table gives per figure the median over rounds
// and the spread (min–max), by wall time and by CPU time (images per CPU-second × threads: the
// steadier figure when other processes share the machine), and ours ÷ each reference from the
// medians (> 1: resnet-native is faster; for latency their ms ÷ ours). Every framework gets the same
// thread count: RESNET_NUM_THREADS (default 2) → resnet-native, torch.set_num_threads and
// onnxruntime's intra-op threads. onnxruntime runs the model PyTorch exported once (ONNX, opset 17)
// in processes that never import torch. Writes bench/results/<date>.json. Reports; asserts nothing.
//
//   npm run build:ts   (the suite imports dist/)
//   RESNET_NUM_THREADS=2 npm run bench -- [--rounds 2] [--seconds 5] [--models resnet20,resnet18,resnet50]
//                                         [--python /path/to/python] [--quick] [--tfjs] [--out FILE]
//   npm run bench -- --device cuda     the GPU suite: ResNet-50 batch 256 beside PyTorch (bench/cuda.mjs)
//   npm run bench -- --help            the options
//
// Without a Python that imports torch (and onnxruntime) — CI has none — the run prints a note
// saying so and measures resnet-native alone. About 6 minutes at the defaults on a quiet 2-core
// machine (2 rounds × 3 models × 3 processes); far longer when other work shares the cores.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { exportOnnx, probePython, runNative, runPythonFramework } from './suite/children.mjs';
import { parseOptions, USAGE } from './suite/options.mjs';
import { fmt, ratios, roundsTable, writeJson } from './suite/report.mjs';
import { alternate, summarizeRounds } from './suite/rounds.mjs';
import { SHAPES } from './suite/shapes.mjs';

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
const here = path.dirname(fileURLToPath(import.meta.url));
const started = new Date();
const { threads } = opts;
const environment = {
  command: `node bench/run.mjs${process.argv.length > 2 ? ' ' + process.argv.slice(2).join(' ') : ''}`,
  date: started.toISOString(),
  node: process.version,
  cpu: `${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} logical cores`,
  loadAverage: os.loadavg(),
  threads,
  rounds: opts.rounds,
  seconds: opts.seconds,
  device: opts.device ?? 'cpu (default)',
};
log(`${environment.command}\n${environment.date}  node ${environment.node}  ${environment.cpu}`);
log(`${threads} threads for every framework (RESNET_NUM_THREADS); ${plural(opts.rounds, 'round')}; load average ${fmtLoad(environment.loadAverage)}`);

const py = probePython(opts.python);
const notes = [...py.notes];
let onnxDir;
if (py.onnxruntime) {
  // Exported once, before any timing, so the onnxruntime processes need not import torch.
  onnxDir = mkdtempSync(path.join(os.tmpdir(), 'resnet-bench-onnx-'));
  try {
    log(`exporting ${opts.models.join(', ')} to ONNX for onnxruntime …`);
    exportOnnx(opts.python, opts.models, onnxDir, threads);
  } catch (e) {
    notes.push(`onnxruntime skipped: the ONNX export failed (${e instanceof Error ? e.message.split('\n')[0] : e})`);
    py.onnxruntime = null;
  }
}
for (const n of notes) log(`note: ${n}`);
const frameworks = ['resnet-native', ...(py.torch ? ['pytorch'] : []), ...(py.onnxruntime ? ['onnxruntime'] : [])];
const references = frameworks.slice(1);

let nativeRuntime;
const runs = []; // per run, in sequence order: the load average before it and its wall seconds
const { results, sequence } = alternate(opts.models, frameworks, opts.rounds, (model, framework, round) => {
  const info = { loadAverage: os.loadavg(), seconds: 0 };
  runs.push(info);
  process.stderr.write(`${model} round ${round + 1}/${opts.rounds}: ${framework} … `);
  const t0 = performance.now();
  let r;
  try {
    if (framework === 'resnet-native') {
      const out = runNative({ models: [model], seconds: opts.seconds, quick: opts.quick, device: opts.device, threads });
      nativeRuntime = out.runtime;
      r = out.models[model];
    } else {
      r = runPythonFramework(opts.python, framework, model, { seconds: opts.seconds, quick: opts.quick, threads, onnxDir });
    }
  } catch (e) {
    process.stderr.write(`failed\n`);
    throw e;
  } finally {
    info.seconds = (performance.now() - t0) / 1000;
  }
  const s = (x, unit) => (x ? ` ${unit === 'ms' ? fmt(x.msMedian) : fmt((SHAPES[model].batch * 1000) / x.msMedian)} ${unit}` : '');
  process.stderr.write(
    `${info.seconds.toFixed(0)} s:${r.train ? ` train${s(r.train, 'img/s')},` : ''} infer${s(r.infer, 'img/s')}, batch-1${s(r.latency, 'ms')}\n`,
  );
  return r;
});
if (onnxDir) rmSync(onnxDir, { recursive: true, force: true });
if (nativeRuntime && nativeRuntime.threads !== threads) notes.push(`resnet-native ran ${nativeRuntime.threads} threads, not ${threads}`);

const rows = opts.models.map((model) => {
  const batch = SHAPES[model].batch;
  const summary = {};
  const errors = {};
  for (const f of frameworks) {
    const perRound = results[model][f];
    summary[f] = summarizeRounds(
      perRound.map((r) => (r?.error ? undefined : r)),
      batch,
    );
    const failed = perRound.find((r) => r?.error);
    if (failed) errors[f] = failed.error;
  }
  return { model, batch, inputShape: SHAPES[model].inputShape, summary, errors, ratios: ratios(summary, ['resnet-native'], references) };
});

const versions = {
  'resnet-native': nativeRuntime ? `${nativeRuntime.threads} threads, kernels ${nativeRuntime.kernels}, simd ${nativeRuntime.simd}` : '—',
  ...(py.torch ? { pytorch: `${py.torch} (${process.env.BENCH_TORCH_LAYOUT === 'contiguous' ? 'contiguous NCHW' : 'channels_last'})` } : {}),
  ...(py.onnxruntime ? { onnxruntime: py.onnxruntime } : {}),
};
log(
  `\n${Object.entries(versions)
    .map(([k, v]) => `${k} ${v}`)
    .join('; ')}`,
);
for (const n of notes) log(`note: ${n}`);
log(`\n${roundsTable(rows, ['resnet-native'], references)}\n`);
log(
  `Each cell: ${opts.rounds > 1 ? `the median (min–max) over ${opts.rounds} rounds of each round's median step` : "the round's median step"}.` +
    (references.length
      ? ' ÷ columns: resnet-native ÷ the reference from the medians (latency: their ms ÷ ours); > 1 means resnet-native is faster.'
      : ''),
);
log(`wall time ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s; load average now ${fmtLoad(os.loadavg())}`);

let tfjs;
if (opts.tfjsCpu || opts.tfjsWasm) {
  // Not alternated: tfjs is 10–1000× slower, for orientation only; in this process, after the rounds.
  const { benchTfjs } = await import('./suite/tfjs_bench.mjs');
  const { WORKLOADS } = await import('./suite/workloads.mjs');
  tfjs = {};
  for (const model of opts.models) {
    const w = WORKLOADS[model];
    const net = w.build({ seed: 1 });
    log(`\ntfjs, ${model} (once, not alternated):`);
    tfjs[model] = await benchTfjs(model, w, net, opts, log);
    net.dispose();
    for (const t of tfjs[model]) {
      const parts = t.skipped
        ? [t.skipped]
        : [
            t.infer ? `infer ${fmt(t.infer.imagesPerSecond)} img/s (batch ${t.infer.batch})` : null,
            t.latency ? `batch-1 ${fmt(t.latency.msMedian)} ms` : null,
            t.train ? `train ${fmt(t.train.imagesPerSecond)} img/s (batch ${t.train.batch})` : t.trainError,
          ];
      log(`  ${t.framework}: ${parts.filter(Boolean).join(', ')}`);
    }
  }
}

const file = opts.out ?? path.join(here, 'results', `${started.toISOString().slice(0, 19).replace(/:/g, '-')}.json`);
writeJson(file, {
  environment,
  versions,
  notes,
  frameworks,
  sequence: sequence.map((s, i) => ({ ...s, ...runs[i] })),
  rounds: results,
  summary: Object.fromEntries(
    rows.map((r) => [
      r.model,
      {
        batch: r.batch,
        inputShape: r.inputShape,
        ...r.summary,
        ratios: r.ratios,
        ...(Object.keys(r.errors).length ? { errors: r.errors } : {}),
      },
    ]),
  ),
  ...(tfjs ? { tfjs } : {}),
});
log(`wrote ${path.relative(process.cwd(), file)}`);

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function fmtLoad(l) {
  return l.map((v) => v.toFixed(2)).join(' ');
}
