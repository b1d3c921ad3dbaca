import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import {
  synthAll,
  synthServiceEntry,
  serviceEntryProblems,
  sanitizeHostValue,
  type SynthResult,
} from '../../src/synth/index.js';
import { renderYaml } from '../../src/sinks/render.js';
import { parseRegistryFile } from '../../adapters/static/index.js';
import { parseHostname, parseObjectName } from '../../src/model/names.js';
import { inst, options, svc } from './helpers.js';

function ok(r: SynthResult) {
  if (r.kind !== 'ok') throw new Error(`expected ok, got ${r.kind}: ${'reason' in r ? r.reason : ''}`);
  return r.entry;
}

describe('synthServiceEntry golden YAML', () => {
  it('renders the quickstart registry exactly', async () => {
    const raw = parse(readFileSync(new URL('../../examples/quickstart-registry.yaml', import.meta.url), 'utf8'));
    const snap = parseRegistryFile(raw, 'quickstart', 'quickstart-registry.yaml');
    const out = synthAll([{ services: snap.services, options: { ...options, namespace: 'default' } }]);
    expect(out.invalid).toEqual([]);
    await expect(renderYaml(out.desired.map((d) => d.object))).toMatchFileSnapshot('golden/quickstart.yaml');
  });

  const tricky: [string, ReturnType<typeof svc>][] = [
    [
      'mixed-ports',
      svc('orders', [inst('10.0.0.1', 8080), inst('10.0.0.2', 8080), inst('10.0.0.3', 9090)], { protocol: 'http' }),
    ],
    [
      'hostname-instances',
      svc('legacy', [
        inst('db-1.corp.example.com', 3306, { protocol: 'mysql' }),
        inst('10.0.0.9', 3306, { protocol: 'mysql' }),
      ]),
    ],
    [
      'unicode-uppercase-underscore',
      svc('Zahlungs_Dienst_ÄÖÜ', [inst('10.1.0.1', 80, { protocol: 'HTTP' })], {
        key: { source: 'test', namespace: 'Prod_NS', group: 'My_Group', name: 'Zahlungs_Dienst_ÄÖÜ' },
      }),
    ],
    [
      'invalid-metadata-labels',
      svc('labels', [
        inst('10.2.0.1', 80, {
          protocol: 'http',
          metadata: {
            good: 'yes',
            'bad key': 'x',
            'too-long': 'x'.repeat(64),
            'app.example.com/tier': 'web',
            methods: 'a,b',
            emoji: '✓',
          },
        }),
      ]),
    ],
    [
      'duplicate-instances',
      svc('dup', [inst('10.3.0.1', 80), inst('10.3.0.1', 80), inst('10.3.0.2', 80)], { protocol: 'grpc' }),
    ],
    [
      'dubbo-two-protocols',
      svc('demo', [
        inst('10.4.0.1', 20880, { protocol: 'dubbo', weight: 100 }),
        inst('10.4.0.1', 50051, { protocol: 'tri', weight: 100 }),
        inst('10.4.0.2', 20880, { protocol: 'dubbo', weight: 300 }),
      ]),
    ],
  ];
  for (const [name, service] of tricky) {
    it(`renders ${name}`, async () => {
      const entry = ok(synthServiceEntry(service, options));
      expect(serviceEntryProblems(entry.object.spec)).toEqual([]);
      await expect(renderYaml([entry.object])).toMatchFileSnapshot(`golden/${name}.yaml`);
    });
  }
});

describe('synthServiceEntry rules', () => {
  it('never uses "the first instance port": one service port per protocol, per-endpoint mapping for the rest', () => {
    const e = ok(
      synthServiceEntry(
        svc('a', [inst('10.0.0.3', 9090), inst('10.0.0.1', 8080), inst('10.0.0.2', 8080)], { protocol: 'http' }),
        options,
      ),
    );
    expect(e.object.spec.ports).toEqual([{ name: 'http-8080', number: 8080, protocol: 'HTTP' }]);
    expect(e.object.spec.endpoints).toEqual([
      { address: '10.0.0.1' },
      { address: '10.0.0.2' },
      { address: '10.0.0.3', ports: { 'http-8080': 9090 } },
    ]);
  });

  it('is deterministic whatever the instance order', () => {
    const instances = [
      inst('10.0.0.3', 81, { weight: 3 }),
      inst('10.0.0.1', 80, { weight: 1 }),
      inst('10.0.0.2', 80, { weight: 2, metadata: { z: '1', a: '2' } }),
    ];
    const a = renderYaml([ok(synthServiceEntry(svc('s', instances), options)).object]);
    const b = renderYaml([ok(synthServiceEntry(svc('s', [...instances].reverse()), options)).object]);
    expect(a).toBe(b);
  });

  it('uses DNS resolution when any instance is a hostname, STATIC for IPs (v4 and v6)', () => {
    expect(
      ok(synthServiceEntry(svc('a', [inst('api.example.com', 443, { protocol: 'https' })]), options)).object.spec
        .resolution,
    ).toBe('DNS');
    expect(
      ok(synthServiceEntry(svc('b', [inst('fd00::1', 80), inst('10.0.0.1', 80)]), options)).object.spec.resolution,
    ).toBe('STATIC');
  });

  it('leaves out unhealthy, disabled and draining (weight 0) instances unless told otherwise', () => {
    const service = svc('h', [
      inst('10.0.0.1', 80),
      inst('10.0.0.2', 80, { healthy: false }),
      inst('10.0.0.3', 80, { enabled: false }),
      inst('10.0.0.4', 80, { weight: 0 }),
    ]);
    expect(ok(synthServiceEntry(service, options)).object.spec.endpoints?.map((e) => e.address)).toEqual(['10.0.0.1']);
    expect(
      ok(synthServiceEntry(service, { ...options, includeUnhealthy: true })).object.spec.endpoints?.map(
        (e) => e.address,
      ),
    ).toEqual(['10.0.0.1', '10.0.0.2']);
  });

  it('maps registry protocols to ones Istio accepts; unknown ones become TCP with a note', () => {
    const r = synthServiceEntry(
      svc('p', [
        inst('10.0.0.1', 7000, { protocol: 'weird-rpc' }),
        inst('10.0.0.1', 20880, { protocol: 'dubbo' }),
        inst('10.0.0.1', 50051, { protocol: 'tri' }),
      ]),
      options,
    );
    const e = ok(r);
    expect(e.object.spec.ports.map((p) => `${p.protocol}/${p.number}`)).toEqual(['TCP/7000', 'GRPC/50051']);
    expect(r.notes.map((n) => n.code)).toContain('unknown-protocol');
  });

  it('keeps volatile and invalid metadata out of labels, counting the dropped ones', () => {
    const r = synthServiceEntry(
      svc('l', [inst('10.0.0.1', 80, { metadata: { ok: 'v1', timestamp: '1700000000', 'bad key': 'v', x: 'a,b' } })]),
      options,
    );
    expect(ok(r).object.spec.endpoints?.[0]?.labels).toEqual({ ok: 'v1' });
    expect(r.notes.filter((n) => n.code === 'label-dropped')).toHaveLength(2);
  });

  it('reports an empty service as empty (plan keeps its object), not as invalid', () => {
    const r = synthServiceEntry(svc('empty', []), options);
    expect(r.kind).toBe('empty');
    const allDown = synthServiceEntry(svc('down', [inst('10.0.0.1', 80, { healthy: false })]), options);
    expect(allDown.kind).toBe('empty');
  });

  it('publishes a service with declared ports and no instances as DNS of its own host', () => {
    const e = ok(
      synthServiceEntry(
        svc('x', [], { host: 'www.baidu.com', ports: [{ number: 80, protocol: 'HTTP', name: 'HTTP' }] }),
        options,
      ),
    );
    expect(e.object.spec).toMatchObject({
      hosts: ['www.baidu.com'],
      resolution: 'DNS',
      location: 'MESH_INTERNAL',
      ports: [{ name: 'HTTP', number: 80, protocol: 'HTTP' }],
    });
    expect(e.name).toBe('www.baidu.com');
  });

  it('rejects, with the reason, a service whose host Istio would refuse', () => {
    const r = synthServiceEntry(svc('x', [inst('10.0.0.1', 80)], { host: 'bad_host.example.com' }), options);
    expect(r.kind).toBe('invalid');
    expect(r.kind === 'invalid' && r.reason).toMatch(/label "bad_host" is not a DNS-1123 label/);
    const short = synthServiceEntry(svc('x', [inst('10.0.0.1', 80)]), { ...options, hostTemplate: '{service}' });
    expect(short.kind === 'invalid' && short.reason).toMatch(/has no dot/);
  });

  it('skips instances with impossible ports and keeps the rest', () => {
    const r = synthServiceEntry(
      svc('x', [inst('10.0.0.1', 0), inst('10.0.0.2', 70000), inst('10.0.0.3', 80)]),
      options,
    );
    expect(ok(r).object.spec.endpoints).toEqual([{ address: '10.0.0.3' }]);
    expect(r.notes.filter((n) => n.code === 'instance-rejected')).toHaveLength(2);
  });

  it('keeps object names ≤ 63 characters and valid, hosts valid, for very long names', () => {
    const long = 'com.example.platform.payments.settlement.reconciliation.v2.SettlementReconciliationFacadeService';
    const e = ok(synthServiceEntry(svc(long, [inst('10.0.0.1', 80)]), options));
    expect(e.name.length).toBeLessThanOrEqual(63);
    expect(parseObjectName(e.name)).not.toBeInstanceOf(Error);
    expect(parseHostname(e.host)).not.toBeInstanceOf(Error);
  });

  it('weights are relative (max = 100) and omitted when all equal', () => {
    const e = ok(
      synthServiceEntry(
        svc('w', [inst('10.0.0.1', 80, { weight: 0.5 }), inst('10.0.0.2', 80, { weight: 1 })]),
        options,
      ),
    );
    expect(e.object.spec.endpoints?.map((x) => x.weight)).toEqual([50, 100]);
  });

  it('changes the content hash when the spec changes and only then', () => {
    const a = ok(synthServiceEntry(svc('h', [inst('10.0.0.1', 80)]), options));
    const b = ok(synthServiceEntry(svc('h', [inst('10.0.0.1', 80)]), options));
    const c = ok(synthServiceEntry(svc('h', [inst('10.0.0.2', 80)]), options));
    expect(a.hash).toBe(b.hash);
    expect(a.hash).not.toBe(c.hash);
  });
});

describe('host naming and collisions', () => {
  it.each([
    ['DEFAULT_GROUP', 'default-group'],
    ['order-service', 'order-service'],
    ['com.example.Foo', 'com.example.foo'],
    ['a..b', 'a.b'],
  ])('sanitizes %s → %s without a hash (lossless up to case and "_")', (input, expected) => {
    expect(sanitizeHostValue(input)).toBe(expected);
  });

  it('adds a stable hash when characters had to be replaced, so distinct values stay distinct', () => {
    const a = sanitizeHostValue('order:svc');
    const b = sanitizeHostValue('order@svc');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^order-svc-[0-9a-f]{6}$/);
    expect(sanitizeHostValue('order:svc')).toBe(a);
  });

  it('gives the host to the first service by key when two would share it, and reports the other', () => {
    const out = synthAll([
      { services: [svc('ORDER_SVC', [inst('10.0.0.2', 80)]), svc('order-svc', [inst('10.0.0.1', 80)])], options },
    ]);
    expect(out.desired).toHaveLength(1);
    expect(out.invalid).toHaveLength(1);
    expect(out.invalid[0]!.reason).toMatch(/already produced by service test\/public\/DEFAULT_GROUP\/ORDER_SVC/);
  });

  it('one invalid service never stops the others', () => {
    const out = synthAll([
      {
        services: [svc('good', [inst('10.0.0.1', 80)]), svc('bad', [inst('10.0.0.1', 80)], { host: 'no_dots' })],
        options,
      },
    ]);
    expect(out.desired.map((d) => d.key.name)).toEqual(['good']);
    expect(out.invalid.map((r) => r.key.name)).toEqual(['bad']);
  });
});

describe('synthesis memo', () => {
  it('hands back the same entry for the same service object, whose object equals a fresh synthesis', () => {
    const s = svc('memo', [inst('10.9.0.1', 8080, { protocol: 'http' }), inst('10.9.0.2', 8080, { protocol: 'http' })]);
    const first = synthAll([{ services: [s], options }]);
    const second = synthAll([{ services: [s], options }]);
    expect(second.desired[0]).toBe(first.desired[0]);
    const fresh = synthServiceEntry(s, options);
    if (fresh.kind !== 'ok') throw new Error('expected a ServiceEntry');
    expect(first.desired[0]!.object).toEqual(fresh.entry.object);
    expect(first.desired[0]!.hash).toBe(fresh.entry.hash);
    expect(JSON.parse(JSON.stringify(first.desired[0]))).toMatchObject({
      name: fresh.entry.name,
      object: { spec: { hosts: [fresh.entry.host] } },
    });
  });
});
