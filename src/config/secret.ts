import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.js';

/**
 * A secret is never written inline in the config: it is a reference to an environment
 * variable or a file (a mounted Kubernetes Secret). Only the reference is ever logged.
 */
export const secretRefSchema = z.union([
  z.strictObject({ env: z.string().min(1) }),
  z.strictObject({ file: z.string().min(1) }),
]);
export type SecretRef = z.infer<typeof secretRefSchema>;

export function describeSecretRef(ref: SecretRef): string {
  return 'env' in ref ? `env ${ref.env}` : `file ${ref.file}`;
}

export function secretResolver(env: Readonly<Record<string, string | undefined>>, baseDir: string) {
  return async (ref: SecretRef, field: string): Promise<string> => {
    if ('env' in ref) {
      const value = env[ref.env];
      if (value === undefined || value === '')
        throw new ConfigError(field, `environment variable ${ref.env} is not set`);
      return value;
    }
    const path = isAbsolute(ref.file) ? ref.file : resolve(baseDir, ref.file);
    try {
      return (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new ConfigError(field, `cannot read secret file ${path} (${code})`);
    }
  };
}
