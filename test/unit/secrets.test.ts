import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { NacosHttp } from '../../adapters/nacos/http.js';
import { createLogger } from '../../src/log.js';
import { defaultSecretKeys, redactText, secretKeyMatcher } from '../../src/redact.js';
import { synthOptionsOf } from '../../src/controller/wiring.js';
import { loadConfigFile } from '../../src/config/load.js';
import { adapterFactories } from '../../src/sources/registry.js';
import { synthServiceEntry } from '../../src/synth/index.js';
import { inst, options, svc } from './helpers.js';

const secret = 'S3cr3t-Value_do-not-leak';

describe('secret-like metadata keys never become endpoint labels', () => {
  const secretKeys = [
    'password',
    'PASSWORD',
    'passwd',
    'secret',
    'client_secret',
    'token',
    'accessToken',
    'X-Auth-Token',
    'apiKey',
    'api-key',
    'api_key',
    'API_KEY',
    'x.api.key',
    'accessKey',
    'secretKey',
    'credential',
    'credentials',
    'private-key',
    'privateKey',
    'spring.datasource.password',
    'spring.redis.Password',
    'db/password',
    'mysql.pwd',
  ];
  const benign = { version: '1.2.0', app: 'orders', zone: 'az-1', 'spring.application.name': 'orders' };

  it.each(secretKeys)('drops %s (matched on the key words, case-insensitive)', (key) => {
    expect(defaultSecretKeys(key)).toBe(true);
    const r = synthServiceEntry(svc('orders', [inst('10.0.0.1', 80, { metadata: { ...benign, [key]: secret } })]), {
      ...options,
      hostTemplate: '{service}.example',
    });
    expect(r.kind).toBe('ok');
    const text = JSON.stringify(r);
    expect(text).not.toContain(secret);
    if (r.kind === 'ok') expect(r.entry.object.spec.endpoints?.[0]?.labels).toEqual(benign);
    expect(r.notes.some((n) => n.code === 'label-dropped' && n.detail.includes(`"${key}" looks like a secret`))).toBe(
      true,
    );
  });

  it.each(['version', 'app', 'zone', 'keyspace', 'tokenizer', 'passwordless', 'region', 'weight'])(
    'keeps the ordinary key %s',
    (key) => expect(defaultSecretKeys(key)).toBe(false),
  );

  it('is configurable per source: add extends the defaults, useDefaults: false replaces them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rb-secret-cfg-'));
    try {
      await writeFile(join(dir, 'reg.json'), JSON.stringify({ services: [] }));
      await writeFile(
        join(dir, 'c.yaml'),
        [
          'sources:',
          '  - {name: a, kind: static, static: {path: reg.json}, serviceEntry: {secretMetadata: {add: [pin, "*.otp"]}}}',
          '  - {name: b, kind: static, static: {path: reg.json}, serviceEntry: {secretMetadata: {add: [pin], useDefaults: false}}}',
          '  - {name: c, kind: static, static: {path: reg.json}}',
          '',
        ].join('\n'),
      );
      const { config } = await loadConfigFile(join(dir, 'c.yaml'), adapterFactories);
      const [a, b, c] = config.sources.map((s) => synthOptionsOf(s, '{service}.example', 'networking.istio.io/v1'));
      expect(a!.secretMetadata('password')).toBe(true);
      expect(a!.secretMetadata('card.PIN')).toBe(true);
      expect(a!.secretMetadata('login.otp')).toBe(true);
      expect(b!.secretMetadata('pin')).toBe(true);
      expect(b!.secretMetadata('password')).toBe(false);
      expect(c!.secretMetadata('password')).toBe(true);
      expect(c!.secretMetadata('pin')).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a matcher from patterns: words, joined words and globs', () => {
    const m = secretKeyMatcher(['session-id', '*.pin']);
    expect(m('sessionId')).toBe(true);
    expect(m('http.session_id')).toBe(true);
    expect(m('session')).toBe(false);
    expect(m('card.PIN')).toBe(true);
    expect(m('pin')).toBe(false);
  });
});

describe('redactText', () => {
  const cases: [string, string][] = [
    ['query parameter', `GET /nacos/v1/ns/service/list?pageNo=1&accessToken=${secret}&namespaceId=public`],
    ['query parameter, URL-encoded name', `http://n:8848/x?access%54oken=${secret}`],
    ['form body', `username=nacos&password=${secret}`],
    ['form body with an encoded password', `username=nacos&password=${encodeURIComponent(secret)}%21+x`],
    ['JSON echo', `{"code":500,"message":"bad request","data":{"accessToken":"${secret}"}}`],
    ['JSON echo, single quotes', `{'password': '${secret}'}`],
    ['key: value text', `caused: secretKey: ${secret}, please check`],
    ['URL user-info', `http://nacos:${secret}@10.0.0.1:8848/nacos`],
    ['bearer credential', `Authorization: Bearer ${secret}`],
    ['signature parameter', `?ak=AK1&data=123&signature=${secret}`],
  ];
  it.each(cases)('removes the secret from a %s', (_name, text) => {
    const out = redactText(text);
    expect(out).not.toContain(secret);
    expect(out).not.toContain(encodeURIComponent(secret));
    expect(out).toContain('[redacted]');
  });

  it.each([
    'GET /nacos/v1/ns/service/list?pageNo=1&pageSize=1000&namespaceId=public',
    'instance 10.0.0.1:8080 rejected: port is not in 1..65535',
    'host "orders.2024": the last label "2024" is all-numeric',
    'http://10.0.0.1:8848/nacos',
  ])('leaves an ordinary text alone: %s', (text) => expect(redactText(text)).toBe(text));
});

describe('log lines', () => {
  it('never carry a secret, whether in the message, a field, an error or a nested object', () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'trace', destination: { write: (s: string) => lines.push(s) } as never });
    logger.info(`request failed: GET http://n/nacos/v1/ns/instance/list?serviceName=x&accessToken=${secret}`);
    logger.warn({ err: `HTTP 500: username=nacos&password=${secret}` }, 'login failed');
    logger.error({ err: new Error(`echo: {"accessToken":"${secret}"}`) }, 'source unavailable');
    logger.debug({ request: { url: `/x?token=${secret}`, headers: { Authorization: `Bearer ${secret}` } } }, 'sent');
    logger.info({ apiKey: secret, nested: { deeper: { password: secret } } }, 'configured');
    logger.child({ component: 'source' }).error(new Error(`x?password=${secret}`));
    expect(lines).toHaveLength(6);
    for (const line of lines) {
      expect(line).not.toContain(secret);
      expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
    expect(lines.join('')).toContain('[redacted]');
  });
});

/** A hostile HTTP server on loopback that answers errors echoing the request URL and body. */
async function echoServer(): Promise<{ server: Server; url: string; seen: string[] }> {
  const seen: string[] = [];
  const body = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
  const server = createServer((req, res) => {
    void body(req).then((b) => {
      seen.push(`${req.method} ${req.url} ${b}`);
      // Nacos 3 logs in at /v3/auth/user/login first, older servers at /v1/auth/login: both echo.
      const login = req.url?.startsWith('/nacos/v1/auth/login') || req.url?.startsWith('/nacos/v3/auth/user/login');
      if (login && !b.includes('wrong-user')) {
        if (b.includes('username=echo-login')) {
          res.writeHead(500).end(`login failed for request body ${b}`);
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ accessToken: `tok-${secret}`, tokenTtl: 18000 }));
        return;
      }
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ code: 500, message: `error handling ${req.url}`, data: { accessToken: `tok-${secret}` } }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('a Nacos server that echoes the request in its errors', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  let dir: string;
  beforeAll(async () => {
    echo = await echoServer();
    dir = await mkdtemp(join(tmpdir(), 'rb-secret-e2e-'));
  });
  afterAll(async () => {
    await new Promise((resolve) => echo.server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('the access token of an echoed URL and the form-encoded password of an echoed login body stay out of errors', async () => {
    const logger = createLogger({ level: 'silent' });
    const password = `p@ss word!${secret}`;
    /** A client of the echo server logging in as `username` (echo-login: the login itself fails, echoing its body). */
    const client = (username: string) =>
      new NacosHttp({
        source: 's',
        servers: [echo.url],
        auth: { kind: 'password', username, password },
        timeoutMs: 5000,
        logger,
      });
    const errorOf = (request: Promise<unknown>) =>
      request.then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    const viaUrl = client('nacos');
    const err1 = await errorOf(
      viaUrl.request('GET', '/v1/ns/service/list', { pageNo: '1' }, AbortSignal.timeout(5000)),
    );
    expect(err1).toBeInstanceOf(Error);
    expect(echo.seen.some((s) => s.includes(`accessToken=tok-${secret}`))).toBe(true); // the server did echo it
    expect(err1!.message).toMatch(/HTTP 500/);
    expect(err1!.message).not.toContain(secret);

    const viaLogin = client('echo-login');
    const err2 = await errorOf(viaLogin.request('GET', '/v1/ns/service/list', {}, AbortSignal.timeout(5000)));
    expect(err2!.message).toMatch(/login to Nacos server .* failed with HTTP 500/);
    expect(err2!.message).not.toContain(secret);
    expect(err2!.message).not.toContain('p%40ss');
    await viaUrl.close();
    await viaLogin.close();
  });

  it('sync --once: no injected secret in any log line or any written object', async () => {
    await writeFile(
      join(dir, 'reg.json'),
      JSON.stringify({
        services: [
          {
            name: 'orders',
            protocol: 'http',
            instances: [
              {
                address: '10.0.0.1',
                port: 8080,
                metadata: {
                  version: 'v1',
                  password: secret,
                  'spring.datasource.password': secret,
                  apiKey: secret,
                  'api-key': secret,
                  accessToken: secret,
                  secretKey: secret,
                  credential: secret,
                },
              },
            ],
          },
        ],
      }),
    );
    const out = join(dir, 'out');
    await writeFile(
      join(dir, 'c.yaml'),
      [
        'sources:',
        '  - {name: s, kind: static, static: {path: reg.json}}',
        `  - {name: n, kind: nacos, nacos: {servers: ["${echo.url}"], push: false, auth: {username: nacos, password: {env: NACOS_PW}}}}`,
        `sink: {kind: files, dir: ${out}}`,
        '',
      ].join('\n'),
    );
    const err: string[] = [];
    const stdout: string[] = [];
    const code = await main(['sync', '--once', '-c', join(dir, 'c.yaml'), '--log-level', 'trace'], {
      stdout: { write: (s: string) => (stdout.push(s), true) },
      stderr: { write: (s: string) => (err.push(s), true) },
      env: { NACOS_PW: `pw-${secret}` },
    } as never);
    expect(code).toBe(1); // the Nacos source failed; the static one was written
    const lines = err.join('').split('\n').filter(Boolean);
    expect(lines.some((l) => l.includes('HTTP 500'))).toBe(true);
    for (const line of [...lines, ...stdout]) expect(line).not.toContain(secret);
    const files = await readdir(out, { recursive: true, withFileTypes: true });
    const written = files.filter((f) => f.isFile());
    expect(written.map((f) => f.name)).toEqual(['orders.static.yaml']);
    for (const f of written) {
      const text = await readFile(join(f.parentPath, f.name), 'utf8');
      expect(text).toContain('version: v1');
      expect(text).not.toContain(secret);
    }
  });
});
