// Prints the totals of the last `npm test` as one plain line, "N passed, N failed",
// and the worst error/tolerance ratio per op that the cross-check tests recorded.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(process.cwd(), 'build', 'test-report');
const reportPath = join(dir, 'vitest.json');
if (!existsSync(reportPath)) {
  console.log('0 passed, 1 failed');
  console.error(`no test report at ${reportPath}: the test run did not finish`);
  process.exit(1);
}
const report = JSON.parse(readFileSync(reportPath, 'utf8'));
const worst = {};
for (const file of readdirSync(dir)) {
  if (!file.endsWith('.json') || file === 'vitest.json') continue;
  for (const [op, ratio] of Object.entries(JSON.parse(readFileSync(join(dir, file), 'utf8')))) {
    worst[op] = Math.max(worst[op] ?? 0, ratio);
  }
}
if (Object.keys(worst).length > 0) {
  console.log('worst error/tolerance ratio per op (1.0 = at the tolerance):');
  for (const op of Object.keys(worst).sort()) console.log(`  ${op.padEnd(36)} ${worst[op].toExponential(2)}`);
}
const failed = report.numFailedTests + (report.numRuntimeErrorTestSuites ?? 0);
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`${report.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
