import type { HopCheck, VerifyReport } from './types.js';

/** Exit codes of `verify` and `trace` (documented in their --help). */
export const VerifyExit = {
  Ok: 0,
  /** Bad usage, a local input file that cannot be used (named), or nothing to check. */
  BadInput: 2,
  /** Some hop could not be read (unreachable, 401/403) and nothing was seen failing. */
  Unchecked: 6,
  /** A hop is missing the change or shows something else than the bridge wrote. */
  PropagationFailed: 5,
} as const;

export function verifyExitCode(report: VerifyReport): number {
  const all = report.hosts.flatMap((h) => h.hops);
  if (all.some((h) => h.status === 'missing' || h.status === 'differs')) return VerifyExit.PropagationFailed;
  if (all.some((h) => h.status === 'error' || h.status === 'unauthorized' || h.status === 'forbidden'))
    return VerifyExit.Unchecked;
  return VerifyExit.Ok;
}

const mark: Record<HopCheck['status'], string> = {
  ok: '✓',
  missing: '✗',
  differs: '✗',
  unauthorized: '!',
  forbidden: '!',
  error: '!',
  skipped: '-',
};

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
  return `${Math.floor(ms / 86_400_000)}d`;
}

/** One table per host: hop, ✓/✗, status, age, latency, what differs. */
export function renderReport(report: VerifyReport): string {
  const lines: string[] = [];
  if (report.hosts.length === 0) lines.push('no hosts to verify');
  for (const h of report.hosts) {
    lines.push(`${h.ok ? '✓' : '✗'} ${h.host}  (ServiceEntry ${h.namespace}/${h.name})`);
    const rows = h.hops.map((c) => [
      c.hop,
      `${mark[c.status]} ${c.status}`,
      formatDuration(c.ageMs),
      formatDuration(c.latencyMs),
      // One line per hop whatever a detail holds (a server's error text can carry newlines).
      c.detail.join('; ').replace(/\s*[\r\n]+\s*/g, ' '),
    ]);
    const head = ['  HOP', 'STATUS', 'AGE', 'LATENCY', 'DETAIL'];
    const all = [head, ...rows.map((r) => [`  ${r[0]}`, ...r.slice(1)])];
    const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
    for (const r of all)
      lines.push(
        r
          .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
          .join('  ')
          .trimEnd(),
      );
    lines.push('');
  }
  const failed = report.hosts.filter((h) => !h.ok).length;
  lines.push(`${report.hosts.length - failed}/${report.hosts.length} hosts propagated (checked ${report.checkedAt})`);
  return lines.join('\n') + '\n';
}
