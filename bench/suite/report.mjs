// The comparison table (img/s and resnet-native's ratio to each framework) and the JSON file.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '—';
  if (v >= 1000) return v.toFixed(0);
  if (v >= 100) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

const cell = (r, mode) => {
  if (r.skipped) return r.skipped;
  if (mode === 'train' && r.trainError) return r.trainError;
  const s = r[mode];
  if (!s) return 'not run';
  const cpu = s.cpuImagesPerSecond !== undefined ? ` · ${fmt(s.cpuImagesPerSecond)} by CPU time` : '';
  const value = mode === 'latency' ? `${fmt(s.msMedian)} ms` : `${fmt(s.imagesPerSecond)} img/s${cpu}`;
  return s.batch !== undefined ? `${value} (batch ${s.batch})` : value;
};

/** resnet-native ÷ other: > 1 means resnet-native is faster (for latency: other ms ÷ ours). */
function ratio(native, other, mode) {
  const a = native?.[mode];
  const b = other?.[mode];
  if (!a || !b) return '';
  if (mode === 'latency') return `${(b.msMedian / a.msMedian).toFixed(2)}×`;
  const byCpu = a.cpuImagesPerSecond && b.cpuImagesPerSecond ? ` · ${(a.cpuImagesPerSecond / b.cpuImagesPerSecond).toFixed(2)}× by CPU time` : '';
  return `${(a.imagesPerSecond / b.imagesPerSecond).toFixed(2)}×${byCpu}`;
}

/**
 * Markdown table: one row per model × framework; ratio columns say how many times faster
 * resnet-native is, by wall time and by CPU time (images per CPU-second × threads: the figure
 * that holds when other processes share the cores; timing.mjs).
 */
export function table(results) {
  const lines = ['| model | framework | train | ours ÷ it | infer | ours ÷ it | batch-1 latency | it ÷ ours |', '|---|---|---|---|---|---|---|---|'];
  for (const m of results) {
    const native = m.frameworks.find((f) => f.framework === 'resnet-native');
    for (const f of m.frameworks) {
      const self = f === native;
      lines.push(
        `| ${m.model} (batch ${m.batch}) | ${f.framework} | ${cell(f, 'train')} | ${self ? '' : ratio(native, f, 'train')} | ` +
          `${cell(f, 'infer')} | ${self ? '' : ratio(native, f, 'infer')} | ${cell(f, 'latency')} | ${self ? '' : ratio(native, f, 'latency')} |`,
      );
    }
  }
  return lines.join('\n');
}

export function writeJson(file, data) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
}
