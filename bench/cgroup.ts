import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A memory cgroup for the bridge's own process, so it runs as in the chart's pod: Node sizes
 * V8's heap from the cgroup's memory limit (`uv_get_constrained_memory`), and unconstrained on a
 * large machine it gets a 4 GiB heap limit, where V8 lets the old generation grow to up to 4×
 * what was live before collecting it. A pod's bridge never runs like that.
 *
 * Node gives V8 the same heap for every limit up to 512 MiB (measured on Node 20: a 259 MiB
 * heap limit under 128, 256, 384 and 512 MiB; 396 MiB under 768). So a 512 MiB cgroup sizes
 * the heap exactly as the chart's 256Mi does, without the kernel capping at the 256 MiB target
 * the RSS that the bench measures.
 *
 * Needs a writable memory controller (cgroup v1 `memory`, or v2 with `memory` delegated):
 * usually root. Where there is none, this says why, and the caller runs unconstrained.
 */
export interface MemoryCgroup {
  readonly limitMiB: number;
  /** The cgroup's `cgroup.procs`: a process writes its pid there before it execs node. */
  readonly procs: string;
  remove(): void;
}

export function memoryCgroup(name: string, limitMiB: number): MemoryCgroup | Error {
  const bytes = String(limitMiB * 1024 * 1024);
  const attempts: string[] = [];
  const v1 = '/sys/fs/cgroup/memory';
  const own2 = ownV2Path();
  const candidates = [
    ...(existsSync(join(v1, 'memory.limit_in_bytes'))
      ? [{ dir: join(v1, name), limitFile: 'memory.limit_in_bytes' }]
      : []),
    ...(own2 !== undefined ? [{ dir: join('/sys/fs/cgroup', own2, name), limitFile: 'memory.max' }] : []),
  ];
  for (const c of candidates) {
    try {
      if (!existsSync(c.dir)) mkdirSync(c.dir);
      writeFileSync(join(c.dir, c.limitFile), bytes);
      return {
        limitMiB,
        procs: join(c.dir, 'cgroup.procs'),
        remove: () => {
          try {
            rmdirSync(c.dir);
          } catch {
            // still holds a process that is exiting; the next run reuses it
          }
        },
      };
    } catch (err) {
      attempts.push(`${c.dir}: ${(err as Error).message}`);
    }
  }
  return new Error(
    candidates.length === 0
      ? 'no cgroup memory controller found (neither /sys/fs/cgroup/memory nor cgroup v2 with memory)'
      : attempts.join('; '),
  );
}

/** This process's cgroup v2 path when the memory controller is available there. */
function ownV2Path(): string | undefined {
  try {
    if (!readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').split(/\s+/).includes('memory')) return undefined;
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    return line?.slice(3) ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * NODE_OPTIONS as the container image sets them (the Dockerfile's `ENV NODE_OPTIONS=` line), so
 * the bench's bridge runs with the flags the product ships with; undefined when it sets none.
 */
export function imageNodeOptions(dockerfile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(dockerfile, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^ENV\s+NODE_OPTIONS=("([^"]*)"|(\S+))\s*$/m.exec(text);
  return m ? (m[2] ?? m[3]) : undefined;
}
