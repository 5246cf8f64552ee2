// Inference A/B: one or more resnet-native builds beside onnxruntime, alternated in one run
// (each round runs every build and onnxruntime, each in its own process, the order rotated per round), on ResNet-20 CIFAR
// batch 128 and ResNet-18 / ResNet-50 224² batch 16: inference img/s at that batch and batch-1
// latency. Prints, per model and framework, the median over rounds of each round's median step
// with the spread (min–max over rounds), and each build's ratio to onnxruntime; writes the JSON.
//
//   RESNET_NUM_THREADS=2 node bench/inference_ab.mjs \
//     --addon before=/work/main/build/Release/resnet_native.node \
//     --addon after=build-infer/Release/resnet_native.node [--rounds 2] [--seconds 3] \
//     [--models resnet20,resnet18,resnet50] [--python /work/venv/bin/python] [--out FILE]
//
// The thread count is RESNET_NUM_THREADS (default 2), given to onnxruntime as intra-op threads.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { median } from './suite/timing.mjs';
import { fmt, writeJson } from './suite/report.mjs';

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
const threads = Number(process.env.RESNET_NUM_THREADS ?? 2);
const env = { ...process.env, RESNET_NUM_THREADS: String(threads) };

function runNative(addon) {
  const out = execFileSync(process.execPath, [path.join(here, 'suite', 'infer_child.mjs'), opt.models, String(opt.seconds)], {
    encoding: 'utf8',
    env: { ...env, RESNET_NATIVE_ADDON: addon.path },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return JSON.parse(out.trim().split('\n').at(-1)).models;
}

function runOnnxruntime() {
  const script = path.join(here, 'python_reference.py');
  const a = [script, '--models', opt.models, '--threads', String(threads), '--seconds', String(opt.seconds), '--onnxruntime-only'];
  const out = execFileSync(opt.python, a, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  const r = JSON.parse(out.trim().split('\n').at(-1));
  const models = {};
  for (const [name, m] of Object.entries(r.models)) models[name] = m.onnxruntime ?? { error: m.onnxruntimeError };
  return { version: r.onnxruntime?.version, models };
}

const started = new Date();
const loads = [os.loadavg()];
const frameworks = [...addons.map((a) => a.label), 'onnxruntime'];
const rounds = [];
let ortVersion;
for (let r = 0; r < opt.rounds; r++) {
  // Each round starts one place later in the list, so no framework always runs first or last.
  const round = {};
  for (let k = 0; k < frameworks.length; k++) {
    const f = frameworks[(k + r) % frameworks.length];
    console.error(`round ${r + 1}: ${f} …`);
    if (f === 'onnxruntime') {
      const ort = runOnnxruntime();
      ortVersion = ort.version;
      round.onnxruntime = ort.models;
    } else {
      round[f] = runNative(addons.find((a) => a.label === f));
    }
  }
  rounds.push(round);
  loads.push(os.loadavg());
}

// Per model, framework and measure: each round's median step time (ms), then their median and range.
const models = opt.models.split(',');
const summary = {};
for (const m of models) {
  summary[m] = {};
  for (const f of frameworks) {
    const per = (key, field = 'msMedian') => rounds.map((r) => r[f]?.[m]?.[key]?.[field]).filter((v) => v !== undefined);
    const infer = per('infer');
    const latency = per('latency');
    const cpu = per('infer', 'cpuImagesPerSecond');
    summary[m][f] = {
      // images per CPU-second × threads (bench/suite/timing.mjs): steadier than wall time on a shared machine
      inferCpuImagesPerSecond: { median: median(cpu), rounds: cpu },
      inferMs: { median: median(infer), min: Math.min(...infer), max: Math.max(...infer), rounds: infer },
      latencyMs: { median: median(latency), min: Math.min(...latency), max: Math.max(...latency), rounds: latency },
    };
  }
}

const batchOf = { resnet20: 128, resnet18: 16, resnet50: 16 };
const lines = [
  `${threads} threads each; ${opt.rounds} rounds alternated (${frameworks.join(', ')}); onnxruntime ${ortVersion ?? '—'}`,
  `load average before / after each round: ${loads.map((l) => l.map((v) => v.toFixed(1)).join(' ')).join(' | ')}`,
  '',
  '| model | framework | infer img/s (median, range) | ÷ onnxruntime | by CPU time: img/s | ÷ onnxruntime | batch-1 ms (median, range) | onnxruntime ÷ it |',
  '|---|---|---|---|---|---|---|---|',
];
for (const m of models) {
  const b = batchOf[m];
  const ort = summary[m].onnxruntime;
  for (const f of frameworks) {
    const s = summary[m][f];
    const ips = (ms) => (b * 1000) / ms;
    const self = f === 'onnxruntime';
    lines.push(
      `| ${m} (batch ${b}) | ${f} | ${fmt(ips(s.inferMs.median))} (${fmt(ips(s.inferMs.max))}–${fmt(ips(s.inferMs.min))}) | ` +
        `${self ? '' : (ort.inferMs.median / s.inferMs.median).toFixed(2) + '×'} | ` +
        `${fmt(s.inferCpuImagesPerSecond.median)} | ` +
        `${self ? '' : (s.inferCpuImagesPerSecond.median / ort.inferCpuImagesPerSecond.median).toFixed(2) + '×'} | ` +
        `${fmt(s.latencyMs.median)} (${fmt(s.latencyMs.min)}–${fmt(s.latencyMs.max)}) | ` +
        `${self ? '' : (ort.latencyMs.median / s.latencyMs.median).toFixed(2) + '×'} |`,
    );
  }
}
console.log(lines.join('\n'));
const file = opt.out ?? path.join(here, 'results', `${started.toISOString().slice(0, 19).replace(/:/g, '-')}-inference-ab.json`);
writeJson(file, { date: started.toISOString(), threads, addons, onnxruntime: ortVersion, loads, rounds, summary });
console.error(`wrote ${path.relative(process.cwd(), file)}`);
