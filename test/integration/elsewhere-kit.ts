/**
 * What the files on entries of other namespaces (hosts-elsewhere, ports-elsewhere) share: the
 * built binary's `sync --once` with its JSON log lines, a static registry with one service and a
 * config of its own that writes it into one namespace, and the ServiceEntries a namespace holds.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { stringify as toYaml } from 'yaml';
import { peer } from '../peers/endpoints.js';

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** `sync --once` of the built binary with `config`: its exit code, JSON log lines and whole output. */
export function runSync(
  config: string,
  kubeconfig: string = peer('kube').kubeconfig,
): Promise<{ code: number; lines: LogLine[]; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['dist/registry-bridge.mjs', 'sync', '--once', '-c', config, '--kubeconfig', kubeconfig],
      { timeout: 90_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        const output = `${stdout}${stderr}`;
        const lines = output
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as LogLine);
        resolve({ code, lines, output });
      },
    );
  });
}

export const collisions = (lines: LogLine[]) => lines.filter((l) => l.msg.startsWith('collision:'));

/** A temporary folder, the admin client of the harness's kube-apiserver, and `namespaces` created. */
export async function kubeWithNamespaces(
  prefix: string,
  namespaces: string[],
): Promise<{ dir: string; admin: KubeConfig; custom: CustomObjectsApi }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const admin = new KubeConfig();
  admin.loadFromFile(peer('kube').kubeconfig);
  const custom = admin.makeApiClient(CustomObjectsApi);
  const core = admin.makeApiClient(CoreV1Api);
  for (const name of namespaces) await core.createNamespace({ body: { metadata: { name } } });
  return { dir, admin, custom };
}

/**
 * A registry file in `dir` with one service of one instance, and a config that writes it into
 * `namespace` by a source of its own (the runs leave each other's entries alone: orphans are
 * kept); returns the config path and the host (the static source's default host template with
 * no group and namespace: `{service}.static`).
 */
export async function staticBridge(
  dir: string,
  namespace: string,
  service: string,
  instance: { protocol: string; address: string; port: number },
  extra: Record<string, unknown> = {},
): Promise<{ config: string; host: string }> {
  const registry = join(dir, `${service}.json`);
  await writeFile(
    registry,
    JSON.stringify({
      services: [
        { name: service, protocol: instance.protocol, instances: [{ address: instance.address, port: instance.port }] },
      ],
    }),
  );
  const config = join(dir, `${service}.yaml`);
  await writeFile(
    config,
    toYaml({
      sources: [{ name: service, kind: 'static', static: { path: registry }, targetNamespace: namespace }],
      sink: { kind: 'kube' },
      ...extra,
    }),
  );
  return { config, host: `${service}.static` };
}

/** The ServiceEntries of `namespace`, each as `<name> <hosts>`, sorted. */
export async function entriesOf(custom: CustomObjectsApi, namespace: string): Promise<string[]> {
  const list = (await custom.listNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1',
    namespace,
    plural: 'serviceentries',
  })) as { items: (KubernetesObject & { spec: { hosts: string[] } })[] };
  return list.items.map((o) => `${o.metadata?.name} ${o.spec.hosts.join(',')}`).sort();
}

/** Creates a ServiceEntry `name` with `spec` in `namespace`, as a user would (not the bridge's). */
export async function createEntry(
  custom: CustomObjectsApi,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await custom.createNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1',
    namespace,
    plural: 'serviceentries',
    body: { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name }, spec },
  });
}
