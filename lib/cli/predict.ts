// `resnet-native predict`: the top classes of image files, with probabilities. The answers are
// model.predictImages' (one code path: lib/model/predict_images.ts), printed as they come.
import { applyThreads, DEVICE, deviceOptions, int, parse, PLACEMENT_HELP, required, THREADS, UsageError } from './args.js';
import { openCheckpoint, warnNoPreprocessing } from './checkpoints.js';
import { NAME, printHelp, say } from './output.js';

export const PREDICT_HELP = `Usage: ${NAME} predict --checkpoint <file> [options] <image> [<image> …]

Decodes each image (PNG, JPEG, WebP or GIF) as the checkpoint's preprocessing says (resize,
centre crop, normalisation) and prints its top classes with their probabilities.

  --checkpoint <file>    a checkpoint written by train (or model.save)
  --top <k>              how many classes to print (default 5)
${PLACEMENT_HELP}
  -h, --help             show this help
`;

/** How many images predict sends through the model at once. */
const PREDICT_BATCH = 64;

/** One answer line: rank, class name, probability (6 decimals: predictImages' value to 1e-6). */
export function formatPrediction(rank: number, className: string, probability: number): string {
  return `  ${rank}. ${className.padEnd(12)} ${probability.toFixed(6)}`;
}

export async function run(args: string[]): Promise<void> {
  const { values: v, positionals: files } = parse(
    'predict',
    args,
    { ...THREADS, ...DEVICE, checkpoint: { type: 'string' }, top: { type: 'string' } },
    true,
  );
  if (v.help) return printHelp(PREDICT_HELP);
  const path = required(v, 'checkpoint', 'predict');
  if (files.length === 0) throw new UsageError(`predict needs at least one image file (see ${NAME} predict --help)`);
  const top = int(v, 'top', 1) ?? 5;
  applyThreads(v);
  const { predictImageBatches } = await import('../model/predict_images.js');
  const { model } = await openCheckpoint(path, deviceOptions(v));
  try {
    if (!model.preprocessing) {
      const [h, w] = model.inputShape;
      warnNoPreprocessing(path, `predicting on images resized to cover ${w}×${h} with raw [0, 1] values`);
    }
    await predictImageBatches(model, files, { topK: top, batchSize: PREDICT_BATCH }, 'predict', (i, predictions) => {
      say(files[i]!);
      predictions.forEach((e, rank) => say(formatPrediction(rank + 1, e.className, e.probability)));
    });
  } finally {
    model.dispose();
  }
}
