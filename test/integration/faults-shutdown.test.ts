/**
 * Fault scenarios of kube requests that get no answer, on the bridge's built binary (continuous
 * mode) against a kube-apiserver and an etcd of the test's own, etcd frozen with SIGSTOP: the
 * apiserver then accepts the bridge's write and holds it (its own timeout is 60 s).
 *
 * - SIGTERM while a write is held: the write gets `controller.shutdownGrace`, is then aborted and
 *   reported once as not completed (no stack trace), and the process exits 1 within the bound
 *   docs/operations.md gives (shutdownGrace + 9 s), not after the apiserver's 60 s.
 * - A request past `sink.requestTimeout`: a failed write, logged and retried like any other
 *   failure; the change reaches kube once etcd answers again.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer } from '../peers/endpoints.js';
import {
  BridgeProcess,
  KubeScope,
  bridgeYaml,
  ownKube,
  report,
  staticSource,
  waitUntil,
  type OwnKube,
} from './faults-harness.js';

const suffix = randomBytes(3).toString('hex');
const SHUTDOWN_GRACE_MS = 3_000;
/** docs/operations.md: a SIGTERM'd bridge exits within shutdownGrace + 9 s. */
const EXIT_BOUND_MS = SHUTDOWN_GRACE_MS + 9_000;

const hostOf = (name: string) => `${name}.faults-shutdown.test`;

interface LogLine {
  level: number;
  msg: string;
  name?: string;
  host?: string;
  err?: unknown;
  failedWrites?: number;
  [k: string]: unknown;
}

/** The object name the bridge decided to create for `host` (from its decision line). */
const nameOf = (log: LogLine[], host: string) => log.find((l) => l.msg === 'create' && l.host === host)?.name;

const lines = (log: string): LogLine[] =>
  log
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);

describe.skipIf(!hasPeer('kube'))(
  'faults: kube requests without an answer (etcd frozen), the bridge as a process',
  () => {
    let dir: string;
    let own: OwnKube | undefined;
    let kubeconfig: string;
    let frozen = false;
    const bridges: BridgeProcess[] = [];

    const freezeEtcd = () => {
      process.kill(-own!.etcd.pid, 'SIGSTOP');
      frozen = true;
    };
    const thawEtcd = () => {
      if (!frozen) return;
      process.kill(-own!.etcd.pid, 'SIGCONT');
      frozen = false;
    };

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rb-faults-shutdown-'));
      own = await ownKube(dir);
      kubeconfig = own.kubeconfig;
    }, 600_000);

    afterAll(async () => {
      if (own) thawEtcd();
      for (const b of bridges) await b.kill9();
      await own?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    /** A namespace, a registry file with `names`, and the bridge converged on it. */
    async function scenario(name: string, names: string[], settings: { sink?: string; controller?: string }) {
      const scope = new KubeScope(kubeconfig, `rb-fs-${name}-${suffix}`);
      await scope.create();
      const registry = join(dir, `${name}.json`);
      const setServices = (list: string[]) =>
        writeFile(
          registry,
          JSON.stringify({
            services: list.map((n, i) => ({
              name: n,
              host: hostOf(n),
              protocol: 'http',
              instances: [{ address: `10.67.0.${i + 1}`, port: 8080 }],
            })),
          }),
        );
      await setServices(names);
      const config = join(dir, `${name}.yaml`);
      await writeFile(
        config,
        bridgeYaml({ source: staticSource(registry), namespace: scope.namespace, kubeconfig, ...settings }),
      );
      const bridge = new BridgeProcess(config, join(dir, `${name}-bridge.log`));
      bridges.push(bridge);
      await bridge.start();
      await waitUntil(async () => (await scope.owned()).size === names.length, `${names.length} entries`, 60_000);
      return { scope, bridge, setServices };
    }

    /** The apiserver holds the bridge's write: its queue of writes in flight is not empty. */
    const writeHeld = (bridge: BridgeProcess) =>
      waitUntil(
        async () => ((await bridge.metric('registry_bridge_write_queue_depth')) ?? 0) > 0,
        "the bridge's write held by the apiserver while etcd is frozen",
        60_000,
      );

    it('SIGTERM while etcd is frozen and a write is held: aborted after shutdownGrace, reported once, exit 1 within the bound', async () => {
      const { bridge, setServices } = await scenario('term', ['a0'], {
        controller: `, shutdownGrace: ${SHUTDOWN_GRACE_MS}ms`,
      });
      freezeEtcd();
      await setServices(['a0', 'a1']);
      await writeHeld(bridge);
      const termAt = Date.now();
      const logFrom = bridge.logText().length;
      // The bound, with room for a loaded machine: still far below the apiserver's 60 s.
      const exited = bridge.stop();
      const code = await Promise.race([
        exited,
        new Promise<'still running'>((r) => setTimeout(() => r('still running'), EXIT_BOUND_MS + 20_000)),
      ]);
      const exitMs = Date.now() - termAt;
      expect(code, `exit ${exitMs} ms after SIGTERM`).toBe(1);
      const after = lines(bridge.logText().slice(logFrom));
      expect(after.some((l) => l.msg === 'shutdown grace passed: aborting the kube requests still in flight')).toBe(
        true,
      );
      // The held write: one outcome, at warn, saying it did not complete; never also as failed.
      const a1 = nameOf(lines(bridge.logText()), hostOf('a1'));
      expect(a1).toBeDefined();
      const held = after.filter((l) => l.name === a1 && l.msg !== 'create');
      expect(held.map((l) => l.msg)).toEqual(['write not completed: stopping']);
      expect(held[0]!.level).toBe(40);
      expect(String(held[0]!.err)).toMatch(/create of serviceentries \S+\/\S+ not completed: shutting down/);
      // The run it belonged to ended with its report: one failed write.
      const finished = after.filter((l) => l.msg === 'reconcile finished');
      expect(finished.at(-1)?.failedWrites).toBe(1);
      expect(
        after.some((l) => l.msg === 'shut down: kube requests still in flight after the shutdown grace were aborted'),
      ).toBe(true);
      // An abort on the way out is not an error with a stack trace.
      expect(bridge.logText().slice(logFrom)).not.toMatch(/"stack"/);
      expect(after.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([]);
      thawEtcd();
      report('SIGTERM, etcd frozen, a write held', { shutdownGraceMs: SHUTDOWN_GRACE_MS, exitMs });
    }, 240_000);

    it('a request past sink.requestTimeout fails, is logged and retried, and the change lands once etcd answers', async () => {
      const { scope, bridge, setServices } = await scenario('deadline', ['d0'], { sink: ', requestTimeout: 2s' });
      freezeEtcd();
      const frozenAt = Date.now();
      await setServices(['d0', 'd1']);
      await writeHeld(bridge);
      await waitUntil(
        async () => {
          const log = lines(bridge.logText());
          const d1 = nameOf(log, hostOf('d1'));
          return log.some((l) => l.msg === 'write failed' && l.name === d1);
        },
        'the write of d1 failing at its deadline',
        120_000,
      );
      const failedMs = Date.now() - frozenAt;
      const log = lines(bridge.logText());
      const failed = log.find((l) => l.msg === 'write failed' && l.name === nameOf(log, hostOf('d1')))!;
      expect(String(failed.err)).toMatch(/no answer from kube-apiserver within 2000 ms \(PATCH /);
      expect(failed.level).toBe(50);
      // Tried again before it was reported: the retries counter names the transport failure.
      expect(await bridge.metric('registry_bridge_api_retries_total', '{verb="patch",code="error"}')).toBeGreaterThan(
        0,
      );
      expect(bridge.alive).toBe(true);
      thawEtcd();
      const thawedAt = Date.now();
      await waitUntil(async () => (await scope.owned()).has(hostOf('d1')), 'd1 in kube after etcd answers', 120_000);
      expect(bridge.logText()).not.toMatch(/"stack"/);
      report('request deadline, etcd frozen', {
        requestTimeoutMs: 2000,
        writeFailedAfterFreezeMs: failedMs,
        convergedAfterThawMs: Date.now() - thawedAt,
      });
      expect(await bridge.stop()).toBe(0);
    }, 300_000);
  },
);
