// Keras' own files, as bytes in memory: what loadKeras and loadKerasModel need from them (the
// model's config and each layer's weights by their Keras names).
//
//   .keras (Keras 3)  a zip: config.json (the model's serialized config: { class_name:
//                     'Functional', config: { layers, input_layers, output_layers } }),
//                     metadata.json ({ keras_version }), model.weights.h5 (HDF5). In the
//                     weights file each layer is a group `…/layers/<key>/vars` whose datasets
//                     '0', '1', … are the layer's variables in the layer's own order; the key is
//                     the snake-cased class name made unique ('conv2d', 'conv2d_1', …), and
//                     the vars group names the layer in its 'name' attribute (recent Keras 3
//                     releases; files without it are matched by the key, computed from the
//                     config's layers in order as Keras' saving code does).
//   .h5 (Keras 2, tf.keras, and Keras 3's legacy writer)  HDF5: root attribute model_config
//                     (the same config as JSON text), group model_weights with attribute
//                     layer_names; each layer's group has attribute weight_names
//                     ('conv1/kernel:0' in Keras 2, 'conv1/kernel' in Keras 3), and each weight
//                     is the dataset at `model_weights/<layer>/<weight name>`.
//
// The variables of the layers that carry weights here (Conv2D, Dense, BatchNormalization) are
// named the way Keras names them (kernel, bias; gamma, beta, moving_mean, moving_variance), so
// that the mapping code (keras.ts) sees .keras, .h5 and tfjs files alike.
import { ResNetError } from '../errors.js';
import * as validate from '../validate.js';
import { type Hdf5Dataset, type Hdf5Group, type Hdf5Node, readHdf5 } from './hdf5.js';
import { parseJsonText } from './json_text.js';
import { ZipArchive } from './zip_archive.js';

export interface KerasFileWeight {
  /** The weight's name in the file ('conv1/kernel', 'layers/conv2d/vars/0'), for messages. */
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface KerasFileContents {
  /** The model's config (class_name, config.layers, …), as in model.json's modelTopology. */
  topology: Record<string, unknown>;
  /** Keras layer name → its weights by Keras' short name (kernel, gamma, …). */
  weights: Map<string, Map<string, KerasFileWeight>>;
  /** The Keras version that wrote the file, when it says. */
  kerasVersion: string | undefined;
}

const MAX_CONFIG_BYTES = 64 << 20;
/** Far above a ResNet-152's weights (240 MB). */
export const MAX_WEIGHTS_BYTES = 2 ** 31 - 1;

function formatError(where: string, what: string): ResNetError {
  return new ResNetError('E_FORMAT', `${where} ${what}`);
}

/** The variables of a layer class in Keras' order, given its config. */
function variableNames(className: string, config: Record<string, unknown>): string[] | undefined {
  switch (className) {
    case 'Conv2D':
    case 'Convolution2D':
    case 'Dense':
      return config.use_bias === false ? ['kernel'] : ['kernel', 'bias'];
    case 'BatchNormalization':
      return [...(config.scale === false ? [] : ['gamma']), ...(config.center === false ? [] : ['beta']), 'moving_mean', 'moving_variance'];
    case 'Normalization':
      return ['mean', 'variance', 'count'];
    default:
      return undefined;
  }
}

interface ConfigLayer {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** The layers of a nested model. */
  inner: ConfigLayer[] | undefined;
}

/** Every layer of a model config, nested models kept nested. */
function configLayers(topology: Record<string, unknown>, where: string, depth = 0): ConfigLayer[] {
  if (depth > 64) throw formatError(where, 'nests models more than 64 deep');
  const config = topology.config;
  const list = Array.isArray(config) ? config : validate.isPlainObject(config) && Array.isArray(config.layers) ? config.layers : [];
  return list.filter(validate.isPlainObject).map((l) => {
    const cfg = validate.isPlainObject(l.config) ? l.config : {};
    const name = typeof l.name === 'string' ? l.name : typeof cfg.name === 'string' ? cfg.name : '';
    const className = String(l.class_name ?? '');
    const nested = className === 'Functional' || className === 'Model' || className === 'Sequential';
    return { name, className, config: cfg, inner: nested ? configLayers(l, where, depth + 1) : undefined };
  });
}

/** Keras' naming.to_snake_case: 'Conv2D' → 'conv2d', 'BatchNormalization' → 'batch_normalization', 'ReLU' → 're_lu'. */
function snakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

function parseConfig(text: string, where: string): Record<string, unknown> {
  const json = parseJsonText(text, where);
  if (!validate.isPlainObject(json)) throw formatError(where, 'must hold a JSON object (the model config)');
  return json;
}

function datasetsOf(tree: Map<string, Hdf5Node>, group: Hdf5Group): Hdf5Dataset[] {
  return group.children.map((c) => tree.get(`${group.path === '/' ? '' : group.path}/${c}`)).filter((n): n is Hdf5Dataset => n?.kind === 'dataset');
}

function floatWeight(d: Hdf5Dataset, where: string, layer: string): KerasFileWeight {
  if (d.type !== 'float' || !d.data) {
    throw formatError(
      where,
      `layer '${layer}': weight '${d.path}' is ${d.type === 'other' ? 'of a non-numeric type' : `${d.type} data`}, not floating point`,
    );
  }
  return { name: d.path, shape: d.shape, data: d.data };
}

/** Keras 3's model.weights.h5: every `…/vars` group with datasets, matched to its layer. */
function kerasWeightsFromVars(
  tree: Map<string, Hdf5Node>,
  topology: Record<string, unknown>,
  where: string,
): Map<string, Map<string, KerasFileWeight>> {
  const layers = configLayers(topology, where);
  const byName = new Map<string, ConfigLayer>();
  const index = (list: ConfigLayer[]) => {
    for (const l of list) {
      byName.set(l.name, l);
      if (l.inner) index(l.inner);
    }
  };
  index(layers);
  // Keras' own keys for the layers of a model, in config order: snake_case(class) made unique.
  const keyed = new Map<string, ConfigLayer>();
  const assignKeys = (prefix: string, list: ConfigLayer[]) => {
    const used = new Map<string, number>();
    for (const l of list) {
      const base = snakeCase(l.className);
      const n = used.get(base) ?? 0;
      used.set(base, n + 1);
      const key = `${prefix}/layers/${n === 0 ? base : `${base}_${n}`}`;
      keyed.set(`${key}/vars`, l);
      if (l.inner) assignKeys(key, l.inner);
    }
  };
  assignKeys('', layers);

  const out = new Map<string, Map<string, KerasFileWeight>>();
  for (const node of tree.values()) {
    if (node.kind !== 'group' || !node.path.endsWith('/vars')) continue;
    const datasets = datasetsOf(tree, node);
    if (datasets.length === 0) continue;
    const named = typeof node.attrs.name === 'string' ? byName.get(node.attrs.name) : undefined;
    const layer = named ?? keyed.get(node.path);
    if (!layer) {
      throw formatError(where, `holds weights at '${node.path}' that belong to no layer of config.json`);
    }
    if (out.has(layer.name)) throw formatError(where, `holds two sets of weights for layer '${layer.name}'`);
    const names = variableNames(layer.className, layer.config) ?? datasets.map((_, i) => `variable_${i}`);
    const ordered = names.map((_, i) => datasets.find((d) => d.path.endsWith(`/${i}`)));
    if (datasets.length !== names.length || ordered.some((d) => d === undefined)) {
      throw formatError(
        where,
        `layer '${layer.name}' (${layer.className}) has ${datasets.length} variables at '${node.path}', but a ${layer.className} with this config has ${names.length} (${names.join(', ')})`,
      );
    }
    out.set(layer.name, new Map(names.map((n, i) => [n, floatWeight(ordered[i]!, where, layer.name)])));
  }
  return out;
}

/** A .keras archive (Keras 3). `where` names it in errors ("loadKeras: 'm.keras'"). */
export async function readKerasArchive(bytes: Uint8Array, where: string): Promise<KerasFileContents> {
  const zip = new ZipArchive(bytes, where);
  if (!zip.has('config.json')) throw formatError(where, 'is a zip archive without config.json, so not a Keras 3 .keras file');
  const topology = parseConfig(new TextDecoder().decode(zip.read('config.json', MAX_CONFIG_BYTES)), `${where} config.json`);
  let kerasVersion: string | undefined;
  if (zip.has('metadata.json')) {
    const meta = parseJsonText(new TextDecoder().decode(zip.read('metadata.json', 1 << 20)), `${where} metadata.json`);
    if (validate.isPlainObject(meta) && typeof meta.keras_version === 'string') kerasVersion = meta.keras_version;
  }
  if (!zip.has('model.weights.h5')) {
    const sharded = zip.names().some((n) => n.endsWith('.weights.json'));
    throw formatError(
      where,
      sharded
        ? 'holds sharded weights (model.weights.json); save the model unsharded (model.save(path) without max_shard_size)'
        : 'has no model.weights.h5 (saved without weights, or with a weights format other than HDF5)',
    );
  }
  const tree = await readHdf5(zip.read('model.weights.h5', MAX_WEIGHTS_BYTES), `${where} model.weights.h5`);
  return { topology, weights: kerasWeightsFromVars(tree, topology, `${where} model.weights.h5`), kerasVersion };
}

function stringList(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  if (Array.isArray(v) && v.length === 0) return [];
  return undefined;
}

/** A Keras HDF5 model file (.h5 from Keras 2, tf.keras or Keras 3's legacy writer). */
export async function readKerasH5(bytes: Uint8Array, where: string): Promise<KerasFileContents> {
  const tree = await readHdf5(bytes, where);
  const root = tree.get('/');
  if (!root || root.kind !== 'group') throw formatError(where, 'has no root group');
  const configText = root.attrs.model_config;
  if (typeof configText !== 'string') {
    const weightsOnly = root.attrs.layer_names !== undefined;
    throw formatError(
      where,
      weightsOnly
        ? 'holds weights only (model.save_weights), without the model config that maps them onto layers; save the whole model (model.save) instead'
        : 'is an HDF5 file without a model_config attribute, so not a Keras model file',
    );
  }
  const topology = parseConfig(configText, `${where} model_config`);
  const kerasVersion = typeof root.attrs.keras_version === 'string' ? root.attrs.keras_version : undefined;
  const group = tree.get('/model_weights');
  if (!group || group.kind !== 'group') throw formatError(where, "has no 'model_weights' group (saved without weights?)");
  const layerNames = stringList(group.attrs.layer_names);
  if (!layerNames) throw formatError(where, "'model_weights' has no layer_names attribute");
  const known = new Set<string>();
  const index = (list: ConfigLayer[]) => {
    for (const l of list) {
      known.add(l.name);
      if (l.inner) index(l.inner);
    }
  };
  index(configLayers(topology, where));
  const out = new Map<string, Map<string, KerasFileWeight>>();
  for (const layer of layerNames) {
    const g = tree.get(`/model_weights/${layer}`);
    if (!g || g.kind !== 'group') throw formatError(where, `lists layer '${layer}' in layer_names but has no group for it`);
    const weightNames = stringList(g.attrs.weight_names) ?? [];
    for (const wn of weightNames) {
      const d = tree.get(`/model_weights/${layer}/${wn}`);
      if (!d || d.kind !== 'dataset') throw formatError(where, `layer '${layer}' lists weight '${wn}' but the file has no dataset for it`);
      const parts = wn.replace(/:\d+$/, '').split('/');
      const short = parts[parts.length - 1]!;
      const owner = parts.length >= 2 && known.has(parts[parts.length - 2]!) ? parts[parts.length - 2]! : layer;
      let own = out.get(owner);
      if (!own) out.set(owner, (own = new Map()));
      if (own.has(short)) throw formatError(where, `layer '${owner}' has two weights named '${short}'`);
      own.set(short, floatWeight(d, where, owner));
    }
  }
  return { topology, weights: out, kerasVersion };
}
