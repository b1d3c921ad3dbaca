/**
 * `registry-bridge verify` and `registry-bridge trace <host>`: wiring only. Sources of the
 * expectation (what the bridge wrote): `-c` (read the registries once and synthesize, like
 * `sync --once`), `--desired` (ServiceEntry YAML, e.g. the output of `sync --once -o yaml`),
 * else the owned ServiceEntries in kube as they are. Without any of them, `--host H` looks H up
 * in the given registryz / config dumps ("is H there, and with what").
 *
 * Local files (`--desired`, `--registryz`, `--syncz`, `--config-dump`) are read and parsed once,
 * up front: a bad one is named with its line and column and makes the exit code 2, the good
 * ones are still checked, and with no live source there is one round, no waiting.
 */
import { readFile } from 'node:fs/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import { buildSources } from '../controller/wiring.js';
import { BridgeError, ConfigError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { BridgeMetrics } from '../metrics.js';
import { loadKubeConfig } from '../sinks/kube/client.js';
import { adapterFactories } from '../sources/registry.js';
import { synthAll } from '../synth/index.js';
import { expectationOfDesired, expectationOfObject, type KubeServiceEntry } from '../verify/compare.js';
import {
  istiodDebugClient,
  tokenFromFile,
  tokenFromRequest,
  type IstiodDebugClient,
  type TokenSource,
} from '../verify/istiod-http.js';
import { JsonSyntaxError } from '../verify/json-input.js';
import { kubeProbe } from '../verify/kube-probe.js';
import { hostLookup, lookupProxy, lookupRegistry, renderLookup, type SourceLookup } from '../verify/lookup.js';
import { droppedProxyText, parseConfigDump, type ProxyView } from '../verify/proxy-config.js';
import { droppedText, parseRegistryz, type RegistryzParse } from '../verify/registryz.js';
import { renderReport, verifyExitCode, formatDuration, VerifyExit } from '../verify/report.js';
import { droppedSynczText, parseSyncz, type SynczParse } from '../verify/syncz.js';
import {
  HopReadError,
  hopOrder,
  type Expectation,
  type Hop,
  type HopCheck,
  type VerifyReport,
} from '../verify/types.js';
import { configDumpSource, verifyHosts, type Saved, type VerifyDeps, type VerifyTarget } from '../verify/verify.js';
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
  readonly probeDnsCapture?: boolean;
  readonly proxyId?: string;
  readonly istiodConfigDump?: boolean;
  readonly configDump?: readonly string[];
  readonly registryz?: string;
  readonly syncz?: string;
  readonly timeout?: string;
  readonly interval?: string;
  readonly output?: 'table' | 'json';
  readonly logLevel?: string;
}

/** A local input file that cannot be used: exit 2, named with its line and column when known. */
export class LocalInputError extends BridgeError {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('config', `${file}${message.startsWith(':') ? '' : ': '}${message}`, options);
    this.file = file;
    this.name = 'LocalInputError';
  }
}

function duration(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text);
  if (ms === undefined) throw new ConfigError(flag, `"${text}" is not a duration (e.g. 500ms, 10s, 1m)`);
  return ms;
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** Reads a local file; a missing, unreadable or directory path is a LocalInputError naming it. */
async function readLocal(flag: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory, not a file'
          : code === 'EACCES'
            ? 'permission denied'
            : (err as Error).message;
    throw new LocalInputError(file, `${why} (${flag})`, { cause: err });
  }
}

/** A parser's error on a local file, as file:line:column: reason. */
function localError(file: string, err: unknown): LocalInputError {
  if (err instanceof LocalInputError) return err;
  if (err instanceof JsonSyntaxError)
    return new LocalInputError(file, `:${err.line}:${err.column}: not JSON: ${err.reason}`, { cause: err });
  return new LocalInputError(file, err instanceof Error ? err.message : String(err), { cause: err });
}

async function readHttp(url: string, signal: AbortSignal): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal });
  } catch (err) {
    throw new HopReadError(`GET ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (res.status !== 200) throw new HopReadError(`GET ${url}: HTTP ${res.status}`, { status: res.status });
  return res.text();
}

/**
 * Expectations from rendered ServiceEntry YAML/JSON (one or many documents, or a List). Fails
 * closed: a syntax error (with line and column), a sequence, an empty file, a ServiceEntry
 * without name, namespace or hosts, or no ServiceEntry at all is an error naming `file`.
 */
export function expectationsFromYaml(text: string, file = 'desired'): Expectation[] {
  const out: Expectation[] = [];
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  let other = 0;
  list.forEach((doc, d) => {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      const reason = (err.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      throw new LocalInputError(file, `${pos ? `:${pos.line}:${pos.col}: ` : ''}not YAML: ${reason}`);
    }
    const value = doc.toJS() as unknown;
    if (value === null || value === undefined) return; // an empty document between ---
    const where = list.length > 1 ? `document ${d + 1}: ` : '';
    if (Array.isArray(value))
      throw new LocalInputError(
        file,
        `${where}is a YAML sequence; expected ServiceEntry documents (apiVersion, kind, metadata, spec) or a List`,
      );
    if (typeof value !== 'object')
      throw new LocalInputError(
        file,
        `${where}is a scalar (${JSON.stringify(value).slice(0, 40)}), not a ServiceEntry`,
      );
    const v = value as { kind?: unknown; items?: unknown };
    const items = typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items) ? v.items : [value];
    items.forEach((item, i) => {
      const o = item as Partial<KubeServiceEntry> & { kind?: unknown };
      const at = `${where}${items.length > 1 || item !== value ? `item ${i}: ` : ''}`;
      if (o?.kind !== 'ServiceEntry') {
        other++;
        return;
      }
      const name = o.metadata?.name;
      const namespace = o.metadata?.namespace;
      const hosts = o.spec?.hosts;
      if (typeof name !== 'string' || !name)
        throw new LocalInputError(file, `${at}a ServiceEntry without metadata.name`);
      if (typeof namespace !== 'string' || !namespace)
        throw new LocalInputError(file, `${at}ServiceEntry ${name} has no metadata.namespace`);
      if (!Array.isArray(hosts) || typeof hosts[0] !== 'string' || !hosts[0])
        throw new LocalInputError(file, `${at}ServiceEntry ${namespace}/${name} has no spec.hosts`);
      if (o.spec?.ports !== undefined && !Array.isArray(o.spec.ports))
        throw new LocalInputError(file, `${at}ServiceEntry ${namespace}/${name}: spec.ports is not a list`);
      for (const p of o.spec?.ports ?? [])
        if (typeof p?.number !== 'number')
          throw new LocalInputError(file, `${at}ServiceEntry ${namespace}/${name}: a port without a number`);
      out.push(expectationOfObject(o as KubeServiceEntry));
    });
  });
  if (out.length === 0)
    throw new LocalInputError(
      file,
      other > 0
        ? `holds no ServiceEntry (${other} object(s) of other kinds): nothing to verify`
        : 'holds no ServiceEntry (empty): nothing to verify',
    );
  return out;
}

interface Wired {
  deps: VerifyDeps;
  /** Undefined: no source of expectations (only lookups are possible). */
  expectations: (() => Promise<Expectation[]>) | undefined;
  /** Whether expectations can change over time (kube): trace waits for the host to appear. */
  expectationsLive: boolean;
  /** Whether any hop is read live (kube, istiod, xDS, a config dump URL): else one round. */
  live: boolean;
  /** Local files that could not be used, one message each. */
  problems: LocalInputError[];
  /** Parsed local files, for lookups. */
  registryz?: Saved<RegistryzParse>;
  dumps: { file: string; view: ProxyView }[];
  close: () => Promise<void>;
}

type Closers = (() => Promise<void> | void)[];

interface DesiredSource {
  desired?: () => Promise<Expectation[]>;
  kubeSettings: { kubeconfig?: string; context?: string };
}

/** What the bridge wrote: `-c` (the registries, read once per check, concurrently) or `--desired`. */
async function desiredSource(
  flags: VerifyFlags,
  io: CliIo,
  logger: Logger,
  signal: AbortSignal,
  closers: Closers,
): Promise<DesiredSource> {
  if (flags.config) {
    const { config, baseDir } = await loadConfigFile(flags.config, adapterFactories);
    const kubeSettings =
      config.sink.kind === 'kube'
        ? {
            ...(config.sink.kubeconfig ? { kubeconfig: config.sink.kubeconfig } : {}),
            ...(config.sink.context ? { context: config.sink.context } : {}),
          }
        : {};
    const sources = buildSources(config, {
      logger,
      baseDir,
      env: io.env,
      apiVersion: 'networking.istio.io/v1',
      metrics: new BridgeMetrics(),
    });
    closers.push(() => Promise.allSettled(sources.map((s) => s.adapter.close())).then(() => {}));
    const desired = async () => {
      // Every source at once: the slowest registry sets the time, not their sum.
      const inputs = await Promise.all(
        sources.map(async (s) => ({ services: (await s.adapter.list(signal)).services, options: s.synth })),
      );
      return synthAll(inputs).desired.map(expectationOfDesired);
    };
    return { desired, kubeSettings };
  }
  if (flags.desired) {
    const file = flags.desired;
    const list = expectationsFromYaml(await readLocal('--desired', file), file);
    return { desired: () => Promise.resolve(list), kubeSettings: {} };
  }
  return { kubeSettings: {} };
}

interface LocalInputs {
  problems: LocalInputError[];
  savedRegistryz?: Saved<RegistryzParse>;
  savedSyncz?: Saved<SynczParse>;
  dumps: { file: string; text: string; view: ProxyView }[];
}

/** Reads and parses every local file once; each bad one is a problem of its own. */
async function readLocalInputs(flags: VerifyFlags): Promise<LocalInputs> {
  const out: LocalInputs = { problems: [], dumps: [] };
  const failed = (file: string, err: unknown) => {
    const e = localError(file, err);
    out.problems.push(e);
    return { ok: false as const, source: file, error: new HopReadError(e.message, { final: true }) };
  };
  if (flags.registryz !== undefined) {
    const file = flags.registryz;
    try {
      const parsed = parseRegistryz(await readLocal('--registryz', file));
      out.savedRegistryz = { ok: true, source: file, value: parsed };
      // A local file with unreadable elements fails closed: each named, the rest still checked.
      for (const d of parsed.droppedElements) out.problems.push(new LocalInputError(file, droppedText(d)));
    } catch (err) {
      out.savedRegistryz = failed(file, err);
    }
  }
  if (flags.syncz !== undefined) {
    const file = flags.syncz;
    try {
      const parsed = parseSyncz(await readLocal('--syncz', file));
      if (parsed.proxies.length === 0 && parsed.dropped === 0) throw new Error('lists no proxy: nothing to check');
      // Each unreadable element named, as for registryz; the rest still checked.
      for (const d of parsed.droppedElements) out.problems.push(new LocalInputError(file, droppedSynczText(d)));
      out.savedSyncz = { ok: true, source: file, value: parsed };
    } catch (err) {
      out.savedSyncz = failed(file, err);
    }
  }
  for (const file of (flags.configDump ?? []).filter((f) => !isUrl(f))) {
    try {
      const text = await readLocal('--config-dump', file);
      const view = parseConfigDump(text);
      if (view.clusters.size === 0 && view.listeners.length === 0 && view.routes.size === 0 && !view.endpoints)
        throw new Error('holds no clusters, listeners or routes: nothing to check');
      for (const d of view.droppedElements) out.problems.push(new LocalInputError(file, droppedProxyText(d)));
      out.dumps.push({ file, text, view });
    } catch (err) {
      out.problems.push(localError(file, err));
    }
  }
  return out;
}

/** istiod's debug endpoint with the bearer token asked for, if any. */
function istiodAccess(flags: VerifyFlags, kc: KubeConfig | undefined): IstiodDebugClient | undefined {
  if (flags.istiod === undefined) return undefined;
  if (!isUrl(flags.istiod))
    throw new ConfigError(
      '--istiod',
      `"${flags.istiod}" is not an http(s) URL (for saved files use --registryz, --syncz, --config-dump)`,
    );
  let token: TokenSource | undefined;
  if (flags.tokenFile) token = tokenFromFile(flags.tokenFile);
  else if (flags.tokenRequest) {
    const [ns, sa] = flags.tokenRequest.split('/');
    if (!ns || !sa) throw new ConfigError('--token-request', 'expected <namespace>/<serviceaccount>');
    if (!kc) throw new ConfigError('--token-request', 'needs kube access');
    token = tokenFromRequest(kc, ns, sa);
  }
  return istiodDebugClient(flags.istiod, token);
}

/** The proxy whose sync status to check: --proxy-id, or the only one a saved syncz lists. */
function proxyIdOf(flags: VerifyFlags, local: LocalInputs, live: boolean): string | undefined {
  const saved = local.savedSyncz;
  if (flags.proxyId !== undefined || !saved?.ok || live) return flags.proxyId;
  const ids = saved.value.proxies.map((p) => p.proxy);
  if (ids.length === 1) return ids[0];
  if (ids.length === 0) throw new LocalInputError(flags.syncz ?? '', 'lists no readable proxy: give --proxy-id');
  throw new ConfigError(
    '--proxy-id',
    `${flags.syncz} lists ${ids.length} proxies (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', …' : ''}): name the one to check`,
  );
}

/** The proxy hop's source when there is no probe: config dumps (files, admin URLs) or istiod's. */
function proxySourceOf(
  flags: VerifyFlags,
  local: LocalInputs,
  istiod: IstiodDebugClient | undefined,
  proxyId: string | undefined,
): VerifyDeps['proxy'] {
  const urls = (flags.configDump ?? []).filter(isUrl);
  if ((flags.configDump?.length ?? 0) > 0) {
    const texts = local.dumps.map((d) => d.text);
    if (texts.length === 0 && urls.length === 0)
      return () =>
        Promise.reject(new HopReadError('no --config-dump could be read (each is named above)', { final: true }));
    return configDumpSource(
      async (s) => [...texts, ...(await Promise.all(urls.map((u) => readHttp(u, s))))],
      flags.probeNamespace,
    );
  }
  if (flags.istiodConfigDump && istiod && proxyId) {
    return configDumpSource(
      async (s) => [await istiod.get(`/debug/config_dump?proxyID=${encodeURIComponent(proxyId)}`, s)],
      flags.probeNamespace,
    );
  }
  return undefined;
}

async function wire(flags: VerifyFlags, io: CliIo, logger: Logger, signal: AbortSignal): Promise<Wired> {
  const closers: Closers = [];
  const offline = flags.registryz !== undefined || flags.syncz !== undefined || (flags.configDump?.length ?? 0) > 0;
  const { desired, kubeSettings } = await desiredSource(flags, io, logger, signal, closers);
  const local = await readLocalInputs(flags);

  const useKube = flags.kube !== false && (!offline || flags.kubeconfig !== undefined);
  const kc = useKube
    ? loadKubeConfig({
        kubeconfig: flags.kubeconfig ?? kubeSettings.kubeconfig,
        context: flags.context ?? kubeSettings.context,
        env: io.env,
      })
    : undefined;
  const kube = kc ? kubeProbe(kc, flags.namespace ? { namespace: flags.namespace } : {}) : undefined;
  const istiod = istiodAccess(flags, kc);
  const proxyId = proxyIdOf(flags, local, istiod !== undefined || flags.xds !== undefined);

  let xds: XdsProbe | undefined;
  if (flags.xds) {
    const probe = await XdsProbe.connect(
      {
        address: flags.xds,
        namespace: flags.probeNamespace ?? 'default',
        ...(flags.probeDnsCapture ? { dnsCapture: true } : {}),
      },
      signal,
    );
    xds = probe;
    closers.push(() => probe.close());
  }
  const proxy = xds ? undefined : proxySourceOf(flags, local, istiod, proxyId);

  const deps: VerifyDeps = {
    ...(kube ? { kube } : {}),
    ...(istiod ? { istiod } : {}),
    ...(local.savedRegistryz && !istiod ? { savedRegistryz: local.savedRegistryz } : {}),
    ...(local.savedSyncz && !istiod ? { savedSyncz: local.savedSyncz } : {}),
    ...(xds ? { xds } : {}),
    ...(proxy ? { proxy } : {}),
    ...(proxyId && !xds ? { proxyId } : {}),
    clock: Date.now,
    logger,
  };

  let expectations: Wired['expectations'];
  if (desired || kube) {
    expectations = async () => {
      const list = desired ? await desired() : (await kube!.listOwned(signal)).map((o) => expectationOfObject(o));
      const hosts = flags.host;
      return hosts && hosts.length > 0 ? list.filter((e) => hosts.includes(e.host)) : list;
    };
  }

  return {
    deps,
    expectations,
    expectationsLive: !desired && kube !== undefined,
    live: kube !== undefined || istiod !== undefined || xds !== undefined || (flags.configDump ?? []).some(isUrl),
    problems: local.problems,
    ...(local.savedRegistryz ? { registryz: local.savedRegistryz } : {}),
    dumps: local.dumps.map(({ file, view }) => ({ file, view })),
    close: async () => {
      for (const c of closers.reverse()) await c();
    },
  };
}

function loggerFor(flags: VerifyFlags, io: CliIo): Logger {
  return createLogger({
    level: flags.logLevel ?? 'warn',
    destination: { write: (s: string) => io.stderr.write(s) } as never,
  });
}

function reportProblems(problems: readonly LocalInputError[], io: CliIo): void {
  for (const p of problems) io.stderr.write(`registry-bridge: ${p.message}\n`);
}

/** Runs `body` with the wiring; local-file errors found while wiring exit 2, naming the file. */
async function withWiring(
  flags: VerifyFlags,
  io: CliIo,
  body: (w: Wired, signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const controller = new AbortController();
  let w: Wired;
  try {
    w = await wire(flags, io, loggerFor(flags, io), controller.signal);
  } catch (err) {
    if (err instanceof LocalInputError) {
      reportProblems([err], io);
      return VerifyExit.BadInput;
    }
    throw err;
  }
  try {
    return await body(w, controller.signal);
  } finally {
    controller.abort();
    await w.close();
  }
}

/** `--host H` with no expectation source: is H in the given registryz / config dumps, and with what. */
async function runLookup(hosts: readonly string[], w: Wired, flags: VerifyFlags, io: CliIo, signal: AbortSignal) {
  const sources: ((host: string) => SourceLookup)[] = [];
  if (w.deps.istiod) {
    const source = `${w.deps.istiod.baseUrl}/debug/registryz`;
    let parsed: RegistryzParse;
    try {
      parsed = parseRegistryz(await w.deps.istiod.get('/debug/registryz', signal));
    } catch (err) {
      // One read, no retry: unreachable, 401 or 403 is "could not be checked".
      io.stderr.write(`registry-bridge: ${err instanceof Error ? err.message : String(err)}\n`);
      return VerifyExit.Unchecked;
    }
    sources.push((h) => lookupRegistry(h, source, parsed.entries, parsed.droppedElements));
  } else if (w.registryz?.ok) {
    const r = w.registryz;
    sources.push((h) => lookupRegistry(h, r.source, r.value.entries, r.value.droppedElements));
  }
  for (const d of w.dumps) sources.push((h) => lookupProxy(h, d.file, d.view));
  if (sources.length === 0) {
    reportProblems(w.problems, io);
    if (w.problems.length > 0) return VerifyExit.BadInput;
    throw new ConfigError('', 'nothing to look the host up in: give --registryz, --istiod or --config-dump');
  }
  const results = [...new Set(hosts)].map((h) =>
    hostLookup(
      h,
      sources.map((s) => s(h)),
    ),
  );
  io.stdout.write(flags.output === 'json' ? JSON.stringify(results, null, 2) + '\n' : renderLookup(results));
  reportProblems(w.problems, io);
  if (w.problems.length > 0) return VerifyExit.BadInput;
  return results.every((r) => r.found) ? VerifyExit.Ok : VerifyExit.PropagationFailed;
}

const nothingToCompare = () =>
  new ConfigError('', 'nothing to compare with: give -c <config>, --desired <file>, or kube access');

/** The exit code: a bad local file (2) first, then what the report says. */
function exitCode(report: VerifyReport, w: Wired, missingHosts: number): number {
  if (w.problems.length > 0) return VerifyExit.BadInput;
  const code = verifyExitCode(report);
  return code === VerifyExit.Ok && missingHosts > 0 ? VerifyExit.PropagationFailed : code;
}

export async function runVerify(flags: VerifyFlags, io: CliIo): Promise<number> {
  return withWiring(flags, io, async (w, signal) => {
    if (!w.expectations) {
      if (flags.host && flags.host.length > 0) return runLookup(flags.host, w, flags, io, signal);
      throw nothingToCompare();
    }
    const expectations = await w.expectations();
    const missingHosts = (flags.host ?? []).filter((h) => !expectations.some((e) => e.host === h));
    for (const h of missingHosts)
      io.stderr.write(`registry-bridge: host ${h} is not among the ServiceEntries the bridge wrote\n`);
    if (expectations.length === 0 && missingHosts.length === 0) {
      // Nothing to check is never a pass.
      io.stderr.write(
        `registry-bridge: nothing to verify: ${flags.config ? 'the registries list' : 'kube holds'} no ServiceEntry${flags.namespace ? ` in namespace ${flags.namespace}` : ''} managed by registry-bridge\n`,
      );
      return VerifyExit.BadInput;
    }
    const report = await verifyHosts(
      expectations.map((expectation) => ({ expectation })),
      w.deps,
      {
        timeoutMs: w.live ? duration('--timeout', flags.timeout, 10_000) : 0,
        intervalMs: duration('--interval', flags.interval, 250),
        signal,
      },
    );
    io.stdout.write(flags.output === 'json' ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
    reportProblems(w.problems, io);
    return exitCode(report, w, missingHosts.length);
  });
}

const isTty = (io: CliIo) => (io.stdout as { isTTY?: boolean }).isTTY === true;

/** One line per hop for trace: ✓ when it resolved, ✗/! with the reason when it failed for good. */
function hopLine(hop: HopCheck): string {
  const mark = hop.status === 'ok' ? '✓' : hop.status === 'missing' || hop.status === 'differs' ? '✗' : '!';
  const what =
    hop.status === 'ok'
      ? `+${formatDuration(hop.latencyMs)}  ${hop.source ?? ''}`
      : `${hop.status}: ${hop.detail.join('; ')}`;
  return `${mark} ${hop.hop.padEnd(6)} ${what}`.trimEnd();
}

/** The progress line on a terminal: every hop's state and the time waited. */
function progressLine(host: string, hops: readonly HopCheck[], elapsedMs: number): string {
  const state = hopOrder
    .map((name: Hop) => {
      const h = hops.find((x) => x.hop === name);
      // missing: still waiting; differs or a failure for good: ✗; unreadable: !
      const s = !h
        ? '…'
        : h.status === 'ok'
          ? '✓'
          : h.status === 'skipped'
            ? '-'
            : h.status === 'missing' && !h.final
              ? '…'
              : h.status === 'missing' || h.status === 'differs'
                ? '✗'
                : '!';
      return `${name} ${s}`;
    })
    .join('  ');
  return `${host}  ${state}  (${formatDuration(elapsedMs)})`;
}

/**
 * `trace <host>`: measures from now how long each hop takes to show the host at the spec the
 * bridge wrote, printing each hop as it resolves (and, on a terminal, a progress line). Stops as
 * soon as a hop fails in a way waiting cannot repair.
 */
export async function runTrace(host: string, flags: VerifyFlags, io: CliIo): Promise<number> {
  const startedAt = Date.now();
  return withWiring({ ...flags, host: [host] }, io, async (w, signal) => {
    if (!w.expectations) return runLookup([host], w, flags, io, signal);
    const timeoutMs = w.live ? duration('--timeout', flags.timeout, 60_000) : 0;
    const intervalMs = duration('--interval', flags.interval, 50);
    const tty = isTty(io) && flags.output !== 'json';
    let progress = '';
    const clearProgress = () => {
      if (progress) io.stdout.write('\r\x1b[K');
      progress = '';
    };
    const showProgress = (line: string) => {
      if (!tty) return;
      io.stdout.write(`\r\x1b[K${line}`);
      progress = line;
    };
    // The host may not be written yet: wait for it (kube) within the timeout; a fixed list
    // (--desired, -c) is read once.
    let expectation: Expectation | undefined;
    for (;;) {
      expectation = (await w.expectations()).find((e) => e.host === host);
      if (expectation || !w.expectationsLive || Date.now() + intervalMs > startedAt + timeoutMs) break;
      showProgress(`${host}  waiting for the ServiceEntry in kube  (${formatDuration(Date.now() - startedAt)})`);
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    clearProgress();
    if (!expectation) {
      io.stderr.write(`registry-bridge: host ${host} is not among the ServiceEntries the bridge wrote\n`);
      reportProblems(w.problems, io);
      return w.problems.length > 0 ? VerifyExit.BadInput : VerifyExit.PropagationFailed;
    }
    const target: VerifyTarget = { expectation, writtenAt: startedAt };
    const printed = new Set<string>();
    const report: VerifyReport = await verifyHosts([target], w.deps, {
      timeoutMs: Math.max(0, startedAt + timeoutMs - Date.now()),
      intervalMs,
      signal,
      onRound: (r) => {
        if (flags.output === 'json') return;
        const hops = r.hosts[0]?.hops ?? [];
        for (const hop of hops) {
          const done = hop.status === 'ok' || hop.final === true;
          if (done && !printed.has(hop.hop)) {
            printed.add(hop.hop);
            clearProgress();
            io.stdout.write(hopLine(hop) + '\n');
          }
        }
        showProgress(progressLine(host, hops, Date.now() - startedAt));
      },
    });
    clearProgress();
    io.stdout.write(flags.output === 'json' ? JSON.stringify(report, null, 2) + '\n' : '\n' + renderReport(report));
    reportProblems(w.problems, io);
    return exitCode(report, w, 0);
  });
}
