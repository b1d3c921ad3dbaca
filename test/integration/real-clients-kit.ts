/**
 * What the real-clients test files share: the shape of the ServiceEntries they read back, the
 * CLI's captured output, free ports, waiting on a registry precondition, and reading the shared
 * ZooKeeper and Nacos the clients wrote into.
 */
import net from 'node:net';
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import zookeeper, { type Client as ZkClient } from 'node-zookeeper-client';
import { peer } from '../peers/endpoints.js';

export interface Endpoint {
  address: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  weight?: number;
}

export interface Entry {
  metadata: { name: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    hosts: string[];
    ports: { number: number; name: string; protocol: string }[];
    resolution?: string;
    endpoints?: Endpoint[];
  };
}

/** The ServiceEntries of a namespace, in the apiserver's order. */
export async function listEntries(kc: KubeConfig, namespace: string): Promise<Entry[]> {
  const list = (await kc.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1',
    namespace,
    plural: 'serviceentries',
  })) as { items: Entry[] };
  return list.items;
}

/** The ServiceEntries of a namespace, sorted by their first host. */
export async function entriesByHost(kc: KubeConfig, namespace: string): Promise<Entry[]> {
  return (await listEntries(kc, namespace)).sort((a, b) => a.spec.hosts[0]!.localeCompare(b.spec.hosts[0]!));
}

/**
 * Deletes test namespaces, their ServiceEntries first: the harness's apiserver runs no namespace
 * controller, so deleting a namespace alone leaves its objects. Errors are ignored (clean-up).
 */
export async function removeNamespaces(kc: KubeConfig, names: readonly string[]): Promise<void> {
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (const namespace of names)
    for (const e of await listEntries(kc, namespace).catch(() => []))
      await custom
        .deleteNamespacedCustomObject({
          group: 'networking.istio.io',
          version: 'v1',
          namespace,
          plural: 'serviceentries',
          name: e.metadata.name,
        })
        .catch(() => undefined);
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of names) await core.deleteNamespace({ name }).catch(() => undefined);
}

/** CLI io for `main()` that keeps stderr (the log) and drops stdout. */
export function capture() {
  const err: string[] = [];
  return {
    io: {
      stdout: { write: () => true },
      stderr: { write: (s: string) => (err.push(s), true) },
      env: {},
    } as never,
    err: () => err.join(''),
  };
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** n distinct free ports, ascending. */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out].sort((a, b) => a - b);
}

/** Waits for a precondition (in a registry, or istiod catching up with kube), never for the result under test. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The port numbers an endpoint serves, TCP first: `TCP:20880 GRPC:50051`. */
export function effectivePorts(e: Entry, ep: Endpoint): string {
  return [...e.spec.ports]
    .sort((a, b) => b.protocol.localeCompare(a.protocol))
    .map((p) => `${p.protocol}:${ep.ports?.[p.name] ?? p.number}`)
    .join(' ');
}

/** Runs f with a client connected to the shared ZooKeeper, closed after. */
export async function withZk<T>(f: (c: ZkClient) => Promise<T>): Promise<T> {
  const c = zookeeper.createClient(peer('zookeeper').connect);
  await new Promise<void>((resolve) => {
    c.once('connected', resolve);
    c.connect();
  });
  try {
    return await f(c);
  } finally {
    c.close();
  }
}

/** A znode's children ([] when it does not exist). */
export function zkChildren(path: string): Promise<string[]> {
  return withZk((c) => new Promise((resolve) => c.getChildren(path, (err, ch) => resolve(err ? [] : ch))));
}

/** A znode's data and whether it is ephemeral (undefined when it does not exist). */
export function zkNode(path: string): Promise<{ data: string; ephemeral: boolean } | undefined> {
  return withZk(
    (c) =>
      new Promise((resolve) =>
        c.getData(path, (err, data, stat) =>
          resolve(
            err
              ? undefined
              : { data: data?.toString('utf8') ?? '', ephemeral: stat.ephemeralOwner.some((b) => b !== 0) },
          ),
        ),
      ),
  );
}

/** Removes what the clients left in the shared ZooKeeper (persistent parents of their nodes). */
export function zkRemoveTree(path: string): Promise<void> {
  return withZk(async (c) => {
    const remove = async (p: string): Promise<void> => {
      const children = await new Promise<string[]>((resolve) => c.getChildren(p, (err, ch) => resolve(err ? [] : ch)));
      for (const child of children) await remove(`${p}/${child}`);
      await new Promise<void>((resolve) => c.remove(p, -1, () => resolve()));
    };
    await remove(path);
  });
}

/** The instances the shared Nacos lists for a service, healthy or not ([] when it answers otherwise). */
export async function nacosHosts(
  ns: string,
  group: string,
  service: string,
): Promise<{ ip: string; port: number; healthy: boolean }[]> {
  const q = new URLSearchParams({ namespaceId: ns, serviceName: `${group}@@${service}`, healthyOnly: 'false' });
  const res = await fetch(`${peer('nacos').http}/v1/ns/instance/list?${q.toString()}`);
  if (res.status !== 200) return [];
  return ((await res.json()) as { hosts?: { ip: string; port: number; healthy: boolean }[] }).hosts ?? [];
}

/** A config of the shared Nacos (undefined when it has none). */
export async function nacosConfig(ns: string, group: string, dataId: string): Promise<string | undefined> {
  const q = new URLSearchParams({ tenant: ns, group, dataId });
  const res = await fetch(`${peer('nacos').http}/v1/cs/configs?${q.toString()}`);
  return res.status === 200 ? await res.text() : undefined;
}

/**
 * A bridge config of one ZooKeeper source `zk` that reads `root` of the shared ZooKeeper into
 * `target`, with the harness's kube sink and the server on a free port: `zookeeper` lines go at
 * the end of the source's zookeeper block, `more` at the end of the config.
 */
export function zkBridgeYaml(target: string, root: string, o: { zookeeper?: string[]; more?: string[] } = {}): string {
  return [
    'sources:',
    '  - name: zk',
    '    kind: zookeeper',
    `    targetNamespace: ${target}`,
    '    zookeeper:',
    `      connect: "${peer('zookeeper').connect}"`,
    `      roots: [/${root}]`,
    ...(o.zookeeper ?? []),
    `sink: {kind: kube, kubeconfig: ${peer('kube').kubeconfig}}`,
    'server: {address: 127.0.0.1, port: 0}',
    ...(o.more ?? []),
  ].join('\n');
}

/** The registry-clients `dubbo` command's options for a provider of GreetService (tri port and register mode when given). */
export function dubboArgs(
  registry: string,
  o: { app: string; version: string; group: string; dubbo: number; tri?: number; mode?: string },
): string[] {
  return [
    '--registry',
    registry,
    '--app',
    o.app,
    '--version',
    o.version,
    '--group',
    o.group,
    '--dubbo-port',
    String(o.dubbo),
    ...(o.tri === undefined ? [] : ['--tri-port', String(o.tri)]),
    ...(o.mode ? ['--register-mode', o.mode] : []),
  ];
}
