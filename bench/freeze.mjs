// Fine-tuning step time: ResNet-50 with everything but layer4 and fc frozen (Model.freeze) beside
// the same model with nothing frozen, one SGD-momentum trainStep each (forward + backward +
// update), measured alternately (full, frozen, full, frozen, …) in one process — these machines
// drift — and reported as medians and their ratio. The frozen model's backward stops at
// layer4 (a frozen prefix runs no backward at all) and its optimizer updates layer4 and fc only.
// Reports; asserts nothing.
//
//   npm run compile && RESNET_NUM_THREADS=2 node bench/freeze.mjs [options]
//
//   --model M      a models.* builder taking { classes, inputShape } (default resnet50)
//   --size S       image side (default 224)
//   --batch N      batch size (default 8)
//   --rounds R     alternating rounds, one timed step of each model per round (default 5)
//   --freeze G     the frozen layers, as train --freeze takes them (default 'conv1,bn1,layer[1-3]')
//   --bn update    frozen batch-norms follow batch statistics (default: on their running ones)
import { models, runtimeInfo, Tensor } from '../dist/index.js';

const argv = process.argv.slice(2);
function option(name, fallback, parse = Number) {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value`);
  const parsed = parse(v);
  if (typeof parsed === 'number' && !Number.isFinite(parsed)) throw new Error(`${name}: not a number: ${v}`);
  return parsed;
}
const known = ['--model', '--size', '--batch', '--rounds', '--freeze', '--bn'];
for (const [i, a] of argv.entries()) {
  if (a.startsWith('--') && !known.includes(a)) throw new Error(`unknown option ${a} (known: ${known.join(', ')})`);
  if (!a.startsWith('--') && !(i > 0 && known.includes(argv[i - 1]))) throw new Error(`unexpected argument ${a}`);
}
const modelName = option('--model', 'resnet50', String);
const size = option('--size', 224);
const batch = option('--batch', 8);
const rounds = option('--rounds', 5);
const pattern = option('--freeze', 'conv1,bn1,layer[1-3]', String);
const bnMode = option('--bn', 'frozen', String);
const CLASSES = 10;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function build() {
  const m = models[modelName]({ classes: CLASSES, inputShape: [size, size, 3], seed: 1 });
  return m.compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 } });
}

const full = build();
const frozen = build().freeze(pattern, { batchNormStatistics: bnMode });
const x = Tensor.fromArray(
  Float32Array.from({ length: batch * size * size * 3 }, (_, i) => Math.sin(i * 0.37)),
  [batch, size, size, 3],
);
const y = Int32Array.from({ length: batch }, (_, i) => i % CLASSES);

// Wall time, and the process's CPU time (user + system, all threads): on a machine shared with
// other work the wall time includes waiting for a core; the CPU time counts only our work (plus
// the thread pool's brief spinning).
async function step(model) {
  const cpu = process.cpuUsage();
  const t = performance.now();
  await model.trainStep(x, y);
  const used = process.cpuUsage(cpu);
  return { wall: (performance.now() - t) / 1000, cpu: (used.user + used.system) / 1e6 };
}

const info = runtimeInfo();
console.log(
  `${modelName} ${size}×${size} batch ${batch}, ${info.threads} threads (${info.simd}); frozen: ${frozen.frozen.length} of ` +
    `${frozen.spec.layers.length} layers ('${pattern}', batch-norms ${bnMode}), ` +
    `${frozen.frozenParameters().length} parameter tensors`,
);
// One untimed step each: compiles the plans and packs the weights.
await step(full);
await step(frozen);
const s = frozen.network.stats();
console.log(`frozen model: ${s.backwardSteps} of ${s.planSteps} fused steps run backward`);
const times = { full: [], frozen: [] };
for (let r = 0; r < rounds; r++) {
  times.full.push(await step(full));
  times.frozen.push(await step(frozen));
  const [f, z] = [times.full.at(-1), times.frozen.at(-1)];
  console.log(`round ${r + 1}: full ${f.wall.toFixed(3)} s (cpu ${f.cpu.toFixed(3)} s), frozen ${z.wall.toFixed(3)} s (cpu ${z.cpu.toFixed(3)} s)`);
}
for (const key of ['wall', 'cpu']) {
  const mf = median(times.full.map((t) => t[key]));
  const mz = median(times.frozen.map((t) => t[key]));
  console.log(
    `median ${key} time per step: full ${mf.toFixed(3)} s (${(batch / mf).toFixed(2)} img/s), frozen ${mz.toFixed(3)} s ` +
      `(${(batch / mz).toFixed(2)} img/s); frozen / full = ${(mz / mf).toFixed(3)} (saves ${((1 - mz / mf) * 100).toFixed(1)} %)`,
  );
}
full.dispose();
frozen.dispose();
x.dispose();
