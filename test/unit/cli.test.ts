import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { main } from '../../src/cli/main.js';
import { capture as captureIo } from './cli-harness.js';

/** The CLI sees SECRET_PW in its environment: no output may carry it. */
const capture = () => captureIo({ SECRET_PW: 'hunter2-do-not-log' });

let dir: string;
const registry = (services: unknown[]) => JSON.stringify({ services });
const www = { name: 'www.baidu.com', host: 'www.baidu.com', ports: [{ number: 80, name: 'HTTP', protocol: 'HTTP' }] };
const orders = {
  name: 'orders',
  namespace: 'public',
  group: 'DEFAULT_GROUP',
  protocol: 'http',
  instances: [{ address: '10.0.0.1', port: 8080 }],
};

async function writeConfig(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, body);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rb-cli-'));
  await writeFile(join(dir, 'good.json'), registry([www, orders]));
  await writeFile(
    join(dir, 'partly-bad.json'),
    registry([
      www,
      { name: 'broken', instances: [{ address: '10.0.0.1', port: 'eighty' }] },
      { name: '', instances: [] },
      orders,
    ]),
  );
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

describe('registry-bridge sync --once', () => {
  it('renders the quickstart as YAML and exits 0', async () => {
    const c = capture();
    const code = await main(
      ['sync', '--once', '-c', 'examples/quickstart.yaml', '-o', 'yaml', '--log-level', 'silent'],
      c.io,
    );
    expect(code).toBe(0);
    const docs = parseAllDocuments(c.out()).map((d) => d.toJS());
    const www = docs.find((d) => d.metadata.name === 'www.baidu.com');
    expect(www.spec).toEqual({
      hosts: ['www.baidu.com'],
      location: 'MESH_INTERNAL',
      ports: [{ name: 'HTTP', number: 80, protocol: 'HTTP' }],
      resolution: 'DNS',
    });
  });

  it('renders JSON as a v1 List', async () => {
    const cfg = await writeConfig('json.yaml', 'sources: [{name: s, kind: static, static: {path: good.json}}]\n');
    const c = capture();
    expect(await main(['sync', '--once', '-c', cfg, '-o', 'json', '--log-level', 'silent'], c.io)).toBe(0);
    const list = JSON.parse(c.out());
    expect(list.kind).toBe('List');
    expect(list.items.map((i: { metadata: { name: string } }) => i.metadata.name)).toEqual([
      'orders.default-group.public.static',
      'www.baidu.com',
    ]);
  });

  it('exits 4 and names each bad entry, still emitting the good services', async () => {
    const cfg = await writeConfig('bad.yaml', 'sources: [{name: s, kind: static, static: {path: partly-bad.json}}]\n');
    const c = capture();
    expect(await main(['sync', '--once', '-c', cfg, '-o', 'yaml'], c.io)).toBe(4);
    expect(c.out()).toContain('name: www.baidu.com');
    expect(c.out()).toContain('orders.default-group.public.static');
    expect(c.err()).toMatch(/services\[1\] \(broken\)\.instances\[0\]/);
    expect(c.err()).toMatch(/port: Invalid input: expected number/);
    expect(c.err()).toMatch(/services\[2\].*name must not be empty/);
  });

  it('exits 2 with the path and reason for a bad config', async () => {
    const cfg = await writeConfig(
      'badcfg.yaml',
      'sources: [{name: s, kind: static, static: {path: good.json}}]\npolicy: {maxDeletesPerRun: -1}\n',
    );
    const c = capture();
    expect(await main(['sync', '--once', '-c', cfg], c.io)).toBe(2);
    expect(c.err()).toMatch(/policy\.maxDeletesPerRun: /);
    expect(c.err()).toContain(cfg);
  });

  it('exits 2 for bad usage and for a missing file', async () => {
    expect(await main(['sync', '--once', '-c', 'x.yaml', '-o', 'toml'], capture().io)).toBe(2);
    const c = capture();
    expect(await main(['sync', '--once', '-c', join(dir, 'missing.yaml')], c.io)).toBe(2);
    expect(c.err()).toMatch(/cannot read config file .*missing\.yaml \(ENOENT\)/);
  });

  it('exits 1 when a source cannot be read, and fences its deletions', async () => {
    const out = join(dir, 'gitops-fenced');
    const ok = await writeConfig(
      'fence-ok.yaml',
      `sources: [{name: s, kind: static, static: {path: good.json}}]\nsink: {kind: files, dir: ${out}}\n`,
    );
    expect(await main(['sync', '--once', '-c', ok, '--log-level', 'silent'], capture().io)).toBe(0);
    const broken = await writeConfig(
      'fence-broken.yaml',
      `sources: [{name: s, kind: static, static: {path: nowhere.json}}]\nsink: {kind: files, dir: ${out}}\n`,
    );
    const c = capture();
    expect(await main(['sync', '--once', '-c', broken], c.io)).toBe(1);
    expect(c.err()).toMatch(/nowhere\.json \(ENOENT\)/);
    expect((await readdir(join(out, 'default'))).sort()).toEqual([
      'orders.default-group.public.static.yaml',
      'www.baidu.com.yaml',
    ]);
  });

  it('files sink: creates, is idempotent, dry-run exits 3 with changes pending, then deletes what left the registry', async () => {
    const out = join(dir, 'gitops');
    const cfg = await writeConfig(
      'files.yaml',
      `sources: [{name: s, kind: static, static: {path: reg.json}}]\nsink: {kind: files, dir: ${out}}\n`,
    );
    await writeFile(join(dir, 'reg.json'), registry([www, orders]));
    expect(await main(['sync', '--once', '-c', cfg, '--log-level', 'silent'], capture().io)).toBe(0);
    const first = await readFile(join(out, 'default', 'www.baidu.com.yaml'), 'utf8');
    expect(first).toContain('registry-bridge.io/content-hash');
    // Second run: nothing to do, and --dry-run agrees.
    expect(await main(['sync', '--once', '--dry-run', '-c', cfg, '--log-level', 'silent'], capture().io)).toBe(0);
    // A service leaves the registry: dry-run reports pending changes and touches nothing.
    await writeFile(join(dir, 'reg.json'), registry([www]));
    expect(await main(['sync', '--once', '--dry-run', '-c', cfg, '--log-level', 'silent'], capture().io)).toBe(3);
    expect(await readdir(join(out, 'default'))).toHaveLength(2);
    expect(await main(['sync', '--once', '-c', cfg, '--log-level', 'silent'], capture().io)).toBe(0);
    expect(await readdir(join(out, 'default'))).toEqual(['www.baidu.com.yaml']);
    expect(await readFile(join(out, 'default', 'www.baidu.com.yaml'), 'utf8')).toBe(first);
  });

  it('keeps the last good object of a service that turned invalid, and says why', async () => {
    const out = join(dir, 'gitops-invalid');
    const cfg = await writeConfig(
      'invalid.yaml',
      `sources: [{name: s, kind: static, static: {path: inv.json}}]\nsink: {kind: files, dir: ${out}}\n`,
    );
    await writeFile(join(dir, 'inv.json'), registry([{ ...www, name: 'ext', host: 'ext.example.com' }]));
    expect(await main(['sync', '--once', '-c', cfg, '--log-level', 'silent'], capture().io)).toBe(0);
    const good = await readFile(join(out, 'default', 'ext.example.com.yaml'), 'utf8');
    // Same service, now with a host Istio would reject: reported, and the old object stays.
    await writeFile(join(dir, 'inv.json'), registry([{ ...www, name: 'ext', host: 'ext_bad.example.com' }]));
    const c = capture();
    expect(await main(['sync', '--once', '-c', cfg], c.io)).toBe(4);
    expect(c.err()).toMatch(/ext_bad.*"msg":"service skipped"/);
    expect(c.err()).toMatch(/keeping its last good object/);
    expect(await readFile(join(out, 'default', 'ext.example.com.yaml'), 'utf8')).toBe(good);
  });

  it('never writes a secret to its output', async () => {
    const cfg = await writeConfig(
      'secret.yaml',
      'sources: [{name: s, kind: static, static: {path: good.json, password: {env: SECRET_PW}}}]\n',
    );
    const c = capture();
    expect(await main(['sync', '--once', '-c', cfg, '--log-level', 'trace'], c.io)).toBe(2);
    expect(c.err() + c.out()).not.toContain('hunter2');
  });

  it('the built binary prints its version and the quickstart (the README command)', { timeout: 60_000 }, () => {
    const version = execFileSync(process.execPath, ['dist/registry-bridge.mjs', '--version'], { encoding: 'utf8' });
    expect(version.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const yaml = execFileSync(
      process.execPath,
      [
        'dist/registry-bridge.mjs',
        'sync',
        '--once',
        '-c',
        'examples/quickstart.yaml',
        '-o',
        'yaml',
        '--log-level',
        'silent',
      ],
      { encoding: 'utf8' },
    );
    expect(yaml).toContain('name: www.baidu.com');
  });
});
