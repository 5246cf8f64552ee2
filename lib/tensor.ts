import { ResNetError } from './errors.js';
import { native, type NativeTensorHandle } from './native.js';
import * as validate from './validate.js';

/**
 * A dense float32 tensor whose memory lives in native code. Activations are NHWC and conv
 * filters HWIO. `dispose()` frees the memory now; otherwise a finalizer frees it once
 * the tensor is garbage collected.
 */
export class Tensor {
  readonly shape: readonly number[];
  readonly dtype = 'float32' as const;
  /** Where the data lives: 'cpu', or 'cuda:N' for a tensor made by `to('cuda:N')` (a tensor never moves). */
  readonly device: string;
  /** @internal */
  readonly handle: NativeTensorHandle;

  /** @internal Use Tensor.fromArray / Tensor.zeros; ops create tensors from handles. */
  constructor(handle: NativeTensorHandle) {
    this.handle = handle;
    this.shape = Object.freeze(handle.shape());
    this.device = handle.device();
  }

  /** Copies `data` into a new tensor of the given shape (row-major). */
  static fromArray(data: Float32Array | readonly number[], shape: readonly number[]): Tensor {
    const dims = validate.shape(shape, 'Tensor.fromArray');
    let values: Float32Array;
    if (data instanceof Float32Array) values = data;
    else if (Array.isArray(data)) values = Float32Array.from(data as number[]);
    else validate.fail('E_DTYPE', `Tensor.fromArray: data must be a Float32Array or an array of numbers`);
    const size = dims.reduce((a, b) => a * b, 1);
    if (values.length !== size) {
      validate.fail(
        'E_SHAPE',
        `Tensor.fromArray: data has ${values.length} elements but shape [${dims.join(', ')}] needs ${size}`,
      );
    }
    return new Tensor(new native.NativeTensor(values, dims));
  }

  /** A tensor of the given shape filled with `value` (0 by default). */
  static fill(shape: readonly number[], value = 0): Tensor {
    const dims = validate.shape(shape, 'Tensor.fill');
    validate.number(value, 'Tensor.fill', 'value', -Number.MAX_VALUE, Number.MAX_VALUE);
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    if (value !== 0) data.fill(value);
    return new Tensor(new native.NativeTensor(data, dims));
  }

  static zeros(shape: readonly number[]): Tensor {
    return Tensor.fill(shape, 0);
  }

  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.handle.isDisposed();
  }

  /**
   * This tensor on `device` ('cpu', 'cuda', 'cuda:N'): itself when it is already there,
   * else a new tensor holding a copy (dispose each on its own). A model on a GPU reads
   * GPU tensors in place, so a batch moved once is not copied again at every step; the
   * functional ops (`ops.*`) take CPU tensors only (E_DEVICE otherwise).
   */
  to(device: string): Tensor {
    this.assertLive('to');
    if (typeof device !== 'string') throw new ResNetError('E_ARG', `Tensor.to: device must be a string, got ${typeof device}`);
    const canonical = device === 'cuda' ? 'cuda:0' : device;
    if (canonical === this.device) return this;
    return new Tensor(this.handle.toDevice(device));
  }

  /** A copy of the values, row-major (copied back from the GPU for a device tensor). */
  toFloat32Array(): Float32Array {
    this.assertLive('toFloat32Array');
    return this.handle.toFloat32Array();
  }

  /** Frees the native memory now. Idempotent; any later use throws E_DISPOSED. */
  dispose(): void {
    this.handle.dispose();
  }

  toString(): string {
    return `Tensor(float32, [${this.shape.join(', ')}]${this.isDisposed ? ', disposed' : ''})`;
  }

  private assertLive(op: string): void {
    if (this.isDisposed) throw new ResNetError('E_DISPOSED', `Tensor.${op}: the tensor was disposed`);
  }
}
