/**
 * JSON input of the verifier (registryz, syncz, config dumps), saved files and HTTP bodies
 * alike: a syntax error names its line and column and what was expected, never the raw bytes
 * (V8's own message pastes a slice of the text, newlines included, and often no position).
 */

/** A body that is not JSON: where (1-based line and column) and why, in one line. */
export class JsonSyntaxError extends Error {
  readonly line: number;
  readonly column: number;
  readonly reason: string;
  constructor(what: string, line: number, column: number, reason: string) {
    super(`${what} is not JSON: line ${line}, column ${column}: ${reason}`);
    this.line = line;
    this.column = column;
    this.reason = reason;
    this.name = 'JsonSyntaxError';
  }
}

/** Parses `text` as JSON; on a syntax error throws JsonSyntaxError naming `what`, line and column. */
export function parseJsonText(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const found = jsonSyntaxErrorAt(text) ?? { offset: text.length, reason: firstLine(err) };
    const { line, column } = lineColumnOf(text, found.offset);
    throw new JsonSyntaxError(what, line, column, found.reason);
  }
}

function firstLine(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return (m.split('\n')[0] ?? '').replace(/, ".*$/, '').slice(0, 120);
}

/** 1-based line and column of a character offset. */
export function lineColumnOf(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

const numberAt = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const escapeAt = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;

/**
 * The first syntax error of a JSON text (offset and reason), or undefined when it is valid.
 * Iterative, so a deeply nested input cannot overflow the stack.
 */
export function jsonSyntaxErrorAt(text: string): { offset: number; reason: string } | undefined {
  const n = text.length;
  let i = 0;
  const stack: ('{' | '[')[] = [];
  let expect: 'value' | 'key' | 'after' = 'value';
  const at = (reason: string) => ({ offset: i, reason });
  const found = () =>
    i >= n
      ? n === 0 || /^\s*$/.test(text)
        ? 'empty: no JSON value'
        : 'unexpected end of input (is the file cut short?)'
      : `unexpected character ${JSON.stringify(text[i])}`;
  const skipSpace = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  /** Reads a string at i (text[i] === '"'); returns an error or undefined. */
  const readString = (): { offset: number; reason: string } | undefined => {
    i++;
    for (;;) {
      if (i >= n) return at('unterminated string (is the file cut short?)');
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return undefined;
      }
      if (c === 92) {
        escapeAt.lastIndex = i;
        if (!escapeAt.test(text)) return at('bad escape sequence in a string');
        i = escapeAt.lastIndex;
        continue;
      }
      if (c < 0x20) return at('control character (e.g. a raw newline) inside a string');
      i++;
    }
  };
  for (;;) {
    skipSpace();
    if (expect === 'value') {
      const c = text[i];
      if (c === '{' || c === '[') {
        stack.push(c);
        i++;
        skipSpace();
        if (text[i] === (c === '{' ? '}' : ']')) {
          i++;
          stack.pop();
          expect = 'after';
        } else expect = c === '{' ? 'key' : 'value';
        continue;
      }
      if (c === '"') {
        const e = readString();
        if (e) return e;
        expect = 'after';
        continue;
      }
      if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
        numberAt.lastIndex = i;
        if (!numberAt.test(text)) return at('malformed number');
        i = numberAt.lastIndex;
        expect = 'after';
        continue;
      }
      const literal = ['true', 'false', 'null'].find((w) => text.startsWith(w, i));
      if (literal) {
        i += literal.length;
        expect = 'after';
        continue;
      }
      return at(found());
    }
    if (expect === 'key') {
      if (text[i] !== '"')
        return at(
          i >= n
            ? found()
            : `expected a property name in double quotes, found ${found().replace(/^unexpected character /, '')}`,
        );
      const e = readString();
      if (e) return e;
      skipSpace();
      if (text[i] !== ':') return at(i >= n ? found() : "expected ':' after a property name");
      i++;
      expect = 'value';
      continue;
    }
    const top = stack[stack.length - 1];
    if (top === undefined) return i < n ? at('unexpected text after the end of the JSON value') : undefined;
    const close = top === '{' ? '}' : ']';
    if (text[i] === ',') {
      i++;
      expect = top === '{' ? 'key' : 'value';
    } else if (text[i] === close) {
      i++;
      stack.pop();
    } else return at(i >= n ? found() : `expected ',' or '${close}'`);
  }
}
