// What `resnet-native report` reads and writes, without a browser: the run-folder readers
// (history.json, Keras' CSVLogger log.csv, steps.jsonl, eval.json) on valid, mutated, nested and
// special files; the escaping of every string from a file; the step log's resume trimming; and
// the chart helpers.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { ResNetError } from '../../lib/errors.js';
import { checkedThumbnail, checkEvalFile, type EvalFile } from '../../lib/report/eval_file.js';
import { downsample, reportHtml } from '../../lib/report/html.js';
import { escapeHtml, html } from '../../lib/report/markup.js';
import { parseHistory, parseKerasCsv, parseSteps, readRunFolder, type RunFolder } from '../../lib/report/run_dir.js';
import { niceTicks, tickLabel } from '../../lib/report/svg_chart.js';
import type { TrainContext } from '../../lib/train/callbacks.js';
import { stepLinesUpTo, stepLog } from '../../lib/train/step_log.js';
import { expectCode } from '../support/expect_error.js';
import { describeUnexpected, makeSpecialFile, mutateBytes, mutateJson, nestJson, releaseFifos, SPECIAL_KINDS, within } from '../support/fuzz.js';
import { Rng } from '../support/random.js';

let dir: string;
let png: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rn-report-files-'));
  png = (
    await sharp(Buffer.alloc(4 * 4 * 3, 200), { raw: { width: 4, height: 4, channels: 3 } })
      .png()
      .toBuffer()
  ).toString('base64');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => releaseFifos());

const HOSTILE_NAMES = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "a'b&c"];

function evalFile(names = ['cat', 'dog', 'eel']): EvalFile {
  // Hand-made: 6 examples, 2 per class; precision/recall worked out by hand.
  return {
    format: 'resnet-native-eval',
    version: 1,
    checkpoint: 'runs/x/best.safetensors',
    dataset: 'folder',
    split: 'test',
    count: 6,
    loss: 0.5,
    accuracy: 4 / 6,
    classNames: names,
    confusionMatrix: [
      [2, 0, 0],
      [1, 1, 0],
      [0, 1, 1],
    ],
    perClass: [
      { precision: 2 / 3, recall: 1, f1: 0.8, support: 2 },
      { precision: 0.5, recall: 0.5, f1: 0.5, support: 2 },
      { precision: 1, recall: 0.5, f1: 2 / 3, support: 2 },
    ],
    macroAvg: { precision: 13 / 18, recall: 2 / 3, f1: 59 / 90, support: 6 },
    weightedAvg: { precision: 13 / 18, recall: 2 / 3, f1: 59 / 90, support: 6 },
    misclassified: [
      { index: 3, label: 1, predicted: 0, probability: 0.9, thumbnail: png },
      { index: 5, label: 2, predicted: 1, probability: 0.6 },
    ],
  };
}

const run = (evaluation: EvalFile | undefined, extra: Partial<RunFolder> = {}): RunFolder => ({
  dir: 'runs/x',
  epochs: {
    state: 'ok',
    value: [1, 2].map((epoch) => ({ epoch, loss: 1 / epoch, accuracy: 0.5 * epoch, valLoss: 1.1 / epoch, valAccuracy: 0.4 * epoch, lr: 0.1 })),
  },
  steps: { state: 'missing' },
  evaluation: evaluation ? { state: 'ok', value: evaluation } : { state: 'missing' },
  ...extra,
});

describe('escaping', () => {
  it('html`` escapes every interpolated string, and nested markup stays markup', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    const inner = html`<b>${'<i>'}</b>`;
    expect(html`<p title="${'"x'}">${inner}${['<', html`<u>u</u>`]}</p>`.text).toBe('<p title="&quot;x"><b>&lt;i&gt;</b>&lt;<u>u</u></p>');
  });

  it('hostile class names, paths and error reasons never become markup on the page', () => {
    const page = reportHtml(
      run(
        { ...evalFile(HOSTILE_NAMES), checkpoint: '<script>x</script>.safetensors', dataset: '<b>', split: '<i>' },
        { steps: { state: 'error', reason: 'steps.jsonl: <script>bad</script>' } },
      ),
      { title: '<title>run' },
    );
    expect(page).not.toMatch(/<script/i);
    expect(page).not.toMatch(/<img src=x/);
    expect(page).not.toMatch(/<b>|<i>/);
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toContain('&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    expect(page).toContain('a&#39;b&amp;c');
    expect(page).toContain('&lt;title&gt;run · resnet-native report</title>');
    // Every image is a data: URI; nothing on the page could fetch anything.
    for (const m of page.matchAll(/<img[^>]*src="([^"]*)"/g)) expect(m[1]).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/=]+$/);
    expect(page).toContain(`content="default-src 'none'; img-src data:; style-src 'unsafe-inline'"`);
  });

  it('a thumbnail is embedded only when it is base64 of a PNG', () => {
    expect(checkedThumbnail(png)).toBe(png);
    for (const bad of [
      '" onerror="alert(1)',
      'data:image/png;base64,' + png,
      Buffer.from('GIF89a....').toString('base64'),
      png.slice(0, -1),
      '',
      7,
      null,
    ]) {
      expect(checkedThumbnail(bad)).toBeUndefined();
    }
  });
});

describe('the page says what is missing instead of failing', () => {
  it('no eval.json, no steps.jsonl, an unreadable history', () => {
    const page = reportHtml({
      dir: 'r',
      epochs: { state: 'error', reason: 'history.json is not valid JSON' },
      steps: { state: 'missing' },
      evaluation: { state: 'missing' },
    });
    expect(page).toContain('history.json could not be read: history.json is not valid JSON');
    expect(page).toContain('No per-step log yet');
    expect(page).toContain('No evaluation yet');
    expect(page).not.toContain('<polyline');
  });

  it('NaN losses (a diverged run) leave the point out, not the page', () => {
    const page = reportHtml(
      run(undefined, {
        epochs: { state: 'ok', value: [1, 2, 3].map((epoch) => ({ epoch, loss: epoch === 2 ? NaN : 1, accuracy: 0.5 })) },
      }),
    );
    const loss = /<polyline[^>]*data-series="train"[^>]*data-count="(\d+)"/.exec(page);
    expect(loss?.[1]).toBe('2');
    expect(page).not.toContain('NaN,');
  });
});

describe('run-folder readers', () => {
  it('reads history.json, else log.csv in Keras CSVLogger columns, steps.jsonl and eval.json', async () => {
    const a = join(dir, 'a');
    await mkdir(a);
    await writeFile(join(a, 'history.json'), JSON.stringify([{ epoch: 1, loss: 2, accuracy: 0.1, valLoss: null, lr: 0.1, imagesPerSecond: 5 }]));
    await writeFile(
      join(a, 'steps.jsonl'),
      '{"step":1,"epoch":1,"loss":2.5,"accuracy":0,"lr":0.1}\nnot json\n{"step":2,"epoch":1,"loss":null,"accuracy":0.5,"lr":0.1}\n{"step":3,"ep',
    );
    await writeFile(join(a, 'eval.json'), JSON.stringify(evalFile()));
    const r = await readRunFolder(a);
    expect(r.epochs).toEqual({ state: 'ok', value: [{ epoch: 1, loss: 2, accuracy: 0.1, valLoss: NaN, lr: 0.1 }], source: 'history.json' });
    expect(r.steps.state === 'ok' && r.steps.value.map((s) => [s.step, s.loss])).toEqual([
      [1, 2.5],
      [2, NaN],
    ]);
    expect(r.evaluation.state === 'ok' && r.evaluation.value.confusionMatrix).toEqual(evalFile().confusionMatrix);

    const b = join(dir, 'b');
    await mkdir(b);
    // What tf.keras.callbacks.CSVLogger writes (epoch from 0, then the sorted metric names).
    await writeFile(join(b, 'log.csv'), 'epoch,accuracy,loss,lr,val_accuracy,val_loss\n0,0.5,1.25,0.1,0.55,1.2\n1,0.75,0.5,0.05,0.7,0.8\n');
    const rb = await readRunFolder(b);
    expect(rb.epochs).toEqual({
      state: 'ok',
      source: 'log.csv',
      value: [
        { epoch: 1, loss: 1.25, accuracy: 0.5, valLoss: 1.2, valAccuracy: 0.55, lr: 0.1 },
        { epoch: 2, loss: 0.5, accuracy: 0.75, valLoss: 0.8, valAccuracy: 0.7, lr: 0.05 },
      ],
    });
    expect(rb.steps.state).toBe('missing');
    expect(rb.evaluation.state).toBe('missing');
  });

  it('a run folder that is a file or missing is E_IO naming it', async () => {
    await writeFile(join(dir, 'file'), 'x');
    await expectCode(() => readRunFolder(join(dir, 'file')), 'E_IO', 'is not a folder');
    await expectCode(() => readRunFolder(join(dir, 'absent')), 'E_IO', 'absent');
  });

  it('special files and deep nesting in place of each piece: an error piece, promptly', async () => {
    const rng = new Rng(5);
    let k = 0;
    for (const file of ['history.json', 'steps.jsonl', 'eval.json']) {
      for (const kind of SPECIAL_KINDS) {
        const d = join(dir, `special-${k++}`);
        await mkdir(d);
        makeSpecialFile(kind, join(d, file));
        const r = await within(5000, () => readRunFolder(d))();
        const piece = file === 'history.json' ? r.epochs : file === 'steps.jsonl' ? r.steps : r.evaluation;
        expect(piece.state, `${file} as ${kind}`).toBe('error');
      }
    }
    for (const file of ['history.json', 'eval.json']) {
      const d = join(dir, `nested-${k++}`);
      await mkdir(d);
      await writeFile(join(d, file), nestJson('1', 100_000, rng));
      const r = await readRunFolder(d);
      const piece = file === 'history.json' ? r.epochs : r.evaluation;
      expect(piece.state === 'error' && piece.reason).toMatch(/nests arrays and objects 100000 levels deep/);
    }
  });

  it('mutated eval.json values: E_FORMAT or a valid file, and the page still renders escaped', () => {
    const rng = new Rng(21);
    let accepted = 0;
    for (let i = 0; i < 400; i++) {
      const { value, path } = mutateJson(evalFile(HOSTILE_NAMES), rng);
      let file: EvalFile;
      try {
        file = checkEvalFile(value, 'eval.json');
      } catch (err) {
        if (!(err instanceof ResNetError) || err.code !== 'E_FORMAT') throw new Error(`${path}: ${describeUnexpected(err)}`, { cause: err });
        continue;
      }
      accepted++;
      const page = reportHtml(run(file));
      expect(page, path).not.toMatch(/<script|<img src=x/i);
    }
    expect(accepted).toBeGreaterThan(0);
  });

  it('mutated bytes of history.json, log.csv and steps.jsonl: parsed or E_FORMAT, never another error', () => {
    const rng = new Rng(8);
    const history = new TextEncoder().encode(JSON.stringify([{ epoch: 1, loss: 2, accuracy: 0.1, valLoss: 2.1, valAccuracy: 0.2, lr: 0.1 }]));
    const csv = new TextEncoder().encode('epoch,accuracy,loss,lr,val_accuracy,val_loss\n0,0.5,1.25,0.1,0.55,1.2\n');
    const steps = new TextEncoder().encode(
      '{"step":1,"epoch":1,"loss":2.5,"accuracy":0,"lr":0.1}\n{"step":2,"epoch":1,"loss":2,"accuracy":0.5,"lr":0.1}\n',
    );
    for (let i = 0; i < 300; i++) {
      for (const [name, bytes, parse] of [
        ['history', history, (t: string) => parseHistory(t, 'h')],
        ['csv', csv, (t: string) => parseKerasCsv(t, 'c')],
        ['steps', steps, (t: string) => parseSteps(t)],
      ] as const) {
        const { data, how } = mutateBytes(bytes, rng);
        try {
          const points = parse(new TextDecoder().decode(data));
          expect(Array.isArray(points)).toBe(true);
        } catch (err) {
          if (!(err instanceof ResNetError) || err.code !== 'E_FORMAT') throw new Error(`${name} ${how}: ${describeUnexpected(err)}`, { cause: err });
        }
      }
    }
  });
});

describe('steps.jsonl', () => {
  const ctx = (step: number) => ({ step }) as unknown as TrainContext;
  const batch = (globalStep: number, epoch: number) => ({
    epoch,
    step: 1,
    globalStep,
    loss: 1 / globalStep,
    accuracy: 0.5,
    gradNorm: 1,
    lr: 0.1,
    size: 4,
    skipped: false,
    lossScale: 1,
  });

  it('is written at each epoch end, and a resumed run drops the lines past its checkpoint', async () => {
    const path = join(dir, 'steps.jsonl');
    const log = stepLog(path);
    await log.onTrainBegin!(ctx(0));
    for (let s = 1; s <= 4; s++) log.onBatchEnd!(batch(s, s <= 2 ? 1 : 2), ctx(s));
    await log.onEpochEnd!({} as never, ctx(4));
    expect(parseSteps(await readFile(path, 'utf8')).map((s) => s.step)).toEqual([1, 2, 3, 4]);
    // Resumed from the checkpoint after step 2: steps 3 and 4 (of the interrupted epoch) go.
    const resumed = stepLog(path);
    await resumed.onTrainBegin!(ctx(2));
    expect(parseSteps(await readFile(path, 'utf8')).map((s) => s.step)).toEqual([1, 2]);
    resumed.onBatchEnd!(batch(3, 2), ctx(3));
    await resumed.onEpochEnd!({} as never, ctx(3));
    expect(parseSteps(await readFile(path, 'utf8')).map((s) => s.step)).toEqual([1, 2, 3]);
    expect(stepLinesUpTo('{"step":1}\n{"step":9}\n{"st', 5)).toBe('{"step":1}\n');
  });
});

describe('chart helpers', () => {
  it('round ticks and labels', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1, 2, 6)).toEqual([1, 1.2, 1.4, 1.6, 1.8, 2]);
    expect(niceTicks(3, 97, 5)).toEqual([20, 40, 60, 80]);
    expect([0.30000000000000004, 0.00012, 250000, 0].map(tickLabel)).toEqual(['0.3', '1.2e−4', '2.5e5', '0']);
  });

  it('downsample averages equal runs of steps beyond the limit', () => {
    const points = Array.from({ length: 10 }, (_, i) => [i + 1, i] as const);
    expect(downsample(points, 20)).toEqual({ points: points.map(([x, y]) => [x, y]), per: 1 });
    expect(downsample(points, 4)).toEqual({
      per: 3,
      points: [
        [3, 1],
        [6, 4],
        [9, 7],
        [10, 9],
      ],
    });
  });
});
