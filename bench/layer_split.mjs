// Where predict's time goes, per step of the compiled inference plan (Model.profilePredict):
// ResNet-20 at batch 128 and 1, ResNet-50 at batch 16 and 1 by default. Every step is printed
// with its mean ms and share, then the shares summed by op and geometry.
//   npx tsc -p tsconfig.json && node bench/layer_split.mjs [resnet20:128,resnet20:1,resnet50:16,resnet50:1] [runs]
import { runtimeInfo, Tensor } from '../dist/index.js';
import { makeBatch, WORKLOADS } from './suite/workloads.mjs';

const cases = (process.argv[2] ?? 'resnet20:128,resnet20:1,resnet50:16,resnet50:1').split(',').map((c) => {
  const [name, batch] = c.split(':');
  if (!WORKLOADS[name] || !(Number(batch) >= 1)) throw new Error(`bad case '${c}' (want model:batch, model one of ${Object.keys(WORKLOADS)})`);
  return { name, batch: Number(batch) };
});
const runsArg = process.argv[3] === undefined ? undefined : Number(process.argv[3]);

const info = runtimeInfo();
console.log(`threads ${info.threads}, kernels ${info.kernels}, simd ${info.simd}`);
const pct = (share) => `${(100 * share).toFixed(1).padStart(5)} %`;
for (const { name, batch } of cases) {
  const w = WORKLOADS[name];
  const model = w.build({ seed: 1 });
  model.eval();
  const x = Tensor.fromArray(makeBatch(batch, w.inputShape, w.classes, 1).x, [batch, ...w.inputShape]);
  const runs = runsArg ?? (batch === 1 ? 50 : 5);
  const p = await model.profilePredict(x, { runs });
  p.logits.dispose();
  const stepsMs = p.layers.reduce((s, l) => s + l.ms, 0);
  console.log(`\n${name} batch ${batch}: ${p.totalMs.toFixed(3)} ms per predict (${runs} runs), steps ${stepsMs.toFixed(3)} ms`);
  for (const l of p.layers) {
    console.log(`  ${l.name.padEnd(28)} ${l.op.padEnd(26)} ${l.detail.padEnd(30)} ${l.ms.toFixed(3).padStart(8)} ms ${pct(l.share)}`);
  }
  const groups = new Map();
  for (const l of p.layers) {
    const key = `${l.op} ${l.detail}`.trim();
    const g = groups.get(key) ?? { ms: 0, share: 0, count: 0 };
    g.ms += l.ms;
    g.share += l.share;
    g.count += 1;
    groups.set(key, g);
  }
  console.log('  by op and geometry:');
  for (const [key, g] of [...groups].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`    ${key.padEnd(58)} ×${String(g.count).padStart(2)} ${g.ms.toFixed(3).padStart(8)} ms ${pct(g.share)}`);
  }
  x.dispose();
  model.dispose();
}
