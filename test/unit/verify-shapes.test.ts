/**
 * The proxy hop on payloads captured from the real istiod (test/integration/verify-shapes.test.ts
 * with RB_CAPTURE_FIXTURES=1): every ServiceEntry shape, as a plain probe and as a DNS-capturing
 * sidecar sees it. A present object is never reported missing; of two TCP entries without
 * addresses on one port, the loser is reported with the host that holds the port.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkProxy, expectationOfObject, type KubeServiceEntry } from '../../src/verify/compare.js';
import { parseConfigDump } from '../../src/verify/proxy-config.js';
import { parseRegistryz } from '../../src/verify/registryz.js';
import { COLLISION_PORT, shapes } from '../fixtures/istiod/shapes.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'istiod');
const versions = readdirSync(fixtures).filter((d) =>
  existsSync(join(fixtures, d, 'shapes', 'config_dump-default.json')),
);
const all = shapes();
const NOW = Date.parse('2026-12-04T00:00:00Z');

describe.each(versions)('captured from istiod %s', (version) => {
  const dir = join(fixtures, version, 'shapes');

  it('registryz: every shape parses, with its port, protocol, resolution and addresses', () => {
    const { entries, dropped } = parseRegistryz(readFileSync(join(dir, 'registryz.json'), 'utf8'));
    expect(dropped).toBe(0);
    for (const s of all) {
      const e = entries.find((x) => x.hostname === s.host);
      expect(e, s.id).toBeDefined();
      expect(e!.ports).toEqual([{ name: `${s.protocol.toLowerCase()}-${s.port}`, port: s.port, protocol: s.protocol }]);
      expect(e!.resolution).toBe(s.resolution);
      const vip = (s.serviceEntry.spec as { addresses?: string[] }).addresses?.[0];
      if (vip) expect(e!.addresses).toContain(vip);
    }
  });
  describe.each(['default', 'dns-capture'])('%s probe', (mode) => {
    const dump = parseConfigDump(readFileSync(join(dir, `config_dump-${mode}.json`), 'utf8'));
    // The DNS-capturing probe also holds the DNS name table (NDS) istiod sent it.
    const ndsFile = join(dir, 'nds-dns-capture.json');
    const view =
      mode === 'dns-capture' && existsSync(ndsFile)
        ? {
            ...dump,
            nameTable: new Map(
              Object.entries(JSON.parse(readFileSync(ndsFile, 'utf8')) as Record<string, { ips: string[] }>),
            ),
          }
        : dump;
    const observed = {
      ok: true as const,
      source: `config_dump-${mode}.json`,
      value: { namespace: 'default', view, kinds: new Set(['cluster', 'listener', 'route'] as const) },
    };
    const check = (s: (typeof all)[number]) =>
      checkProxy(expectationOfObject(s.serviceEntry as unknown as KubeServiceEntry), observed, NOW);

    it.each(all.filter((s) => s.port !== COLLISION_PORT).map((s) => [s.id, s] as const))('%s is present', (_, s) => {
      const c = check(s);
      expect(c.detail).toEqual([]);
      expect(c.status).toBe('ok');
    });

    it('the listener kinds seen: VIP-bound listeners without server_names, 0.0.0.0 ones with', () => {
      const tls = all.filter((s) => s.protocol === 'TLS' && s.addresses && !s.virtualService);
      for (const s of tls) {
        const l = view.listeners.find(
          (x) => x.port === s.port && x.address === (s.serviceEntry.spec as { addresses: string[] }).addresses[0],
        );
        expect(l, s.id).toBeDefined();
        expect(l!.filterChains.find((fc) => fc.tcpClusters.length > 0)!.serverNames).toEqual([]);
      }
      const sni = all.find((s) => s.id === 'tls-dns-novip-novs')!;
      const chains = view.listeners.filter((x) => x.port === sni.port).flatMap((x) => x.filterChains);
      expect(chains.some((fc) => fc.serverNames.includes(sni.host))).toBe(mode === 'default');
    });

    it.runIf(mode === 'dns-capture')('a host with a VIP listener but no NDS entry is missing, naming both', () => {
      const s = all.find((x) => x.id === 'tcp-static-novip-novs')!;
      expect(view.nameTable?.has(s.host)).toBe(true);
      const table = new Map(view.nameTable);
      table.delete(s.host);
      const c = checkProxy(
        expectationOfObject(s.serviceEntry as unknown as KubeServiceEntry),
        { ...observed, value: { ...observed.value, view: { ...view, nameTable: table } } },
        NOW,
      );
      expect(c.status).toBe('missing');
      expect(c.detail).toEqual([
        expect.stringMatching(
          /^no entry for tcp-static-novip-novs\.shapes\.example\.com in the DNS name table \(NDS\), though listener 240\.240\.\d+\.\d+_\d+ is bound to its address: a DNS-capturing sidecar resolves it upstream and misses that listener$/,
        ),
      ]);
    });

    it('two TCP entries without addresses on one port: one wins 0.0.0.0, the other is named missing with the winner', () => {
      const both = all.filter((s) => s.port === COLLISION_PORT);
      const verdicts = both.map((s) => ({ s, c: check(s) }));
      const ok = verdicts.filter((v) => v.c.status === 'ok');
      const lost = verdicts.filter((v) => v.c.status !== 'ok');
      if (mode === 'dns-capture' && lost.length === 0) return; // each got its auto-allocated VIP listener
      expect(ok).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.c.detail[0]).toBe(
        `listener 0.0.0.0_${COLLISION_PORT} sends TCP connections to outbound|${COLLISION_PORT}||${ok[0]!.s.host}, not outbound|${COLLISION_PORT}||${lost[0]!.s.host}: another ServiceEntry holds port ${COLLISION_PORT}: ${ok[0]!.s.host} (give each TCP ServiceEntry its own addresses)`,
      );
    });
  });
});
