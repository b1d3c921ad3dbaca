import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { toYaml } from './render.js';
import { SinkError } from '../errors.js';
import type { ObservedEntry } from '../plan/plan.js';
import {
  contentHash,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SERVICE_ANNOTATION,
  SOURCE_LABEL,
} from '../synth/service-entry.js';
import type { ApplyOutcome, Sink } from './types.js';

/**
 * A directory of YAML for GitOps: `<dir>/<namespace>/<name>.yaml`, one object per file.
 * Files without our ownership label are read (for conflicts) and never touched.
 */
export function filesSink(dir: string): Sink {
  const pathOf = (namespace: string, name: string) => join(dir, namespace, `${name}.yaml`);
  return {
    kind: 'files',
    async observe() {
      const observed: ObservedEntry[] = [];
      let namespaces: string[];
      try {
        namespaces = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw new SinkError(`cannot read directory ${dir}`, { cause: err });
      }
      for (const namespace of namespaces.sort()) {
        const files = (await readdir(join(dir, namespace))).filter((f) => f.endsWith('.yaml')).sort();
        for (const file of files) {
          const path = join(dir, namespace, file);
          let doc: {
            metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
            spec?: { hosts?: string[] };
            kind?: string;
          };
          try {
            doc = parseYaml(await readFile(path, 'utf8')) ?? {};
          } catch (err) {
            throw new SinkError(`${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
          }
          if (doc.kind !== 'ServiceEntry') continue;
          const labels = doc.metadata?.labels ?? {};
          const owned = labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
          const source = labels[SOURCE_LABEL];
          const hash = owned ? contentHash(doc.spec ?? {}, labels) : undefined;
          const service = owned ? doc.metadata?.annotations?.[SERVICE_ANNOTATION] : undefined;
          observed.push({
            namespace,
            name: doc.metadata?.name ?? file.replace(/\.yaml$/, ''),
            hosts: doc.spec?.hosts ?? [],
            owned,
            ...(source !== undefined ? { source } : {}),
            ...(hash !== undefined ? { hash } : {}),
            ...(service !== undefined ? { service } : {}),
          });
        }
      }
      return observed;
    },
    async apply(changes, options) {
      const outcomes: ApplyOutcome[] = [];
      for (const change of changes) {
        try {
          if (!options.dryRun) {
            const path = pathOf(change.namespace, change.name);
            if (change.action === 'delete') {
              await rm(path, { force: true });
            } else if ((change.action === 'create' || change.action === 'update') && change.desired) {
              await mkdir(join(dir, change.namespace), { recursive: true });
              const tmp = `${path}.tmp-${process.pid}`;
              await writeFile(tmp, toYaml(change.desired.object));
              await rename(tmp, path);
            }
          }
          outcomes.push({ change, ok: true });
        } catch (err) {
          outcomes.push({ change, ok: false, error: (err as Error).message });
        }
      }
      return outcomes;
    },
  };
}
