// Prints the plain closing line CI reads: "N passed, N failed" (", N skipped" when any), summed
// over every results file given (the whole suite on the machine's Node, the unit suite on Node 24).
import { readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
for (const file of process.argv.slice(2)) {
  let results;
  try {
    results = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    console.error(`no test results at ${file}: that test run did not finish`);
    failed += 1;
    continue;
  }
  passed += results.numPassedTests ?? 0;
  let f = results.numFailedTests ?? 0;
  // A file that failed to load, or a failed global setup, fails no single test: count it once.
  if (f === 0 && (results.success === false || (results.numFailedTestSuites ?? 0) > 0)) f = 1;
  failed += f;
  skipped += (results.numPendingTests ?? 0) + (results.numTodoTests ?? 0);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
