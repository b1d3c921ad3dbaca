/**
 * The small error taxonomy of registry-bridge. Every error carries a `kind` so callers can
 * decide what to do (exit 2, fence deletes, report and skip) without string matching.
 */
export type BridgeErrorKind =
  | 'config' // bad configuration or usage: exit 2 at start
  | 'source-unavailable' // registry unreachable or answering errors: retry, fence deletes
  | 'invalid-service' // one registry service cannot become a valid ServiceEntry: report, skip
  | 'conflict' // an object with our name or host is owned by someone else: report, skip
  | 'sink' // the sink (kube API, files) failed
  | 'unsupported-server'; // the registry server lacks an API we need

export class BridgeError extends Error {
  readonly kind: BridgeErrorKind;
  constructor(kind: BridgeErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'BridgeError';
  }
}

export class ConfigError extends BridgeError {
  /** Dotted path of the offending field, e.g. `sources[1].zookeeper.connect`. */
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super('config', path ? `${path}: ${message}` : message, options);
    this.path = path;
    this.name = 'ConfigError';
  }
}

export class SourceUnavailableError extends BridgeError {
  readonly source: string;
  constructor(source: string, message: string, options?: { cause?: unknown }) {
    super('source-unavailable', `source ${source}: ${message}`, options);
    this.source = source;
    this.name = 'SourceUnavailableError';
  }
}

export class SinkError extends BridgeError {
  /** HTTP status of the API call, when the sink is an API. */
  readonly status: number | undefined;
  constructor(message: string, options?: { cause?: unknown; status?: number }) {
    super('sink', message, options);
    this.status = options?.status;
    this.name = 'SinkError';
  }
}

/** A printable one-line description of any thrown value, for logs and reports. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
