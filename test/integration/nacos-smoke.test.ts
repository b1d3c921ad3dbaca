/**
 * Smoke test of both Nacos peers, the Java server (io.github.pig-mesh.nacos 3.1) and r-nacos:
 * register instances and read them back through the `nacos` npm SDK (v1 HTTP OpenAPI), and
 * page /nacos/v1/ns/service/list. Everything stays on loopback: instances use 127.0.0.1 and
 * reads use subscribe=false (udpPort 0), so no server ever pushes UDP to the SDK's clientIP
 * (its first non-loopback address).
 */
import { NacosNamingClient } from 'nacos';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer, peer, type NacosEndpoints } from '../peers/endpoints.js';

const quietLogger = { ...console, info() {}, debug() {}, log() {}, warn() {} } as unknown as typeof console;

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface ServiceList {
  count: number;
  doms: string[];
}

async function serviceList(ep: NacosEndpoints, pageNo: number, pageSize: number): Promise<ServiceList> {
  const url = `${ep.http}/v1/ns/service/list?pageNo=${pageNo}&pageSize=${pageSize}&groupName=DEFAULT_GROUP`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return (await res.json()) as ServiceList;
}

describe.each(['nacos', 'rnacos'] as const)('%s peer', (name) => {
  const skip = !hasPeer(name);
  let ep: NacosEndpoints;
  let client: NacosNamingClient;
  const prefix = `rb-smoke-${name}-${Date.now()}`;
  const services = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];

  beforeAll(async () => {
    if (skip) return;
    ep = peer(name);
    client = new NacosNamingClient({ logger: quietLogger, serverList: ep.serverAddr, namespace: 'public' });
    await client.ready();
  });

  afterAll(async () => {
    if (!client) return;
    for (const [i, s] of services.entries()) {
      await client.deregisterInstance(s, { ip: '127.0.0.1', port: 20880 + i } as never).catch(() => {});
    }
    (client as unknown as { close(): void }).close();
  });

  it.skipIf(skip)('listens on loopback', () => {
    expect(ep.serverAddr).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it.skipIf(skip)('registers instances and reads them back through the nacos SDK', async () => {
    for (const [i, s] of services.entries()) {
      await client.registerInstance(s, {
        instanceId: '',
        ip: '127.0.0.1',
        port: 20880 + i,
        healthy: true,
        enabled: true,
        weight: 1,
        ephemeral: true,
        clusterName: 'DEFAULT',
      });
    }
    const hosts = await eventually(
      () => client.getAllInstances(services[0]!, 'DEFAULT_GROUP', '', false),
      (h) => h.length > 0,
    );
    expect(hosts).toHaveLength(1);
    expect(hosts[0]).toMatchObject({ ip: '127.0.0.1', port: 20880 });
  });

  it.skipIf(skip)('pages /nacos/v1/ns/service/list (count is the total)', async () => {
    const first = await eventually(
      () => serviceList(ep, 1, 2),
      (l) => services.every(() => l.count >= services.length),
    );
    expect(first.count).toBeGreaterThanOrEqual(services.length);
    expect(first.doms.length).toBe(2);
    const all: string[] = [];
    for (let page = 1; page <= Math.ceil(first.count / 2); page++) all.push(...(await serviceList(ep, page, 2)).doms);
    expect(all.length).toBe(first.count);
    for (const s of services) expect(all).toContain(s);
  });
});
