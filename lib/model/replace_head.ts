// model.replaceHead: the same network with a new classifier, for fine-tuning on other classes.
// Native networks are compiled from their spec, so the result is a new Model built from the
// spec with the output dense layer resized, every other parameter (batch-norm running
// statistics included) copied over bit for bit, and the new layer as the initialiser made it.
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';
import type { Model, ModelInitOptions } from './model.js';
import type { ModelSpec } from './spec.js';

export interface ReplaceHeadOptions {
  /** Outputs of the new classifier. */
  classes: number;
  /** One name per new class. Default: none. */
  classNames?: readonly string[];
  /** Seed of the new classifier's initial weights. Default: random. */
  seed?: number;
}

/** The spec with its output dense layer (and `classes`) changed to `classes` outputs. */
function headSpec(spec: Readonly<ModelSpec>, classes: number, op: string): ModelSpec {
  const out = structuredClone(spec) as ModelSpec;
  const head = out.layers.find((l) => l.name === out.output);
  if (!head || head.type !== 'dense') {
    throw new ResNetError(
      'E_ARG',
      `${op}: model '${spec.name}' ends in ${head ? `a ${head.type} layer` : 'no layer'} ('${spec.output}'), not a dense classifier`,
    );
  }
  head.units = classes;
  out.classes = classes;
  return out;
}

/** See Model.replaceHead; `build` is Model.fromSpec (passed in: this module imports no Model). */
export function replaceHead(model: Model, options: ReplaceHeadOptions, build: (spec: ModelSpec, init: ModelInitOptions) => Model): Model {
  const op = 'replaceHead';
  if (!validate.isPlainObject(options)) validate.invalid(options, op, 'options', 'an object { classes, classNames?, seed? }');
  validate.keys(options, op, ['classes', 'classNames', 'seed']);
  const classes = validate.integer(options.classes, op, 'classes', 1, 1 << 24);
  if (model.isDisposed) throw new ResNetError('E_DISPOSED', `${op}: the model was disposed`);
  const spec = headSpec(model.spec, classes, op);
  const init: ModelInitOptions = { device: model.device, precision: model.precision };
  if (options.seed !== undefined) init.seed = validate.integer(options.seed, op, 'seed', 0, 2 ** 53 - 1);
  const fresh = build(spec, init);
  try {
    const prefix = `${spec.output}.`;
    for (const p of model.parameterInfo()) {
      if (!p.name.startsWith(prefix)) fresh.setParameter(p.name, model.getParameter(p.name));
    }
    if (!model.training) fresh.eval();
    if (model.preprocessing) fresh.preprocessing = model.preprocessing;
    if (options.classNames !== undefined) fresh.classNames = options.classNames;
    return fresh;
  } catch (err) {
    fresh.dispose();
    throw err;
  }
}
