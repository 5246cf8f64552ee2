// The alternated benchmark's bookkeeping (bench/suite/rounds.mjs): the run order of each round,
// the median and spread over rounds, and the speed ratios from the medians. Pure JS: no
// processes, no timing. Expected values are worked out by hand here.
import { describe, expect, it } from 'vitest';

import { alternate, roundOrder, speedRatio, spread, summarizeRounds } from '../../bench/suite/rounds.mjs';

describe('roundOrder', () => {
  it('runs the list forward, then backward, so ours and each reference alternate', () => {
    expect(roundOrder(['ours', 'theirs'], 0)).toEqual(['ours', 'theirs']);
    expect(roundOrder(['ours', 'theirs'], 1)).toEqual(['theirs', 'ours']);
    expect(roundOrder(['a', 'b', 'c'], 1)).toEqual(['c', 'b', 'a']);
    expect(roundOrder(['a', 'b', 'c'], 2)).toEqual(['a', 'b', 'c']);
  });

  it('gives every framework the same mean position over each pair of rounds', () => {
    const names = ['a', 'b', 'c', 'd'];
    const positions = names.map((n) => roundOrder(names, 0).indexOf(n) + roundOrder(names, 1).indexOf(n));
    expect(new Set(positions).size).toBe(1);
  });

  it('leaves its argument unchanged', () => {
    const names = ['a', 'b'];
    roundOrder(names, 1);
    expect(names).toEqual(['a', 'b']);
  });
});

describe('spread', () => {
  it('is the median, min and max of the rounds', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, rounds: [3, 1, 2] });
    expect(spread([4, 1])).toEqual({ median: 2.5, min: 1, max: 4, rounds: [4, 1] });
  });

  it('skips rounds without a figure and is null when none has one', () => {
    expect(spread([undefined, 5, null, NaN])).toEqual({ median: 5, min: 5, max: 5, rounds: [5] });
    expect(spread([undefined, null])).toBeNull();
    expect(spread([])).toBeNull();
  });
});

describe('speedRatio', () => {
  const s = (median: number) => ({ median, min: median, max: median, rounds: [median] });
  it('is ours ÷ theirs for rates and theirs ÷ ours for times: > 1 when ours is faster', () => {
    expect(speedRatio(s(300), s(200), 'rate')).toBeCloseTo(1.5, 12);
    expect(speedRatio(s(20), s(10), 'time')).toBeCloseTo(0.5, 12);
  });

  it('is null when either side is missing', () => {
    expect(speedRatio(null, s(1), 'rate')).toBeNull();
    expect(speedRatio(s(1), null, 'time')).toBeNull();
    expect(speedRatio(s(0), s(1), 'rate')).toBeNull();
  });
});

describe('summarizeRounds', () => {
  it("turns each round's median step into img/s and takes the median over rounds", () => {
    const rounds = [
      { train: { msMedian: 1000, cpuImagesPerSecond: 60 }, infer: { msMedian: 250, cpuImagesPerSecond: 300 }, latency: { msMedian: 8 } },
      { train: { msMedian: 500, cpuImagesPerSecond: 100 }, infer: { msMedian: 200, cpuImagesPerSecond: 310 }, latency: { msMedian: 6 } },
      undefined, // a round that failed
      { infer: { msMedian: 400 }, latency: { msMedian: 7 } }, // inference only (onnxruntime)
    ];
    const r = summarizeRounds(rounds, 100);
    // train: 100 images in 1000 ms and 500 ms → 100 and 200 img/s
    expect(r.train.wall).toEqual({ median: 150, min: 100, max: 200, rounds: [100, 200] });
    expect(r.train.cpu).toEqual({ median: 80, min: 60, max: 100, rounds: [60, 100] });
    // infer: 400, 500 and 250 img/s
    expect(r.infer.wall).toEqual({ median: 400, min: 250, max: 500, rounds: [400, 500, 250] });
    expect(r.infer.cpu?.rounds).toEqual([300, 310]);
    expect(r.latencyMs).toEqual({ median: 7, min: 6, max: 8, rounds: [8, 6, 7] });
  });

  it('leaves a measure no round ran null', () => {
    const r = summarizeRounds([{ infer: { msMedian: 10 } }], 1);
    expect(r.train).toEqual({ wall: null, cpu: null });
    expect(r.latencyMs).toBeNull();
  });
});

describe('alternate', () => {
  it('runs, per model, every framework once per round in roundOrder', () => {
    const calls: string[] = [];
    const { results, sequence } = alternate(['m1', 'm2'], ['ours', 'pt', 'ort'], 2, (model, f, round) => {
      calls.push(`${model}:${f}`);
      return `${model}/${f}/${round}`;
    });
    expect(calls).toEqual(['m1:ours', 'm1:pt', 'm1:ort', 'm1:ort', 'm1:pt', 'm1:ours', 'm2:ours', 'm2:pt', 'm2:ort', 'm2:ort', 'm2:pt', 'm2:ours']);
    expect(sequence.map((s) => `${s.model}:${s.round}:${s.framework}`).slice(0, 4)).toEqual(['m1:1:ours', 'm1:1:pt', 'm1:1:ort', 'm1:2:ort']);
    expect(results.m2.pt).toEqual(['m2/pt/0', 'm2/pt/1']);
  });

  it('records a run that throws as its error and goes on', () => {
    let n = 0;
    const { results } = alternate(['m'], ['ours', 'theirs'], 2, (_m, f) => {
      n++;
      if (f === 'theirs') throw new Error('no python\nstack');
      return 1;
    });
    expect(n).toBe(4);
    expect(results.m.theirs).toEqual([{ error: 'no python' }, { error: 'no python' }]);
    expect(results.m.ours).toEqual([1, 1]);
  });
});
