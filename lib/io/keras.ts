// Weights from Keras / TensorFlow.js: Keras' own .keras and .h5 files (keras_files.ts reads
// them), or a model saved in the tfjs "layers-model" format (tfjs-layers'
// `model.save('file://dir')`, or `tensorflowjs_converter --input_format keras`):
//
//   model.json   { modelTopology: the Keras model config (class_name, config.layers with
//                  inbound_nodes, …), weightsManifest: [{ paths: [shard files], weights:
//                  [{ name: 'layer/kernel', shape, dtype, quantization? }] }], … }
//   shards       the weights of each manifest group, concatenated in manifest order, split
//                into the files of `paths` (relative to model.json's folder).
//
// Keras layouts are ours (conv kernels HWIO [kh, kw, in/groups, out], dense kernels [in, out],
// batch-norm gamma / beta / moving_mean / moving_variance), so weights are copied as they are;
// what this module does is decide which Keras layer feeds which of our layers:
//
// * by name ('name'): every conv2d / batchNorm / dense layer of ours (and each squeeze-excite's
//   `${name}.fc1` / `${name}.fc2`) has a Keras layer of that name — a model made from our spec
//   (test/support/tfjs_from_spec.mjs), or one written with torchvision-style names;
// * by structure ('structure'), otherwise: our weighted layers are taken in topological order and
//   each is matched to the one unused Keras layer of the same kind (Conv2D, BatchNormalization,
//   Dense) that reads the outputs of the Keras layers already matched to the weighted layers ours
//   reads (through any weightless layers: ReLU, Add, padding, pooling, …), with the same weight
//   shapes. This is positional matching in topological order, made robust by the graph: Keras
//   lists layers by depth, so a block's shortcut convolution may come before or between the
//   branch's layers (Keras applications' ResNet50 lists conv2_block1_0_conv after
//   conv2_block1_2_relu), and in the first bottleneck of a ResNet-50 the shortcut and the last
//   branch convolution have the same shape (64 → 256): order and shapes alone would swap them
//   silently. Where two unused candidates fit equally, the first in Keras' order is taken.
//   Every step checks the weight shapes; the first layer that fits nothing is an E_FORMAT
//   naming both sides and the shapes.
//
// Also checked, before any parameter is set (a failed load leaves the model as it was): no
// Keras layer with weights is left over, no weight belongs to no layer, a Keras layer with a
// bias maps to a layer of ours with one (ours having a bias that Keras lacks gets zeros, which
// is exact; likewise a batch norm with center/scale off gets beta 0 / gamma 1), convolution
// strides and dilations agree, and batch-norm epsilons agree.
//
// Epsilon: Keras' BatchNormalization defaults to epsilon 1e-3, Keras applications use 1.001e-5,
// PyTorch (and our default) 1e-5. A model whose epsilon differs from the file's computes
// different outputs with the same weights, so a mismatch is an E_FORMAT naming the layers and
// both values (build the model with `bnEpsilon` set to the file's), unless
// `allowEpsilonMismatch: true`: then the weights load, the model keeps its own epsilon and the
// result lists the mismatches. Padding, activations and pooling are not compared: the
// architecture of the model is the caller's to match.
//
// Weight dtypes: float32, and tfjs' quantized weights (float16, and uint8 / uint16 with scale
// and min), dequantized to float32. Errors are ResNetError: 'E_ARG' (arguments), 'E_IO' (a file
// that cannot be read or is not a regular file, naming it), 'E_FORMAT' (anything wrong in or
// between the files, a shard outside the model's folder included).
import { type FileHandle, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import { ResNetError } from '../errors.js';
import { Model } from '../model/model.js';
import type { LayerSpec } from '../model/spec.js';
import * as validate from '../validate.js';
import { parseJsonText } from './json_text.js';
import { checkParameterValues } from './parameter_values.js';
import { openRegularFile, readError, readExactly, readInto } from './read_file.js';
import { looksLikeHdf5 } from './hdf5.js';
import { looksLikeZip } from './zip_archive.js';
import { float16ToFloat32 } from './half_float.js';
import { describeBytes, describeFile, wrongFormatErrorFor } from './file_kind.js';
import { type KerasFileContents, MAX_WEIGHTS_BYTES, readKerasArchive, readKerasH5 } from './keras_files.js';

export interface LoadKerasOptions {
  /** 'auto' (default): 'name' when every weighted layer of ours has a Keras layer of its name, else 'structure'. */
  mapping?: 'auto' | 'name' | 'structure';
  /** Load even where a batch-norm epsilon differs from the model's (the model keeps its own). Default false: E_FORMAT. */
  allowEpsilonMismatch?: boolean;
}

export interface KerasEpsilonMismatch {
  /** Our batch-norm layer. */
  layer: string;
  kerasLayer: string;
  epsilon: number;
  kerasEpsilon: number;
}

export interface LoadKerasResult {
  mapping: 'name' | 'structure';
  /** Each weighted layer of ours (squeeze-excite as `${name}.fc1` / `.fc2`) and the Keras layer it was loaded from. */
  layers: { layer: string; kerasLayer: string }[];
  /** Our parameter names that were set. */
  loaded: string[];
  /** Batch norms whose epsilon differs (only with allowEpsilonMismatch; otherwise they are an error). */
  epsilonMismatches: KerasEpsilonMismatch[];
}

const OP = 'loadKeras';
const LIST_MAX = 12;

type Kind = 'conv' | 'bn' | 'dense';

const KIND_OF_CLASS: Record<string, Kind> = {
  Conv2D: 'conv',
  Convolution2D: 'conv',
  Dense: 'dense',
  BatchNormalization: 'bn',
};

const KIND_NAMES: Record<Kind, string> = { conv: 'conv2d', bn: 'batchNorm', dense: 'dense' };

/** Our parameter suffix ← Keras weight name, per kind. */
const WEIGHT_NAMES: Record<Kind, [string, string][]> = {
  conv: [
    ['weight', 'kernel'],
    ['bias', 'bias'],
  ],
  dense: [
    ['weight', 'kernel'],
    ['bias', 'bias'],
  ],
  bn: [
    ['weight', 'gamma'],
    ['bias', 'beta'],
    ['running_mean', 'moving_mean'],
    ['running_var', 'moving_variance'],
  ],
};

function formatError(message: string): ResNetError {
  return new ResNetError('E_FORMAT', `${OP}: ${message}`);
}

function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** A name from the file, quoted and cut for messages (a hostile one may be megabytes long). */
function quoted(name: string): string {
  return `'${name.length > 200 ? `${name.slice(0, 120)}…${name.slice(-60)}` : name}'`;
}

function listed(items: string[]): string {
  const shown = items.slice(0, LIST_MAX).join('; ');
  return items.length > LIST_MAX ? `${shown}; … and ${items.length - LIST_MAX} more` : shown;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function setText(names: Iterable<string>): string {
  const all = [...names];
  return all.length === 0 ? 'the network input' : all.map((n) => `'${n}'`).join(' + ');
}

// ---------------------------------------------------------------------------------------
// The Keras graph: every layer (nested models flattened) with the layers it reads.

export interface KerasNode {
  name: string;
  className: string;
  config: Record<string, unknown>;
  /** Names of the nodes it reads; [] for the network input. */
  inputs: string[];
}

export class KerasGraph {
  readonly nodes = new Map<string, KerasNode>();
  /** Node names in the order the topology lists them (topological). */
  readonly order: string[] = [];

  add(node: KerasNode): void {
    if (this.nodes.has(node.name)) {
      throw formatError(`the topology has two layers named '${node.name}' (nested models with clashing names are not supported)`);
    }
    this.nodes.set(node.name, node);
    this.order.push(node.name);
  }
}

function layerName(layer: Record<string, unknown>, where: string): string {
  const cfg = validate.isPlainObject(layer.config) ? layer.config : {};
  const name = typeof layer.name === 'string' ? layer.name : cfg.name;
  if (typeof name !== 'string' || name.length === 0) throw formatError(`${where}: a layer has no name`);
  return name;
}

/** The layer names a Keras 2 (`[[name, node, tensor, kwargs], …]`) or Keras 3 (`{ args, kwargs }` with keras_history) inbound node reads. */
function inboundNames(node: unknown, where: string): string[] {
  const out: string[] = [];
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      if (v.length >= 3 && typeof v[0] === 'string' && typeof v[1] === 'number' && typeof v[2] === 'number') {
        out.push(v[0]);
        // Keras 2 op layers (TFOpLambda) may pass more tensors in the call's kwargs: {"y": [name, 0, 0]}.
        if (v.length > 3) visit(v[3]);
        return;
      }
      v.forEach(visit);
    } else if (validate.isPlainObject(v)) {
      if (validate.isPlainObject(v.config) && Array.isArray(v.config.keras_history)) {
        const h = v.config.keras_history;
        if (typeof h[0] === 'string') out.push(h[0]);
        return;
      }
      for (const x of Object.values(v)) visit(x);
    }
  };
  if (Array.isArray(node)) node.forEach(visit);
  else if (validate.isPlainObject(node)) {
    visit(node.args);
    visit(node.kwargs);
  } else {
    throw formatError(`${where}: malformed inbound node ${JSON.stringify(node)?.slice(0, 80)}`);
  }
  return out;
}

/**
 * Adds a model's layers to the graph. `inputs`: what the model's inputs read (the outer
 * graph's nodes), [] at the top. Returns the names of the nodes holding its outputs.
 */
function addModel(graph: KerasGraph, topology: Record<string, unknown>, inputs: string[], where: string): string[] {
  const className = String(topology.class_name ?? '');
  const config = topology.config;
  if (className === 'Sequential') {
    const layers = Array.isArray(config) ? config : validate.isPlainObject(config) && Array.isArray(config.layers) ? config.layers : undefined;
    if (!layers) throw formatError(`${where}: Sequential model without a layer list`);
    let prev = inputs;
    for (const l of layers) {
      if (!validate.isPlainObject(l)) throw formatError(`${where}: a layer entry is not an object`);
      prev = [addLayer(graph, l, prev, where)];
    }
    return prev;
  }
  if (className === 'Model' || className === 'Functional' || validate.isPlainObject(config)) {
    if (!validate.isPlainObject(config) || !Array.isArray(config.layers)) throw formatError(`${where}: model '${className}' has no config.layers`);
    const inputNames = Array.isArray(config.input_layers) ? inboundNames(config.input_layers, where) : [];
    for (const l of config.layers) {
      if (!validate.isPlainObject(l)) throw formatError(`${where}: a layer entry is not an object`);
      const name = layerName(l, where);
      const nodes = Array.isArray(l.inbound_nodes) ? l.inbound_nodes : [];
      if (nodes.length > 1) {
        throw formatError(`${where}: layer '${name}' is called ${nodes.length} times (shared layers are not supported)`);
      }
      let reads: string[];
      if (nodes.length === 1) {
        reads = inboundNames(nodes[0], `${where}: layer '${name}'`);
      } else {
        // An input layer: inside a nested model it reads what the outer call passed in.
        const k = inputNames.indexOf(name);
        reads = k >= 0 && k < inputs.length && inputNames.length === inputs.length ? [inputs[k]!] : [...inputs];
      }
      addLayer(graph, l, reads, where);
    }
    const outs = Array.isArray(config.output_layers) ? inboundNames(config.output_layers, where) : [];
    return outs.length > 0 ? outs : [graph.order[graph.order.length - 1]!];
  }
  throw formatError(`${where}: unsupported model class '${className}'`);
}

/** Adds one layer (a nested model is flattened and stands for its outputs); returns its node name. */
function addLayer(graph: KerasGraph, layer: Record<string, unknown>, reads: string[], where: string): string {
  const name = layerName(layer, where);
  const className = String(layer.class_name ?? '');
  const config = validate.isPlainObject(layer.config) ? layer.config : {};
  if (className === 'Sequential' || className === 'Model' || className === 'Functional') {
    const outs = addModel(graph, layer, reads, `${where} > '${name}'`);
    graph.add({ name, className: 'NestedModelOutput', config: {}, inputs: outs });
    return name;
  }
  graph.add({ name, className, config, inputs: reads });
  return name;
}

// ---------------------------------------------------------------------------------------
// model.json and the weight shards

interface KerasWeight {
  /** The manifest name, e.g. 'conv1/kernel'. */
  name: string;
  shape: number[];
  decode: () => Float32Array;
}

export interface KerasFile {
  graph: KerasGraph;
  /** Keras layer name → its weights by short name (kernel, gamma, …). */
  weights: Map<string, Map<string, KerasWeight>>;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/** model.json holds the topology and the manifest only (a ResNet-152's is about 1 MB). */
const MAX_MODEL_JSON_BYTES = 64 << 20;

/** Where the caller's path leads: a tfjs model folder means its model.json. */
async function resolveModelPath(path: string): Promise<string> {
  let file = path.startsWith('file://') ? path.slice('file://'.length) : path;
  try {
    if ((await stat(file)).isDirectory()) {
      const json = join(file, 'model.json');
      const saved = await describeFile(file);
      if (saved.kind === 'savedmodel') throw wrongFormatErrorFor(OP, file, saved, 'a Keras model');
      file = json;
    }
  } catch (err) {
    if (err instanceof ResNetError) throw err;
    // reported by readRegularFile
  }
  return file;
}

/**
 * The whole file, under the cap of what its first bytes say it is: a .keras zip or an HDF5
 * file may be as large as a model's weights, anything else (a model.json) 64 MiB — checked
 * before the rest is read.
 */
async function readModelFile(file: string, op: string): Promise<Uint8Array> {
  const { handle, size } = await openRegularFile(file, op);
  try {
    const head = await readExactly(handle, 0, Math.min(size, 4096), op, file);
    const binary = looksLikeZip(head) || looksLikeHdf5(head);
    const max = binary ? MAX_WEIGHTS_BYTES : MAX_MODEL_JSON_BYTES;
    if (size > max) {
      throw new ResNetError(
        'E_FORMAT',
        `${op}: ${file} is ${size} bytes, above the limit of ${max} bytes for ${binary ? 'a Keras model file' : 'a model.json'}`,
      );
    }
    return size === head.length ? head : await readExactly(handle, 0, size, op, file);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The JSON of a tfjs model.json already read. */
function parseModelJson(bytes: Uint8Array, file: string): Record<string, unknown> {
  const json = parseJsonText(new TextDecoder().decode(bytes), `${OP}: '${file}'`);
  if (!validate.isPlainObject(json)) throw formatError(`'${file}' must hold a JSON object`);
  return json;
}

/**
 * A manifest group's weights: its shards concatenated. Shards must be files inside model.json's
 * folder (tfjs writes them there) also after resolving symlinks (a link pointing elsewhere is
 * refused like a '../' path: E_FORMAT), must be regular files (E_IO otherwise), and must add up
 * to the manifest's size before anything is read.
 */
async function readShards(dir: string, paths: unknown[], needed: number, where: string): Promise<Uint8Array> {
  const outside = (root: string, p: string) => {
    const rel = relative(root, p);
    return rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
  };
  let realDir: string;
  try {
    realDir = await realpath(dir);
  } catch (err) {
    throw readError(OP, dir, err);
  }
  const shards: { path: string; handle: FileHandle; size: number }[] = [];
  try {
    for (const p of paths) {
      if (typeof p !== 'string' || p.length === 0) throw formatError(`${where}: paths must be file names`);
      let shardName = p;
      try {
        shardName = decodeURIComponent(p); // manifests hold URL paths ('group1-shard1of2.bin', maybe %-escaped)
      } catch {
        // not %-encoded: use as is
      }
      const shardPath = resolve(dir, shardName);
      if (outside(dir, shardPath)) throw formatError(`${where}: weight shard path '${p}' is not a file inside the model's folder ${dir}`);
      let real: string;
      try {
        real = await realpath(shardPath);
      } catch (err) {
        throw readError(OP, `weight shard ${shardPath} (${where})`, err);
      }
      if (outside(realDir, real)) {
        throw formatError(`${where}: weight shard '${p}' (${shardPath}) resolves to ${real}, outside the model's folder ${realDir}`);
      }
      shards.push({ path: shardPath, ...(await openRegularFile(real, OP)) });
    }
    const total = shards.reduce((a, s) => a + s.size, 0);
    if (total !== needed) {
      throw formatError(
        `${where}: the shards ${paths.join(', ')} hold ${total} bytes but the manifest's weights need ${needed} (truncated or mismatched files?)`,
      );
    }
    const data = new Uint8Array(total);
    let at = 0;
    for (const s of shards) {
      await readInto(s.handle, data.subarray(at, at + s.size), 0, OP, `weight shard ${s.path} (${where})`);
      at += s.size;
    }
    return data;
  } finally {
    await Promise.all(shards.map((s) => s.handle.close().catch(() => undefined)));
  }
}

/**
 * Which layer a weight belongs to: tfjs names weights `${scope}/${layer}/${weight}`, where the
 * scope (outer models) may be absent, so the owner is the longest '/'-separated tail of the
 * weight's path that names a layer. A trie of layer names keyed by their segments, last first,
 * finds it in one walk from the end of the path: time linear in the name, whatever its number
 * of segments (trying every tail as a string was quadratic: 69 s for a name of 50,000 '/').
 */
function ownerLookup(layerNames: Iterable<string>): (path: string) => string | undefined {
  interface Node {
    children: Map<string, Node>;
    layer: string | undefined;
  }
  const root: Node = { children: new Map(), layer: undefined };
  for (const name of layerNames) {
    let node = root;
    const segments = name.split('/');
    for (let i = segments.length - 1; i >= 0; i--) {
      let next = node.children.get(segments[i]!);
      if (!next) node.children.set(segments[i]!, (next = { children: new Map(), layer: undefined }));
      node = next;
    }
    node.layer = name;
  }
  return (path) => {
    let node: Node | undefined = root;
    let owner: string | undefined;
    for (let end = path.length; ;) {
      const start = path.lastIndexOf('/', end - 1) + 1;
      node = node.children.get(path.slice(start, end));
      if (!node) return owner;
      if (node.layer !== undefined) owner = node.layer;
      if (start === 0) return owner;
      end = start - 1;
    }
  };
}

function decodeWeight(bytes: Uint8Array, dtype: string, quant: Record<string, unknown> | undefined, numel: number, name: string): Float32Array {
  const buf = bytes.slice().buffer; // aligned copy
  if (quant) {
    const q = String(quant.dtype);
    if (q !== 'float16' && q !== 'uint8' && q !== 'uint16') {
      throw formatError(`weight '${name}': quantization dtype '${q}' is not one of float16, uint8, uint16`);
    }
    if (q === 'float16') return float16ToFloat32(new Uint16Array(buf, 0, numel));
    const scale = Number(quant.scale);
    const min = Number(quant.min);
    if (!Number.isFinite(scale) || !Number.isFinite(min)) throw formatError(`weight '${name}': ${q} quantization without a finite scale and min`);
    const src = q === 'uint8' ? new Uint8Array(buf, 0, numel) : new Uint16Array(buf, 0, numel);
    const out = new Float32Array(numel);
    for (let i = 0; i < numel; i++) out[i] = src[i]! * scale + min;
    return out;
  }
  if (dtype !== 'float32')
    throw formatError(`weight '${name}' is ${dtype}; only float32 (or float16 / uint8 / uint16 quantized) weights can be loaded`);
  return new Float32Array(buf, 0, numel);
}

/** The graph and weights of a .keras / .h5 file (keras_files.ts read it). */
function fromKerasFile(contents: KerasFileContents, file: string): KerasFile {
  const graph = new KerasGraph();
  addModel(graph, contents.topology, [], `'${file}' config`);
  const weights = new Map<string, Map<string, KerasWeight>>();
  for (const [layer, own] of contents.weights) {
    if (!graph.nodes.has(layer)) throw formatError(`'${file}' holds weights for a layer '${layer}' that its config does not define`);
    weights.set(layer, new Map([...own].map(([short, w]) => [short, { name: `${layer}/${short}`, shape: w.shape, decode: () => w.data }])));
  }
  return { graph, weights };
}

const KERAS_EXPECTED = 'a Keras model (.keras, .h5, or a TensorFlow.js model.json)';

/**
 * Reads a Keras model of any of the kinds this module knows: a .keras archive, a Keras HDF5
 * file, or a tfjs layers model.json (with its shards). Anything else is an E_FORMAT that says
 * what the file is (file_kind.ts).
 */
export async function readKerasFile(
  path: string,
  op = OP,
): Promise<KerasFile & { file: string; topology: Record<string, unknown>; kerasVersion?: string | undefined }> {
  const file = await resolveModelPath(path);
  const bytes = await readModelFile(file, op);
  const kind = describeBytes(bytes, file);
  // A zip of no known kind goes to the .keras reader too, whose error says what is wrong with it (CRC, truncation, no config.json).
  if (kind.kind === 'keras' || kind.kind === 'hdf5' || kind.kind === 'zip') {
    const isZip = kind.kind !== 'hdf5';
    const where = `${op}: '${file}'`;
    const contents = isZip ? await readKerasArchive(bytes, where) : await readKerasH5(bytes, where);
    return { ...fromKerasFile(contents, file), file, topology: contents.topology, kerasVersion: contents.kerasVersion };
  }
  if (kind.kind !== 'json' && kind.kind !== 'tfjs-layers') throw wrongFormatErrorFor(op, file, kind, KERAS_EXPECTED);
  const json = parseModelJson(bytes, file);
  let topology = json.modelTopology;
  if (validate.isPlainObject(topology) && validate.isPlainObject(topology.model_config)) topology = topology.model_config;
  if (!validate.isPlainObject(topology)) throw formatError(`'${file}' has no modelTopology (a weights-only manifest cannot be mapped onto layers)`);
  const manifest = json.weightsManifest;
  if (!Array.isArray(manifest)) throw formatError(`'${file}' has no weightsManifest array`);

  const graph = new KerasGraph();
  addModel(graph, topology, [], `'${file}' modelTopology`);

  const dir = dirname(resolve(file));
  const ownerOf = ownerLookup(graph.nodes.keys());
  const weights = new Map<string, Map<string, KerasWeight>>();
  for (let g = 0; g < manifest.length; g++) {
    const group = manifest[g];
    const where = `'${file}' weightsManifest[${g}]`;
    if (!validate.isPlainObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw formatError(`${where} must be { paths: [...], weights: [...] }`);
    }
    // Layout first, so that a malformed manifest fails before any shard is read.
    const specs: { name: string; shape: number[]; dtype: string; quant: Record<string, unknown> | undefined; numel: number; bytes: number }[] = [];
    let needed = 0;
    for (const w of group.weights) {
      if (!validate.isPlainObject(w) || typeof w.name !== 'string' || !Array.isArray(w.shape))
        throw formatError(`${where}: a weight entry lacks name or shape`);
      const shape = w.shape as unknown[];
      if (!shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
        throw formatError(`${where}: weight '${w.name}' has shape ${JSON.stringify(shape)}; dimensions must be non-negative integers`);
      }
      const dtype = w.dtype === undefined ? 'float32' : String(w.dtype);
      const quant = validate.isPlainObject(w.quantization) ? w.quantization : undefined;
      const stored = quant ? String(quant.dtype) : dtype;
      const size = BYTES[stored];
      if (size === undefined)
        throw formatError(`${where}: weight '${w.name}' has dtype '${stored}', which has no fixed size (string weights are not supported)`);
      const numel = (shape as number[]).reduce((a, b) => a * b, 1);
      specs.push({ name: w.name, shape: shape as number[], dtype, quant, numel, bytes: numel * size });
      needed += numel * size;
    }
    const data = await readShards(dir, group.paths, needed, where);
    let offset = 0;
    for (const s of specs) {
      const bytes = data.subarray(offset, offset + s.bytes);
      offset += s.bytes;
      const full = s.name.replace(/:\d+$/, '');
      const slash = full.lastIndexOf('/');
      if (slash <= 0) throw formatError(`${where}: weight ${quoted(s.name)} is not named 'layer/weight'`);
      const short = full.slice(slash + 1);
      const owner = ownerOf(full.slice(0, slash));
      if (owner === undefined) throw formatError(`weight ${quoted(s.name)} belongs to no layer of the topology`);
      let own = weights.get(owner);
      if (!own) weights.set(owner, (own = new Map()));
      if (own.has(short)) throw formatError(`layer '${owner}' has two weights named '${short}'`);
      own.set(short, { name: s.name, shape: s.shape, decode: () => decodeWeight(bytes, s.dtype, s.quant, s.numel, s.name) });
    }
  }
  return { graph, weights, file, topology };
}

// ---------------------------------------------------------------------------------------
// Units: the weighted layers, ours and Keras', with what they read.

interface OurUnit {
  /** Layer name, or `${se}.fc1` / `${se}.fc2`. */
  name: string;
  kind: Kind;
  /** Our parameters: suffix → shape. */
  params: Map<string, readonly number[]>;
  /** The weighted units whose outputs it reads (through weightless layers). */
  reads: Set<string>;
  layer: LayerSpec;
  /** A squeeze-excite's fc (a Keras 1×1 Conv2D may hold it too). */
  seFc: boolean;
}

interface KerasUnit {
  name: string;
  kind: Kind;
  className: string;
  config: Record<string, unknown>;
  weights: Map<string, KerasWeight>;
  reads: Set<string>;
  /** Position in the topology's layer list. */
  index: number;
}

function ourUnits(model: Model): OurUnit[] {
  const info = model.parameterInfo();
  const byName = new Map(info.map((p) => [p.name, p.shape]));
  const params = (prefix: string, suffixes: string[]): Map<string, readonly number[]> => {
    const m = new Map<string, readonly number[]>();
    for (const s of suffixes) {
      const shape = byName.get(`${prefix}.${s}`);
      if (shape) m.set(s, shape);
    }
    return m;
  };
  const outputs = new Map<string, Set<string>>([['input', new Set()]]);
  const readsOf = (inputs: string[]): Set<string> => {
    const s = new Set<string>();
    for (const i of inputs) for (const u of outputs.get(i) ?? []) s.add(u);
    return s;
  };
  const units: OurUnit[] = [];
  for (const layer of model.spec.layers) {
    const reads = readsOf(layer.inputs);
    switch (layer.type) {
      case 'conv2d':
      case 'dense':
      case 'batchNorm': {
        const kind: Kind = layer.type === 'conv2d' ? 'conv' : layer.type === 'dense' ? 'dense' : 'bn';
        units.push({
          name: layer.name,
          kind,
          params: params(
            layer.name,
            WEIGHT_NAMES[kind].map(([s]) => s),
          ),
          reads,
          layer,
          seFc: false,
        });
        outputs.set(layer.name, new Set([layer.name]));
        break;
      }
      case 'squeezeExcite': {
        const fc1 = `${layer.name}.fc1`;
        const fc2 = `${layer.name}.fc2`;
        units.push({ name: fc1, kind: 'dense', params: params(fc1, ['weight', 'bias']), reads, layer, seFc: true });
        units.push({ name: fc2, kind: 'dense', params: params(fc2, ['weight', 'bias']), reads: new Set([fc1]), layer, seFc: true });
        outputs.set(layer.name, new Set([...reads, fc2]));
        break;
      }
      default:
        outputs.set(layer.name, reads);
    }
  }
  return units;
}

function kerasUnits(k: KerasFile): KerasUnit[] {
  const { graph, weights } = k;
  for (const [name, w] of weights) {
    const node = graph.nodes.get(name)!;
    if (KIND_OF_CLASS[node.className] === undefined) {
      throw formatError(
        `Keras layer '${name}' (${node.className}) has weights (${[...w.keys()].join(', ')}), but resnet-native has no such layer ` +
          `(only Conv2D, BatchNormalization and Dense carry weights here)`,
      );
    }
  }
  const memo = new Map<string, Set<string>>();
  const outputUnits = (name: string, depth = 0): Set<string> => {
    const hit = memo.get(name);
    if (hit) return hit;
    const node = graph.nodes.get(name);
    if (!node) throw formatError(`the topology refers to a layer '${name}' that it does not define`);
    if (depth > 2000) throw formatError(`the topology is cyclic or too deep at layer '${name}'`);
    const s = KIND_OF_CLASS[node.className] !== undefined ? new Set([name]) : readsOfNode(node, depth);
    memo.set(name, s);
    return s;
  };
  const readsOfNode = (node: KerasNode, depth: number): Set<string> => {
    const s = new Set<string>();
    for (const i of node.inputs) for (const u of outputUnits(i, depth + 1)) s.add(u);
    return s;
  };
  const units: KerasUnit[] = [];
  graph.order.forEach((name, index) => {
    const node = graph.nodes.get(name)!;
    const kind = KIND_OF_CLASS[node.className];
    if (kind === undefined) return;
    units.push({
      name,
      kind,
      className: node.className,
      config: node.config,
      weights: weights.get(name) ?? new Map(),
      reads: readsOfNode(node, 0),
      index,
    });
  });
  return units;
}

// ---------------------------------------------------------------------------------------
// Fitting one Keras unit to one of ours

interface Fit {
  ok: boolean;
  /** Why not (when !ok). */
  why: string;
  /** Our parameter suffix → values (decoded lazily) when ok. */
  values: Map<string, () => Float32Array>;
}

function weightText(u: KerasUnit): string {
  const parts = [...u.weights.values()].map((w) => `${w.name.split('/').pop()} ${fmt(w.shape)}`);
  return parts.length > 0 ? parts.join(', ') : 'no weights';
}

function ourText(u: OurUnit): string {
  return `${KIND_NAMES[u.kind]} '${u.name}' (${[...u.params].map(([s, shape]) => `${s} ${fmt(shape)}`).join(', ')})`;
}

function fit(ours: OurUnit, keras: KerasUnit): Fit {
  const fail = (why: string): Fit => ({ ok: false, why, values: new Map() });
  const conv1x1AsDense = ours.seFc && ours.kind === 'dense' && keras.kind === 'conv';
  if (ours.kind !== keras.kind && !conv1x1AsDense) {
    return fail(`Keras '${keras.name}' is a ${keras.className}, ours '${ours.name}' is a ${KIND_NAMES[ours.kind]}`);
  }
  const values = new Map<string, () => Float32Array>();
  const used = new Set<string>();
  for (const [suffix, kerasName] of WEIGHT_NAMES[ours.kind]) {
    const shape = ours.params.get(suffix);
    const w = keras.weights.get(kerasName);
    if (w) used.add(kerasName);
    if (!shape) {
      if (w)
        return fail(
          `Keras '${keras.name}' has a ${kerasName} ${fmt(w.shape)} but ours '${ours.name}' has no ${suffix}${suffix === 'bias' ? ' (build the model with convBias: true)' : ''}`,
        );
      continue;
    }
    if (!w) {
      const numel = shape.reduce((a, b) => a * b, 1);
      // A missing bias / beta is 0 and a missing gamma 1 (use_bias, center, scale off): exact.
      if (suffix === 'bias' && (ours.kind !== 'bn' || keras.config.center === false)) {
        values.set(suffix, () => new Float32Array(numel));
        continue;
      }
      if (suffix === 'weight' && ours.kind === 'bn' && keras.config.scale === false) {
        values.set(suffix, () => new Float32Array(numel).fill(1));
        continue;
      }
      return fail(`Keras '${keras.name}' (${keras.className}) has no ${kerasName} for ours '${ours.name}.${suffix}' ${fmt(shape)}`);
    }
    const accepted = conv1x1AsDense && suffix === 'weight' ? [[1, 1, ...shape]] : [shape];
    if (!accepted.some((s) => validate.sameShape(s, w.shape))) {
      return fail(`Keras '${w.name}' is ${fmt(w.shape)} but ours '${ours.name}.${suffix}' needs ${accepted.map(fmt).join(' or ')}`);
    }
    values.set(suffix, w.decode);
  }
  const extra = [...keras.weights.keys()].filter((k) => !used.has(k));
  if (extra.length > 0)
    return fail(`Keras '${keras.name}' has weights ${extra.map((e) => `'${e}'`).join(', ')} that a ${KIND_NAMES[ours.kind]} does not`);
  return { ok: true, why: '', values };
}

// ---------------------------------------------------------------------------------------
// Mapping

function mapByName(ours: OurUnit[], keras: KerasUnit[], where: string): Map<OurUnit, KerasUnit> {
  const byName = new Map(keras.map((k) => [k.name, k]));
  const map = new Map<OurUnit, KerasUnit>();
  const missing: string[] = [];
  const problems: string[] = [];
  for (const u of ours) {
    const k = byName.get(u.name);
    if (!k) {
      missing.push(`'${u.name}'`);
      continue;
    }
    const f = fit(u, k);
    if (!f.ok) problems.push(f.why);
    map.set(u, k);
  }
  const used = new Set([...map.values()].map((k) => k.name));
  const extra = keras.filter((k) => !used.has(k.name)).map((k) => `'${k.name}' (${k.className}: ${weightText(k)})`);
  const parts: string[] = [];
  if (missing.length > 0) parts.push(`${missing.length} weighted layer(s) of ours have no Keras layer of that name: ${listed(missing)}`);
  if (problems.length > 0) parts.push(`${problems.length} layer(s) do not fit: ${listed(problems)}`);
  if (extra.length > 0) parts.push(`${extra.length} Keras layer(s) with weights that the model does not have: ${listed(extra)}`);
  if (parts.length > 0) throw formatError(`${where} (mapping by name): ${parts.join('. ')}`);
  return map;
}

function mapByStructure(ours: OurUnit[], keras: KerasUnit[], where: string): Map<OurUnit, KerasUnit> {
  const map = new Map<string, KerasUnit>();
  const used = new Set<string>();
  const result = new Map<OurUnit, KerasUnit>();
  ours.forEach((u, i) => {
    const want = new Set([...u.reads].map((r) => map.get(r)!.name));
    const readers = keras.filter((k) => !used.has(k.name) && sameSet(k.reads, want));
    let chosen: KerasUnit | undefined;
    const rejected: string[] = [];
    for (const k of readers) {
      const f = fit(u, k);
      if (f.ok) {
        chosen = k;
        break;
      }
      rejected.push(f.why);
    }
    if (!chosen) {
      const ourReads = u.reads.size === 0 ? 'the network input' : [...u.reads].map((r) => `'${r}'`).join(' + ');
      const detail =
        readers.length === 0
          ? `no unused Keras layer with weights reads ${setText(want)} (the Keras counterpart of ${ourReads})`
          : `the unused Keras layers reading ${setText(want)} do not fit: ${listed(rejected)}`;
      throw formatError(`${where} (mapping by structure): weighted layer #${i + 1} of ours, ${ourText(u)}: ${detail}`);
    }
    map.set(u.name, chosen);
    used.add(chosen.name);
    result.set(u, chosen);
  });
  const extra = keras.filter((k) => !used.has(k.name)).map((k) => `'${k.name}' (${k.className}: ${weightText(k)})`);
  if (extra.length > 0) {
    throw formatError(
      `${where} (mapping by structure): ${extra.length} Keras layer(s) with weights are left over, which the model does not have: ${listed(extra)}`,
    );
  }
  return result;
}

function pairOf(v: unknown): [number, number] | undefined {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0], v[1]];
  return undefined;
}

/**
 * Sets every parameter of `model` from a Keras model: a Keras 3 `.keras` file, a Keras HDF5
 * `.h5` file (Keras 2 / tf.keras / Keras 3 legacy), or a model saved in the tfjs layers format
 * (`modelJsonPath`: its model.json, or the folder holding it). Returns the mapping used. Throws ResNetError 'E_ARG' (arguments), 'E_IO' (model.json or a shard cannot be
 * read), 'E_FORMAT' (malformed files, weights that do not fit the model, epsilon mismatches);
 * nothing is set then.
 */
export async function loadKeras(model: Model, modelJsonPath: string, options: LoadKerasOptions = {}): Promise<LoadKerasResult> {
  if (!(model instanceof Model)) throw new ResNetError('E_ARG', `${OP}: model must be a Model`);
  validate.string(modelJsonPath, OP, 'modelJsonPath');
  validate.keys(options, OP, ['mapping', 'allowEpsilonMismatch']);
  const mode = validate.oneOf(options.mapping ?? 'auto', OP, 'mapping', ['auto', 'name', 'structure'] as const);
  const allowEpsilon =
    options.allowEpsilonMismatch === undefined ? false : validate.boolean(options.allowEpsilonMismatch, OP, 'allowEpsilonMismatch');
  if (model.isDisposed) throw new ResNetError('E_DISPOSED', `${OP}: the model was disposed`);

  return loadKerasInto(model, await readKerasFile(modelJsonPath), mode, allowEpsilon);
}

/** loadKeras on a file already read (loadKerasModel reads it once for the config and the weights). */
export function loadKerasInto(
  model: Model,
  file: KerasFile & { file: string },
  mode: 'auto' | 'name' | 'structure',
  allowEpsilon: boolean,
): LoadKerasResult {
  const ours = ourUnits(model);
  const keras = kerasUnits(file);
  const kerasNames = new Set(keras.map((k) => k.name));
  const mapping = mode === 'auto' ? (ours.every((u) => kerasNames.has(u.name)) ? 'name' : 'structure') : mode;
  const where = `'${file.file}' does not fit model '${model.name}'`;
  const map = mapping === 'name' ? mapByName(ours, keras, where) : mapByStructure(ours, keras, where);

  // Configuration checks on the mapped pairs.
  const problems: string[] = [];
  const epsilonMismatches: KerasEpsilonMismatch[] = [];
  for (const [u, k] of map) {
    const layer = u.layer;
    if (layer.type === 'conv2d' && k.kind === 'conv') {
      const strides = pairOf(k.config.strides);
      if (strides && !validate.sameShape(strides, layer.strides)) {
        problems.push(`Keras '${k.name}' has strides ${fmt(strides)} but ours '${u.name}' ${fmt(layer.strides)}`);
      }
      const dilations = pairOf(k.config.dilation_rate);
      if (dilations && !validate.sameShape(dilations, layer.dilations)) {
        problems.push(`Keras '${k.name}' has dilation_rate ${fmt(dilations)} but ours '${u.name}' ${fmt(layer.dilations)}`);
      }
    }
    if (layer.type === 'batchNorm') {
      const eps = k.config.epsilon === undefined ? 1e-3 : Number(k.config.epsilon);
      if (!(Math.abs(eps - layer.epsilon) <= 1e-6 * Math.max(Math.abs(eps), Math.abs(layer.epsilon)))) {
        epsilonMismatches.push({ layer: u.name, kerasLayer: k.name, epsilon: layer.epsilon, kerasEpsilon: eps });
      }
    }
  }
  if (problems.some((p) => p.includes(' has strides '))) {
    problems.push("(Keras applications' ResNet50/101/152 stride a bottleneck's first 1×1: build those with variant: 'v1', or strideOn: '1x1')");
  }
  if (epsilonMismatches.length > 0 && !allowEpsilon) {
    const values = [...new Set(epsilonMismatches.map((m) => m.kerasEpsilon))];
    problems.push(
      `${epsilonMismatches.length} batch-norm epsilon(s) differ: ` +
        listed(epsilonMismatches.map((m) => `Keras '${m.kerasLayer}' ${m.kerasEpsilon} vs ours '${m.layer}' ${m.epsilon}`)) +
        ` (build the model with bnEpsilon: ${values.length === 1 ? values[0] : `one of ${values.join(', ')}`}, or pass { allowEpsilonMismatch: true } to load anyway and keep the model's epsilon)`,
    );
  }
  if (problems.length > 0) throw formatError(`${where} (mapping by ${mapping}): ${problems.join('. ')}`);

  // Decode everything, then set.
  const values: { name: string; data: Float32Array }[] = [];
  for (const [u, k] of map) {
    const f = fit(u, k);
    for (const [suffix, decode] of f.values) values.push({ name: `${u.name}.${suffix}`, data: decode() });
  }
  for (const v of values) checkParameterValues(OP, `'${file.file}'`, v.name, v.data);
  for (const v of values) model.setParameter(v.name, v.data);
  return {
    mapping,
    layers: [...map].map(([u, k]) => ({ layer: u.name, kerasLayer: k.name })),
    loaded: values.map((v) => v.name),
    epsilonMismatches: allowEpsilon ? epsilonMismatches : [],
  };
}
