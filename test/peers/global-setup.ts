/**
 * Vitest global setup of the `integration` project: installs (first run: builds) and starts the
 * real servers the integration tests use, once for the whole run.
 *
 * - Which peers: RB_PEERS (comma list; default all; "none" for none); dependencies are added.
 * - Peers already running from `npm run peers:up` (state file, live PIDs) are reused, not
 *   restarted, and left running afterwards.
 * - Test files read endpoints through test/peers/endpoints.ts: from the JSON file whose path is
 *   in process.env.RB_PEERS_FILE, or `inject('rbPeers')`.
 * - Teardown stops everything this setup started, by the PIDs the state file holds then (a test
 *   may have restarted a peer); a failed start stops what did start before the error surfaces.
 */
import type { TestProject } from 'vitest/node';
import { bringDown, bringUp, installExitGuard, type Started } from './lib/orchestrator.js';
import { statePath } from './lib/state.js';
import type { Log, PeerRecord } from './lib/types.js';
import { parsePeerList } from './registry.js';

declare module 'vitest' {
  export interface ProvidedContext {
    rbPeers: Record<string, PeerRecord>;
    rbPeersFile: string;
  }
}

const t0 = Date.now();
const log: Log = (m) => {
  if (process.env.RB_PEERS_QUIET !== '1')
    process.stderr.write(`[peers +${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}\n`);
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const names = parsePeerList(process.env.RB_PEERS);
  process.env.RB_PEERS_FILE = statePath();
  installExitGuard();
  let started: Started | null = null;
  if (names.length) {
    log(`bringing up: ${names.join(', ')} (state ${statePath()})`);
    started = await bringUp(names, { owner: 'vitest', log });
    for (const r of started.reports) {
      log(
        `${r.name.padEnd(9)} ${r.version} pid ${r.pid} ` +
          (r.reused
            ? 'reused'
            : `install ${((r.installMs ?? 0) / 1000).toFixed(1)} s, start ${((r.startMs ?? 0) / 1000).toFixed(1)} s`) +
          `, RSS ${r.rssMiB ?? '?'} MiB`,
      );
    }
  }
  project.provide('rbPeers', started?.records ?? {});
  project.provide('rbPeersFile', statePath());
  return async () => {
    if (started) await bringDown(started, log);
  };
}
