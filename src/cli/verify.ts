/**
 * `registry-bridge verify` and `registry-bridge trace <host>`: wiring only. Sources of the
 * expectation (what the bridge wrote): `-c` (read the registries once and synthesize, like
 * `sync --once`), `--desired` (ServiceEntry YAML, e.g. the output of `sync --once -o yaml`),
 * else the owned ServiceEntries in kube as they are.
 */
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import { buildSources } from '../controller/wiring.js';
import { ConfigError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { BridgeMetrics } from '../metrics.js';
import { loadKubeConfig } from '../sinks/kube/client.js';
import { adapterFactories } from '../sources/registry.js';
import { synthAll } from '../synth/index.js';
import { expectationOfDesired, expectationOfObject, type KubeServiceEntry } from '../verify/compare.js';
import { istiodDebugClient, tokenFromFile, tokenFromRequest, type TokenSource } from '../verify/istiod-http.js';
import { kubeProbe } from '../verify/kube-probe.js';
import { renderReport, verifyExitCode, formatDuration } from '../verify/report.js';
import type { Expectation, VerifyReport } from '../verify/types.js';
import { configDumpSource, verifyHosts, type VerifyDeps, type VerifyTarget } from '../verify/verify.js';
import { XdsProbe } from '../verify/xds-probe.js';
import type { CliIo } from './types.js';

export interface VerifyFlags {
  readonly config?: string;
  readonly desired?: string;
  readonly host?: readonly string[];
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly namespace?: string;
  readonly kube?: boolean;
  readonly istiod?: string;
  readonly tokenFile?: string;
  readonly tokenRequest?: string;
  readonly xds?: string;
  readonly probeNamespace?: string;
  readonly proxyId?: string;
  readonly istiodConfigDump?: boolean;
  readonly configDump?: readonly string[];
  readonly registryz?: string;
  readonly timeout?: string;
  readonly interval?: string;
  readonly output?: 'table' | 'json';
  readonly logLevel?: string;
}

function duration(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text);
  if (ms === undefined) throw new ConfigError(flag, `"${text}" is not a duration (e.g. 500ms, 10s, 1m)`);
  return ms;
}

async function readText(pathOrUrl: string, signal: AbortSignal): Promise<string> {
  if (/^https?:\/\//.test(pathOrUrl)) {
    const res = await fetch(pathOrUrl, { signal });
    if (res.status !== 200) throw new Error(`GET ${pathOrUrl}: HTTP ${res.status}`);
    return res.text();
  }
  return readFile(pathOrUrl, 'utf8');
}

/** Expectations from rendered ServiceEntry YAML/JSON (one or many documents, or a List). */
export function expectationsFromYaml(text: string): Expectation[] {
  const out: Expectation[] = [];
  for (const doc of parseAllDocuments(text)) {
    const value = doc.toJS() as unknown;
    const items = (value as { kind?: string; items?: unknown[] } | null)?.kind?.endsWith('List')
      ? (value as { items: unknown[] }).items
      : [value];
    for (const item of items) {
      const o = item as KubeServiceEntry & { kind?: string };
      if (o?.kind === 'ServiceEntry' && o.metadata && o.spec) out.push(expectationOfObject(o));
    }
  }
  return out;
}

interface Wired {
  deps: VerifyDeps;
  expectations: () => Promise<Expectation[]>;
  close: () => Promise<void>;
}

async function wire(flags: VerifyFlags, io: CliIo, logger: Logger, signal: AbortSignal): Promise<Wired> {
  const closers: (() => Promise<void> | void)[] = [];
  const offline = flags.registryz !== undefined || (flags.configDump?.length ?? 0) > 0;
  let kubeSettings: { kubeconfig?: string; context?: string } = {};
  let desired: (() => Promise<Expectation[]>) | undefined;

  if (flags.config) {
    const { config, baseDir } = await loadConfigFile(flags.config, adapterFactories);
    if (config.sink.kind === 'kube')
      kubeSettings = {
        ...(config.sink.kubeconfig ? { kubeconfig: config.sink.kubeconfig } : {}),
        ...(config.sink.context ? { context: config.sink.context } : {}),
      };
    const sources = buildSources(config, {
      logger,
      baseDir,
      env: io.env,
      apiVersion: 'networking.istio.io/v1',
      metrics: new BridgeMetrics(),
    });
    closers.push(() => Promise.allSettled(sources.map((s) => s.adapter.close())).then(() => {}));
    desired = async () => {
      const inputs = [];
      for (const s of sources) inputs.push({ services: (await s.adapter.list(signal)).services, options: s.synth });
      return synthAll(inputs).desired.map(expectationOfDesired);
    };
  } else if (flags.desired) {
    const text = await readFile(flags.desired, 'utf8');
    desired = async () => expectationsFromYaml(text);
  }

  const useKube = flags.kube !== false && (!offline || flags.kubeconfig !== undefined);
  const kc = useKube
    ? loadKubeConfig({
        kubeconfig: flags.kubeconfig ?? kubeSettings.kubeconfig,
        context: flags.context ?? kubeSettings.context,
      })
    : undefined;
  const kube = kc ? kubeProbe(kc, flags.namespace ? { namespace: flags.namespace } : {}) : undefined;

  let token: TokenSource | undefined;
  if (flags.tokenFile) token = tokenFromFile(flags.tokenFile);
  else if (flags.tokenRequest) {
    const [ns, sa] = flags.tokenRequest.split('/');
    if (!ns || !sa) throw new ConfigError('--token-request', 'expected <namespace>/<serviceaccount>');
    if (!kc) throw new ConfigError('--token-request', 'needs kube access');
    token = tokenFromRequest(kc, ns, sa);
  }
  const istiod = flags.istiod ? istiodDebugClient(flags.istiod, token) : undefined;

  let xds: XdsProbe | undefined;
  if (flags.xds) {
    xds = await XdsProbe.connect({ address: flags.xds, namespace: flags.probeNamespace ?? 'default' }, signal);
    closers.push(() => xds!.close());
  }

  let proxy: VerifyDeps['proxy'];
  if (!xds && flags.configDump && flags.configDump.length > 0) {
    const files = flags.configDump;
    proxy = configDumpSource((s) => Promise.all(files.map((f) => readText(f, s))), flags.probeNamespace);
  } else if (!xds && flags.istiodConfigDump && istiod && flags.proxyId) {
    const id = flags.proxyId;
    proxy = configDumpSource(
      async (s) => [await istiod.get(`/debug/config_dump?proxyID=${encodeURIComponent(id)}`, s)],
      flags.probeNamespace,
    );
  }

  const deps: VerifyDeps = {
    ...(kube ? { kube } : {}),
    ...(istiod ? { istiod } : {}),
    ...(flags.registryz && !istiod ? { registryzText: () => readFile(flags.registryz!, 'utf8') } : {}),
    ...(xds ? { xds } : {}),
    ...(proxy ? { proxy } : {}),
    ...(flags.proxyId && !xds ? { proxyId: flags.proxyId } : {}),
    clock: Date.now,
    logger,
  };

  const expectations = async (): Promise<Expectation[]> => {
    let list: Expectation[];
    if (desired) list = await desired();
    else if (kube) list = (await kube.listOwned(signal)).map((o) => expectationOfObject(o));
    else throw new ConfigError('', 'nothing to compare with: give -c <config>, --desired <file>, or kube access');
    const hosts = flags.host;
    return hosts && hosts.length > 0 ? list.filter((e) => hosts.includes(e.host)) : list;
  };

  return {
    deps,
    expectations,
    close: async () => {
      for (const c of closers.reverse()) await c();
    },
  };
}

export async function runVerify(flags: VerifyFlags, io: CliIo): Promise<number> {
  const logger = createLogger({
    level: flags.logLevel ?? 'warn',
    destination: { write: (s: string) => io.stderr.write(s) } as never,
  });
  const controller = new AbortController();
  const w = await wire(flags, io, logger, controller.signal);
  try {
    const expectations = await w.expectations();
    const missingHosts = (flags.host ?? []).filter((h) => !expectations.some((e) => e.host === h));
    for (const h of missingHosts)
      io.stderr.write(`registry-bridge: host ${h} is not among the ServiceEntries the bridge wrote\n`);
    const report = await verifyHosts(
      expectations.map((expectation) => ({ expectation })),
      w.deps,
      {
        timeoutMs: duration('--timeout', flags.timeout, 10_000),
        intervalMs: duration('--interval', flags.interval, 250),
        signal: controller.signal,
      },
    );
    io.stdout.write(flags.output === 'json' ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
    const code = verifyExitCode(report);
    return code === 0 && missingHosts.length > 0 ? 5 : code;
  } finally {
    controller.abort();
    await w.close();
  }
}

/**
 * `trace <host>`: measures from now how long each hop takes to show the host at the spec the
 * bridge wrote, printing each hop as it turns ✓.
 */
export async function runTrace(host: string, flags: VerifyFlags, io: CliIo): Promise<number> {
  const logger = createLogger({
    level: flags.logLevel ?? 'warn',
    destination: { write: (s: string) => io.stderr.write(s) } as never,
  });
  const controller = new AbortController();
  const startedAt = Date.now();
  const w = await wire({ ...flags, host: [host] }, io, logger, controller.signal);
  try {
    // The host may not be written yet: wait for it (kube) within the timeout.
    const timeoutMs = duration('--timeout', flags.timeout, 60_000);
    const intervalMs = duration('--interval', flags.interval, 50);
    let expectation: Expectation | undefined;
    for (;;) {
      expectation = (await w.expectations()).find((e) => e.host === host);
      if (expectation || Date.now() + intervalMs > startedAt + timeoutMs) break;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    if (!expectation) {
      io.stderr.write(`registry-bridge: host ${host} is not among the ServiceEntries the bridge wrote\n`);
      return 5;
    }
    const target: VerifyTarget = { expectation, writtenAt: startedAt };
    const printed = new Set<string>();
    const report: VerifyReport = await verifyHosts([target], w.deps, {
      timeoutMs: Math.max(0, startedAt + timeoutMs - Date.now()),
      intervalMs,
      signal: controller.signal,
      onRound: (r) => {
        if (flags.output === 'json') return;
        for (const hop of r.hosts[0]?.hops ?? []) {
          if (hop.status === 'ok' && !printed.has(hop.hop)) {
            printed.add(hop.hop);
            io.stdout.write(`✓ ${hop.hop.padEnd(6)} +${formatDuration(hop.latencyMs)}  ${hop.source ?? ''}\n`);
          }
        }
      },
    });
    io.stdout.write(flags.output === 'json' ? JSON.stringify(report, null, 2) + '\n' : '\n' + renderReport(report));
    return verifyExitCode(report);
  } finally {
    controller.abort();
    await w.close();
  }
}
