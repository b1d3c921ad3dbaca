import type { Writable } from 'node:stream';
import type { ServiceEntryObject } from '../synth/types.js';
import { render, type OutputFormat } from './render.js';
import type { ApplyOutcome, Sink } from './types.js';

/**
 * Prints the desired objects (creates and updates) to a stream. It holds nothing, so every
 * desired object is a create: the output is the whole desired state, like a render.
 */
export function stdoutSink(out: Writable, format: OutputFormat): Sink {
  return {
    kind: 'stdout',
    async observe() {
      return [];
    },
    async apply(changes) {
      const objects: ServiceEntryObject[] = [];
      const outcomes: ApplyOutcome[] = [];
      for (const change of changes) {
        if (change.desired && (change.action === 'create' || change.action === 'update'))
          objects.push(change.desired.object);
        outcomes.push({ change, ok: true });
      }
      if (objects.length > 0 || format === 'json') out.write(render(objects, format));
      return outcomes;
    },
  };
}
