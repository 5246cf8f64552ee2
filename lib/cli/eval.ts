// `resnet-native eval`: loss, top-1 and top-5 accuracy of a checkpoint on a dataset.
import { applyThreads, DEVICE, deviceOptions, int, oneOf, parse, PLACEMENT_HELP, required, str, THREADS } from './args.js';
import { openCheckpoint, warnNoPreprocessing } from './checkpoints.js';
import { DATA, DATA_HELP, DATASETS, limitDataset, loadDataset, TEST_SUBSET_SEED } from './datasets.js';
import { NAME, printHelp, say } from './output.js';

export const EVAL_HELP = `Usage: ${NAME} eval --checkpoint <file> [options]

Prints loss, top-1 and top-5 accuracy of a checkpoint on a dataset (the input normalisation,
and for --dataset folder the image size and resize rule, are the ones stored in the
checkpoint), per-class precision, recall and F1, and the confusion matrix (up to 20
classes); writes them as JSON.

  --checkpoint <file>    a checkpoint written by train (or saveModel)
${DATA_HELP}
  --split <name>         test (default) | train
  --batch-size <n>       default 256
  --limit <n>            evaluate on n examples only (the same ones as train --test-limit n)
  --json <file>          where the per-class report goes (default: eval.json beside the
                         checkpoint, which \`${NAME} report\` reads)
  --misclassified <n>    keep the n most confidently misclassified images, with
                         thumbnails, in the JSON (default 16)
${PLACEMENT_HELP}
  -h, --help             show this help
`;

export async function run(args: string[]): Promise<void> {
  const { values: v } = parse('eval', args, {
    ...DATA,
    ...THREADS,
    ...DEVICE,
    checkpoint: { type: 'string' },
    split: { type: 'string' },
    'batch-size': { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'string' },
    misclassified: { type: 'string' },
  });
  if (v.help) return printHelp(EVAL_HELP);
  const path = required(v, 'checkpoint', 'eval');
  const datasetName = oneOf(v, 'dataset', DATASETS, 'mnist');
  const split = oneOf(v, 'split', ['test', 'train'] as const, 'test');
  const batchSize = int(v, 'batch-size') ?? 256;
  const limit = int(v, 'limit');
  const jsonPath = str(v, 'json');
  const misclassified = int(v, 'misclassified', 0, 1000) ?? 16;
  applyThreads(v);
  const { evaluateModel } = await import('../train/trainer.js');
  const report = await import('./eval_report.js');
  const { model, normalize, classNames } = await openCheckpoint(path, deviceOptions(v));
  try {
    // A folder of images is read at the size the model was trained at (unless --image-size says otherwise).
    const trainedSize = model.preprocessing?.imageSize ?? [model.inputShape[0]!, model.inputShape[1]!];
    let ds = await loadDataset(v, datasetName, split, 'eval', trainedSize, model.preprocessing?.resizeTo);
    ds = await limitDataset(ds, limit, TEST_SUBSET_SEED);
    if (!normalize) warnNoPreprocessing(path, 'evaluating on raw [0, 1] inputs');
    const t0 = performance.now();
    const r = await evaluateModel(model, ds, { batchSize, ...(normalize ?? {}), confusionMatrix: true, misclassified });
    const seconds = (performance.now() - t0) / 1000;
    say(
      `${datasetName} ${split}: ${r.count} images, loss ${r.loss.toFixed(4)}, accuracy ${r.accuracy.toFixed(4)}` +
        `${r.top5 !== undefined ? `, top-5 ${r.top5.toFixed(4)}` : ''} (${seconds.toFixed(1)} s, ${(r.count / seconds).toFixed(1)} img/s)`,
    );
    const names = report.namesFor(model.classes, classNames, ds.classNames);
    report.printClassReport(r, names);
    const out = jsonPath ?? report.defaultEvalPath(path);
    const content = await report.evalFileContent(r, names, ds, { checkpoint: path, dataset: datasetName, split });
    try {
      await report.writeEvalFile(out, content);
      say(`wrote ${out}`);
    } catch (err) {
      // The default file is a convenience: a read-only run folder must not fail the evaluation.
      if (jsonPath !== undefined) throw err;
      process.stderr.write(`${NAME}: warning: ${(err as Error).message.split('\n')[0]}\n`);
    }
    say(`accuracy: ${r.accuracy.toFixed(4)}`);
  } finally {
    model.dispose();
  }
}
