// Inference A/B: one or more resnet-native builds beside onnxruntime, alternated (bench/suite/rounds.mjs:
// per model, each round runs every build and onnxruntime, each in its own process, in the order
// A B C, then C B A, …), on ResNet-20 CIFAR batch 128 and ResNet-18 / ResNet-50 224² batch 16:
// inference img/s at that batch (wall and CPU time) and batch-1 latency. Prints, per model and
// framework, the median over rounds of each round's median step with the spread (min–max), and
// each build ÷ onnxruntime from the medians; writes the JSON. npm run bench (bench/run.mjs) is the
// same with training and PyTorch; this one is for comparing builds.
//
//   RESNET_NUM_THREADS=2 node bench/inference_ab.mjs \
//     --addon before=/work/main/build/Release/resnet_native.node \
//     --addon after=build-infer/Release/resnet_native.node [--rounds 2] [--seconds 3] \
//     [--models resnet20,resnet18,resnet50] [--python /work/venv/bin/python] [--out FILE]
//
// The thread count is RESNET_NUM_THREADS (default 2), given to onnxruntime as intra-op threads.
// Without a Python that has torch and onnxruntime, the builds run alone (with a note).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { exportOnnx, probePython, runNative, runPythonFramework } from './suite/children.mjs';
import { ratios, roundsTable, writeJson } from './suite/report.mjs';
import { alternate, summarizeRounds } from './suite/rounds.mjs';
import { SHAPES } from './suite/shapes.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const addons = [];
const opt = { rounds: 2, seconds: 3, models: 'resnet20,resnet18,resnet50', python: process.env.BENCH_PYTHON ?? 'python3', out: undefined };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const v = args[i + 1];
  if (v === undefined) throw new Error(`${a} needs a value`);
  i++;
  if (a === '--addon') {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new Error('--addon LABEL=PATH');
    addons.push({ label: v.slice(0, eq), path: path.resolve(v.slice(eq + 1)) });
  } else if (a === '--rounds') opt.rounds = Number(v);
  else if (a === '--seconds') opt.seconds = Number(v);
  else if (a === '--models') opt.models = v;
  else if (a === '--python') opt.python = v;
  else if (a === '--out') opt.out = v;
  else throw new Error(`unknown option ${a}`);
}
if (addons.length === 0) throw new Error('give at least one --addon LABEL=PATH');
if (new Set(addons.map((a) => a.label)).size !== addons.length || addons.some((a) => a.label === 'onnxruntime')) {
  throw new Error('--addon labels must be distinct and not "onnxruntime"');
}
if (!(Number.isInteger(opt.rounds) && opt.rounds >= 1)) throw new Error('--rounds must be an integer ≥ 1');
if (!(opt.seconds >= 0)) throw new Error('--seconds must be a number ≥ 0');
const models = opt.models.split(',');
for (const m of models) if (!SHAPES[m]) throw new Error(`--models: unknown model '${m}' (known: ${Object.keys(SHAPES).join(', ')})`);
const threads = Number(process.env.RESNET_NUM_THREADS || 2);

const started = new Date();
const loads = [os.loadavg()];
const py = probePython(opt.python);
for (const n of py.notes) console.error(`note: ${n}`);
let onnxDir;
if (py.onnxruntime) {
  onnxDir = mkdtempSync(path.join(os.tmpdir(), 'resnet-bench-onnx-'));
  exportOnnx(opt.python, models, onnxDir, threads);
}
const builds = addons.map((a) => a.label);
const references = py.onnxruntime ? ['onnxruntime'] : [];
const frameworks = [...builds, ...references];
const runtimes = {};
const { results, sequence } = alternate(models, frameworks, opt.rounds, (model, f, r) => {
  console.error(`${model} round ${r + 1}: ${f} …`);
  if (f === 'onnxruntime') return runPythonFramework(opt.python, 'onnxruntime', model, { seconds: opt.seconds, threads, onnxDir });
  const out = runNative({ models: [model], seconds: opt.seconds, train: false, addon: addons.find((a) => a.label === f).path, threads });
  runtimes[f] = out.runtime;
  return out.models[model];
});
if (onnxDir) rmSync(onnxDir, { recursive: true, force: true });
loads.push(os.loadavg());

const rows = models.map((model) => {
  const summary = {};
  const errors = {};
  for (const f of frameworks) {
    summary[f] = summarizeRounds(
      results[model][f].map((r) => (r?.error ? undefined : r)),
      SHAPES[model].batch,
    );
    const failed = results[model][f].find((r) => r?.error);
    if (failed) errors[f] = failed.error;
  }
  return { model, batch: SHAPES[model].batch, summary, errors };
});
console.log(
  [
    `${threads} threads each; ${opt.rounds} rounds alternated per model (${frameworks.join(', ')}); onnxruntime ${py.onnxruntime ?? '—'}`,
    `load average before / after: ${loads.map((l) => l.map((v) => v.toFixed(1)).join(' ')).join(' | ')}`,
    '',
    roundsTable(rows, builds, references),
  ].join('\n'),
);
const file = opt.out ?? path.join(here, 'results', `${started.toISOString().slice(0, 19).replace(/:/g, '-')}-inference-ab.json`);
writeJson(file, {
  date: started.toISOString(),
  threads,
  addons,
  runtimes,
  onnxruntime: py.onnxruntime,
  notes: py.notes,
  loads,
  sequence,
  rounds: results,
  summary: Object.fromEntries(rows.map((r) => [r.model, { ...r.summary, ratios: ratios(r.summary, builds, references), errors: r.errors }])),
});
console.error(`wrote ${path.relative(process.cwd(), file)}`);
