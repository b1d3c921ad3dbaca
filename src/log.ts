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
        method.apply(
          this,
          args.map((a: unknown) => (typeof a === 'string' ? redactText(a) : a)) as Parameters<typeof method>,
        );
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
    const out: Record<string, unknown> = { type: value.name, message: redactText(value.message) };
    if (value.stack !== undefined) out.stack = redactText(value.stack);
    for (const [k, v] of Object.entries(value)) out[k] = scrubEntry(k, v, depth, seen);
    if (value.cause !== undefined) out.cause = scrubLogValue(value.cause, depth + 1, seen);
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
