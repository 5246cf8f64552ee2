// Loss scaling (the fp16 path's defence against underflowing gradients), checked where it can
// be exact: in fp32 on the CPU, multiplying the loss by a power of two scales every gradient by
// exactly that power (each product and sum of the backward pass is linear in the incoming
// gradient, and a power-of-two factor commutes with rounding), so unscaling must give back the
// unscaled run bit for bit. Forgetting to unscale, unscaling twice, or unscaling the clipping
// threshold instead of the gradients all break the equality. The overflow path (a skipped step,
// the scale halved) needs fp16 and is in cuda.test.ts.
import { describe, expect, it } from 'vitest';

import { type Model, models, Tensor } from '../../lib/index.js';
import { Rng } from '../support/random.js';

const shape: [number, number, number] = [8, 8, 3];

function batch(seed: number, n = 6): { x: Tensor; y: Int32Array } {
  const rng = new Rng(seed);
  return { x: Tensor.fromArray(rng.array(n * 8 * 8 * 3), [n, ...shape]), y: rng.labels(n, 10) };
}

function parameters(m: Model): Map<string, Float32Array> {
  return new Map(m.parameterInfo().map((p) => [p.name, m.getParameter(p.name)]));
}

describe('loss scaling in fp32', () => {
  it('defaults: scale 1 and nothing skipped on the CPU', async () => {
    const m = models.resnetCifar({ depth: 8, inputShape: shape, seed: 1 });
    expect(m.precision).toBe('fp32');
    expect(m.lossScale).toEqual({ scale: 1, skippedSteps: 0 });
    m.compile({ optimizer: { type: 'sgd', lr: 0.1 } });
    const { x, y } = batch(1);
    const r = await m.trainStep(x, y);
    expect(r.skipped).toBe(false);
    expect(r.lossScale).toBe(1);
    x.dispose();
    m.dispose();
  });

  it('a fixed power-of-two scale trains bit-identically to no scaling (SGD momentum, weight decay, clipping)', async () => {
    const options = { optimizer: { type: 'sgd' as const, lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 }, clipGradNorm: 0.5 };
    const plain = models.resnetCifar({ depth: 8, inputShape: shape, seed: 7 });
    const scaled = models.resnetCifar({ depth: 8, inputShape: shape, seed: 7, lossScale: { dynamic: false, initial: 1024 } });
    plain.compile(options);
    scaled.compile(options);
    for (let step = 0; step < 3; step++) {
      const { x, y } = batch(100 + step);
      const [a, b] = [await plain.trainStep(x, y), await scaled.trainStep(x, y)];
      expect(b.lossScale).toBe(1024);
      expect(b.skipped).toBe(false);
      expect(b.loss).toBe(a.loss);
      expect(b.gradNorm).toBe(a.gradNorm);
      x.dispose();
    }
    const [pa, pb] = [parameters(plain), parameters(scaled)];
    for (const [name, v] of pa) expect(pb.get(name), name).toEqual(v);
    plain.dispose();
    scaled.dispose();
  });

  it('computeGradients returns unscaled gradients', async () => {
    const plain = models.resnetCifar({ depth: 8, inputShape: shape, seed: 9 });
    const scaled = models.resnetCifar({ depth: 8, inputShape: shape, seed: 9, lossScale: { dynamic: false, initial: 2 ** 20 } });
    const { x, y } = batch(5);
    await plain.computeGradients(x, y);
    await scaled.computeGradients(x, y);
    for (const p of plain.parameterInfo()) {
      if (p.trainable) expect(scaled.getGradient(p.name), p.name).toEqual(plain.getGradient(p.name));
    }
    x.dispose();
    plain.dispose();
    scaled.dispose();
  });

  it('a dynamic scale doubles after growthInterval good steps and AdamW still matches the unscaled run', async () => {
    const options = { optimizer: { type: 'adamw' as const, lr: 1e-3, weightDecay: 0.01 } };
    const plain = models.resnetCifar({ depth: 8, inputShape: shape, seed: 11 });
    const scaled = models.resnetCifar({ depth: 8, inputShape: shape, seed: 11, lossScale: { initial: 4, growthInterval: 2 } });
    plain.compile(options);
    scaled.compile(options);
    const seen: number[] = [];
    for (let step = 0; step < 5; step++) {
      const { x, y } = batch(200 + step);
      const [a, b] = [await plain.trainStep(x, y), await scaled.trainStep(x, y)];
      seen.push(b.lossScale);
      expect(b.loss).toBe(a.loss);
      x.dispose();
    }
    expect(seen).toEqual([4, 4, 8, 8, 16]);
    expect(scaled.lossScale).toEqual({ scale: 16, skippedSteps: 0 });
    const [pa, pb] = [parameters(plain), parameters(scaled)];
    for (const [name, v] of pa) expect(pb.get(name), name).toEqual(v);
    plain.dispose();
    scaled.dispose();
  });

  it('bad loss-scale options and mixed precision on the CPU are E_ARG naming the problem', () => {
    const build = (o: object) => () => models.resnetCifar({ depth: 8, inputShape: shape, ...o });
    expect(build({ precision: 'fp16' })).toThrow(expect.objectContaining({ code: 'E_ARG', message: expect.stringMatching(/needs a CUDA device/) }));
    expect(build({ precision: 'bf16', device: 'cpu' })).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(build({ precision: 'fp8' })).toThrow(
      expect.objectContaining({ code: 'E_ARG', message: expect.stringMatching(/'fp32', 'fp16' or 'bf16'/) }),
    );
    expect(build({ lossScale: 5 })).toThrow(
      expect.objectContaining({ code: 'E_ARG', message: expect.stringMatching(/lossScale must be an object/) }),
    );
    expect(build({ lossScale: { initial: 0.5 } })).toThrow(
      expect.objectContaining({ code: 'E_ARG', message: expect.stringMatching(/lossScale\.initial/) }),
    );
    expect(build({ lossScale: { initial: 2 ** 30 } })).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(build({ lossScale: { growthInterval: 1.5 } })).toThrow(
      expect.objectContaining({ code: 'E_ARG', message: expect.stringMatching(/growthInterval/) }),
    );
    expect(build({ lossScale: { factor: 2 } })).toThrow(expect.objectContaining({ code: 'E_ARG', message: expect.stringMatching(/factor/) }));
  });
});
