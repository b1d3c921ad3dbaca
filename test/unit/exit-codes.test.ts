import { createServer, type Server } from 'node:net';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { capture } from './cli-harness.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { httpGet, listenWired, wire } from './wiring-harness.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rb-exit-'));
  await writeFile(join(dir, 'one.json'), JSON.stringify({ services: [svc('a')] }));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const svc = (name: string) => ({ name, protocol: 'http', instances: [{ address: '10.0.0.1', port: 80 }] });

async function config(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, body);
  return path;
}

async function sync(cfg: string, ...extra: string[]) {
  const c = capture();
  const code = await main(['sync', '-c', cfg, '--log-level', 'silent', ...extra], c.io);
  return { code, err: c.err() };
}

describe('configuration errors exit 2 at load, naming the field', () => {
  it('a {env:} secret whose variable is not set', async () => {
    const cfg = await config(
      'env-secret.yaml',
      'sources: [{name: n, kind: nacos, nacos: {servers: ["http://127.0.0.1:1"], push: false, auth: {username: u, password: {env: RB_NO_SUCH_VAR}}}}]\n',
    );
    const r = await sync(cfg, '--once', '-o', 'yaml');
    expect(r.code).toBe(2);
    expect(r.err).toContain('sources[0].nacos.auth.password: environment variable RB_NO_SUCH_VAR is not set');
  });

  it('a {file:} secret that cannot be read', async () => {
    const cfg = await config(
      'file-secret.yaml',
      'sources: [{name: z, kind: zookeeper, zookeeper: {connect: "127.0.0.1:1", auth: {scheme: digest, credentials: {file: no-such-secret}}}}]\n',
    );
    const r = await sync(cfg, '--once', '-o', 'yaml');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(
      /sources\[0\]\.zookeeper\.auth\.credentials: cannot read secret file .*no-such-secret \(ENOENT\)/,
    );
  });

  it.each([
    [
      'a bad namespace name',
      '[Bad_NS]',
      /sources\[0\]\.serviceEntry\.exportTo\[0\]: expected "\*", "\.", "~" or a namespace name/,
    ],
    [
      '"~" with others',
      '["~", "."]',
      /sources\[0\]\.serviceEntry\.exportTo: "~" \(visible nowhere\) cannot be combined/,
    ],
    ['a duplicate', '[".", "."]', /sources\[0\]\.serviceEntry\.exportTo: "\." is listed twice/],
  ])('an invalid exportTo (%s)', async (_name, exportTo, message) => {
    const cfg = await config(
      `export-${exportTo.length}.yaml`,
      `sources: [{name: s, kind: static, static: {path: one.json}, serviceEntry: {exportTo: ${exportTo}}}]\n`,
    );
    const r = await sync(cfg, '--once', '-o', 'yaml');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('a config file of hundreds of thousands of sources is refused before it is parsed', async () => {
    const line = (i: number) => `  - {name: s${i}, kind: static, static: {path: one.json}}\n`;
    const cfg = await config('huge.yaml', `sources:\n${Array.from({ length: 300_000 }, (_, i) => line(i)).join('')}`);
    const r = await sync(cfg, '--once', '-o', 'yaml');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/config file .*huge\.yaml is larger than 1048576 bytes/);
  });

  it('more than 1,000 sources are refused, naming sources', async () => {
    const cfg = await config(
      'many.yaml',
      `sources:\n${Array.from({ length: 1001 }, (_, i) => `  - {name: s${i}, kind: static, static: {path: one.json}}\n`).join('')}`,
    );
    const r = await sync(cfg, '--once', '-o', 'yaml');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^sources: at most 1000 sources$/m);
  });
});

describe('exit codes of sync --once', () => {
  it('maxDeletesPerRun reached with deletions pending is 4, not 0; 0 once they are done', async () => {
    const reg = join(dir, 'cap.json');
    const out = join(dir, 'cap-out');
    await writeFile(reg, JSON.stringify({ services: ['a', 'b', 'c', 'd'].map(svc) }));
    // 3 of 4 entries gone at once is also a sharp shrink (policy.shrinkHold, tested below): off
    // here, so that the cap alone decides.
    const cfg = await config(
      'cap.yaml',
      `sources: [{name: s, kind: static, static: {path: cap.json}}]\nsink: {kind: files, dir: cap-out}\npolicy: {maxDeletesPerRun: 1, shrinkHold: {enabled: false}}\n`,
    );
    expect((await sync(cfg, '--once')).code).toBe(0);
    await writeFile(reg, JSON.stringify({ services: [svc('a')] }));
    const codes: number[] = [];
    const left: number[] = [];
    for (let i = 0; i < 3; i++) {
      codes.push((await sync(cfg, '--once')).code);
      left.push((await readdir(join(out, 'default'))).length);
    }
    expect(codes).toEqual([4, 4, 0]);
    expect(left).toEqual([3, 2, 1]);
  });

  describe('a source that loses most of its services at once (policy.shrinkHold)', () => {
    /** Four services written by a first run into files; the registry then lists `now`. */
    async function shrunk(name: string, now: string[], policy: string) {
      const reg = join(dir, `${name}.json`);
      await writeFile(reg, JSON.stringify({ services: ['a', 'b', 'c', 'd'].map(svc) }));
      const cfg = await config(
        `${name}.yaml`,
        `sources: [{name: s, kind: static, static: {path: ${name}.json}}]\nsink: {kind: files, dir: ${name}-out}\npolicy: ${policy}\n`,
      );
      expect((await sync(cfg, '--once')).code).toBe(0);
      await writeFile(reg, JSON.stringify({ services: now.map(svc) }));
      const files = async () => (await readdir(join(dir, `${name}-out`, 'default'))).sort();
      return { reg, cfg, files };
    }

    it('still shrunk on the second read: nothing deleted, one warn line, exit 4; --allow-shrink deletes, exit 0', async () => {
      const t = await shrunk('shrink', ['a'], '{shrinkHold: {recheckAfter: 100ms}}');
      const before = await t.files();
      expect(before).toHaveLength(4);
      const c = capture();
      const code = await main(['sync', '-c', t.cfg, '--once'], c.io);
      expect(code).toBe(4);
      expect(await t.files()).toEqual(before);
      const lines = c.err().split('\n');
      // Read twice: the warning before the second read, then the held deletions and one summary.
      expect(lines.filter((l) => l.includes('reading the sources again in 100ms'))).toHaveLength(1);
      const held = lines.filter((l) => l.includes('"action":"keep"'));
      expect(held).toHaveLength(6); // 3 objects, in each of the two runs
      for (const l of held)
        expect(l).toMatch(/held: source \\"s\\" would lose 3 of its 4 entries in one run \(it lists 1 service\)/);
      expect(
        lines.filter(
          (l) => l.includes('would lose 3 of its 4 entries in one run: deletions held') && l.includes('--allow-shrink'),
        ),
      ).toHaveLength(2);
      expect(lines.some((l) => l.includes('"action":"delete"'))).toBe(false);

      expect((await sync(t.cfg, '--once', '--allow-shrink')).code).toBe(0);
      expect(await t.files()).toHaveLength(1);
    });

    it('the services back by the second read: nothing deleted, exit 0', async () => {
      const t = await shrunk('recover', [], '{shrinkHold: {recheckAfter: 10s}}');
      const c = capture();
      const running = main(['sync', '-c', t.cfg, '--once'], c.io);
      // The first read found the registry empty and waits to read again: the services come back.
      for (let i = 0; !c.err().includes('reading the sources again'); i++) {
        if (i > 600) throw new Error(`no second read announced:\n${c.err()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await writeFile(t.reg, JSON.stringify({ services: ['a', 'b', 'c', 'd'].map(svc) }));
      expect(await running).toBe(0);
      expect(await t.files()).toHaveLength(4);
      expect(c.err()).toMatch(/would lose 4 of its 4 entries in one run \(it lists 0 services\)/);
      expect(c.err()).not.toContain('"action":"delete"');
    }, 60_000);

    it('policy.shrinkHold.enabled: false deletes at once, exit 0', async () => {
      const t = await shrunk('nohold', ['a'], '{shrinkHold: {enabled: false}}');
      expect((await sync(t.cfg, '--once')).code).toBe(0);
      expect(await t.files()).toHaveLength(1);
    });
  });
});

describe('continuous mode start-up', () => {
  let busy: Server;
  let busyPort = 0;
  beforeAll(async () => {
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => busy.close(() => resolve())));

  it('a port in use is one line naming server.port, exit 1', async () => {
    const cfg = await config(
      'busy.yaml',
      `sources: [{name: s, kind: static, static: {path: one.json}}]\nserver: {address: 127.0.0.1, port: ${busyPort}}\n`,
    );
    const r = await sync(cfg);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `registry-bridge: server.port: 127.0.0.1:${busyPort} is already in use (EADDRINUSE): another process listens there; stop it, or set another server.port or server.address\n`,
    );
  });

  // With net.ipv4.ip_nonlocal_bind=1 the kernel lets a process listen on any address.
  const nonlocalBind = (() => {
    try {
      return readFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', 'utf8').trim() === '1';
    } catch {
      return false;
    }
  })();
  it.skipIf(nonlocalBind)(
    'an address that is not this machine is a configuration error naming server.address, exit 2',
    async () => {
      const cfg = await config(
        'foreign-address.yaml',
        `sources: [{name: s, kind: static, static: {path: one.json}}]\nserver: {address: 192.0.2.1, port: 0}\n`,
      );
      const r = await sync(cfg);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(
        /server\.address: 192\.0\.2\.1:0: "192\.0\.2\.1" is not an address of this machine \(EADDRNOTAVAIL\)/,
      );
    },
  );

  it('/propagation with propagation checks off says how to turn them on; other 404s do not suggest it', async () => {
    const cfg = parseConfig(
      {
        sources: [{ name: 's', kind: 'static', static: { path: join(dir, 'one.json') } }],
        sink: { kind: 'files', dir: join(dir, 'prop-out') },
        server: { address: '127.0.0.1', port: 0 },
      },
      adapterFactories,
    );
    const shutdown = new AbortController();
    const { port, exit } = await listenWired(wire(cfg, dir, silentLogger()), shutdown.signal);
    const get = (path: string) => httpGet(port, path);
    const prop = await get('/propagation');
    expect(prop.status).toBe(404);
    expect(prop.body).toMatch(/propagation checks are off: .*propagation\.enabled: true/);
    const other = await get('/nope');
    expect(other.status).toBe(404);
    expect(other.body).not.toContain('/propagation');
    shutdown.abort();
    expect(await exit).toBe(0);
  });
});
