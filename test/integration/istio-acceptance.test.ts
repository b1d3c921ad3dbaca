/**
 * The bridge's validation against Istio's own: the real kube-apiserver with Istio's CRDs (CEL
 * rules) and istiod's validating webhook (pkg/config/validation, the istiod the harness builds).
 * - Every spec the bridge refuses (serviceEntryProblems) in the table is refused by them too.
 * - Every ServiceEntry the bridge synthesizes from random, careless registry data is accepted
 *   (server-side dry run: nothing is stored).
 */
import * as k8s from '@kubernetes/client-node';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasPeer, peer } from '../peers/endpoints.js';
import type { Instance, RegistryService } from '../../src/model/service.js';
import {
  defaultSynthOptions,
  serviceEntryProblems,
  synthServiceEntry,
  type ServiceEntryObject,
  type ServiceEntrySpec,
  type SynthOptions,
} from '../../src/synth/index.js';
import { baseServiceEntrySpec as base } from '../unit/helpers.js';
import { statusText } from './kube-status.js';

const GROUP = 'networking.istio.io';
const VERSION = 'v1';
const PLURAL = 'serviceentries';
const NS = 'default';

describe.skipIf(!hasPeer('kube') || !hasPeer('istiod'))('Istio agrees with the bridge on what is valid', () => {
  let api: k8s.CustomObjectsApi;
  beforeAll(() => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(peer('kube').kubeconfig);
    api = kc.makeApiClient(k8s.CustomObjectsApi);
  });
  afterAll(() => undefined);

  /** undefined when kube-apiserver (CRD + webhook) accepts the object in a dry run, else its message. */
  async function refusal(body: object): Promise<string | undefined> {
    try {
      await api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: NS,
        plural: PLURAL,
        body,
        dryRun: 'All',
      });
      return undefined;
    } catch (e) {
      const code = (e as { code?: number }).code;
      if (code !== 400 && code !== 422) throw e; // not a validation answer
      return statusText(e);
    }
  }

  const object = (name: string, spec: ServiceEntrySpec) => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'ServiceEntry',
    metadata: { name, namespace: NS },
    spec,
  });

  it('accepts the base spec (the control)', async () => {
    expect(serviceEntryProblems(base)).toEqual([]);
    expect(await refusal(object('rb-accept-base', base))).toBeUndefined();
  });

  it.each<[string, Partial<ServiceEntrySpec>]>([
    ['an IP address as host', { hosts: ['10.1.2.3'] }],
    ['a host ending in an all-numeric label', { hosts: ['orders.2024'] }],
    ['a host with "_"', { hosts: ['bad_host.example'] }],
    ['a STATIC endpoint that is not an IP address', { endpoints: [{ address: '999.1.1.1' }] }],
    ['a DNS endpoint 999.1.1.1', { resolution: 'DNS', endpoints: [{ address: '999.1.1.1' }] }],
    ['a DNS endpoint with a bad label', { resolution: 'DNS', endpoints: [{ address: 'bad_host!.example' }] }],
    ['port name http_80', { ports: [{ number: 80, name: 'http_80', protocol: 'HTTP' }] }],
    ['port name "bad name!"', { ports: [{ number: 80, name: 'bad name!', protocol: 'HTTP' }] }],
    ['a duplicate port number', { ports: [base.ports[0]!, { number: 80, name: 'tcp', protocol: 'TCP' }] }],
    ['an unknown protocol', { ports: [{ number: 80, name: 'http', protocol: 'DUBBO' as never }] }],
    ['an endpoint label Kubernetes refuses', { endpoints: [{ address: '10.0.0.1', labels: { 'bad key!': 'x' } }] }],
    [
      'an endpoint label value Kubernetes refuses',
      { endpoints: [{ address: '10.0.0.1', labels: { k: 'bad value!' } }] },
    ],
    ['an endpoint port key that names no port', { endpoints: [{ address: '10.0.0.1', ports: { grpc: 9090 } }] }],
    [
      'an endpoint port key of 63 characters',
      { endpoints: [{ address: '10.0.0.1', ports: { ['p'.repeat(63)]: 81 } }] },
    ],
    ['NONE resolution with endpoints', { resolution: 'NONE' }],
    [
      'DNS_ROUND_ROBIN with two endpoints',
      { resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a.example' }, { address: 'b.example' }] },
    ],
  ])('refuses %s, as the bridge does', async (name, patch) => {
    const spec = { ...base, ...patch };
    expect(serviceEntryProblems(spec), 'the bridge would write it').not.toEqual([]);
    const message = await refusal(object(`rb-refuse-${name.replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')}`, spec));
    expect(message, `Istio accepted ${JSON.stringify(spec)}`).toBeDefined();
  });

  it('accepts every ServiceEntry the bridge synthesizes from random, careless registry data', async () => {
    const address = fc.oneof(
      fc.constantFrom('10.0.0.1', '10.0.0.2', '2001:db8::5', 'db.example.com', 'a-b.c-d.example'),
      fc.constantFrom(
        'localhost',
        'db',
        '999.1.1.1',
        'db.2024',
        'bad_host!.example',
        '10.0.0.256',
        ' ',
        'UPPER.Example.COM.',
      ),
    );
    const metadataKey = fc.constantFrom(
      'version',
      'app',
      'bad key!',
      'password',
      'spring.datasource.password',
      'a/b',
      'x'.repeat(64),
      'example.com/team',
      'Team_1',
    );
    const metadataValue = fc.oneof(
      fc.constantFrom('v1', '', 'bad value!', 'y'.repeat(64), '-x', 'ok_1.2'),
      fc.string({ maxLength: 8 }),
    );
    const instance: fc.Arbitrary<Instance> = fc
      .record({
        address,
        port: fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.constantFrom(0, 70000)),
        protocol: fc.option(fc.constantFrom('http', 'grpc', 'dubbo', 'tri', 'tcp', 'weird'), { nil: undefined }),
        weight: fc.constantFrom(1, 2, 100),
        healthy: fc.boolean(),
        enabled: fc.constant(true),
        metadata: fc.dictionary(metadataKey, metadataValue, { maxKeys: 4 }),
        locality: fc.option(fc.constantFrom('us/east/1a', 'bad locality', 'r'), { nil: undefined }),
      })
      .map((i) => Object.fromEntries(Object.entries(i).filter(([, v]) => v !== undefined)) as unknown as Instance);
    const service: fc.Arbitrary<RegistryService> = fc
      .record({
        name: fc.oneof(
          fc.constantFrom('orders', 'com.example.DemoService', 'UPPER_case', '2024'),
          fc.string({ minLength: 1, maxLength: 12 }),
        ),
        group: fc.constantFrom('', 'DEFAULT_GROUP', '2024', 'blue'),
        host: fc.option(fc.constantFrom('ext.example.com', '10.1.2.3', 'orders.2024', 'Ext.Example.com.'), {
          freq: 4,
          nil: undefined,
        }),
        ports: fc.option(
          fc.array(
            fc
              .record({
                number: fc.integer({ min: 1, max: 65535 }),
                protocol: fc.constantFrom('HTTP', 'TCP', 'grpc', 'nope'),
                name: fc.option(fc.constantFrom('http', 'http_80', 'bad name!', 'HTTP', 'p'.repeat(63)), {
                  nil: undefined,
                }),
              })
              .map((p) =>
                p.name === undefined
                  ? { number: p.number, protocol: p.protocol }
                  : { number: p.number, protocol: p.protocol, name: p.name },
              ),
            { minLength: 1, maxLength: 2 },
          ),
          { freq: 3, nil: undefined },
        ),
        instances: fc.array(instance, { maxLength: 4 }),
      })
      .map((s) => ({
        key: { source: 'src', namespace: 'public', group: s.group, name: s.name },
        ...(s.host !== undefined ? { host: s.host } : {}),
        ...(s.ports !== undefined ? { ports: s.ports } : {}),
        instances: s.instances,
      }));
    const options: SynthOptions = { ...defaultSynthOptions, hostTemplate: '{service}.{group}.static', namespace: NS };

    let accepted = 0;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(service, async (s) => {
        const r = synthServiceEntry(s, options);
        if (r.kind !== 'ok') return;
        n += 1;
        const obj: ServiceEntryObject = r.entry.object;
        const body = {
          ...obj,
          metadata: { ...obj.metadata, name: `rb-prop-${n}-${obj.metadata.name}`.slice(0, 63).replace(/[-.]+$/, '') },
        };
        const message = await refusal(body);
        expect(message, `Istio refused ${JSON.stringify(obj.spec)}`).toBeUndefined();
        accepted += 1;
      }),
      { seed: 4242, numRuns: 80, endOnFailure: true },
    );
    expect(accepted).toBeGreaterThan(20);
  }, 120_000);
});
