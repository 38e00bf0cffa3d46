/**
 * Text from files, made safe to print. A graph name, an op name, a path or a JSON key can hold
 * control characters: ESC sequences that clear the screen or move the cursor, CR and LF that
 * forge a line of output ("all checks passed"), bidi overrides and invisible characters that
 * make what is shown differ from what is there. Every such character becomes a visible escape
 * (`\x1b`, `\n`, `\u202e`); all other text is left as it is.
 */

// C0 controls, DEL, C1 controls, the Arabic letter mark, zero-width and directional marks, the
// line and paragraph separators, the bidi embeddings, overrides and isolates, and the BOM.
const CONTROLS = '\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff';
const ANY_CONTROL = new RegExp(`[${CONTROLS}]`, 'g');
// For whole outputs, whose line breaks and tabs are loom's own layout.
const CONTROL_BUT_LAYOUT = new RegExp(`(?![\\n\\t])[${CONTROLS}]`, 'g');

const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escape(c: string): string {
  const code = c.charCodeAt(0);
  return SHORT[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/** `s` with every control character escaped, line breaks and tabs included: one line that cannot move the cursor. */
export function printable(s: string): string {
  return s.replace(ANY_CONTROL, escape);
}

/** Like `printable`, but keeps line breaks and tabs: for whole blocks of output whose layout is loom's own. */
export function printableBlock(s: string): string {
  return s.replace(CONTROL_BUT_LAYOUT, escape);
}
