/**
 * Lenient reading of a list of debug elements (registryz services, syncz proxies): each element
 * is read on its own; one that does not match its schema is dropped and named by its index, the
 * id it carries (host, proxy id) when that is a string, and why. The readable rest goes on.
 */
import type { z } from 'zod';

/** An element that could not be read. */
export interface UnreadElement {
  readonly index: number;
  /** The element's `idField`, when it holds a non-empty string. */
  readonly id?: string;
  readonly reason: string;
}

/** Each element through `schema`, in order; `skip` leaves out elements that are neither read nor dropped. */
export function readElements<T>(
  elements: readonly unknown[],
  schema: z.ZodType<T>,
  idField: string,
  skip: (element: unknown) => boolean = () => false,
): { read: T[]; dropped: UnreadElement[] } {
  const read: T[] = [];
  const dropped: UnreadElement[] = [];
  elements.forEach((element, index) => {
    if (skip(element)) return;
    const parsed = schema.safeParse(element);
    if (parsed.success) {
      read.push(parsed.data);
      return;
    }
    const id =
      element !== null && typeof element === 'object' ? (element as Record<string, unknown>)[idField] : undefined;
    dropped.push({ index, ...(typeof id === 'string' && id ? { id } : {}), reason: issueText(parsed.error.issues) });
  });
  return { read, dropped };
}

/** zod issues in one line: `ports: expected array, received string; Resolution: …`. */
export function issueText(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') + ': ' : ''}${i.message.replace(/\s+/g, ' ')}`)
    .join('; ');
}
