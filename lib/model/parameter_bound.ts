// A lower bound on a spec's parameter count, without building it (loadCheckpoint refuses a
// hostile spec with it before any native memory is asked for).
import { isPlainObject } from '../validate.js';
import type { LayerSpec, ModelSpec } from './spec.js';

/**
 * A lower bound on the parameter values the spec's network would allocate, computed without
 * building it, so that a hostile spec (a layer with 10^12 filters) is refused before native
 * memory is asked for. Unreadable fields count as small as they could be. Exact for valid specs.
 * Kept apart from the native shape inference on purpose: that runs only on a network already
 * built, i.e. after the allocation this bound exists to refuse. One function, one switch over
 * the layer types, each case the parameter and shape arithmetic of that layer: long, but flat.
 * @internal
 */
export function minimumParameterCount(spec: ModelSpec): number {
  const pos = (v: unknown, dflt: number): number => (typeof v === 'number' && Number.isFinite(v) && v >= 1 ? Math.floor(v) : dflt);
  const pair = (v: unknown, dflt: number): [number, number] =>
    Array.isArray(v) && v.length === 2 ? [pos(v[0], dflt), pos(v[1], dflt)] : typeof v === 'number' ? [pos(v, dflt), pos(v, dflt)] : [dflt, dflt];
  type Shape = { h: number; w: number; c: number };
  const input = Array.isArray(spec.inputShape) ? spec.inputShape : [];
  const shapes = new Map<string, Shape>([['input', { h: pos(input[0], 1), w: pos(input[1], 1), c: pos(input[2], 1) }]]);
  const windowed = (x: Shape, l: Record<string, unknown>, k: [number, number]): Shape => {
    const s = pair(l.strides, 1);
    const d = pair(l.dilations, 1);
    const pad = l.padding;
    let pads = [0, 0, 0, 0];
    if (typeof pad === 'number') pads = [pad, pad, pad, pad].map((p) => Math.max(0, Math.floor(p)));
    else if (Array.isArray(pad) && pad.length === 4) pads = pad.map((p) => (typeof p === 'number' && p > 0 ? Math.floor(p) : 0));
    const out = (n: number, i: 0 | 1) => {
      if (pad === 'same') return Math.ceil(n / s[i]);
      const eff = (k[i] - 1) * d[i] + 1;
      return Math.floor((n + pads[i * 2]! + pads[i * 2 + 1]! - eff) / s[i]) + 1;
    };
    return { h: Math.max(1, out(x.h, 0)), w: Math.max(1, out(x.w, 1)), c: x.c };
  };
  let total = 0;
  const layers = Array.isArray(spec.layers) ? spec.layers : [];
  for (const layer of layers as unknown[]) {
    if (!isPlainObject(layer)) continue;
    const l = layer as Record<string, unknown> & Partial<LayerSpec>;
    const first = Array.isArray(l.inputs) && typeof l.inputs[0] === 'string' ? shapes.get(l.inputs[0]) : undefined;
    const x = first ?? { h: 1, w: 1, c: 1 };
    let y: Shape = x;
    switch (l.type) {
      case 'conv2d': {
        const k = pair(l.kernelSize, 1);
        const filters = pos(l.filters, 1);
        const groups = pos(l.groups, 1);
        total += k[0] * k[1] * Math.max(1, Math.floor(x.c / groups)) * filters + (l.useBias === true ? filters : 0);
        y = { ...windowed(x, l, k), c: filters };
        break;
      }
      case 'maxPool':
      case 'avgPool':
        y = windowed(x, l, pair(l.poolSize, 1));
        break;
      case 'batchNorm':
        total += 4 * x.c;
        break;
      case 'squeezeExcite': {
        const hidden = pos(l.hidden, 1);
        total += 2 * x.c * hidden + hidden + x.c;
        break;
      }
      case 'globalAvgPool':
        y = { h: 1, w: 1, c: x.c };
        break;
      case 'flatten':
        y = { h: 1, w: 1, c: x.h * x.w * x.c };
        break;
      case 'dense': {
        const units = pos(l.units, 1);
        total += x.c * units + (l.useBias === true ? units : 0);
        y = { h: 1, w: 1, c: units };
        break;
      }
      case 'zeroPad': {
        const p =
          Array.isArray(l.padding) && l.padding.length === 4
            ? l.padding.map((v) => (typeof v === 'number' && v > 0 ? Math.floor(v) : 0))
            : [0, 0, 0, 0];
        y = { h: x.h + p[0]! + p[1]!, w: x.w + p[2]! + p[3]!, c: x.c };
        break;
      }
      case 'zeroPadShortcut': {
        const s = pair(l.strides, 1);
        y = { h: Math.floor((x.h - 1) / s[0]) + 1, w: Math.floor((x.w - 1) / s[1]) + 1, c: pos(l.filters, 1) };
        break;
      }
      default:
        break;
    }
    if (typeof l.name === 'string') shapes.set(l.name, y);
  }
  return total;
}
