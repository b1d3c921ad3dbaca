import { describe, expect, it } from 'vitest';
import { parseDubboNacosName } from '../../adapters/nacos/dubbo-name.js';
import { dubboShape } from '../../adapters/nacos/dubbo.js';

describe('parseDubboNacosName', () => {
  const rows: {
    name: string;
    input: string;
    md?: Record<string, string>;
    want: ReturnType<typeof parseDubboNacosName>;
  }[] = [
    {
      name: 'all four parts',
      input: 'providers:org.apache.dubbo.demo.DemoService:1.0.0:g1',
      want: { category: 'providers', interface: 'org.apache.dubbo.demo.DemoService', version: '1.0.0', group: 'g1' },
    },
    {
      name: 'empty group: trailing colon',
      input: 'providers:org.apache.dubbo.demo.DemoService:1.0.0:',
      want: { category: 'providers', interface: 'org.apache.dubbo.demo.DemoService', version: '1.0.0', group: '' },
    },
    {
      name: 'empty version and group',
      input: 'providers:com.foo.Api::',
      want: { category: 'providers', interface: 'com.foo.Api', version: '', group: '' },
    },
    {
      name: 'group only',
      input: 'providers:com.foo.Api::g2',
      want: { category: 'providers', interface: 'com.foo.Api', version: '', group: 'g2' },
    },
    {
      name: 'old Dubbo: interface only',
      input: 'providers:com.foo.Api',
      want: { category: 'providers', interface: 'com.foo.Api', version: '', group: '' },
    },
    {
      name: 'old Dubbo: three parts default to version',
      input: 'providers:com.foo.Api:2.0',
      want: { category: 'providers', interface: 'com.foo.Api', version: '2.0', group: '' },
    },
    {
      name: 'old Dubbo: three parts, metadata says group',
      input: 'providers:com.foo.Api:blue',
      md: { group: 'blue' },
      want: { category: 'providers', interface: 'com.foo.Api', version: '', group: 'blue' },
    },
    {
      name: 'old Dubbo: default.group in metadata',
      input: 'providers:com.foo.Api:blue',
      md: { 'default.group': 'blue' },
      want: { category: 'providers', interface: 'com.foo.Api', version: '', group: 'blue' },
    },
    {
      name: 'consumers are parsed (and skipped later)',
      input: 'consumers:com.foo.Api:1.0.0:',
      want: { category: 'consumers', interface: 'com.foo.Api', version: '1.0.0', group: '' },
    },
    { name: 'an application name is not Dubbo', input: 'demo-provider', want: undefined },
    { name: 'unknown category', input: 'services:com.foo.Api:1:', want: undefined },
    { name: 'too many parts', input: 'providers:com.foo.Api:1:g:x', want: undefined },
    { name: 'not an interface name', input: 'providers:not an iface:1:', want: undefined },
  ];
  for (const r of rows) it(r.name, () => expect(parseDubboNacosName(r.input, r.md)).toEqual(r.want));
});

describe('dubboShape: the same host with and without the trailing colon', () => {
  const rows: { name: string; a: string; b: string }[] = [
    { name: 'version, no group', a: 'providers:com.foo.Api:1.0.0:', b: 'providers:com.foo.Api:1.0.0' },
    { name: 'no version, no group', a: 'providers:com.foo.Api::', b: 'providers:com.foo.Api' },
  ];
  for (const r of rows) {
    it(r.name, () => {
      const a = dubboShape(r.a, {});
      const b = dubboShape(r.b, {});
      expect(typeof a).toBe('object');
      expect(a).toEqual(b);
    });
  }
  it('uses the shared Dubbo naming: interface as the name, marked version and group labels', () => {
    expect(dubboShape('providers:org.apache.dubbo.demo.DemoService:1.0.0:blue', { application: 'demo' })).toMatchObject(
      {
        name: 'org.apache.dubbo.demo.DemoService',
        group: 'blue',
        host: 'org.apache.dubbo.demo.demoservice.v-1-0-0.g-blue.dubbo',
        attributes: {
          interface: 'org.apache.dubbo.demo.DemoService',
          version: '1.0.0',
          dubboGroup: 'blue',
          application: 'demo',
        },
      },
    );
    expect(dubboShape('providers:com.foo.Api::', {})).toMatchObject({ host: 'com.foo.api.dubbo' });
  });
  it('gives consumers no service and plain names no Dubbo shape', () => {
    expect(dubboShape('consumers:com.foo.Api:1.0.0:', {})).toBe('not-a-service');
    expect(dubboShape('orders', {})).toBeUndefined();
  });
});
