// Types for rounds.mjs (bench/suite), for the unit test under test/bench/.
export interface Spread {
  median: number;
  min: number;
  max: number;
  rounds: number[];
}
export interface StepSummary {
  steps?: number;
  msMedian: number;
  cpuImagesPerSecond?: number;
}
export interface RoundResult {
  train?: StepSummary;
  infer?: StepSummary;
  latency?: StepSummary;
  error?: string;
}
export interface RateSpread {
  wall: Spread | null;
  cpu: Spread | null;
}
export function roundOrder<T>(names: readonly T[], round: number): T[];
export function spread(values: readonly (number | undefined | null)[]): Spread | null;
export function speedRatio(ours: Spread | null, theirs: Spread | null, kind: 'rate' | 'time'): number | null;
export function summarizeRounds(
  perRound: readonly (RoundResult | undefined)[],
  batch: number,
): { train: RateSpread; infer: RateSpread; latencyMs: Spread | null };
export function alternate<R>(
  models: readonly string[],
  frameworks: readonly string[],
  rounds: number,
  run: (model: string, framework: string, round: number) => R,
): {
  results: Record<string, Record<string, (R | { error: string })[]>>;
  sequence: { model: string; round: number; framework: string }[];
};
