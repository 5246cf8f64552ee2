// `resnet-native report` end to end, as users run it (dist/cli.js in a child process): a tiny
// real training run on a generated image folder (one class is named <script>), eval, report,
// then the page in Debian's headless Chromium (playwright-core): it loads with no console or
// page errors and no request, its polylines have one point per step / epoch of the run, the
// confusion matrix's cells add up to the evaluated count, the thumbnails decode, and the
// hostile class name is text. A screenshot goes to /tmp/report.png (look at it).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from '../support/cli.js';
import { ensureDist } from '../support/dist.js';

const CHROMIUM = process.env.RESNET_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium)
  console.log(`report.test.ts: browser checks skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set RESNET_CHROMIUM)`);

const rn = (...args: string[]) => runCli(args);

// Class folder names, sorted by code point as imageFolder sorts them: the label order.
const CLASSES = ['<script>', 'blue & "green"', 'red'];
const SIDE = 8;
const TRAIN_PER_CLASS = 20;
const TEST_PER_CLASS = 10;
const BATCH = 10;
const EPOCHS = 3;

let dir: string;

/** What the in-page code uses of the DOM (tsconfig.test.json has no DOM library). */
interface PageElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
  closest(selector: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
}
interface PageDocument {
  title: string;
  querySelectorAll(selector: string): Iterable<PageElement> & { length: number };
}

/** An 8×8 PNG mostly of the class's colour channel, with seeded noise; test images are noisier (mistakes to show). */
async function writeImages(root: string, split: string, perClass: number, noise: number, seed: number): Promise<void> {
  let s = seed;
  const rand = () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  for (const [label, name] of CLASSES.entries()) {
    const folder = join(root, split, name);
    await mkdir(folder, { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const px = Buffer.alloc(SIDE * SIDE * 3);
      for (let p = 0; p < SIDE * SIDE; p++) {
        for (let c = 0; c < 3; c++) px[p * 3 + c] = Math.round(255 * Math.min(1, (c === 2 - label ? 0.7 : 0.15) + noise * rand()));
      }
      await sharp(px, { raw: { width: SIDE, height: SIDE, channels: 3 } })
        .png()
        .toFile(join(folder, `${i}.png`));
    }
  }
}

beforeAll(async () => {
  await ensureDist();
  dir = await mkdtemp(join(tmpdir(), 'rn-report-'));
  await writeImages(join(dir, 'data'), 'train', TRAIN_PER_CLASS, 0.3, 1);
  await writeImages(join(dir, 'data'), 'test', TEST_PER_CLASS, 0.9, 2);
}, 300_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resnet-native report', () => {
  it('refuses a path that is not a run folder, and says what is missing', async () => {
    const missing = await rn('report', join(dir, 'nope'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^resnet-native: error: report: cannot read .*nope: not found\n$/);
    const empty = join(dir, 'empty');
    await mkdir(empty);
    const none = await rn('report', empty);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/holds none of history\.json, log\.csv, steps\.jsonl or eval\.json/);
    expect((await rn('report')).stderr).toMatch(/report needs the run folder/);
    const help = await rn('report', '--help');
    expect(help.stdout).toMatch(/^Usage: resnet-native report <run folder> \[options\]/);
    expect((await rn('--help')).stdout).toMatch(/^ {2}report {4}/m);
  });

  it('a run folder with history.json only: the page has the epoch charts and says eval is missing', async () => {
    const run = join(dir, 'partial');
    await mkdir(run);
    const history = [1, 2, 3].map((epoch) => ({
      epoch,
      loss: 2 / epoch,
      accuracy: 0.3 * epoch,
      valLoss: 2.1 / epoch,
      valAccuracy: 0.25 * epoch,
      lr: 0.1 / epoch,
    }));
    await writeFile(join(run, 'history.json'), JSON.stringify(history));
    const r = await rn('report', run);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/note: no eval\.json in /);
    const page = await readFile(join(run, 'report.html'), 'utf8');
    expect(page).toContain('No evaluation yet');
    expect(page).toContain('No per-step log yet');
    expect(page).not.toContain('id="confusion-matrix"');
    expect(page.match(/<polyline\s/g)).toHaveLength(5); // loss ×2, accuracy ×2, lr
  });

  it.skipIf(!hasChromium)(
    'train → eval → report: the page renders in headless Chromium with the run’s curves, matrix and thumbnails',
    async () => {
      const run = join(dir, 'run');
      const data = join(dir, 'data');
      const common = ['--dataset', 'folder', '--data', data, '--image-size', String(SIDE)];
      const t = await rn(
        'train',
        ...common,
        '--model',
        'resnet8',
        '--epochs',
        String(EPOCHS),
        '--batch-size',
        String(BATCH),
        '--lr',
        '0.05',
        '--out',
        run,
        '--progress',
        'none',
        '--seed',
        '2',
      );
      expect(t.code, t.stderr).toBe(0);
      const e = await rn('eval', '--checkpoint', join(run, 'model.safetensors'), ...common);
      expect(e.code, e.stderr).toBe(0);
      const evalLine = /^folder test: (\d+) images, loss [\d.]+, accuracy ([\d.]+)/.exec(e.stdout);
      expect(evalLine, e.stdout).not.toBeNull();
      const count = Number(evalLine![1]);
      expect(count).toBe(CLASSES.length * TEST_PER_CLASS);
      const wrong = Math.round((1 - Number(evalLine![2])) * count);
      // The printed table names the classes (the terminal copy too: no control characters here).
      expect(e.stdout).toMatch(/^ +<script> +[\d.]+ +[\d.]+ +[\d.]+ +10$/m);
      expect(e.stdout).toMatch(/^ +macro avg /m);
      expect(e.stdout).toMatch(/^true \\ predicted +0 +1 +2$/m);
      expect(e.stdout).toContain(`wrote ${join(run, 'eval.json')}`);

      const out = join(dir, 'page.html');
      const r = await rn('report', run, '--out', out);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`wrote ${out}\n`);

      const { chromium } = await import('playwright-core');
      // Without the ASan runtime that npm run test:asan preloads into Node (and so into children).
      const env = Object.fromEntries(
        Object.entries(process.env).filter(([k, v]) => v !== undefined && k !== 'LD_PRELOAD' && !k.startsWith('ASAN_') && !k.startsWith('UBSAN_')),
      ) as Record<string, string>;
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        env,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
      try {
        const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
        const problems: string[] = [];
        page.on('console', (m) => {
          if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
        });
        page.on('pageerror', (err) => problems.push(`page error: ${String(err)}`));
        page.on('request', (req) => {
          const url = req.url();
          if (!url.startsWith('data:') && url !== `file://${out}`) problems.push(`request: ${url}`);
        });
        await page.goto(`file://${out}`, { waitUntil: 'load' });

        const facts = await page.evaluate(() => {
          // The test project compiles without the DOM library: the few DOM members used here.
          const document = (globalThis as unknown as { document: PageDocument }).document;
          const polylines = [...document.querySelectorAll('polyline')].map((p) => ({
            chart: p.closest('svg')!.querySelector('title')!.textContent,
            series: p.getAttribute('data-series'),
            points: p.getAttribute('points')!.trim().split(/\s+/).length,
          }));
          const cells = [...document.querySelectorAll('#confusion-matrix td')].map((td) => Number(td.getAttribute('data-count')));
          const images = [...document.querySelectorAll('#misclassified img')].map((img) => {
            const i = img as PageElement & { complete: boolean; naturalWidth: number; naturalHeight: number; src: string };
            return { complete: i.complete, width: i.naturalWidth, height: i.naturalHeight, src: i.src.slice(0, 22) };
          });
          const rowHeads = [...document.querySelectorAll('#confusion-matrix th[scope=row]')].map((th) => th.textContent);
          const classCells = [...document.querySelectorAll('#class-metrics td.name')].map((td) => td.textContent);
          return { polylines, cells, images, rowHeads, classCells, scripts: document.querySelectorAll('script').length, title: document.title };
        });
        await page.screenshot({ path: '/tmp/report.png', fullPage: true });
        expect(problems).toEqual([]);

        const steps = EPOCHS * Math.floor((CLASSES.length * TRAIN_PER_CLASS) / BATCH);
        const count_ = (chart: string, series: string) => facts.polylines.find((p) => p.chart === chart && p.series === series)?.points;
        expect(count_('Loss per step', 'train')).toBe(steps);
        expect(count_('Accuracy per step', 'train')).toBe(steps);
        expect(count_('Learning rate per step', 'lr')).toBe(steps);
        expect(count_('Loss per step', 'validation')).toBe(EPOCHS);
        for (const chart of ['Loss per epoch', 'Accuracy per epoch']) {
          expect(count_(chart, 'train')).toBe(EPOCHS);
          expect(count_(chart, 'validation')).toBe(EPOCHS);
        }
        expect(count_('Learning rate per epoch (last step)', 'lr')).toBe(EPOCHS);

        expect(facts.cells).toHaveLength(CLASSES.length ** 2);
        expect(facts.cells.reduce((a, b) => a + b, 0)).toBe(count);
        // The diagonal holds the right answers: count − wrong.
        expect(facts.cells.filter((_, i) => i % (CLASSES.length + 1) === 0).reduce((a, b) => a + b, 0)).toBe(count - wrong);

        expect(wrong).toBeGreaterThan(0);
        expect(facts.images).toHaveLength(Math.min(16, wrong));
        for (const img of facts.images) {
          expect(img.complete).toBe(true);
          expect(img.src).toBe('data:image/png;base64,');
          expect(img.width).toBeGreaterThanOrEqual(56); // 8×8 enlarged by 7
          expect(img.height).toBe(img.width);
        }

        // The class named <script> is text, everywhere it appears; the page has no script at all.
        expect(facts.scripts).toBe(0);
        expect(facts.rowHeads).toEqual(CLASSES.map((c, i) => `${i} ${c}`));
        expect(facts.classCells.slice(0, CLASSES.length)).toEqual(CLASSES);
        expect(facts.title).toBe('run · resnet-native report');
      } finally {
        await browser.close();
      }
    },
    300_000,
  );
});
