/** Types the CLI's commands share (kept apart so that cli/ has no import loop). */

export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { write(chunk: string): boolean };
  readonly stderr: NodeJS.WritableStream & { write(chunk: string): boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborted on SIGTERM/SIGINT: continuous mode finishes the run in progress and exits. */
  readonly shutdown?: AbortSignal;
}

export interface SyncFlags {
  readonly config: string;
  readonly once?: boolean;
  readonly output?: 'yaml' | 'json';
  readonly dryRun?: boolean;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly logLevel?: string;
  /** Accept a sharp shrink of a source: its deletions are not held (policy.shrinkHold). */
  readonly allowShrink?: boolean;
}
