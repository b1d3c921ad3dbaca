import type { Watcher } from 'node-zookeeper-client';
import type { CuratorServiceRead, DubboInterfaceRead, DubboMetadataRead, RootRead } from './layouts.js';
import type { ZkSession } from './session.js';
import { mapLimit } from '../../src/util/concurrency.js';

export type Layout = 'auto' | 'dubbo' | 'curator';

/** Children of a Dubbo root that are Dubbo 3 bookkeeping, not interfaces. */
const DUBBO_RESERVED = new Set(['mapping', 'metadata', 'config']);
const DUBBO_CATEGORIES = ['providers', 'configurators', 'routers', 'consumers'];

/** Gives the watcher to arm on a path (stable per path, so re-arming never stacks them). */
export type WatcherFor = (path: string, kind: 'children' | 'data', unit: string) => Watcher;

export interface ReadOptions {
  readonly layout: Layout;
  readonly signal?: AbortSignal;
  readonly watcherFor?: WatcherFor;
  /** Each directory of a root as soon as it is read (before the whole root is). */
  readonly onDir?: (dir: DirRead) => void;
}

export function joinPath(parent: string, child: string): string {
  return parent === '/' ? `/${child}` : `${parent}/${child}`;
}

/** A root's children; undefined when the root does not exist. */
export async function readRootChildren(
  session: ZkSession,
  root: string,
  o: ReadOptions,
): Promise<string[] | undefined> {
  return session.getChildren(root, o.watcherFor?.(root, 'children', root), o.signal);
}

export interface DirRead {
  readonly dubbo?: DubboInterfaceRead;
  readonly curator?: CuratorServiceRead;
  /** `<root>/mapping` or `<root>/metadata` of a Dubbo 3 root: which applications serve which interfaces. */
  readonly metadata?: DubboMetadataRead;
}

/** Bounds on what the Dubbo metadata read fetches (it is bookkeeping, not the service data). */
const METADATA_MAX_DATA_BYTES = 256 * 1024;

/**
 * Dubbo 3's bookkeeping under a registry root, written by its metadata report (ZookeeperMetadataReport):
 *
 * - `mapping/<interface>`: data = the comma-separated applications that provide the interface
 *   (ServiceNameMapping, what consumers read to find application-level instances);
 * - `metadata/<interface>[/<version>][/<group>]/provider/<application>`: data = the service
 *   definition JSON, whose `parameters` hold `version` and `group` (the path leaves empty ones
 *   out, so one middle segment could be either: only then is the definition read).
 *
 * Children and data are watched like a service's.
 */
async function readDubboMetadata(
  session: ZkSession,
  path: string,
  name: 'mapping' | 'metadata',
  children: readonly string[],
  w: (p: string, kind: 'children' | 'data') => Watcher | undefined,
  signal: AbortSignal | undefined,
): Promise<DubboMetadataRead> {
  const entries: { interface: string; application: string; version?: string; group?: string }[] = [];
  if (name === 'mapping') {
    await mapLimit([...children].sort(), 16, async (iface) => {
      const p = joinPath(path, iface);
      const data = await session.getData(p, w(p, 'data'), signal);
      if (!data || data.length > METADATA_MAX_DATA_BYTES) return;
      for (const app of data.toString('utf8').split(','))
        if (app.trim() !== '') entries.push({ interface: iface, application: app.trim() });
    });
  } else {
    // Down from each interface to the `provider` folder: at most version and group between.
    // The path names version and group when both are set, neither when both are empty; with
    // one segment the definition's `parameters` say which it is (its data is read only then).
    const walk = async (iface: string, p: string, segments: readonly string[], names: readonly string[]) => {
      if (names.includes('provider')) {
        const providerPath = joinPath(p, 'provider');
        const apps = (await session.getChildren(providerPath, w(providerPath, 'children'), signal)) ?? [];
        await mapLimit([...apps].sort(), 8, async (app) => {
          if (segments.length !== 1) {
            const [version = '', group = ''] = segments;
            entries.push({ interface: iface, application: app, version, group });
            return;
          }
          const ap = joinPath(providerPath, app);
          const data = await session.getData(ap, w(ap, 'data'), signal);
          if (!data || data.length > METADATA_MAX_DATA_BYTES) return;
          const def = definitionParameters(data);
          if (def) entries.push({ interface: iface, application: app, version: def.version, group: def.group });
        });
      }
      if (segments.length >= 2) return;
      for (const c of [...names].sort()) {
        if (c === 'provider' || c === 'consumer') continue;
        const cp = joinPath(p, c);
        const sub = await session.getChildren(cp, w(cp, 'children'), signal);
        if (sub !== undefined && sub.length > 0) await walk(iface, cp, [...segments, c], sub);
      }
    };
    await mapLimit([...children].sort(), 8, async (iface) => {
      const p = joinPath(path, iface);
      const sub = await session.getChildren(p, w(p, 'children'), signal);
      if (sub !== undefined) await walk(iface, p, [], sub);
    });
  }
  entries.sort((a, b) =>
    `${a.interface}\u0000${a.application}\u0000${a.version ?? ''}\u0000${a.group ?? ''}`.localeCompare(
      `${b.interface}\u0000${b.application}\u0000${b.version ?? ''}\u0000${b.group ?? ''}`,
    ),
  );
  return { name, path, entries };
}

/** `parameters.version` / `parameters.group` of a Dubbo service definition; undefined when it is not one. */
function definitionParameters(data: Buffer): { version: string; group: string } | undefined {
  try {
    const def = JSON.parse(data.toString('utf8')) as { parameters?: Record<string, unknown> };
    const p = def.parameters;
    if (typeof p !== 'object' || p === null) return undefined;
    const str = (v: unknown) => (typeof v === 'string' ? v : '');
    return { version: str(p.version), group: str(p.group) };
  } catch {
    return undefined;
  }
}

/** Reads `/<root>/<name>` according to the layout (nothing when it vanished or is not a service). */
export async function readDir(session: ZkSession, root: string, name: string, o: ReadOptions): Promise<DirRead> {
  const path = joinPath(root, name);
  const unit = path;
  const w = (p: string, kind: 'children' | 'data') => o.watcherFor?.(p, kind, unit);
  const children = await session.getChildren(path, w(path, 'children'), o.signal);
  if (children === undefined) return {};
  const looksDubbo = children.some((c) => DUBBO_CATEGORIES.includes(c));
  const asDubbo = o.layout === 'dubbo' || (o.layout === 'auto' && looksDubbo);
  if (o.layout !== 'curator' && (name === 'mapping' || name === 'metadata') && !looksDubbo)
    return { metadata: await readDubboMetadata(session, path, name, children, w, o.signal) };
  if (asDubbo) {
    if (DUBBO_RESERVED.has(name) && !looksDubbo) return {};
    const providersPath = joinPath(path, 'providers');
    const configuratorsPath = joinPath(path, 'configurators');
    const [providers, configurators] = await Promise.all([
      children.includes('providers')
        ? session.getChildren(providersPath, w(providersPath, 'children'), o.signal)
        : Promise.resolve(undefined),
      children.includes('configurators')
        ? session.getChildren(configuratorsPath, w(configuratorsPath, 'children'), o.signal)
        : Promise.resolve(undefined),
    ]);
    if (providers === undefined && configurators === undefined) return {};
    return { dubbo: { name, path, providers: (providers ?? []).sort(), configurators: (configurators ?? []).sort() } };
  }
  if (o.layout === 'auto' && DUBBO_RESERVED.has(name)) return {};
  const instances = await mapLimit(children.sort(), 32, async (id) => {
    const p = joinPath(path, id);
    const data = await session.getData(p, w(p, 'data'), o.signal);
    return data === null ? undefined : { id, path: p, data };
  });
  return { curator: { name, path, instances: instances.filter((i): i is NonNullable<typeof i> => i !== undefined) } };
}

/** Thrown when a configured root does not exist: a wrong root or chroot is not an empty registry. */
export class MissingRootError extends Error {
  constructor(readonly root: string) {
    super(
      `root ${root} does not exist (wrong root or chroot? nothing registered yet?); the source is treated as unavailable so nothing is deleted`,
    );
    this.name = 'MissingRootError';
  }
}

/** A full read of one root. */
export async function readRoot(session: ZkSession, root: string, namespace: string, o: ReadOptions): Promise<RootRead> {
  const children = await readRootChildren(session, root, o);
  if (children === undefined) throw new MissingRootError(root);
  const dirs = await mapLimit(children.sort(), 16, async (name) => {
    const dir = await readDir(session, root, name, o);
    o.onDir?.(dir);
    return dir;
  });
  return {
    root,
    namespace,
    dubbo: dirs.flatMap((d) => (d.dubbo ? [d.dubbo] : [])),
    curator: dirs.flatMap((d) => (d.curator ? [d.curator] : [])),
    metadata: dirs.flatMap((d) => (d.metadata ? [d.metadata] : [])),
  };
}
