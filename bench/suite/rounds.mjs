// Alternated rounds and their summaries (pure: no processes, no addon), shared by bench/run.mjs
// and bench/inference_ab.mjs. Each round runs every framework once, each in its own process; the
// figure a round gives is that process's median step. Over rounds we report the median and the
// spread (min–max), and ratios from the medians.
import { median } from './timing.mjs';

/**
 * The order of round `round` (0-based): the list forward on even rounds and reversed on odd ones
 * (A B C, C B A, A B C, …). Over each pair of rounds every framework has the same mean position,
 * so a load that drifts steadily during the run favours none of them; with two frameworks this is
 * ours, theirs, theirs, ours.
 */
export function roundOrder(names, round) {
  return round % 2 === 0 ? [...names] : [...names].reverse();
}

/** { median, min, max, rounds } of the finite numbers in `values` (one per round), or null when there are none. */
export function spread(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), rounds: v };
}

/**
 * How many times faster ours is than the reference, from the two spreads' medians: ours ÷ theirs for
 * a rate (img/s), theirs ÷ ours for a time (ms). > 1 means ours is faster; null when either is missing.
 */
export function speedRatio(ours, theirs, kind) {
  if (!ours || !theirs || !(ours.median > 0) || !(theirs.median > 0)) return null;
  return kind === 'time' ? theirs.median / ours.median : ours.median / theirs.median;
}

/**
 * One framework's rounds → per measure the spread over rounds: train / infer img/s by wall time
 * (batch ÷ the round's median step) and by CPU time (images per CPU-second × threads over the
 * round's loop, bench/suite/timing.mjs), and batch-1 latency (the round's median, ms).
 * `perRound` holds each round's { train?, infer?, latency? } summaries (undefined where it failed).
 */
export function summarizeRounds(perRound, batch) {
  const pick = (mode, f) => perRound.map((r) => (r?.[mode] ? f(r[mode]) : undefined));
  const rate = (mode) => ({
    wall: spread(pick(mode, (s) => (batch * 1000) / s.msMedian)),
    cpu: spread(pick(mode, (s) => s.cpuImagesPerSecond)),
  });
  return { train: rate('train'), infer: rate('infer'), latencyMs: spread(pick('latency', (s) => s.msMedian)) };
}

/**
 * Runs `run(model, framework, round)` for each model, round and framework: per model, `rounds`
 * rounds in roundOrder, so ours and each reference run back to back, close in time. Returns
 * { results: { model: { framework: [per round] } }, sequence: [{ model, round, framework }] in run order }.
 * A run that throws is recorded as { error } and the others go on.
 */
export function alternate(models, frameworks, rounds, run) {
  const results = {};
  const sequence = [];
  for (const model of models) {
    results[model] = Object.fromEntries(frameworks.map((f) => [f, []]));
    for (let r = 0; r < rounds; r++) {
      for (const f of roundOrder(frameworks, r)) {
        sequence.push({ model, round: r + 1, framework: f });
        let value;
        try {
          value = run(model, f, r);
        } catch (e) {
          value = { error: e instanceof Error ? e.message.split('\n')[0] : String(e) };
        }
        results[model][f][r] = value;
      }
    }
  }
  return { results, sequence };
}
