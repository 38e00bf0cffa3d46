/**
 * User-facing errors. Every problem a user can cause (a bad file, a bad graph, a bad flag,
 * bad inputs) is a LoomError: it names the file, the JSON pointer and the node, and says what
 * was expected and what was found. The CLI prints `format()` and exits non-zero, with no stack.
 */
import { printable } from './text.ts';

export type ErrorCode =
  | 'E_IO' // missing or unreadable file
  | 'E_JSON' // invalid JSON text
  | 'E_SCHEMA' // JSON Schema violation
  | 'E_UNKNOWN_OP'
  | 'E_ATTR' // unknown, missing or ill-typed attribute
  | 'E_ARITY' // wrong number of inputs
  | 'E_DANGLING' // reference to a value that does not exist
  | 'E_DUPLICATE' // id defined twice
  | 'E_CYCLE'
  | 'E_IMPORT' // missing or recursive `call` target
  | 'E_SHAPE'
  | 'E_DTYPE'
  | 'E_RANK'
  | 'E_AXIS'
  | 'E_UNBOUND_DIM'
  | 'E_SIZE' // absurd tensor sizes
  | 'E_INPUT' // runtime inputs that do not match the signature
  | 'E_USAGE' // bad command-line usage
  | 'E_BACKEND'
  | 'E_NUMERIC' // NaN / Inf where none is allowed
  | 'E_UNSUPPORTED'; // a valid construct the compiler cannot handle (grad through a scan)

export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  file?: string;
  /** RFC 6901 JSON pointer into `file`. */
  pointer?: string;
  node?: string;
  expected?: string;
  found?: string;
  hint?: string;
}

export class LoomError extends Error {
  readonly info: ErrorInfo;
  constructor(info: ErrorInfo) {
    super(formatError(info));
    this.name = 'LoomError';
    this.info = info;
  }
  get code(): ErrorCode {
    return this.info.code;
  }
  /** Returns a copy with location fields filled in where they were missing. */
  at(loc: Partial<Pick<ErrorInfo, 'file' | 'pointer' | 'node'>>): LoomError {
    return new LoomError({
      ...this.info,
      file: this.info.file ?? loc.file,
      pointer: this.info.pointer ?? loc.pointer,
      node: this.info.node ?? loc.node,
    });
  }
}

/**
 * The error as printed. Every field may quote a file (a name, a key, a path), so each is escaped
 * to one printable line: the only line breaks are the ones between the fields.
 */
export function formatError(e: ErrorInfo): string {
  let where = '';
  if (e.file !== undefined) where += e.file;
  if (e.pointer !== undefined) where += `#${e.pointer}`;
  if (e.node !== undefined) where += `${where ? ' ' : ''}(node "${e.node}")`;
  const lines = [`error[${e.code}]${where ? ` ${where}` : ''}: ${e.message}`];
  if (e.expected !== undefined) lines.push(`  expected: ${e.expected}`);
  if (e.found !== undefined) lines.push(`  found:    ${e.found}`);
  if (e.hint !== undefined) lines.push(`  hint:     ${e.hint}`);
  return lines.map(printable).join('\n');
}

export function isLoomError(e: unknown): e is LoomError {
  return e instanceof LoomError;
}

/** Escapes one JSON pointer token (RFC 6901). */
export function pointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function joinPointer(base: string, ...tokens: (string | number)[]): string {
  return base + tokens.map((t) => '/' + pointerToken(t)).join('');
}
