import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';
import { defaultSecretKeys, redactText, redactedText } from './redact.js';

export type { Logger };

/**
 * Paths pino removes from every log line. Secrets never reach the config objects that get
 * logged (they are references until read), but defence in depth costs nothing.
 */
export const redactPaths = [
  'password',
  '*.password',
  '*.*.password',
  'token',
  '*.token',
  'secretKey',
  '*.secretKey',
  '*.*.secretKey',
  'accessKey',
  '*.accessKey',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
];

export interface LoggerSettings {
  level?: string;
  /** Where JSON lines go; defaults to stderr so stdout stays clean for `-o yaml`. */
  destination?: DestinationStream;
}

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: { app: 'registry-bridge' },
    redact: { paths: redactPaths, censor: redactedText },
    // Every string of every line is scrubbed too: a server error that echoes a URL with
    // `accessToken=…` or a form body with `password=…` reaches the log without its secret.
    formatters: { log: (obj) => scrubLogValue(obj, 0, new WeakSet()) as Record<string, unknown> },
    hooks: {
      logMethod(args, method) {
        const scrubbed: unknown[] = args.map((a: unknown) => (typeof a === 'string' ? redactText(a) : a));
        // pino takes the message of an error (`log.error(err)`, `{ err }`) as the line's message
        // unless one is given: give it, scrubbed.
        const first = scrubbed[0];
        const err = first instanceof Error ? first : (first as { err?: unknown } | null)?.err;
        if (err instanceof Error && typeof scrubbed[1] !== 'string') {
          if (first instanceof Error) scrubbed[0] = { err: first };
          scrubbed.splice(1, 0, redactText(err.message));
        }
        method.apply(this, scrubbed as Parameters<typeof method>);
      },
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options, settings.destination ?? pino.destination({ fd: 2, sync: true }));
}

const maxScrubDepth = 10;

/**
 * A copy of a log object with secrets removed: the value of a secret-like key (as the endpoint
 * labels define it: `password`, `accessToken`, `apiKey`…) is censored, and every other string
 * goes through {@link redactText}. Errors become their type, message and stack, scrubbed.
 */
export function scrubLogValue(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value) || depth > maxScrubDepth) return value;
  seen.add(value);
  if (value instanceof Error) {
    // Same class (pino's serializer names the type from it), scrubbed message, stack and fields.
    const out = Object.create(Object.getPrototypeOf(value) as object) as Error & Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) out[k] = scrubEntry(k, v, depth, seen);
    Object.defineProperty(out, 'message', { value: redactText(value.message), enumerable: false });
    if (value.stack !== undefined) Object.defineProperty(out, 'stack', { value: redactText(value.stack) });
    if (value.cause !== undefined)
      Object.defineProperty(out, 'cause', { value: scrubLogValue(value.cause, depth + 1, seen) });
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => scrubLogValue(v, depth + 1, seen));
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubEntry(k, v, depth, seen);
  return out;
}

function scrubEntry(key: string, v: unknown, depth: number, seen: WeakSet<object>): unknown {
  if ((typeof v === 'string' || typeof v === 'number') && defaultSecretKeys(key)) return redactedText;
  return scrubLogValue(v, depth + 1, seen);
}

/** A logger that drops everything: for tests and pure callers that need one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
