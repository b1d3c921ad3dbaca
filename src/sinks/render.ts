import { stringify } from 'yaml';
import type { ServiceEntryObject } from '../synth/types.js';

export type OutputFormat = 'yaml' | 'json';

/** Like `kubectl get -o yaml`: one document per object, `---` between them. */
export function renderYaml(objects: readonly ServiceEntryObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0, sortMapEntries: false })).join('---\n');
}

/** Like `kubectl get -o json`: a `v1/List`. */
export function renderJson(objects: readonly ServiceEntryObject[]): string {
  return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
}

export function render(objects: readonly ServiceEntryObject[], format: OutputFormat): string {
  return format === 'json' ? renderJson(objects) : renderYaml(objects);
}
