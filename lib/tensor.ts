import { ResNetError } from './errors.js';
import { native, type NativeTensorHandle } from './native.js';
import * as validate from './validate.js';

/**
 * A dense float32 tensor whose memory lives in native code. Activations are NHWC and conv
 * filters HWIO. `dispose()` frees the memory now; otherwise a finalizer frees it once
 * the tensor is garbage collected.
 */
export class Tensor {
  // Private fields are the brand: an object made with Object.create(Tensor.prototype) has
  // none, so every member checks for them (#own) and says so instead of a TypeError.
  readonly #handle: NativeTensorHandle;
  readonly #shape: readonly number[];
  readonly #device: string;

  /** @internal Use Tensor.fromArray / Tensor.zeros; ops create tensors from handles. */
  constructor(handle: NativeTensorHandle) {
    this.#handle = handle;
    this.#shape = Object.freeze(handle.shape());
    this.#device = handle.device();
  }

  /** Whether `v` is a tensor this library made (not merely an object with Tensor's prototype). */
  static isTensor(v: unknown): v is Tensor {
    return typeof v === 'object' && v !== null && #handle in v;
  }

  /**
   * `v` as a live Tensor, or E_ARG (not a Tensor, or a forged one) / E_DISPOSED naming
   * `op` and the argument `name`.
   */
  static check(v: unknown, op: string, name: string): Tensor {
    if (!(v instanceof Tensor)) validate.fail('E_ARG', `${op}: ${name} must be a Tensor, got ${validate.describe(v)}`);
    if (!Tensor.isTensor(v))
      validate.fail(
        'E_ARG',
        `${op}: ${name} is not a real Tensor (an object with Tensor's prototype but no native data; make tensors with Tensor.fromArray, Tensor.fill or an op)`,
      );
    if (v.isDisposed) validate.fail('E_DISPOSED', `${op}: ${name} was disposed`);
    return v;
  }

  /** Tensor.check, with undefined / null passing as undefined. */
  static checkOptional(v: unknown, op: string, name: string): Tensor | undefined {
    return v === undefined || v === null ? undefined : Tensor.check(v, op, name);
  }

  /** Copies `data` into a new tensor of the given shape (row-major). */
  static fromArray(data: Float32Array | readonly number[], shape: readonly number[]): Tensor {
    const dims = validate.shape(shape, 'Tensor.fromArray');
    const values = validate.float32(data, 'Tensor.fromArray', 'data');
    const size = dims.reduce((a, b) => a * b, 1);
    if (values.length !== size) {
      validate.fail('E_SHAPE', `Tensor.fromArray: data has ${values.length} elements but shape [${dims.join(', ')}] needs ${size}`);
    }
    return new Tensor(new native.NativeTensor(values, dims));
  }

  /** A tensor of the given shape filled with `value` (0 by default). */
  static fill(shape: readonly number[], value = 0): Tensor {
    const dims = validate.shape(shape, 'Tensor.fill');
    validate.number(value, 'Tensor.fill', 'value', -Number.MAX_VALUE, Number.MAX_VALUE);
    const data = validate.allocate(
      Float32Array,
      dims.reduce((a, b) => a * b, 1),
      'Tensor.fill',
      `the values of a [${dims.join(', ')}] tensor`,
    );
    if (value !== 0) data.fill(value);
    return new Tensor(new native.NativeTensor(data, dims));
  }

  static zeros(shape: readonly number[]): Tensor {
    return Tensor.fill(shape, 0);
  }

  get shape(): readonly number[] {
    return Tensor.#own(this, 'shape').#shape;
  }

  get dtype(): 'float32' {
    Tensor.#own(this, 'dtype');
    return 'float32';
  }

  /** Where the data lives: 'cpu', or 'cuda:N' for a tensor made by `to('cuda:N')` (a tensor never moves). */
  get device(): string {
    return Tensor.#own(this, 'device').#device;
  }

  /** @internal The native tensor. */
  get handle(): NativeTensorHandle {
    return Tensor.#own(this, 'handle').#handle;
  }

  /** Number of elements. */
  get size(): number {
    return Tensor.#own(this, 'size').#shape.reduce((a, b) => a * b, 1);
  }

  get rank(): number {
    return Tensor.#own(this, 'rank').#shape.length;
  }

  get isDisposed(): boolean {
    return Tensor.#own(this, 'isDisposed').#handle.isDisposed();
  }

  /**
   * This tensor on `device` ('cpu', 'cuda', 'cuda:N'): itself when it is already there,
   * else a new tensor holding a copy (dispose each on its own). A model on a GPU reads
   * GPU tensors in place, so a batch moved once is not copied again at every step; the
   * functional ops (`ops.*`) take CPU tensors only (E_DEVICE otherwise).
   */
  to(device: string): Tensor {
    Tensor.#live(this, 'to');
    if (typeof device !== 'string') throw new ResNetError('E_ARG', `Tensor.to: device must be a string, got ${typeof device}`);
    const canonical = device === 'cuda' ? 'cuda:0' : device;
    if (canonical === this.#device) return this;
    return new Tensor(this.#handle.toDevice(device));
  }

  /** A copy of the values, row-major (copied back from the GPU for a device tensor). */
  toFloat32Array(): Float32Array {
    return Tensor.#live(this, 'toFloat32Array').#handle.toFloat32Array();
  }

  /** Frees the native memory now. Idempotent; any later use throws E_DISPOSED. */
  dispose(): void {
    Tensor.#own(this, 'dispose').#handle.dispose();
  }

  toString(): string {
    if (!Tensor.isTensor(this)) return 'Tensor(not a real tensor)';
    return `Tensor(float32, [${this.#shape.join(', ')}]${this.isDisposed ? ', disposed' : ''})`;
  }

  /** console.log / util.inspect: private fields do not show, so show what toString says. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  // Static, because a private method called on an unbranded `this` would itself throw a TypeError.
  static #own(t: Tensor, op: string): Tensor {
    if (!Tensor.isTensor(t)) {
      throw new ResNetError(
        'E_ARG',
        `Tensor.${op}: this is not a real Tensor (an object with Tensor's prototype but no native data); make tensors with Tensor.fromArray, Tensor.fill or an op`,
      );
    }
    return t;
  }

  static #live(t: Tensor, op: string): Tensor {
    if (Tensor.#own(t, op).#handle.isDisposed()) throw new ResNetError('E_DISPOSED', `Tensor.${op}: the tensor was disposed`);
    return t;
  }
}
