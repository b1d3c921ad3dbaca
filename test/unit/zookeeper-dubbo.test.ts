import { describe, expect, it } from 'vitest';
import { dubboServiceIdentity, markedLabel } from '../../adapters/dubbo/naming.js';
import { applyConfigurators } from '../../adapters/dubbo/override.js';
import { dubboProvidersOf } from '../../adapters/dubbo/provider.js';
import { parseDubboUrl, parseEncodedDubboUrl, type DubboUrl } from '../../adapters/dubbo/url.js';
import { renderHost } from '../../src/synth/index.js';
import { javaUrlEncode } from './zookeeper-helpers.js';

function url(text: string): DubboUrl {
  const u = parseDubboUrl(text);
  if (u instanceof Error) throw u;
  return u;
}

describe('Dubbo provider URLs as ZookeeperRegistry writes them', () => {
  const cases: [name: string, full: string, expected: Record<string, unknown>][] = [
    [
      '2.6.2: framework version in dubbo=, default.version',
      'dubbo://10.20.153.10:20880/com.alibaba.dubbo.demo.DemoService?anyhost=true&application=demo-provider&default.version=1.0.0&dubbo=2.6.2&generic=false&interface=com.alibaba.dubbo.demo.DemoService&methods=sayHello&pid=5052&side=provider&timestamp=1530000000000',
      {
        interface: 'com.alibaba.dubbo.demo.DemoService',
        version: '1.0.0',
        group: '',
        port: 20880,
        protocol: 'dubbo',
        weight: 100,
        enabled: true,
        application: 'demo-provider',
      },
    ],
    [
      '2.7.8: dubbo=2.0.2 protocol version, release=, weight',
      'dubbo://192.168.1.5:20880/org.apache.dubbo.demo.DemoService?anyhost=true&application=demo-provider&deprecated=false&dubbo=2.0.2&dynamic=true&generic=false&interface=org.apache.dubbo.demo.DemoService&methods=sayHello,sayHelloAsync&pid=12345&release=2.7.8&side=provider&timestamp=1600000000000&weight=50',
      { interface: 'org.apache.dubbo.demo.DemoService', version: '', group: '', port: 20880, weight: 50 },
    ],
    [
      '3.2 triple with group and version',
      'tri://10.0.0.5:50051/org.apache.dubbo.demo.GreeterService?anyhost=true&application=demo-provider&background=false&deprecated=false&dubbo=2.0.2&dynamic=true&executor-management-mode=isolation&file-cache=true&generic=false&group=blue&interface=org.apache.dubbo.demo.GreeterService&methods=greet,greetStream&pid=4321&prefer.serialization=fastjson2,hessian2&release=3.2.10&serialization=fastjson2&service-name-mapping=true&side=provider&timestamp=1700000000000&version=2.0.0',
      {
        interface: 'org.apache.dubbo.demo.GreeterService',
        version: '2.0.0',
        group: 'blue',
        port: 50051,
        protocol: 'tri',
      },
    ],
    ['plain key wins over default.', 'dubbo://10.0.0.1:1/x.Y?default.group=a&group=b&side=provider', { group: 'b' }],
    ['disabled=true in the URL', 'dubbo://10.0.0.1:1/x.Y?disabled=true&side=provider', { enabled: false }],
    [
      'disabled wins over enabled',
      'dubbo://10.0.0.1:1/x.Y?disabled=false&enabled=false&side=provider',
      { enabled: true },
    ],
    ['enabled=false without disabled', 'dubbo://10.0.0.1:1/x.Y?enabled=false&side=provider', { enabled: false }],
    ['interface from the path when no interface=', 'dubbo://10.0.0.1:1/x.Path?side=provider', { interface: 'x.Path' }],
    [
      'IPv6 from ipv6= when the host is 0.0.0.0',
      'dubbo://0.0.0.0:20880/x.Y?ipv6=fd00%3A%3A42&side=provider',
      { address: 'fd00::42' },
    ],
    ['bracketed IPv6 host', 'dubbo://[fd00::1]:20880/x.Y?side=provider', { address: 'fd00::1' }],
  ];
  it.each(cases)('%s', (_name, full, expected) => {
    const parsed = parseEncodedDubboUrl(javaUrlEncode(full));
    expect(parsed).not.toBeInstanceOf(Error);
    const providers = dubboProvidersOf(parsed as DubboUrl);
    if (providers instanceof Error) throw providers;
    const [p] = providers;
    expect({ ...p!.identity, ...p!.instance, application: p!.application }).toMatchObject(expected);
  });

  it('strips volatile parameters so a restart does not change the instance', () => {
    const a = dubboProvidersOf(
      url('dubbo://10.0.0.1:20880/x.Y?application=a&methods=b,a&pid=1&side=provider&timestamp=1&token=secret'),
    );
    const b = dubboProvidersOf(
      url('dubbo://10.0.0.1:20880/x.Y?application=a&methods=a,b&pid=2&side=provider&timestamp=2&token=other'),
    );
    expect(a).toEqual(b);
    expect((a as { instance: { metadata: object } }[])[0]!.instance.metadata).toEqual({
      application: 'a',
      side: 'provider',
    });
  });

  it('decodes the znode name once, then each value: a value encoded twice stays encoded once... and is decoded', () => {
    // A route-like value written encoded by its author (%3D) then encoded again with the znode name (%253D).
    const name = javaUrlEncode(
      `dubbo://10.0.0.1:20880/x.Y?side=provider&rule=${encodeURIComponent('host = 10.0.0.1 & x')}&a=1`,
    );
    expect(name).toContain('%253D');
    const u = parseEncodedDubboUrl(name) as DubboUrl;
    expect(u.params.rule).toBe('host = 10.0.0.1 & x');
    expect(u.params.a).toBe('1');
    expect(u.params.side).toBe('provider');
  });

  it('splits a 2.6 comma list of groups into one provider per group', () => {
    const ps = dubboProvidersOf(url('dubbo://10.0.0.1:20880/x.Y?group=g1,g2&side=provider'));
    expect((ps as { identity: { group: string } }[]).map((p) => p.identity.group)).toEqual(['g1', 'g2']);
  });

  const malformed: [name: string, znodeName: string, reason: RegExp][] = [
    ['bad URL encoding', 'dubbo%3A%2F%2F10.0.0.1%3A20880%2Fx.Y%3Fa%3D%ZZ', /bad URL encoding/],
    ['truncated escape', 'dubbo%3A%2F%2F10.0.0.1%3A20880%2Fx.Y%3', /bad URL encoding/],
    ['invalid UTF-8', 'dubbo%3A%2F%2F10.0.0.1%3A20880%2Fx.Y%3Fa%3D%C3%28', /bad URL encoding/],
    ['missing port', javaUrlEncode('dubbo://10.0.0.1/x.Y?side=provider'), /missing port/],
    ['non-numeric port', javaUrlEncode('dubbo://10.0.0.1:http/x.Y?side=provider'), /bad port/],
    ['port out of range', javaUrlEncode('dubbo://10.0.0.1:70000/x.Y?side=provider'), /bad port/],
    [
      'non-numeric weight',
      javaUrlEncode('dubbo://10.0.0.1:20880/x.Y?side=provider&weight=heavy'),
      /weight "heavy" is not a non-negative integer/,
    ],
    ['negative weight', javaUrlEncode('dubbo://10.0.0.1:20880/x.Y?side=provider&weight=-5'), /weight/],
    ['no protocol', javaUrlEncode('10.0.0.1:20880/x.Y?side=provider'), /no "<protocol>:\/\/"/],
    ['consumer URL under providers', javaUrlEncode('consumer://10.0.0.1/x.Y?side=consumer'), /not a provider URL/],
    ['side=consumer', javaUrlEncode('dubbo://10.0.0.1:20880/x.Y?side=consumer'), /side=consumer/],
    [
      '0.0.0.0 without ipv6',
      javaUrlEncode('dubbo://0.0.0.0:20880/x.Y?side=provider'),
      /not an address clients can reach/,
    ],
    ['empty host', javaUrlEncode('dubbo://:20880/x.Y?side=provider'), /missing host/],
    [
      'garbage host',
      javaUrlEncode('dubbo://bad_host!:20880/x.Y?side=provider'),
      /neither an IP address nor a DNS name/,
    ],
    ['binary garbage', '\u0000\u0001\u00ff\u00fe', /control characters|not a URL/],
    ['empty name', '', /empty URL/],
  ];
  it.each(malformed)('rejects %s with a reason', (_name, znodeName, reason) => {
    const u = parseEncodedDubboUrl(znodeName);
    const result = u instanceof Error ? u : dubboProvidersOf(u);
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toMatch(reason);
  });
});

describe('configurators (override://) as Dubbo applies them', () => {
  const provider = url(
    'dubbo://10.0.0.1:20880/x.Api?application=app&interface=x.Api&side=provider&version=1.0.0&weight=100',
  );
  const cases: [name: string, rules: string[], expected: { disabled?: string; weight?: string }][] = [
    [
      'address:port rule disables that provider',
      ['override://10.0.0.1:20880/x.Api?category=configurators&disabled=true&dynamic=false&version=1.0.0'],
      { disabled: 'true' },
    ],
    ['rule for another port does not apply', ['override://10.0.0.1:20881/x.Api?disabled=true&version=1.0.0'], {}],
    ['rule for another host does not apply', ['override://10.0.0.2:20880/x.Api?disabled=true&version=1.0.0'], {}],
    [
      '0.0.0.0 without port applies to all providers',
      ['override://0.0.0.0/x.Api?category=configurators&disabled=true&version=1.0.0'],
      { disabled: 'true' },
    ],
    [
      'specific host without port does not apply to providers',
      ['override://10.0.0.1/x.Api?disabled=true&version=1.0.0'],
      {},
    ],
    ['weight override', ['override://10.0.0.1:20880/x.Api?weight=400&version=1.0.0'], { weight: '400' }],
    ['enabled=false turns the rule off', ['override://0.0.0.0/x.Api?disabled=true&enabled=false&version=1.0.0'], {}],
    ['version must match the service key', ['override://0.0.0.0/x.Api?disabled=true&version=2.0.0'], {}],
    ['no version in the rule does not match a versioned provider', ['override://0.0.0.0/x.Api?disabled=true'], {}],
    ['version * matches any', ['override://0.0.0.0/x.Api?disabled=true&version=*'], { disabled: 'true' }],
    ['application must match', ['override://0.0.0.0/x.Api?application=other&disabled=true&version=1.0.0'], {}],
    ['~key condition', ['override://0.0.0.0/x.Api?~weight=100&disabled=true&version=1.0.0'], { disabled: 'true' }],
    ['~key condition mismatch', ['override://0.0.0.0/x.Api?~weight=5&disabled=true&version=1.0.0'], {}],
    [
      'providerAddresses',
      [
        'override://0.0.0.0/x.Api?configVersion=v2.7&side=provider&providerAddresses=10.0.0.9:1,10.0.0.1:20880&disabled=true&version=1.0.0',
      ],
      { disabled: 'true' },
    ],
    ['2.7 rule needs side=provider', ['override://0.0.0.0/x.Api?configVersion=v2.7&disabled=true&version=1.0.0'], {}],
    [
      'address rule sorts after 0.0.0.0 and wins',
      ['override://10.0.0.1:20880/x.Api?weight=7&version=1.0.0', 'override://0.0.0.0/x.Api?weight=3&version=1.0.0'],
      { weight: '7' },
    ],
    [
      'absent:// only fills missing keys',
      ['absent://0.0.0.0/x.Api?weight=9&disabled=true&version=1.0.0'],
      { weight: '100', disabled: 'true' },
    ],
  ];
  it.each(cases)('%s', (_name, rules, expected) => {
    const out = applyConfigurators(provider, rules.map(url));
    expect({ disabled: out.params.disabled, weight: out.params.weight }).toEqual({
      disabled: undefined,
      weight: '100',
      ...expected,
    });
  });
});

describe('Dubbo naming (shared with the Nacos adapter)', () => {
  const host = (iface: string, version: string, group: string) => {
    const n = dubboServiceIdentity({ interface: iface, version, group });
    const h = renderHost(
      { key: { source: 's', namespace: 'ns', group: n.group, name: n.name }, attributes: n.attributes, instances: [] },
      n.hostTemplate,
    );
    if (h instanceof Error) throw h;
    return h as string;
  };
  it.each([
    ['org.apache.dubbo.demo.DemoService', '', '', 'org.apache.dubbo.demo.demoservice.dubbo'],
    ['org.apache.dubbo.demo.DemoService', '1.0.0', '', 'org.apache.dubbo.demo.demoservice.v-1-0-0.dubbo'],
    ['org.apache.dubbo.demo.DemoService', '', 'blue', 'org.apache.dubbo.demo.demoservice.g-blue.dubbo'],
    [
      'org.apache.dubbo.demo.DemoService',
      '1.0.0-SNAPSHOT',
      'order_group',
      'org.apache.dubbo.demo.demoservice.v-1-0-0-snapshot.g-order-group.dubbo',
    ],
  ])('%s version=%s group=%s → %s', (iface, version, group, expected) => {
    expect(host(iface, version, group)).toBe(expected);
  });

  it('keeps the identities apart that a plain dotted template would merge', () => {
    const hosts = [
      host('com.foo', '1', ''),
      host('com.foo.v1', '', ''),
      host('com.foo', '', 'v1'),
      host('com.foo', '1', 'x'),
      host('com.foo', 'x', '1'),
      host('com.foo', '1.0', ''),
      host('com.foo.1', '0', ''),
      host('com.foo', 'weird version/with:chars', ''),
      host('com.foo', 'weird version with chars', ''),
    ];
    expect(new Set(hosts).size).toBe(hosts.length);
  });

  it('makes DNS-1123 labels of any value, hashing what it had to replace', () => {
    expect(markedLabel('g', '')).toBe('');
    expect(markedLabel('g', '灰度')).toMatch(/^g-[0-9a-f]{6}$/);
    expect(markedLabel('v', 'x'.repeat(100)).length).toBeLessThanOrEqual(63);
  });
});
