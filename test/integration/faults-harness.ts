/**
 * What the fault scenarios (faults*.test.ts) share: the built bridge as a child process (killable
 * with SIGKILL), its log, metrics and RSS; kill -9 of a registry the test started itself; the
 * invariants every scenario checks (expected entries present and correct, foreign objects
 * untouched, no secret in the log, bounded RSS); and the convergence figure printed per scenario.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { Client } from 'node-zookeeper-client';
import { expect } from 'vitest';
import * as etcdPeer from '../peers/etcd.js';
import * as kubePeer from '../peers/kube.js';
import { pidAlive } from '../peers/lib/process.js';
import type { PeerHandle } from '../peers/lib/types.js';

export const zk = createRequire(import.meta.url)('node-zookeeper-client') as typeof import('node-zookeeper-client');

export const GROUP = 'networking.istio.io';
export const VERSION = 'v1';

export interface ServiceEntryObject {
  metadata: {
    name: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    managedFields?: { manager?: string; subresource?: string }[];
  };
  spec: { hosts?: string[]; endpoints?: { address: string }[] };
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * An etcd and a kube-apiserver of the test's own (free ports, data under `dir`/etcd and
 * `dir`/kube), for scenarios that kill, freeze or restart them, or that must not see the shared
 * apiserver restarted by something else. A tokens.csv written to `dir`/kube/pki beforehand is used
 * (its first line is the admin of the kubeconfig). Restarted with the same options and data.
 */
export class OwnKube {
  kube: PeerHandle | undefined;

  constructor(
    readonly etcdOptions: etcdPeer.EtcdStartOptions,
    readonly kubeOptions: kubePeer.KubeStartOptions,
    public etcd: PeerHandle,
  ) {}

  /** The running apiserver (throws before the first start). */
  get api(): PeerHandle {
    if (!this.kube) throw new Error('the own kube-apiserver is not started');
    return this.kube;
  }

  get kubeconfig(): string {
    return this.api.endpoints.kubeconfig!;
  }

  /** The admin's bearer token (a secret that must not reach the bridge's log). */
  get token(): string {
    return this.api.endpoints.token!;
  }

  async startKube(): Promise<void> {
    this.kube = await kubePeer.start(this.kubeOptions);
  }

  async startEtcd(): Promise<void> {
    this.etcd = await etcdPeer.start(this.etcdOptions);
  }

  /** Stops both; an apiserver a test froze (SIGSTOP) is resumed first so that it can stop. */
  async stop(): Promise<void> {
    if (this.kube) {
      try {
        process.kill(-this.kube.pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await this.kube.stop().catch(() => {});
    }
    await this.etcd.stop().catch(() => {});
  }
}

/** Starts an etcd, then a kube-apiserver on it; `extraArgs`: more kube-apiserver flags. */
export async function ownKube(dir: string, opts: { extraArgs?: string[] } = {}): Promise<OwnKube> {
  const etcdOptions = { dataDir: join(dir, 'etcd'), clientPort: await freePort(), peerPort: await freePort() };
  const etcd = await etcdPeer.start(etcdOptions);
  const own = new OwnKube(
    etcdOptions,
    {
      dataDir: join(dir, 'kube'),
      etcdServers: etcd.endpoints.client!,
      securePort: await freePort(),
      ...(opts.extraArgs ? { extraArgs: opts.extraArgs } : {}),
    },
    etcd,
  );
  try {
    await own.startKube();
  } catch (err) {
    await own.stop();
    throw err;
  }
  return own;
}

/** A kube namespace of the shared apiserver, made for one scenario and removed after it. */
export class KubeScope {
  readonly kc = new KubeConfig();
  readonly custom: CustomObjectsApi;
  constructor(
    kubeconfig: string,
    readonly namespace: string,
  ) {
    this.kc.loadFromFile(kubeconfig);
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
  }

  async create(): Promise<void> {
    await this.kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: this.namespace } } });
  }

  async remove(): Promise<void> {
    // No namespace controller runs on the test apiserver: a deleted namespace stays Terminating
    // with its objects, which istiod keeps seeing. The ServiceEntries go first.
    await this.custom
      .deleteCollectionNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: 'serviceentries',
      })
      .catch(() => {});
    await this.kc
      .makeApiClient(CoreV1Api)
      .deleteNamespace({ name: this.namespace })
      .catch(() => {});
  }

  async list(labelSelector?: string): Promise<ServiceEntryObject[]> {
    const items: ServiceEntryObject[] = [];
    let token: string | undefined;
    do {
      const page = (await this.custom.listNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: 'serviceentries',
        limit: 500,
        ...(labelSelector ? { labelSelector } : {}),
        ...(token ? { _continue: token } : {}),
      })) as { items: ServiceEntryObject[]; metadata?: { continue?: string } };
      items.push(...page.items);
      token = page.metadata?.continue || undefined;
    } while (token);
    return items;
  }

  /** The bridge's entries: host → sorted endpoint addresses. */
  async owned(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const o of await this.list('app.kubernetes.io/managed-by=registry-bridge'))
      for (const h of o.spec.hosts ?? []) out.set(h, (o.spec.endpoints ?? []).map((e) => e.address).sort());
    return out;
  }

  /**
   * A ServiceEntry the bridge does not own; its fingerprint (see foreignFingerprint). Its
   * resourceVersion is no measure: istiod writes status to every ServiceEntry.
   */
  async createForeign(name: string, host: string): Promise<string> {
    const o = (await this.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: this.namespace,
      plural: 'serviceentries',
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'ServiceEntry',
        metadata: { name, labels: { team: 'someone-else' } },
        spec: { hosts: [host], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], resolution: 'DNS' },
      },
    })) as ServiceEntryObject;
    return foreignFingerprint(o);
  }

  async fingerprintOf(name: string): Promise<string | undefined> {
    const o = (await this.custom
      .getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: this.namespace,
        plural: 'serviceentries',
        name,
      })
      .catch(() => undefined)) as ServiceEntryObject | undefined;
    return o ? foreignFingerprint(o) : undefined;
  }
}

/**
 * What a writer other than istiod's status updates would change: spec (generation), labels,
 * annotations, and the field managers of everything but the status subresource.
 */
function foreignFingerprint(o: ServiceEntryObject): string {
  const managers = (o.metadata.managedFields ?? [])
    .filter((f) => f.subresource !== 'status')
    .map((f) => f.manager)
    .sort();
  return JSON.stringify([o.metadata.generation, o.metadata.labels, o.metadata.annotations ?? {}, managers]);
}

/** The built binary in continuous mode, its stderr kept in a file. */
export class BridgeProcess {
  private child: ChildProcess | undefined;
  private log = '';
  port = 0;

  constructor(
    private readonly configFile: string,
    private readonly logFile: string,
    private readonly env: Record<string, string> = {},
  ) {}

  async start(): Promise<void> {
    this.port = 0;
    const from = this.log.length;
    const child = spawn(process.execPath, ['dist/registry-bridge.mjs', 'sync', '-c', this.configFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...this.env },
    });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => {
      this.log += d.toString();
      const m = /"port":(\d+)[^\n]*serving \/healthz/.exec(this.log.slice(from));
      if (m && this.port === 0) this.port = Number(m[1]);
    });
    await waitUntil(async () => this.port !== 0 || child.exitCode !== null, 'the bridge serving /metrics', 60_000);
    if (child.exitCode !== null) throw new Error(`the bridge exited ${child.exitCode}:\n${this.log.slice(-2000)}`);
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  logText(): string {
    return this.log;
  }

  async metric(name: string, labels = ''): Promise<number | undefined> {
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    const re = new RegExp(`^${name}${labels ? `\\{${labels.replace(/[{}]/g, '')}\\}` : '(\\{[^}]*\\})?'} (\\S+)$`, 'm');
    const m = re.exec(text);
    return m ? Number(m[m.length - 1]) : undefined;
  }

  /** Resident set size in MiB, from /proc. */
  rssMiB(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || !this.alive) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    const code = await exited;
    await writeFile(this.logFile, this.log);
    return code;
  }
}

/** Polls until `ok` (bounded); resolves with the milliseconds it took. */
export async function waitUntil(ok: () => Promise<boolean>, what: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await ok()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The figure a scenario reports (collected for the docs' table). */
export function report(scenario: string, figures: Record<string, string | number>): void {
  const text = Object.entries(figures)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  console.log(`[fault] ${scenario}: ${text}`);
}

export interface Invariants {
  scope: KubeScope;
  bridge: BridgeProcess;
  /** Every entry of the bridge's: host → sorted endpoint addresses (nothing more, nothing less). */
  expected: Map<string, string[]>;
  /** Objects the bridge does not own, with their fingerprints when the scenario began. */
  foreign: { name: string; fingerprint: string }[];
  /** What must not appear in the bridge's log. */
  secrets: string[];
  maxRssMiB: number;
}

/** Invariants every scenario ends with. */
export async function checkInvariants(o: Invariants): Promise<{ rssMiB: number }> {
  const owned = await o.scope.owned();
  expect([...owned.keys()].sort()).toEqual([...o.expected.keys()].sort());
  for (const [host, addresses] of o.expected) expect(owned.get(host), host).toEqual(addresses);
  for (const f of o.foreign) expect(await o.scope.fingerprintOf(f.name), `foreign ${f.name}`).toBe(f.fingerprint);
  const log = o.bridge.logText();
  for (const s of o.secrets) expect(log.includes(s), 'a secret in the log').toBe(false);
  const rssMiB = Math.round(o.bridge.rssMiB());
  expect(rssMiB).toBeLessThan(o.maxRssMiB);
  return { rssMiB };
}

/**
 * Learns the bridge's host naming from what it wrote: service i has one endpoint, `address(i)`,
 * and its host is service 0's with `mark(0)` (matched case-insensitively; hosts are lower case)
 * replaced by `mark(i)`. Checks every one of the `count` services against it.
 */
export async function learnHosts(
  scope: KubeScope,
  count: number,
  address: (i: number) => string,
  mark: (i: number) => string,
): Promise<(i: number) => string> {
  const byAddress = new Map([...(await scope.owned())].map(([h, a]) => [a[0]!, h]));
  const host0 = byAddress.get(address(0))!;
  const at = host0.toLowerCase().indexOf(mark(0).toLowerCase());
  expect(at, `${mark(0)} in ${host0}`).toBeGreaterThanOrEqual(0);
  const hostOf = (i: number) => host0.slice(0, at) + mark(i).toLowerCase() + host0.slice(at + mark(0).length);
  for (let i = 0; i < count; i++) expect(byAddress.get(address(i))).toBe(hostOf(i));
  return hostOf;
}

/** The end of a scenario: its invariants checked, then its figures reported with the bridge's RSS. */
export async function finishScenario(
  scenario: string,
  invariants: Invariants,
  figures: Record<string, string | number>,
): Promise<void> {
  const { rssMiB } = await checkInvariants(invariants);
  report(scenario, { ...figures, rssMiB });
}

// ---- ZooKeeper helpers ----

/**
 * A ZooKeeper source named `zk` on `connect`, with short session, request and relist times (4s,
 * 1s, 5s); `more`: further settings (indented as under `zookeeper:`).
 */
export const zookeeperSource = (connect: string, more: string[] = []): SourceYaml => ({
  name: 'zk',
  kind: 'zookeeper',
  settings: [
    'zookeeper:',
    `  connect: ${connect}`,
    ...more,
    '  sessionTimeout: 4s',
    '  requestTimeout: 1s',
    '  relistInterval: 5s',
  ],
});

export const cb = <T>(fn: (done: (err: Error | null, v?: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

export async function zkConnect(connect: string): Promise<Client> {
  const c = zk.createClient(connect, { sessionTimeout: 30_000, spinDelay: 200 });
  const up = new Promise<void>((r) => c.once('connected', () => r()));
  c.connect();
  await up;
  return c;
}

/** java.net.URLEncoder, as Dubbo names its provider znodes. */
export function javaUrlEncode(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

export function providerZnode(iface: string, address: string, port: number): string {
  const url = `dubbo://${address}:${port}/${iface}?anyhost=true&application=demo&interface=${iface}&methods=hello&side=provider&version=1.0.0`;
  return `/dubbo/${iface}/providers/${javaUrlEncode(url)}`;
}

/** node-zookeeper-client's multi op (not in the package's typings). */
interface ZkTransaction {
  create(path: string, data: Buffer | null, acls: unknown, mode: number): ZkTransaction;
  remove(path: string, version: number): ZkTransaction;
  commit(cb: (err: Error | null) => void): void;
}
const transaction = (c: Client) => (c as unknown as { transaction(): ZkTransaction }).transaction();

/** Creates the given znodes (persistent, parents as needed) in one multi op per batch. */
export async function zkCreateAll(c: Client, paths: readonly string[]): Promise<void> {
  const parents = new Set<string>();
  for (const p of paths) {
    const parts = p.split('/').slice(1, -1);
    for (let i = 1; i <= parts.length; i++) parents.add('/' + parts.slice(0, i).join('/'));
  }
  for (const p of [...parents].sort((a, b) => a.split('/').length - b.split('/').length)) {
    await cb<string>((d) => c.mkdirp(p, d)).catch(() => {});
  }
  for (let i = 0; i < paths.length; i += 200) {
    const tx = transaction(c);
    for (const p of paths.slice(i, i + 200)) tx.create(p, null, zk.ACL.OPEN_ACL_UNSAFE, zk.CreateMode.PERSISTENT);
    await cb<void>((d) => tx.commit(d));
  }
}

export async function zkRemoveAll(c: Client, paths: readonly string[]): Promise<void> {
  for (let i = 0; i < paths.length; i += 500) {
    const tx = transaction(c);
    for (const p of paths.slice(i, i + 500)) tx.remove(p, -1);
    await cb<void>((d) => tx.commit(d));
  }
}

/** SIGKILL to a peer's process group (peers run detached), and wait until it is gone. */
export async function kill9Peer(pid: number): Promise<void> {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    process.kill(pid, 'SIGKILL');
  }
  await waitUntil(async () => !(await pidAlive(pid)), `pid ${pid} to die`, 15_000);
}

export async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch(() => '');
}

export function configYaml(lines: string[]): string {
  return lines.join('\n') + '\n';
}

/** A source of the bridge's configuration: its name, kind, and settings (lines under its own key). */
export interface SourceYaml {
  name: string;
  kind: string;
  settings: string[];
}

/**
 * The bridge's configuration in these scenarios: one source writing to `namespace` through the
 * kube sink (`sink`: more of its settings, each `, key: value`), a resync every `resync` (5s)
 * (`controller`: more controller settings, each `, key: value`), `extra` top-level sections, the
 * HTTP server on a free port.
 */
export function bridgeYaml(o: {
  source: SourceYaml;
  namespace: string;
  kubeconfig: string;
  sink?: string;
  resync?: string;
  controller?: string;
  extra?: string[];
}): string {
  return configYaml([
    'sources:',
    `  - name: ${o.source.name}`,
    `    kind: ${o.source.kind}`,
    ...o.source.settings.map((l) => `    ${l}`),
    `    targetNamespace: ${o.namespace}`,
    `sink: { kind: kube, kubeconfig: ${JSON.stringify(o.kubeconfig)}${o.sink ?? ''} }`,
    `controller: { resyncInterval: ${o.resync ?? '5s'}${o.controller ?? ''} }`,
    ...(o.extra ?? []),
    'server: { address: 127.0.0.1, port: 0 }',
  ]);
}

/** A static source named `files`: the registry file at `path`. */
export const staticSource = (path: string): SourceYaml => ({
  name: 'files',
  kind: 'static',
  settings: [`static: { path: ${JSON.stringify(path)} }`],
});
