// `resnet-native summary`: a model's layers, output shapes and parameter counts.
import { parse, required } from './args.js';
import { modelChoice, MODELS_HELP, modelShape } from './models.js';
import { NAME, printHelp, say } from './output.js';

export const SUMMARY_HELP = `Usage: ${NAME} summary --model <name> [options]

Prints the model's layers (type, output shape, parameters, inputs) and its totals.

  --model <name>         see below
  --input-shape <h,w,c>  default: 32,32,3 for CIFAR models, 224,224,3 for ImageNet ones
  --classes <n>          default: 10 for CIFAR models, 1000 for ImageNet ones
  -h, --help             show this help

${MODELS_HELP}
`;

export async function run(args: string[]): Promise<void> {
  const { values: v } = parse('summary', args, { model: { type: 'string' }, 'input-shape': { type: 'string' }, classes: { type: 'string' } });
  if (v.help) return printHelp(SUMMARY_HELP);
  const name = required(v, 'model', 'summary');
  const choice = modelChoice(name);
  const model = await choice.build({ ...modelShape(v, choice), seed: 0 });
  try {
    say(model.summary());
  } finally {
    model.dispose();
  }
}
