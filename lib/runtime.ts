import { type CudaStatus, native } from './native.js';

export type { CudaStatus };

export interface RuntimeInfo {
  /** Threads in the native pool (RESNET_NUM_THREADS overrides the core count). */
  threads: number;
  /**
   * Which CPU kernel set runs models and the convolution / batch-norm ops: 'optimized'
   * (the default), or 'reference' — the plain oracle kernels — when the environment
   * variable RESNET_KERNELS=reference is set before the addon loads.
   */
  kernels: string;
  /** What runs models (trainStep, predict): a description of the CPU engine. */
  engine: string;
  /** The instruction set the engine's kernels dispatched to on this CPU. */
  simd: string;
}

/** What the native side is running with. */
export function runtimeInfo(): RuntimeInfo {
  return native.runtimeInfo();
}

/**
 * Counted native buffer allocations (tensors, plan arenas, parameters, optimizer state)
 * since the process started, and the bytes they hold now. A training step allocates
 * nothing after its first run at a given input shape: `allocations` stays put.
 */
export function allocationStats(): { allocations: number; liveBytes: number } {
  return native.allocationStats();
}

/**
 * Whether models can run on an NVIDIA GPU here (`device: 'cuda'`), and if not, exactly
 * why: no CUDA plugin in this build, no driver, no cuDNN 9, or no GPU. The first call
 * loads the plugin (with the driver and cuDNN); it never throws.
 */
export function cudaStatus(): CudaStatus {
  return native.cudaStatus();
}
