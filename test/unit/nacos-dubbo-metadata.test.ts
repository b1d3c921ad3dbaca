/**
 * What Dubbo 3.3.5's metadata report wrote into the Nacos config service, as Nacos 3.1 and
 * r-nacos answered the config searches (test/fixtures/real-clients/nacos-dubbo-3.3.5-metadata-report.json):
 * the parsers, the per-application cache, and the synthesis of an application-level service
 * mapped to its interface.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DubboDefinitions,
  interfacesOfDefinitions,
  parseConfigSearchPage,
  parseDefinitionDataId,
  revisionsKey,
  type SearchResponse,
} from '../../adapters/nacos/dubbo-metadata.js';
import { nacosModelService } from '../../adapters/nacos/dubbo.js';
import { parseInstanceList } from '../../adapters/nacos/parse.js';
import { silentLogger } from '../../src/log.js';
import type { RegistryService } from '../../src/model/service.js';
import { defaultSynthOptions, synthAll, type SynthOptions } from '../../src/synth/index.js';

const captured = JSON.parse(
  readFileSync(new URL('../fixtures/real-clients/nacos-dubbo-3.3.5-metadata-report.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;
const answer = (prefix: string): unknown => {
  const k = Object.keys(captured).find((key) => key.startsWith(prefix));
  if (k === undefined) throw new Error(`no captured answer ${prefix}`);
  return captured[k];
};
const JAVA_V3 = answer('nacos-3.1.0 GET /v3/admin/cs/config/list?namespaceId=nm-probe1&groupName=dubbo');
const JAVA_V3_BLANK = answer('nacos-3.1.0 GET /v3/admin/cs/config/list?namespaceId=nm-probe3');
const JAVA_V3_ALL = answer('nacos-3.1.0 GET /v3/admin/cs/config/list?namespaceId=nm-probe1&search=blur (every');
const RNACOS_SUBSTRING = answer('r-nacos-0.8.8 GET /v1/cs/configs?tenant=nm-probe2&group=dubbo&dataId=:provider');
const RNACOS_WILDCARD = answer('r-nacos-0.8.8 GET /v1/cs/configs?tenant=nm-probe2&group=dubbo&dataId=*');
const APP_INSTANCES = answer('nacos-3.1.0 GET /v1/ns/instance/list?serviceName=probe-app1');

const IFACE = 'registrybridge.demo.GreetService';

describe('parseDefinitionDataId', () => {
  it.each([
    [`${IFACE}:1.2.3:gg:provider:probe-app1`, 'probe-app1', { interface: IFACE, version: '1.2.3', group: 'gg' }],
    [`${IFACE}:::provider:probe_app.3`, 'probe_app.3', { interface: IFACE, version: '', group: '' }],
    [`${IFACE}:1.2.3:gg:provider:probe-app1`, 'app1', undefined], // another application's suffix
    [`${IFACE}:1.2.3:gg:consumer:probe-app1`, 'probe-app1', undefined],
    [`${IFACE}:1.2.3:provider:probe-app1`, 'probe-app1', undefined], // four parts: not Dubbo's key
    [`${IFACE}:1.2.3:g:x:provider:probe-app1`, 'probe-app1', undefined],
    [`not an interface:1:g:provider:a`, 'a', undefined],
    [`${IFACE}:1:g:provider:`, '', undefined],
  ])('%s of %s', (dataId, app, expected) => {
    expect(parseDefinitionDataId(dataId, app)).toEqual(expected);
  });
});

describe('config search answers of the real servers', () => {
  it('Nacos 3.1 /v3/admin/cs/config/list: the definition of the application', () => {
    const page = parseConfigSearchPage(JAVA_V3);
    if (page instanceof Error) throw page;
    expect(page.total).toBe(1);
    expect(interfacesOfDefinitions(page.items, 'probe-app1', 'dubbo')).toEqual([
      { interface: IFACE, version: '1.2.3', group: 'gg' },
    ]);
  });

  it('Nacos 3.1: blank version and group', () => {
    const page = parseConfigSearchPage(JAVA_V3_BLANK);
    if (page instanceof Error) throw page;
    expect(interfacesOfDefinitions(page.items, 'probe_app.3', 'dubbo')).toEqual([
      { interface: IFACE, version: '', group: '' },
    ]);
  });

  it('every config of the namespace: the mapping (group `mapping`) is no definition', () => {
    const page = parseConfigSearchPage(JAVA_V3_ALL);
    if (page instanceof Error) throw page;
    expect(page.items.map((i) => i.group).sort()).toEqual(['dubbo', 'mapping']);
    expect(interfacesOfDefinitions(page.items, 'probe-app1', 'dubbo')).toHaveLength(1);
    expect(interfacesOfDefinitions(page.items, 'probe-app1', 'other-group')).toEqual([]);
  });

  it('r-nacos /v1/cs/configs?search=blur: substring match; the `*` form finds nothing', () => {
    const page = parseConfigSearchPage(RNACOS_SUBSTRING);
    if (page instanceof Error) throw page;
    expect(interfacesOfDefinitions(page.items, 'probe-app2', 'dubbo')).toEqual([
      { interface: IFACE, version: '1.2.3', group: 'gg' },
    ]);
    const none = parseConfigSearchPage(RNACOS_WILDCARD);
    if (none instanceof Error) throw none;
    expect(none.items).toEqual([]);
  });

  it.each([
    [null, 'not a JSON object'],
    [{ code: 0, data: null }, 'no data'],
    [{ totalCount: 1 }, 'no pageItems'],
    [{ pageItems: [] }, 'no totalCount'],
  ])('rejects %j', (raw, message) => {
    const r = parseConfigSearchPage(raw);
    expect(r).toBeInstanceOf(Error);
    expect((r as Error).message).toContain(message);
  });
});

/** The captured application-level registration, as the adapter models it (merge). */
function appService(revision?: string): RegistryService {
  const parsed = parseInstanceList(APP_INSTANCES, 'probe-app1');
  if (parsed instanceof Error) throw parsed;
  const instances = revision
    ? parsed.instances.map((i) => ({ ...i, metadata: { ...i.metadata, 'dubbo.metadata.revision': revision } }))
    : parsed.instances;
  const s = nacosModelService(
    { source: 'nacos', namespace: 'nm-probe1', group: 'DEFAULT_GROUP', name: 'probe-app1' },
    instances,
    { applicationLevel: 'merge' },
  );
  if (s === undefined || s instanceof Error) throw new Error('not a service');
  return s;
}

/** Answers as the real servers did: `v3` (Nacos 3.1) or `v1` (r-nacos, no v3 config API). */
function replay(server: 'v3' | 'v1' | 'refuse') {
  const calls: string[] = [];
  const request = (path: string, params: Record<string, string>): Promise<SearchResponse> => {
    calls.push(`${path} ${params.dataId ?? ''}`);
    const res = (status: number, body: unknown): SearchResponse => ({
      status,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      server: 'http://nacos:8848/nacos',
    });
    if (server === 'refuse') return Promise.resolve(res(403, 'user not found'));
    if (path === '/v3/admin/cs/config/list')
      return Promise.resolve(server === 'v3' ? res(200, JAVA_V3) : res(404, 'Not Found'));
    // r-nacos: the `*` form finds nothing, the substring form finds the definition.
    return Promise.resolve(
      res(200, params.dataId?.startsWith('*') ? RNACOS_WILDCARD : rename(RNACOS_SUBSTRING, 'probe-app2', 'probe-app1')),
    );
  };
  return { calls, request };
}

function rename(raw: unknown, from: string, to: string): unknown {
  return JSON.parse(JSON.stringify(raw).replaceAll(from, to)) as unknown;
}

function definitions(request: ReturnType<typeof replay>['request'], now: () => number = () => 0) {
  return new DubboDefinitions(request, {
    source: 'nacos',
    group: 'dubbo',
    log: silentLogger(),
    now,
    retryMs: 10_000,
    concurrency: 2,
  });
}

describe('DubboDefinitions: one search per application and revision', () => {
  const signal = new AbortController().signal;

  it('Nacos 3: one v3 search; unchanged revisions cost nothing; a new revision searches again', async () => {
    const r = replay('v3');
    const d = definitions(r.request);
    await d.refresh([appService()], signal);
    expect(r.calls).toEqual(['/v3/admin/cs/config/list *:provider:probe-app1']);
    expect(d.known('nm-probe1', 'probe-app1')?.interfaces).toEqual([
      { interface: IFACE, version: '1.2.3', group: 'gg' },
    ]);
    await d.refresh([appService(), appService()], signal);
    expect(r.calls).toHaveLength(1);
    await d.refresh([appService('another-revision')], signal);
    expect(r.calls).toHaveLength(2);
  });

  it('r-nacos: v3 not served, then the v1 search (`*` form, then substring); the substring form is kept', async () => {
    const r = replay('v1');
    const d = definitions(r.request);
    await d.refresh([appService()], signal);
    expect(r.calls).toEqual([
      '/v3/admin/cs/config/list *:provider:probe-app1',
      '/v1/cs/configs *:provider:probe-app1',
      '/v1/cs/configs :provider:probe-app1',
    ]);
    expect(d.known('nm-probe1', 'probe-app1')?.interfaces).toHaveLength(1);
    await d.refresh([appService('r2')], signal);
    expect(r.calls.slice(3)).toEqual(['/v1/cs/configs :provider:probe-app1']);
  });

  it('a refused search keeps the interfaces last read, says why, and is retried after retryMs only', async () => {
    let now = 0;
    let answer: ReturnType<typeof replay> = replay('v3');
    const d = definitions(
      (p, q) => answer.request(p, q),
      () => now,
    );
    await d.refresh([appService()], signal);
    answer = replay('refuse');
    await d.refresh([appService('r2')], signal);
    const known = d.known('nm-probe1', 'probe-app1');
    expect(known?.interfaces).toHaveLength(1);
    expect(known?.error).toContain('HTTP 403');
    expect(known?.error).toContain('read permission');
    await d.refresh([appService('r2')], signal); // the same revisions, within retryMs
    expect(answer.calls).toHaveLength(1);
    now = 10_000;
    await d.refresh([appService('r2')], signal);
    expect(answer.calls).toHaveLength(2);
  });

  it('without a first answer a refused search leaves no interfaces and the error', async () => {
    const r = replay('refuse');
    const d = definitions(r.request);
    await d.refresh([appService()], signal);
    expect(d.known('nm-probe1', 'probe-app1')).toMatchObject({ interfaces: [] });
    expect(d.known('nm-probe1', 'probe-app1')?.error).toContain('HTTP 403');
  });

  it('only merge-mode application-level services are searched', async () => {
    const r = replay('v3');
    const d = definitions(r.request);
    const separate: RegistryService = {
      ...appService(),
      applicationLevel: { application: 'probe-app1', mode: 'separate' },
    };
    const { applicationLevel: _, ...plain } = appService();
    await d.refresh([separate, plain], signal);
    expect(r.calls).toEqual([]);
  });

  it('revisionsKey: distinct, sorted revisions of the instances', () => {
    const m = (r?: string) => ({ metadata: r === undefined ? {} : { 'dubbo.metadata.revision': r } });
    expect(revisionsKey([m('b'), m('a'), m('b')])).toBe('a,b');
    expect(revisionsKey([m()])).toBe('');
  });
});

describe('synthesis of the mapped application', () => {
  const options: SynthOptions = {
    ...defaultSynthOptions,
    hostTemplate: '{service}.{group}.{namespace}.nacos',
    namespace: 'mesh',
  };

  it('publishes <interface>.v-<version>.g-<group>.dubbo with the dubbo and tri ports of dubbo.endpoints', () => {
    const app = appService();
    const mapped: RegistryService = {
      ...app,
      applicationLevel: {
        ...app.applicationLevel!,
        interfaces: [
          {
            key: { source: 'nacos', namespace: 'nm-probe1', group: 'gg', name: IFACE },
            host: 'registrybridge.demo.greetservice.v-1-2-3.g-gg.dubbo',
            attributes: {
              kind: 'dubbo',
              interface: IFACE,
              version: '1.2.3',
              dubboGroup: 'gg',
              application: 'probe-app1',
              versionLabel: 'v-1-2-3',
              groupLabel: 'g-gg',
            },
            protocol: 'dubbo',
          },
        ],
      },
    };
    const { results } = synthAll([{ services: [mapped], options }]);
    const ok = results.flatMap((r) => (r.kind === 'ok' ? [r.entry] : []));
    expect(ok.map((e) => e.host)).toEqual(['registrybridge.demo.greetservice.v-1-2-3.g-gg.dubbo']);
    const spec = ok[0]!.object.spec as unknown as {
      ports: { number: number; protocol: string; name: string }[];
      endpoints: { address: string; ports?: Record<string, number> }[];
    };
    expect(spec.ports.map((p) => p.protocol).sort()).toEqual(['GRPC', 'TCP']);
    const byProtocol = Object.fromEntries(
      spec.ports.map((p) => [p.protocol, spec.endpoints[0]!.ports?.[p.name] ?? p.number]),
    );
    expect(byProtocol).toEqual({ TCP: 21881, GRPC: 51881 });
  });

  it('a metadata error is named in the note of the application left on its own entry', () => {
    const app = appService();
    const failed: RegistryService = {
      ...app,
      applicationLevel: { ...app.applicationLevel!, metadataError: 'refused with HTTP 403' },
    };
    const out = synthAll([{ services: [failed], options }]);
    const notes = JSON.stringify(out);
    expect(notes).toContain('application-level-unmapped');
    expect(notes).toContain('Dubbo metadata not read: refused with HTTP 403');
  });
});
