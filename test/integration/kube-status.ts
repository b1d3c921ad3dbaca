/** The apiserver's Status message of a failed request (client-node error), else the error's message. */
export function statusText(e: unknown): string {
  const ex = e as { body?: unknown; message?: string };
  let body = ex.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return body as string;
    }
  }
  return (body as { message?: string } | undefined)?.message ?? String(ex.message);
}
