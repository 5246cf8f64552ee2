// The alternated benchmarks' table (median over rounds with the spread, and speed ratios from the
// medians) and the JSON file.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { speedRatio } from './rounds.mjs';

export function fmt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '—';
  if (v >= 1000) return v.toFixed(0);
  if (v >= 100) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** "median (min–max)" of a spread; just the median when there is one round. */
export function fmtSpread(s) {
  if (!s) return '—';
  return s.rounds.length > 1 ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : fmt(s.median);
}

/** The table's measures: label, how to read the spread from summarizeRounds' output, rate or time. */
export const MEASURES = [
  { label: 'train img/s', get: (s) => s.train.wall, kind: 'rate' },
  { label: 'train img/s by CPU time', get: (s) => s.train.cpu, kind: 'rate' },
  { label: 'infer img/s', get: (s) => s.infer.wall, kind: 'rate' },
  { label: 'infer img/s by CPU time', get: (s) => s.infer.cpu, kind: 'rate' },
  { label: 'batch-1 latency ms', get: (s) => s.latencyMs, kind: 'time' },
];

/**
 * Markdown table: per model one row per measure that anyone ran; a column per framework (median
 * over rounds and min–max) and, for each of `ours` beside each of `references`, the speed ratio
 * from the medians (> 1: ours is faster; for latency their ms ÷ ours).
 * rows: [{ model, batch, summary: { framework: summarizeRounds(…) }, errors: { framework: text } }].
 */
export function roundsTable(rows, ours, references) {
  const pairs = ours.flatMap((o) => references.map((r) => [o, r]));
  const frameworks = [...ours, ...references];
  const head = ['model', 'measure', ...frameworks, ...pairs.map(([o, r]) => (ours.length > 1 ? `${o} ÷ ${r}` : `÷ ${r}`))];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const row of rows) {
    for (const m of MEASURES) {
      const values = frameworks.map((f) => (row.summary[f] ? m.get(row.summary[f]) : null));
      if (values.every((v) => !v)) continue;
      const cells = frameworks.map((f, i) => (values[i] ? fmtSpread(values[i]) : row.errors?.[f] ? `error: ${row.errors[f]}` : '—'));
      const ratios = pairs.map(([o, r]) => {
        const x = row.summary[o] && row.summary[r] ? speedRatio(m.get(row.summary[o]), m.get(row.summary[r]), m.kind) : null;
        return x === null ? '' : `${x.toFixed(2)}×`;
      });
      lines.push(`| ${row.model} (batch ${row.batch}) | ${m.label} | ${[...cells, ...ratios].join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

/** The same ratios as the table, for the JSON: { measure label: { 'ours ÷ ref': ratio } }. */
export function ratios(summary, ours, references) {
  const out = {};
  for (const m of MEASURES) {
    for (const o of ours) {
      for (const r of references) {
        if (!summary[o] || !summary[r]) continue;
        const x = speedRatio(m.get(summary[o]), m.get(summary[r]), m.kind);
        if (x !== null) (out[m.label] ??= {})[`${o} ÷ ${r}`] = x;
      }
    }
  }
  return out;
}

export function writeJson(file, data) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
}
