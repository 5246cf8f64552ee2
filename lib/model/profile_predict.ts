// Model.profilePredict's options and result: where predict's time goes, per step of the
// compiled inference plan (timed natively: network_profile.cpp).
import type { NativePredictProfile } from '../native.js';
import { Tensor } from '../tensor.js';
import * as validate from '../validate.js';

export interface ProfilePredictOptions {
  /** Timed predict calls, after one untimed warm-up call. Default 10. */
  runs?: number;
}

export interface LayerTime {
  /** The graph layer the plan step runs (layers fused into it ride along: see op). */
  name: string;
  /** What the step runs, fused ops joined by '+', e.g. 'conv2d+batchNorm+add+relu'. */
  op: string;
  /** A convolution's or pool's geometry ('3x3/2 64->128, 28x28 out'); '' for other steps. */
  detail: string;
  /** Mean milliseconds per predict call. */
  ms: number;
  /** ms over the sum of every step's ms (the shares sum to 1). */
  share: number;
}

export interface PredictProfile {
  /** Mean wall-clock milliseconds of one whole predict (the steps plus what lies between them). */
  totalMs: number;
  /** Timed predict calls the means are over. */
  runs: number;
  /** One per plan step, in execution order. */
  layers: LayerTime[];
  /** The last timed call's logits [n, classes], exactly predict's. */
  logits: Tensor;
}

export const MAX_PROFILE_RUNS = 100000;

export function profileRuns(options: ProfilePredictOptions): number {
  validate.keys(options, 'profilePredict', ['runs']);
  return options.runs === undefined ? 10 : validate.integer(options.runs, 'profilePredict', 'runs', 1, MAX_PROFILE_RUNS);
}

export function predictProfile(r: NativePredictProfile, runs: number): PredictProfile {
  const stepsMs = r.steps.reduce((sum, s) => sum + s.ms, 0);
  const layers = r.steps.map((s) => ({ ...s, share: stepsMs > 0 ? s.ms / stepsMs : 1 / r.steps.length }));
  return { totalMs: r.totalMs, runs, layers, logits: new Tensor(r.logits) };
}
