// `resnet-native export`: a checkpoint's model in a format other runtimes read (ONNX).
import { DEFAULT_OPSET, MAX_OPSET, MIN_OPSET } from '../io/onnx_export.js';
import { applyThreads, int, oneOf, parse, required, str, THREADS, UsageError } from './args.js';
import { openCheckpoint } from './checkpoints.js';
import { NAME, printHelp, say } from './output.js';

export const EXPORT_HELP = `Usage: ${NAME} export --checkpoint <file> --format onnx --out <file> [options]

Writes the checkpoint's model as an ONNX inference graph (onnxruntime, TensorRT, OpenVINO, …):
input 'input', outputs 'logits' and 'probabilities' (softmax). Batch-norms that follow a
convolution are folded into it. Decoding, resizing and cropping images stay outside the graph.

  --checkpoint <file>      a checkpoint written by train (or saveModel)
  --format onnx            the output format (only onnx so far)
  --out <file>             the file to write (replaced atomically)
  --opset <n>              ONNX operator set, 13 to 21 (default 17)
  --batch dynamic|<n>      the input's batch dimension: any size (default) or exactly n
  --layout NHWC|NCHW       the input's layout (default NHWC, as predict takes images)
  --include-preprocessing  the input is images scaled to [0, 1] (RGB); the graph applies the
                           model's channel order and mean / std (from the checkpoint)
  --threads <n>            native threads (default: all cores)
  -h, --help               show this help
`;

export async function run(args: string[]): Promise<void> {
  const { values: v } = parse('export', args, {
    ...THREADS,
    checkpoint: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string' },
    opset: { type: 'string' },
    batch: { type: 'string' },
    layout: { type: 'string' },
    'include-preprocessing': { type: 'boolean' },
  });
  if (v.help) return printHelp(EXPORT_HELP);
  const path = required(v, 'checkpoint', 'export');
  required(v, 'format', 'export');
  oneOf(v, 'format', ['onnx'] as const, 'onnx');
  const out = required(v, 'out', 'export');
  const opset = int(v, 'opset', MIN_OPSET, MAX_OPSET) ?? DEFAULT_OPSET;
  const batchText = str(v, 'batch');
  const batch = batchText === undefined || batchText === 'dynamic' ? 'dynamic' : batchNumber(v);
  const layout = oneOf(v, 'layout', ['NHWC', 'NCHW'] as const, 'NHWC');
  const includePreprocessing = v['include-preprocessing'] === true;
  applyThreads(v);

  const { model, normalize, classNames } = await openCheckpoint(path);
  try {
    if (model.classNames === undefined && classNames) model.classNames = classNames;
    if (includePreprocessing && model.preprocessing === undefined) {
      if (!normalize) {
        throw new UsageError(
          `--include-preprocessing: the checkpoint '${path}' says nothing about input normalisation (no preprocessing, no training normalize); export without it`,
        );
      }
      const [height, width] = model.inputShape as [number, number, number];
      model.preprocessing = { imageSize: [height, width], channelOrder: 'rgb', mean: normalize.mean, std: normalize.std };
    }
    await model.exportOnnx(out, { opset, batch, layout, includePreprocessing });
    const [h, w, c] = model.inputShape;
    const dims = layout === 'NHWC' ? [batch, h, w, c] : [batch, c, h, w];
    say(
      `wrote ${out}: ONNX opset ${opset}, input 'input' [${dims.join(', ')}] ${layout}, outputs 'logits', 'probabilities' [${batch}, ${model.classes}]`,
    );
  } finally {
    model.dispose();
  }
}

function batchNumber(v: Record<string, string | boolean | undefined>): number {
  const text = str(v, 'batch')!;
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--batch must be 'dynamic' or an integer ≥ 1, got '${text}'`);
  return int(v, 'batch', 1, 1 << 20)!;
}
