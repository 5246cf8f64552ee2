// `resnet-native bench`: images/s of training and inference on random data.
import { applyThreads, DEVICE, deviceOptions, int, parse, PLACEMENT_HELP, str, THREADS } from './args.js';
import { modelChoice, modelShape } from './models.js';
import { NAME, printHelp, say } from './output.js';

export const BENCH_HELP = `Usage: ${NAME} bench [options]

Measures images/s of trainStep (forward, backward, SGD update) and of predict on random data.

  --model <name>         default resnet20 (see summary --help)
  --input-shape <h,w,c>  default: 32,32,3 for CIFAR models, 224,224,3 for ImageNet ones
  --classes <n>          default: 10 / 1000
  --batch-size <n>       default 128
  --steps <n>            timed steps of each (default 10, after 2 untimed ones)
  --quick                a short smoke run, as npm run bench -- --quick: batch 16, 3 timed
                         steps after 1 untimed (--batch-size / --steps still apply)
${PLACEMENT_HELP}
  -h, --help             show this help
`;

export async function run(args: string[]): Promise<void> {
  const { values: v } = parse('bench', args, {
    ...THREADS,
    ...DEVICE,
    model: { type: 'string' },
    'input-shape': { type: 'string' },
    classes: { type: 'string' },
    'batch-size': { type: 'string' },
    steps: { type: 'string' },
    quick: { type: 'boolean' },
  });
  if (v.help) return printHelp(BENCH_HELP);
  const name = str(v, 'model') ?? 'resnet20';
  const choice = modelChoice(name);
  const { inputShape, classes } = modelShape(v, choice);
  const quick = v.quick === true;
  const batchSize = int(v, 'batch-size') ?? (quick ? 16 : 128);
  const steps = int(v, 'steps') ?? (quick ? 3 : 10);
  const warmup = quick ? 1 : 2;
  applyThreads(v);
  const [{ Tensor }, { runtimeInfo }, { SeededRandom }, validate] = await Promise.all([
    import('../tensor.js'),
    import('../runtime.js'),
    import('../train/trainer.js'),
    import('../validate.js'),
  ]);
  const model = await choice.build({ classes, inputShape, seed: 1, ...deviceOptions(v) });
  const rng = new SeededRandom(1);
  const data = validate.allocate(Float32Array, batchSize * inputShape[0] * inputShape[1] * inputShape[2], 'bench', 'the input batch');
  for (let i = 0; i < data.length; i++) data[i] = rng.next() * 2 - 1;
  const labels = new Int32Array(batchSize);
  for (let i = 0; i < batchSize; i++) labels[i] = rng.nextInt(classes);
  const x = Tensor.fromArray(data, [batchSize, ...inputShape]);
  try {
    model.compile({ optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 5e-4 } });
    const info = runtimeInfo();
    say(
      `${model.name}: input [${inputShape.join(', ')}], ${classes} classes, ${model.paramCount().toLocaleString('en-US')} parameters; batch ${batchSize}, ${model.device === 'cpu' ? `${info.threads} threads (${info.simd})` : `${model.device} ${model.precision}`}`,
    );
    const time = async (what: string, step: () => Promise<unknown>) => {
      for (let i = 0; i < warmup; i++) await step();
      const t0 = performance.now();
      for (let i = 0; i < steps; i++) await step();
      const seconds = (performance.now() - t0) / 1000;
      say(
        `${what.padEnd(8)} ${((steps * batchSize) / seconds).toFixed(1).padStart(9)} img/s  (${((seconds / steps) * 1000).toFixed(1)} ms per batch of ${batchSize})`,
      );
    };
    await time('train', () => model.trainStep(x, labels));
    await time('predict', async () => (await model.predict(x)).dispose());
  } finally {
    x.dispose();
    model.dispose();
  }
}
