/**
 * Dubbo 3's metadata report in Nacos's config service: which interfaces (version, group) a
 * Dubbo application provides, for its application-level registration (`register-mode=instance`
 * or `all`). What Dubbo 3.3 writes there (NacosMetadataReport, in the Nacos namespace of the
 * registry URL):
 *
 * - one service definition per exported interface: dataId
 *   `<interface>:<version>:<group>:provider:<application>` (MetadataIdentifier, empty version or
 *   group left blank, so always five `:`-separated parts), group `dubbo` (the metadata report's
 *   group), content the definition JSON;
 * - the service-name mapping: dataId `<interface>`, group `mapping`, content the comma-separated
 *   applications (what consumers read; it names no version or group, so it is not read here);
 * - the application's MetadataInfo (dataId `<application>`, group `<revision>`) only with
 *   `metadata-type=remote`; by default (`dubbo.metadata.storage-type=local`) there is none.
 *
 * The definitions of one application are found with one config search (the dataId suffix
 * `:provider:<application>`), and their dataIds alone say interface, version and group: no
 * config content is read.
 */
import type { DubboIdentity } from '../dubbo/naming.js';

/** The identity a definition dataId names, when it is the definition of `application`'s provider. */
export function parseDefinitionDataId(dataId: string, application: string): DubboIdentity | undefined {
  const suffix = `:provider:${application}`;
  if (application === '' || !dataId.endsWith(suffix)) return undefined;
  const parts = dataId.slice(0, -suffix.length).split(':');
  if (parts.length !== 3) return undefined;
  const [iface = '', version = '', group = ''] = parts;
  if (!/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(iface)) return undefined;
  return { interface: iface, version, group };
}

/** One page of a config search: the dataIds and groups it lists, and the total the server counts. */
export interface ConfigSearchPage {
  readonly items: readonly { readonly dataId: string; readonly group: string }[];
  readonly total: number;
}

/**
 * A config search answer: `GET /v3/admin/cs/config/list` (Nacos 3: `{code: 0, data: {totalCount,
 * pageItems: [{dataId, groupName}]}}`) or `GET /v1/cs/configs?search=…` (Nacos 1.x/2.x and
 * r-nacos: `{totalCount, pageItems: [{dataId, group}]}`).
 */
export function parseConfigSearchPage(raw: unknown): ConfigSearchPage | Error {
  if (typeof raw !== 'object' || raw === null) return new Error('config search answer is not a JSON object');
  const o = raw as Record<string, unknown>;
  const page = 'data' in o && 'code' in o ? o.data : o;
  if (typeof page !== 'object' || page === null) return new Error('config search answer has no data');
  const p = page as Record<string, unknown>;
  if (!Array.isArray(p.pageItems)) return new Error('config search answer has no pageItems list');
  const total = Number(p.totalCount);
  if (!Number.isInteger(total) || total < 0) return new Error('config search answer has no totalCount');
  const items: { dataId: string; group: string }[] = [];
  for (const it of p.pageItems as unknown[]) {
    if (typeof it !== 'object' || it === null) continue;
    const e = it as Record<string, unknown>;
    const group = typeof e.groupName === 'string' ? e.groupName : e.group;
    if (typeof e.dataId === 'string' && typeof group === 'string') items.push({ dataId: e.dataId, group });
  }
  return { items, total };
}

/**
 * The interfaces one application provides according to the definitions a search listed (only
 * those of `group`), sorted and without duplicates.
 */
export function interfacesOfDefinitions(
  items: readonly { readonly dataId: string; readonly group: string }[],
  application: string,
  group: string,
): DubboIdentity[] {
  const byKey = new Map<string, DubboIdentity>();
  for (const it of items) {
    if (it.group !== group) continue;
    const id = parseDefinitionDataId(it.dataId, application);
    if (id) byKey.set(`${id.interface}\u0000${id.version}\u0000${id.group}`, id);
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, id]) => id);
}

/**
 * What the cache keys an application's definitions on: its instances' `dubbo.metadata.revision`
 * values (sorted, distinct). Dubbo derives the revision from the application's MetadataInfo (the
 * services it exports, with version, group, protocol and port), so an application whose
 * exported services change gets a new revision, and an unchanged one keeps it across restarts.
 */
export function revisionsKey(instances: readonly { readonly metadata: Readonly<Record<string, string>> }[]): string {
  return [...new Set(instances.map((i) => i.metadata['dubbo.metadata.revision'] ?? ''))].sort().join(',');
}

/** An application's definitions as last searched. */
interface DefinitionsEntry {
  /** The revisions they were last searched for (see revisionsKey). */
  readonly triedRevisions: string;
  /** When that search was sent. */
  readonly at: number;
  /** What the last search that answered found (kept through a failed search). */
  readonly interfaces: readonly DubboIdentity[];
  /** Why the last search failed; undefined when it answered. */
  readonly error?: string;
}

/** How a server is searched: the Nacos 3 admin API, or the v1 config search. */
type SearchApi = 'v3' | 'v1';

/** Answers of a search that mean "this API is not served here". */
const UNSERVED = new Set([404, 405, 410, 501]);

/** What a search answered, or that the API it asked is not served. */
type SearchResult = { readonly items: ConfigSearchPage['items'] } | 'unserved';

export interface DefinitionsOptions {
  readonly source: string;
  /** Config group of the definitions (the metadata report's group; Dubbo's default `dubbo`). */
  readonly group: string;
  readonly log: {
    info(o: object, msg: string): void;
    warn(o: object, msg: string): void;
    debug(o: object, msg: string): void;
  };
  readonly now: () => number;
  /** An application whose search found nothing, or failed, is searched again after this long. */
  readonly retryMs: number;
  readonly concurrency: number;
}

/** What a request to the server answered (NacosHttp's response, as much as needed here). */
export interface SearchResponse {
  readonly status: number;
  readonly body: string;
  readonly server: string;
}
export type SearchRequest = (
  path: string,
  params: Record<string, string>,
  signal: AbortSignal,
) => Promise<SearchResponse>;

/** Pages of one search: at most this many of this size (2,000 definitions of one application). */
const PAGE_SIZE = 100;
const MAX_PAGES = 20;

/**
 * The Dubbo service definitions of the applications registered at application level in one
 * Nacos source, read from its config service and cached per application and revision: an
 * application whose instances keep their revisions costs no request on the next read. An
 * application whose search found nothing or failed is searched again on a later read (after
 * `retryMs`); a failed search keeps what the last one that answered found.
 */
export class DubboDefinitions {
  private readonly cache = new Map<string, DefinitionsEntry>();
  private api: SearchApi | undefined;
  /** v1 servers that match a blur dataId as a substring (r-nacos), not with `*` wildcards. */
  private v1Substring = false;
  /** Searches sent (each page is one request), for the figures and tests. */
  requests = 0;
  private readonly warned = new Map<string, string>();

  constructor(
    private readonly request: SearchRequest,
    private readonly o: DefinitionsOptions,
  ) {}

  /**
   * Searches the definitions of the applications of `services` (application-level, merge mode)
   * not cached for their current revisions. Never throws: a failure is kept per application.
   */
  async refresh(
    services: readonly {
      readonly key: { readonly namespace: string };
      readonly instances: readonly { readonly metadata: Readonly<Record<string, string>> }[];
      readonly applicationLevel?: { readonly application: string; readonly mode: string };
    }[],
    signal: AbortSignal,
  ): Promise<void> {
    const due = new Map<string, { namespace: string; application: string; revisions: string }>();
    const now = this.o.now();
    for (const s of services) {
      const level = s.applicationLevel;
      if (level?.mode !== 'merge') continue;
      const k = `${s.key.namespace}\u0000${level.application}`;
      const revisions = revisionsKey(s.instances);
      const e = this.cache.get(k);
      const stale =
        e === undefined ||
        e.triedRevisions !== revisions ||
        ((e.interfaces.length === 0 || e.error !== undefined) && now - e.at >= this.o.retryMs);
      if (stale) due.set(k, { namespace: s.key.namespace, application: level.application, revisions });
    }
    const jobs = [...due.entries()];
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) {
        const [k, job] = jobs[next++]!;
        const before = this.cache.get(k);
        const at = this.o.now();
        try {
          const interfaces = await this.search(job.namespace, job.application, signal);
          this.cache.set(k, { triedRevisions: job.revisions, at, interfaces });
          this.warned.delete(k);
          if (JSON.stringify(before?.interfaces ?? []) !== JSON.stringify(interfaces) || before?.error !== undefined)
            this.o.log.info(
              {
                namespace: job.namespace,
                application: job.application,
                interfaces: interfaces.map((i) => `${i.interface}:${i.version}:${i.group}`),
              },
              interfaces.length > 0
                ? 'dubbo application-level services: the Nacos metadata report names the interfaces of the application'
                : 'dubbo application-level services: the Nacos metadata report names no interface of the application',
            );
        } catch (err) {
          if (signal.aborted) throw err;
          const error = (err as Error).message;
          this.cache.set(k, { triedRevisions: job.revisions, at, interfaces: before?.interfaces ?? [], error });
          if (this.warned.get(k) !== error) {
            this.warned.set(k, error);
            this.o.log.warn(
              { namespace: job.namespace, application: job.application, err: error },
              (before?.interfaces.length ?? 0) > 0
                ? 'dubbo metadata report in Nacos could not be read; the interfaces last read stay in use'
                : 'dubbo metadata report in Nacos could not be read; the application stays on its own entry until it can',
            );
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, jobs.length) }, worker));
  }

  /** What is known of an application's interfaces (undefined: never searched). */
  known(
    namespace: string,
    application: string,
  ): { readonly interfaces: readonly DubboIdentity[]; readonly error?: string } | undefined {
    return this.cache.get(`${namespace}\u0000${application}`);
  }

  /** Forgets the applications not in `keep` (`namespace\0application`): gone from the registry. */
  retain(keep: ReadonlySet<string>): void {
    for (const k of [...this.cache.keys()]) if (!keep.has(k)) this.cache.delete(k);
  }

  /** The definitions of `application` in `namespace`, on the API the server serves. */
  private async search(namespace: string, application: string, signal: AbortSignal): Promise<DubboIdentity[]> {
    const group = this.o.group;
    if (this.api !== 'v1') {
      const got = await this.pages(
        '/v3/admin/cs/config/list',
        {
          namespaceId: namespace,
          groupName: group,
          dataId: `*:provider:${application}`,
          search: 'blur',
        },
        signal,
      );
      if (got !== 'unserved') {
        this.decide('v3');
        return interfacesOfDefinitions(got.items, application, group);
      }
      if (this.api === 'v3') throw new Error('GET /v3/admin/cs/config/list is no longer served');
    }
    // Nacos 1.x/2.x match `*` as a wildcard; r-nacos matches the dataId as a substring.
    const tenant = namespace === 'public' ? '' : namespace;
    const v1 = (dataId: string) =>
      this.pages('/v1/cs/configs', { search: 'blur', dataId, group, tenant }, signal, 'pageNo');
    const forms = this.v1Substring
      ? [`:provider:${application}`]
      : [`*:provider:${application}`, `:provider:${application}`];
    for (const [n, dataId] of forms.entries()) {
      const got = await v1(dataId);
      if (got === 'unserved')
        throw new Error(
          'the server serves no config search (GET /v3/admin/cs/config/list nor GET /v1/cs/configs?search=blur)',
        );
      this.decide('v1');
      const found = interfacesOfDefinitions(got.items, application, group);
      if (found.length > 0 || n === forms.length - 1) {
        if (n === 1 && found.length > 0) this.v1Substring = true;
        return found;
      }
    }
    return [];
  }

  private decide(api: SearchApi): void {
    if (this.api === api) return;
    this.api = api;
    this.o.log.info(
      {
        api: api === 'v3' ? 'GET /v3/admin/cs/config/list' : 'GET /v1/cs/configs?search=blur',
        group: this.o.group,
      },
      'dubbo metadata report in Nacos: config search path',
    );
  }

  /** Every page of one search (bounded), or 'unserved' when the server does not serve `path`. */
  private async pages(
    path: string,
    params: Record<string, string>,
    signal: AbortSignal,
    pageParam = 'pageNo',
  ): Promise<SearchResult> {
    const items: { dataId: string; group: string }[] = [];
    for (let pageNo = 1; pageNo <= MAX_PAGES; pageNo++) {
      this.requests++;
      this.o.log.debug({ path, ...params, pageNo }, 'dubbo metadata report: config search');
      const res = await this.request(
        path,
        { ...params, [pageParam]: String(pageNo), pageSize: String(PAGE_SIZE) },
        signal,
      );
      if (UNSERVED.has(res.status)) return 'unserved';
      if (res.status === 401 || res.status === 403)
        throw new Error(
          `${res.server} refused GET ${path} with HTTP ${res.status}: the user needs read permission on the namespace's configuration`,
        );
      let raw: unknown;
      try {
        raw = JSON.parse(res.body);
      } catch {
        raw = undefined;
      }
      if (res.status !== 200)
        throw new Error(`${res.server}: GET ${path} answered HTTP ${res.status}${short(res.body)}`);
      const code = (raw as { code?: unknown } | undefined)?.code;
      if (code !== undefined && code !== 0 && code !== 200)
        throw new Error(`${res.server}: GET ${path} answered code ${String(code)}${short(res.body)}`);
      const page = parseConfigSearchPage(raw);
      if (page instanceof Error) throw new Error(`${res.server}: GET ${path}: ${page.message}`);
      items.push(...page.items);
      if (page.items.length < PAGE_SIZE || pageNo * PAGE_SIZE >= page.total) return { items };
    }
    this.o.log.warn(
      { path, params, pages: MAX_PAGES },
      'dubbo metadata report search has more pages than are read; the rest is left out',
    );
    return { items };
  }
}

function short(body: string): string {
  const t = body.replace(/\s+/g, ' ').trim();
  return t === '' ? '' : `: ${t.length > 160 ? `${t.slice(0, 160)}…` : t}`;
}
