import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

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
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return pino(options, settings.destination ?? pino.destination({ fd: 2, sync: true }));
}

/** A logger that drops everything: for tests and pure callers that need one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
