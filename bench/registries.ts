/**
 * Generators and change drivers for the real registries of the harness: ZooKeeper (Dubbo
 * interface layout under a bench chroot) and Nacos (v1 HTTP API, persistent instances).
 * Service i has instances 127.<hi>.<lo>.<1..M>; instances added by scenarios use 127.250+.x.y
 * (loopback only: a registry that health-checks instances must never probe another network).
 */
import type { Client } from 'node-zookeeper-client';
import { zookeeperClient } from '../src/util/lazy-modules.js';
import { mapLimit } from '../src/util/concurrency.js';

const zk = zookeeperClient();

export interface Instance {
  readonly ip: string;
  readonly port: number;
}

export interface RegistryDriver {
  readonly kind: 'zookeeper' | 'nacos' | 'rnacos';
  /** Makes exactly services [0, n) of the generator exist (m instances each for new ones); removes its services ≥ n. */
  ensure(n: number, m: number, log: (s: string) => void): Promise<void>;
  addInstance(service: number, inst: Instance): Promise<void>;
  removeInstance(service: number, inst: Instance): Promise<void>;
  /** The bridge's source block (without name/targetNamespace). */
  sourceConfig(): Record<string, unknown>;
  /** The name of generator service `i` in the bridge's service keys. */
  serviceName(i: number): string;
  close(): Promise<void>;
}

/** The bridge's source block for the generators' data in ZooKeeper at `connect`. */
export function zookeeperSource(connect: string): Record<string, unknown> {
  return { kind: 'zookeeper', zookeeper: { connect: `${connect}${ZK_CHROOT}`, layout: 'dubbo', root: '/dubbo' } };
}

/** Nacos 3 fuzzy watch for new services (on), or the names poll alone (off): --nacos-fuzzy-watch. */
let nacosFuzzyWatch = true;
export function setNacosFuzzyWatch(on: boolean): void {
  nacosFuzzyWatch = on;
}

/** The bridge's source block for the generators' data in Nacos at `httpBase` (…/nacos). */
export function nacosSource(httpBase: string): Record<string, unknown> {
  return {
    kind: 'nacos',
    nacos: {
      servers: [httpBase.replace(/\/nacos\/?$/, '')],
      namespaces: ['public'],
      groups: [NACOS_GROUP],
      fuzzyWatch: nacosFuzzyWatch,
    },
  };
}

export function baseIp(service: number, instance: number): string {
  return `127.${Math.floor(service / 250) + 1}.${service % 250}.${instance + 1}`;
}

let extraSeq = 0;
/** A fresh instance address never used by the generators. */
export function extraInstance(): Instance {
  const k = extraSeq++;
  return { ip: `127.${250 + Math.floor(k / 62500)}.${Math.floor(k / 250) % 250}.${(k % 250) + 1}`, port: 20880 };
}

// ---------------------------------------------------------------- ZooKeeper

export const ZK_CHROOT = '/rb-bench';

/** The generator's index in a service name, or -1 for a name it did not make. */
function generatorIndex(name: string, pattern: RegExp): number {
  const m = pattern.exec(name);
  return m ? Number(m[1]) : -1;
}

export function dubboInterface(i: number): string {
  return `org.rbbench.svc${i}.BenchService`;
}

function javaUrlEncode(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

function providerNode(iface: string, inst: Instance): string {
  const url = `dubbo://${inst.ip}:${inst.port}/${iface}?anyhost=true&application=bench-app&dubbo=2.0.2&interface=${iface}&methods=ping,pong&pid=1&release=3.2.10&side=provider&timestamp=1700000000000&version=1.0.0`;
  return javaUrlEncode(url);
}

const cb = <T>(fn: (done: (err: Error | null, v?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

export async function zookeeperDriver(connect: string): Promise<RegistryDriver> {
  const c: Client = zk.createClient(connect, { sessionTimeout: 30_000, spinDelay: 200 });
  const up = new Promise<void>((r) => c.once('connected', () => r()));
  c.connect();
  await up;
  const root = `${ZK_CHROOT}/dubbo`;
  const create = async (path: string) => {
    try {
      await cb((d) => c.create(path, null, zk.CreateMode.PERSISTENT, d));
    } catch (err) {
      if ((err as { code?: number }).code !== zk.Exception.NODE_EXISTS) throw err;
    }
  };
  await cb((d) => c.mkdirp(root, d));
  const have = new Set(await cb<string[]>((d) => c.getChildren(root, d)));
  return {
    kind: 'zookeeper',
    async ensure(n, m, log) {
      const t0 = Date.now();
      const todo = Array.from({ length: n }, (_, i) => i).filter((i) => !have.has(dubboInterface(i)));
      await mapLimit(todo, 64, async (i) => {
        const iface = dubboInterface(i);
        await create(`${root}/${iface}`);
        await create(`${root}/${iface}/providers`);
        await Promise.all(
          Array.from({ length: m }, (_, k) =>
            create(`${root}/${iface}/providers/${providerNode(iface, { ip: baseIp(i, k), port: 20880 })}`),
          ),
        );
        have.add(iface);
      });
      const extra = [...have].filter((iface) => generatorIndex(iface, /^org\.rbbench\.svc(\d+)\.BenchService$/) >= n);
      await mapLimit(extra, 32, async (iface) => {
        await removeTree(c, `${root}/${iface}`);
        have.delete(iface);
      });
      log(
        `zookeeper: ${todo.length} services × ${m} created, ${extra.length} removed (${n} total) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    },
    async addInstance(service, inst) {
      const iface = dubboInterface(service);
      if (!have.has(iface)) {
        await create(`${root}/${iface}`);
        await create(`${root}/${iface}/providers`);
        have.add(iface);
      }
      await create(`${root}/${iface}/providers/${providerNode(iface, inst)}`);
    },
    async removeInstance(service, inst) {
      const iface = dubboInterface(service);
      await cb((d) => c.remove(`${root}/${iface}/providers/${providerNode(iface, inst)}`, -1, d)).catch(
        (err: { code?: number }) => {
          if (err.code !== zk.Exception.NO_NODE) throw err;
        },
      );
    },
    sourceConfig() {
      return zookeeperSource(connect);
    },
    serviceName: dubboInterface,
    async close() {
      c.close();
    },
  };
}

/** Depth-first delete of a subtree; nodes already gone are fine. */
async function removeTree(c: Client, path: string): Promise<void> {
  const children = await cb<string[]>((d) => c.getChildren(path, d)).catch((err: { code?: number }) => {
    if (err.code === zk.Exception.NO_NODE) return [] as string[];
    throw err;
  });
  await Promise.all(children.map((child) => removeTree(c, `${path}/${child}`)));
  await cb((d) => c.remove(path, -1, d)).catch((err: { code?: number }) => {
    if (err.code !== zk.Exception.NO_NODE) throw err;
  });
}

/** Removes a whole Dubbo interface (a service that was added by a scenario). */
export async function zookeeperRemoveService(connect: string, service: number): Promise<void> {
  const c: Client = zk.createClient(connect, { sessionTimeout: 30_000 });
  const up = new Promise<void>((r) => c.once('connected', () => r()));
  c.connect();
  await up;
  await cb((d) => c.removeRecursive(`${ZK_CHROOT}/dubbo/${dubboInterface(service)}`, -1, d)).catch(() => undefined);
  c.close();
}

// ---------------------------------------------------------------- Nacos

export const NACOS_GROUP = 'RB_BENCH';

export function nacosService(i: number): string {
  return `bench-svc-${i}`;
}

/** Java Nacos (`nacos`) or r-nacos (`rnacos`) at `httpBase` (…/nacos): the same v1 API. */
export async function nacosDriver(httpBase: string, kind: 'nacos' | 'rnacos' = 'nacos'): Promise<RegistryDriver> {
  const call = async (method: string, params: Record<string, string>) => {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(`${httpBase}/v1/ns/instance?${new URLSearchParams(params)}`, {
        method,
        signal: AbortSignal.timeout(20_000),
      });
      const body = await res.text();
      if (res.ok) return;
      if (attempt >= 3)
        throw new Error(`nacos ${method} ${params.serviceName} ${params.ip}: ${res.status} ${body.slice(0, 200)}`);
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  };
  const params = (service: number, inst: Instance) => ({
    namespaceId: 'public',
    groupName: NACOS_GROUP,
    serviceName: nacosService(service),
    ip: inst.ip,
    port: String(inst.port),
    ephemeral: 'false',
  });
  const count = async (): Promise<Set<string>> => {
    const names = new Set<string>();
    for (let page = 1; ; page++) {
      const res = await fetch(
        `${httpBase}/v1/ns/service/list?${new URLSearchParams({ pageNo: String(page), pageSize: '1000', namespaceId: 'public', groupName: NACOS_GROUP })}`,
      );
      const body = (await res.json()) as { count: number; doms?: string[] };
      for (const d of body.doms ?? []) names.add(d.replace(/^.*@@/, ''));
      if ((body.doms ?? []).length < 1000) break;
    }
    return names;
  };
  const have = await count();
  /**
   * Nacos health-checks persistent instances (TCP to ip:port). The bench's addresses are made up
   * (loopback only): switch each service's checker off so the server never probes them and
   * health stays what was registered. Nacos 3's admin API; older servers answer 404/410.
   */
  const noHealthCheck = async (service: number) => {
    const q = new URLSearchParams({
      namespaceId: 'public',
      groupName: NACOS_GROUP,
      serviceName: nacosService(service),
      clusterName: 'DEFAULT',
      checkPort: '80',
      useInstancePort4Check: 'true',
      healthChecker: JSON.stringify({ type: 'NONE' }),
    });
    await fetch(`${httpBase}/v3/admin/ns/cluster?${q}`, { method: 'PUT', signal: AbortSignal.timeout(20_000) }).catch(
      () => undefined,
    );
  };
  return {
    kind,
    async ensure(n, m, log) {
      const t0 = Date.now();
      const todo = Array.from({ length: n }, (_, i) => i).filter((i) => !have.has(nacosService(i)));
      const jobs = todo.flatMap((i) => Array.from({ length: m }, (_, k) => ({ i, k })));
      await mapLimit(jobs, 32, async ({ i, k }) => {
        await call('POST', {
          ...params(i, { ip: baseIp(i, k), port: 8080 }),
          healthy: 'true',
          enabled: 'true',
          weight: '1',
          metadata: JSON.stringify({ protocol: 'http' }),
        });
      });
      await mapLimit(todo, 32, noHealthCheck);
      for (const i of todo) have.add(nacosService(i));
      const extra = [...have].filter((name) => generatorIndex(name, /^bench-svc-(\d+)$/) >= n);
      await mapLimit(extra, 16, async (name) => {
        const q = new URLSearchParams({ namespaceId: 'public', groupName: NACOS_GROUP, serviceName: name });
        const res = await fetch(`${httpBase}/v1/ns/instance/list?${q}`, { signal: AbortSignal.timeout(20_000) });
        const hosts = ((await res.json()) as { hosts?: { ip: string; port: number }[] }).hosts ?? [];
        for (const h of hosts)
          await call('DELETE', {
            namespaceId: 'public',
            groupName: NACOS_GROUP,
            serviceName: name,
            ip: h.ip,
            port: String(h.port),
            ephemeral: 'false',
          });
        await fetch(`${httpBase}/v1/ns/service?${q}`, { method: 'DELETE', signal: AbortSignal.timeout(20_000) }).catch(
          () => undefined,
        );
        have.delete(name);
      });
      log(
        `${kind}: ${todo.length} services × ${m} registered, ${extra.length} removed (${n} total) in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    },
    async addInstance(service, inst) {
      await call('POST', {
        ...params(service, inst),
        healthy: 'true',
        enabled: 'true',
        weight: '1',
        metadata: JSON.stringify({ protocol: 'http' }),
      });
      // A new service (the new-service scenario): switch its health checks off too, or Nacos
      // marks the made-up address unhealthy and the bridge rightly publishes no endpoint.
      if (!have.has(nacosService(service))) {
        await noHealthCheck(service);
        have.add(nacosService(service));
      }
    },
    async removeInstance(service, inst) {
      await call('DELETE', params(service, inst));
    },
    sourceConfig() {
      return nacosSource(httpBase);
    },
    serviceName: nacosService,
    async close() {},
  };
}
