import { stringify } from 'yaml';
import type { ServiceEntryObject } from '../synth/types.js';

export type OutputFormat = 'yaml' | 'json';

/**
 * One object as YAML. Written as YAML 1.1 so strings such as `yes`, `on` or `no` are quoted:
 * kubectl and most GitOps tools read YAML 1.1, where those would become booleans and break a
 * label value. No anchors: endpoints share one labels object in memory, and a manifest with
 * `&a1`/`*a1` would surprise every reader and some tools.
 */
export function toYaml(object: unknown): string {
  return stringify(object, { lineWidth: 0, version: '1.1', aliasDuplicateObjects: false });
}

/** Like `kubectl get -o yaml`: one document per object, `---` between them. */
export function renderYaml(objects: readonly ServiceEntryObject[]): string {
  return objects.map((o) => toYaml(o)).join('---\n');
}

/** Like `kubectl get -o json`: a `v1/List`. */
export function renderJson(objects: readonly ServiceEntryObject[]): string {
  return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
}

export function render(objects: readonly ServiceEntryObject[], format: OutputFormat): string {
  return format === 'json' ? renderJson(objects) : renderYaml(objects);
}
