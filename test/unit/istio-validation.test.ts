import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli/main.js';
import { parseConfig } from '../../src/config/load.js';
import { Controller } from '../../src/controller/controller.js';
import type { ReconcileReport } from '../../src/controller/reconcile.js';
import { silentLogger } from '../../src/log.js';
import { endpointAddressProblem, parseHostname, portNameProblem } from '../../src/model/names.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { serviceEntryProblems, synthAll, synthServiceEntry, type ServiceEntrySpec } from '../../src/synth/index.js';
import { baseServiceEntrySpec as base, inst, options, svc } from './helpers.js';
import { wire } from './wiring-harness.js';

/**
 * The rules of istio/istio pkg/config/validation (ValidateServiceEntry, agent.ValidateFQDN,
 * agent.ValidateWildcardDomain, ValidatePortName, labels.Instance.Validate) and the CRD's CEL
 * rules, for the fields the bridge writes. Each row: what Istio says about the value.
 */
describe('hosts (agent.ValidateWildcardDomain: the last label cannot be all-numeric)', () => {
  it.each([
    ['10.1.2.3', /is an IP address, not a host name/],
    ['orders.2024', /last label "2024" is all-numeric/],
    ['999.1.1.1', /last label "1" is all-numeric/],
    ['a.b.0', /all-numeric/],
    ['orders', /has no dot/],
    ['bad_host.example', /not a DNS-1123 label/],
  ])('refuses %s', (host, reason) => {
    const p = parseHostname(host);
    expect(p).toBeInstanceOf(Error);
    expect((p as Error).message).toMatch(reason);
  });
  it.each(['orders.v2024', '2024.orders.example', 'a1.b2.c3', '10.1.2.3.nip.io', 'x.io'])('accepts %s', (host) =>
    expect(parseHostname(host)).toBe(host),
  );

  it('an explicit host that is an IP address is refused, named, and never written', () => {
    const r = synthServiceEntry(svc('ext', [inst('10.0.0.1', 80)], { host: '10.1.2.3' }), options);
    expect(r.kind).toBe('invalid');
    expect(r.kind === 'invalid' && r.reason).toMatch(/"10\.1\.2\.3" is an IP address/);
  });

  it('a template host ending in an all-numeric label is refused (orders.2024)', () => {
    const r = synthServiceEntry(
      svc('orders', [inst('10.0.0.1', 80)], { key: { ...svc('x', []).key, group: '2024', name: 'orders' } }),
      {
        ...options,
        hostTemplate: '{service}.{group}',
      },
    );
    expect(r.kind).toBe('invalid');
    expect(r.kind === 'invalid' && r.reason).toMatch(/host "orders\.2024": the last label "2024" is all-numeric/);
  });

  it('a host template whose last label is all-numeric is a config error', () => {
    expect(() =>
      parseConfig(
        { sources: [{ name: 's', kind: 'static', static: { path: 'x.json' }, hostTemplate: '{service}.2024' }] },
        adapterFactories,
      ),
    ).toThrow(/sources\[0\]\.hostTemplate: ends in the all-numeric label "2024"/);
  });
});

describe('endpoint addresses (validateWorkloadEntry / agent.ValidateFQDN)', () => {
  it.each([
    ['999.1.1.1', /not a valid IP address/],
    ['1.2.3', /not a valid IP address/],
    ['localhost', /short name/],
    ['db', /short name/],
    ['db.2024', /all-numeric/],
    ['bad_host!.example', /not a DNS-1123 label/],
    ['', /empty/],
  ])('refuses %s', (address, reason) => expect(endpointAddressProblem(address)).toMatch(reason));
  it.each(['10.0.0.1', '::1', '2001:db8::5', 'db.example.com', 'orders-0.orders.svc.cluster.local'])(
    'accepts %s',
    (address) => expect(endpointAddressProblem(address)).toBeUndefined(),
  );
});

describe('one bad instance does not freeze its service', () => {
  it.each(['999.1.1.1', 'localhost', 'db', 'db.2024', '10.0.0.256'])(
    'an instance at %s is dropped and named; the good instances publish, resolution stays STATIC',
    (bad) => {
      const r = synthServiceEntry(svc('orders', [inst('10.0.0.1', 80), inst(bad, 80), inst('10.0.0.2', 80)]), options);
      expect(r.kind).toBe('ok');
      if (r.kind !== 'ok') return;
      expect(r.entry.object.spec.resolution).toBe('STATIC');
      expect(r.entry.object.spec.endpoints?.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.2']);
      const rejected = r.notes.filter((n) => n.code === 'instance-rejected');
      expect(rejected).toEqual([expect.objectContaining({ instance: `${bad}:80` })]);
      expect(serviceEntryProblems(r.entry.object.spec)).toEqual([]);
    },
  );

  it('is named even when its service publishes nothing and another service publishes the host', () => {
    const publisher = svc('a', [inst('10.0.0.1', 80)], { host: 'ext.example.com' });
    const allBad = svc('b', [inst('999.1.1.1', 80)], { host: 'ext.example.com' });
    const out = synthAll([{ services: [publisher, allBad], options }]);
    expect(out.desired.map((d) => d.host)).toEqual(['ext.example.com']);
    expect(out.notes.filter((n) => n.note.code === 'instance-rejected')).toEqual([
      expect.objectContaining({ source: 'test', note: expect.objectContaining({ instance: '999.1.1.1:80' }) }),
    ]);
  });

  it('a DNS name with a trailing dot is one FQDN endpoint', () => {
    const r = synthServiceEntry(svc('orders', [inst('db.example.com.', 5432)]), options);
    expect(r.kind === 'ok' && r.entry.object.spec.endpoints).toEqual([{ address: 'db.example.com' }]);
  });

  describe('sync --once with the files sink', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rb-bad-instance-'));
    });
    afterAll(async () => rm(dir, { recursive: true, force: true }));

    it('publishes new good instances beside a bad one, exits 4 and names service, instance and reason', async () => {
      const reg = join(dir, 'reg.json');
      const cfg = join(dir, 'c.yaml');
      const out = join(dir, 'out');
      const write = (instances: unknown[]) =>
        writeFile(reg, JSON.stringify({ services: [{ name: 'orders', protocol: 'http', instances }] }));
      await writeFile(
        cfg,
        `sources: [{name: s, kind: static, static: {path: reg.json}}]\nsink: {kind: files, dir: ${out}}\n`,
      );
      await write([{ address: '10.0.0.1', port: 8080 }]);
      const run = async () => {
        const err: string[] = [];
        const code = await main(['sync', '--once', '-c', cfg], {
          stdout: { write: () => true },
          stderr: { write: (s: string) => (err.push(s), true) },
          env: {},
        } as never);
        return {
          code,
          lines: err
            .join('')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        };
      };
      expect((await run()).code).toBe(0);
      await write([
        { address: '10.0.0.1', port: 8080 },
        { address: 'localhost', port: 8080 },
        { address: '10.0.0.2', port: 8080 },
        { address: '999.1.1.1', port: 8080 },
      ]);
      const second = await run();
      expect(second.code).toBe(4);
      const file = parseYaml(await readFile(join(out, 'default', 'orders.static.yaml'), 'utf8')) as {
        spec: ServiceEntrySpec;
      };
      expect(file.spec.resolution).toBe('STATIC');
      expect(file.spec.endpoints?.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.2']);
      const rejected = second.lines.filter((l) => l.msg === 'instance rejected');
      expect(rejected.map((l) => [l.service, l.instance])).toEqual([
        ['s///orders', 'localhost:8080'],
        ['s///orders', '999.1.1.1:8080'],
      ]);
      expect(rejected.every((l) => typeof l.reason === 'string' && l.reason.length > 0)).toBe(true);
      expect(second.lines.find((l) => l.msg === 'reconcile finished')).toMatchObject({
        rejectedInstances: 2,
        update: 1,
      });
    });
  });

  it('the controller counts them in registry_bridge_rejected_entries_total', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rb-bad-instance-metric-'));
    const shutdown = new AbortController();
    try {
      await writeFile(
        join(dir, 'reg.json'),
        JSON.stringify({
          services: [
            {
              name: 'a',
              protocol: 'http',
              instances: [
                { address: '10.0.0.1', port: 80 },
                { address: 'db', port: 80 },
              ],
            },
          ],
        }),
      );
      const config = parseConfig(
        {
          sources: [{ name: 'files', kind: 'static', static: { path: 'reg.json' } }],
          sink: { kind: 'files', dir: 'out' },
        },
        adapterFactories,
      );
      const { sources, sink, logger, metrics } = wire(config, dir, silentLogger());
      const report = await new Promise<ReconcileReport>((resolve) => {
        const controller = new Controller(
          sources,
          sink,
          { policy: 'sync', maxDeletes: 100, dryRun: false, resyncMs: 60_000, debounceMs: 10 },
          { logger, metrics, onReport: resolve },
          shutdown.signal,
        );
        controller.start();
      });
      shutdown.abort();
      expect(report.synth.desired.map((d) => d.host)).toEqual(['a.static']);
      const text = await metrics.registry.getSingleMetricAsString('registry_bridge_rejected_entries_total');
      expect(text).toContain('registry_bridge_rejected_entries_total{source="files"} 1');
    } finally {
      shutdown.abort();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('object metadata', () => {
  it('a service identity too long for the annotation refuses the service (Kubernetes: 256 KiB of annotations)', () => {
    const long = svc('x'.repeat(300_000), [inst('10.0.0.1', 80)], { host: 'ext.example.com' });
    const r = synthServiceEntry(long, options);
    expect(r.kind).toBe('invalid');
    expect(r.kind === 'invalid' && r.reason).toMatch(/Kubernetes annotations allow 256 KiB/);
    expect(
      synthServiceEntry(svc('x'.repeat(1000), [inst('10.0.0.1', 80)], { host: 'ext.example.com' }), options).kind,
    ).toBe('ok');
  });
});

describe('port names (ValidatePortName; CEL: endpoint port keys shorter than 63)', () => {
  it.each([
    ['http_80', /not a DNS-1123 label/],
    ['bad name!', /not a DNS-1123 label/],
    ['-http', /not a DNS-1123 label/],
    ['', /empty/],
    ['p'.repeat(63), /longer than 62/],
  ])('refuses %j', (name, reason) => expect(portNameProblem(name)).toMatch(reason));
  it.each(['http', 'HTTP', 'grpc-web-8080', 'tcp-1', 'p'.repeat(62)])('accepts %s', (name) =>
    expect(portNameProblem(name)).toBeUndefined(),
  );

  it('a declared port named http_80 or "bad name!" is renamed with a note, and the entry is valid', () => {
    const r = synthServiceEntry(
      svc('ext', [], {
        host: 'ext.example.com',
        ports: [
          { number: 80, protocol: 'HTTP', name: 'http_80' },
          { number: 9000, protocol: 'TCP', name: 'bad name!' },
        ],
      }),
      options,
    );
    expect(r.kind).toBe('ok');
    if (r.kind !== 'ok') return;
    expect(r.entry.object.spec.ports).toEqual([
      { number: 80, name: 'http-80', protocol: 'HTTP' },
      { number: 9000, name: 'tcp-9000', protocol: 'TCP' },
    ]);
    expect(r.notes.filter((n) => n.code === 'port-renamed').map((n) => n.detail)).toEqual([
      expect.stringMatching(/declared port 80: port name "http_80" is not a DNS-1123 label/),
      expect.stringMatching(/declared port 9000: port name "bad name!" is not a DNS-1123 label/),
    ]);
  });
});

describe('serviceEntryProblems refuses what Istio refuses', () => {
  it('accepts the base spec', () => expect(serviceEntryProblems(base)).toEqual([]));
  it.each<[string, Partial<ServiceEntrySpec>, RegExp]>([
    ['an IP as host', { hosts: ['10.1.2.3'] }, /hosts\[0\]: host "10\.1\.2\.3" is an IP address/],
    ['an all-numeric last label', { hosts: ['orders.2024'] }, /all-numeric/],
    ['port name with _', { ports: [{ number: 80, name: 'http_80', protocol: 'HTTP' }] }, /ports\[0\]\.name/],
    ['port name with a blank', { ports: [{ number: 80, name: 'bad name!', protocol: 'HTTP' }] }, /ports\[0\]\.name/],
    ['STATIC endpoint not an IP', { endpoints: [{ address: '999.1.1.1' }] }, /must be an IP address for STATIC/],
    [
      'DNS endpoint with a numeric last label',
      { resolution: 'DNS', endpoints: [{ address: '999.1.1.1' }] },
      /must be an IP address or a fully qualified domain name/,
    ],
    ['NONE with endpoints', { resolution: 'NONE' }, /NONE resolution cannot have endpoints/],
    [
      'too many endpoints',
      { endpoints: Array.from({ length: 4097 }, () => ({ address: '10.0.0.1' })) },
      /at most 4096/,
    ],
    [
      'a bad endpoint label',
      { endpoints: [{ address: '10.0.0.1', labels: { 'a b': 'x' } }] },
      /endpoints\[0\]\.labels\["a b"\]/,
    ],
    [
      'an endpoint port key that names no port',
      { endpoints: [{ address: '10.0.0.1', ports: { grpc: 9090 } }] },
      /"grpc" is not a port name/,
    ],
  ])('refuses %s', (_name, patch, reason) => {
    expect(serviceEntryProblems({ ...base, ...patch }).join('\n')).toMatch(reason);
  });
});
