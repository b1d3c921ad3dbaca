/**
 * tsx bench/render.ts bench/results/<run>.json [<name>]
 *
 * Writes the Markdown table and the latency plot of a kept run again (after a change to the
 * report), beside it as <name>.{json,md,svg,png} (default: the run's own name).
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { writeResults } from './report.js';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: tsx bench/render.ts bench/results/<run>.json [<name>]\n');
  process.exit(2);
}
const run = JSON.parse(await readFile(file, 'utf8')) as Parameters<typeof writeResults>[1];
await writeResults(
  dirname(file),
  run,
  (s) => process.stderr.write(`${s}\n`),
  process.argv[3] ?? basename(file, '.json'),
);
