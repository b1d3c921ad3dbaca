import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../src/sinks/kube/client.js';

type CreateAgent = (cluster: unknown, options: Record<string, unknown>) => Agent;

describe('loadKubeConfig: connection reuse', () => {
  let dir: string;
  let path: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rb-kc-'));
    path = join(dir, 'kubeconfig');
    await writeFile(
      path,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 'not-a-real-token' } }],
        contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'ctx',
      }),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('hands every request the same keep-alive agent, and a new one when the credentials change', () => {
    const kc = loadKubeConfig({ kubeconfig: path });
    const create = (kc as unknown as { createAgent: CreateAgent }).createAgent.bind(kc);
    const cluster = kc.getCurrentCluster();
    const a = create(cluster, { rejectUnauthorized: false });
    const b = create(cluster, { rejectUnauthorized: false });
    expect(a).toBeInstanceOf(Agent);
    expect(b).toBe(a);
    expect((a as unknown as { keepAlive: boolean }).keepAlive).toBe(true);
    const rotated = create(cluster, { rejectUnauthorized: false, cert: Buffer.from('new certificate') });
    expect(rotated).not.toBe(a);
    expect(create(cluster, { rejectUnauthorized: false, cert: Buffer.from('new certificate') })).toBe(rotated);
  });
});
