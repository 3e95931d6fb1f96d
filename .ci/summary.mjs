// Prints the CI summary line, "N passed, N failed", from vitest's JSON report (see
// test/support/json-reporter.ts) and vitest's exit status; exits 1 when anything failed.
//   node .ci/summary.mjs test-results.json STATUS
// Failures: failed tests, files that failed outside their tests (an import error, a failing hook,
// a missing peer in strict mode), and errors thrown or rejected outside any test. A non-zero exit
// status with none of these still fails, as one failure.
import { existsSync, readFileSync } from 'node:fs';

const [file = 'test-results.json', statusArg = '0'] = process.argv.slice(2);
const status = Number(statusArg);
if (!existsSync(file)) {
  console.log('0 passed, 1 failed');
  console.error(`no JSON report (${file}): vitest did not finish (exit status ${status})`);
  process.exit(1);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const brokenFiles = r.testResults.filter((f) => f.status === 'failed' && f.assertionResults.every((a) => a.status !== 'failed'));
const unhandled = r.numUnhandledErrors ?? 0;
let failed = r.numFailedTests + brokenFiles.length + unhandled;
for (const f of brokenFiles) console.error(`failed outside its tests: ${f.name}: ${f.message}`);
for (const e of r.unhandledErrors ?? []) console.error(`unhandled error: ${e.name}: ${e.message}`);
if (status !== 0 && failed === 0) {
  console.error(`vitest exited with status ${status} although its report counts no failure`);
  failed = 1;
}
console.log(`${r.numPassedTests} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
