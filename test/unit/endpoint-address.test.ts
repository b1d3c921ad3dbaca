import { describe, expect, it } from 'vitest';
import { endpointAddress } from '../../src/synth/index.js';

describe('endpointAddress', () => {
  it.each([
    ['IPv4 unchanged', '10.0.0.1', { address: '10.0.0.1' }],
    ['DNS name lowercased', 'Db-1.Corp.Example', { address: 'db-1.corp.example' }],
    ['IPv6 in canonical short form', 'FD00:0:0:0:0:0:0:2', { address: 'fd00::2' }],
    [
      'zone of a ULA address stripped',
      'fd00:0:0:0:0:0:0:2%eth0',
      { address: 'fd00::2', stripped: 'IPv6 zone "%eth0" removed (Envoy cannot use a scoped address)' },
    ],
    [
      'link-local with zone rejected, naming why',
      'fe80::1%eth0',
      { problem: 'link-local IPv6 address with zone "eth0" is reachable only on the registering host\'s link' },
    ],
    ['a short name is a problem', 'orders', { problem: expect.stringMatching(/short name/) as string }],
  ])('%s', (_name, raw, expected) => {
    expect(endpointAddress(raw)).toEqual(expected);
  });
});
