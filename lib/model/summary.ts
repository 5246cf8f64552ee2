// model.summary(): a Keras-like table of layers, output shapes and parameter counts.
import type { NativeLayerInfo } from '../native.js';

function group(n: number): string {
  return n.toLocaleString('en-US');
}

function pad(s: string, width: number): string {
  return s.length >= width ? `${s} ` : s + ' '.repeat(width - s.length);
}

/** The table for `layers` (from the native describe()), batch dimension shown as None. */
export function formatSummary(name: string, layers: readonly NativeLayerInfo[]): string {
  const rows = layers.map((l) => [
    `${l.name} (${l.type})`,
    `(None, ${l.outputShape.slice(1).join(', ')})`,
    group(l.params + l.nonTrainable),
    l.inputs.join(', '),
  ]);
  const header = ['Layer (type)', 'Output Shape', 'Param #', 'Connected to'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)) + 2);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => pad(c, widths[i]!))
      .join('')
      .trimEnd();
  const total = widths.reduce((a, b) => a + b, 0);
  const trainable = layers.reduce((s, l) => s + l.params, 0);
  const nonTrainable = layers.reduce((s, l) => s + l.nonTrainable, 0);
  return [
    `Model: "${name}"`,
    '_'.repeat(total),
    line(header),
    '='.repeat(total),
    ...rows.map(line),
    '='.repeat(total),
    `Total params: ${group(trainable + nonTrainable)}`,
    `Trainable params: ${group(trainable)}`,
    `Non-trainable params: ${group(nonTrainable)}`,
    '_'.repeat(total),
  ].join('\n');
}
