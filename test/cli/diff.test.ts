/** `loom diff`: settings and per-graph node differences of two pipelines, or of two graphs. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loom } from '../helpers/cli.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const P = (f: string) => join(ROOT, 'graphs', 'pipelines', f);

describe('loom diff', () => {
  it('pipelines: the settings that differ and which graphs are shared', async () => {
    const r = await loom('diff', P('ppo-cartpole.json'), P('amppo-cartpole.json'));
    expect(r.code).toBe(1);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toBe('pipeline ppo-cartpole -> amppo-cartpole');
    expect(lines).toContain('  advantage.transform.hp.kappa: (none) -> 2');
    expect(lines).toContain('  pipeline: "ppo-cartpole" -> "amppo-cartpole"');
    // The absent section is reported through its fields only.
    expect(lines.some((l) => l.startsWith('  advantage.transform:'))).toBe(false);
    expect(lines).toContain('graphs the same: step, reset, act, loss, optimizer, gae, clip');
    expect(lines).toContain('  amppo.update: (none) -> graphs/algorithms/amppo/update.graph.json');
    // Every setting line names a field that really differs in the resolved configs.
    const settings = lines.slice(2, lines.indexOf('graphs the same: step, reset, act, loss, optimizer, gae, clip'));
    expect(settings).toHaveLength(13); // 8 controller hyperparameters, kind, alpha_init, s_init, value_target, the name
  });

  it('programs: hyperparameters that differ, then each stage graph by its call/scan path, node by node', async () => {
    const G = (f: string) => join(ROOT, 'graphs', 'programs', f);
    const r = await loom('diff', G('ppo-cartpole/program.json'), G('ppo-penalty-cartpole/program.json'));
    expect(r.code).toBe(1);
    const lines = r.out.trimEnd().split('\n');
    expect(lines.slice(0, 5)).toEqual(['program ppo-cartpole -> ppo-penalty-cartpole', 'settings:', '  hyper.kl_beta_init: (none) -> 1', '  hyper.kl_target: (none) -> 0.01', '  program: "ppo-cartpole" -> "ppo-penalty-cartpole"']);
    // The rollout, GAE and optimizer stages are shared; the update step and its loss differ.
    const same = lines.find((l) => l.startsWith('graphs the same: '))!.slice('graphs the same: '.length).split(', ');
    expect(same).toEqual(expect.arrayContaining(['iteration > roll', 'iteration > gae', 'iteration > upd > adam', 'iteration > upd > clip']));
    expect(same).not.toContain('iteration > upd > loss');
    const loss = lines.indexOf('  iteration > upd > loss: graphs/algorithms/ppo-cartpole.loss.graph.json -> graphs/algorithms/ppo-penalty-cartpole.loss.graph.json');
    expect(loss).toBeGreaterThan(0);
    expect(lines.slice(loss + 1)).toEqual(expect.arrayContaining(['    - pg_loss = mean(pg_max)', '    + pg_loss = add(surrogate, kl_pen)']));
    const self = await loom('diff', G('ppo-cartpole/program.json'), G('ppo-cartpole/program.json'));
    expect(self.code).toBe(0);
    expect(self.out).not.toContain('graphs that differ');
    const mixed = await loom('diff', G('ppo-cartpole/program.json'), P('ppo-cartpole.json'));
    expect(mixed.code).toBe(2);
    expect(mixed.err).toMatch(/E_USAGE/);
  });

  it('a pipeline against itself is the same (exit 0)', async () => {
    const r = await loom('diff', P('grpo-acrobot.json'), P('grpo-acrobot.json'));
    expect(r.code).toBe(0);
    expect(r.out).toContain('settings: the same');
    expect(r.out).not.toContain('graphs that differ');
  });

  it('graphs: removed, added and changed nodes by id, and signature changes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'loom-diff-'));
    const src = join(ROOT, 'graphs', 'examples', 'affine.graph.json');
    const g = JSON.parse(readFileSync(src, 'utf8')) as { nodes: { id: string; op: string; in: (string | number)[] }[]; outputs: Record<string, string> };
    const last = g.nodes[g.nodes.length - 1]!;
    g.nodes.push({ id: 'twice', op: 'add', in: [last.id, last.id] });
    g.nodes[1] = { ...g.nodes[1]!, op: 'sub' };
    g.outputs = { ...g.outputs, twice: 'twice' };
    const b = join(dir, 'b.graph.json');
    writeFileSync(b, JSON.stringify(g));
    const r = await loom('diff', src, b);
    expect(r.code).toBe(1);
    expect(r.out.trimEnd().split('\n')).toEqual(['+ output twice: twice', `+ twice = add(${last.id}, ${last.id})`, '- z = add(h, b)', '+ z = sub(h, b)']);
    const same = await loom('diff', src, src);
    expect([same.code, same.out]).toEqual([0, 'the same, node for node\n']);
  });

  it('a graph against a pipeline, or a wrong file count, is a usage error', async () => {
    const mixed = await loom('diff', join(ROOT, 'graphs', 'examples', 'affine.graph.json'), P('ppo-cartpole.json'));
    expect(mixed.code).toBe(2);
    expect(mixed.err).toMatch(/^error\[E_USAGE\]: loom diff compares two graphs or two pipelines/);
    const one = await loom('diff', P('ppo-cartpole.json'));
    expect(one.code).toBe(2);
    expect(one.err).toMatch(/needs exactly two files/);
  });
});
