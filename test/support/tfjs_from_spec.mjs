// A ModelSpec (lib/model/spec.ts) as a @tensorflow/tfjs-layers model, for cross-checks (tests)
// and comparisons (bench/). Plain JavaScript so that bench scripts can import it as it is;
// the types are in tfjs_from_spec.d.mts.
//
// Usage:
//   import * as tfc from '@tensorflow/tfjs-core';
//   import * as tfl from '@tensorflow/tfjs-layers';
//   const tf = { ...tfc, ...tfl };                 // or the @tensorflow/tfjs union package
//   const net = tfjsModelFromSpec(tf, model.spec);
//   copyWeightsToTfjs(model, net, model.spec);     // every parameter, by name
//   const vars = tfjsVariables(net, model.spec);   // Map<our parameter name, tf.Variable>
//
// Layer by layer (tfjs layers carry the spec layer's name; helper layers get `${name}__…`):
//   conv2d        Conv2D; 'same' / 'valid' directly, numeric or [t, b, l, r] padding as
//                 ZeroPadding2D (`${name}__pad`) + 'valid'. HWIO kernels as ours. groups > 1: unsupported.
//   batchNorm     BatchNormalization(axis -1, the spec's epsilon). Training mode normalises with the
//                 batch mean and biased variance as ours; tfjs also updates its moving statistics
//                 there (Keras' momentum convention) — compare running statistics independently.
//   relu, add     ReLU, Add.
//   maxPool       MaxPooling2D. Explicit padding pads with -Infinity first (`${name}__pad`, a custom
//                 layer), which is exact for any input: a padded cell never wins a window that holds
//                 at least one real cell (torchvision's stem max-pool 3×3/2 padding 1, say).
//   avgPool       AveragePooling2D for 'same' / 'valid' (TF's 'same' excludes the padding from the
//                 count, as ours does). Explicit padding > 0: unsupported (ZeroPadding2D would count
//                 the zeros; our avgPool excludes padding).
//   globalAvgPool GlobalAveragePooling2D; flatten: Flatten (row-major NHWC, as ours); dense: Dense.
//   zeroPad       ZeroPadding2D.
//   zeroPadShortcut  a custom layer: every stride-th pixel from 0, then zero channels
//                 (floor(extra / 2) before, the rest after).
//   squeezeExcite GlobalAveragePooling2D → Dense `${name}.fc1` (ReLU) → Dense `${name}.fc2`
//                 (sigmoid) → Reshape [1, 1, c] → Multiply with the input.
// Unsupported configurations throw an Error whose message starts with 'unsupported'.

/** @param {string} what */
function unsupported(what) {
  return new Error(`unsupported: ${what}`);
}

/**
 * Explicit padding as [[top, bottom], [left, right]], or null for 'same' / 'valid'.
 * @param {'same' | 'valid' | number | number[]} padding
 * @returns {[[number, number], [number, number]] | null}
 */
function explicitPadding(padding) {
  if (padding === 'same' || padding === 'valid') return null;
  if (typeof padding === 'number')
    return [
      [padding, padding],
      [padding, padding],
    ];
  if (Array.isArray(padding) && padding.length === 4)
    return [
      [padding[0], padding[1]],
      [padding[2], padding[3]],
    ];
  throw unsupported(`padding ${JSON.stringify(padding)}`);
}

/** @param {[[number, number], [number, number]]} p */
function isZeroPadding(p) {
  return p[0][0] === 0 && p[0][1] === 0 && p[1][0] === 0 && p[1][1] === 0;
}

/** The custom layer classes, made once per tfjs-layers Layer class (one per tfjs instance). */
const customLayerCache = new WeakMap();

/** @param {any} tf */
function customLayers(tf) {
  const Base = tf.layers.Layer;
  const cached = customLayerCache.get(Base);
  if (cached) return cached;

  const single = (inputs) => (Array.isArray(inputs) ? inputs[0] : inputs);
  const singleShape = (shape) => (Array.isArray(shape[0]) ? shape[0] : shape);

  /** Pads height and width with a constant (here -Infinity, for max pooling). */
  class ConstantPadding2D extends Base {
    static className = 'ResNetNativeConstantPadding2D';
    constructor(args) {
      super(args);
      this.padding = args.padding;
      this.value = args.value;
    }
    computeOutputShape(inputShape) {
      const s = singleShape(inputShape);
      const [[t, b], [l, r]] = this.padding;
      return [s[0], s[1] == null ? null : s[1] + t + b, s[2] == null ? null : s[2] + l + r, s[3]];
    }
    call(inputs) {
      const x = single(inputs);
      const [[t, b], [l, r]] = this.padding;
      return tf.pad(
        x,
        [
          [0, 0],
          [t, b],
          [l, r],
          [0, 0],
        ],
        this.value,
      );
    }
    getConfig() {
      return { ...super.getConfig(), padding: this.padding, value: this.value };
    }
  }

  /** He et al.'s option A: x[:, ::s, ::s, :], then zero channels up to `filters`. */
  class ZeroPadShortcut extends Base {
    static className = 'ResNetNativeZeroPadShortcut';
    constructor(args) {
      super(args);
      this.filters = args.filters;
      this.strides = args.strides;
    }
    computeOutputShape(inputShape) {
      const s = singleShape(inputShape);
      const [sh, sw] = this.strides;
      return [s[0], s[1] == null ? null : Math.ceil(s[1] / sh), s[2] == null ? null : Math.ceil(s[2] / sw), this.filters];
    }
    call(inputs) {
      const x = single(inputs);
      const [n, h, w, c] = x.shape;
      const [sh, sw] = this.strides;
      const sub = sh === 1 && sw === 1 ? x : tf.stridedSlice(x, [0, 0, 0, 0], [n, h, w, c], [1, sh, sw, 1]);
      const extra = this.filters - c;
      if (extra < 0) throw unsupported(`zeroPadShortcut from ${c} to ${this.filters} channels`);
      if (extra === 0) return sub;
      const before = Math.floor(extra / 2);
      return tf.pad(sub, [
        [0, 0],
        [0, 0],
        [0, 0],
        [before, extra - before],
      ]);
    }
    getConfig() {
      return { ...super.getConfig(), filters: this.filters, strides: this.strides };
    }
  }

  const classes = { ConstantPadding2D, ZeroPadShortcut };
  customLayerCache.set(Base, classes);
  return classes;
}

/**
 * Builds the tfjs-layers model of `spec`.
 * @param {any} tf core ops plus tfjs-layers (`layers`, `input`, `model`), e.g. `{ ...tfc, ...tfl }`
 * @param {any} spec a ModelSpec
 * @returns {any} a tf.LayersModel whose layers carry the spec's layer names
 */
export function tfjsModelFromSpec(tf, spec) {
  if (!spec || spec.format !== 'resnet-native/model') throw new Error('tfjsModelFromSpec: not a ModelSpec');
  const L = tf.layers;
  const custom = customLayers(tf);
  const input = tf.input({ shape: [...spec.inputShape], name: 'input' });
  /** @type {Map<string, any>} */
  const out = new Map([['input', input]]);
  const get = (name) => {
    const t = out.get(name);
    if (!t) throw new Error(`tfjsModelFromSpec: layer input '${name}' is not defined before use`);
    return t;
  };

  for (const layer of spec.layers) {
    const name = layer.name;
    const x = get(layer.inputs[0]);
    let y;
    switch (layer.type) {
      case 'conv2d': {
        if (layer.groups !== 1) throw unsupported(`grouped convolution '${name}' (groups ${layer.groups})`);
        const pad = explicitPadding(layer.padding);
        let xin = x;
        if (pad && !isZeroPadding(pad)) xin = L.zeroPadding2d({ padding: pad, name: `${name}__pad` }).apply(x);
        y = L.conv2d({
          name,
          filters: layer.filters,
          kernelSize: [...layer.kernelSize],
          strides: [...layer.strides],
          dilationRate: [...layer.dilations],
          padding: pad ? 'valid' : layer.padding,
          useBias: layer.useBias,
        }).apply(xin);
        break;
      }
      case 'batchNorm':
        y = L.batchNormalization({ name, axis: -1, epsilon: layer.epsilon, momentum: 1 - layer.momentum }).apply(x);
        break;
      case 'relu':
        y = L.reLU({ name }).apply(x);
        break;
      case 'add':
        y = L.add({ name }).apply(layer.inputs.map(get));
        break;
      case 'maxPool':
      case 'avgPool': {
        const pad = explicitPadding(layer.padding);
        let xin = x;
        if (pad && !isZeroPadding(pad)) {
          if (layer.type === 'avgPool') {
            throw unsupported(`avgPool '${name}' with explicit padding (ours excludes the padding from the average)`);
          }
          xin = new custom.ConstantPadding2D({ name: `${name}__pad`, padding: pad, value: -Infinity }).apply(x);
        }
        const args = { name, poolSize: [...layer.poolSize], strides: [...layer.strides], padding: pad ? 'valid' : layer.padding };
        y = (layer.type === 'maxPool' ? L.maxPooling2d(args) : L.averagePooling2d(args)).apply(xin);
        break;
      }
      case 'globalAvgPool':
        y = L.globalAveragePooling2d({ name }).apply(x);
        break;
      case 'flatten':
        y = L.flatten({ name }).apply(x);
        break;
      case 'dense':
        y = L.dense({ name, units: layer.units, useBias: layer.useBias }).apply(x);
        break;
      case 'zeroPad': {
        const p = layer.padding;
        y = L.zeroPadding2d({
          name,
          padding: [
            [p[0], p[1]],
            [p[2], p[3]],
          ],
        }).apply(x);
        break;
      }
      case 'zeroPadShortcut':
        y = new custom.ZeroPadShortcut({ name, filters: layer.filters, strides: [...layer.strides] }).apply(x);
        break;
      case 'squeezeExcite': {
        const c = x.shape[x.shape.length - 1];
        const pooled = L.globalAveragePooling2d({ name: `${name}__pool` }).apply(x);
        const h = L.dense({ name: `${name}.fc1`, units: layer.hidden, activation: 'relu' }).apply(pooled);
        const s = L.dense({ name: `${name}.fc2`, units: c, activation: 'sigmoid' }).apply(h);
        const s4 = L.reshape({ name: `${name}__reshape`, targetShape: [1, 1, c] }).apply(s);
        y = L.multiply({ name }).apply([x, s4]);
        break;
      }
      default:
        throw unsupported(`layer type '${layer.type}' ('${name}')`);
    }
    out.set(name, y);
  }
  return tf.model({ inputs: input, outputs: get(spec.output), name: spec.name });
}

/**
 * Our parameter names → the tfjs LayerVariables holding them.
 * @param {any} tfModel from tfjsModelFromSpec
 * @param {any} spec the same ModelSpec
 * @returns {Map<string, any>}
 */
export function tfjsLayerVariables(tfModel, spec) {
  /** @type {Map<string, any>} */
  const vars = new Map();
  const need = (name, v) => {
    if (!v) throw new Error(`tfjs model has no variable for parameter '${name}'`);
    vars.set(name, v);
  };
  for (const layer of spec.layers) {
    const n = layer.name;
    switch (layer.type) {
      case 'conv2d':
      case 'dense': {
        const l = tfModel.getLayer(n);
        need(`${n}.weight`, l.kernel);
        if (layer.useBias) need(`${n}.bias`, l.bias);
        break;
      }
      case 'batchNorm': {
        const l = tfModel.getLayer(n);
        need(`${n}.weight`, l.gamma);
        need(`${n}.bias`, l.beta);
        need(`${n}.running_mean`, l.movingMean);
        need(`${n}.running_var`, l.movingVariance);
        break;
      }
      case 'squeezeExcite':
        for (const fc of ['fc1', 'fc2']) {
          const l = tfModel.getLayer(`${n}.${fc}`);
          need(`${n}.${fc}.weight`, l.kernel);
          need(`${n}.${fc}.bias`, l.bias);
        }
        break;
      default:
        break;
    }
  }
  return vars;
}

/**
 * Our parameter names → the tf.Variables behind them (for tf.variableGrads and optimizers,
 * whose gradient maps are keyed by `variable.name`).
 * @param {any} tfModel
 * @param {any} spec
 * @returns {Map<string, any>}
 */
export function tfjsVariables(tfModel, spec) {
  const vars = new Map();
  for (const [name, v] of tfjsLayerVariables(tfModel, spec)) vars.set(name, v.read());
  return vars;
}

/**
 * Copies every parameter of a Model (or a list of { name, shape, values }) into the tfjs
 * model, by name. Throws when a parameter has no tfjs counterpart, a shape differs, or a
 * tfjs weight is left without a value.
 * @param {any} tf core ops (`tensor`)
 * @param {{ parameters(): Iterable<{ name: string, shape: readonly number[], values: Float32Array }> } | Iterable<{ name: string, shape: readonly number[], values: Float32Array }>} source
 * @param {any} tfModel
 * @param {any} spec
 */
export function copyWeightsToTfjs(tf, source, tfModel, spec) {
  const params = typeof source.parameters === 'function' ? source.parameters() : source;
  const vars = tfjsLayerVariables(tfModel, spec);
  const done = new Set();
  for (const p of params) {
    const v = vars.get(p.name);
    if (!v) throw new Error(`copyWeightsToTfjs: parameter '${p.name}' has no tfjs variable`);
    const shape = [...p.shape];
    if (JSON.stringify(shape) !== JSON.stringify(v.shape)) {
      throw new Error(`copyWeightsToTfjs: '${p.name}' has shape [${shape}] but the tfjs variable has [${v.shape}]`);
    }
    const t = tf.tensor(p.values, shape, 'float32');
    v.write(t);
    t.dispose();
    done.add(p.name);
  }
  for (const name of vars.keys()) {
    if (!done.has(name)) throw new Error(`copyWeightsToTfjs: no value for tfjs variable '${name}'`);
  }
}
