/**
 * Property-based, end to end: random static registry files, random configurations and random
 * sink directories thrown at `sync --once` (in-process, through the CLI entry), with the files
 * and stdout sinks. Whatever the input:
 * - nothing outside the sink directory is created, changed or deleted;
 * - the command returns a documented exit code, never throws, leaves no uncaught exception;
 * - a secret put under a secret-like metadata key appears in no output, file or log line;
 * - every dropped entry is named: a bad instance or service has a log line (or the whole run
 *   stops with a named error).
 * A fixed seed and run count keep it fast and repeatable; a failure prints the seed and path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { main } from '../../src/cli/main.js';

const secret = 'Zq7SecretValueXyz';
/** Under `card.pin`: a secret only for configs that add `pin` (or `*.pin`) to the deny-list. */
const pin = 'Pin4711ValueQrs';

// ---- generators -----------------------------------------------------------------------------

const goodAddress = fc.oneof(
  fc
    .tuple(fc.integer({ min: 1, max: 254 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 254 }))
    .map(([a, b, c]) => `10.${a}.${b}.${c}`),
  fc.constantFrom('2001:db8::5', 'fd00::1:2', 'db.example.com', 'orders-0.orders.svc.cluster.local'),
);
/** Addresses no ServiceEntry can carry: each must be dropped and named. */
const badAddress = fc.constantFrom(
  'localhost',
  'db',
  '999.1.1.1',
  '10.0.0.256',
  '1.2.3',
  'db.2024',
  'bad_host!.example',
  'has space.example',
  '-lead.example',
  'ünïcode.example',
  `${'a'.repeat(64)}.example`,
);
const badPort = fc.constantFrom<unknown>(0, -1, 65536, 70000, 1.5, 'eighty', null);

/** Metadata keys that must never become labels (default deny-list), in the spellings users write. */
const secretKey = fc
  .tuple(
    fc.constantFrom('', 'app.', 'spring.datasource.', 'mysql/', 'X-'),
    fc.constantFrom(
      'password',
      'Password',
      'passwd',
      'secret',
      'client_secret',
      'token',
      'accessToken',
      'apiKey',
      'api-key',
      'API_KEY',
      'accessKey',
      'secretKey',
      'credential',
      'privateKey',
    ),
  )
  .map(([p, k]) => `${p}${k}`);
const ordinaryMetadata = fc.dictionary(
  fc.constantFrom('version', 'app', 'zone', 'bad key!', 'x'.repeat(70), 'team', 'a/b/c'),
  fc.oneof(fc.constantFrom('v1', 'orders', 'az-1', '', 'bad value!', 'y'.repeat(70)), fc.string({ maxLength: 12 })),
  { maxKeys: 3 },
);

interface GenInstance {
  readonly raw: Record<string, unknown>;
  /** Why it must be dropped, or undefined for a good instance. */
  readonly bad?: 'address' | 'port';
}

const instance: fc.Arbitrary<GenInstance> = fc
  .record({
    kind: fc.constantFrom('good', 'good', 'good', 'bad-address', 'bad-port'),
    good: goodAddress,
    badAddr: badAddress,
    port: fc.integer({ min: 1, max: 65535 }),
    badPort,
    protocol: fc.option(fc.constantFrom('http', 'grpc', 'dubbo', 'tri', 'tcp', 'weird proto'), { nil: undefined }),
    weight: fc.option(fc.constantFrom(1, 2, 100), { nil: undefined }),
    metadata: ordinaryMetadata,
    secrets: fc.array(secretKey, { maxLength: 2 }),
    extraSecret: fc.boolean(),
  })
  .map((g) => {
    const metadata: Record<string, string> = { ...g.metadata };
    for (const k of g.secrets) metadata[k] = secret;
    if (g.extraSecret) metadata['card.pin'] = pin; // a secret only where the config says so
    const raw: Record<string, unknown> = {
      address: g.kind === 'bad-address' ? g.badAddr : g.good,
      port: g.kind === 'bad-port' ? g.badPort : g.port,
      metadata,
      ...(g.protocol !== undefined ? { protocol: g.protocol } : {}),
      ...(g.weight !== undefined ? { weight: g.weight } : {}),
    };
    return g.kind === 'good'
      ? { raw }
      : { raw, bad: g.kind === 'bad-address' ? ('address' as const) : ('port' as const) };
  });

const serviceName = fc.oneof(
  fc.constantFrom('orders', 'payments', 'com.example.DemoService', 'UPPER_case', 'a', 'orders'),
  fc.string({ minLength: 1, maxLength: 20 }),
);

interface GenService {
  readonly raw: unknown;
  readonly instances: readonly GenInstance[];
}

const service: fc.Arbitrary<GenService> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .record({
        name: serviceName,
        namespace: fc.constantFrom('', 'public', 'dev', '2024'),
        group: fc.constantFrom('', 'DEFAULT_GROUP', 'blue', '2024'),
        host: fc.option(fc.constantFrom('ext.example.com', '10.1.2.3', 'orders.2024', 'bad_host.example', 'x.io'), {
          freq: 4,
          nil: undefined,
        }),
        ports: fc.option(
          fc.array(
            fc.record({
              number: fc.integer({ min: 1, max: 65535 }),
              protocol: fc.constantFrom('HTTP', 'TCP', 'grpc', 'nope'),
              name: fc.option(fc.constantFrom('http', 'http_80', 'bad name!', 'HTTP', 'x'.repeat(63)), {
                nil: undefined,
              }),
            }),
            { minLength: 1, maxLength: 2 },
          ),
          { freq: 3, nil: undefined },
        ),
        instances: fc.array(instance, { minLength: 1, maxLength: 4 }),
      })
      .map((s) => ({
        raw: {
          name: s.name,
          namespace: s.namespace,
          group: s.group,
          ...(s.host !== undefined ? { host: s.host } : {}),
          ...(s.ports !== undefined
            ? {
                ports: s.ports.map((p) => ({
                  number: p.number,
                  protocol: p.protocol,
                  ...(p.name ? { name: p.name } : {}),
                })),
              }
            : {}),
          instances: s.instances.map((i) => i.raw),
        },
        instances: s.instances,
      })),
  },
  // Whatever a careless file may hold where a service should be.
  { weight: 1, arbitrary: fc.anything({ maxDepth: 2 }).map((raw) => ({ raw, instances: [] })) },
);

/** The file's text, and the services in it when it holds a list of them. */
const registryFile: fc.Arbitrary<{ text: string; services?: readonly GenService[] }> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .array(service, { maxLength: 5 })
      .map((services) => ({ text: JSON.stringify({ services: services.map((s) => s.raw) }), services })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('not: [valid', '', '[]', '{"services": 3}', '\u0000\u00ff').map((text) => ({ text })),
  },
);

const sinkSetup = fc.record({
  /** Where the sink directory is, as written in the config (relative to the config's directory). */
  dir: fc.constantFrom('out', './out/', 'a b/out', 'ünï/out', 'deep/x/../out', 'out', '../sibling-out'),
  absolute: fc.boolean(),
  preexisting: fc.oneof(
    { weight: 1, arbitrary: fc.constantFrom('none', 'empty', 'foreign', 'owned', 'junk') },
    // Hostile contents: owned objects naming paths outside, symlinks leading outside.
    { weight: 2, arbitrary: fc.constantFrom('traversal', 'absolute', 'symlink-namespace', 'symlink-file') },
  ),
});

const config = fc.record({
  sink: fc.constantFrom('files', 'files', 'files', 'files', 'stdout', 'output-yaml', 'output-json'),
  hostTemplate: fc.oneof(
    {
      weight: 12,
      arbitrary: fc.constantFrom(
        undefined,
        '{service}.{group}.{namespace}.static',
        '{service}.{group}',
        '{service}.example',
      ),
    },
    // Refused at load (exit 2, naming the field).
    { weight: 1, arbitrary: fc.constantFrom('{service}.2024', '{service}', '{nope}.x') },
  ),
  targetNamespace: fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom('default', 'mesh') },
    { weight: 1, arbitrary: fc.constant('Bad_NS') },
  ),
  secretAdd: fc.constantFrom<string[] | undefined>(undefined, undefined, ['pin'], ['*.pin', 'otp']),
  excludeMetadata: fc.constantFrom<string[] | undefined>(undefined, ['version']),
  exportTo: fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom<string[] | undefined>(undefined, ['.'], ['*']) },
    { weight: 1, arbitrary: fc.constant(['bad ns!']) },
  ),
  policy: fc.constantFrom('sync', 'sync', 'sync', 'upsert-only', 'create-only'),
  dryRun: fc.constantFrom(false, false, false, true),
  logLevel: fc.constantFrom('info', 'debug', 'trace'),
});

// ---- helpers ----------------------------------------------------------------------------------

/**
 * path → content hash of every file under `root`, except those under `except` (the sink
 * directory). The sink directory's own ancestors are left out too: creating the directory a
 * config names, parents included, is the sink's business.
 */
async function snapshot(root: string, except: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (p === except || p.startsWith(except + sep)) continue;
      if (e.isDirectory() && except.startsWith(p + sep)) {
        await walk(p);
        continue;
      }
      if (e.isDirectory()) {
        out.set(`${relative(root, p)}/`, 'dir');
        await walk(p);
      } else {
        const data = e.isFile() ? await readFile(p) : Buffer.from('special');
        out.set(relative(root, p), createHash('sha256').update(data).digest('hex'));
      }
    }
  };
  await walk(root);
  return out;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

const ownedObject = (name: string, service: string) =>
  [
    'apiVersion: networking.istio.io/v1',
    'kind: ServiceEntry',
    'metadata:',
    `  name: ${name}`,
    '  namespace: default',
    '  labels: {app.kubernetes.io/managed-by: registry-bridge, registry-bridge.io/source: s}',
    `  annotations: {registry-bridge.io/service: ${service}, registry-bridge.io/content-hash: "0"}`,
    'spec: {hosts: [gone.example], location: MESH_INTERNAL, resolution: STATIC, ports: [{number: 80, name: http, protocol: HTTP}]}',
    '',
  ].join('\n');

async function prepareSink(sinkDir: string, kind: string, base: string): Promise<void> {
  if (kind === 'none') return;
  await mkdir(join(sinkDir, 'default'), { recursive: true });
  if (kind === 'foreign') {
    await writeFile(join(sinkDir, 'README.txt'), 'not ours\n');
    await writeFile(
      join(sinkDir, 'default', 'foreign.yaml'),
      'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: orders.example, namespace: default}\nspec: {hosts: [orders.example]}\n',
    );
    await writeFile(join(sinkDir, 'default', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n');
  }
  if (kind === 'owned')
    await writeFile(join(sinkDir, 'default', 'gone.example.yaml'), ownedObject('gone.example', 's///gone'));
  if (kind === 'junk') await mkdir(join(sinkDir, 'default', 'sub', 'dir'), { recursive: true });
  if (kind === 'traversal') {
    // Whatever depth the sink is at, one of these names reaches base/victim.yaml.
    for (const [i, up] of ['../..', '../../..', '../../../..'].entries())
      await writeFile(join(sinkDir, 'default', `evil-${i}.yaml`), ownedObject(`${up}/victim`, `s///evil-${i}`));
  }
  if (kind === 'absolute')
    await writeFile(join(sinkDir, 'default', 'abs.yaml'), ownedObject(join(base, 'victim'), 's///abs'));
  if (kind === 'symlink-namespace') {
    // The namespace directory `mesh` (a target namespace the configs use) leads outside.
    await symlink(join(base, 'sibling'), join(sinkDir, 'mesh'));
  }
  if (kind === 'symlink-file') {
    await symlink(join(base, 'victim.yaml'), join(sinkDir, 'default', 'gone.example.yaml'));
    await symlink(join(base, 'sibling', 'victim.yaml'), join(sinkDir, 'default', 'orders.static.yaml'));
  }
}

interface LogLine {
  readonly level?: number;
  readonly msg?: string;
  readonly [k: string]: unknown;
}

// ---- the property -----------------------------------------------------------------------------

let root: string;
const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => uncaught.push(err);
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rb-props-'));
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
});
afterAll(async () => {
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  await rm(root, { recursive: true, force: true });
});

describe('sync --once under random registries, configurations and sink directories', () => {
  it('keeps its invariants', async () => {
    const cwdBefore = (await readdir(process.cwd())).sort();
    let run = 0;
    const stats = { codes: {} as Record<number, number>, objects: 0, pinAsLabel: 0 };
    await fc.assert(
      fc.asyncProperty(registryFile, config, sinkSetup, async (registry, cfg, sink) => {
        run += 1;
        const base = join(root, `run-${run}`);
        const cfgDir = join(base, 'cfg');
        await mkdir(cfgDir, { recursive: true });
        // Files outside the sink that nothing may touch: beside the config, above it, in a sibling.
        await writeFile(join(base, 'victim.yaml'), 'keep me\n');
        await mkdir(join(base, 'sibling'), { recursive: true });
        await writeFile(join(base, 'sibling', 'victim.yaml'), 'keep me too\n');
        const sinkDir = resolve(cfgDir, sink.dir);
        await prepareSink(sinkDir, sink.preexisting, base);
        await writeFile(join(cfgDir, 'reg.json'), registry.text);
        // Written a while ago: the static source reads a file only once it has settled.
        const past = new Date(Date.now() - 60_000);
        await utimes(join(cfgDir, 'reg.json'), past, past);

        const source: Record<string, unknown> = { name: 's', kind: 'static', static: { path: 'reg.json' } };
        if (cfg.hostTemplate !== undefined) source.hostTemplate = cfg.hostTemplate;
        source.targetNamespace = cfg.targetNamespace;
        source.serviceEntry = {
          ...(cfg.secretAdd ? { secretMetadata: { add: cfg.secretAdd } } : {}),
          ...(cfg.excludeMetadata ? { excludeMetadata: cfg.excludeMetadata } : {}),
          ...(cfg.exportTo ? { exportTo: cfg.exportTo } : {}),
        };
        const sinkConfig =
          cfg.sink === 'files' ? { kind: 'files', dir: sink.absolute ? sinkDir : sink.dir } : { kind: 'stdout' };
        await writeFile(
          join(cfgDir, 'config.yaml'),
          JSON.stringify({ sources: [source], sink: sinkConfig, policy: { mode: cfg.policy } }),
        );

        const before = await snapshot(base, sinkDir);
        const stdout: string[] = [];
        const stderr: string[] = [];
        const argv = ['sync', '--once', '-c', join(cfgDir, 'config.yaml'), '--log-level', cfg.logLevel];
        if (cfg.sink === 'output-yaml') argv.push('-o', 'yaml');
        if (cfg.sink === 'output-json') argv.push('-o', 'json');
        if (cfg.dryRun) argv.push('--dry-run');
        // No crash: main resolves with a documented exit code.
        const code = await main(argv, {
          stdout: { write: (s: string) => (stdout.push(s), true) },
          stderr: { write: (s: string) => (stderr.push(s), true) },
          env: {},
        } as never);
        expect([0, 1, 2, 3, 4]).toContain(code);
        expect(uncaught).toEqual([]);

        // Nothing outside the sink directory changed.
        expect(await snapshot(base, sinkDir)).toEqual(before);

        // No secret anywhere: stdout, stderr, written files.
        const written = await filesUnder(sinkDir);
        const outputs = [
          stdout.join(''),
          stderr.join(''),
          ...(await Promise.all(written.map((f) => readFile(f, 'utf8')))),
        ];
        for (const text of outputs) expect(text).not.toContain(secret);
        if (cfg.secretAdd !== undefined) for (const text of outputs) expect(text).not.toContain(pin);
        stats.codes[code] = (stats.codes[code] ?? 0) + 1;
        stats.objects += (outputs.join('').match(/kind: ServiceEntry|"kind":"ServiceEntry"/g) ?? []).length;
        if (cfg.secretAdd === undefined && outputs.some((t) => t.includes(pin))) stats.pinAsLabel += 1;

        // Every dropped entry is named.
        const text = stderr.join('');
        const lines: LogLine[] = text
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as LogLine);
        if (code === 2 || (code === 1 && /registry-bridge: /.test(text))) {
          // The run as a whole was refused: one named error says why.
          expect(text).toMatch(/registry-bridge: |"level":(50|60)/);
          return;
        }
        const services = registry.services;
        if (services === undefined) {
          // Not a list of services: the source is unavailable, and says so.
          expect(code).toBe(1);
          expect(lines.some((l) => l.msg?.includes('source unavailable'))).toBe(true);
          return;
        }
        const warnings = lines.filter((l) => (l.level ?? 0) >= 40);
        services.forEach((s, i) => {
          s.instances.forEach((inst, j) => {
            if (!inst.bad) return;
            const address = String(inst.raw.address);
            const port = String(inst.raw.port);
            const named = warnings.some(
              (l) =>
                (l.msg === 'instance rejected' && l.instance === `${address}:${port}`) ||
                (l.msg === 'registry entry rejected' &&
                  typeof l.ref === 'string' &&
                  l.ref.startsWith(`services[${i}]`) &&
                  (l.ref.endsWith(`.instances[${j}]`) || !l.ref.includes('.instances['))) ||
                (l.msg === 'service skipped' && l.service === (s.raw as { name?: unknown }).name),
            );
            expect(
              named,
              `services[${i}].instances[${j}] (${address}:${port}, bad ${inst.bad}) is not named in:\n${text}`,
            ).toBe(true);
          });
        });
      }),
      { seed: 20261204, numRuns: 100, endOnFailure: true },
    );
    expect((await readdir(process.cwd())).sort()).toEqual(cwdBefore);
    // The runs exercised the whole pipeline: objects were written, runs converged, degraded and
    // were refused; and `card.pin` did become a label where no config made it a secret (so the
    // secret checks above can see a leak).
    expect(stats.objects).toBeGreaterThan(20);
    expect(stats.codes[0] ?? 0).toBeGreaterThan(0);
    expect(stats.codes[4] ?? 0).toBeGreaterThan(0);
    expect(stats.codes[2] ?? 0).toBeGreaterThan(0);
    expect(stats.pinAsLabel).toBeGreaterThan(0);
  }, 120_000);
});
