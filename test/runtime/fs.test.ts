/**
 * Output files: every path stays under its output folder, folders are created without hanging
 * (a recursive mkdir under /proc loops forever on Node 20), and every failure is an E_IO that
 * names the path.
 */
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureDir, outputPath, removeStaleTemps, writeFileAtomic } from '../../runtime/fs.ts';
import { loomErr, loomErrAsync } from '../helpers/loom-error.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-fs-'));
const isRoot = process.getuid?.() === 0;

describe('outputPath', () => {
  it('joins parts under the root', () => {
    expect(outputPath('runs', 'ppo-s1', 'checkpoint.json')).toBe(join('runs', 'ppo-s1', 'checkpoint.json'));
    expect(outputPath('/a/b', 'c..d')).toBe('/a/b/c..d');
  });

  it.each([['../evil'], ['a/../../evil'], ['/etc/x'], ['..'], ['.'], [''], ['a\0b']])('rejects the part %j', (part) => {
    const e = loomErr(() => outputPath('/runs', part, 's1'));
    expect(e.code).toBe('E_IO');
    expect(e.message).toMatch(/outside the output folder|not a valid file name/);
    expect(e.info.file).toBe('/runs');
  });
});

describe('ensureDir', () => {
  it('creates nested folders one level at a time, and accepts existing ones', () => {
    const d = join(tmp(), 'a', 'b', 'c');
    ensureDir(d);
    ensureDir(d);
    expect(readdirSync(join(d, '..'))).toEqual(['c']);
  });

  it.each([['/proc/loom-x/y'], ['/proc/self/loom-x'], ['/sys/loom-x'], ['/dev/loom-x/y']])('refuses %s promptly (no hang) with E_IO', (dir) => {
    const e = loomErr(() => ensureDir(dir));
    expect(e.code).toBe('E_IO');
    expect(e.message).toMatch(/kernel file system/);
    expect(e.info.file).toBe(dir);
    expect(e.info.hint).toMatch(/--out/);
  });

  it('follows links before deciding: a link to /proc is refused', async () => {
    const { symlinkSync } = await import('node:fs');
    const d = tmp();
    symlinkSync('/proc', join(d, 'p'));
    expect(loomErr(() => ensureDir(join(d, 'p', 'x', 'y'))).message).toMatch(/kernel file system/);
  });

  it('a file in the way is ENOTDIR as E_IO naming that file', () => {
    const d = tmp();
    writeFileSync(join(d, 'f'), 'x');
    const e = loomErr(() => ensureDir(join(d, 'f', 'sub', 'dir')));
    expect(e.code).toBe('E_IO');
    expect(e.message).toContain(join(d, 'f'));
    expect(e.message).toMatch(/is a file, not a folder/);
    expect(e.info.file).toBe(join(d, 'f', 'sub', 'dir'));
  });

  it.skipIf(isRoot)('a read-only parent is EACCES as E_IO (skipped as root: chmod does not stop root writing)', () => {
    const d = tmp();
    mkdirSync(join(d, 'ro'));
    chmodSync(join(d, 'ro'), 0o500);
    try {
      const e = loomErr(() => ensureDir(join(d, 'ro', 'x')));
      expect(e.code).toBe('E_IO');
      expect(e.message).toMatch(/permission denied/);
    } finally {
      chmodSync(join(d, 'ro'), 0o700);
    }
  });
});

describe('writeFileAtomic', () => {
  it('writes through a missing folder chain', () => {
    const f = join(tmp(), 'x', 'y', 'out.json');
    writeFileAtomic(f, '{}\n');
    expect(readFileSync(f, 'utf8')).toBe('{}\n');
  });

  it('a folder as the target is E_IO, and leaves no temp file behind', () => {
    const d = tmp();
    mkdirSync(join(d, 'out'));
    const e = loomErr(() => writeFileAtomic(join(d, 'out'), 'x'));
    expect(e.code).toBe('E_IO');
    expect(e.message).toMatch(/is a folder/);
    expect(e.info.file).toBe(join(d, 'out'));
    expect(readdirSync(d)).toEqual(['out']);
  });

  it('under /proc is E_IO, promptly', () => {
    expect(loomErr(() => writeFileAtomic('/proc/loom-x/out.json', 'x')).code).toBe('E_IO');
  });
});

describe('removeStaleTemps', () => {
  it("removes the temps of the named files only, and reports what it removed", () => {
    const d = tmp();
    for (const f of ['checkpoint.json', 'checkpoint.json.tmp-123-456', 'metrics.csv.tmp-1-2', 'notes.txt.tmp-1-2', 'checkpoint.json.tmp-x', 'other'])
      writeFileSync(join(d, f), '');
    expect(removeStaleTemps(d, ['checkpoint.json', 'metrics.csv']).sort()).toEqual(['checkpoint.json.tmp-123-456', 'metrics.csv.tmp-1-2']);
    expect(readdirSync(d).sort()).toEqual(['checkpoint.json', 'checkpoint.json.tmp-x', 'notes.txt.tmp-1-2', 'other']);
  });

  it('a folder that does not exist yet has nothing to remove', () => {
    expect(removeStaleTemps(join(tmp(), 'none'), ['checkpoint.json'])).toEqual([]);
  });
});

describe('writers go through outputPath', () => {
  it('loom compare with a pipeline name that escapes (a config built in code, past the schema) is E_IO before any run', async () => {
    const { compare } = await import('../../runtime/compare.ts');
    const { tinyPipeline } = await import('../helpers/tiny-pipeline.ts');
    const root = tmp();
    const out = join(root, 'out');
    const e = await loomErrAsync(() => compare([{ ...tinyPipeline(), pipeline: '../evil' }], { outDir: out, seeds: [1] }));
    expect(e.code).toBe('E_IO');
    expect(e.message).toMatch(/outside the output folder/);
    expect(readdirSync(root)).toEqual(['out']);
    expect(readdirSync(out)).toEqual([]);
  });
});
