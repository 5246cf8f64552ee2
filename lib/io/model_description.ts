// A checkpoint's description of its model's inputs and outputs (Model.preprocessing and
// Model.classNames): read from the metadata keys 'preprocessing' and 'classNames', or, in files
// written before those keys existed, from the trainer's state (`normalize`, `imageShape`,
// `classNames`), where the checkpoint callback and the CLI kept them.
import { ResNetError } from '../errors.js';
import { checkClassNames, checkPreprocessing, type Preprocessing } from '../model/preprocessing.js';
import { isPlainObject } from '../validate.js';

export interface StoredDescription {
  preprocessing: Readonly<Preprocessing> | undefined;
  classNames: readonly string[] | undefined;
}

function fmt(path: string, what: string): ResNetError {
  return new ResNetError('E_FORMAT', `checkpoint '${path}': ${what}`);
}

/** JSON.parse, then `check`; any failure is E_FORMAT naming the file and the key. */
function parseChecked<T>(path: string, key: string, text: string, check: (v: unknown) => T): T {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw fmt(path, `metadata '${key}' is not valid JSON (${(err as Error).message})`);
  }
  try {
    return check(v);
  } catch (err) {
    throw fmt(path, `metadata '${key}': ${(err as Error)?.message ?? String(err)}`);
  }
}

const finiteList = (a: unknown, n: number, positive: boolean): a is number[] =>
  Array.isArray(a) && a.length === n && a.every((x) => typeof x === 'number' && Number.isFinite(x) && (!positive || x > 0));

/**
 * The trainer's state of an older file, read leniently (as the CLI always did: a malformed
 * entry is ignored, not an error): its normalisation at its image shape, and its class names.
 */
function legacyDescription(training: Record<string, unknown> | undefined, inputShape: readonly number[], classes: number): StoredDescription {
  const channels = inputShape[2]!;
  const normalize = training?.normalize;
  const shape = training?.imageShape;
  let preprocessing: Readonly<Preprocessing> | undefined;
  if (isPlainObject(normalize) && finiteList(normalize.mean, channels, false) && finiteList(normalize.std, channels, true)) {
    // The training images' size (the trainer stored it beside), else the model's input size.
    const size =
      Array.isArray(shape) && shape.length === 3 && shape.every((x) => Number.isSafeInteger(x) && (x as number) >= 1)
        ? [shape[0] as number, shape[1] as number]
        : [inputShape[0]!, inputShape[1]!];
    try {
      // The training images were resized to cover the size and centre-cropped (imageFolder's
      // default), which for a square size is "shorter side to that size, then crop".
      preprocessing = checkPreprocessing(
        { imageSize: size, resizeTo: Math.max(size[0]!, size[1]!), channelOrder: 'rgb', mean: normalize.mean, std: normalize.std },
        channels,
        'checkpoint',
      );
    } catch {
      preprocessing = undefined;
    }
  }
  const names = training?.classNames;
  let classNames: readonly string[] | undefined;
  try {
    classNames = names === undefined ? undefined : checkClassNames(names, classes, 'checkpoint');
  } catch {
    classNames = undefined;
  }
  return { preprocessing, classNames };
}

/**
 * What the file says of the model's inputs and class names: its 'preprocessing' and
 * 'classNames' metadata (E_FORMAT when present and malformed), else the older trainer state's.
 */
export function storedDescription(
  path: string,
  meta: Record<string, string>,
  training: Record<string, unknown> | undefined,
  inputShape: readonly number[],
  classes: number,
): StoredDescription {
  const channels = inputShape[2]!;
  const legacy = legacyDescription(training, inputShape, classes);
  const preprocessing =
    meta.preprocessing === undefined
      ? legacy.preprocessing
      : parseChecked(path, 'preprocessing', meta.preprocessing, (v) => checkPreprocessing(v, channels, 'preprocessing'));
  const classNames =
    meta.classNames === undefined
      ? legacy.classNames
      : parseChecked(path, 'classNames', meta.classNames, (v) => checkClassNames(v, classes, 'classNames'));
  return { preprocessing, classNames };
}
