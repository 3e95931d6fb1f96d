// Prints the CI summary line, "N passed, N failed", from vitest's JSON reports (see
// test/support/json-reporter.ts) and vitest's exit statuses, summed over every run (one per
// Node.js version); exits 1 when anything failed.
//   node .ci/summary.mjs REPORT STATUS [REPORT STATUS ...]
// Failures: failed tests, files that failed outside their tests (an import error, a failing hook,
// a missing peer in strict mode), and errors thrown or rejected outside any test. A run whose
// exit status is non-zero with none of these still fails, as one failure; so does a run with no
// report.
import { existsSync, readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 0) args.push('test-results.json', '0');
let passed = 0;
let failed = 0;
for (let i = 0; i < args.length; i += 2) {
  const file = args[i];
  const status = Number(args[i + 1] ?? '0');
  if (!existsSync(file)) {
    console.error(`no JSON report (${file}): vitest did not finish (exit status ${status})`);
    failed += 1;
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const brokenFiles = r.testResults.filter((f) => f.status === 'failed' && f.assertionResults.every((a) => a.status !== 'failed'));
  const unhandled = r.numUnhandledErrors ?? 0;
  let runFailed = r.numFailedTests + brokenFiles.length + unhandled;
  for (const f of brokenFiles) console.error(`${file}: failed outside its tests: ${f.name}: ${f.message}`);
  for (const e of r.unhandledErrors ?? []) console.error(`${file}: unhandled error: ${e.name}: ${e.message}`);
  if (status !== 0 && runFailed === 0) {
    console.error(`${file}: vitest exited with status ${status} although its report counts no failure`);
    runFailed = 1;
  }
  passed += r.numPassedTests;
  failed += runFailed;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
