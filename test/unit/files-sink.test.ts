import { spawnSync } from 'node:child_process';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { main } from '../../src/cli/main.js';
import { capture } from './cli-harness.js';
import { createLogger } from '../../src/log.js';
import { BridgeMetrics } from '../../src/metrics.js';
import { filesSink, pathOf } from '../../src/sinks/files.js';

const W = 'www.example.com.yaml';
const A = 'api.example.com.yaml';
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rb-files-'));
});
afterAll(async () => rm(root, { recursive: true, force: true }));

const www = { name: 'www', host: 'www.example.com', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] };
const api = { name: 'api', host: 'api.example.com', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] };

/** A case directory: `<root>/<name>/a/b/` holds config and registry, the sink is `.../a/b/sink`. */
async function setup(name: string, services: unknown[]) {
  const base = join(root, name, 'a', 'b');
  await mkdir(base, { recursive: true });
  await writeFile(join(base, 'reg.json'), JSON.stringify({ services }));
  const sink = join(base, 'sink');
  const config = join(base, 'config.yaml');
  await writeFile(
    config,
    `sources: [{name: s, kind: static, static: {path: reg.json}}]\nsink: {kind: files, dir: sink}\n`,
  );
  const sync = async (...extra: string[]) => {
    const c = capture();
    const code = await main(['sync', '--once', '-c', config, ...extra], c.io);
    return { code, log: c.err() };
  };
  return { base, sink, config, sync, top: join(root, name) };
}

/** A file carrying the ownership labels of source `s`, whatever its name says. */
function ownedYaml(metadata: Record<string, unknown>, host = 'victim.example.com'): string {
  return stringify({
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: {
      ...metadata,
      labels: { 'app.kubernetes.io/managed-by': 'registry-bridge', 'registry-bridge.io/source': 's' },
      annotations: { 'registry-bridge.io/service': 's//victim' },
    },
    spec: { hosts: [host], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] },
  });
}

describe('files sink: nothing outside its directory is touched', () => {
  it('a file named ../../../victim by its metadata does not make sync --once delete victim.yaml three levels up', async () => {
    const t = await setup('traversal', [www]);
    // <top>/a/b/sink/default/../../../victim.yaml is <top>/a/victim.yaml
    const victim = join(t.top, 'a', 'victim.yaml');
    await writeFile(victim, 'precious: true\n');
    await mkdir(join(t.sink, 'default'), { recursive: true });
    await writeFile(join(t.sink, 'default', 'evil.yaml'), ownedYaml({ name: '../../../victim', namespace: 'default' }));
    const r = await t.sync();
    expect(await readFile(victim, 'utf8')).toBe('precious: true\n');
    expect(r.code).toBe(0);
    // The misplaced file is the bridge's object default/evil (its path), which nothing desires.
    expect((await readdir(join(t.sink, 'default'))).sort()).toEqual([W]);
  });

  it('absolute paths, other namespaces and unicode look-alikes in metadata never leave the directory', async () => {
    const t = await setup('metadata-tricks', [www]);
    const outside = join(t.top, 'outside');
    await mkdir(join(outside, 'default'), { recursive: true });
    const victims = ['victim.yaml', join('default', 'victim.yaml')].map((v) => join(outside, v));
    for (const v of victims) await writeFile(v, 'precious: true\n');
    await mkdir(join(t.sink, 'default'), { recursive: true });
    const tricks: Record<string, Record<string, unknown>> = {
      absolute: { name: join(outside, 'victim'), namespace: 'default' },
      'ns-traversal': { name: 'victim', namespace: `../../../outside/default` },
      'ns-absolute': { name: 'victim', namespace: join(outside, 'default') },
      fullwidth: { name: '\uff0e\uff0e\uff0fvictim', namespace: 'default' },
      'slash-lookalike': { name: '..\u2215..\u2215victim', namespace: 'default' },
      nul: { name: 'victim\u0000', namespace: 'default' },
    };
    for (const [file, metadata] of Object.entries(tricks))
      await writeFile(join(t.sink, 'default', `${file}.yaml`), ownedYaml(metadata));
    // Six of the seven owned objects go at once, a sharp shrink (policy.shrinkHold): accepted here,
    // as a user cleaning up would, so that the deletions are what is tested.
    const r = await t.sync('--allow-shrink');
    for (const v of victims) expect(await readFile(v, 'utf8')).toBe('precious: true\n');
    expect(r.code).toBe(0);
    expect(await readdir(join(t.sink, 'default'))).toEqual([W]);
  });

  it('file names that are not Kubernetes names (unicode, upper case, dots) are ignored and named in the log', async () => {
    const t = await setup('odd-names', [www]);
    await mkdir(join(t.sink, 'default'), { recursive: true });
    const odd = ['vіctim.yaml' /* Cyrillic і */, 'Victim.yaml', '..yaml', 'a..b.yaml', '\uff56ictim.yaml'];
    for (const f of odd) await writeFile(join(t.sink, 'default', f), ownedYaml({ name: f.slice(0, -5) }));
    const r = await t.sync();
    expect(r.code).toBe(0);
    expect((await readdir(join(t.sink, 'default'))).sort()).toEqual([...odd, W].sort());
    for (const f of odd) expect(r.log).toContain(JSON.stringify(join(t.sink, 'default', f)).slice(1, -1));
  });

  it('a namespace directory that is a symbolic link to the outside is neither read nor written through', async () => {
    const t = await setup('ns-symlink', [www]);
    const outside = join(t.top, 'outside');
    await mkdir(outside, { recursive: true });
    // An owned object the registry no longer has, outside, reachable through the link.
    await writeFile(join(outside, 'gone.yaml'), ownedYaml({ name: 'gone', namespace: 'default' }, 'gone.example.com'));
    await mkdir(t.sink, { recursive: true });
    await symlink(outside, join(t.sink, 'default'));
    const r = await t.sync();
    // Not deleted through the link, and www not written there: the write is refused, named.
    expect((await readdir(outside)).sort()).toEqual(['gone.yaml']);
    expect(r.code).toBe(1);
    expect(r.log).toMatch(/refused: .*default is a symbolic link/);
  });

  it('a file that is a symbolic link to the outside is never followed, replaced or removed', async () => {
    const t = await setup('file-symlink', [www]);
    const outside = join(t.top, 'outside');
    await mkdir(outside, { recursive: true });
    const victim = join(outside, 'victim.yaml');
    await writeFile(victim, ownedYaml({ name: 'gone', namespace: 'default' }, 'gone.example.com'));
    await mkdir(join(t.sink, 'default'), { recursive: true });
    await symlink(victim, join(t.sink, 'default', 'gone.yaml'));
    await symlink(victim, join(t.sink, 'default', W));
    const r = await t.sync();
    expect(await readFile(victim, 'utf8')).toBe(ownedYaml({ name: 'gone', namespace: 'default' }, 'gone.example.com'));
    expect((await lstat(join(t.sink, 'default', 'gone.yaml'))).isSymbolicLink()).toBe(true);
    expect((await lstat(join(t.sink, 'default', W))).isSymbolicLink()).toBe(true);
    // www's name is held by a link the bridge does not own: a conflict, named.
    expect(r.code).toBe(4);
    expect(r.log).toMatch(/"msg":"conflict"/);
  });

  it('a temporary file planted as a link to the outside is not written through', async () => {
    const t = await setup('tmp-symlink', [www]);
    const outside = join(t.top, 'outside');
    await mkdir(outside, { recursive: true });
    const victim = join(outside, 'victim');
    await writeFile(victim, 'precious\n');
    await mkdir(join(t.sink, 'default'), { recursive: true });
    await symlink(victim, join(t.sink, 'default', `www.example.com.yaml.tmp-${process.pid}`));
    expect((await t.sync()).code).toBe(0);
    expect(await readFile(victim, 'utf8')).toBe('precious\n');
    expect(await readdir(join(t.sink, 'default'))).toEqual([W]);
  });

  it.each([
    ['../../../victim', 'default'],
    ['/etc/passwd', 'default'],
    ['a/b', 'default'],
    ['..', 'default'],
    ['', 'default'],
    ['Victim', 'default'],
    ['vіctim', 'default'],
    ['\uff0e\uff0e', 'default'],
    ['x'.repeat(64), 'default'],
    ['ok', '..'],
    ['ok', '../outside'],
    ['ok', 'a.b'],
  ])('pathOf refuses name %j in namespace %j, naming it', (name, namespace) => {
    expect(() => pathOf('/sink', namespace, name)).toThrow(/refused: .*(namespace|object name)/);
  });

  it('pathOf forms <dir>/<namespace>/<name>.yaml for Kubernetes names', () => {
    expect(pathOf('/sink', 'default', 'orders.default-group.public.static')).toBe(
      '/sink/default/orders.default-group.public.static.yaml',
    );
  });
});

describe('files sink: careless content', () => {
  it('a foreign multi-document file, a broken YAML and a directory named x.yaml do not block writes; each is named once', async () => {
    const t = await setup('careless', [www, api]);
    const ns = join(t.sink, 'default');
    await mkdir(join(ns, 'x.yaml'), { recursive: true });
    await mkdir(join(t.sink, 'other', 'deep.yaml'), { recursive: true });
    await writeFile(join(ns, 'multi.yaml'), 'kind: ConfigMap\n---\nkind: ConfigMap\n');
    await writeFile(join(ns, 'broken.yaml'), 'kind: [ServiceEntry\nmetadata: {\n');
    const r = await t.sync();
    expect(r.code).toBe(0);
    expect((await readdir(ns)).sort()).toEqual([A, 'broken.yaml', 'multi.yaml', W, 'x.yaml']);
    for (const f of ['x.yaml', 'multi.yaml', 'broken.yaml'])
      expect(r.log.split('\n').filter((l) => l.includes(join(ns, f)))).toHaveLength(1);

    // In a long-running sink, a skipped file is logged once, not at every observe.
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (s: string) => lines.push(s) } as never });
    const sink = filesSink(t.sink, { logger });
    await sink.observe(new AbortController().signal);
    await sink.observe(new AbortController().signal);
    expect(lines.filter((l) => l.includes('broken.yaml'))).toHaveLength(1);
  });

  it('a foreign or unreadable file holds its name: a desired object of that name is a conflict, the file is untouched', async () => {
    const t = await setup('held-names', [www, api]);
    const ns = join(t.sink, 'default');
    await mkdir(ns, { recursive: true });
    await writeFile(join(ns, W), 'kind: [broken\n');
    await writeFile(join(ns, A), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api}\n');
    const r = await t.sync();
    expect(r.code).toBe(4);
    expect(await readFile(join(ns, W), 'utf8')).toBe('kind: [broken\n');
    expect(await readFile(join(ns, A), 'utf8')).toBe('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api}\n');
  });

  it('a renamed copy of an owned file converges: removed once through the plan, then nothing to do', async () => {
    const t = await setup('renamed-copy', [www]);
    expect((await t.sync()).code).toBe(0);
    const ns = join(t.sink, 'default');
    const original = await readFile(join(ns, W), 'utf8');
    await cp(join(ns, W), join(ns, 'www-copy.example.com.yaml'));
    expect((await t.sync()).code).toBe(0);
    expect(await readdir(ns)).toEqual([W]);
    expect(await readFile(join(ns, W), 'utf8')).toBe(original);
    // Converged: a dry run has nothing pending (exit 3 would say otherwise), twice in a row.
    expect((await t.sync('--dry-run')).code).toBe(0);
    expect((await t.sync()).code).toBe(0);
    expect(await readFile(join(ns, W), 'utf8')).toBe(original);
  });

  it('a renamed copy whose path name is desired is rewritten with its own name', async () => {
    const t = await setup('renamed-desired', [www]);
    expect((await t.sync()).code).toBe(0);
    const ns = join(t.sink, 'default');
    await writeFile(join(t.base, 'reg.json'), JSON.stringify({ services: [www, api] }));
    await cp(join(ns, W), join(ns, A));
    expect((await t.sync()).code).toBe(0);
    expect(await readFile(join(ns, A), 'utf8')).toMatch(/name: api\.example\.com\n/);
    expect((await t.sync('--dry-run')).code).toBe(0);
  });

  it('temporary files of a dead process are removed at start; those of a running process stay; a dry run removes none', async () => {
    const t = await setup('tmp-files', [www]);
    const ns = join(t.sink, 'default');
    await mkdir(ns, { recursive: true });
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const deadPid = Number(child.stdout);
    const dead = `www.example.com.yaml.tmp-${deadPid}`;
    const alive = `api.example.com.yaml.tmp-${process.ppid}`;
    await writeFile(join(ns, dead), 'half');
    await writeFile(join(ns, alive), 'in flight');
    const dry = await t.sync('--dry-run');
    expect(dry.code).toBe(3);
    expect((await readdir(ns)).sort()).toEqual([alive, dead].sort());
    expect(dry.log).toContain(dead);
    expect((await t.sync()).code).toBe(0);
    expect((await readdir(ns)).sort()).toEqual([alive, W].sort());
  });

  it('registry_bridge_owned_objects counts the owned files, after observe and after writes', async () => {
    const t = await setup('owned-gauge', [www, api]);
    const ns = join(t.sink, 'default');
    await mkdir(ns, { recursive: true });
    await writeFile(
      join(ns, 'foreign.yaml'),
      'kind: ServiceEntry\nmetadata: {name: foreign}\nspec: {hosts: [f.example.com]}\n',
    );
    expect((await t.sync()).code).toBe(0);
    const metrics = new BridgeMetrics();
    const gauge = async () => (await metrics.ownedObjects.get()).values[0]?.value;
    const sink = filesSink(t.sink, { metrics });
    const observed = await sink.observe(new AbortController().signal);
    expect(await gauge()).toBe(2);
    const del = observed.find((o) => o.name === 'www.example.com')!;
    await sink.apply(
      [{ action: 'delete', namespace: 'default', name: 'www.example.com', observed: del }],
      { dryRun: false },
      new AbortController().signal,
    );
    expect(await gauge()).toBe(1);
  });
});
