/**
 * The resync scenario alone, against the servers `npm run bench -- --keep` left running
 * (RB_PEERS_FILE=<its state file>), for comparing builds of the bridge in one run:
 *   RB_PEERS_FILE=... npx tsx bench/resync-loop.ts [--rounds 7] [--alternate 2] a.mjs b.mjs ...
 * Each bundle (built like dist/bench/bridge-process.mjs) runs in its own process, in turn, with
 * the image's NODE_OPTIONS and the bench's memory cgroup: the continuous controller is started
 * (watches armed) and `--rounds` unchanged periodic resyncs are timed (CPU, wall, writes).
 * With `--alternate k`, the bundles take turns k times, so load beside the run falls on each.
 */
import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { peer } from '../test/peers/endpoints.js';
import { imageNodeOptions, memoryCgroup } from './cgroup.js';
import { zookeeperSource } from './registries.js';
import { summarize } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(argv[i + 1]);
  argv.splice(i, 2);
  return v;
};
const rounds = opt('rounds', 7);
const alternate = opt('alternate', 1);
const bundles = argv;
const params = {
  kubeconfig: peer('kube').kubeconfig,
  namespace: 'rb-bench-zookeeper',
  source: zookeeperSource(peer('zookeeper').connect!),
  qps: 100_000,
  concurrency: 8,
  debounceMs: 100,
  resyncMs: 60_000,
};
const imageOptions = imageNodeOptions(join(here, '..', 'Dockerfile'));

async function one(bundle: string): Promise<{ cpuMs: number[]; wallMs: number[]; writes: number[] }> {
  const cg = memoryCgroup('rb-bench-loop', 512);
  const limited = cg instanceof Error ? undefined : cg;
  const child = fork(bundle, [], {
    ...(limited
      ? {
          execPath: '/bin/sh',
          execArgv: ['-c', `echo $$ > '${limited.procs}' && exec "$@"`, 'sh', process.execPath],
        }
      : {}),
    env: {
      ...process.env,
      ...(imageOptions !== undefined ? { NODE_OPTIONS: imageOptions } : {}),
      RB_BENCH_BRIDGE: JSON.stringify(params),
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let seq = 0;
  const pending = new Map<number, (m: Record<string, unknown>) => void>();
  const ready = new Promise<void>((r) =>
    child.on('message', (m: Record<string, unknown>) => (m.ready ? r() : pending.get(m.id as number)?.(m))),
  );
  const ask = async (cmd: string) => {
    await ready;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const id = ++seq;
      pending.set(id, (m) => (m.ok ? resolve(m) : reject(new Error(String(m.error)))));
      child.send({ cmd, id });
    });
  };
  const out = { cpuMs: [] as number[], wallMs: [] as number[], writes: [] as number[] };
  try {
    await ask('start');
    for (let i = 0; i < rounds; i++) {
      const r = await ask('resync');
      out.cpuMs.push(Math.round(r.cpuMs as number));
      out.wallMs.push(Math.round(r.wallMs as number));
      out.writes.push(r.writes as number);
    }
    await ask('stop');
  } finally {
    child.kill();
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    limited?.remove();
  }
  return out;
}

const all = new Map<string, number[]>();
for (let k = 0; k < alternate; k++)
  for (const b of bundles) {
    const load = loadavg()[0]!.toFixed(1);
    const r = await one(b);
    all.set(b, [...(all.get(b) ?? []), ...r.cpuMs]);
    console.log(JSON.stringify({ bundle: b, load, ...r }));
  }
for (const [b, cpu] of all) console.log(`${b}: CPU ms ${JSON.stringify(summarize(cpu))}`);
process.exit(0);
