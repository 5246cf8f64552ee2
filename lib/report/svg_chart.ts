// Line charts as inline SVG: axes with round-number ticks, one <polyline> per series (its
// `points` hold every finite point, in order), dots on short series, and a legend. No script,
// no external font or stylesheet: the page's CSS styles the classes used here.
import { html, type Markup, raw } from './markup.js';

export interface Series {
  name: string;
  /** A CSS colour the code chose (never text from a file). */
  color: string;
  /** [x, y] pairs; points with a non-finite x or y are left out of the line. */
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  series: Series[];
  /** Words after the x label (how the points were made). */
  note?: string;
  /** Ticks on whole numbers only (epochs). */
  integerX?: boolean;
  width?: number;
  height?: number;
}

const MARGIN = { left: 56, right: 16, top: 44, bottom: 42 };
/** Series of at most this many points get a dot on each point. */
const MAX_DOTS = 60;

/** About `count` round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const rough = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks: number[] = [];
  // Each tick as a multiple of the step (not a running sum, which drifts: 1 + 5 × 0.2 < 2).
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

/** A tick label: short, without float noise (0.30000000000000004 → 0.3; 0.00012 → 1.2e-4). */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace(/\.0e/, 'e').replace('e-', 'e−').replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

const fmt = (v: number) => String(Math.round(v * 10) / 10);

/** The chart as an <svg> element (with class "chart" and a <title> for screen readers). */
export function lineChart(o: ChartOptions): Markup {
  const width = o.width ?? 380;
  const height = o.height ?? 260;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const finite = o.series.map((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const all = finite.flat();
  if (all.length === 0) {
    return html`<svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">
      <title>${o.title}</title>
      <text class="chart-title" x="${width / 2}" y="20" text-anchor="middle">${o.title}</text>
      <text class="empty" x="${width / 2}" y="${height / 2}" text-anchor="middle">no data</text>
    </svg>`;
  }
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of all) {
    x0 = Math.min(x0, x);
    x1 = Math.max(x1, x);
    y0 = Math.min(y0, y);
    y1 = Math.max(y1, y);
  }
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - Math.max(Math.abs(y0) * 0.1, 1e-3), y1 + Math.max(Math.abs(y1) * 0.1, 1e-3)];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 >= 0 && y0 - pad < 0 ? 0 : y0 - pad, y1 + pad];
  const sx = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * plotW;
  const sy = (y: number) => MARGIN.top + plotH - ((y - y0) / (y1 - y0)) * plotH;

  const xTicks = (o.integerX && x1 - x0 < 6 ? niceTicks(Math.ceil(x0), Math.floor(x1), Math.floor(x1) - Math.ceil(x0)) : niceTicks(x0, x1, 6)).filter(
    (t) => t >= x0 && t <= x1 && (!o.integerX || Number.isInteger(t)),
  );
  const yTicks = niceTicks(y0, y1, 5).filter((t) => t >= y0 && t <= y1);
  const grid = [
    ...yTicks.map(
      (t) =>
        html`<line class="grid" x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${fmt(sy(t))}" y2="${fmt(sy(t))}" />
          <text class="tick" x="${MARGIN.left - 6}" y="${fmt(sy(t) + 4)}" text-anchor="end">${tickLabel(t)}</text>`,
    ),
    ...xTicks.map(
      (t) =>
        html`<line class="grid" x1="${fmt(sx(t))}" x2="${fmt(sx(t))}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" />
          <text class="tick" x="${fmt(sx(t))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${tickLabel(t)}</text>`,
    ),
  ];
  const lines = o.series.map((s, i) => {
    const pts = finite[i]!;
    const points = pts.map(([x, y]) => `${fmt(sx(x))},${fmt(sy(y))}`).join(' ');
    const dots = pts.length <= MAX_DOTS ? pts.map(([x, y]) => html`<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="2.5" fill="${s.color}" />`) : [];
    return html`<polyline
        data-series="${s.name}"
        data-count="${pts.length}"
        fill="none"
        stroke="${s.color}"
        stroke-width="1.6"
        ${s.dashed ? raw(' stroke-dasharray="5 3"') : ''}
        points="${points}"
      />${dots}`;
  });
  // The legend sits between the title and the plot, so it never hides a line.
  const legend = o.series.map(
    (s, i) =>
      html`<g transform="translate(${MARGIN.left + i * 110},${MARGIN.top - 12})"
        ><rect width="14" height="3" y="-2" fill="${s.color}" /> <text class="legend" x="18" y="3">${s.name}</text></g
      >`,
  );
  return html`<svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img">
    <title>${o.title}</title>
    <text class="chart-title" x="${width / 2}" y="16" text-anchor="middle">${o.title}</text>
    ${grid}
    <rect class="frame" x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" />
    ${lines} ${legend}
    <text class="axis-label" x="${MARGIN.left + plotW / 2}" y="${height - 6}" text-anchor="middle">${o.xLabel}${o.note ? ` (${o.note})` : ''}</text>
  </svg>`;
}
