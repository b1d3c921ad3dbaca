import { describe, expect, it } from 'vitest';
import { reconcileOnce, type ConfiguredSource } from '../../src/controller/reconcile.js';
import { createLogger } from '../../src/log.js';
import type { RegistryService } from '../../src/model/service.js';
import type { Sink } from '../../src/sinks/types.js';
import type { SourceAdapter } from '../../src/sources/adapter.js';
import { inst, options } from './helpers.js';

/** Our own interface over a list the test changes between runs; no registry behind it. */
class ListSource implements SourceAdapter {
  constructor(public services: RegistryService[]) {}
  async list() {
    return { source: 'mem', services: [...this.services], rejected: [] };
  }
  async close() {}
}

const dubbo = (name: string, port = 20880): RegistryService => ({
  key: { source: 'mem', namespace: 'public', group: 'DEFAULT_GROUP', name },
  host: `${name}.example.mesh`,
  instances: [inst('10.0.0.1', port, { protocol: 'dubbo' })],
});

const sink: Sink = {
  kind: 'memory',
  observe: async () => [],
  apply: async (changes) => changes.map((change) => ({ change, ok: true as const })),
};

function logged() {
  const lines: { level: number; msg: string; port?: number; hosts?: string[] }[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: { write: (l: string) => void lines.push(JSON.parse(l)) },
  });
  return { logger, lines };
}

const run = (src: SourceAdapter, logger: ReturnType<typeof createLogger>, reported?: Set<string>) =>
  reconcileOnce(
    [{ name: 'mem', kind: 'memory', adapter: src, synth: { ...options, namespace: 'ns' } } satisfies ConfiguredSource],
    sink,
    { policy: 'sync', maxDeletes: 10, dryRun: false },
    { logger, signal: new AbortController().signal, ...(reported ? { reportedCollisions: reported } : {}) },
  );

const WARN = 40;
const DEBUG = 20;
const collisionLines = (lines: { level: number; msg: string }[], level: number) =>
  lines.filter((l) => l.level === level && l.msg.startsWith('collision:')).map((l) => l.msg);

describe('collisions in the log of a continuous bridge', () => {
  it('without a memory of earlier runs (sync --once), every collision is a warning in every run', async () => {
    const src = new ListSource([dubbo('a'), dubbo('b')]);
    const { logger, lines } = logged();
    await run(src, logger);
    await run(src, logger);
    expect(collisionLines(lines, WARN)).toHaveLength(2);
  });

  it('a collision is a warning when first found, debug while it persists, a warning again once it came back', async () => {
    const src = new ListSource([dubbo('a'), dubbo('b')]);
    const reported = new Set<string>();
    const { logger, lines } = logged();
    await run(src, logger, reported);
    expect(collisionLines(lines, WARN)).toEqual(['collision: a.example.mesh and b.example.mesh share TCP port 20880']);
    lines.length = 0;
    await run(src, logger, reported);
    expect(collisionLines(lines, WARN)).toEqual([]);
    expect(collisionLines(lines, DEBUG)).toHaveLength(1);
    expect(lines.find((l) => l.msg.startsWith('collisions still present'))).toMatchObject({ level: 30 });

    // A new collision beside the old one: only the new one is a warning.
    src.services = [dubbo('a'), dubbo('b'), dubbo('c', 7001), dubbo('d', 7001)];
    lines.length = 0;
    await run(src, logger, reported);
    expect(collisionLines(lines, WARN)).toEqual(['collision: c.example.mesh and d.example.mesh share TCP port 7001']);

    // Gone, then back: a warning again.
    src.services = [dubbo('a'), dubbo('c', 7001), dubbo('d', 7001)];
    await run(src, logger, reported);
    src.services = [dubbo('a'), dubbo('b'), dubbo('c', 7001), dubbo('d', 7001)];
    lines.length = 0;
    await run(src, logger, reported);
    expect(collisionLines(lines, WARN)).toEqual(['collision: a.example.mesh and b.example.mesh share TCP port 20880']);
  });
});
