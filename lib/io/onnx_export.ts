// ONNX export: a model's spec and parameters → an inference graph in onnx.proto (see
// onnx_proto.ts), written atomically. This module imports no Model (Model.exportOnnx passes a
// snapshot of its parameters), so that model.ts can use it without an import cycle.
//
// The graph:
// - Input 'input': float32 images, [batch, H, W, C] ('NHWC', as model.predict takes them; a
//   Transpose turns them into ONNX's NCHW) or [batch, C, H, W] ('NCHW'). H, W, C are the model's
//   inputShape; batch is the symbolic dimension 'batch' or a fixed size. Inside, every feature
//   map is NCHW.
// - includePreprocessing: the input is images scaled to [0, 1] in RGB order; the graph reorders
//   the channels (channelOrder 'bgr') and applies (x - mean) / std, with mean and std in the
//   model's channel order. Decoding, resizing and cropping stay outside the graph.
// - Outputs 'logits' [batch, classes] (what predict returns) and 'probabilities' (their
//   Softmax, what predict returns with { softmax: true }).
// - A batch-norm that directly follows a convolution (its only reader) is folded into it: the
//   Conv gets weight·γ/√(σ²+ε) and bias (b − μ)·γ/√(σ²+ε) + β. Inference-mode batch-norm is
//   an affine map per channel, so this is exact up to float rounding, halves the node count
//   of a ResNet, and is what onnxruntime, TensorRT and OpenVINO would do on loading anyway.
//   A batch-norm that follows anything else (pre-activation models' BNs after an add or a
//   pooling) stays a BatchNormalization node with the running statistics.
// - 'same' padding (TensorFlow's rule, the odd pixel at the bottom / right) and every other
//   padding become explicit pads; pooling never counts padded cells (as ours).
import type { FileHandle } from 'node:fs/promises';

import { ResNetError } from '../errors.js';
import type { Preprocessing } from '../model/preprocessing.js';
import type { Conv2dLayer, LayerSpec, ModelSpec, SpecPadding } from '../model/spec.js';
import * as validate from '../validate.js';
import { atomicWrite } from './atomic_write.js';
import * as proto from './onnx_proto.js';

export type OnnxLayout = 'NHWC' | 'NCHW';

export interface OnnxExportOptions {
  /** ONNX operator set, 13 to 21. Default 17. */
  opset?: number;
  /** 'dynamic' (default): any batch size (the symbolic dimension 'batch'); n: exactly n images. */
  batch?: 'dynamic' | number;
  /** The input's layout: 'NHWC' (default, as model.predict) or 'NCHW' (PyTorch's). */
  layout?: OnnxLayout;
  /**
   * Put model.preprocessing's channel order and (x - mean) / std into the graph, so that it
   * takes images scaled to [0, 1] (RGB). Default false: the input is what predict takes. E_ARG
   * when the model has no preprocessing.
   */
  includePreprocessing?: boolean;
}

/** What the exporter reads of a model: its spec, a snapshot of its parameters, and its descriptions. */
export interface OnnxSource {
  spec: Readonly<ModelSpec>;
  /** Every parameter by name (batch-norm running statistics included). */
  parameters: ReadonlyMap<string, Float32Array>;
  preprocessing?: Readonly<Preprocessing> | undefined;
  classNames?: readonly string[] | undefined;
}

export const MIN_OPSET = 13;
export const MAX_OPSET = 21;
export const DEFAULT_OPSET = 17;
const MAX_BATCH = 1 << 20;
/** A protobuf message cannot exceed 2 GiB; larger models need ONNX's external data, not written here. */
const MAX_FILE_BYTES = 2 ** 31 - 1;

export interface ResolvedOnnxOptions {
  opset: number;
  batch: 'dynamic' | number;
  layout: OnnxLayout;
  includePreprocessing: boolean;
}

/** Checks exportOnnx's options (E_ARG naming the option) and fills in the defaults. */
export function checkOnnxOptions(options: unknown, op: string): ResolvedOnnxOptions {
  validate.keys(options, op, ['opset', 'batch', 'layout', 'includePreprocessing']);
  const o = options as OnnxExportOptions;
  const opset = o.opset === undefined ? DEFAULT_OPSET : validate.integer(o.opset, op, 'opset', MIN_OPSET, MAX_OPSET);
  let batch: 'dynamic' | number = 'dynamic';
  if (o.batch !== undefined && o.batch !== 'dynamic') {
    if (typeof o.batch !== 'number') validate.invalid(o.batch, op, 'batch', `'dynamic' or an integer in [1, ${MAX_BATCH}]`);
    batch = validate.integer(o.batch, op, 'batch', 1, MAX_BATCH);
  }
  const layout = o.layout === undefined ? 'NHWC' : validate.oneOf(o.layout, op, 'layout', ['NHWC', 'NCHW'] as const);
  const includePreprocessing = o.includePreprocessing === undefined ? false : validate.boolean(o.includePreprocessing, op, 'includePreprocessing');
  return { opset, batch, layout, includePreprocessing };
}

/** The IR version that goes with an operator set (onnx/docs/Versioning.md's table). */
function irVersion(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

/** A value in the graph: a feature map (NCHW inside the graph) or a batch of vectors. */
type MapShape = { kind: 'map'; c: number; h: number; w: number };
type Shape = MapShape | { kind: 'vector'; n: number };

/** Padding of one axis resolved as the native engine does (native/core/geometry.cpp). */
function resolveAxis(size: number, k: number, stride: number, dilation: number, padding: SpecPadding, axis: 0 | 1) {
  const span = (k - 1) * dilation + 1;
  if (padding === 'same') {
    const out = Math.ceil(size / stride);
    const total = Math.max(0, (out - 1) * stride + span - size);
    return { before: Math.floor(total / 2), after: total - Math.floor(total / 2), out };
  }
  let before = 0;
  let after = 0;
  if (typeof padding === 'number') before = after = padding;
  else if (Array.isArray(padding)) [before, after] = axis === 0 ? [padding[0], padding[1]] : [padding[2], padding[3]];
  const padded = size + before + after;
  if (padded < span) return undefined;
  return { before, after, out: Math.floor((padded - span) / stride) + 1 };
}

/** Builds the node list, initializers and value shapes of one graph. */
class GraphBuilder {
  readonly nodes: proto.ProtoMessage[] = [];
  readonly initializers: proto.ProtoMessage[] = [];
  readonly #initializerNames = new Set<string>();

  constructor(readonly op: string) {}

  node(opType: string, inputs: string[], outputs: string[], name: string, attributes?: Record<string, proto.AttributeValue>): void {
    this.nodes.push(proto.node({ opType, inputs, outputs, name, ...(attributes ? { attributes } : {}) }));
  }

  /** A float32 initializer; returns its name. */
  floats(name: string, dims: number[], values: Float32Array): string {
    this.#claim(name);
    this.initializers.push(proto.tensor(name, dims, values));
    return name;
  }

  /** An int64 initializer (shapes, pads, indices); returns its name. */
  int64s(name: string, values: number[]): string {
    this.#claim(name);
    this.initializers.push(
      proto.tensor(
        name,
        [values.length],
        BigInt64Array.from(values, (v) => BigInt(v)),
      ),
    );
    return name;
  }

  #claim(name: string): void {
    if (this.#initializerNames.has(name)) throw new ResNetError('E_ARG', `${this.op}: two initializers would be named '${name}'`);
    this.#initializerNames.add(name);
  }
}

/** Builds the ONNX model of `source` (a ModelProto as chunks; see onnx_proto.ts). */
export function buildOnnxModel(source: OnnxSource, options: ResolvedOnnxOptions, op = 'exportOnnx'): proto.ProtoMessage {
  const { spec } = source;
  const [height, width, channels] = spec.inputShape;
  const g = new GraphBuilder(op);
  const param = (name: string, length: number): Float32Array => {
    const v = source.parameters.get(name);
    if (!v) throw new ResNetError('E_ARG', `${op}: the model has no parameter '${name}'`);
    if (v.length !== length) throw new ResNetError('E_SHAPE', `${op}: parameter '${name}' has ${v.length} values, its layer needs ${length}`);
    return v;
  };

  // Which layers the output needs, and who reads each layer.
  const byName = new Map(spec.layers.map((l) => [l.name, l]));
  const needed = new Set<string>();
  const stack = [spec.output];
  while (stack.length > 0) {
    const name = stack.pop()!;
    if (name === 'input' || needed.has(name)) continue;
    const layer = byName.get(name);
    if (!layer) throw new ResNetError('E_ARG', `${op}: the spec names '${name}', which is not a layer`);
    needed.add(name);
    stack.push(...layer.inputs);
  }
  const readers = new Map<string, number>();
  for (const l of spec.layers) if (needed.has(l.name)) for (const i of l.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);

  // Batch-norms folded into the convolution they follow: conv name → its batch-norm.
  const foldInto = new Map<string, LayerSpec & { type: 'batchNorm' }>();
  for (const l of spec.layers) {
    if (!needed.has(l.name) || l.type !== 'batchNorm') continue;
    const producer = byName.get(l.inputs[0]!);
    if (producer?.type === 'conv2d' && readers.get(producer.name) === 1 && producer.name !== spec.output) foldInto.set(producer.name, l);
  }
  const folded = new Set([...foldInto.values()].map((l) => l.name));

  const reserved = new Set(['input', 'logits', 'probabilities']);
  const tensorName = (layer: string): string => (layer === spec.output ? 'logits' : reserved.has(layer) ? `${layer}__layer` : layer);

  // The input, made NCHW (and normalised when asked).
  const shapes = new Map<string, Shape>();
  let x = 'input';
  const channelAxis = options.layout === 'NHWC' ? 3 : 1;
  const perChannel = (values: number[]): [number[], Float32Array] => [
    options.layout === 'NHWC' ? [channels] : [channels, 1, 1],
    Float32Array.from(values),
  ];
  if (options.includePreprocessing) {
    const p = source.preprocessing;
    if (!p) {
      throw new ResNetError(
        'E_ARG',
        `${op}: includePreprocessing needs the model's preprocessing (model.preprocessing is undefined); set it first, or export without it`,
      );
    }
    if (p.channelOrder === 'bgr' && channels > 1) {
      const order = g.int64s(
        'preprocess__channel_order',
        Array.from({ length: channels }, (_, i) => channels - 1 - i),
      );
      g.node('Gather', [x, order], ['preprocess__bgr'], 'preprocess__bgr', { axis: channelAxis });
      x = 'preprocess__bgr';
    }
    const mean = g.floats('preprocess__mean', ...perChannel(p.mean));
    const std = g.floats('preprocess__std', ...perChannel(p.std));
    g.node('Sub', [x, mean], ['preprocess__centered'], 'preprocess__centered');
    g.node('Div', ['preprocess__centered', std], ['preprocess__normalized'], 'preprocess__normalized');
    x = 'preprocess__normalized';
  }
  if (options.layout === 'NHWC') {
    g.node('Transpose', [x], ['input__nchw'], 'input__nchw', { perm: [0, 3, 1, 2] });
    x = 'input__nchw';
  }
  const values = new Map<string, string>([['input', x]]);
  shapes.set('input', { kind: 'map', c: channels, h: height, w: width });

  for (const layer of spec.layers) {
    if (!needed.has(layer.name) || folded.has(layer.name)) continue;
    const inputs = layer.inputs.map((i) => values.get(i)!);
    const inShapes = layer.inputs.map((i) => shapes.get(i)!);
    const name = layer.name;
    const where = `layer '${name}' (${layer.type})`;
    const map = (s: Shape): MapShape => {
      if (s.kind !== 'map') throw new ResNetError('E_ARG', `${op}: ${where} needs a feature map [n, h, w, c], its input is a vector`);
      return s;
    };
    let out = tensorName(name);
    let shape: Shape;
    switch (layer.type) {
      case 'conv2d': {
        const bn = foldInto.get(name);
        if (bn) out = tensorName(bn.name);
        shape = emitConv(g, layer, inputs[0]!, map(inShapes[0]!), out, bn, param, where);
        if (bn) {
          values.set(bn.name, out);
          shapes.set(bn.name, shape);
        }
        break;
      }
      case 'batchNorm': {
        const s = inShapes[0]!;
        const c = s.kind === 'map' ? s.c : s.n;
        const p = (suffix: string) => g.floats(`${name}.${suffix}`, [c], param(`${name}.${suffix}`, c));
        const bnInputs = [inputs[0]!, p('weight'), p('bias'), p('running_mean'), p('running_var')];
        g.node('BatchNormalization', bnInputs, [out], name, { epsilon: { float: layer.epsilon } });
        shape = s;
        break;
      }
      case 'relu':
        g.node('Relu', inputs, [out], name);
        shape = inShapes[0]!;
        break;
      case 'add':
        g.node(inputs.length === 2 ? 'Add' : 'Sum', inputs, [out], name);
        shape = inShapes[0]!;
        break;
      case 'maxPool':
      case 'avgPool': {
        const s = map(inShapes[0]!);
        const [kh, kw] = layer.poolSize;
        const [sh, sw] = layer.strides;
        const rh = resolveAxis(s.h, kh, sh, 1, layer.padding, 0);
        const rw = resolveAxis(s.w, kw, sw, 1, layer.padding, 1);
        if (!rh || !rw) throw new ResNetError('E_SHAPE', `${op}: ${where}: the window is larger than the ${s.h}×${s.w} input plus padding`);
        const attributes: Record<string, proto.AttributeValue> = {
          kernel_shape: [kh, kw],
          strides: [sh, sw],
          pads: [rh.before, rw.before, rh.after, rw.after],
        };
        if (layer.type === 'avgPool') attributes.count_include_pad = 0;
        g.node(layer.type === 'maxPool' ? 'MaxPool' : 'AveragePool', inputs, [out], name, attributes);
        shape = { kind: 'map', c: s.c, h: rh.out, w: rw.out };
        break;
      }
      case 'globalAvgPool': {
        const s = map(inShapes[0]!);
        g.node('GlobalAveragePool', inputs, [`${name}__pooled`], `${name}__pooled`);
        g.node('Flatten', [`${name}__pooled`], [out], name, { axis: 1 });
        shape = { kind: 'vector', n: s.c };
        break;
      }
      case 'flatten': {
        const s = inShapes[0]!;
        if (s.kind === 'vector') {
          g.node('Identity', inputs, [out], name);
          shape = s;
          break;
        }
        // Row-major NHWC order, as ours: back to NHWC before flattening.
        g.node('Transpose', inputs, [`${name}__nhwc`], `${name}__nhwc`, { perm: [0, 2, 3, 1] });
        g.node('Flatten', [`${name}__nhwc`], [out], name, { axis: 1 });
        shape = { kind: 'vector', n: s.c * s.h * s.w };
        break;
      }
      case 'dense': {
        const s = inShapes[0]!;
        if (s.kind !== 'vector') throw new ResNetError('E_ARG', `${op}: ${where} needs a vector input [n, features]; flatten or pool first`);
        const w = g.floats(`${name}.weight`, [s.n, layer.units], param(`${name}.weight`, s.n * layer.units));
        const gemmInputs = [inputs[0]!, w];
        if (layer.useBias) gemmInputs.push(g.floats(`${name}.bias`, [layer.units], param(`${name}.bias`, layer.units)));
        g.node('Gemm', gemmInputs, [out], name);
        shape = { kind: 'vector', n: layer.units };
        break;
      }
      case 'zeroPad': {
        const s = map(inShapes[0]!);
        const [t, b, l, r] = layer.padding;
        const pads = g.int64s(`${name}__pads`, [0, 0, t, l, 0, 0, b, r]);
        const padInputs = [inputs[0]!, pads];
        // onnxruntime's PadFusion folds a Pad whose constant is all-zero bytes into a following
        // MaxPool's pads, which pad with -∞, not 0 (a wrong result wherever a window's values
        // are all negative: Keras ResNetV2's stem). A constant of -0 (equal to 0, but not
        // all-zero bytes) keeps the Pad where a pool reads it; a Conv still gets it fused.
        if (spec.layers.some((l) => needed.has(l.name) && l.inputs.includes(name) && (l.type === 'maxPool' || l.type === 'avgPool'))) {
          padInputs.push(g.floats(`${name}__value`, [], Float32Array.of(-0)));
        }
        g.node('Pad', padInputs, [out], name, { mode: 'constant' });
        shape = { kind: 'map', c: s.c, h: s.h + t + b, w: s.w + l + r };
        break;
      }
      case 'zeroPadShortcut': {
        const s = map(inShapes[0]!);
        const [sh, sw] = layer.strides;
        const extra = layer.filters - s.c;
        if (extra < 0) throw new ResNetError('E_ARG', `${op}: ${where} would shrink ${s.c} channels to ${layer.filters}`);
        let y = inputs[0]!;
        if (sh !== 1 || sw !== 1) {
          const slice = extra === 0 ? out : `${name}__subsampled`;
          const sliceInputs = [
            y,
            g.int64s(`${name}__starts`, [0, 0]),
            g.int64s(`${name}__ends`, [s.h, s.w]),
            g.int64s(`${name}__axes`, [2, 3]),
            g.int64s(`${name}__steps`, [sh, sw]),
          ];
          g.node('Slice', sliceInputs, [slice], `${name}__subsampled`);
          y = slice;
        }
        if (extra > 0) {
          const before = Math.floor(extra / 2);
          const pads = g.int64s(`${name}__pads`, [0, before, 0, 0, 0, extra - before, 0, 0]);
          g.node('Pad', [y, pads], [out], name, { mode: 'constant' });
        } else if (y !== out) {
          g.node('Identity', [y], [out], name);
        }
        shape = { kind: 'map', c: layer.filters, h: Math.ceil(s.h / sh), w: Math.ceil(s.w / sw) };
        break;
      }
      case 'squeezeExcite': {
        // GlobalAveragePool → 1×1 Conv (fc1) → Relu → 1×1 Conv (fc2) → Sigmoid → Mul: the dense
        // layers as 1×1 convolutions keep the [n, c, 1, 1] shape that Mul broadcasts.
        const s = map(inShapes[0]!);
        const hidden = layer.hidden;
        const fc = (which: 'fc1' | 'fc2', inC: number, outC: number, from: string, to: string) => {
          const w = transpose2d(param(`${name}.${which}.weight`, inC * outC), inC, outC);
          const wName = g.floats(`${name}.${which}.weight`, [outC, inC, 1, 1], w);
          const bName = g.floats(`${name}.${which}.bias`, [outC], param(`${name}.${which}.bias`, outC));
          g.node('Conv', [from, wName, bName], [to], to, { kernel_shape: [1, 1] });
        };
        g.node('GlobalAveragePool', inputs, [`${name}__squeeze`], `${name}__squeeze`);
        fc('fc1', s.c, hidden, `${name}__squeeze`, `${name}.fc1`);
        g.node('Relu', [`${name}.fc1`], [`${name}.fc1__relu`], `${name}.fc1__relu`);
        fc('fc2', hidden, s.c, `${name}.fc1__relu`, `${name}.fc2`);
        g.node('Sigmoid', [`${name}.fc2`], [`${name}__gate`], `${name}__gate`);
        g.node('Mul', [inputs[0]!, `${name}__gate`], [out], name);
        shape = s;
        break;
      }
      default:
        throw new ResNetError(
          'E_ARG',
          `${op}: layer '${(layer as LayerSpec).name}' has type '${(layer as LayerSpec).type}', which ONNX export does not support`,
        );
    }
    values.set(name, out);
    shapes.set(name, shape);
  }

  const final = shapes.get(spec.output);
  if (!final || final.kind !== 'vector' || final.n !== spec.classes) {
    throw new ResNetError('E_ARG', `${op}: the output layer '${spec.output}' must give [n, ${spec.classes}] logits`);
  }
  g.node('Softmax', ['logits'], ['probabilities'], 'probabilities', { axis: 1 });

  const batch = options.batch === 'dynamic' ? 'batch' : options.batch;
  const inputDims = options.layout === 'NHWC' ? [batch, height, width, channels] : [batch, channels, height, width];
  const inputDoc = options.includePreprocessing
    ? `images scaled to [0, 1], RGB, ${options.layout}; the graph applies the model's channel order and (x - mean) / std`
    : `model-ready images (as model.predict takes them), ${options.layout}`;
  const graph = proto.graph({
    name: spec.name,
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [proto.valueInfo('input', inputDims, inputDoc)],
    outputs: [
      proto.valueInfo('logits', [batch, spec.classes], 'logits, as model.predict returns them'),
      proto.valueInfo('probabilities', [batch, spec.classes], 'softmax of the logits'),
    ],
    docString: `${spec.name} exported by resnet-native; batch-norms that follow a convolution are folded into it`,
  });
  const metadata: Record<string, string> = {
    model: spec.name,
    inputLayout: options.layout,
    inputPreprocessing: options.includePreprocessing ? 'included' : 'none',
  };
  if (source.preprocessing) metadata.preprocessing = JSON.stringify(source.preprocessing);
  if (source.classNames) metadata.classNames = JSON.stringify(source.classNames);
  const modelProto = proto.model({
    irVersion: irVersion(options.opset),
    opset: options.opset,
    producerName: 'resnet-native',
    producerVersion: '',
    graph,
    metadata,
  });
  if (modelProto.length > MAX_FILE_BYTES) {
    throw new ResNetError('E_ARG', `${op}: the model takes ${modelProto.length} bytes, over the 2 GiB a single ONNX file can hold`);
  }
  return modelProto;
}

/** [rows, cols] row-major → [cols, rows]. */
function transpose2d(v: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c]!;
  return out;
}

/** A Conv node (HWIO weights → OIHW), with the following batch-norm folded in when given. */
function emitConv(
  g: GraphBuilder,
  layer: Conv2dLayer,
  input: string,
  s: { c: number; h: number; w: number },
  out: string,
  bn: (LayerSpec & { type: 'batchNorm' }) | undefined,
  param: (name: string, length: number) => Float32Array,
  where: string,
): Shape {
  const [kh, kw] = layer.kernelSize;
  const [sh, sw] = layer.strides;
  const [dh, dw] = layer.dilations;
  const groups = layer.groups;
  const o = layer.filters;
  if (s.c % groups !== 0 || o % groups !== 0) {
    throw new ResNetError('E_SHAPE', `${g.op}: ${where}: groups ${groups} must divide its ${s.c} input and ${o} output channels`);
  }
  const ig = s.c / groups;
  const hwio = param(`${layer.name}.weight`, kh * kw * ig * o);
  const rh = resolveAxis(s.h, kh, sh, dh, layer.padding, 0);
  const rw = resolveAxis(s.w, kw, sw, dw, layer.padding, 1);
  if (!rh || !rw) throw new ResNetError('E_SHAPE', `${g.op}: ${where}: the kernel is larger than the ${s.h}×${s.w} input plus padding`);

  // Per output channel: y = scale·conv(x) + shift (scale 1, shift = bias without a batch-norm).
  const scale = new Float64Array(o).fill(1);
  const shift = new Float64Array(o);
  if (layer.useBias) {
    const b = param(`${layer.name}.bias`, o);
    for (let k = 0; k < o; k++) shift[k] = b[k]!;
  }
  if (bn) {
    const gamma = param(`${bn.name}.weight`, o);
    const beta = param(`${bn.name}.bias`, o);
    const mean = param(`${bn.name}.running_mean`, o);
    const variance = param(`${bn.name}.running_var`, o);
    for (let k = 0; k < o; k++) {
      scale[k] = gamma[k]! / Math.sqrt(variance[k]! + bn.epsilon);
      shift[k] = (shift[k]! - mean[k]!) * scale[k]! + beta[k]!;
    }
  }
  const oihw = new Float32Array(hwio.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ig; i++) {
        const from = ((y * kw + x) * ig + i) * o;
        for (let k = 0; k < o; k++) oihw[((k * ig + i) * kh + y) * kw + x] = hwio[from + k]! * scale[k]!;
      }
    }
  }
  const inputs = [input, g.floats(`${layer.name}.weight`, [o, ig, kh, kw], oihw)];
  if (layer.useBias || bn) inputs.push(g.floats(`${layer.name}.bias`, [o], Float32Array.from(shift)));
  g.node('Conv', inputs, [out], layer.name, {
    kernel_shape: [kh, kw],
    strides: [sh, sw],
    dilations: [dh, dw],
    group: groups,
    pads: [rh.before, rw.before, rh.after, rw.after],
  });
  return { kind: 'map', c: o, h: rh.out, w: rw.out };
}

/** Encodes `source` as ONNX and writes it to `path` atomically (temporary file, fsync, rename). */
export async function writeOnnx(path: string, source: OnnxSource, options: ResolvedOnnxOptions, op = 'exportOnnx'): Promise<void> {
  const message = buildOnnxModel(source, options, op);
  await atomicWrite(path, op, async (fh: FileHandle) => {
    for (const chunk of proto.chunks(message)) {
      for (let at = 0; at < chunk.length;) at += (await fh.write(chunk, at, chunk.length - at)).bytesWritten;
    }
  });
}
