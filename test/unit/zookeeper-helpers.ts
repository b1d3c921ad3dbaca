import { readFileSync } from 'node:fs';
import type { CuratorServiceRead, DubboInterfaceRead, RootRead } from '../../adapters/zookeeper/layouts.js';

export interface FixtureZnode {
  readonly path: string;
  /** "base64:..." = binary; null = no data. */
  readonly data: string | null;
}

export function loadTree(name = 'tree.json'): FixtureZnode[] {
  return (
    JSON.parse(readFileSync(new URL(`../fixtures/zookeeper/${name}`, import.meta.url), 'utf8')) as {
      znodes: FixtureZnode[];
    }
  ).znodes;
}

export function dataOf(z: FixtureZnode): Buffer | undefined {
  if (z.data === null) return undefined;
  return z.data.startsWith('base64:') ? Buffer.from(z.data.slice(7), 'base64') : Buffer.from(z.data);
}

/** java.net.URLEncoder.encode(s, "UTF-8"), as Dubbo's URL.encode. */
export function javaUrlEncode(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

/**
 * What the adapter's reader would return for a fixture tree under `root` in auto layout — the
 * same structures, built from the fixture list instead of a server (the integration test feeds
 * the same fixture to a real ZooKeeper and expects the same services).
 */
export function rootReadOf(znodes: readonly FixtureZnode[], root: string, namespace = root.slice(1)): RootRead {
  const under = znodes
    .filter((z) => z.path.startsWith(`${root}/`))
    .map((z) => ({ ...z, rel: z.path.slice(root.length + 1).split('/') }));
  const names = [...new Set(under.map((z) => z.rel[0]!))].sort();
  const dubbo: DubboInterfaceRead[] = [];
  const curator: CuratorServiceRead[] = [];
  for (const name of names) {
    const mine = under.filter((z) => z.rel[0] === name);
    const categories = new Set(mine.map((z) => z.rel[1]));
    if (['providers', 'configurators', 'consumers', 'routers'].some((c) => categories.has(c))) {
      const childrenOf = (c: string) =>
        mine
          .filter((z) => z.rel[1] === c && z.rel.length === 3)
          .map((z) => z.rel[2]!)
          .sort();
      dubbo.push({
        name,
        path: `${root}/${name}`,
        providers: childrenOf('providers'),
        configurators: childrenOf('configurators'),
      });
    } else if (!['mapping', 'metadata', 'config'].includes(name)) {
      curator.push({
        name,
        path: `${root}/${name}`,
        instances: mine
          .filter((z) => z.rel.length === 2)
          .sort((a, b) => (a.rel[1]! < b.rel[1]! ? -1 : 1))
          .map((z) => ({ id: z.rel[1]!, path: z.path, data: dataOf(z) })),
      });
    }
  }
  return { root, namespace, dubbo, curator };
}
