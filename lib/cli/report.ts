// `resnet-native report <run folder>`: one self-contained HTML page of a run — the training
// curves (history.json / log.csv, steps.jsonl), and from eval.json the confusion matrix,
// per-class precision / recall / F1 and the most confidently misclassified images.
import { join } from 'node:path';

import { parse, str, UsageError } from './args.js';
import { NAME, printHelp, say } from './output.js';

export const REPORT_HELP = `Usage: ${NAME} report <run folder> [options]

Writes one self-contained HTML page (no scripts, no external files: open it anywhere) with
the run's curves — loss, accuracy and learning rate per epoch (history.json) and per step
(steps.jsonl), train vs validation — and, once \`${NAME} eval\` has written eval.json into
the folder, the confusion matrix, per-class precision / recall / F1 and the most
confidently misclassified images. Missing pieces are named on the page.

  --out <file>           where the page goes (default <run folder>/report.html)
  --title <text>         the page's title (default: the run folder's name)
  -h, --help             show this help
`;

export async function run(args: string[]): Promise<void> {
  const { values: v, positionals } = parse('report', args, { out: { type: 'string' }, title: { type: 'string' } }, true);
  if (v.help) return printHelp(REPORT_HELP);
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0 ? `report needs the run folder (see ${NAME} report --help)` : `report takes one run folder, got ${positionals.length}`,
    );
  }
  const dir = positionals[0]!;
  const out = str(v, 'out') ?? join(dir, 'report.html');
  const title = str(v, 'title');
  const [{ readRunFolder }, { reportHtml }, { atomicWrite }] = await Promise.all([
    import('../report/run_dir.js'),
    import('../report/html.js'),
    import('../io/atomic_write.js'),
  ]);
  const runFolder = await readRunFolder(dir);
  if ([runFolder.epochs, runFolder.steps, runFolder.evaluation].every((p) => p.state === 'missing')) {
    throw new UsageError(`${dir} holds none of history.json, log.csv, steps.jsonl or eval.json: is it a run folder written by train?`);
  }
  const page = reportHtml(runFolder, title !== undefined ? { title } : {});
  await atomicWrite(out, 'report', async (fh) => {
    await fh.writeFile(page, 'utf8');
  });
  for (const [what, p] of [
    ['history', runFolder.epochs],
    ['steps', runFolder.steps],
    ['eval.json', runFolder.evaluation],
  ] as const) {
    if (p.state === 'error') process.stderr.write(`${NAME}: warning: ${p.reason}\n`);
    else if (p.state === 'missing') process.stderr.write(`${NAME}: note: no ${what} in ${dir}; the page says so\n`);
  }
  say(`wrote ${out}`);
}
