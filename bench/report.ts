/** Writes <name>.json, <name>.md and the latency plot (<name>.svg → <name>.png via rsvg-convert); the bench names them latest. */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Summary } from './stats.js';

type R = Record<string, any>;

const fmt = (x: number | undefined, d = 0) => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
const s3 = (s: Summary | undefined) => (s && s.n > 0 ? `${fmt(s.min)} / ${fmt(s.median)} / ${fmt(s.p99)}` : '–');

export function markdown(r: R): string {
  const p = r.params;
  const out: string[] = [];
  out.push(`## registry-bridge benchmark (${r.startedAt})`, '');
  out.push(
    `Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), ${r.machine.memGiB} GiB, Node ${r.machine.node}. Peers: ${(r.peers ?? []).map((x: R) => `${x.name} ${x.version}`).join(', ')}.`,
  );
  out.push(
    `Parameters: N=${p.n.join(',')} × M=${p.m}; kube write concurrency ${p.concurrency}, sink qps ${p.qps}; debounce ${p.debounceMs} ms${p.registries?.includes('nacos') ? `; Nacos push batching (pushTaskDelay) ${p.nacosPushTaskDelayMs ?? 'server default (500)'} ms` : ''}; run took ${r.durationS} s.`,
    '',
  );
  const t = r.targets ?? [];
  if (t.length) {
    out.push('| target | measured | met |', '| --- | --- | --- |');
    for (const x of t)
      out.push(`| ${x.target} | ${x.measured} | ${x.met === null ? 'n/a' : x.met ? 'yes' : '**no**'} |`);
    out.push('');
  }
  if (r.cold.length) {
    out.push(
      'Cold `sync --once` into kube-apiserver (min / median / p99 ms over repeats, after one untimed dry run that warms the registry server and the bridge code):',
      '',
      '| registry | N | SEs | bridge ms | raw SSA loop ms | bridge SE/s | raw SE/s | ratio |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const c of r.cold)
      out.push(
        `| ${c.registry} | ${c.n} | ${c.objects} | ${s3(c.bridgeMs)} | ${s3(c.rawMs)} | ${c.bridgePerS} | ${c.rawPerS} | ${fmt(c.ratio * 100)} % |`,
      );
    out.push('');
    const firsts = r.cold.filter((c: R) => c.bridgeFirstWriteMs?.n);
    if (firsts.length)
      out.push(
        `The bridge's first write, from the start of its run (min / median / p99 ms): ${firsts.map((c: R) => `${c.registry} ${s3(c.bridgeFirstWriteMs)}`).join('; ')}.`,
        '',
      );
    const withCpu = r.cold.filter((c: R) => c.cpuMs);
    if (withCpu.length) {
      // The machine's cores are shared by every peer: whose CPU a run costs explains the ratio.
      const names = Object.keys(withCpu[0].cpuMs.bridge);
      out.push(
        'CPU ms per cold sync, by process (median over repeats; the bridge runs in the bench process), bridge run / raw run:',
        '',
        `| registry | N | ${names.join(' | ')} | all |`,
        `| --- | --- | ${names.map(() => '---').join(' | ')} | --- |`,
      );
      const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
      for (const c of withCpu)
        out.push(
          `| ${c.registry} | ${c.n} | ${names.map((k) => `${c.cpuMs.bridge[k] ?? 0} / ${c.cpuMs.raw[k] ?? 0}`).join(' | ')} | ${sum(c.cpuMs.bridge)} / ${sum(c.cpuMs.raw)} |`,
        );
      out.push('');
    }
  }
  if (r.incremental.length) {
    out.push(
      'Incremental, continuous mode (min / p50 / p99 ms):',
      '',
      '| registry | N | changes | change → SE in kube | registry ack → SE | watch/push hint → SE (the bridge) | new service → kube | new service → istiod registryz | timeouts |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const c of r.incremental)
      out.push(
        `| ${c.registry} | ${c.n} | ${c.changes} | ${s3(c.changeToKubeMs)} | ${s3(c.ackToKubeMs)} | ${c.hintToKubeMs ? `${s3(c.hintToKubeMs)} (${c.hintToKubeMs.n})` : '–'} | ${s3(c.newServiceToKubeMs)} | ${s3(c.newServiceToIstiodMs)} (${c.newServiceToIstiodMs.n}) | ${c.timeouts + c.istiodTimeouts} |`,
      );
    out.push('');
  }
  if (r.burst.length) {
    out.push(
      'Bursts (changes spread over services, issued as fast as the registry takes them):',
      '',
      '| registry | N | burst | changes/services | issued in ms | converged ms | API writes | reconcile runs |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    );
    for (const b of r.burst)
      out.push(
        `| ${b.registry} | ${b.n} | ${b.kind} | ${b.changes}/${b.services} | ${b.issuedMs} | ${b.convergeMs} | ${b.apiWrites} | ${b.reconcileRuns} |`,
      );
    out.push('');
  }
  if (r.resync) {
    const x = r.resync;
    out.push(
      `Unchanged resync at N=${x.n}×${x.m} (${x.registry}, bridge in its own process, continuous controller with watches armed, ${x.runs} runs): API writes ${x.apiWrites.join(', ')}; CPU ms ${s3(x.cpuMs)}; wall ms ${s3(x.wallMs)}.`,
      '',
    );
    if (x.idle)
      out.push(
        `Idle, right after those resyncs (nothing changes; watches or pushes live, the periodic resync every 60 s and the adapter's re-lists and polls included), over ${x.idle.seconds} s: ${x.idle.msPerS} ms of the bridge's CPU a second (${x.idle.cpuMs} ms in all).`,
        '',
      );
    if (x.settled)
      out.push(
        `The same unchanged resync after that idle time, start-up long over (every watch or subscription live; ${x.settled.runs} runs): API writes ${x.settled.apiWrites.join(', ')}; CPU ms ${s3(x.settled.cpuMs)}; wall ms ${s3(x.settled.wallMs)}.`,
        '',
      );
    if (x.once)
      out.push(
        `The same unchanged full reconcile without watches (as \`sync --once\` does it: a full registry walk, ${x.once.runs} runs): API writes ${x.once.apiWrites.join(', ')}; CPU ms ${s3(x.once.cpuMs)}; wall ms ${s3(x.once.wallMs)}.`,
        '',
      );
  }
  if (r.memory) {
    const m = r.memory;
    const mem = (v: R) => `RSS ${v.rssMiB} MiB, heap ${v.heapUsedMiB} MiB`;
    out.push(
      `Memory at N=${m.n}×${m.m} (after GC; bridge run as ${m.runtime ?? 'tsx'}${m.afterColdSync?.heapLimitMiB ? `, V8 heap limit ${m.afterColdSync.heapLimitMiB} MiB` : ''}): after cold sync ${mem(m.afterColdSync)}; after full resyncs ${mem(m.afterFullSync)}${m.afterEachResync ? ` (after each: ${m.afterEachResync.map((x: R) => x.rssMiB).join(', ')} MiB RSS)` : ''}; after churn ${mem(m.afterChurn)}. Churn: ${m.churn}.`,
      '',
    );
  }
  if (r.relist) {
    const x = r.relist;
    out.push(
      `A Nacos watch over ${x.relists} re-lists of ${x.n} services (one every ${x.relistMs} ms, ${x.changes} instance changes pushed meanwhile, ${x.hints} change hints): live heap after GC ${x.samples.map((s: R) => s.heapMiB).join(', ')} MiB (every ${x.samples[1]?.atS ?? '?'} s); growth over the second half ${x.slopeKiBPerRelist} KiB per re-list.`,
      '',
    );
  }
  for (const n of r.notes ?? []) out.push(`- ${n}`);
  return out.join('\n') + '\n';
}

export function targets(r: R): R[] {
  const t: R[] = [];
  for (const c of r.cold)
    t.push({
      target: `cold sync ≥ 90 % of raw baseline (${c.registry}, N=${c.n})`,
      measured: `${fmt(c.ratio * 100)} %`,
      met: c.ratio >= 0.9,
    });
  for (const c of r.incremental)
    t.push({
      target: `change → SE p99 ≤ debounce + 100 ms (${c.registry}, N=${c.n})`,
      measured: `p99 ${fmt(c.changeToKubeMs.p99)} ms vs ${c.debounceMs + 100} ms${c.hintToKubeMs?.n ? ` (from the adapter's hint, the bridge's own share: p99 ${fmt(c.hintToKubeMs.p99)} ms)` : ''}`,
      met: c.changeToKubeMs.n > 0 && c.timeouts === 0 && c.changeToKubeMs.p99 <= c.debounceMs + 100,
    });
  if (r.resync) {
    // Every resync counts: those right after start-up and those after the idle time.
    const all = [r.resync, ...(r.resync.settled ? [r.resync.settled] : [])];
    const ok = all.every((x: R) => x.apiWrites.every((w: number) => w === 0) && x.cpuMs.max < 1000);
    const settled = r.resync.settled
      ? `; after start-up: writes ${r.resync.settled.apiWrites.join(',')}; CPU median ${fmt(r.resync.settled.cpuMs.median)} ms, max ${fmt(r.resync.settled.cpuMs.max)} ms`
      : '';
    t.push({
      target: `unchanged resync: 0 writes, < 1 s CPU (N=${r.resync.n})`,
      measured: `writes ${r.resync.apiWrites.join(',')}; CPU median ${fmt(r.resync.cpuMs.median)} ms, max ${fmt(r.resync.cpuMs.max)} ms${settled}`,
      met: r.resync.n < 10_000 ? null : ok,
    });
  }
  // A leak of one request's worth per service per re-list would be ~50 KiB here (Node 20's AbortSignal.any was).
  if (r.relist)
    t.push({
      target: `no memory growth: a Nacos watch over ${r.relist.relists} re-lists (N=${r.relist.n})`,
      measured: `${r.relist.slopeKiBPerRelist} KiB per re-list (live heap ${r.relist.samples[0]?.heapMiB} → ${r.relist.samples.at(-1)?.heapMiB} MiB)`,
      met: r.relist.slopeKiBPerRelist < 5,
    });
  if (r.memory) {
    // Every sample counts: after the cold sync, after the full resyncs and along the churn.
    const rss = Math.max(
      r.memory.afterColdSync.rssMiB,
      r.memory.afterFullSync.rssMiB,
      r.memory.afterChurn.rssMiB,
      ...(r.memory.samples ?? []).map((s: R) => s.memory.rssMiB),
      ...(r.memory.afterEachResync ?? []).map((x: R) => x.rssMiB),
    );
    t.push({
      target: `RSS ≤ 256 MiB at 10,000 × 5 (measured N=${r.memory.n}×${r.memory.m})`,
      measured: `${rss} MiB max (heap used ${fmt(r.memory.afterChurn.heapUsedMiB, 1)} MiB after churn)`,
      met: r.memory.n >= 10_000 ? rss <= 256 : null,
    });
  }
  return t;
}

/** CDF of change → ServiceEntry latency per registry (and new service → istiod), as SVG. */
export function latencySvg(r: R): string {
  const series: { label: string; color: string; values: number[] }[] = [];
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e'];
  for (const c of r.incremental) {
    series.push({
      label: `${c.registry}: change → ServiceEntry in kube (N=${c.n}, ${c.changes} changes)`,
      color: colors[series.length % 4]!,
      values: [...c.samples.changeToKubeMs].sort((a: number, b: number) => a - b),
    });
  }
  for (const c of r.incremental) {
    if (c.samples.newServiceToIstiodMs.length)
      series.push({
        label: `${c.registry}: new service → istiod registryz (${c.samples.newServiceToIstiodMs.length})`,
        color: colors[series.length % 4]!,
        values: [...c.samples.newServiceToIstiodMs].sort((a: number, b: number) => a - b),
      });
  }
  const W = 900,
    H = 520,
    L = 70,
    Rm = 20,
    T = 50,
    B = 150;
  const all = series.flatMap((s) => s.values);
  const maxV = Math.max(10, ...all);
  // log x axis: 1 ms .. maxV
  const ticks = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000].filter((x) => x <= maxV * 1.5);
  const xMax = Math.max(...ticks, maxV);
  const xMin = Math.max(1, Math.min(...all, 10) * 0.8);
  const x = (v: number) =>
    L + ((Math.log10(Math.max(v, xMin)) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) * (W - L - Rm);
  const y = (q: number) => T + (1 - q) * (H - T - B);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, sans-serif" font-size="12">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">registry-bridge: latency distribution (CDF), debounce ${r.params.debounceMs} ms</text>`,
  );
  for (const t of ticks.filter((t) => t >= xMin)) {
    parts.push(`<line x1="${x(t)}" y1="${T}" x2="${x(t)}" y2="${H - B}" stroke="#ddd"/>`);
    parts.push(`<text x="${x(t)}" y="${H - B + 16}" text-anchor="middle">${t}</text>`);
  }
  for (const q of [0, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) {
    parts.push(
      `<line x1="${L}" y1="${y(q)}" x2="${W - Rm}" y2="${y(q)}" stroke="${q === 0.99 || q === 0.5 ? '#bbb' : '#eee'}"/>`,
    );
    parts.push(
      `<text x="${L - 6}" y="${y(q) + 4}" text-anchor="end">${q === 0.99 ? 'p99' : q === 0.5 ? 'p50' : q}</text>`,
    );
  }
  const target = r.params.debounceMs + 100;
  parts.push(
    `<line x1="${x(target)}" y1="${T}" x2="${x(target)}" y2="${H - B}" stroke="#444" stroke-dasharray="5,4"/>`,
  );
  parts.push(`<text x="${x(target) + 4}" y="${T + 12}" fill="#444">target ${target} ms</text>`);
  parts.push(`<text x="${(L + W - Rm) / 2}" y="${H - B + 36}" text-anchor="middle">latency, ms (log scale)</text>`);
  parts.push(
    `<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + H - B) / 2})">fraction of changes ≤ latency</text>`,
  );
  parts.push(`<rect x="${L}" y="${T}" width="${W - L - Rm}" height="${H - T - B}" fill="none" stroke="#333"/>`);
  series.forEach((s, i) => {
    const pts = s.values.map((v, k) => `${x(v).toFixed(1)},${y((k + 1) / s.values.length).toFixed(1)}`);
    if (pts.length)
      parts.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${x(s.values[0]!).toFixed(1)},${y(0)} ${pts.join(' ')}"/>`,
      );
    const ly = H - B + 60 + i * 18;
    parts.push(`<line x1="${L}" y1="${ly - 4}" x2="${L + 24}" y2="${ly - 4}" stroke="${s.color}" stroke-width="3"/>`);
    parts.push(`<text x="${L + 30}" y="${ly}">${s.label}</text>`);
  });
  parts.push(
    `<text x="${W - Rm}" y="${H - 8}" text-anchor="end" fill="#666" font-size="10">${r.machine.cpus} cores, Node ${r.machine.node}, ${r.startedAt}</text>`,
  );
  parts.push('</svg>');
  return parts.join('\n');
}

export async function writeResults(dir: string, r: R, log: (s: string) => void, name = 'latest'): Promise<void> {
  await mkdir(dir, { recursive: true });
  r.targets = targets(r);
  await writeFile(join(dir, `${name}.json`), JSON.stringify(r, null, 2) + '\n');
  await writeFile(join(dir, `${name}.md`), markdown(r));
  if (r.incremental.length) {
    const svg = latencySvg(r);
    await writeFile(join(dir, `${name}.svg`), svg);
    const exec = promisify(execFile);
    try {
      await exec('rsvg-convert', ['--version']).catch(async () => {
        // Debian's librsvg2-bin renders the SVG; install it on first use (we run as root here).
        log('installing librsvg2-bin for rsvg-convert');
        await exec('apt-get', ['install', '-y', '--no-install-recommends', 'librsvg2-bin']).catch(async () => {
          await exec('apt-get', ['update']);
          await exec('apt-get', ['install', '-y', '--no-install-recommends', 'librsvg2-bin']);
        });
      });
      await exec('rsvg-convert', ['-o', join(dir, `${name}.png`), join(dir, `${name}.svg`)]);
    } catch (err) {
      log(`no PNG: rsvg-convert unavailable (apt-get install librsvg2-bin): ${String(err)}`);
    }
  }
  log(`results in ${dir}/${name}.{json,md${r.incremental.length ? ',svg,png' : ''}}`);
  process.stderr.write(markdown(r));
}
