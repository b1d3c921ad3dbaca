/**
 * istiod (pilot-discovery) built from istio.io/istio at the pseudo-version in versions.json,
 * run outside a cluster against the test kube-apiserver, on 127.0.0.1 only.
 *
 * Webhook: istiod serves /validate on its HTTPS port (15017) with the certificate given by
 * --tlsCertFile/--tlsKeyFile/--caCertFile (pilot/pkg/bootstrap/server.go hasCustomTLSCerts),
 * so start() generates a test CA + serving cert for 127.0.0.1 and registers a
 * ValidatingWebhookConfiguration with `url: https://127.0.0.1:15017/validate` and that CA.
 * It carries no istio.io/rev label, so istiod's own webhook controller leaves it alone.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { goBuild, goModDownload, goDirective, versionOf, type GoBuildSpec, type Log } from './go-build.js';
import * as etcd from './etcd.js';
import * as kube from './kube.js';
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

export const NAME = 'istiod';
const HERE = path.dirname(fileURLToPath(import.meta.url));
export const WEBHOOK_NAME = 'rb-istiod-validator';

/** The istio module version (pseudo-version) and the version string istiod reports. */
export async function istioVersion(): Promise<{ module: string; release: string }> {
  const v = await versionOf('istio');
  const sha = /-([0-9a-f]{12})$/.exec(v.version)?.[1] ?? 'unknown';
  const release = typeof v.release === 'string' ? v.release : `dev.${sha}`;
  return { module: v.version, release };
}

/** Consumer module requiring istio.io/istio at `module`, with istio's own go.sum. */
async function istioConsumer(name: string, module: string, log?: Log): Promise<{ goMod: string; goSum: string }> {
  const info = await goModDownload(`istio.io/istio@${module}`, log);
  const upstreamGoMod = await fs.readFile(info.GoMod, 'utf8');
  // The checksum database does not answer for some of istio's pseudo-version
  // dependencies here; istio's own go.sum pins the same hashes.
  const goSum = await fs.readFile(path.join(info.Dir, 'go.sum'), 'utf8');
  return {
    goMod: `module registry-bridge.test/peers/${name}\n\ngo ${goDirective(upstreamGoMod)}\n\nrequire istio.io/istio ${module}\n`,
    goSum,
  };
}

export async function buildSpec(log?: Log): Promise<GoBuildSpec> {
  const { module, release } = await istioVersion();
  const sha = /-([0-9a-f]{12})$/.exec(module)?.[1] ?? 'unknown';
  const pv = 'istio.io/istio/pkg/version';
  return {
    name: NAME,
    version: module,
    binary: 'pilot-discovery',
    recipe: 'istiod-consumer-1',
    pkg: 'istio.io/istio/pilot/cmd/pilot-discovery',
    ldflags: [
      '-s',
      '-w',
      `-X ${pv}.buildVersion=${release}`,
      `-X ${pv}.buildGitRevision=${sha}`,
      `-X ${pv}.buildStatus=Clean`,
      `-X ${pv}.buildTag=${release}`,
    ],
    source: async () => {
      const { goMod, goSum } = await istioConsumer('istiod', module, log);
      return {
        goMod,
        files: {
          'go.sum': goSum,
          'tools.go': '//go:build tools\n\npackage tools\n\nimport _ "istio.io/istio/pilot/cmd/pilot-discovery/app"\n',
        },
      };
    },
  };
}

export async function install(log?: Log): Promise<{ binary: string; version: string }> {
  const r = await goBuild(await buildSpec(log), log);
  return { binary: r.binary, version: r.version };
}

export interface IstiodStartOptions {
  dataDir: string;
  log?: Log;
  /** kubeconfig of the test kube-apiserver (kube.start's endpoints.kubeconfig). */
  kubeconfig?: string;
  /** PILOT_DEBOUNCE_AFTER (default 10ms). */
  debounceAfter?: string;
  /** Register the validating webhook (default true). */
  webhook?: boolean;
  /** Extra environment for istiod. */
  env?: Record<string, string>;
  ports?: { http?: number; https?: number; grpc?: number; monitoring?: number };
  timeoutMs?: number;
  /** deps.kube (or deps['kube-apiserver']).endpoints.kubeconfig is used when kubeconfig is not given. */
  deps?: Record<string, PeerHandle>;
}

export async function start(opts: IstiodStartOptions): Promise<PeerHandle> {
  const log = opts.log ?? (() => {});
  const kubeconfig =
    opts.kubeconfig ??
    opts.deps?.kube?.endpoints.kubeconfig ??
    opts.deps?.['kube-apiserver']?.endpoints.kubeconfig ??
    process.env.RB_KUBECONFIG;
  if (!kubeconfig) throw new Error('istiod.start needs opts.kubeconfig (from kube.start) or RB_KUBECONFIG');
  const { binary, version } = await install(log);
  const { release } = await istioVersion();
  await fs.mkdir(opts.dataDir, { recursive: true });
  const ports = { http: 8080, https: 15017, grpc: 15010, monitoring: 15014, ...opts.ports };
  const pki = await ensureServingCert(
    path.join(opts.dataDir, 'pki'),
    'istiod',
    { dns: ['istiod.istio-system.svc', 'istiod', 'localhost'], ip: ['127.0.0.1'] },
    log,
  );
  const args = [
    'discovery',
    `--kubeconfig=${kubeconfig}`,
    // Absent files: istiod falls back to the default mesh config / networks.
    `--meshConfig=${path.join(opts.dataDir, 'mesh.yaml')}`,
    `--networksConfig=${path.join(opts.dataDir, 'meshNetworks.yaml')}`,
    `--httpAddr=127.0.0.1:${ports.http}`,
    `--httpsAddr=127.0.0.1:${ports.https}`,
    `--grpcAddr=127.0.0.1:${ports.grpc}`,
    '--secureGRPCAddr=',
    `--monitoringAddr=127.0.0.1:${ports.monitoring}`,
    `--tlsCertFile=${pki.server.cert}`,
    `--tlsKeyFile=${pki.server.key}`,
    `--caCertFile=${pki.ca.cert}`,
    '--domain=cluster.local',
    '--log_output_level=default:info',
  ];
  const addedEnv: Record<string, string> = {
    POD_NAMESPACE: 'istio-system',
    POD_NAME: 'istiod-local',
    REVISION: 'default',
    // The test cluster's, never a developer's (the --kubeconfig flag wins anyway).
    KUBECONFIG: kubeconfig,
    ENABLE_CA_SERVER: 'false',
    ENABLE_LEADER_ELECTION: 'false',
    PILOT_DEBOUNCE_AFTER: opts.debounceAfter ?? '10ms',
    INJECT_ENABLED: 'false',
    ...opts.env,
  };
  await assertPortsFree('istiod', [ports.http, ports.https, ports.grpc, ports.monitoring]);
  const t0 = Date.now();
  const logFile = path.join(opts.dataDir, 'istiod.log');
  const launch: LaunchSpec = { command: binary, args, env: addedEnv, cwd: opts.dataDir, logFile };
  const proc = await spawnDetached(launch);
  const kc = kube.loadKubeConfig(kubeconfig);
  const useWebhook = opts.webhook !== false;
  const stop = async () => {
    if (useWebhook) await deleteWebhook(kc).catch(() => {});
    await stopPid(proc.pid, 15_000);
  };
  const ready = `http://127.0.0.1:${ports.http}/ready`;
  try {
    await waitFor('istiod', proc, async () => (await httpGet(ready, { timeoutMs: 2000 })).status === 200, {
      timeoutMs: opts.timeoutMs ?? 120_000,
      intervalMs: 200,
    });
    log(`istiod ${release} ready (pid ${proc.pid}) in ${Date.now() - t0} ms`);
    if (useWebhook) {
      const t1 = Date.now();
      await registerWebhook(kc, `https://127.0.0.1:${ports.https}/validate`, await fs.readFile(pki.ca.cert));
      log(`validating webhook ${WEBHOOK_NAME} active in ${Date.now() - t1} ms`);
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    name: NAME,
    version: release,
    pid: proc.pid,
    endpoints: {
      debug: `http://127.0.0.1:${ports.monitoring}`,
      xds: `127.0.0.1:${ports.grpc}`,
      ready,
      http: `http://127.0.0.1:${ports.http}`,
      webhook: `https://127.0.0.1:${ports.https}/validate`,
      module: version,
    },
    stop,
    dataDir: opts.dataDir,
    logFile,
    launch,
    ready: [{ kind: 'http', url: ready, status: 200 }],
  };
}

async function deleteWebhook(kc: k8s.KubeConfig): Promise<void> {
  const adm = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  await adm.deleteValidatingWebhookConfiguration({ name: WEBHOOK_NAME });
}

/** Registers istiod's /validate for Istio config, failurePolicy Fail, and waits until it answers. */
export async function registerWebhook(kc: k8s.KubeConfig, url: string, caPem: Buffer): Promise<void> {
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  const vwc: k8s.V1ValidatingWebhookConfiguration = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: WEBHOOK_NAME },
    webhooks: [
      {
        name: 'validation.istio.io',
        clientConfig: { url, caBundle: caPem.toString('base64') },
        rules: [
          {
            operations: ['CREATE', 'UPDATE'],
            apiGroups: ['networking.istio.io', 'security.istio.io', 'telemetry.istio.io', 'extensions.istio.io'],
            apiVersions: ['*'],
            resources: ['*'],
          },
        ],
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1', 'v1beta1'],
        timeoutSeconds: 10,
      },
    ],
  };
  await objects.patch(vwc, undefined, undefined, 'registry-bridge-peers', true, k8s.PatchStrategy.ServerSideApply);
  // The apiserver picks up webhook configurations asynchronously: probe with a dry-run
  // ServiceEntry that only istiod's validation rejects (the CRD's CEL rules accept any
  // non-wildcard host).
  const probe = {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'rb-webhook-probe', namespace: 'istio-system' },
    spec: {
      hosts: ['rb_probe!.example.com'],
      ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
      resolution: 'DNS',
    },
  };
  const deadline = Date.now() + 30_000;
  let last = '';
  for (;;) {
    try {
      await objects.create(probe, undefined, 'All');
      last = 'dry-run create accepted';
    } catch (e) {
      last = String((e as { body?: unknown }).body ?? e);
      if (last.includes('validation.istio.io')) return;
    }
    if (Date.now() > deadline) throw new Error(`istiod validating webhook not effective after 30 s: ${last}`);
    await sleep(200);
  }
}

export interface GoStack {
  etcd: PeerHandle;
  kube: PeerHandle;
  istiod: PeerHandle;
  stop(): Promise<void>;
}

/** Starts etcd → kube-apiserver (+ istio-system, CRDs) → istiod under rootDir/{etcd,kube,istiod}. */
export async function startGoStack(rootDir: string, log?: Log): Promise<GoStack> {
  const e = await etcd.start({ dataDir: path.join(rootDir, 'etcd'), ...(log ? { log } : {}) });
  let k: PeerHandle | undefined;
  try {
    k = await kube.start({
      dataDir: path.join(rootDir, 'kube'),
      etcdServers: e.endpoints.client!,
      ...(log ? { log } : {}),
    });
    const i = await start({
      dataDir: path.join(rootDir, 'istiod'),
      kubeconfig: k.endpoints.kubeconfig!,
      ...(log ? { log } : {}),
    });
    const kk = k;
    return {
      etcd: e,
      kube: kk,
      istiod: i,
      stop: async () => {
        await i.stop();
        await kk.stop();
        await e.stop();
      },
    };
  } catch (err) {
    await k?.stop();
    await e.stop();
    throw err;
  }
}

/**
 * Builds test/peers/go/xds-probe (istio's own ADS client as a stand-in sidecar) against the
 * same istio.io/istio version as istiod. Mostly a link step once istiod is built.
 */
export async function installXdsProbe(log?: Log): Promise<string> {
  const { module } = await istioVersion();
  const mainGo = await fs.readFile(path.join(HERE, 'go', 'xds-probe', 'main.go'), 'utf8');
  const r = await goBuild(
    {
      name: 'xds-probe',
      version: module,
      binary: 'xds-probe',
      recipe: `xds-probe-${createHash('sha256').update(mainGo).digest('hex').slice(0, 12)}`,
      pkg: '.',
      ldflags: ['-s', '-w'],
      source: async () => {
        const { goMod, goSum } = await istioConsumer('xds-probe', module, log);
        return { goMod, files: { 'go.sum': goSum, 'main.go': mainGo } };
      },
    },
    log,
  );
  return r.binary;
}

export interface XdsProbe {
  pid: number;
  /** Envoy-style node id; istiod's proxyID for /debug/config_dump?proxyID=… */
  nodeId: string;
  /** `<workload>.<namespace>`, the form /debug/syncz reports as proxy. */
  proxy: string;
  stop(): Promise<void>;
}

/** Connects a stand-in sidecar to istiod's xDS port; resolves once it received CDS and LDS. */
export async function startXdsProbe(opts: {
  xds: string;
  dataDir: string;
  namespace?: string;
  workload?: string;
  log?: Log;
}): Promise<XdsProbe> {
  const binary = await installXdsProbe(opts.log);
  const ns = opts.namespace ?? 'default';
  const workload = opts.workload ?? 'rb-xds-probe';
  await fs.mkdir(opts.dataDir, { recursive: true });
  const logFile = path.join(opts.dataDir, `xds-probe-${workload}.log`);
  await fs.rm(logFile, { force: true });
  const proc = await spawnDetached({
    command: binary,
    args: [`--xds=${opts.xds}`, `--namespace=${ns}`, `--workload=${workload}`],
    env: {},
    cwd: opts.dataDir,
    logFile,
  });
  let nodeId = '';
  try {
    await waitFor(
      'xds-probe',
      proc,
      async () => {
        const m = /^READY node=(\S+)/m.exec(await fs.readFile(logFile, 'utf8'));
        if (m?.[1]) nodeId = m[1];
        return !!m;
      },
      { timeoutMs: 40_000, intervalMs: 100 },
    );
  } catch (e) {
    await stopPid(proc.pid, 3000);
    throw e;
  }
  return { pid: proc.pid, nodeId, proxy: `${workload}.${ns}`, stop: () => stopPid(proc.pid, 5000) };
}
