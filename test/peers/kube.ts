/**
 * kube-apiserver built from k8s.io/kubernetes through a consumer module that requires
 * k8s.io/kubernetes vX.Y.Z and replaces every staging module (k8s.io/api, …) with v0.Y.Z.
 * The staging list is read from that version's own go.mod, so a version bump is one edit
 * of test/peers/versions.json.
 *
 * start() runs it on 127.0.0.1 against etcd, with a static admin token (group
 * system:masters), RBAC authorization, a kubeconfig at <dataDir>/kubeconfig, the namespace
 * istio-system and Istio's CRDs (from the istio module version of versions.json) applied.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {
  goBuild,
  goModDownload,
  goDirective,
  localReplaces,
  run,
  versionOf,
  type GoBuildSpec,
  type Log,
} from './go-build.js';
import {
  assertPortsFree,
  ensureServingCert,
  httpGet,
  sleep,
  spawnDetached,
  stopPid,
  waitFor,
  type PeerHandle,
} from './lib/go-peers-util.js';
import type { LaunchSpec } from './lib/types.js';

export type { PeerHandle } from './lib/go-peers-util.js';

export const NAME = 'kube-apiserver';

export async function buildSpec(log?: Log): Promise<GoBuildSpec> {
  const version = (await versionOf('kubernetes')).version; // e.g. v1.35.4
  const m = /^v1\.(\d+)\.(\d+)$/.exec(version);
  if (!m) throw new Error(`kubernetes version must look like v1.Y.Z, got ${version}`);
  const [, minor, patch] = m;
  const staging = `v0.${minor}.${patch}`;
  const cv = 'k8s.io/component-base/version';
  const clv = 'k8s.io/client-go/pkg/version';
  const vars = (pkg: string) => [
    `-X ${pkg}.gitVersion=${version}`,
    `-X ${pkg}.gitMajor=1`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
    `-X ${pkg}.buildDate=1970-01-01T00:00:00Z`,
  ];
  return {
    name: NAME,
    version,
    binary: 'kube-apiserver',
    recipe: 'kube-consumer-1',
    pkg: 'k8s.io/kubernetes/cmd/kube-apiserver',
    ldflags: ['-s', '-w', ...vars(cv), ...vars(clv)],
    source: async () => {
      const info = await goModDownload(`k8s.io/kubernetes@${version}`, log);
      const upstreamGoMod = await fs.readFile(info.GoMod, 'utf8');
      const mods = localReplaces(upstreamGoMod).filter((p) => p.startsWith('k8s.io/'));
      if (mods.length < 10) throw new Error(`found only ${mods.length} staging replaces in ${info.GoMod}`);
      const goMod = [
        'module registry-bridge.test/peers/kube-apiserver',
        '',
        `go ${goDirective(upstreamGoMod)}`,
        '',
        `require k8s.io/kubernetes ${version}`,
        '',
        'replace (',
        ...mods.map((p) => `\t${p} => ${p} ${staging}`),
        ')',
        '',
      ].join('\n');
      // Seed go.sum from upstream: the same hashes kubernetes itself pins.
      const goSum = await fs.readFile(path.join(info.Dir, 'go.sum'), 'utf8').catch(() => '');
      return {
        goMod,
        files: {
          'go.sum': goSum,
          'tools.go': '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n',
        },
      };
    },
  };
}

export async function install(log?: Log): Promise<{ binary: string; version: string }> {
  const r = await goBuild(await buildSpec(log), log);
  return { binary: r.binary, version: r.version };
}

/** Istio's CRD file from the istio module version in versions.json (module cache, read-only). */
export async function istioCrdFile(log?: Log): Promise<string> {
  const ver = (await versionOf('istio')).version;
  const info = await goModDownload(`istio.io/istio@${ver}`, log);
  return path.join(info.Dir, 'manifests', 'charts', 'base', 'files', 'crd-all.gen.yaml');
}

export interface KubeStartOptions {
  dataDir: string;
  log?: Log;
  /** etcd client URL(s); default http://127.0.0.1:12379. */
  etcdServers?: string;
  securePort?: number;
  /** Create istio-system and apply Istio's CRDs (default true). */
  istioCrds?: boolean;
  timeoutMs?: number;
  /** Extra kube-apiserver flags. */
  extraArgs?: string[];
  /** deps.etcd.endpoints.client is used when etcdServers is not given. */
  deps?: Record<string, PeerHandle>;
}

interface Pki {
  caCert: string;
  cert: string;
  key: string;
  saKey: string;
  saPub: string;
  tokenFile: string;
  token: string;
}

async function preparePki(dataDir: string, log: Log): Promise<Pki> {
  const dir = path.join(dataDir, 'pki');
  const { ca, server } = await ensureServingCert(
    dir,
    'apiserver',
    {
      dns: [
        'localhost',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ],
      ip: ['127.0.0.1'],
    },
    log,
  );
  const saKey = path.join(dir, 'sa.key');
  const saPub = path.join(dir, 'sa.pub');
  if (
    !(await fs.access(saPub).then(
      () => true,
      () => false,
    ))
  ) {
    await run('openssl', ['genrsa', '-out', saKey, '2048']);
    await run('openssl', ['rsa', '-in', saKey, '-pubout', '-out', saPub]);
  }
  const tokenFile = path.join(dir, 'tokens.csv');
  let token: string;
  try {
    token = (await fs.readFile(tokenFile, 'utf8')).split(',')[0]!.trim();
  } catch {
    token = randomBytes(24).toString('hex');
    await fs.writeFile(tokenFile, `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
  }
  return { caCert: ca.cert, cert: server.cert, key: server.key, saKey, saPub, tokenFile, token };
}

function kubeconfigYaml(server: string, caPem: string, token: string): string {
  const ca = Buffer.from(caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: rb-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${ca}`,
    'users:',
    '- name: rb-admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: rb-test',
    '  context:',
    '    cluster: rb-test',
    '    user: rb-admin',
    'current-context: rb-test',
    '',
  ].join('\n');
}

export async function start(opts: KubeStartOptions): Promise<PeerHandle> {
  const log = opts.log ?? (() => {});
  const { binary, version } = await install(log);
  await fs.mkdir(opts.dataDir, { recursive: true });
  const pki = await preparePki(opts.dataDir, log);
  const port = opts.securePort ?? 16443;
  const server = `https://127.0.0.1:${port}`;
  const args = [
    `--etcd-servers=${opts.etcdServers ?? opts.deps?.etcd?.endpoints.client ?? 'http://127.0.0.1:12379'}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${port}`,
    `--tls-cert-file=${pki.cert}`,
    `--tls-private-key-file=${pki.key}`,
    `--client-ca-file=${pki.caCert}`,
    `--token-auth-file=${pki.tokenFile}`,
    '--authorization-mode=RBAC',
    '--anonymous-auth=false',
    `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    '--service-cluster-ip-range=10.96.0.0/16',
    // No controller-manager runs: no token controller for the ServiceAccount plugin.
    '--disable-admission-plugins=ServiceAccount',
    // 127.0.0.1 is not a valid Endpoints address; nothing needs the kubernetes endpoints here.
    '--endpoint-reconciler-type=none',
    '--enable-priority-and-fairness=false',
    '--profiling=false',
    '--v=1',
    ...(opts.extraArgs ?? []),
  ];
  await assertPortsFree('kube-apiserver', [port]);
  const t0 = Date.now();
  const logFile = path.join(opts.dataDir, 'kube-apiserver.log');
  const launch: LaunchSpec = { command: binary, args, env: {}, cwd: opts.dataDir, logFile };
  const proc = await spawnDetached(launch);
  const stop = () => stopPid(proc.pid, 15_000);
  const caPem = await fs.readFile(pki.caCert);
  try {
    await waitFor(
      'kube-apiserver',
      proc,
      async () => (await httpGet(`${server}/readyz`, { ca: caPem, token: pki.token, timeoutMs: 3000 })).status === 200,
      { timeoutMs: opts.timeoutMs ?? 120_000, intervalMs: 250 },
    );
  } catch (e) {
    await stop();
    throw e;
  }
  const readyMs = Date.now() - t0;
  const kubeconfig = path.join(opts.dataDir, 'kubeconfig');
  await fs.writeFile(kubeconfig, kubeconfigYaml(server, caPem.toString(), pki.token), { mode: 0o600 });
  log(`kube-apiserver ${version} ready on ${server} (pid ${proc.pid}) in ${readyMs} ms`);
  if (opts.istioCrds !== false) {
    try {
      const t1 = Date.now();
      await applyIstioBase(kubeconfig, log);
      log(`istio-system + Istio CRDs established in ${Date.now() - t1} ms`);
    } catch (e) {
      await stop();
      throw e;
    }
  }
  return {
    name: NAME,
    version,
    pid: proc.pid,
    endpoints: { server, kubeconfig, token: pki.token, caFile: pki.caCert },
    stop,
    dataDir: opts.dataDir,
    logFile,
    launch,
  };
}

export function loadKubeConfig(kubeconfig: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc;
}

/** Creates istio-system and applies Istio's CRDs (server-side apply), then waits until Established. */
export async function applyIstioBase(kubeconfig: string, log: Log = () => {}): Promise<void> {
  const kc = loadKubeConfig(kubeconfig);
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const ssa = async (obj: k8s.KubernetesObject) =>
    objects.patch(obj, undefined, undefined, 'registry-bridge-peers', true, k8s.PatchStrategy.ServerSideApply);

  await ssa({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'istio-system' } } as k8s.KubernetesObject);

  const file = await istioCrdFile(log);
  // loadAllYaml deserializes into client-node's typed models; the object API serializes by
  // those models, so a plain parse would lose keys such as x-kubernetes-int-or-string.
  const docs = (k8s.loadAllYaml(await fs.readFile(file, 'utf8')) as Array<k8s.KubernetesObject | null>).filter(
    (o): o is k8s.KubernetesObject => !!o && o.kind === 'CustomResourceDefinition',
  );
  if (docs.length === 0) throw new Error(`no CRDs in ${file}`);
  // Each CRD is independent: apply a few at a time.
  const queue = [...docs];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let o = queue.shift(); o; o = queue.shift()) await ssa(o);
    }),
  );
  log(`applied ${docs.length} Istio CRDs from ${file}`);

  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const deadline = Date.now() + 60_000;
  for (const crd of docs) {
    const name = crd.metadata!.name!;
    for (;;) {
      const cur = await ext.readCustomResourceDefinition({ name });
      if (cur.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after 60 s`);
      await sleep(100);
    }
  }
  // Discovery must serve the group before clients (and istiod) see it.
  const cluster = kc.getCurrentCluster()!;
  const user = kc.getCurrentUser()!;
  const ca = Buffer.from(cluster.caData!, 'base64');
  for (;;) {
    const r = await httpGet(`${cluster.server}/apis/networking.istio.io/v1`, { ca, token: user.token! });
    if (r.status === 200 && r.body.includes('"serviceentries"')) break;
    if (Date.now() > deadline) throw new Error(`networking.istio.io/v1 not served after 60 s: ${r.status}`);
    await sleep(100);
  }
}
