/**
 * Text from files is printed with its control characters escaped: `printable` for names and
 * error fields (one line each), `printableBlock` for whole outputs (loom's own line breaks kept).
 */
import { describe, expect, it } from 'vitest';
import { formatError, LoomError } from '../../compiler/errors.ts';
import { printable, printableBlock } from '../../compiler/text.ts';
import { HOSTILE, RAW_CONTROL } from '../helpers/hostile.ts';

const ESC = '\x1b';

describe('printable', () => {
  it('escapes C0, DEL and C1 controls as visible \\x escapes, and CR, LF, tab by name', () => {
    expect(printable(`a${ESC}[2Jb`)).toBe('a\\x1b[2Jb');
    expect(printable('a\r\nb\tc')).toBe('a\\r\\nb\\tc');
    expect(printable('\x00\x07\x7f\x85\x9b')).toBe('\\x00\\x07\\x7f\\x85\\x9b');
  });

  it('escapes bidi overrides, isolates, zero-width characters and the BOM', () => {
    expect(printable('\u202eabc\u202c')).toBe('\\u202eabc\\u202c');
    expect(printable('\u2066x\u2069\u200b\u200f\ufeff\u2028')).toBe('\\u2066x\\u2069\\u200b\\u200f\\ufeff\\u2028');
  });

  it('leaves ordinary text alone, non-ASCII letters and symbols included', () => {
    for (const s of ['affine-tanh', 'C:\\graphs\\a.json', 'Größe × 2 ± 95% — π', 'ÿ', '日本語', '"quoted" {x=1}']) expect(printable(s)).toBe(s);
  });

  it('printableBlock keeps line breaks and tabs but escapes everything else', () => {
    expect(printableBlock(`line one\n\tline two${ESC}[2J\r\u202e\n`)).toBe('line one\n\tline two\\x1b[2J\\r\\u202e\n');
  });

  it('an escaped hostile name is one line with no raw control character', () => {
    const p = printable(HOSTILE);
    expect(p).not.toMatch(RAW_CONTROL);
    expect(p).not.toContain('\n');
  });
});

describe('formatError escapes every field that may carry text from a file', () => {
  it('message, file, pointer, node, expected, found and hint', () => {
    const text = formatError({
      code: 'E_DANGLING',
      message: `unknown value "${HOSTILE}"`,
      file: `/tmp/${HOSTILE}.graph.json`,
      pointer: `/nodes/0/${HOSTILE}`,
      node: HOSTILE,
      expected: HOSTILE,
      found: HOSTILE,
      hint: `did you mean "${HOSTILE}"?`,
    });
    expect(text).not.toMatch(RAW_CONTROL);
    // Only the line breaks formatError itself puts between its fields.
    const lines = text.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^error\[E_DANGLING\] /);
    expect(lines.slice(1).map((l) => l.slice(0, 12))).toEqual(['  expected: ', '  found:    ', '  hint:     ']);
    expect(lines.some((l) => l.startsWith('all checks passed'))).toBe(false);
    expect(text).toContain('\\x1b[2Jevil\\r\\nall checks passed: ok\\u202e');
  });

  it('a LoomError thrown with such a message prints escaped', () => {
    const e = new LoomError({ code: 'E_UNKNOWN_OP', message: `unknown op "${HOSTILE}"`, node: 'h' });
    expect(e.message).not.toMatch(RAW_CONTROL);
    expect(e.message.split('\n')).toHaveLength(1);
  });
});
