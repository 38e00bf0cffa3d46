/**
 * Every file loom writes goes through here: paths are confined to their output folder, folders are
 * created without hanging, files never end half-written (temp file, fsync, rename), and every
 * failure is an E_IO naming the path and what to do.
 */
import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readdirSync, realpathSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, parse, relative, resolve, sep } from 'node:path';
import { LoomError } from '../compiler/errors.ts';

const OUT_HINT = 'choose an output folder you can write to, e.g. --out runs/NAME';

/**
 * `root/parts...`, checked to stay under `root` once resolved: names from untrusted files (a
 * pipeline name) become folder names, and `..` or an absolute path must not lead anywhere else.
 */
export function outputPath(root: string, ...parts: string[]): string {
  for (const p of parts)
    if (p === '' || p === '.' || p.includes('\0'))
      throw new LoomError({ code: 'E_IO', message: `${JSON.stringify(p)} is not a valid file name in the output folder`, file: root, hint: 'names used in paths use letters, digits, ".", "_" and "-"' });
  const base = resolve(root);
  const full = resolve(base, ...parts);
  const rel = relative(base, full);
  if (rel === '' || rel === '..' || rel.startsWith('..' + sep) || isAbsolute(rel))
    throw new LoomError({
      code: 'E_IO',
      message: `refusing to write outside the output folder`,
      file: root,
      expected: `a path under ${base}`,
      found: full,
      hint: 'names used in paths use letters, digits, ".", "_" and "-" (no "/" and no "..")',
    });
  return join(root, ...parts);
}

/** Kernel file systems: nothing loom writes belongs there, and mkdir there can loop forever. */
const PSEUDO_FS = ['/proc', '/sys', '/dev'];

/** Where `abs` really is: the real path of its deepest existing ancestor, plus the rest. */
function realLocation(abs: string): string {
  const rest: string[] = [];
  for (let p = abs; ; p = dirname(p)) {
    try {
      return join(realpathSync(p), ...rest.reverse());
    } catch {
      if (dirname(p) === p) return abs;
      rest.push(basename(p));
    }
  }
}

function refusePseudoFs(path: string): void {
  const real = realLocation(resolve(path));
  const fs = PSEUDO_FS.find((r) => real === r || real.startsWith(r + '/'));
  if (fs) throw new LoomError({ code: 'E_IO', message: `cannot write ${path}: ${fs} is a kernel file system, not a place for output files`, file: path, hint: OUT_HINT });
}

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is a file, not a folder',
  ENOENT: 'a folder on the path does not exist',
  EISDIR: 'it is a folder, not a file',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links on the path',
  EIO: 'an input/output error on the device',
};

/** A failed file-system call on an output as a LoomError: E_IO naming the path. Other errors pass through. */
export function outputError(e: unknown, action: string, path: string): unknown {
  if (e instanceof LoomError) return e;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return e;
  return new LoomError({ code: 'E_IO', message: `cannot ${action} ${path}: ${ERRNO_TEXT[code] ?? (e as Error).message} (${code})`, file: path, hint: OUT_HINT });
}

function isDir(p: string): boolean | null {
  try {
    return statSync(p).isDirectory();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * Creates `dir` and its missing parents. One level at a time, not `mkdirSync(recursive)`: that
 * loops forever on Node 20 where mkdir answers ENOENT for a parent that exists (/proc).
 */
export function ensureDir(dir: string): void {
  refusePseudoFs(dir);
  const abs = resolve(dir);
  let cur = parse(abs).root;
  for (const part of abs.slice(cur.length).split(sep).filter(Boolean)) {
    cur = join(cur, part);
    try {
      let d = isDir(cur);
      if (d === null) {
        try {
          mkdirSync(cur);
          d = true;
        } catch (e) {
          // Made by someone else in the meantime: fine if it is a folder.
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          d = isDir(cur);
        }
      }
      if (!d) throw new LoomError({ code: 'E_IO', message: `cannot create folder ${dir}: ${cur} is a file, not a folder`, file: dir, hint: OUT_HINT });
    } catch (e) {
      throw outputError(e, 'create folder', dir);
    }
  }
}

/**
 * Makes sure `path` can be written as a file: its folder exists and it is not a folder itself.
 * Commands that work long before writing call it first, so a bad --out fails at once.
 */
export function prepareOutputFile(path: string): void {
  refusePseudoFs(path);
  ensureDir(dirname(path));
  let target: boolean | null;
  try {
    target = isDir(path);
  } catch (e) {
    throw outputError(e, 'write', path);
  }
  if (target) throw new LoomError({ code: 'E_IO', message: `cannot write ${path}: it is a folder, not a file`, file: path, hint: 'give a file name, e.g. DIR/out.json' });
}

/** Writes `data` to `path` through a temp file `<path>.tmp-<pid>-<ms>` renamed over it. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  prepareOutputFile(path);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw outputError(e, 'write', path);
  }
}

/** Appends to an output file (creating it), with the same errors as writeFileAtomic. */
export function appendOutput(path: string, data: string | Uint8Array): void {
  try {
    appendFileSync(path, data);
  } catch (e) {
    throw outputError(e, 'write', path);
  }
}

/**
 * Removes temp files that writeFileAtomic left for `names` in `dir` when a process was killed
 * mid-write; returns the names removed. Call it when a writer starts: an output folder has one
 * writer (one run), so every temp of its own files is stale. A pid check would not do: runs
 * resume on other machines from shared folders, where a pid means nothing.
 */
export function removeStaleTemps(dir: string, names: readonly string[]): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw outputError(e, 'read folder', dir);
  }
  const owned = new Set(names);
  const removed: string[] = [];
  for (const f of entries) {
    const m = /^(.*)\.tmp-\d+-\d+$/.exec(f);
    if (!m || !owned.has(m[1]!)) continue;
    try {
      rmSync(join(dir, f), { force: true });
    } catch (e) {
      throw outputError(e, 'remove', join(dir, f));
    }
    removed.push(f);
  }
  return removed;
}
