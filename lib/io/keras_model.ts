// io.loadKerasModel: a Model built from a Keras file's own config, with its weights.
//
// The converter walks Keras' functional graph (keras.ts flattens nested models into one list
// in topological order) and emits our ModelSpec, layer by layer, keeping Keras' layer names
// (so that the weights then load by name with loadKeras' checks):
//
//   InputLayer                 the network input ([h, w, c] from its batch_shape)
//   Conv2D                     conv2d (padding, strides, dilation, groups, bias; a 'relu'
//                              activation becomes a relu after it)
//   BatchNormalization         batchNorm on the channel axis, with its epsilon; Keras' momentum
//                              m (weight of the old statistics) is our 1 − m
//   ZeroPadding2D, MaxPooling2D, AveragePooling2D ('valid'), GlobalAveragePooling2D,
//   Flatten, Add (two or more inputs), Activation('relu'), ReLU (plain), Dense
//   Activation('linear'), Dropout, SpatialDropout2D   nothing at inference
//   softmax                    on the last layer only (Dense's activation or an Activation
//                              layer): dropped, because our models output logits; the result
//                              says so (`outputActivation`), and predict(x, { softmax: true })
//                              gives Keras' probabilities
//   Rescaling                  reading the input only: folded into model.preprocessing, on the
//                              assumption that Keras' input is 0–255 pixel values (what the
//                              keras.io examples and keras.applications feed), so the model's
//                              own input is the rescaled tensor
//
// Any other layer, or one of these with a setting we do not compute (channels_first, a ReLU
// with max_value, 'same' average pooling, …), is E_FORMAT naming the layer and its class.
//
// keras.applications' ResNet50/101/152 (v1) and ResNet50V2/101V2/152V2 leave preprocessing to
// `preprocess_input`, outside the model: caffe-style BGR mean subtraction for v1, x / 127.5 − 1
// for v2. A config recognisably from keras.applications (the model's name and its layer names)
// gets that as model.preprocessing; any other model's preprocessing is unknown (undefined) but
// for a Rescaling layer.
import { ResNetError } from '../errors.js';
import { Model, type ModelInitOptions } from '../model/model.js';
import type { Preprocessing } from '../model/preprocessing.js';
import type { LayerSpec, ModelSpec, SpecPadding } from '../model/spec.js';
import * as validate from '../validate.js';
import { type KerasFile, type KerasGraph, loadKerasInto, readKerasFile } from './keras.js';

export interface LoadKerasModelOptions {
  /**
   * [height, width, channels] of the input, where the file leaves height and width open
   * (None); must agree with the file where it fixes them. Default: the file's.
   */
  inputShape?: [number, number, number];
  /** Where the model lives: 'cpu' (default), 'cuda', 'cuda:N' (see Model.fromSpec). */
  device?: string;
  /** Let fp32 convolutions on the GPU use TF32 tensor cores. Default false. */
  allowTf32?: boolean;
  /** The most bytes one compiled plan may take (see ModelInitOptions). */
  memoryBudget?: number;
}

export interface KerasModelInfo {
  /** The activation Keras applied to the output, which the model leaves out: it outputs logits. */
  outputActivation: 'softmax' | 'linear';
  /** Where model.preprocessing came from, if anywhere. */
  preprocessingFrom: 'keras.applications' | 'Rescaling layer' | undefined;
  /** The Keras version that wrote the file, when it says. */
  kerasVersion: string | undefined;
  /** Keras layers that compute nothing at inference (Dropout, linear activations), left out. */
  skipped: string[];
}

const OP = 'loadKerasModel';

const SUPPORTED =
  'InputLayer, Conv2D, BatchNormalization, ZeroPadding2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Flatten, Add, ' +
  'Activation (relu, linear, softmax at the output), ReLU, Dense, Dropout, Rescaling (at the input)';

type Shape = number[];

function fmt(shape: readonly (number | null)[]): string {
  return `[${shape.join(', ')}]`;
}

/** Keras' (h, w) pair from an int or a list. */
function pair(v: unknown, fail: (why: string) => never, what: string): [number, number] {
  const ok = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 1 && x <= 65536;
  if (ok(v)) return [v, v];
  if (Array.isArray(v) && v.length === 2 && ok(v[0]) && ok(v[1])) return [v[0], v[1]];
  if (Array.isArray(v) && v.length === 1 && ok(v[0])) return [v[0], v[0]];
  return fail(`has ${what} ${JSON.stringify(v)?.slice(0, 60)}, not one or two positive integers`);
}

function outputLength(n: number, k: number, s: number, d: number, padding: SpecPadding, axis: 0 | 1): number {
  const span = d * (k - 1) + 1;
  if (padding === 'same') return Math.ceil(n / s);
  const [before, after] = Array.isArray(padding) ? [padding[axis * 2]!, padding[axis * 2 + 1]!] : [0, 0];
  return Math.floor((n + before + after - span) / s) + 1;
}

interface Converted {
  spec: ModelSpec;
  /** Each of our layers' output shape ('input' too). */
  shapes: ReadonlyMap<string, Shape>;
  preprocessing: Preprocessing | undefined;
  info: Omit<KerasModelInfo, 'kerasVersion'>;
}

/** An activation from a config: a name, or a serialized function ({ class_name, config }). */
function activationName(act: unknown): string {
  if (act === undefined || act === null) return 'linear';
  if (typeof act === 'string') return act;
  if (validate.isPlainObject(act)) return String(act.config ?? act.class_name).slice(0, 60);
  return '?';
}

const IMAGENET_CAFFE_MEAN = [103.939, 116.779, 123.68];

/** keras.applications' ResNet, recognised by its model and layer names: v1 (caffe) or v2 ('tf' mode). */
function applicationsResNet(modelName: string, graph: KerasGraph): 'v1' | 'v2' | undefined {
  const has = (n: string) => graph.nodes.has(n);
  if (!has('conv1_pad') || !has('conv1_conv') || !has('pool1_pad') || !has('pool1_pool') || !has('conv2_block1_1_conv')) return undefined;
  // The model itself, or a nested one (transfer learning: the applications model as a layer, include_top=False).
  const names = [modelName, ...[...graph.nodes.values()].filter((n) => n.className === 'NestedModelOutput').map((n) => n.name)];
  if (names.some((n) => /^resnet(50|101|152)$/.test(n)) && has('conv1_bn') && has('conv2_block1_0_conv')) return 'v1';
  if (names.some((n) => /^resnet(50|101|152)v2$/.test(n)) && has('conv2_block1_preact_bn')) return 'v2';
  return undefined;
}

/** Converts a Keras graph to a ModelSpec (see the header for what is supported). */
export function kerasGraphToSpec(
  graph: KerasGraph,
  topology: Record<string, unknown>,
  file: string,
  inputShape?: [number, number, number],
): Converted {
  const cfg = validate.isPlainObject(topology.config) ? topology.config : {};
  const modelName = typeof cfg.name === 'string' && cfg.name.length > 0 ? cfg.name : 'keras_model';
  const layers: LayerSpec[] = [];
  const alias = new Map<string, string>(); // Keras node → our layer ('input' for the network input)
  const shapes = new Map<string, Shape>();
  const names = new Set<string>(['input']);
  const skipped: string[] = [];
  let input: [number, number, number] | undefined;
  let inputNode: string | undefined;
  let preprocessing: Preprocessing | undefined;
  let preprocessingFrom: KerasModelInfo['preprocessingFrom'];
  let outputActivation: KerasModelInfo['outputActivation'] = 'linear';

  // The output: the last node unless the config names one.
  const outputs = Array.isArray(cfg.output_layers) ? cfg.output_layers : [];
  const flatOutputs = outputs.length > 0 && typeof outputs[0] === 'string' ? [outputs] : outputs;
  if (flatOutputs.length > 1) throw new ResNetError('E_FORMAT', `${OP}: '${file}' has ${flatOutputs.length} outputs; a resnet-native model has one`);
  const outputNode = flatOutputs.length === 1 && Array.isArray(flatOutputs[0]) ? String(flatOutputs[0][0]) : graph.order[graph.order.length - 1];

  const push = (layer: LayerSpec, shape: Shape): string => {
    if (names.has(layer.name)) throw new ResNetError('E_FORMAT', `${OP}: '${file}': layer name '${layer.name}' is used twice`);
    if (shape.some((d) => !Number.isSafeInteger(d) || d < 1)) {
      throw new ResNetError(
        'E_FORMAT',
        `${OP}: '${file}': layer '${layer.name}' (${layer.type}) would output ${fmt(shape)}: the input is too small for it`,
      );
    }
    names.add(layer.name);
    layers.push(layer);
    shapes.set(layer.name, shape);
    return layer.name;
  };

  for (const name of graph.order) {
    const node = graph.nodes.get(name)!;
    const c = node.config;
    const fail = (why: string): never => {
      throw new ResNetError('E_FORMAT', `${OP}: '${file}': layer '${name}' (${node.className}) ${why}`);
    };
    const from = (): string => {
      if (node.inputs.length !== 1) fail(`reads ${node.inputs.length} tensors; it should read one`);
      const a = alias.get(node.inputs[0]!);
      if (a === undefined) fail(`reads '${node.inputs[0]}', which is not computed before it`);
      return a!;
    };
    const image = (x: string): [number, number, number] => {
      const s = shapes.get(x)!;
      if (s.length !== 3) fail(`needs an image [h, w, c] input but gets ${fmt(s)}`);
      return s as [number, number, number];
    };
    const isOutput = name === outputNode;
    const channelsLast = () => {
      if (c.data_format !== undefined && c.data_format !== null && c.data_format !== 'channels_last') {
        fail(`uses data_format '${String(c.data_format)}'; only channels_last is supported`);
      }
    };
    const activation = (x: string, act: unknown): string => {
      const a = activationName(act);
      if (a === 'linear') return x;
      if (a === 'relu') return push({ name: `${name}.relu`, inputs: [x], type: 'relu' }, [...shapes.get(x)!]);
      if (a === 'softmax' && isOutput) {
        outputActivation = 'softmax';
        return x;
      }
      return fail(`has activation '${a}'; supported: relu, linear, and softmax on the output layer`);
    };

    switch (node.className) {
      case 'InputLayer': {
        // A nested model's input reads what the outer model passed in (keras.ts flattened it).
        if (node.inputs.length > 0) {
          alias.set(name, from());
          break;
        }
        if (inputNode !== undefined) fail(`is a second input; a resnet-native model has one`);
        const batch = Array.isArray(c.batch_shape) ? c.batch_shape : Array.isArray(c.batch_input_shape) ? c.batch_input_shape : undefined;
        if (!batch || batch.length !== 4)
          fail(`has input shape ${JSON.stringify(batch)?.slice(0, 60)}; an image model takes [batch, height, width, channels]`);
        const dims = batch!.slice(1) as (number | null)[];
        const shape = dims.map((d, i) => {
          const given = inputShape?.[i];
          if (d === null) {
            if (given === undefined) fail(`leaves the input size open (${fmt(dims)}); pass options.inputShape [height, width, channels]`);
            return given!;
          }
          if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1 || d > 65536) fail(`has input dimension ${JSON.stringify(d)}`);
          if (given !== undefined && given !== d) {
            throw new ResNetError('E_ARG', `${OP}: options.inputShape ${fmt(inputShape!)} disagrees with the file's input ${fmt(dims)}`);
          }
          return d;
        }) as [number, number, number];
        input = shape;
        inputNode = name;
        alias.set(name, 'input');
        shapes.set('input', [...shape]);
        break;
      }
      case 'NestedModelOutput':
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianDropout':
      case 'GaussianNoise':
      case 'ActivityRegularization':
        if (node.className !== 'NestedModelOutput') skipped.push(name);
        alias.set(name, from());
        break;
      case 'Rescaling': {
        const x = from();
        if (x !== 'input' || preprocessing)
          fail('is not applied to the network input directly; only an input Rescaling is supported (as preprocessing)');
        const channels = input![2];
        const perChannel = (v: unknown, what: string, fallback: number): number[] => {
          if (v === undefined || v === null) return new Array<number>(channels).fill(fallback);
          if (typeof v === 'number' && Number.isFinite(v)) return new Array<number>(channels).fill(v);
          if (Array.isArray(v) && v.length === channels && v.every((e) => typeof e === 'number' && Number.isFinite(e))) return v as number[];
          return fail(`has ${what} ${JSON.stringify(v)?.slice(0, 60)}; a number or one per channel`);
        };
        const scale = perChannel(c.scale, 'scale', 1);
        const offset = perChannel(c.offset, 'offset', 0);
        if (scale.some((s) => s === 0)) fail('has scale 0');
        // Keras input x = 255·p for pixel values p in [0, 1]; the model's input is x·scale + offset
        // = (p − mean) / std with std = 1 / (255·scale), mean = −offset / (255·scale).
        preprocessing = {
          imageSize: [input![0], input![1]],
          channelOrder: 'rgb',
          mean: scale.map((s, i) => -offset[i]! / (255 * s)),
          std: scale.map((s) => 1 / (255 * s)),
        };
        preprocessingFrom = 'Rescaling layer';
        skipped.push(name);
        alias.set(name, x);
        break;
      }
      case 'Conv2D':
      case 'Convolution2D': {
        channelsLast();
        const x = from();
        const [h, w, inC] = image(x);
        const kernelSize = pair(c.kernel_size, fail, 'kernel_size');
        const strides = c.strides === undefined ? ([1, 1] as [number, number]) : pair(c.strides, fail, 'strides');
        const dilations = c.dilation_rate === undefined ? ([1, 1] as [number, number]) : pair(c.dilation_rate, fail, 'dilation_rate');
        const groups =
          c.groups === undefined
            ? 1
            : validate.isPlainObject(c) && typeof c.groups === 'number' && Number.isSafeInteger(c.groups) && c.groups >= 1
              ? c.groups
              : fail(`has groups ${JSON.stringify(c.groups)}`);
        const filters =
          typeof c.filters === 'number' && Number.isSafeInteger(c.filters) && c.filters >= 1
            ? c.filters
            : fail(`has filters ${JSON.stringify(c.filters)}`);
        const padding =
          c.padding === 'same'
            ? 'same'
            : c.padding === 'valid' || c.padding === undefined
              ? 'valid'
              : fail(`has padding '${String(c.padding)}'; 'same' and 'valid' are supported`);
        if (inC % groups !== 0 || filters % groups !== 0)
          fail(`has ${groups} groups, which must divide its ${inC} input and ${filters} output channels`);
        if ((strides[0] > 1 || strides[1] > 1) && (dilations[0] > 1 || dilations[1] > 1))
          fail('has both strides and dilation above 1 (Keras refuses that too)');
        const shape = [
          outputLength(h, kernelSize[0], strides[0], dilations[0], padding, 0),
          outputLength(w, kernelSize[1], strides[1], dilations[1], padding, 1),
          filters,
        ];
        const conv = push(
          { name, inputs: [x], type: 'conv2d', filters, kernelSize, strides, padding, dilations, groups, useBias: c.use_bias !== false },
          shape,
        );
        alias.set(name, activation(conv, c.activation));
        break;
      }
      case 'BatchNormalization': {
        const x = from();
        const s = image(x);
        const axis = Array.isArray(c.axis) && c.axis.length === 1 ? c.axis[0] : (c.axis ?? -1);
        if (axis !== -1 && axis !== 3) fail(`normalizes axis ${JSON.stringify(c.axis)}; only the channel axis (-1 / 3) of NHWC is supported`);
        const epsilon =
          c.epsilon === undefined
            ? 1e-3
            : typeof c.epsilon === 'number' && c.epsilon > 0
              ? c.epsilon
              : fail(`has epsilon ${JSON.stringify(c.epsilon)}`);
        const kerasMomentum =
          c.momentum === undefined
            ? 0.99
            : typeof c.momentum === 'number' && c.momentum >= 0 && c.momentum < 1
              ? c.momentum
              : fail(`has momentum ${JSON.stringify(c.momentum)}`);
        if (c.renorm === true) fail('uses batch renormalization');
        alias.set(name, push({ name, inputs: [x], type: 'batchNorm', epsilon, momentum: 1 - kerasMomentum }, [...s]));
        break;
      }
      case 'Activation':
      case 'ReLU': {
        const x = from();
        if (node.className === 'ReLU') {
          const plain = (c.max_value === undefined || c.max_value === null) && !c.negative_slope && !c.threshold;
          if (!plain) fail('has max_value, negative_slope or threshold; only the plain ReLU is supported');
          alias.set(name, push({ name, inputs: [x], type: 'relu' }, [...shapes.get(x)!]));
          break;
        }
        const act = activationName(c.activation);
        if (act === 'relu') {
          alias.set(name, push({ name, inputs: [x], type: 'relu' }, [...shapes.get(x)!]));
        } else {
          activation(x, act); // linear, or softmax on the output: nothing to compute; anything else fails
          skipped.push(name);
          alias.set(name, x);
        }
        break;
      }
      case 'Add': {
        if (node.inputs.length < 2) fail(`adds ${node.inputs.length} tensors`);
        const ins = node.inputs.map((i) => alias.get(i) ?? fail(`reads '${i}', which is not computed before it`));
        const s0 = shapes.get(ins[0]!)!;
        for (const i of ins)
          if (fmt(shapes.get(i)!) !== fmt(s0)) fail(`adds tensors of different shapes ${ins.map((j) => fmt(shapes.get(j)!)).join(' and ')}`);
        let acc = ins[0]!;
        for (let k = 1; k < ins.length; k++) {
          acc = push({ name: k === ins.length - 1 ? name : `${name}.${k}`, inputs: [acc, ins[k]!], type: 'add' }, [...s0]);
        }
        alias.set(name, acc);
        break;
      }
      case 'ZeroPadding2D': {
        channelsLast();
        const x = from();
        const [h, w, ch] = image(x);
        const p = c.padding ?? 1;
        const int = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= 65536;
        let pad: [number, number, number, number] | undefined;
        if (int(p)) pad = [p, p, p, p];
        else if (Array.isArray(p) && p.length === 2 && int(p[0]) && int(p[1])) pad = [p[0], p[0], p[1], p[1]];
        else if (
          Array.isArray(p) &&
          p.length === 2 &&
          Array.isArray(p[0]) &&
          Array.isArray(p[1]) &&
          [...p[0], ...p[1]].every(int) &&
          p[0].length === 2 &&
          p[1].length === 2
        ) {
          pad = [p[0][0], p[0][1], p[1][0], p[1][1]];
        }
        if (!pad) fail(`has padding ${JSON.stringify(p)?.slice(0, 60)}`);
        alias.set(name, push({ name, inputs: [x], type: 'zeroPad', padding: pad! }, [h + pad![0] + pad![1], w + pad![2] + pad![3], ch]));
        break;
      }
      case 'MaxPooling2D':
      case 'MaxPool2D':
      case 'AveragePooling2D':
      case 'AvgPool2D': {
        channelsLast();
        const x = from();
        const [h, w, ch] = image(x);
        const max = node.className.startsWith('Max');
        const poolSize = c.pool_size === undefined ? ([2, 2] as [number, number]) : pair(c.pool_size, fail, 'pool_size');
        const strides = c.strides === undefined || c.strides === null ? poolSize : pair(c.strides, fail, 'strides');
        const padding =
          c.padding === 'same' ? 'same' : c.padding === 'valid' || c.padding === undefined ? 'valid' : fail(`has padding '${String(c.padding)}'`);
        // Keras' 'same' average pooling divides by the window's in-image part; ours would count the padding.
        if (!max && padding === 'same' && (h % strides[0] !== 0 || w % strides[1] !== 0 || poolSize[0] > strides[0] || poolSize[1] > strides[1])) {
          fail("uses 'same' padding where the window reaches past the image; only 'valid' (or padding-free 'same') average pooling is supported");
        }
        const shape = [outputLength(h, poolSize[0], strides[0], 1, padding, 0), outputLength(w, poolSize[1], strides[1], 1, padding, 1), ch];
        alias.set(name, push({ name, inputs: [x], type: max ? 'maxPool' : 'avgPool', poolSize, strides, padding }, shape));
        break;
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalAvgPool2D': {
        channelsLast();
        if (c.keepdims === true) fail('keeps its dimensions (keepdims); only the [n, c] form is supported');
        const x = from();
        alias.set(name, push({ name, inputs: [x], type: 'globalAvgPool' }, [image(x)[2]]));
        break;
      }
      case 'Flatten': {
        const x = from();
        const s = shapes.get(x)!;
        if (s.length === 1) {
          skipped.push(name);
          alias.set(name, x);
        } else {
          const [h, w, ch] = image(x);
          alias.set(name, push({ name, inputs: [x], type: 'flatten' }, [h * w * ch]));
        }
        break;
      }
      case 'Dense': {
        const x = from();
        const s = shapes.get(x)!;
        if (s.length !== 1) fail(`reads ${fmt(s)}; a Dense here needs a flat [features] input (GlobalAveragePooling2D or Flatten before it)`);
        const units =
          typeof c.units === 'number' && Number.isSafeInteger(c.units) && c.units >= 1 ? c.units : fail(`has units ${JSON.stringify(c.units)}`);
        const dense = push({ name, inputs: [x], type: 'dense', units, useBias: c.use_bias !== false }, [units]);
        alias.set(name, activation(dense, c.activation));
        break;
      }
      default:
        fail(`is not a layer resnet-native can build (supported: ${SUPPORTED})`);
    }
  }
  if (!input) throw new ResNetError('E_FORMAT', `${OP}: '${file}' has no InputLayer`);
  const out = alias.get(outputNode ?? '');
  if (out === undefined) throw new ResNetError('E_FORMAT', `${OP}: '${file}': the output layer '${outputNode}' is not in the graph`);
  const outShape = shapes.get(out)!;
  if (outShape.length !== 1 || out === 'input') {
    throw new ResNetError(
      'E_FORMAT',
      `${OP}: '${file}' outputs ${fmt(outShape)}; a resnet-native model ends in logits [n, classes] (a model saved with include_top=False has no classifier)`,
    );
  }
  const spec: ModelSpec = {
    format: 'resnet-native/model',
    version: 1,
    name: modelName,
    inputShape: input,
    classes: outShape[0]!,
    layers,
    output: out,
  };

  const app = applicationsResNet(modelName, graph);
  if (app && !preprocessing) {
    preprocessing =
      app === 'v1'
        ? { imageSize: [input[0], input[1]], channelOrder: 'bgr', mean: IMAGENET_CAFFE_MEAN.map((m) => m / 255), std: [1 / 255, 1 / 255, 1 / 255] }
        : { imageSize: [input[0], input[1]], channelOrder: 'rgb', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
    preprocessingFrom = 'keras.applications';
  }
  return { spec, shapes, preprocessing, info: { outputActivation, preprocessingFrom, skipped } };
}

/**
 * Every weighted layer's kernel in the file has the shape the spec implies, checked before the
 * model is allocated: a config that asks for absurd layers (a billion filters) then fails
 * here, since the file cannot hold their weights. loadKeras checks everything else after.
 */
function checkWeightShapes(spec: ModelSpec, shapes: ReadonlyMap<string, Shape>, file: KerasFile & { file: string }): void {
  for (const l of spec.layers) {
    const s = shapes.get(l.inputs[0]!) ?? [];
    const inC = s[s.length - 1] ?? 0;
    let expected: number[] | undefined;
    if (l.type === 'conv2d') expected = [l.kernelSize[0], l.kernelSize[1], inC / l.groups, l.filters];
    else if (l.type === 'dense') expected = [inC, l.units];
    else if (l.type === 'batchNorm') expected = [inC];
    if (!expected) continue;
    const w = file.weights.get(l.name)?.get(l.type === 'batchNorm' ? 'moving_mean' : 'kernel');
    if (!w) throw new ResNetError('E_FORMAT', `${OP}: '${file.file}' has no weights for layer '${l.name}' (${l.type})`);
    if (!validate.sameShape(w.shape, expected)) {
      throw new ResNetError(
        'E_FORMAT',
        `${OP}: '${file.file}': layer '${l.name}' needs a ${fmt(expected)} weight by its config, the file holds ${fmt(w.shape)}`,
      );
    }
  }
}

/**
 * loadKerasModel, with what the conversion found: the output activation dropped, where the
 * preprocessing came from, the layers left out.
 */
export async function loadKerasModelWithInfo(path: string, options: LoadKerasModelOptions = {}): Promise<{ model: Model; info: KerasModelInfo }> {
  validate.string(path, OP, 'path');
  validate.keys(options, OP, ['inputShape', 'device', 'allowTf32', 'memoryBudget']);
  let inputShape: [number, number, number] | undefined;
  if (options.inputShape !== undefined) {
    const s = options.inputShape as unknown;
    if (!Array.isArray(s) || s.length !== 3) validate.invalid(s, OP, 'inputShape', 'a [height, width, channels] array');
    inputShape = [
      validate.integer(s[0], OP, 'inputShape[0]', 1, 65536),
      validate.integer(s[1], OP, 'inputShape[1]', 1, 65536),
      validate.integer(s[2], OP, 'inputShape[2]', 1, 65536),
    ];
  }
  const file = await readKerasFile(path, OP);
  const { spec, preprocessing, info, shapes } = kerasGraphToSpec(file.graph, file.topology, file.file, inputShape);
  const init: ModelInitOptions = { seed: 0 };
  if (options.device !== undefined) init.device = options.device;
  if (options.allowTf32 !== undefined) init.allowTf32 = options.allowTf32;
  if (options.memoryBudget !== undefined) init.memoryBudget = options.memoryBudget;
  checkWeightShapes(spec, shapes, file);
  const model = Model.fromSpec(spec, init);
  try {
    loadKerasInto(model, file, 'name', false);
    if (preprocessing) model.preprocessing = preprocessing;
    model.eval();
    return { model, info: { ...info, kerasVersion: file.kerasVersion } };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/**
 * A Model built from a Keras file's own config, with its weights: a Keras 3 `.keras`, a Keras
 * HDF5 `.h5` (Keras 2, tf.keras, Keras 3 legacy) or a TensorFlow.js layers model.json. The
 * model outputs logits (a softmax on Keras' output layer is left out); it comes back in eval
 * mode, with model.preprocessing set where the file says (keras.applications ResNets, an input
 * Rescaling). E_FORMAT names any layer outside the supported set (see keras_model.ts).
 */
export async function loadKerasModel(path: string, options: LoadKerasModelOptions = {}): Promise<Model> {
  return (await loadKerasModelWithInfo(path, options)).model;
}
