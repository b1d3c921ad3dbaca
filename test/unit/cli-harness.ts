import { main } from '../../src/cli/main.js';

/** The CLI's io with stdout and stderr captured as strings; `env` is what the CLI sees as its environment. */
export function capture(env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (s: string) => (out.push(s), true) },
      stderr: { write: (s: string) => (err.push(s), true) },
      env,
    } as never,
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

export type Captured = ReturnType<typeof capture>;

/** Runs the CLI in-process with `args` on the captured io `c`: the exit code, and `c` to read stdout and stderr from. */
export async function runCli(args: string[], c: Captured = capture()): Promise<Captured & { code: number }> {
  return { ...c, code: await main(args, c.io) };
}
