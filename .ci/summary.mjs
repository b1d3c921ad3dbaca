// Prints the plain closing line CI reads: "N passed, N failed" (", N skipped" when any).
import { readFileSync } from 'node:fs';

const file = process.argv[2];
let results;
try {
  results = JSON.parse(readFileSync(file, 'utf8'));
} catch {
  console.log('0 passed, 1 failed');
  console.error(`no test results at ${file}: the test run did not finish`);
  process.exit(1);
}
const passed = results.numPassedTests ?? 0;
let failed = results.numFailedTests ?? 0;
// A file that failed to load, or a failed global setup, fails no single test: count it once.
if (failed === 0 && (results.success === false || (results.numFailedTestSuites ?? 0) > 0)) failed = 1;
const skipped = (results.numPendingTests ?? 0) + (results.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || results.success === false ? 1 : 0);
