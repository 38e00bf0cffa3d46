/**
 * Untrusted files at every entry point of the CLI (graph, pipeline, `extends`, `--inputs`,
 * profile, checkpoint): special files, directories and FIFOs are E_IO before reading, nothing of
 * a file outside the allowed folders is printed, `--allow-path` widens them, and a byte-order
 * mark or a duplicate key means the same to every command.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../runtime/pipeline/checkpoint.ts';
import { loadPipeline, withEnv } from '../../runtime/pipeline/config.ts';
import { loom } from '../helpers/cli.ts';
import { loomErr } from '../helpers/loom-error.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const AFFINE = join(ROOT, 'graphs', 'examples', 'affine.graph.json');
const PPO = join(ROOT, 'graphs', 'pipelines', 'ppo-cartpole.json');

const tmp = () => mkdtempSync(join(tmpdir(), 'loom-cli-files-'));
const write = (file: string, json: unknown) => writeFileSync(file, typeof json === 'string' ? json : JSON.stringify(json));
const LEAF = { graph: 'leaf', inputs: { x: { shape: [2] } }, nodes: [{ id: 'y', op: 'tanh', in: ['x'] }], outputs: { y: 'y' } };
const caller = (graph: string) => ({ graph: 'm', inputs: { x: { shape: [2] } }, nodes: [{ id: 'c', op: 'call', graph, in: { x: 'x' } }], outputs: { y: 'c.y' } });

/** A folder with a FIFO, a directory and a symlink to /proc/self/environ, each named *.json. */
function specials(): { files: Record<string, string> } {
  const dir = tmp();
  execFileSync('mkfifo', [join(dir, 'fifo.json')]);
  mkdirSync(join(dir, 'dir.json'));
  return { files: { fifo: join(dir, 'fifo.json'), directory: join(dir, 'dir.json'), '/dev/zero': '/dev/zero', '/proc/self/environ': '/proc/self/environ' } };
}
const WHY: Record<string, RegExp> = { fifo: /FIFO/, directory: /directory/, '/dev/zero': /special file \(under \/dev\)/, '/proc/self/environ': /special file \(under \/proc\)/ };

function expectUserError(r: { code: number; err: string }, code: string, why?: RegExp): void {
  expect(r.code, r.err).toBe(1);
  // train and compare say what they load ("loading pipeline…") before it can fail.
  expect(r.err).toMatch(new RegExp(`^error\\[${code}\\]`, 'm'));
  if (why) expect(r.err).toMatch(why);
  expect(r.err).not.toMatch(/internal error|^\s+at /m);
}

describe('special files are E_IO before reading, at every entry point', () => {
  const { files } = specials();
  for (const [kind, f] of Object.entries(files)) {
    it(`${kind} as the graph (check, compile, run), the pipeline (train), --inputs, the profile`, async () => {
      expectUserError(await loom('check', f), 'E_IO', WHY[kind]);
      expectUserError(await loom('compile', f), 'E_IO', WHY[kind]);
      expectUserError(await loom('run', f), 'E_IO', WHY[kind]);
      expectUserError(await loom('train', f, '--out', join(tmp(), 'run')), 'E_IO', WHY[kind]);
      expectUserError(await loom('run', AFFINE, '--inputs', f), 'E_IO', WHY[kind]);
      expectUserError(await loom('simulate', AFFINE, '--profile', f), 'E_IO', WHY[kind]);
    });

    it(`${kind} as the base of extends`, async () => {
      const p = join(tmp(), 'p.json');
      write(p, { extends: f, pipeline: 'p' });
      // Outside the allowed folders first; allowed, still not a file.
      expectUserError(await loom('check', p), 'E_IO', /outside the folders loom may read/);
      expectUserError(await loom('check', p, '--allow-path', dirname(f)), 'E_IO', WHY[kind]);
    });

    it(`${kind} as the checkpoint`, () => {
      expect(loomErr(() => readCheckpoint(f)).info).toMatchObject({ code: 'E_IO', message: expect.stringMatching(WHY[kind]!) });
    });
  }
});

describe('what files may reference', () => {
  it('a call of /etc/passwd fails without printing any line of it', async () => {
    const dir = tmp();
    for (const ref of ['/etc/passwd', '../../../../../../../etc/passwd']) {
      write(join(dir, 'm.graph.json'), caller(ref));
      const r = await loom('check', join(dir, 'm.graph.json'));
      expectUserError(r, 'E_IO', /outside the folders loom may read/);
      expect(r.err).toMatch(/#\/nodes\/0\/graph \(node "c"\)/);
      expect(r.err).toMatch(/--allow-path DIR/);
      for (const l of readFileSync('/etc/passwd', 'utf8').split('\n').filter((x) => x.length > 3)) expect(r.err).not.toContain(l);
    }
  });

  it('a pipeline graph path outside the folders is E_IO at its pointer', async () => {
    const dir = tmp();
    const p = join(dir, 'p.json');
    write(p, { extends: PPO, pipeline: 'p', loss: '/etc/passwd' });
    const r = await loom('check', p);
    expectUserError(r, 'E_IO', /graph path "\/etc\/passwd" is outside/);
    expect(r.err).toMatch(/p\.json#\/loss/);
  });

  it('--allow-path DIR lets a file outside load; a missing DIR is a usage error', async () => {
    const [dir, outside] = [tmp(), tmp()];
    write(join(outside, 'leaf.graph.json'), LEAF);
    write(join(dir, 'm.graph.json'), caller(join(outside, 'leaf.graph.json')));
    expectUserError(await loom('check', join(dir, 'm.graph.json')), 'E_IO', /outside/);
    const r = await loom('check', join(dir, 'm.graph.json'), '--allow-path', outside);
    expect(r.code, r.err).toBe(0);
    const bad = await loom('check', join(dir, 'm.graph.json'), '--allow-path', join(outside, 'nope'));
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^error\[E_USAGE\]: --allow-path \S+nope is not a folder/);
  });

  it('--env is a name under graphs/envs, not a path out of it', () => {
    const dir = tmp();
    write(join(dir, 'x.step.graph.json'), LEAF);
    write(join(dir, 'x.reset.graph.json'), LEAF);
    const name = relative(join(ROOT, 'graphs', 'envs'), join(dir, 'x'));
    expect(loomErr(() => withEnv(loadPipeline(PPO), name)).info).toMatchObject({ code: 'E_USAGE', message: `unknown env "${name}"` });
  });

  it('a file that is not JSON is never echoed', async () => {
    const f = join(tmp(), 'x.graph.json');
    write(f, 'SECRET_KEY=hunter2-very-secret\n');
    for (const args of [['check', f], ['train', f], ['diff', f, f], ['run', AFFINE, '--inputs', f], ['simulate', AFFINE, '--profile', f]]) {
      const r = await loom(...args);
      expectUserError(r, 'E_JSON', /line 1, column 1/);
      expect(r.err).not.toMatch(/SECRET|hunter2/);
    }
  });
});

describe('one JSON reading for every command', () => {
  it('a pipeline with a byte-order mark is a pipeline to check and diff, as to train', async () => {
    const p = join(tmp(), 'bom.json');
    write(p, '\ufeff' + JSON.stringify({ extends: PPO, pipeline: 'bom' }));
    const c = await loom('check', p);
    expect(c.code, c.err).toBe(0);
    expect(c.out).toMatch(/ok \(pipeline bom, ppo,/);
    const d = await loom('diff', PPO, p);
    expect(d.err).toBe('');
    expect(d.out).toMatch(/^pipeline ppo-cartpole -> bom\n/);
    expect(loadPipeline(p).pipeline).toBe('bom');
  });

  it('a duplicate key in a pipeline is E_JSON at its pointer', async () => {
    const p = join(tmp(), 'dup.json');
    write(p, `{"extends": ${JSON.stringify(PPO)}, "pipeline": "a",\n "update": {"epochs": 2, "epochs": 3}}`);
    const r = await loom('check', p);
    expectUserError(r, 'E_JSON', /dup\.json#\/update\/epochs: duplicate key "epochs" \(at line 2, column 26\)/);
    expect(loomErr(() => loadPipeline(p)).info).toMatchObject({ code: 'E_JSON', pointer: '/update/epochs' });
  });

  it('a top-level "__proto__" next to extends is E_JSON, not swallowed', async () => {
    const p = join(tmp(), 'proto.json');
    write(p, `{"extends": ${JSON.stringify(PPO)}, "__proto__": {"pipeline": "x", "total_steps": 1}}`);
    expect(loomErr(() => loadPipeline(p)).info).toMatchObject({ code: 'E_JSON', pointer: '/__proto__' });
    expectUserError(await loom('check', p), 'E_JSON', /proto\.json#\/__proto__: the key "__proto__" is not allowed/);
  });
});
