/**
 * Reading untrusted files: graphs and the files they call, pipelines and their `extends`,
 * `run --inputs`, hardware profiles and checkpoints. Every read is bounded, refuses anything but
 * a regular file before opening it, and reports every failure as a LoomError naming the path;
 * every parse strips a byte-order mark the same way, rejects duplicate and `__proto__` keys, and
 * never echoes the text of a file that failed to parse.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { visit } from 'jsonc-parser';
import { LoomError, joinPointer } from '../errors.ts';

const MiB = 1024 * 1024;

/**
 * Size caps per kind of file. Graphs, pipelines, inputs and profiles are small documents; a
 * checkpoint holds every tensor as base64 and may be much larger (V8 strings stop near 512 MiB).
 */
export const FILE_LIMITS = {
  document: 16 * MiB,
  checkpoint: 256 * MiB,
} as const;

/** Folders whose files are not data: /proc files claim size 0 and never end, /dev holds devices. */
const SPECIAL_DIRS = ['/proc', '/sys', '/dev'];

export interface ReadOptions {
  /** What the file is, for messages: "graph file", "pipeline", "inputs file", ... */
  what: string;
  /** Bytes at most (default FILE_LIMITS.document). */
  maxBytes?: number;
}

/** Paths shown in messages: relative to the working directory when that is shorter. */
export function displayPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') && r.length < p.length ? r : p;
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file',
  ENOTDIR: 'no such file (a part of the path is not a folder)',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ELOOP: 'too many levels of symbolic links',
  EIO: 'input/output error',
  ENAMETOOLONG: 'the path is too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  ENXIO: 'no such device',
  ENODEV: 'no such device',
  EAGAIN: 'the file would block',
  EINVAL: 'the file cannot be read',
};

/** The E_IO error for a failed file-system call on `path` (any errno; unknown ones by name). */
export function ioError(e: unknown, path: string, what: string): LoomError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const why = (code && ERRNO_TEXT[code]) ?? (code ? `system error ${code}` : 'unknown error');
  return new LoomError({ code: 'E_IO', message: `cannot read ${what} ${displayPath(path)}: ${why}`, file: displayPath(path) });
}

function kindOf(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

const isMissing = (e: unknown): boolean => ['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException)?.code ?? '');

/**
 * Reads a file that a user or a user's file names, or returns undefined when there is no such
 * file. Anything but a regular file (directories, FIFOs, sockets, devices, files under /proc,
 * /sys, /dev) is E_IO before it is opened; more than `maxBytes` is E_SIZE.
 */
export function tryReadUntrusted(path: string, opts: ReadOptions): string | undefined {
  const max = opts.maxBytes ?? FILE_LIMITS.document;
  let real: string;
  let st: Stats;
  try {
    real = realpathSync.native(path);
    st = statSync(real);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw ioError(e, path, opts.what);
  }
  const special = (why: string) =>
    new LoomError({
      code: 'E_IO',
      message: `cannot read ${opts.what} ${displayPath(path)}: ${why}`,
      file: displayPath(path),
      expected: 'a regular file',
      hint: real !== resolve(path) ? `it resolves to ${real}` : undefined,
    });
  const specialDir = SPECIAL_DIRS.find((d) => real === d || real.startsWith(d + sep));
  if (specialDir !== undefined) throw special(`it is a special file (under ${specialDir})`);
  const kind = kindOf(st);
  if (kind !== undefined) throw special(`it is ${kind}`);
  const tooBig = (found: string) =>
    new LoomError({
      code: 'E_SIZE',
      message: `${opts.what} ${displayPath(path)} is larger than ${formatBytes(max)}`,
      file: displayPath(path),
      expected: `at most ${formatBytes(max)} (${max} bytes)`,
      found,
      hint: `loom reads ${opts.what}s of at most ${formatBytes(max)}; is this the right file?`,
    });
  if (st.size > max) throw tooBig(`${st.size} bytes`);
  let fd: number;
  try {
    // Non-blocking, so that a file swapped for a FIFO after the stat cannot hang the open.
    fd = openSync(real, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw ioError(e, path, opts.what);
  }
  try {
    const again = kindOf(fstatSync(fd));
    if (again !== undefined) throw special(`it is ${again}`);
    // Read to the cap and one byte more, whatever the size claimed: files can grow, or lie.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(64 * 1024, max + 1 - total));
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        throw ioError(e, path, opts.what);
      }
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > max) throw tooBig(`more than ${max} bytes`);
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** tryReadUntrusted, with a missing file as E_IO. */
export function readUntrusted(path: string, opts: ReadOptions): string {
  const text = tryReadUntrusted(path, opts);
  if (text === undefined) throw new LoomError({ code: 'E_IO', message: `cannot read ${opts.what} ${displayPath(path)}: no such file`, file: displayPath(path) });
  return text;
}

function formatBytes(n: number): string {
  return n % MiB === 0 ? `${n / MiB} MiB` : `${n} bytes`;
}

// ---------------------------------------------------------------------------- allowed roots

/**
 * The real path of `p`, for paths that may not exist: the deepest existing ancestor is resolved
 * (so a symlinked folder counts where it points) and the rest appended.
 */
export function realPathLoose(p: string): string {
  const abs = resolve(p);
  try {
    return realpathSync.native(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join(realPathLoose(parent), basename(abs));
  }
}

const isUnder = (p: string, root: string): boolean => p === root || p.startsWith(root.endsWith(sep) ? root : root + sep);

/** Where a reference was written, for the error when it leaves the allowed folders. */
export interface RefSite {
  file: string;
  pointer: string;
  node?: string;
  /** The path as written in the file. */
  written: string;
  what: string;
}

/**
 * Files may reference other files only under allowed folders: the working directory, the folder of
 * the file named on the command line, the shipped graph library, and each `--allow-path DIR`.
 * Checked on the real path (symlinks followed), so neither "..", an absolute path nor a link leaves them.
 * `realpath` is the file source's (in-memory sources have no links).
 */
export function assertAllowed(target: string, roots: readonly string[], site: RefSite, realpath: (p: string) => string = realPathLoose): void {
  const real = realpath(target);
  if (roots.some((r) => isUnder(real, realpath(r)))) return;
  throw new LoomError({
    code: 'E_IO',
    message: `${site.what} ${JSON.stringify(site.written)} is outside the folders loom may read`,
    file: site.file,
    pointer: site.pointer,
    node: site.node,
    expected: `a path under ${[...new Set(roots.map((r) => (resolve(r) === process.cwd() ? '.' : displayPath(resolve(r)))))].join(', ')}`,
    found: real,
    hint: `write a relative path inside the project, or pass --allow-path DIR to allow the folder that holds it`,
  });
}

// ---------------------------------------------------------------------------- JSON

/**
 * Rejects a document that is not recognisably of the expected kind (no marker key) before schema
 * validation, whose messages quote values: a secrets file passed as a graph is named, not printed.
 */
export function assertDocumentKind(json: unknown, file: string, what: string, markers: readonly string[]): void {
  const isObject = json !== null && typeof json === 'object' && !Array.isArray(json);
  if (isObject && markers.some((k) => Object.hasOwn(json, k))) return;
  const type = json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json === 'object' ? 'an object' : `a ${typeof json}`;
  throw new LoomError({
    code: 'E_SCHEMA',
    message: `this is not a ${what} file`,
    file: displayPath(file),
    pointer: '/',
    expected: `a JSON object with ${markers.map((k) => `"${k}"`).join(' or ')}`,
    found: isObject ? `an object without ${markers.map((k) => `"${k}"`).join(' or ')}` : type,
    hint: 'is this the right file?',
  });
}

/**
 * Parses untrusted JSON text. A byte-order mark is dropped; syntax errors give the file, line and
 * column and never the text; duplicate keys (JSON.parse keeps the last silently) and `__proto__`
 * keys (which would replace an object's prototype when merged) are E_JSON at their pointer.
 */
export function parseJsonText(text: string, file: string): unknown {
  // Editors on Windows may save a byte-order mark, which JSON.parse rejects.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    // V8's messages give a position only for some errors, so the offset is found independently.
    const offset = jsonErrorOffset(body);
    const { line, col } = lineCol(body, offset);
    throw new LoomError({
      code: 'E_JSON',
      message: `invalid JSON at line ${line}, column ${col}: ${syntaxReason((e as Error).message)}`,
      file: displayPath(file),
      found: offset >= body.length ? 'end of file' : undefined,
      hint: 'JSON allows no comments, no trailing commas and only double-quoted strings',
    });
  }
  checkKeys(body, file);
  return json;
}

/** V8's reason without the excerpt of the text it may quote (`Unexpected token 'x', "..."`). */
function syntaxReason(message: string): string {
  const raw = message.replace(/^JSON\.parse: /, '');
  if (/^Unexpected token/.test(raw)) return 'unexpected character';
  if (/^Unexpected non-whitespace/.test(raw)) return 'unexpected text after the JSON value';
  if (/^Unexpected end/.test(raw)) return 'unexpected end of input';
  return raw.replace(/, (\.\.\.)?".*$/s, '').replace(/ in JSON at position \d+.*$/s, '').replace(/ \(line \d+ column \d+\)$/, '');
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  return { line: text.slice(0, offset).split('\n').length, col: offset - lineStart + 1 };
}

function checkKeys(text: string, file: string): void {
  // Only text JSON.parse accepted gets here, so the visitor sees plain JSON.
  const seen: Set<string>[] = [];
  let problem: LoomError | undefined;
  try {
    walk();
  } catch (e) {
    // The visitor recurses; JSON.parse does not. Nesting this deep is no graph, pipeline or input.
    if (!(e instanceof RangeError)) throw e;
    throw new LoomError({ code: 'E_SCHEMA', message: 'the document nests too deeply to read', file: displayPath(file), pointer: '/', expected: 'at most a few hundred levels of arrays and objects' });
  }
  if (problem) throw problem;

  function walk(): void {
    visit(text, {
      onObjectBegin: () => void seen.push(new Set()),
      onObjectEnd: () => void seen.pop(),
      onObjectProperty: (name, _offset, _length, line, col, path) => {
        if (problem) return;
        const keys = seen[seen.length - 1]!;
        const pointer = joinPointer('', ...path(), name);
        const at = `line ${line + 1}, column ${col + 1}`;
        if (name === '__proto__')
          problem = new LoomError({ code: 'E_JSON', message: `the key "__proto__" is not allowed (at ${at})`, file: displayPath(file), pointer, hint: 'rename or remove it' });
        else if (keys.has(name))
          problem = new LoomError({
            code: 'E_JSON',
            message: `duplicate key ${JSON.stringify(name)} (at ${at})`,
            file: displayPath(file),
            pointer,
            expected: 'each key once per object',
            hint: 'JSON readers disagree on which copy wins; keep one',
          });
        keys.add(name);
      },
    });
  }
}

/** Offset of the first syntax error in `text` (text.length when it ends too early), for messages only. */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const n = text.length;
  class Stop {
    constructor(readonly at: number) {}
  }
  const fail = (at: number): never => {
    throw new Stop(Math.min(at, n));
  };
  const ws = () => {
    while (i < n && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const lit = (w: string) => {
    for (let k = 0; k < w.length; k++) if (text[i + k] !== w[k]) fail(i + k);
    i += w.length;
  };
  const str = () => {
    i++; // opening quote
    for (;;) {
      if (i >= n) fail(n);
      const c = text.charCodeAt(i);
      if (c === 0x22) return void i++;
      if (c < 0x20) fail(i);
      if (c === 0x5c) {
        const esc = text[i + 1];
        if (esc === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail(i + 1);
          i += 6;
        } else if (esc !== undefined && '"\\/bfnrt'.includes(esc)) i += 2;
        else fail(i + 1);
      } else i++;
    }
  };
  const num = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '' || m[0] === '-') fail(m && m[0] === '-' ? i + 1 : i);
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    if (i >= n) fail(n);
    const c = text[i]!;
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      for (;;) {
        ws();
        if (text[i] !== '"') fail(i);
        str();
        ws();
        if (text[i] !== ':') fail(i);
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') return void i++;
        fail(i);
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') return void i++;
        fail(i);
      }
    } else if (c === '"') str();
    else if (c === 't') lit('true');
    else if (c === 'f') lit('false');
    else if (c === 'n') lit('null');
    else if (c === '-' || (c >= '0' && c <= '9')) num();
    else fail(i);
  };
  try {
    value();
    ws();
    return i < n ? i : n;
  } catch (e) {
    if (e instanceof Stop) return e.at;
    // Nesting deep enough to exhaust the stack: the deepest point reached is the best guess.
    return Math.min(i, n);
  }
}
