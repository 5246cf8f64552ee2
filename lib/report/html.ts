// The report page: one self-contained HTML file (inline CSS, inline SVG, thumbnails as data:
// URIs, no script, and a Content-Security-Policy that forbids any request) built from what
// readRunFolder found. Each section says plainly when its source is missing or unreadable.
import { basename, resolve } from 'node:path';

import type { EvalFile } from './eval_file.js';
import { html, type Markup, raw } from './markup.js';
import type { EpochPoint, Piece, RunFolder, StepPoint } from './run_dir.js';
import { lineChart, type Series } from './svg_chart.js';

/** Per-step series longer than this are drawn as the means of equal runs of steps. */
export const MAX_CHART_POINTS = 4000;
/** The confusion matrix shows its counts in the cells up to this many classes (beyond, in tooltips). */
const MAX_LABELLED_MATRIX = 30;

const COLORS = { train: '#1f77b4', val: '#d62728', top5: '#9467bd', lr: '#2ca02c' };

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header .facts { color: #c9d1e0; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; padding: 14px 18px; margin: 18px 0; }
h2 { font-size: 17px; margin: 0 0 10px; }
.charts { display: flex; flex-wrap: wrap; gap: 14px; }
.chart { background: #fff; border: 1px solid #eceef2; border-radius: 6px; }
.chart .grid { stroke: #eceef2; } .chart .frame { stroke: #b8bfcc; }
.chart .tick { font-size: 10px; fill: #5b6475; } .chart .legend { font-size: 11px; fill: #1d2330; }
.chart .chart-title { font-size: 13px; font-weight: 600; fill: #1d2330; } .chart .note { font-size: 10px; fill: #5b6475; }
.chart .axis-label { font-size: 11px; fill: #5b6475; } .chart .empty { font-size: 12px; fill: #8a93a3; }
.missing { color: #8a5a00; background: #fff7e0; border: 1px solid #f0d890; border-radius: 6px; padding: 8px 12px; }
.error { color: #8a1020; background: #fdeaea; border: 1px solid #f0b0b8; border-radius: 6px; padding: 8px 12px; }
code { background: #eef0f4; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; }
table.metrics td, table.metrics th { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eceef2; }
table.metrics th:first-child, table.metrics td:first-child { text-align: left; }
table.metrics tr.avg td { font-weight: 600; background: #f6f7f9; }
.bar { display: inline-block; height: 8px; background: #1f77b4; border-radius: 2px; vertical-align: middle; margin-right: 6px; }
.matrix-wrap { overflow: auto; max-width: 100%; }
table.matrix td, table.matrix th { border: 1px solid #fff; padding: 0; text-align: center; font-size: 11px; min-width: 26px; height: 24px; }
table.matrix th { background: #f6f7f9; font-weight: 500; padding: 0 6px; max-width: 160px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
table.matrix th.corner { font-size: 10px; color: #5b6475; }
table.matrix.compact td, table.matrix.compact th[scope=col] { min-width: 9px; width: 9px; max-width: 9px; height: 9px; padding: 0; }
table.matrix.compact th { font-size: 9px; line-height: 9px; height: 9px; }
table.matrix.compact th[scope=col] { overflow: visible; text-align: left; }
.caption { color: #5b6475; font-size: 12px; margin: 6px 0 0; }
.thumbs { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; width: 128px; text-align: center; font-size: 11px; }
figure img { width: 96px; height: 96px; object-fit: contain; image-rendering: pixelated; background: #000; border-radius: 4px; }
figcaption .wrong { color: #b01020; font-weight: 600; } figcaption .right { color: #1a7a30; }
.name { overflow-wrap: anywhere; }
`;

/** Means of equal runs of consecutive points, when there are more than `max`. */
export function downsample(points: readonly (readonly [number, number])[], max = MAX_CHART_POINTS): { points: [number, number][]; per: number } {
  if (points.length <= max) return { points: points.map(([x, y]) => [x, y]), per: 1 };
  const per = Math.ceil(points.length / max);
  const out: [number, number][] = [];
  for (let i = 0; i < points.length; i += per) {
    const run = points.slice(i, i + per).filter(([, y]) => Number.isFinite(y));
    if (run.length === 0) continue;
    out.push([run[run.length - 1]![0], run.reduce((s, [, y]) => s + y, 0) / run.length]);
  }
  return { points: out, per };
}

function notice(p: Piece<unknown>, file: string, what: string, how: Markup | string): Markup {
  if (p.state === 'error') return html`<p class="error">${file} could not be read: ${p.reason}</p>`;
  return html`<p class="missing">No ${what} yet: this run folder has no <code>${file}</code>. ${how}</p>`;
}

const pct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(2)}%` : '–');
const num4 = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v.toFixed(4) : '–');

function epochCharts(epochs: EpochPoint[]): Markup {
  const series = (name: string, color: string, key: keyof EpochPoint, dashed = false): Series[] => {
    const points = epochs.filter((e) => e[key] !== undefined).map((e) => [e.epoch, e[key]!] as const);
    return points.length > 0 ? [{ name, color, points, dashed }] : [];
  };
  return html`<div class="charts">
    ${lineChart({ title: 'Loss per epoch', xLabel: 'epoch', integerX: true, series: [...series('train', COLORS.train, 'loss'), ...series('validation', COLORS.val, 'valLoss')] })}
    ${lineChart({
      title: 'Accuracy per epoch',
      xLabel: 'epoch',
      integerX: true,
      series: [
        ...series('train', COLORS.train, 'accuracy'),
        ...series('validation', COLORS.val, 'valAccuracy'),
        ...series('val top-5', COLORS.top5, 'valTop5', true),
      ],
    })}
    ${lineChart({ title: 'Learning rate per epoch (last step)', xLabel: 'epoch', integerX: true, series: series('lr', COLORS.lr, 'lr') })}
  </div>`;
}

function stepCharts(steps: StepPoint[], epochs: EpochPoint[] | undefined): Markup {
  // Validation is measured once per epoch: drawn at the epoch's last step.
  const lastStep = new Map<number, number>();
  for (const s of steps) lastStep.set(s.epoch, Math.max(lastStep.get(s.epoch) ?? -Infinity, s.step));
  const atEpochEnd = (key: 'valLoss' | 'valAccuracy'): Series[] => {
    const points = (epochs ?? []).filter((e) => e[key] !== undefined && lastStep.has(e.epoch)).map((e) => [lastStep.get(e.epoch)!, e[key]!] as const);
    return points.length > 0 ? [{ name: 'validation', color: COLORS.val, points }] : [];
  };
  const train = (key: 'loss' | 'accuracy' | 'lr') => downsample(steps.map((s) => [s.step, s[key]] as const));
  const [loss, accuracy, lr] = [train('loss'), train('accuracy'), train('lr')];
  const note = loss.per > 1 ? `each point: the mean of ${loss.per} steps` : undefined;
  const opts = (title: string) => ({ title, xLabel: 'step', ...(note ? { note } : {}) });
  return html`<div class="charts">
    ${lineChart({ ...opts('Loss per step'), series: [{ name: 'train', color: COLORS.train, points: loss.points }, ...atEpochEnd('valLoss')] })}
    ${lineChart({ ...opts('Accuracy per step'), series: [{ name: 'train', color: COLORS.train, points: accuracy.points }, ...atEpochEnd('valAccuracy')] })}
    ${lineChart({ ...opts('Learning rate per step'), series: [{ name: 'lr', color: COLORS.lr, points: lr.points }] })}
  </div>`;
}

/** Cell colour: blue on the diagonal (right), red off it (wrong), as strong as the share of the row. */
function cellStyle(count: number, rowTotal: number, diagonal: boolean): string {
  const share = rowTotal > 0 ? count / rowTotal : 0;
  const alpha = count === 0 ? 0 : 0.12 + 0.88 * share;
  const rgb = diagonal ? '31,119,180' : '214,39,40';
  return `background:rgba(${rgb},${alpha.toFixed(3)});color:${alpha > 0.55 ? '#fff' : '#1d2330'}`;
}

function confusionSection(e: EvalFile): Markup {
  const n = e.classNames.length;
  const labelled = n <= MAX_LABELLED_MATRIX;
  const head = (i: number) => (e.classNames[i] === String(i) ? String(i) : `${i} ${e.classNames[i]!}`);
  const rows = e.confusionMatrix.map((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    const cells = row.map((v, p) => {
      const tip = `true ${head(t)} → predicted ${head(p)}: ${v} of ${total}`;
      return html`<td data-count="${v}" title="${tip}" style="${raw(cellStyle(v, total, t === p))}">${labelled && v > 0 ? v : ''}</td>`;
    });
    return html`<tr>
      <th scope="row" title="${head(t)}">${head(t)}</th>
      ${cells}
    </tr>`;
  });
  // Columns carry the class number only (the rows name it), so long names do not widen the table.
  const columns = e.classNames.map((_, p) => html`<th scope="col" title="${head(p)}">${labelled || p % 10 === 0 ? p : ''}</th>`);
  return html`<div class="matrix-wrap">
      <table class="${labelled ? 'matrix' : 'matrix compact'}" id="confusion-matrix">
        <tr>
          <th class="corner">true ↓ / predicted →</th>
          ${columns}
        </tr>
        ${rows}
      </table>
    </div>
    <p class="caption">
      Rows: the true class; columns: the predicted class. Blue cells are right, red ones wrong; the colour's strength is the share of the row (the
      class's examples).${labelled ? '' : ' Hover over a cell for its count.'}
    </p>`;
}

function classTable(e: EvalFile): Markup {
  const row = (name: Markup | string, m: { precision: number; recall: number; f1: number; support: number }, cls = '') =>
    html`<tr class="${cls}">
      <td class="name">${name}</td>
      <td>${m.precision.toFixed(4)}</td>
      <td>${m.recall.toFixed(4)}</td>
      <td><span class="bar" style="width:${raw((m.f1 * 60).toFixed(1))}px"></span>${m.f1.toFixed(4)}</td>
      <td>${m.support}</td>
    </tr>`;
  return html`<table class="metrics" id="class-metrics">
    <tr>
      <th>class</th>
      <th>precision</th>
      <th>recall</th>
      <th>F1</th>
      <th>support</th>
    </tr>
    ${e.perClass.map((m, c) => row(e.classNames[c]!, m))} ${row('macro avg', e.macroAvg, 'avg')} ${row('weighted avg', e.weightedAvg, 'avg')}
  </table>`;
}

function mistakesSection(e: EvalFile): Markup {
  if (e.misclassified.length === 0) {
    return html`<p class="missing">
      ${e.count > 0 && e.accuracy === 1 ? 'Every example was classified correctly.' : 'eval kept no misclassified examples (see eval --misclassified).'}
    </p>`;
  }
  const figures = e.misclassified.map(
    (m) =>
      html`<figure>
        ${m.thumbnail ? html`<img src="data:image/png;base64,${m.thumbnail}" alt="example ${m.index}" />` : html`<div class="missing">no picture</div>`}
        <figcaption>
          #${m.index}<br /><span class="right name">true: ${e.classNames[m.label]!}</span><br /><span class="wrong name"
            >predicted: ${e.classNames[m.predicted]!}</span
          ><br />p = ${Number.isFinite(m.probability) ? m.probability.toFixed(3) : 'NaN'}
        </figcaption>
      </figure>`,
  );
  return html`<div class="thumbs" id="misclassified">${figures}</div>
    <p class="caption">
      The examples the model got wrong with the highest probability for its wrong answer, most confident first (#: the example's index in the
      evaluated set).
    </p>`;
}

export interface ReportOptions {
  /** The page title (default: the run folder's name). */
  title?: string;
}

/** The whole page. */
export function reportHtml(run: RunFolder, options: ReportOptions = {}): string {
  const name = options.title ?? basename(resolve(run.dir));
  const epochs = run.epochs.state === 'ok' ? run.epochs.value : undefined;
  const steps = run.steps.state === 'ok' ? run.steps.value : undefined;
  const ev = run.evaluation.state === 'ok' ? run.evaluation.value : undefined;
  const last = epochs?.[epochs.length - 1];
  const best = epochs?.reduce<EpochPoint | undefined>(
    (b, e) => (e.valAccuracy !== undefined && (b === undefined || e.valAccuracy > b.valAccuracy!) ? e : b),
    undefined,
  );
  const facts = [
    epochs ? `${epochs.length} epoch${epochs.length === 1 ? '' : 's'}` : undefined,
    steps ? `${steps.length} steps` : undefined,
    last?.valAccuracy !== undefined ? `last validation accuracy ${pct(last.valAccuracy)}` : undefined,
    best ? `best ${pct(best.valAccuracy!)} (epoch ${best.epoch})` : undefined,
    ev ? `eval on ${ev.dataset} ${ev.split}: ${ev.count} images, accuracy ${pct(ev.accuracy)}` : undefined,
  ].filter((f): f is string => f !== undefined);

  const epochBody = epochs
    ? html`${epochCharts(epochs)}${run.epochs.source === 'log.csv' ? html`<p class="caption">From log.csv (the run has not written history.json).</p>` : ''}`
    : notice(run.epochs, 'history.json', 'per-epoch history', 'train writes it when the run ends.');
  const stepBody = steps
    ? steps.length > 0
      ? stepCharts(steps, epochs)
      : html`<p class="missing">steps.jsonl holds no steps yet.</p>`
    : notice(run.steps, 'steps.jsonl', 'per-step log', 'train writes it after every epoch.');
  const evalHow = html`Run <code>resnet-native eval --checkpoint ${run.dir}/best.safetensors …</code> (with the run's dataset options) to add the
    confusion matrix, the per-class report and the misclassified images.`;
  const evalSummary = ev
    ? html`<p>
        ${ev.dataset} ${ev.split}, ${ev.count} images, checkpoint <code>${ev.checkpoint}</code>: loss ${num4(ev.loss)}, accuracy
        ${num4(ev.accuracy)}${ev.top5 !== undefined ? `, top-5 ${num4(ev.top5)}` : ''}.
      </p>`
    : notice(run.evaluation, 'eval.json', 'evaluation', evalHow);

  return `<!DOCTYPE html>
${html`<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${name} · resnet-native report</title>
    <style>
      ${raw(CSS)}
    </style>
  </head>
  <body>
    <header>
      <h1>${name}</h1>
      <div class="facts">${facts.join(' · ') || 'nothing recorded yet'}</div>
    </header>
    <main>
      <section id="epochs">
        <h2>Training curves per epoch</h2>
        ${epochBody}
      </section>
      <section id="steps">
        <h2>Training curves per step</h2>
        ${stepBody}
      </section>
      <section id="evaluation">
        <h2>Evaluation</h2>
        ${evalSummary}
      </section>
      ${
        ev
          ? html`<section id="confusion">
                <h2>Confusion matrix</h2>
                ${confusionSection(ev)}
              </section>
              <section id="per-class">
                <h2>Precision, recall and F1 per class</h2>
                ${classTable(ev)}
              </section>
              <section id="mistakes">
                <h2>Most confidently misclassified</h2>
                ${mistakesSection(ev)}
              </section>`
          : ''
      }
    </main>
  </body>
</html>`}
`;
}
