/**
 * TCP ports that a ServiceEntry in another namespace serves without addresses
 * (src/plan/collisions.ts), with the built binary (`sync --once`) against the harness's real
 * kube-apiserver, and what the real istiod then sends a sidecar (the xDS probe): the entry the
 * plan names as the keeper is the one whose cluster the `0.0.0.0_<port>` tcp_proxy goes to, in
 * the namespace the plan names. Every host, namespace and TCP port is unique to this file's run:
 * the apiserver is shared and keeps what runs leave (no namespace controller), and a port
 * another run's entry holds would be a collision here too. The entries are deleted at the end.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterName } from '../../src/verify/compare.js';
import type { ProxyView } from '../../src/verify/proxy-config.js';
import { XdsProbe } from '../../src/verify/xds-probe.js';
import { hasPeer, peer, peers } from '../peers/endpoints.js';
import { eventually } from './eventually.js';
import { removeNamespaces } from './real-clients-kit.js';
import {
  collisions,
  createEntry,
  entriesOf,
  kubeWithNamespaces,
  runSync,
  staticBridge,
  type LogLine,
} from './elsewhere-kit.js';

const suffix = randomBytes(3).toString('hex');
const ours = `rb-pxns-${suffix}`;
const theirs = `rb-pxns-other-${suffix}`;
/** Ports of this run: below the ephemeral range (32768–60999) other files take free ports from, above the shapes (21000–21999). */
const base = randomInt(22_000, 32_000);
const port = (i: number) => base + i;
let dir: string;
let admin: KubeConfig | undefined;
let custom: CustomObjectsApi;

/**
 * One Dubbo-like service (TCP on `tcpPort`) written into `ours` by a source of its own. Its
 * host starts with `z-`: after the other entries' `a-` hosts, so that an entry created in the
 * same second as the foreign one still comes after it in Istio's order (creation time, then host).
 */
const bridgeFor = (service: string, tcpPort: number, extra: Record<string, unknown> = {}) =>
  staticBridge(dir, ours, service, { protocol: 'tcp', address: '10.61.0.1', port: tcpPort }, extra);

async function foreignEntry(
  name: string,
  host: string,
  ports: { number: number; protocol: string }[],
  extra: Record<string, unknown> = {},
): Promise<void> {
  await createEntry(custom, theirs, name, {
    hosts: [host],
    ports: ports.map((p) => ({ ...p, name: `${p.protocol.toLowerCase()}-${p.number}` })),
    resolution: 'STATIC',
    location: 'MESH_INTERNAL',
    endpoints: [{ address: '10.62.0.1' }],
    ...extra,
  });
}

const entriesIn = (namespace: string) => entriesOf(custom, namespace);

/** The clusters the catch-all TCP chain (no SNI, no CIDR, no ALPN) of `0.0.0.0_<port>` forwards to. */
function catchAllTcp(view: ProxyView, p: number): string[] | undefined {
  const listener = view.listeners.find((l) => l.name === `0.0.0.0_${p}`);
  if (!listener) return undefined;
  return listener.filterChains
    .filter(
      (c) =>
        c.tcpClusters.length > 0 &&
        c.serverNames.length === 0 &&
        c.prefixRanges.length === 0 &&
        c.applicationProtocols.length === 0,
    )
    .flatMap((c) => c.tcpClusters);
}

/** What istiod sends a sidecar in `namespace` for this port, once both entries' clusters are there. */
async function tcpProxyIn(namespace: string, p: number, hosts: string[]): Promise<string[] | undefined> {
  const probe = await XdsProbe.connect({
    address: peers().istiod.xds,
    namespace,
    podName: `rb-pxns-${namespace}-${p}-${process.pid}`,
  });
  try {
    // Listeners of the push whose clusters have both entries (istiod sends one push's CDS and
    // LDS with one version): a listener of an earlier push, before the younger entry, would give
    // the port to the older one whatever the rule.
    await probe.waitFor(
      () => {
        const { view, versions } = probe.snapshot();
        return (
          hosts.every((h) => view.clusters.has(clusterName(p, h))) &&
          versions.cluster !== undefined &&
          versions.cluster === versions.listener &&
          catchAllTcp(view, p) !== undefined
        );
      },
      undefined,
      60_000,
      `the clusters of ${hosts.join(', ')} and the listener 0.0.0.0_${p} of one push`,
    );
    return catchAllTcp(probe.snapshot().view, p);
  } finally {
    probe.close();
  }
}

describe.skipIf(!hasPeer('kube'))('TCP ports served in another namespace (built binary, real kube-apiserver)', () => {
  beforeAll(async () => {
    ({ dir, admin, custom } = await kubeWithNamespaces('rb-pxns-', [ours, theirs]));
  });

  afterAll(async () => {
    // ServiceEntries first: no namespace controller empties a deleted namespace, and an entry
    // left on one of these ports would be a collision for whatever takes the port next.
    if (admin) await removeNamespaces(admin, [ours, theirs]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an older TCP entry elsewhere (exportTo unset) on the port: ours is written, the pair reported with the keeper, exit 4; istiod sends the port to the keeper', async () => {
    const p = port(0);
    const other = `a-legacy-${suffix}.example`;
    await foreignEntry('legacy-tcp', other, [{ number: p, protocol: 'TCP' }]);
    const { config, host } = await bridgeFor(`z-greet-${suffix}`, p);

    const run = await runSync(config);
    expect(run.code, run.output).toBe(4);
    expect(run.lines.filter((l) => l.msg === 'create')).toEqual([
      expect.objectContaining({
        namespace: ours,
        name: host,
        reason: expect.stringContaining(
          `TCP port ${p} is shadowed by ${other} (${theirs}/legacy-tcp) for sidecars that see both: written all the same`,
        ) as unknown,
      }),
    ]);
    expect(collisions(run.lines)).toEqual([
      expect.objectContaining({
        level: 40,
        kind: 'port',
        port: p,
        hosts: [other, host],
        objects: [`${theirs}/legacy-tcp`, `${ours}/${host}`],
        reason: expect.stringContaining(`send all of 0.0.0.0:${p} to ${other}`) as unknown,
      }),
    ]);
    expect(run.lines.find((l) => l.msg === 'reconcile finished')).toMatchObject({ create: 1, collisions: 1 });
    expect(await entriesIn(ours)).toContain(`${host} ${host}`);

    // The next run knows both creation times: the same keeper.
    const again = await runSync(config);
    expect(again.code, again.output).toBe(4);
    expect(collisions(again.lines).map((l) => l.objects)).toEqual([[`${theirs}/legacy-tcp`, `${ours}/${host}`]]);

    if (hasPeer('istiod')) expect(await tcpProxyIn(ours, p, [host, other])).toEqual([clusterName(p, other)]);
  });

  it('a younger entry elsewhere exported to its own namespace only: there it comes first (reported for that namespace), elsewhere ours keeps the port; istiod agrees in both namespaces', async () => {
    const p = port(1);
    const { config, host } = await bridgeFor(`z-local-${suffix}`, p);
    const first = await runSync(config);
    expect(first.code, first.output).toBe(0);
    expect(collisions(first.lines)).toEqual([]);

    const other = `a-local-${suffix}.example`;
    await foreignEntry('local-tcp', other, [{ number: p, protocol: 'TCP' }], { exportTo: ['.'] });
    const run = await runSync(config);
    expect(run.code, run.output).toBe(4);
    expect(collisions(run.lines)).toEqual([
      expect.objectContaining({
        kind: 'port',
        port: p,
        objects: [`${theirs}/local-tcp`, `${ours}/${host}`],
        reason: expect.stringMatching(
          new RegExp(`for sidecars in namespace ${theirs}: .*private to ${theirs}`),
        ) as unknown,
      }),
    ]);

    if (hasPeer('istiod')) {
      expect(await tcpProxyIn(theirs, p, [host, other])).toEqual([clusterName(p, other)]);
      expect(await tcpProxyIn(ours, p, [host])).toEqual([clusterName(p, host)]);
    }
  });

  it('entries elsewhere on the port with addresses, as HTTP, or as TLS take nothing: exit 0', async () => {
    const p = port(2);
    await foreignEntry('with-address', `a-vip-${suffix}.example`, [{ number: p, protocol: 'TCP' }], {
      addresses: ['240.61.0.9'],
    });
    await foreignEntry('http', `a-http-${suffix}.example`, [{ number: p, protocol: 'HTTP' }]);
    await foreignEntry('tls', `a-tls-${suffix}.example`, [{ number: p, protocol: 'TLS' }]);
    const { config, host } = await bridgeFor(`z-alone-${suffix}`, p);
    const run = await runSync(config);
    expect(run.code, run.output).toBe(0);
    expect(collisions(run.lines)).toEqual([]);
    expect(await entriesIn(ours)).toContain(`${host} ${host}`);
  });

  it('continuous mode: a TCP entry elsewhere that takes the port later is counted by the next full run, logged at warn once and at debug while it persists, and no longer once it is deleted', async () => {
    const p = port(3);
    const { config, host } = await bridgeFor(`z-watch-${suffix}`, p, {
      controller: { resyncInterval: '1s', debounce: '50ms' },
      server: { address: '127.0.0.1', port: 0 },
    });
    const child = spawn(
      process.execPath,
      [
        'dist/registry-bridge.mjs',
        'sync',
        '-c',
        config,
        '--kubeconfig',
        peer('kube').kubeconfig,
        '--log-level',
        'debug',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: LogLine[] = [];
    let rest = '';
    const take = (d: Buffer) => {
      const text = rest + d.toString();
      const parts = text.split('\n');
      rest = parts.pop() ?? '';
      lines.push(...parts.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine));
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const ofPort = () => collisions(lines).filter((l) => l.port === p);
    try {
      await eventually(async () => lines.some((l) => l.msg.startsWith('serving')), 'the bridge serving', 60_000);
      const metricsPort = lines.find((l) => l.msg.startsWith('serving'))!.port as number;
      const gauge = async () => {
        const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
        return /^registry_bridge_collisions (\d+)$/m.exec(text)?.[1];
      };
      await eventually(async () => (await entriesIn(ours)).includes(`${host} ${host}`), 'the entry written', 60_000);
      await eventually(async () => (await gauge()) === '0', 'a full run with no collision', 60_000);

      await foreignEntry('late-tcp', `zz-late-${suffix}.example`, [{ number: p, protocol: 'TCP' }]);
      await eventually(async () => (await gauge()) === '1', 'the collision counted', 60_000);
      // Two more full runs while it persists: debug lines, no second warning.
      await eventually(
        async () => ofPort().filter((l) => l.level === 20).length >= 2,
        'the collision at debug',
        60_000,
      );
      expect(ofPort().filter((l) => l.level === 40)).toEqual([
        expect.objectContaining({
          kind: 'port',
          // Ours is older (or of the same second and first by host name): it keeps the port.
          objects: [`${ours}/${host}`, `${theirs}/late-tcp`],
        }),
      ]);
      expect(await entriesIn(ours)).toContain(`${host} ${host}`);

      await custom.deleteNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1',
        namespace: theirs,
        plural: 'serviceentries',
        name: 'late-tcp',
      });
      await eventually(async () => (await gauge()) === '0', 'the collision gone', 60_000);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
