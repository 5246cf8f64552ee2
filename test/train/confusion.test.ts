// The confusion matrix and per-class precision / recall / F1 against scikit-learn's documented
// examples (the numbers printed in its user guide, worked out by hand below as fractions), and
// evaluateModel's confusion matrix and misclassified list against predict + an argmax here.
import { describe, expect, it } from 'vitest';

import type { Dataset } from '../../lib/data/dataset.js';
import { Tensor } from '../../lib/tensor.js';
import { ConfusionAccumulator, classificationReport, confusionMatrix } from '../../lib/train/metrics.js';
import { evaluateModel } from '../../lib/train/trainer.js';
import { expectCode } from '../support/expect_error.js';
import { tinyModel } from '../support/models.js';

describe('confusionMatrix', () => {
  it("matches scikit-learn's confusion_matrix example", () => {
    // sklearn.metrics.confusion_matrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2])
    expect(confusionMatrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], 3)).toEqual([
      [2, 0, 0],
      [0, 0, 1],
      [1, 0, 2],
    ]);
  });

  it('refuses labels or predictions outside the classes, and short arrays', async () => {
    await expectCode(() => confusionMatrix([0, 3], [0, 1], 3), 'E_ARG', 'label 3 at index 1');
    await expectCode(() => confusionMatrix([0, 1], [0, -1], 3), 'E_ARG', 'prediction -1 at index 1');
    await expectCode(() => confusionMatrix([0, 1.5], [0, 1], 3), 'E_ARG', 'label 1.5');
    await expectCode(() => confusionMatrix([0], [0, 1], 3, 2), 'E_SHAPE');
  });
});

describe('classificationReport', () => {
  it("matches scikit-learn's classification_report example", () => {
    // y_true = [0, 1, 2, 2, 2], y_pred = [0, 0, 2, 2, 1]; the guide prints
    //   class 0  0.50 1.00 0.67 1 | class 1  0.00 0.00 0.00 1 | class 2  1.00 0.67 0.80 3
    //   accuracy 0.60 | macro avg 0.50 0.56 0.49 | weighted avg 0.70 0.60 0.61
    const r = classificationReport(confusionMatrix([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], 3));
    const exact = [
      { precision: 1 / 2, recall: 1, f1: 2 / 3, support: 1 },
      { precision: 0, recall: 0, f1: 0, support: 1 },
      { precision: 1, recall: 2 / 3, f1: 4 / 5, support: 3 },
    ];
    r.perClass.forEach((m, c) => {
      for (const key of ['precision', 'recall', 'f1'] as const) expect(m[key]).toBeCloseTo(exact[c]![key], 12);
      expect(m.support).toBe(exact[c]!.support);
    });
    expect(r.accuracy).toBeCloseTo(0.6, 12);
    expect(r.macroAvg.precision).toBeCloseTo(0.5, 12);
    expect(r.macroAvg.recall).toBeCloseTo(5 / 9, 12);
    expect(r.macroAvg.f1).toBeCloseTo((2 / 3 + 0.8) / 3, 12);
    expect(r.weightedAvg.precision).toBeCloseTo(0.7, 12);
    expect(r.weightedAvg.recall).toBeCloseTo(0.6, 12);
    expect(r.weightedAvg.f1).toBeCloseTo((2 / 3 + 3 * 0.8) / 5, 12);
    expect(r.macroAvg.support).toBe(5);
    // The printed two-decimal figures.
    expect([r.macroAvg.recall, r.macroAvg.f1, r.weightedAvg.f1].map((v) => v.toFixed(2))).toEqual(['0.56', '0.49', '0.61']);
  });

  it('a class never predicted and never present scores 0 (zero_division=0), not NaN', () => {
    const r = classificationReport([
      [3, 0],
      [0, 0],
    ]);
    expect(r.perClass[1]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(r.accuracy).toBe(1);
  });

  it('refuses a matrix that is not square counts', async () => {
    await expectCode(() => classificationReport([]), 'E_ARG');
    await expectCode(() => classificationReport([[1, 2], [3]]), 'E_SHAPE', 'row 1');
    await expectCode(
      () =>
        classificationReport([
          [1, -1],
          [0, 0],
        ]),
      'E_ARG',
      'row 0',
    );
  });
});

describe('ConfusionAccumulator', () => {
  it('counts argmax predictions and keeps the k most confident mistakes, across batches', () => {
    // Row i: logits with softmax probabilities worked out here.
    const rows = [
      [2, 0, 0], // predicted 0, label 0: right
      [0, 3, 0], // predicted 1, label 0: wrong, p = e³/(e³+2)
      [0, 0, 1], // predicted 2, label 1: wrong, p = e/(e+2)
      [5, 5, 0], // a tie: the lower class (0) wins; label 1: wrong
      [0, 0, 9], // predicted 2, label 2: right
    ];
    const labels = [0, 0, 1, 1, 2];
    const acc = new ConfusionAccumulator(3, 3);
    acc.addLogits(rows.slice(0, 2).flat(), labels.slice(0, 2), 2, 0);
    acc.addLogits(rows.slice(2).flat(), labels.slice(2), 3, 2);
    expect(acc.matrix()).toEqual([
      [1, 1, 0],
      [1, 0, 1],
      [0, 0, 1],
    ]);
    const e = Math.E;
    expect(acc.mistakes.map((m) => [m.index, m.label, m.predicted])).toEqual([
      [1, 0, 1],
      [2, 1, 2],
      [3, 1, 0],
    ]);
    expect(acc.mistakes[0]!.probability).toBeCloseTo(e ** 3 / (e ** 3 + 2), 12); // 0.909
    expect(acc.mistakes[1]!.probability).toBeCloseTo(e / (e + 2), 12); // 0.576
    expect(acc.mistakes[2]!.probability).toBeCloseTo(e ** 5 / (2 * e ** 5 + 1), 12); // 0.498
    // Keeping 1: only the most confident.
    const one = new ConfusionAccumulator(3, 1);
    one.addLogits(rows.slice(2).flat(), labels.slice(2), 3, 2);
    one.addLogits(rows.slice(0, 2).flat(), labels.slice(0, 2), 2, 0);
    expect(one.mistakes.map((m) => m.index)).toEqual([1]);
  });
});

describe('evaluateModel with confusionMatrix / misclassified', () => {
  it('equals predict + an argmax and a sort done here', async () => {
    const side = 8;
    const n = 37;
    const classes = 4;
    const images = new Float32Array(n * side * side * 3);
    let s = 7;
    for (let i = 0; i < images.length; i++) images[i] = ((s = (s * 1103515245 + 12345) >>> 0) % 1000) / 1000;
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % classes);
    const per = side * side * 3;
    const ds: Dataset = {
      length: n,
      imageShape: [side, side, 3],
      classes,
      fill(indices, out, outLabels) {
        for (let i = 0; i < indices.length; i++) {
          out.set(images.subarray(indices[i]! * per, (indices[i]! + 1) * per), i * per);
          outLabels[i] = labels[indices[i]!]!;
        }
      },
    };
    const model = tinyModel(5, { classes, side });
    const r = await evaluateModel(model, ds, { batchSize: 10, confusionMatrix: true, misclassified: 5 });
    const x = Tensor.fromArray(images, [n, side, side, 3]);
    const logits = await model.predict(x);
    const l = logits.toFloat32Array();
    const expected = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
    const wrong: { index: number; p: number; predicted: number }[] = [];
    for (let i = 0; i < n; i++) {
      const row = Array.from(l.subarray(i * classes, (i + 1) * classes));
      const predicted = row.indexOf(Math.max(...row));
      expected[labels[i]!]![predicted]!++;
      const z = row.map((v) => Math.exp(v));
      if (predicted !== labels[i]) wrong.push({ index: i, p: z[predicted]! / z.reduce((a, b) => a + b, 0), predicted });
    }
    wrong.sort((a, b) => b.p - a.p || a.index - b.index);
    expect(r.confusionMatrix).toEqual(expected);
    expect(r.confusionMatrix!.flat().reduce((a, b) => a + b, 0)).toBe(n);
    expect(r.misclassified!.map((m) => [m.index, m.predicted, m.label])).toEqual(
      wrong.slice(0, 5).map((w) => [w.index, w.predicted, labels[w.index]]),
    );
    r.misclassified!.forEach((m, i) => expect(m.probability).toBeCloseTo(wrong[i]!.p, 5));
    // Without the options: neither field.
    const plain = await evaluateModel(model, ds, { batchSize: 10 });
    expect(plain.confusionMatrix).toBeUndefined();
    expect(plain.misclassified).toBeUndefined();
    await expectCode(() => evaluateModel(model, ds, { misclassified: -1 }), 'E_ARG', 'misclassified');
    logits.dispose();
    x.dispose();
    model.dispose();
  });
});
