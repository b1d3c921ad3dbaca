/**
 * The SourceAdapter contract (test/contract) for the ZooKeeper and Nacos adapters, on the real
 * ZooKeeper, Java Nacos and r-nacos of the harness (test/peers). Each suite works in its own
 * corner of the registry: a fresh chroot, a namespace and group of its own.
 */
import { createRequire } from 'node:module';
import type { Client } from 'node-zookeeper-client';
import { pino } from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { nacosAdapter } from '../../adapters/nacos/index.js';
import { zookeeperAdapter } from '../../adapters/zookeeper/index.js';
import { secretResolver } from '../../src/config/secret.js';
import { silentLogger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';
import type { AdapterFactory } from '../../src/sources/adapter.js';
import { hasPeer, peer, peers } from '../peers/endpoints.js';
import { adapterContract, type ContractInstance } from '../contract/source-adapter.js';

const zk = createRequire(import.meta.url)('node-zookeeper-client') as typeof import('node-zookeeper-client');

function create(factory: AdapterFactory<unknown>, source: string, raw: unknown, logger = silentLogger()) {
  return factory.create(factory.configSchema.parse(raw), {
    source,
    logger,
    baseDir: process.cwd(),
    resolveSecret: secretResolver({}, process.cwd()),
    metrics: new BridgeMetrics(),
  });
}

async function until(what: string, ms: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const cb = <T>(fn: (done: (err: Error | null, v?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

if (hasPeer('zookeeper')) {
  const chroot = `/rb-contract-${process.pid}-${Date.now().toString(36)}`;
  let writer: Client;
  const ifaceOf = (name: string) => `org.contract.${name.replace(/[^A-Za-z0-9]/g, '')}`;
  const providersOf = (name: string) => `${chroot}/dubbo/${ifaceOf(name)}/providers`;
  const ensure = (path: string) =>
    cb((d) => writer.mkdirp(path, null, zk.ACL.OPEN_ACL_UNSAFE, zk.CreateMode.PERSISTENT, d));
  const clear = async (path: string) => {
    const children = await cb<string[]>((d) => writer.getChildren(path, d)).catch(() => [] as string[]);
    for (const c of children) await cb((d) => writer.remove(`${path}/${c}`, -1, d));
  };

  beforeAll(async () => {
    writer = zk.createClient(peers().zookeeper.connect, { sessionTimeout: 30_000 });
    const up = new Promise<void>((r) => writer.once('connected', () => r()));
    writer.connect();
    await up;
  });
  afterAll(async () => {
    await cb((d) => writer.removeRecursive(chroot, -1, d)).catch(() => undefined);
    writer.close();
  });

  adapterContract({
    name: 'zookeeper',
    adapter: () =>
      create(zookeeperAdapter, 'zk', {
        connect: `${peers().zookeeper.connect}${chroot}`,
        layout: 'dubbo',
        requestTimeout: '2s',
      }),
    unreachable: () => create(zookeeperAdapter, 'zk', { connect: '127.0.0.1:1', requestTimeout: '1s' }),
    async publish(name: string, instances: readonly ContractInstance[]) {
      const dir = providersOf(name);
      await ensure(dir);
      await clear(dir);
      const iface = ifaceOf(name);
      for (const i of instances) {
        const url = `dubbo://${i.address}:${i.port}/${iface}?interface=${iface}&side=provider&application=contract`;
        await cb((d) => writer.create(`${dir}/${encodeURIComponent(url)}`, null, zk.CreateMode.PERSISTENT, d));
      }
    },
    async remove(name: string) {
      await cb((d) => writer.removeRecursive(`${chroot}/dubbo/${ifaceOf(name)}`, -1, d)).catch(() => undefined);
    },
    matches: (s, name) => s.key.name === ifaceOf(name),
    async publishInvalid() {
      const dir = `${chroot}/dubbo/org.contract.Broken/providers`;
      await ensure(dir);
      await clear(dir);
      // A provider znode whose name is no URL at all.
      await cb((d) => writer.create(`${dir}/not-a-url`, null, zk.CreateMode.PERSISTENT, d));
      return '/dubbo/org.contract.Broken/providers/not-a-url';
    },
    settleMs: 10_000,
  });
}

for (const server of ['nacos', 'rnacos'] as const) {
  if (!hasPeer(server)) continue;
  const ns = 'rb-contract';
  const group = `CONTRACT_${process.pid}`;
  const base = () => peer(server).http;
  const registered = new Map<string, ContractInstance[]>();
  // The adapter's log, to see when its gRPC subscriptions are answered (armed).
  let lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) });

  async function v1(method: string, path: string, params: Record<string, string>): Promise<void> {
    const res = await fetch(`${base()}${path}?${new URLSearchParams(params)}`, {
      method,
      signal: AbortSignal.timeout(10_000),
    });
    if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  }
  const instanceParams = (name: string, i: ContractInstance) => ({
    namespaceId: ns,
    groupName: group,
    serviceName: name,
    ip: i.address,
    port: String(i.port),
    ephemeral: 'false',
  });

  adapterContract({
    name: server,
    adapter: () => {
      lines = [];
      return create(
        nacosAdapter,
        server,
        { servers: [base()], namespaces: [ns], groups: [group], serviceListInterval: '1s' },
        logger,
      );
    },
    armed: () =>
      until(`${server}: gRPC subscriptions answered`, 15_000, () =>
        lines.some((l) => l.includes('nacos gRPC subscriptions up to date')),
      ),
    unreachable: () =>
      create(nacosAdapter, server, { servers: ['http://127.0.0.1:1/nacos'], requestTimeout: '1s', push: false }),
    async publish(name: string, instances: readonly ContractInstance[]) {
      // Register the new set first, then take away what is no longer in it: the service never
      // goes empty on the way (the server would start its empty-service clean-up).
      for (const i of instances) {
        await v1('POST', '/v1/ns/instance', {
          ...instanceParams(name, i),
          healthy: 'true',
          enabled: 'true',
          weight: '1',
        });
        // Java Nacos health-checks persistent instances itself (TCP to made-up loopback
        // addresses): switch its checker off for this cluster where the server has the v3 API.
        await fetch(
          `${base()}/v3/admin/ns/cluster?${new URLSearchParams({ namespaceId: ns, groupName: group, serviceName: name, clusterName: 'DEFAULT', checkPort: '80', useInstancePort4Check: 'true', healthChecker: JSON.stringify({ type: 'NONE' }) })}`,
          { method: 'PUT', signal: AbortSignal.timeout(10_000) },
        ).catch(() => undefined);
      }
      for (const old of registered.get(name) ?? [])
        if (!instances.some((i) => i.address === old.address && i.port === old.port))
          await v1('DELETE', '/v1/ns/instance', instanceParams(name, old));
      registered.set(name, [...instances]);
    },
    async remove(name: string) {
      for (const i of registered.get(name) ?? []) await v1('DELETE', '/v1/ns/instance', instanceParams(name, i));
      registered.delete(name);
    },
    matches: (s, name) => s.key.name === name && s.key.namespace === ns && s.key.group === group,
    // The Nacos server refuses what the adapter would reject (no port, no address): no invalid
    // entry can be written through its API.
    settleMs: 15_000,
  });
}
