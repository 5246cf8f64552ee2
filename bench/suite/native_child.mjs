// One resnet-native measurement in its own process (bench/run.mjs, bench/inference_ab.mjs), so each
// run, and each build's addon (RESNET_NATIVE_ADDON), starts alone: training img/s, inference img/s
// at the workload's batch and batch-1 predict latency per model (bench/suite/native_bench.mjs).
//
//   node bench/suite/native_child.mjs MODELS SECONDS [--no-train] [--quick] [--device NAME]
//
// Prints one JSON line { runtime: { threads, kernels, simd }, models: { name: { train?, infer, latency } } }.
import { runtimeInfo } from '../../dist/index.js';
import { benchNative } from './native_bench.mjs';
import { WORKLOADS } from './workloads.mjs';

const [modelList, secondsArg, ...rest] = process.argv.slice(2);
const opts = { seconds: Number(secondsArg), quick: rest.includes('--quick'), train: !rest.includes('--no-train') };
const d = rest.indexOf('--device');
if (d >= 0) opts.device = rest[d + 1];
const info = runtimeInfo();
const out = { runtime: { threads: info.threads, kernels: info.kernels, simd: info.simd }, models: {} };
for (const name of modelList.split(',')) out.models[name] = await benchNative(name, WORKLOADS[name], opts);
console.log(JSON.stringify(out));
