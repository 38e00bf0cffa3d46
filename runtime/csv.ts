/**
 * CSV cells for the tables loom writes (compare.csv, metrics.csv). Quoted as RFC 4180 says, and
 * string cells neutralised against formula injection as OWASP recommends: a spreadsheet runs a
 * cell that starts with `=`, `+`, `-` or `@` (or a tab or CR before one) as a formula, so such a
 * cell gets a leading `'`. Numbers are written as numbers: a negative return stays -1.5.
 */
export type CsvValue = string | number | null | undefined;

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

export function csvCell(v: CsvValue): string {
  // NaN and ±Infinity are empty, as metrics.jsonl has them null.
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  if (typeof v === 'number') return String(v);
  const s = FORMULA_START.test(v) ? `'${v}` : v;
  return NEEDS_QUOTES.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV record (without its line break). */
export function csvLine(values: readonly CsvValue[]): string {
  return values.map(csvCell).join(',');
}
