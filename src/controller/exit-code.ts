import type { ReconcileReport } from './reconcile.js';

/** Exit codes of `sync --once` (documented in the README). */
export const ExitCode = {
  Converged: 0,
  Failed: 1,
  Usage: 2,
  ChangesPending: 3,
  Degraded: 4,
} as const;

export function exitCodeOf(report: ReconcileReport, dryRun: boolean): number {
  if (report.sourceErrors.length > 0 || report.failedWrites > 0) return ExitCode.Failed;
  const pending = report.plan.counts.create + report.plan.counts.update + report.plan.counts.delete;
  if (dryRun && pending > 0) return ExitCode.ChangesPending;
  const rejected =
    report.snapshots.reduce((n, s) => n + s.rejected.length, 0) +
    report.synth.notes.filter((n) => n.note.code === 'instance-rejected').length;
  if (
    report.synth.invalid.length > 0 ||
    report.plan.counts.conflict > 0 ||
    report.plan.collisions.length > 0 ||
    rejected > 0
  )
    return ExitCode.Degraded;
  // Deletions left for a later run by policy.maxDeletesPerRun, or held by a sharp shrink of a
  // source (policy.shrinkHold): not converged, nothing failed.
  if (deletionsDeferred(report.plan) > 0) return ExitCode.Degraded;
  if (report.plan.shrinks.some((s) => s.held)) return ExitCode.Degraded;
  return ExitCode.Converged;
}

/**
 * Owned objects the plan kept only because the deletion cap (`policy.maxDeletesPerRun`) was
 * reached. The plan says so in the keep's reason (src/plan); read here, not decided here.
 */
export function deletionsDeferred(plan: ReconcileReport['plan']): number {
  return plan.changes.filter((c) => c.action === 'keep' && /deletion cap of \d+ per run reached/.test(c.reason ?? ''))
    .length;
}
