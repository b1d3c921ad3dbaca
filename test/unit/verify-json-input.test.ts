import { describe, expect, it } from 'vitest';
import { jsonSyntaxErrorAt, lineColumnOf, parseJsonText } from '../../src/verify/json-input.js';

describe('JSON syntax errors: line, column, reason; never the raw text', () => {
  it.each<[string, string, number, number, string]>([
    ['empty', '', 1, 1, 'empty: no JSON value'],
    ['only spaces', '  \n ', 2, 2, 'empty: no JSON value'],
    ['cut inside a string', '[{"hostname": "www.exa', 1, 23, 'unterminated string (is the file cut short?)'],
    ['cut after a value', '[{"a": 1},\n {"b": 2}', 2, 10, 'unexpected end of input (is the file cut short?)'],
    ['HTML', '<html>\n<body>401</body>', 1, 1, 'unexpected character "<"'],
    ['an unquoted key', '{\n  a: 1}', 2, 3, 'expected a property name in double quotes, found "a"'],
    ['a missing colon', '{"a" 1}', 1, 6, "expected ':' after a property name"],
    ['a missing comma', '[1\n 2]', 2, 2, "expected ',' or ']'"],
    ['a trailing comma', '[1,]', 1, 4, 'unexpected character "]"'],
    ['a raw newline in a string', '["a\nb"]', 1, 4, 'control character (e.g. a raw newline) inside a string'],
    ['a bad escape', '["\\x"]', 1, 3, 'bad escape sequence in a string'],
    ['text after the value', '[] x', 1, 4, 'unexpected text after the end of the JSON value'],
    ['a bad literal', '{"a": tru}', 1, 7, 'unexpected character "t"'],
  ])('%s', (_name, text, line, column, reason) => {
    expect(() => JSON.parse(text)).toThrow();
    const e = (() => {
      try {
        parseJsonText(text, 'registryz');
      } catch (err) {
        return err as Error;
      }
      throw new Error('no error');
    })();
    expect(e.message).toBe(`registryz is not JSON: line ${line}, column ${column}: ${reason}`);
    expect(e.message).not.toContain('\n');
  });

  it('valid JSON: no error, nested deeply without recursion', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(jsonSyntaxErrorAt(deep)).toBeUndefined();
    expect(jsonSyntaxErrorAt('{"a": [1, -2.5e3, true, null, "\\u00e9"]}')).toBeUndefined();
    expect(jsonSyntaxErrorAt('['.repeat(100_000))).toEqual({
      offset: 100_000,
      reason: 'unexpected end of input (is the file cut short?)',
    });
  });

  it('lineColumnOf counts lines from 1', () => {
    expect(lineColumnOf('ab\ncd', 4)).toEqual({ line: 2, column: 2 });
  });
});
