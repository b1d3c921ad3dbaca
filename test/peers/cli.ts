/**
 * npm run peers:up [-- names...]   start peers (default: all) and leave them running
 * npm run peers:down [-- names...] stop recorded peers (default: all)
 * npm run peers:status [-- --json] endpoints, versions, PIDs, alive/dead, RSS
 * npm run peers:build [-- names...] install (build/resolve/download) into the cache
 *
 * State: ${TMPDIR:-/tmp}/registry-bridge-peers/state.json (RB_PEERS_FILE overrides).
 * The integration tests' global setup reuses peers started here.
 */
import { bringUp, installExitGuard, installPeers, stopRecorded } from './lib/orchestrator.js';
import { cacheRoot } from './lib/paths.js';
import { rssMiB } from './lib/process.js';
import { readStateSync, recordAlive, statePath } from './lib/state.js';
import type { Log } from './lib/types.js';
import { PEER_NAMES, parsePeerList, withDeps } from './registry.js';

const t0 = Date.now();
const log: Log = (m) => process.stderr.write(`[peers +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);

function names(args: string[]): string[] {
  return args.length ? withDeps(args) : parsePeerList(process.env.RB_PEERS);
}

async function status(json: boolean): Promise<number> {
  const s = readStateSync();
  const rows = [];
  for (const rec of Object.values(s.peers)) {
    const alive = await recordAlive(rec);
    rows.push({ ...rec, alive, rssMiB: alive ? await rssMiB(rec.pid) : null });
  }
  if (json) {
    process.stdout.write(JSON.stringify({ stateFile: statePath(), peers: rows }, null, 2) + '\n');
    return 0;
  }
  process.stdout.write(`state: ${statePath()}\ncache: ${cacheRoot()}\n`);
  if (!rows.length) {
    process.stdout.write('no peers recorded (npm run peers:up)\n');
    return 0;
  }
  for (const r of rows) {
    process.stdout.write(
      `\n${r.name.padEnd(10)} ${r.alive ? 'alive' : 'DEAD '} pid ${r.pid}  ${r.version}  ` +
        `${r.rssMiB !== null ? `RSS ${r.rssMiB} MiB  ` : ''}owner ${r.owner}${r.owner === 'vitest' ? ` (pid ${r.ownerPid})` : ''}\n`,
    );
    for (const [k, v] of Object.entries(r.endpoints)) process.stdout.write(`  ${k.padEnd(11)} ${v}\n`);
    if (r.logFile) process.stdout.write(`  ${'log'.padEnd(11)} ${r.logFile}\n`);
  }
  return rows.every((r) => r.alive) ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const args = rest.filter((a) => !a.startsWith('-'));
  switch (cmd) {
    case 'up': {
      const started = await bringUp(names(args), { owner: 'cli', log });
      for (const r of started.reports) {
        log(
          `${r.name}: ${r.reused ? 'already running' : `started in ${((r.startMs ?? 0) / 1000).toFixed(1)} s`}, ` +
            `pid ${r.pid}, RSS ${r.rssMiB ?? '?'} MiB`,
        );
      }
      return status(false);
    }
    case 'down':
      await stopRecorded(args.length ? args : null, log);
      return 0;
    case 'status':
      return status(rest.includes('--json'));
    case 'build': {
      const res = await installPeers(names(args), log);
      for (const r of res)
        process.stdout.write(`${r.name.padEnd(10)} ${r.version.padEnd(40)} ${(r.ms / 1000).toFixed(1)} s\n`);
      return 0;
    }
    default:
      process.stderr.write(
        `usage: tsx test/peers/cli.ts up|down|status|build [names...]\npeers: ${PEER_NAMES.join(', ')}\n`,
      );
      return 2;
  }
}

// Ctrl-C during `up`: run the exit guard (kills peers still starting; started ones stay recorded).
installExitGuard(false);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => process.exit(130));

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
