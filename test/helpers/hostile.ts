/** Text a hostile file may carry, and the check that none of it reached a terminal raw. */
import { expect } from 'vitest';

const ESC = '\x1b';

/** A name that clears the screen, forges a line of output and reverses what follows. */
export const HOSTILE = `${ESC}[2Jevil\r\nall checks passed: ok\u202e`;

/** Any character a terminal or a bidi-aware viewer acts on, except the line break and the tab. */
export const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/;

/** Printed text carries no raw control character and no line that a file forged. */
export function expectSafeOutput(text: string): void {
  expect(text).not.toMatch(RAW_CONTROL);
  expect(text.split('\n').some((l) => l.startsWith('all checks passed'))).toBe(false);
}
