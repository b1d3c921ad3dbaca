/**
 * The shipped program: one ES module, `dist/registry-bridge.mjs`, bundled from tsc's output.
 *
 * Why: `@kubernetes/client-node` imports its whole generated API (every model and API class)
 * from any entry point, and V8 keeps the source text of every loaded module. Bundled and
 * minified, with unused code dropped, the bridge starts with ≈ 18 MiB less heap, ≈ 30 MiB less
 * RSS, in less than half the time (see the README's benchmark section).
 *
 * CommonJS packages the code loads on demand through `createRequire` (node-zookeeper-client,
 * @grpc/grpc-js, the xDS protos) stay in node_modules and are resolved from dist/ at run time.
 *
 *   node scripts/bundle.mjs [entry.js out.mjs]...   (default: the CLI)
 */
import { build } from 'esbuild';

const pairs = process.argv.slice(2);
const targets = pairs.length >= 2 ? [] : [['dist/src/cli/main.js', 'dist/registry-bridge.mjs']];
for (let i = 0; i + 1 < pairs.length; i += 2) targets.push([pairs[i], pairs[i + 1]]);

for (const [entry, outfile] of targets) {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: true,
    // Error class names and function names stay readable in logs and stack traces.
    keepNames: true,
    sourcemap: 'linked',
    // Optional peers of @kubernetes/client-node that are required only when configured.
    external: ['proxy-agent'],
    // tr46/whatwg-url (under node-fetch) require Node's built-in punycode, which Node 22+ warns
    // about on stderr at every start (DEP0040): the userland package of the same code instead.
    alias: { punycode: 'punycode/' },
    // Bundled CommonJS code calls require() for Node built-ins.
    banner: {
      js: "import { createRequire as __rbCreateRequire } from 'node:module'; const require = __rbCreateRequire(import.meta.url);",
    },
    logLevel: 'warning',
    metafile: true,
  });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + (o.bytes ?? 0), 0);
  process.stderr.write(`bundled ${entry} → ${outfile} (${(bytes / 1048576).toFixed(1)} MiB with source map)\n`);
}
