import type { Change, ObservedEntry } from '../plan/plan.js';

export interface ApplyOptions {
  /** Validate without persisting (the kube sink uses the server's dry-run). */
  readonly dryRun: boolean;
}

export type ApplyOutcome =
  | {
      readonly change: Change;
      readonly ok: true;
      /** The object's resourceVersion after the write, when the sink knows it. */ readonly resourceVersion?: string;
      /** The object's uid after the write, when the sink knows it (the next update's precondition). */
      readonly uid?: string;
    }
  | {
      readonly change: Change;
      readonly ok: false;
      readonly error: string;
      readonly status?: number;
      /** Not carried out because the process stops (shutdown, lost lease), not because it failed. */
      readonly aborted?: boolean;
    };

/**
 * Where ServiceEntries go. `observe` returns the objects the sink holds now (owned ones, plus
 * any foreign ServiceEntry it can see, for conflict detection); `apply` carries out the writes
 * of a plan, one outcome per change, never throwing for one failed object.
 */
export interface Sink {
  readonly kind: string;
  /**
   * The sink takes creates one at a time while the registries are still being read (a full run
   * then starts writing before its read ends; see controller/early.ts). Kube does; a sink
   * that writes a plan as one document (stdout) must not.
   */
  readonly earlyCreates?: boolean;
  observe(signal: AbortSignal): Promise<ObservedEntry[]>;
  apply(changes: readonly Change[], options: ApplyOptions, signal: AbortSignal): Promise<ApplyOutcome[]>;
  /**
   * Optional: calls `onChange` when objects the sink holds change outside the bridge (a hand
   * edit or delete), so drift is repaired before the next resync. Only a hint.
   */
  watch?(onChange: () => void, signal: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}
