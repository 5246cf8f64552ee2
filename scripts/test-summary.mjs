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
const totals = (r) => ({
  passed: r.numPassedTests,
  failed: r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0),
  skipped: r.numPendingTests + r.numTodoTests,
});
const all = totals(report);
// The sanitizer run (npm run test:asan, CI runs it after the normal suite) adds its totals.
// When CI asked for it (RESNET_EXPECT_ASAN=1) and it left no report, that counts as a failure.
const asanPath = join(dir, 'asan', 'vitest.json');
if (existsSync(asanPath)) {
  const asan = totals(JSON.parse(readFileSync(asanPath, 'utf8')));
  console.log(`sanitizer run (ASan + UBSan): ${asan.passed} passed, ${asan.failed} failed`);
  all.passed += asan.passed;
  all.failed += asan.failed;
  all.skipped += asan.skipped;
} else if (process.env.RESNET_EXPECT_ASAN === '1') {
  console.error(`no sanitizer test report at ${asanPath}: the ASan run did not finish`);
  all.failed += 1;
}
// .ci/run's lint and format checks (RESNET_CHECKS_FAILED: how many failed) count as failures too.
const checksFailed = Number(process.env.RESNET_CHECKS_FAILED ?? 0) || 0;
if (checksFailed > 0) {
  console.log(`lint / format checks: ${checksFailed} failed (see their output above)`);
  all.failed += checksFailed;
}
// CI reads the last line, exactly `N passed, N failed`; skipped tests (each prints its reason) come before it.
if (all.skipped) console.log(`${all.skipped} skipped (reasons printed by the tests)`);
console.log(`${all.passed} passed, ${all.failed} failed`);
