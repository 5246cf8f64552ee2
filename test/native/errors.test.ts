// Bad input to every op: a ResNetError with the right code and a message naming the op
// (and the shapes where shapes are the problem). Never a crash, never a hang.
import { describe, expect, it } from 'vitest';

import { ops, ResNetError, Tensor } from '../../lib/index.js';
import { Rng } from '../support/random.js';
import { expectCode, rejection } from '../support/expect_error.js';

const t = (shape: number[], value = 0.5) => Tensor.fill(shape, value);

const bnParams = (c: number) => ({ gamma: t([c], 1), beta: t([c], 0), runningMean: t([c], 0), runningVar: t([c], 1) });

describe('conv2d rejects', () => {
  const x = t([2, 5, 5, 3]);
  const w = t([3, 3, 3, 4]);

  it('a rank-3 input, naming the op and both shapes', () =>
    expectCode(() => ops.conv2d(t([5, 5, 3]), w), 'E_SHAPE', 'conv2d', '[5, 5, 3]', '[3, 3, 3, 4]'));
  it('a rank-2 filter', () => expectCode(() => ops.conv2d(x, t([3, 4])), 'E_SHAPE', 'conv2d', 'filter'));
  it('a channel mismatch', () => expectCode(() => ops.conv2d(x, t([3, 3, 5, 4])), 'E_SHAPE', 'input channels 3'));
  it('groups that do not divide the channels', () =>
    expectCode(() => ops.conv2d(x, t([3, 3, 1, 4]), { groups: 2 }), 'E_SHAPE', 'groups=2'));
  it('a window larger than the padded input', () =>
    expectCode(() => ops.conv2d(t([1, 2, 2, 3]), w, { padding: 'valid' }), 'E_SHAPE', 'window'));
  it('an output whose size overflows', () =>
    expectCode(() => ops.conv2d(t([1, 1, 1, 1]), t([1, 1, 1, 1]), { padding: 2 ** 24 }), 'E_SHAPE', 'too large'));
  it.each([0, -1, 1.5, Number.NaN, '2', [1, 2, 3]])('strides %s', async (s) => {
    await expectCode(() => ops.conv2d(x, w, { strides: s as number }), 'E_ARG', 'strides');
  });
  it.each([0, -2, 0.5])('dilations %s', async (d) => {
    await expectCode(() => ops.conv2d(x, w, { dilations: d }), 'E_ARG', 'dilations');
  });
  it.each(['bogus', -1, [1, 2], [1, 1, 1, -1], {}])('padding %s', async (p) => {
    await expectCode(() => ops.conv2d(x, w, { padding: p as 'same' }), 'E_ARG', 'padding');
  });
  it.each([0, -1, 2.5])('groups %s', async (g) => {
    await expectCode(() => ops.conv2d(x, w, { groups: g }), 'E_ARG', 'groups');
  });
  it('a bias of the wrong length', () =>
    expectCode(() => ops.conv2d(x, w, { bias: t([3]) }), 'E_SHAPE', 'bias', '[4]'));
  it('options that are not an object', () => expectCode(() => ops.conv2d(x, w, 3 as never), 'E_ARG', 'options'));
  it('dy of the wrong shape in the backward pass', () =>
    expectCode(() => ops.conv2dBackward(x, w, t([2, 5, 5, 4])), 'E_SHAPE', 'conv2dBackward', 'dy'));
});

describe('batch-norm rejects', () => {
  const x = t([2, 3, 3, 4]);
  it('params with the wrong channel count', () =>
    expectCode(() => ops.batchNorm(x, bnParams(3)), 'E_SHAPE', 'batchNorm', 'gamma', '[4]'));
  it('a rank-3 input', () => expectCode(() => ops.batchNorm(t([2, 3, 4]), bnParams(4)), 'E_SHAPE', 'rank'));
  it('one value per channel in training mode', () =>
    expectCode(() => ops.batchNorm(t([1, 4]), bnParams(4)), 'E_SHAPE', 'more than one value'));
  it('missing params', () => expectCode(() => ops.batchNorm(x, { gamma: t([4]) } as never), 'E_ARG', 'beta'));
  it('params that are not an object', () => expectCode(() => ops.batchNorm(x, null as never), 'E_ARG', 'params'));
  it.each([-0.1, 1.5, Number.NaN])('momentum %s', async (m) => {
    await expectCode(() => ops.batchNorm(x, bnParams(4), { momentum: m }), 'E_ARG', 'momentum');
  });
  it.each([-1, Number.POSITIVE_INFINITY])('epsilon %s', async (e) => {
    await expectCode(() => ops.batchNorm(x, bnParams(4), { epsilon: e }), 'E_ARG', 'epsilon');
  });
  it('training that is not a boolean', () =>
    expectCode(() => ops.batchNorm(x, bnParams(4), { training: 'yes' as never }), 'E_ARG', 'training'));
  it('a skip of another shape in batchNormAddRelu', () =>
    expectCode(() => ops.batchNormAddRelu(x, t([2, 3, 3, 5]), bnParams(4)), 'E_SHAPE', 'skip'));
  it('dy of another shape in batchNormAddReluBackward', () =>
    expectCode(() => ops.batchNormAddReluBackward(x, x, t([2, 3, 3, 5]), bnParams(4)), 'E_SHAPE', 'dy'));
});

describe('pools, dense, relu, add reject', () => {
  it('maxPool without options', () => expectCode(() => ops.maxPool(t([1, 4, 4, 2]), undefined as never), 'E_ARG', 'maxPool'));
  it('maxPool on a rank-2 input', () => expectCode(() => ops.maxPool(t([4, 4]), { size: 2 }), 'E_SHAPE', 'maxPool'));
  it('avgPool with a zero window', () => expectCode(() => ops.avgPool(t([1, 4, 4, 2]), { size: 0 }), 'E_ARG', 'size'));
  it('avgPool with padding as large as the window', () =>
    expectCode(() => ops.avgPool(t([1, 4, 4, 2]), { size: 2, padding: 2 }), 'E_ARG', 'padding'));
  it('maxPoolBackward with dy of the wrong shape', () =>
    expectCode(() => ops.maxPoolBackward(t([1, 4, 4, 2]), t([1, 4, 4, 2]), { size: 2 }), 'E_SHAPE', 'dy'));
  it('globalAvgPool on a rank-2 input', () => expectCode(() => ops.globalAvgPool(t([2, 3])), 'E_SHAPE', 'globalAvgPool'));
  it('dense with mismatched features', () =>
    expectCode(() => ops.dense(t([2, 3]), t([4, 5])), 'E_SHAPE', 'dense', '[2, 3]', '[4, 5]'));
  it('dense with a rank-4 input', () => expectCode(() => ops.dense(t([2, 1, 1, 3]), t([3, 5])), 'E_SHAPE', 'rank 2'));
  it('dense with a bias of the wrong length', () => expectCode(() => ops.dense(t([2, 3]), t([3, 5]), t([4])), 'E_SHAPE', 'bias'));
  it('add with different shapes', () => expectCode(() => ops.add(t([2, 3]), t([3, 2])), 'E_SHAPE', 'add'));
  it('reluBackward with different shapes', () => expectCode(() => ops.reluBackward(t([2, 3]), t([6])), 'E_SHAPE', 'reluBackward'));
});

describe('softmaxCrossEntropy rejects', () => {
  const logits = t([3, 4]);
  it('a label out of range', () =>
    expectCode(() => ops.softmaxCrossEntropy(logits, [0, 4, 1]), 'E_ARG', 'label 4 at index 1', '[0, 4)'));
  it('a negative label', () => expectCode(() => ops.softmaxCrossEntropy(logits, Int32Array.from([0, -1, 1])), 'E_ARG', 'label -1'));
  it('a fractional label', () => expectCode(() => ops.softmaxCrossEntropy(logits, [0, 1.5, 1]), 'E_ARG', 'index 1'));
  it('a NaN label', () => expectCode(() => ops.softmaxCrossEntropy(logits, [0, Number.NaN, 1]), 'E_ARG', 'index 1'));
  it('a batch-size mismatch', () =>
    expectCode(() => ops.softmaxCrossEntropy(logits, [0, 1]), 'E_SHAPE', '2 labels for a batch of 3'));
  it('labels of the wrong type', () =>
    expectCode(() => ops.softmaxCrossEntropy(logits, new Float32Array(3) as never), 'E_DTYPE', 'Int32Array'));
  it('label smoothing above 1', () =>
    expectCode(() => ops.softmaxCrossEntropy(logits, [0, 1, 2], { labelSmoothing: 2 }), 'E_ARG', 'labelSmoothing'));
  it('rank-1 logits', () => expectCode(() => ops.softmaxCrossEntropy(t([4]), [0]), 'E_SHAPE', 'rank 2'));
  it('a non-finite dloss', () =>
    expectCode(() => ops.softmaxCrossEntropyBackward(logits, [0, 1, 2], { dloss: Number.NaN }), 'E_ARG', 'dloss'));
});

// Every op, fed each kind of non-tensor and a disposed tensor in each tensor slot.
type Call = (args: unknown[]) => Promise<unknown>;
const pool = { size: 2 };
const catalogue: Array<{ name: string; args: () => unknown[]; tensorSlots: number[]; call: Call }> = [
  { name: 'conv2d', args: () => [t([1, 4, 4, 2]), t([3, 3, 2, 2])], tensorSlots: [0, 1], call: (a) => ops.conv2d(a[0] as Tensor, a[1] as Tensor) },
  { name: 'conv2dBackward', args: () => [t([1, 4, 4, 2]), t([1, 1, 2, 2]), t([1, 4, 4, 2])], tensorSlots: [0, 1, 2], call: (a) => ops.conv2dBackward(a[0] as Tensor, a[1] as Tensor, a[2] as Tensor) },
  { name: 'batchNorm', args: () => [t([2, 2]), t([2]), t([2]), t([2]), t([2])], tensorSlots: [0, 1, 2, 3, 4], call: (a) => ops.batchNorm(a[0] as Tensor, { gamma: a[1], beta: a[2], runningMean: a[3], runningVar: a[4] } as never) },
  { name: 'batchNormBackward', args: () => [t([2, 2]), t([2, 2]), t([2]), t([2]), t([2]), t([2])], tensorSlots: [0, 1, 2, 3, 4, 5], call: (a) => ops.batchNormBackward(a[0] as Tensor, a[1] as Tensor, { gamma: a[2], beta: a[3], runningMean: a[4], runningVar: a[5] } as never) },
  { name: 'batchNormAddRelu', args: () => [t([2, 2]), t([2, 2]), t([2]), t([2]), t([2]), t([2])], tensorSlots: [0, 1, 2, 3, 4, 5], call: (a) => ops.batchNormAddRelu(a[0] as Tensor, a[1] as Tensor, { gamma: a[2], beta: a[3], runningMean: a[4], runningVar: a[5] } as never) },
  { name: 'batchNormAddReluBackward', args: () => [t([2, 2]), t([2, 2]), t([2, 2]), t([2]), t([2]), t([2]), t([2])], tensorSlots: [0, 1, 2, 3, 4, 5, 6], call: (a) => ops.batchNormAddReluBackward(a[0] as Tensor, a[1] as Tensor, a[2] as Tensor, { gamma: a[3], beta: a[4], runningMean: a[5], runningVar: a[6] } as never) },
  { name: 'relu', args: () => [t([3])], tensorSlots: [0], call: (a) => ops.relu(a[0] as Tensor) },
  { name: 'reluBackward', args: () => [t([3]), t([3])], tensorSlots: [0, 1], call: (a) => ops.reluBackward(a[0] as Tensor, a[1] as Tensor) },
  { name: 'add', args: () => [t([3]), t([3])], tensorSlots: [0, 1], call: (a) => ops.add(a[0] as Tensor, a[1] as Tensor) },
  { name: 'maxPool', args: () => [t([1, 4, 4, 1])], tensorSlots: [0], call: (a) => ops.maxPool(a[0] as Tensor, pool) },
  { name: 'maxPoolBackward', args: () => [t([1, 4, 4, 1]), t([1, 2, 2, 1])], tensorSlots: [0, 1], call: (a) => ops.maxPoolBackward(a[0] as Tensor, a[1] as Tensor, pool) },
  { name: 'avgPool', args: () => [t([1, 4, 4, 1])], tensorSlots: [0], call: (a) => ops.avgPool(a[0] as Tensor, pool) },
  { name: 'avgPoolBackward', args: () => [t([1, 4, 4, 1]), t([1, 2, 2, 1])], tensorSlots: [0, 1], call: (a) => ops.avgPoolBackward(a[0] as Tensor, a[1] as Tensor, pool) },
  { name: 'globalAvgPool', args: () => [t([1, 2, 2, 3])], tensorSlots: [0], call: (a) => ops.globalAvgPool(a[0] as Tensor) },
  { name: 'globalAvgPoolBackward', args: () => [t([1, 2, 2, 3]), t([1, 3])], tensorSlots: [0, 1], call: (a) => ops.globalAvgPoolBackward(a[0] as Tensor, a[1] as Tensor) },
  { name: 'dense', args: () => [t([2, 3]), t([3, 4])], tensorSlots: [0, 1], call: (a) => ops.dense(a[0] as Tensor, a[1] as Tensor) },
  { name: 'denseBackward', args: () => [t([2, 3]), t([3, 4]), t([2, 4])], tensorSlots: [0, 1, 2], call: (a) => ops.denseBackward(a[0] as Tensor, a[1] as Tensor, a[2] as Tensor) },
  { name: 'softmaxCrossEntropy', args: () => [t([2, 3])], tensorSlots: [0], call: (a) => ops.softmaxCrossEntropy(a[0] as Tensor, [0, 1]) },
  { name: 'softmaxCrossEntropyBackward', args: () => [t([2, 3])], tensorSlots: [0], call: (a) => ops.softmaxCrossEntropyBackward(a[0] as Tensor, [0, 1]) },
];

const notTensors: unknown[] = [undefined, null, 0, 'tensor', {}, [1, 2], new Float32Array(4), () => 1];

describe('every op', () => {
  for (const op of catalogue) {
    it(`${op.name}: succeeds on valid input, rejects non-tensors with E_ARG and disposed tensors with E_DISPOSED`, async () => {
      await expect(op.call(op.args())).resolves.toBeDefined();
      for (const slot of op.tensorSlots) {
        for (const bad of notTensors) {
          const args = op.args();
          args[slot] = bad;
          const err = await rejection(() => op.call(args));
          expect(err.code, err.message).toBe('E_ARG');
          expect(err.message).toContain(op.name);
        }
        const args = op.args();
        (args[slot] as Tensor).dispose();
        const err = await rejection(() => op.call(args));
        expect(err.code).toBe('E_DISPOSED');
        expect(err.message).toContain('disposed');
      }
    });
  }

  it('survives random garbage: every call resolves or rejects with a ResNetError', async () => {
    const rng = new Rng(7);
    const dims = [1, 2, 3, 5];
    const randomShape = () => Array.from({ length: rng.int(1, 4) }, () => rng.pick(dims));
    const garbage = (): unknown => {
      switch (rng.int(0, 5)) {
        case 0:
          return Tensor.fill(randomShape(), rng.next() * 4 - 2);
        case 1:
          return rng.pick(notTensors);
        case 2:
          return { size: rng.pick([0, 1, 2, -1, 'x']), strides: rng.pick([1, 2, 0, NaN]), padding: rng.pick(['same', 'valid', 1, -1, 'bad']), groups: rng.pick([1, 2, 0]) };
        case 3:
          return rng.pick([[0, 1], Int32Array.from([0, 9]), [1.5], new Float32Array(2)]);
        case 4:
          return { gamma: Tensor.fill([rng.pick(dims)]), beta: Tensor.fill([rng.pick(dims)]), runningMean: Tensor.fill([rng.pick(dims)]), runningVar: Tensor.fill([rng.pick(dims)], 1) };
        default:
          return rng.pick([Number.NaN, Infinity, -5, 2 ** 40]);
      }
    };
    const fns = Object.entries(ops).filter(([, v]) => typeof v === 'function') as Array<[string, (...a: unknown[]) => Promise<unknown>]>;
    let rejected = 0;
    let resolved = 0;
    for (let i = 0; i < 600; i++) {
      const [, fn] = rng.pick(fns);
      const args = Array.from({ length: rng.int(0, 5) }, garbage);
      try {
        await fn(...args);
        resolved++;
      } catch (err) {
        expect(err).toBeInstanceOf(ResNetError);
        rejected++;
      }
    }
    expect(rejected + resolved).toBe(600);
    expect(rejected).toBeGreaterThan(0);
  });
});
