// conv2d forward and gradients against tfjs on randomised shapes.
import { describe, expect, it } from 'vitest';

import { ops, Tensor } from '../../lib/index.js';
import type { Padding } from '../../lib/ops.js';
import { expectClose, reportWorstRatios } from '../support/compare.js';
import type { ConvCase } from '../support/fixtures.js';
import { Rng } from '../support/random.js';
import { tf } from '../support/tf.js';

reportWorstRatios(import.meta.url);

// tfjs padding for a group-less conv: 'same' / 'valid' / explicit NHWC pairs.
function tfPad(p: Padding): 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] {
  if (p === 'same' || p === 'valid') return p;
  const [t, b, l, r] = typeof p === 'number' ? [p, p, p, p] : p;
  return [
    [0, 0],
    [t, b],
    [l, r],
    [0, 0],
  ];
}

// Reference: one tfjs conv per group, concatenated along channels, plus bias.
function tfConv(c: ConvCase, x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D | null): tf.Tensor4D {
  const ipg = c.cin / c.groups;
  const opg = c.cout / c.groups;
  const outs: tf.Tensor4D[] = [];
  for (let g = 0; g < c.groups; g++) {
    const xg = tf.slice(x, [0, 0, 0, g * ipg], [-1, -1, -1, ipg]);
    const wg = tf.slice(w, [0, 0, 0, g * opg], [-1, -1, -1, opg]);
    outs.push(tf.conv2d(xg, wg, c.strides, tfPad(c.padding), 'NHWC', c.dilations));
  }
  const y = outs.length === 1 ? outs[0]! : tf.concat(outs, 3);
  return b ? tf.add(y, b) : y;
}

const fixed: ConvCase[] = [
  {
    name: '3x3 same, batch 1',
    n: 1,
    h: 7,
    w: 7,
    cin: 3,
    cout: 5,
    k: [3, 3],
    strides: [1, 1],
    dilations: [1, 1],
    padding: 'same',
    groups: 1,
    bias: false,
  },
  {
    name: '3x3 stride 2 same, even size',
    n: 2,
    h: 8,
    w: 8,
    cin: 5,
    cout: 7,
    k: [3, 3],
    strides: [2, 2],
    dilations: [1, 1],
    padding: 'same',
    groups: 1,
    bias: true,
  },
  {
    name: '3x3 stride 2 same, odd size',
    n: 2,
    h: 9,
    w: 7,
    cin: 7,
    cout: 3,
    k: [3, 3],
    strides: [2, 2],
    dilations: [1, 1],
    padding: 'same',
    groups: 1,
    bias: false,
  },
  {
    name: '7x7 stride 2 same (ResNet stem)',
    n: 2,
    h: 15,
    w: 16,
    cin: 3,
    cout: 8,
    k: [7, 7],
    strides: [2, 2],
    dilations: [1, 1],
    padding: 'same',
    groups: 1,
    bias: false,
  },
  {
    name: '7x7 stride 2 explicit pad 3 (torchvision stem)',
    n: 1,
    h: 16,
    w: 13,
    cin: 3,
    cout: 4,
    k: [7, 7],
    strides: [2, 2],
    dilations: [1, 1],
    padding: 3,
    groups: 1,
    bias: false,
  },
  {
    name: '1x1 stride 2 valid (projection shortcut)',
    n: 3,
    h: 9,
    w: 10,
    cin: 5,
    cout: 7,
    k: [1, 1],
    strides: [2, 2],
    dilations: [1, 1],
    padding: 'valid',
    groups: 1,
    bias: false,
  },
  {
    name: '3x3 dilation 2 same',
    n: 2,
    h: 9,
    w: 8,
    cin: 3,
    cout: 5,
    k: [3, 3],
    strides: [1, 1],
    dilations: [2, 2],
    padding: 'same',
    groups: 1,
    bias: true,
  },
  {
    name: '3x3 dilation 2 valid',
    n: 1,
    h: 11,
    w: 9,
    cin: 5,
    cout: 3,
    k: [3, 3],
    strides: [1, 1],
    dilations: [2, 2],
    padding: 'valid',
    groups: 1,
    bias: false,
  },
  {
    name: 'grouped 3x3, groups 2',
    n: 2,
    h: 7,
    w: 6,
    cin: 6,
    cout: 10,
    k: [3, 3],
    strides: [1, 1],
    dilations: [1, 1],
    padding: 'same',
    groups: 2,
    bias: false,
  },
  {
    name: 'grouped 3x3 stride 2, groups 4 (ResNeXt-like)',
    n: 2,
    h: 8,
    w: 9,
    cin: 8,
    cout: 12,
    k: [3, 3],
    strides: [2, 2],
    dilations: [1, 1],
    padding: [1, 1, 1, 1],
    groups: 4,
    bias: true,
  },
  {
    name: 'depthwise 3x3 (groups = channels)',
    n: 2,
    h: 7,
    w: 7,
    cin: 5,
    cout: 5,
    k: [3, 3],
    strides: [1, 1],
    dilations: [1, 1],
    padding: 'same',
    groups: 5,
    bias: false,
  },
  {
    name: 'asymmetric explicit padding, 2x3 kernel',
    n: 2,
    h: 6,
    w: 7,
    cin: 3,
    cout: 4,
    k: [2, 3],
    strides: [1, 2],
    dilations: [1, 1],
    padding: [0, 1, 2, 1],
    groups: 1,
    bias: true,
  },
];

function randomCase(rng: Rng, i: number): ConvCase {
  const groups = rng.pick([1, 1, 1, 2, 3]);
  const k = rng.pick([1, 3, 5]);
  const dil = rng.pick([1, 1, 2]);
  const stride = dil > 1 ? 1 : rng.pick([1, 2]); // tfjs cannot combine strides > 1 with dilations > 1
  return {
    name: `random #${i}`,
    n: rng.int(1, 3),
    h: rng.int(k * dil, 11),
    w: rng.int(k * dil, 11),
    cin: groups * rng.int(1, 4),
    cout: groups * rng.int(1, 4),
    k: [k, k],
    strides: [stride, stride],
    dilations: [dil, dil],
    padding: rng.pick<Padding>(['same', 'valid', 1]),
    groups,
    bias: rng.next() < 0.5,
  };
}

const rng = new Rng(20261125);
const cases = [...fixed, ...Array.from({ length: 8 }, (_, i) => randomCase(rng, i))];

describe('conv2d matches tfjs', () => {
  for (const c of cases) {
    it(`${c.name}: forward and gradients (${c.n}x${c.h}x${c.w}x${c.cin} -> ${c.cout}, k${c.k}, s${c.strides}, d${c.dilations}, pad ${JSON.stringify(c.padding)}, g${c.groups}${c.bias ? ', bias' : ''})`, async () => {
      const xData = rng.array(c.n * c.h * c.w * c.cin);
      const wData = rng.array(c.k[0] * c.k[1] * (c.cin / c.groups) * c.cout, 0.5);
      const bData = rng.array(c.cout);
      const x = Tensor.fromArray(xData, [c.n, c.h, c.w, c.cin]);
      const w = Tensor.fromArray(wData, [c.k[0], c.k[1], c.cin / c.groups, c.cout]);
      const b = c.bias ? Tensor.fromArray(bData, [c.cout]) : undefined;
      const opts = { strides: c.strides, dilations: c.dilations, padding: c.padding, groups: c.groups, bias: b };

      const y = await ops.conv2d(x, w, opts);
      const tx = tf.tensor4d(xData, [c.n, c.h, c.w, c.cin]);
      const tw = tf.tensor4d(wData, [c.k[0], c.k[1], c.cin / c.groups, c.cout]);
      const tb = c.bias ? tf.tensor1d(bData) : null;
      const ty = tfConv(c, tx, tw, tb);
      expect(y.shape).toEqual(ty.shape);
      const reduction = c.k[0] * c.k[1] * (c.cin / c.groups);
      expectClose('conv2d', y.toFloat32Array(), ty.dataSync(), reduction);

      const dyData = rng.array(y.size);
      const dy = Tensor.fromArray(dyData, y.shape);
      const grads = await ops.conv2dBackward(x, w, dy, opts);
      const tdy = tf.tensor(dyData, ty.shape);
      // tfjs has no conv gradients for dilation > 1: differentiate the equivalent
      // undilated conv whose filter has zeros between the taps, then read the taps.
      const [dh, dw] = c.dilations;
      const kh = (c.k[0] - 1) * dh + 1;
      const kw = (c.k[1] - 1) * dw + 1;
      const spread = new Float32Array(kh * kw * (c.cin / c.groups) * c.cout);
      const tapSize = (c.cin / c.groups) * c.cout;
      for (let ky = 0; ky < c.k[0]; ky++) {
        for (let kx = 0; kx < c.k[1]; kx++) {
          spread.set(wData.subarray((ky * c.k[1] + kx) * tapSize, (ky * c.k[1] + kx + 1) * tapSize), (ky * dh * kw + kx * dw) * tapSize);
        }
      }
      const undilated: ConvCase = { ...c, k: [kh, kw], dilations: [1, 1] };
      const tws = tf.tensor4d(spread, [kh, kw, c.cin / c.groups, c.cout]);
      const f = (xx: tf.Tensor, ww: tf.Tensor, bb?: tf.Tensor) =>
        tfConv(undilated, xx as tf.Tensor4D, ww as tf.Tensor4D, bb ? (bb as tf.Tensor1D) : null);
      const [gx, gws, gb] = tf.grads(f)(tb ? [tx, tws, tb] : [tx, tws], tdy);
      const gwsData = gws!.dataSync();
      const gwData = new Float32Array(wData.length);
      for (let ky = 0; ky < c.k[0]; ky++) {
        for (let kx = 0; kx < c.k[1]; kx++) {
          gwData.set(gwsData.subarray((ky * dh * kw + kx * dw) * tapSize, (ky * dh * kw + kx * dw + 1) * tapSize), (ky * c.k[1] + kx) * tapSize);
        }
      }
      const outPixels = y.shape[1]! * y.shape[2]!;
      expectClose('conv2dBackward dx', grads.dx.toFloat32Array(), gx!.dataSync(), c.k[0] * c.k[1] * (c.cout / c.groups));
      expectClose('conv2dBackward dw', grads.dw.toFloat32Array(), gwData, c.n * outPixels);
      if (c.bias) expectClose('conv2dBackward db', grads.db!.toFloat32Array(), gb!.dataSync(), c.n * outPixels);
      else expect(grads.db).toBeUndefined();
    });
  }
});
