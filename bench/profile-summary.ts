/**
 * Self time per function and per file of a .cpuprofile (top 25 each). Functions of a bundle
 * with a source map next to it (`dist/bench/bridge-process.mjs.map`, minified) are named by
 * their source: function, file and line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SourceMapConsumer } from 'source-map-js';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}
const prof = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
};
const maps = new Map<string, SourceMapConsumer | undefined>();
function mapOf(url: string): SourceMapConsumer | undefined {
  if (!maps.has(url)) {
    const file = url.startsWith('file://') ? `${fileURLToPath(url)}.map` : undefined;
    maps.set(
      url,
      file && existsSync(file)
        ? new SourceMapConsumer(
            JSON.parse(readFileSync(file, 'utf8')) as ConstructorParameters<typeof SourceMapConsumer>[0],
          )
        : undefined,
    );
  }
  return maps.get(url);
}
/** The frame as the source names it: (function, url, line), through the bundle's source map. */
function frameOf(n: Node): { name: string; url: string; line: number } {
  const c = n.callFrame;
  const map = c.lineNumber >= 0 ? mapOf(c.url) : undefined;
  if (map) {
    const p = map.originalPositionFor({ line: c.lineNumber + 1, column: c.columnNumber });
    if (p.source) return { name: p.name ?? c.functionName, url: p.source.replace(/^(\.\.\/)+/, ''), line: p.line };
  }
  return { name: c.functionName, url: c.url, line: c.lineNumber + 1 };
}
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
prof.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const fn = new Map<string, number>();
const file = new Map<string, number>();
for (const [id, us] of self) {
  const f0 = frameOf(byId.get(id)!);
  const url = f0.url.replace(/^file:\/\/\/work\/main\//, '').replace(/.*node_modules\//, 'nm/');
  const f = `${f0.name || '(anon)'} ${url}:${f0.line}`;
  fn.set(f, (fn.get(f) ?? 0) + us);
  const key = url.startsWith('nm/')
    ? url
        .split('/')
        .slice(0, url.startsWith('nm/@') ? 3 : 2)
        .join('/')
    : url || f0.name;
  file.set(key, (file.get(key) ?? 0) + us);
}
const top = (m: Map<string, number>) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([k, v]) => `${(v / 1000).toFixed(0).padStart(7)} ms ${((v / total) * 100).toFixed(1).padStart(5)} %  ${k}`)
    .join('\n');
console.log(`total ${(total / 1000).toFixed(0)} ms\n-- by module/file --\n${top(file)}\n-- by function --\n${top(fn)}`);
