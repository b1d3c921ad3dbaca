import type { Watcher } from 'node-zookeeper-client';
import type { CuratorServiceRead, DubboInterfaceRead, RootRead } from './layouts.js';
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
  };
}
