// The Dataset interface every loader implements (mnist, cifar10/100, imageFolder, user
// datasets). A dataset writes examples into buffers the caller owns, so the training loop
// reuses two batch buffers for the whole run instead of allocating per step.

export interface Dataset {
  /** Number of examples. */
  readonly length: number;
  /** [height, width, channels] of every image this dataset writes. */
  readonly imageShape: readonly [number, number, number];
  /** Number of classes; labels are in [0, classes). */
  readonly classes: number;
  /** Optional human-readable class names, index = label. */
  readonly classNames?: readonly string[];
  /**
   * Writes examples `indices[i]` into `images` (NHWC float32, values in [0, 1], example i at
   * offset i·h·w·c) and `labels[i]`. Buffers hold at least indices.length examples. May be
   * async (decoding files); the caller awaits it before using the buffers.
   */
  fill(indices: ArrayLike<number>, images: Float32Array, labels: Int32Array): void | Promise<void>;
  /**
   * Optional: the examples the trainer fills next, in order (a view of the epoch's order
   * after the batch being filled; empty when the run ends), so that a dataset which decodes
   * files (imageFolder) can decode a bounded number of them ahead. Must not throw.
   */
  prefetch?(upcoming: Int32Array, batchSize: number): void;
}
