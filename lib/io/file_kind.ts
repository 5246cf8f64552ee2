// What a model file is, from its first bytes (and, for zips, its entry names): so that a file
// given to the wrong loader, or in a format this library does not read, gets an error that
// says what the file is and what to call or how to convert it — never the bytes themselves.
//
// Every loader calls this only once its own format check has failed (the happy path is
// unchanged): wrongFormatError(op, path, bytes, expected) builds the E_FORMAT.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';

import { ResNetError } from '../errors.js';
import { looksLikeHdf5 } from './hdf5.js';
import { openRegularFile, readExactly } from './read_file.js';
import { looksLikeZip, ZipArchive } from './zip_archive.js';

export type FileKind =
  | 'checkpoint'
  | 'safetensors'
  | 'keras'
  | 'hdf5'
  | 'pytorch'
  | 'torchscript'
  | 'numpy'
  | 'zip'
  | 'pickle'
  | 'savedmodel'
  | 'tflite'
  | 'onnx'
  | 'tfjs-layers'
  | 'tfjs-graph'
  | 'json'
  | 'directory'
  | 'empty'
  | 'unknown';

export interface FileDescription {
  kind: FileKind;
  /** What the file is, as a noun phrase: "a Keras 3 .keras model". */
  description: string;
  /** What to call, or how to convert it. Empty when there is nothing to add. */
  hint: string;
}

const KERAS_HINT = 'build the model from it with io.loadKerasModel(path), or load its weights into a model with io.loadKeras(model, path)';
const TORCH_HINT =
  "load a torchvision state_dict with io.loadTorchvision(model, path) (safetensors: safetensors.torch.save_file(model.state_dict(), 'w.safetensors'))";

const DESCRIPTIONS: Record<FileKind, [string, string]> = {
  checkpoint: ['a resnet-native checkpoint (saveModel)', 'load it with io.loadModel(path) or io.loadCheckpoint(path)'],
  safetensors: [
    'a safetensors weights file',
    "load torchvision weights with io.loadTorchvision(model, path), or weights named like the model's parameters with io.loadWeightsInto(model, path)",
  ],
  keras: ['a Keras 3 .keras model', KERAS_HINT],
  hdf5: ['an HDF5 file (a Keras .h5 model?)', KERAS_HINT],
  pytorch: ['a PyTorch torch.save file (.pth / .pt)', TORCH_HINT],
  torchscript: [
    'a TorchScript archive (torch.jit.save), which resnet-native does not read',
    `save the weights instead (torch.save(model.state_dict(), 'w.pth')), then ${TORCH_HINT}`,
  ],
  numpy: ['a NumPy .npy / .npz file, which resnet-native does not read', 'save the weights as safetensors or as a Keras model (.keras)'],
  zip: ['a zip archive of no model format resnet-native knows', ''],
  pickle: [
    'a Python pickle (a PyTorch file in the legacy non-zip format?), which resnet-native does not read',
    `re-save it with a current PyTorch as a state_dict (torch.save) or as safetensors, then ${TORCH_HINT}`,
  ],
  savedmodel: [
    'a TensorFlow SavedModel, which resnet-native does not read',
    "load it in TensorFlow / Keras and save the Keras model as .keras (model.save('m.keras')), then use io.loadKerasModel",
  ],
  tflite: [
    'a TensorFlow Lite flatbuffer, which resnet-native does not read',
    'use the Keras model it was converted from (.keras or .h5) with io.loadKerasModel',
  ],
  onnx: [
    'an ONNX model (protobuf), which resnet-native does not read',
    'load the original framework weights instead (Keras: io.loadKerasModel; torchvision: io.loadTorchvision)',
  ],
  'tfjs-layers': ['a TensorFlow.js layers model (model.json)', 'load its weights into a model with io.loadKeras(model, path)'],
  'tfjs-graph': [
    'a TensorFlow.js graph model (model.json of a converted SavedModel), which resnet-native does not read',
    'convert the Keras model instead (tensorflowjs_converter --input_format keras), or save it as .keras for io.loadKerasModel',
  ],
  json: ['a JSON file of no model format resnet-native knows', ''],
  directory: ['a directory', ''],
  empty: ['an empty file', ''],
  unknown: ['not a model file format resnet-native knows', ''],
};

function described(kind: FileKind): FileDescription {
  const [description, hint] = DESCRIPTIONS[kind];
  return { kind, description, hint };
}

const ascii = (bytes: Uint8Array, from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, Math.min(to, bytes.length)));

function describeZip(bytes: Uint8Array): FileDescription {
  let names: string[];
  try {
    names = new ZipArchive(bytes, 'file').names();
  } catch {
    return { kind: 'zip', description: 'a zip archive that is damaged or truncated', hint: '' };
  }
  // torch.save and torch.jit.save put everything under one folder ('archive/', or the file's stem).
  const inner = names.map((n) => n.slice(n.indexOf('/') + 1));
  if (names.includes('config.json') && (names.includes('model.weights.h5') || names.includes('metadata.json'))) return described('keras');
  if (inner.includes('constants.pkl') || inner.some((n) => n.startsWith('code/'))) return described('torchscript');
  if (inner.includes('data.pkl')) return described('pytorch');
  if (names.length > 0 && names.every((n) => n.endsWith('.npy'))) return described('numpy');
  return described('zip');
}

function describeJson(bytes: Uint8Array): FileDescription {
  const text = new TextDecoder().decode(bytes.subarray(0, 1 << 20));
  if (/"format"\s*:\s*"graph-model"/.test(text)) return described('tfjs-graph');
  if (/"modelTopology"|"weightsManifest"/.test(text)) return described('tfjs-layers');
  return described('json');
}

/** A safetensors file starts with its header's length (little-endian u64) and then '{'. */
function describeSafetensors(bytes: Uint8Array): FileDescription | undefined {
  if (bytes.length < 9 || bytes[8] !== 0x7b) return undefined;
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n || n > 100_000_000n) return undefined;
  const head = new TextDecoder().decode(bytes.subarray(8, Math.min(bytes.length, 8 + Number(n))));
  return described(head.includes('resnet-native/checkpoint') ? 'checkpoint' : 'safetensors');
}

/** Whether `bytes` plausibly starts an ONNX ModelProto: ir_version (field 1, varint), then producer / graph / opset fields. */
function looksLikeOnnx(bytes: Uint8Array): boolean {
  if (bytes.length < 16 || bytes[0] !== 0x08 || bytes[1]! > 20) return false;
  const head = ascii(bytes, 0, 4096);
  return /onnx|pytorch|tf2onnx|keras2onnx|skl2onnx/i.test(head) || bytes[2] === 0x12 || bytes[2] === 0x3a || bytes[2] === 0x42;
}

/** What the bytes of a file are (see FileKind). `name` (the file's name) helps where bytes are ambiguous. */
export function describeBytes(bytes: Uint8Array, name = ''): FileDescription {
  if (bytes.length === 0) return described('empty');
  if (looksLikeZip(bytes)) return describeZip(bytes);
  if (looksLikeHdf5(bytes)) return described('hdf5');
  if (bytes.length >= 8 && ascii(bytes, 4, 8) === 'TFL3') return described('tflite');
  if (bytes.length >= 6 && bytes[0] === 0x93 && ascii(bytes, 1, 6) === 'NUMPY') return described('numpy');
  const st = describeSafetensors(bytes);
  if (st) return st;
  if (bytes[0] === 0x80 && bytes[1] !== undefined && bytes[1] >= 2 && bytes[1] <= 5) return described('pickle');
  if (/saved_model\.pbt?x?t?$/.test(name)) return described('savedmodel');
  if (looksLikeOnnx(bytes) || name.toLowerCase().endsWith('.onnx')) return described('onnx');
  let i = 0;
  while (
    i < bytes.length &&
    i < 1024 &&
    (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09 || bytes[i] === 0xef || bytes[i] === 0xbb || bytes[i] === 0xbf)
  )
    i++;
  if (bytes[i] === 0x7b || bytes[i] === 0x5b) return describeJson(bytes);
  return described('unknown');
}

/** The most of a file that describeFile reads (a zip's entry names are at its end, so zips are read whole up to this). */
const MAX_SNIFF_BYTES = 2 ** 31 - 1;
const HEAD_BYTES = 64 * 1024;

/**
 * What the file at `path`, or the bytes given, is. A path that cannot be read is 'unknown'
 * (the caller's own error says why); a directory holding saved_model.pb is 'savedmodel'.
 */
export async function describeFile(input: Uint8Array | string): Promise<FileDescription> {
  if (typeof input !== 'string') return describeBytes(input);
  try {
    if ((await stat(input)).isDirectory()) {
      for (const f of ['saved_model.pb', 'saved_model.pbtxt']) {
        if (
          await stat(join(input, f)).then(
            (s) => s.isFile(),
            () => false,
          )
        )
          return described('savedmodel');
      }
      return described('directory');
    }
    const { handle, size } = await openRegularFile(input, 'describeFile');
    try {
      const head = await readExactly(handle, 0, Math.min(size, HEAD_BYTES), 'describeFile', input);
      if (looksLikeZip(head) && size > head.length && size <= MAX_SNIFF_BYTES) {
        return describeBytes(await readExactly(handle, 0, size, 'describeFile', input), input);
      }
      return describeBytes(head, input);
    } finally {
      await handle.close().catch(() => undefined);
    }
  } catch {
    return described('unknown');
  }
}

/**
 * The E_FORMAT for a file that is not what `op` reads: "<op>: '<path>' is <what it is>, not
 * <expected>; <what to do>". `bytes`: the file's bytes when the caller has them (else it is
 * read from `path`).
 */
export async function wrongFormatError(op: string, path: string, bytes: Uint8Array | undefined, expected: string): Promise<ResNetError> {
  const d = bytes ? describeBytes(bytes, path) : await describeFile(path);
  return wrongFormatErrorFor(op, path, d, expected);
}

/** wrongFormatError with the description already known. */
export function wrongFormatErrorFor(op: string, path: string, d: FileDescription, expected: string): ResNetError {
  return new ResNetError('E_FORMAT', `${op}: '${path}' is ${d.description}, not ${expected}${d.hint ? `; ${d.hint}` : ''}`);
}
