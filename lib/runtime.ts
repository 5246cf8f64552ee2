import { native } from './native.js';

export interface RuntimeInfo {
  /** Threads in the native pool (RESNET_NUM_THREADS overrides the core count). */
  threads: number;
  /** Which kernel set runs the ops ('reference' for now). */
  kernels: string;
}

/** What the native side is running with. */
export function runtimeInfo(): RuntimeInfo {
  return native.runtimeInfo();
}
