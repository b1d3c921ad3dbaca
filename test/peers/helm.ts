/**
 * Helm 3, built from its Go module (helm.sh/helm/v3 cmd/helm) through a consumer module, into
 *   ${REGISTRY_BRIDGE_PEERS_CACHE:-~/.cache/registry-bridge/peers}/helm-<version>/bin/helm
 * Used by the chart tests to render charts/registry-bridge (`helm template`) and lint it.
 * It is a tool, not a server: there is no start(), and it is not in the peers registry.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { cachedBinary, goBuild, goModDownload, run, type GoBuildSpec, type Log } from './go-build.js';

export const NAME = 'helm';
/** Matches the k8s.io modules (v0.34) of the kube-apiserver the harness runs. */
export const HELM_VERSION = 'v3.19.5';
const K8S_MAJOR = '1';
const K8S_MINOR = '34';

export function buildSpec(log?: Log): GoBuildSpec {
  const version = HELM_VERSION;
  const mod = 'helm.sh/helm/v3';
  return {
    name: NAME,
    version,
    binary: 'helm',
    recipe: 'helm-consumer-1',
    pkg: `${mod}/cmd/helm`,
    ldflags: [
      '-s',
      '-w',
      `-X ${mod}/internal/version.version=${version}`,
      `-X ${mod}/internal/version.gitTreeState=clean`,
      `-X ${mod}/pkg/lint/rules.k8sVersionMajor=${K8S_MAJOR}`,
      `-X ${mod}/pkg/lint/rules.k8sVersionMinor=${K8S_MINOR}`,
      `-X ${mod}/pkg/chartutil.k8sVersionMajor=${K8S_MAJOR}`,
      `-X ${mod}/pkg/chartutil.k8sVersionMinor=${K8S_MINOR}`,
    ],
    env: { CGO_ENABLED: '0' },
    source: async () => {
      const info = await goModDownload(`${mod}@${version}`, log);
      const upstreamGoMod = await fs.readFile(info.GoMod, 'utf8');
      const goLine = /^go\s+(\S+)/m.exec(upstreamGoMod)?.[1] ?? '1.24';
      return {
        goMod: `module registry-bridge.test/tools/helm\n\ngo ${goLine}\n\nrequire ${mod} ${version}\n`,
        files: {
          // Seed go.sum with the hashes helm itself pins.
          'go.sum': await fs.readFile(path.join(info.Dir, 'go.sum'), 'utf8').catch(() => ''),
          'tools.go': `//go:build tools\n\npackage tools\n\nimport _ "${mod}/cmd/helm"\n`,
        },
      };
    },
  };
}

/** Builds helm once per machine (reused afterwards); resolves with the binary's path. */
export async function install(log?: Log): Promise<{ binary: string; version: string }> {
  const r = await goBuild(buildSpec(log), log);
  return { binary: r.binary, version: r.version };
}

/** The cached binary when it is already built, else null (never builds). */
export function cachedHelm(): Promise<string | null> {
  return cachedBinary(buildSpec());
}

/** Runs helm with a private HOME-like environment (no repos, no plugins, no cache outside tmp). */
export async function helm(binary: string, args: string[], workDir: string): Promise<string> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CACHE_HOME: path.join(workDir, 'cache'),
    HELM_CONFIG_HOME: path.join(workDir, 'config'),
    HELM_DATA_HOME: path.join(workDir, 'data'),
  };
  return run(binary, args, { env });
}

export const CHART_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'charts',
  'registry-bridge',
);

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Extra helm flags, e.g. ['--skip-schema-validation']. */
  flags?: string[];
  chartDir?: string;
}

/** A rendered Kubernetes object (loosely typed: tests read what they check). */
export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
};

/** `helm template` with the given values; resolves with the YAML text. Rejects with helm's stderr. */
export async function renderChartText(binary: string, values: unknown, opts: RenderOptions = {}): Promise<string> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'rb-helm-'));
  try {
    const valuesFile = path.join(work, 'values.json');
    await fs.writeFile(valuesFile, JSON.stringify(values ?? {}));
    return await helm(
      binary,
      [
        'template',
        opts.release ?? 'rb',
        opts.chartDir ?? CHART_DIR,
        '--namespace',
        opts.namespace ?? 'registry-bridge',
        '-f',
        valuesFile,
        ...(opts.flags ?? []),
      ],
      work,
    );
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** `helm lint --strict` of the chart; resolves with helm's output, rejects when it fails. */
export async function lintChart(binary: string, chartDir: string = CHART_DIR): Promise<string> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'rb-helm-'));
  try {
    return await helm(binary, ['lint', chartDir, '--strict'], work);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** `helm template`, parsed into objects (empty documents dropped). */
export async function renderChart(binary: string, values: unknown, opts: RenderOptions = {}): Promise<KubeObject[]> {
  const text = await renderChartText(binary, values, opts);
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null && typeof o === 'object');
}

// `tsx test/peers/helm.ts` builds it (e.g. before running the chart tests offline).
if (import.meta.url === `file://${process.argv[1]}`) {
  install((m) => console.log(m)).then(
    (r) => console.log(r.binary),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
