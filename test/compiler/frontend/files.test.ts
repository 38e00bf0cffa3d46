/**
 * Reading untrusted files: only regular files, bounded, every failure a located LoomError; graph
 * `call`s confined to the allowed folders; JSON parsed the same way everywhere (byte-order mark,
 * duplicate and `__proto__` keys) and never echoed when it fails to parse.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FILE_LIMITS, ioError, parseJsonText, readUntrusted, tryReadUntrusted } from '../../../compiler/frontend/files.ts';
import { loadGraph } from '../../../compiler/frontend/load.ts';
import { loomErr } from '../../helpers/loom-error.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-files-'));
const write = (file: string, json: unknown) => writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
const fifo = (dir: string) => {
  const f = join(dir, 'pipe.json');
  execFileSync('mkfifo', [f]);
  return f;
};
const caller = (graph: string) => ({ graph: 'm', inputs: { x: { shape: [2] } }, nodes: [{ id: 'c', op: 'call', graph, in: { x: 'x' } }], outputs: { y: 'c.y' } });
const LEAF = { graph: 'leaf', inputs: { x: { shape: [2] } }, nodes: [{ id: 'y', op: 'tanh', in: ['x'] }], outputs: { y: 'y' } };
/** The non-empty lines of a real file, none of which may appear in an error. */
const linesOf = (f: string) => readFileSync(f, 'utf8').split('\n').filter((l) => l.trim().length > 3);

describe('readUntrusted', () => {
  it('reads a regular file', () => {
    const f = join(tmp(), 'a.json');
    write(f, '{"a": 1}');
    expect(readUntrusted(f, { what: 'graph file' })).toBe('{"a": 1}');
  });

  it('a missing file: undefined, or E_IO naming it', () => {
    const f = join(tmp(), 'nope.json');
    expect(tryReadUntrusted(f, { what: 'graph file' })).toBeUndefined();
    expect(loomErr(() => readUntrusted(f, { what: 'pipeline' })).info).toMatchObject({ code: 'E_IO', file: f, message: `cannot read pipeline ${f}: no such file` });
  });

  it('a directory is E_IO', () => {
    const d = tmp();
    expect(loomErr(() => readUntrusted(d, { what: 'graph file' })).info).toMatchObject({ code: 'E_IO', message: expect.stringMatching(/is a directory/), expected: 'a regular file' });
  });

  it('a FIFO is E_IO before it is opened (no hang)', () => {
    const f = fifo(tmp());
    expect(loomErr(() => readUntrusted(f, { what: 'inputs file' })).info).toMatchObject({ code: 'E_IO', message: expect.stringMatching(/FIFO/) });
  });

  it('/dev/zero and /proc files are E_IO: endless, or sized 0 while they are not', () => {
    expect(loomErr(() => readUntrusted('/dev/zero', { what: 'graph file' })).info).toMatchObject({ code: 'E_IO', message: expect.stringMatching(/special file \(under \/dev\)/) });
    const e = loomErr(() => readUntrusted('/proc/self/environ', { what: 'graph file' }));
    expect(e.info).toMatchObject({ code: 'E_IO', message: expect.stringMatching(/special file \(under \/proc\)/) });
    // Through a symlink too: the real path is checked.
    const link = join(tmp(), 'env.json');
    symlinkSync('/proc/self/environ', link);
    expect(loomErr(() => readUntrusted(link, { what: 'graph file' })).info.message).toMatch(/under \/proc/);
  });

  it('a file over the cap is E_SIZE naming the file and the cap', () => {
    const f = join(tmp(), 'big.json');
    write(f, 'x'.repeat(100));
    expect(readUntrusted(f, { what: 'graph file', maxBytes: 100 })).toHaveLength(100);
    const e = loomErr(() => readUntrusted(f, { what: 'graph file', maxBytes: 99 }));
    expect(e.info).toMatchObject({ code: 'E_SIZE', file: f, message: expect.stringMatching(/larger than 99 bytes/), found: '100 bytes' });
    expect(FILE_LIMITS.document).toBe(16 * 1024 * 1024);
  });

  it('every errno is E_IO with the path', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(ioError(err('EIO'), '/x/g.json', 'graph file').info).toMatchObject({ code: 'E_IO', file: '/x/g.json', message: 'cannot read graph file /x/g.json: input/output error' });
    expect(ioError(err('EISDIR'), '/x/g.json', 'checkpoint').info.message).toMatch(/is a directory/);
    expect(ioError(err('EACCES'), '/x/g.json', 'pipeline').info.message).toMatch(/permission denied/);
    expect(ioError(err('EWEIRD'), '/x/g.json', 'pipeline').info.message).toMatch(/system error EWEIRD/);
  });

  it('an unreadable file is E_IO', () => {
    if (process.getuid?.() === 0) return; // root reads anything
    const f = join(tmp(), 'locked.json');
    write(f, '{}');
    execFileSync('chmod', ['000', f]);
    expect(loomErr(() => readUntrusted(f, { what: 'graph file' })).info).toMatchObject({ code: 'E_IO', message: expect.stringMatching(/permission denied/) });
  });
});

describe('what a graph may call', () => {
  it('an absolute path outside the allowed folders is E_IO, and nothing of the file is printed', () => {
    const dir = tmp();
    write(join(dir, 'm.graph.json'), caller('/etc/passwd'));
    const e = loomErr(() => loadGraph(join(dir, 'm.graph.json')));
    expect(e.info).toMatchObject({ code: 'E_IO', pointer: '/nodes/0/graph', node: 'c', found: '/etc/passwd', hint: expect.stringMatching(/--allow-path DIR/) });
    expect(e.message).toMatch(/called graph "\/etc\/passwd" is outside the folders loom may read/);
    for (const l of linesOf('/etc/passwd')) expect(e.message).not.toContain(l);
  });

  it('"../" out of the allowed folders is E_IO', () => {
    const dir = tmp();
    write(join(dir, 'm.graph.json'), caller('../../../../../../../../etc/passwd'));
    const e = loomErr(() => loadGraph(join(dir, 'm.graph.json')));
    expect(e.info).toMatchObject({ code: 'E_IO', pointer: '/nodes/0/graph', found: '/etc/passwd' });
    for (const l of linesOf('/etc/passwd')) expect(e.message).not.toContain(l);
  });

  it('a symlink inside the folder that points outside it is E_IO', () => {
    const [dir, outside] = [tmp(), tmp()];
    write(join(outside, 'leaf.graph.json'), LEAF);
    symlinkSync(join(outside, 'leaf.graph.json'), join(dir, 'leaf.graph.json'));
    write(join(dir, 'm.graph.json'), caller('leaf.graph.json'));
    expect(loomErr(() => loadGraph(join(dir, 'm.graph.json'))).info).toMatchObject({ code: 'E_IO', found: join(outside, 'leaf.graph.json') });
  });

  it('the file\'s own folder (and below) is allowed; --allow-path roots let an outside file load', () => {
    const [dir, outside] = [tmp(), tmp()];
    mkdirSync(join(dir, 'sub'));
    write(join(dir, 'sub', 'leaf.graph.json'), LEAF);
    write(join(dir, 'm.graph.json'), caller('sub/leaf.graph.json'));
    expect(loadGraph(join(dir, 'm.graph.json')).nodes.map((n) => n.op)).toEqual(['call']);
    write(join(outside, 'leaf.graph.json'), LEAF);
    write(join(dir, 'o.graph.json'), caller(join(outside, 'leaf.graph.json')));
    expect(loomErr(() => loadGraph(join(dir, 'o.graph.json'))).info.code).toBe('E_IO');
    expect(loadGraph(join(dir, 'o.graph.json'), { roots: [outside] }).nodes.map((n) => n.op)).toEqual(['call']);
  });

  it('a called FIFO or directory is E_IO, not a hang or a crash', () => {
    const dir = tmp();
    fifo(dir);
    mkdirSync(join(dir, 'd.graph.json'));
    write(join(dir, 'm.graph.json'), caller('pipe.json'));
    expect(loomErr(() => loadGraph(join(dir, 'm.graph.json'))).info).toMatchObject({ code: 'E_IO', message: expect.stringMatching(/FIFO/) });
    write(join(dir, 'm.graph.json'), caller('d.graph.json'));
    expect(loomErr(() => loadGraph(join(dir, 'm.graph.json'))).info).toMatchObject({ code: 'E_IO', message: expect.stringMatching(/directory/) });
  });
});

describe('parsing untrusted JSON', () => {
  it('a file that is not JSON: line and column, none of its text', () => {
    const f = join(tmp(), 'secret.graph.json');
    write(f, 'API_TOKEN=hunter2-very-secret\nOTHER=1\n');
    const e = loomErr(() => loadGraph(f));
    expect(e.info).toMatchObject({ code: 'E_JSON', message: expect.stringMatching(/^invalid JSON at line 1, column 1: /) });
    expect(e.message).not.toMatch(/API|hunter2|OTHER/);
  });

  it('a JSON file that is not a graph: named, its values not printed', () => {
    const f = join(tmp(), 'secrets.json');
    write(f, { nodes: 'hunter2-very-secret', outputs: 1, password: 'swordfish' });
    const e = loomErr(() => loadGraph(f));
    expect(e.info).toMatchObject({ code: 'E_SCHEMA', pointer: '/', message: 'this is not a graph file', expected: 'a JSON object with "graph"', found: 'an object without "graph"' });
    expect(e.message).not.toMatch(/hunter2|swordfish|password/);
    write(f, '["hunter2"]');
    expect(loomErr(() => loadGraph(f)).info).toMatchObject({ code: 'E_SCHEMA', found: 'an array' });
  });

  it('a byte-order mark is dropped', () => {
    expect(parseJsonText('\ufeff{"a": 1}', 'f.json')).toEqual({ a: 1 });
  });

  it('a duplicate key is E_JSON at its pointer, at any depth', () => {
    let e = loomErr(() => parseJsonText('{"graph": "m",\n "graph": "n"}', 'f.json'));
    expect(e.info).toMatchObject({ code: 'E_JSON', file: 'f.json', pointer: '/graph', message: 'duplicate key "graph" (at line 2, column 2)' });
    e = loomErr(() => parseJsonText('{"inputs": {"x": {"shape": [1]}, "x": {"shape": [2]}}}', 'f.json'));
    expect(e.info.pointer).toBe('/inputs/x');
    // Spelt differently, the same key.
    e = loomErr(() => parseJsonText('{"nodes": [{"id": "a", "i\\u0064": "b"}]}', 'f.json'));
    expect(e.info.pointer).toBe('/nodes/0/id');
    // The same key in sibling objects is fine.
    expect(parseJsonText('[{"a": 1}, {"a": 2}]', 'f.json')).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('a "__proto__" key is E_JSON at its pointer', () => {
    const e = loomErr(() => parseJsonText('{"graph": "m", "inputs": {"__proto__": {"shape": [1]}}}', 'f.json'));
    expect(e.info).toMatchObject({ code: 'E_JSON', pointer: '/inputs/__proto__', message: expect.stringMatching(/"__proto__" is not allowed/) });
  });
});
