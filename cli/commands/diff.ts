import { relative } from 'node:path';
import { LoomError } from '../../compiler/errors.ts';
import { printable } from '../../compiler/text.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { ALLOW_PATH_OPTION, allowedRoots, type Command } from '../command.ts';

export const diff: Command = {
  name: 'diff',
  summary: 'show how one graph or pipeline differs from another: settings, and graphs node by node',
  usage: 'loom diff A B',
  options: { 'allow-path': ALLOW_PATH_OPTION },
  details:
    'For two graph files: signature lines and nodes (matched by id) removed (-), added (+) or changed.\n' +
    'For two pipeline files (`extends` resolved): the settings that differ, then for every graph the\n' +
    'pipelines run (env, act, loss, optimizer, advantage graphs, with hyperparameters patched in) whether\n' +
    'it is the same and, if not, its node differences.\n' +
    'For two program pipelines: the settings and hyperparameters that differ, then every stage graph (init,\n' +
    'iteration, evaluate and each graph they reach through call and scan nodes, named by that path, such as\n' +
    '"iteration > upd > loss") that differs, node by node.\n\nExample:\n  loom diff graphs/pipelines/ppo-cartpole.json graphs/pipelines/ppo-alphagrad-cartpole.json\n\nExit code 0 when the two are the same, 1 when they differ.',
  async run(args, io) {
    const [a, b, ...extra] = args.positionals;
    if (a === undefined || b === undefined || extra.length)
      throw new LoomError({ code: 'E_USAGE', message: 'loom diff needs exactly two files', hint: 'run `loom diff --help`' });
    const roots = allowedRoots(args);
    const { loadGraph } = await import('../../compiler/frontend/load.ts');
    const { graphDiff, graphDiffText } = await import('../../compiler/inspect.ts');
    const { configDiff, isPipelineFile, loadPipeline, loadPipelineGraphs, pipelineGraphsByRole } = await import('../../runtime/pipeline/config.ts');
    const { stageGraphs } = await import('../../compiler/inspect.ts');
    const { isProgramFile, loadProgram, loadProgramGraphs } = await import('../../runtime/program/config.ts');
    const lines: string[] = [];
    /** The graphs of both sides by role or stage path, as "same" roles and lines for those that differ. */
    const compareGraphs = (ga: Map<string, IRGraph>, gb: Map<string, IRGraph>): number => {
      const same: string[] = [];
      const graphLines: string[] = [];
      for (const role of [...new Set([...ga.keys(), ...gb.keys()])]) {
        const [x, y] = [ga.get(role), gb.get(role)];
        const name = (g: IRGraph | undefined) => (g ? relative(process.cwd(), g.file) : '(none)');
        if (!x || !y) {
          graphLines.push(`  ${role}: ${name(x)} -> ${name(y)}`);
          continue;
        }
        const d = graphDiffText(graphDiff(x, y));
        if (!d.length) same.push(role);
        else graphLines.push(`  ${role}: ${name(x)} -> ${name(y)}`, ...d.map((l) => `    ${l}`));
      }
      if (same.length) lines.push(`graphs the same: ${same.join(', ')}`);
      if (graphLines.length) lines.push('graphs that differ:', ...graphLines);
      return graphLines.length;
    };
    const programs = isProgramFile(a);
    if (programs !== isProgramFile(b)) throw new LoomError({ code: 'E_USAGE', message: 'loom diff compares two program pipelines, not a program and another kind of file', found: `${a}, ${b}` });
    if (programs) {
      const [ca, cb] = [loadProgram(a, { allow: roots }), loadProgram(b, { allow: roots })];
      const settingsOf = (c: typeof ca) => ({ program: c.program, doc: c.doc, hyper: c.hyper, total_steps: c.total_steps, seed: c.seed, logging: c.logging, checkpoint: c.checkpoint, eval: c.eval });
      const settings = configDiff(settingsOf(ca), settingsOf(cb)).filter((l) => !l.startsWith('doc:'));
      lines.push(`program ${ca.program} -> ${cb.program}`, settings.length ? 'settings:' : 'settings: the same');
      lines.push(...settings.map((l) => `  ${l}`));
      const stages = (c: typeof ca) => {
        const g = loadProgramGraphs(c);
        const prefixed = (m: Map<string, IRGraph>, root: string) => [...m].map(([k, v]) => [k === root ? k : `${root} > ${k}`, v] as const);
        return new Map([...prefixed(stageGraphs(g.init, 'init'), 'init'), ...prefixed(stageGraphs(g.iteration, 'iteration'), 'iteration'), ...(g.evaluate ? prefixed(stageGraphs(g.evaluate, 'evaluate'), 'evaluate') : [])]);
      };
      const differ = compareGraphs(stages(ca), stages(cb));
      io.out(lines.map(printable).join('\n') + '\n');
      return settings.length || differ ? 1 : 0;
    }
    const pipelines = isPipelineFile(a);
    if (pipelines !== isPipelineFile(b)) throw new LoomError({ code: 'E_USAGE', message: 'loom diff compares two graphs or two pipelines, not one of each', found: `${a}, ${b}` });
    if (pipelines) {
      const [ca, cb] = [loadPipeline(a, { allow: roots }), loadPipeline(b, { allow: roots })];
      const settings = configDiff(ca, cb);
      lines.push(`pipeline ${ca.pipeline} -> ${cb.pipeline}`, settings.length ? 'settings:' : 'settings: the same');
      lines.push(...settings.map((l) => `  ${l}`));
      const [ga, gb] = [ca, cb].map((c) => pipelineGraphsByRole(loadPipelineGraphs(c)));
      const differ = compareGraphs(ga!, gb!);
      // Pipeline names, settings and paths come from the files.
      io.out(lines.map(printable).join('\n') + '\n');
      return settings.length || differ ? 1 : 0;
    }
    const d = graphDiffText(graphDiff(loadGraph(a, { roots }), loadGraph(b, { roots })));
    io.out(d.length ? d.join('\n') + '\n' : 'the same, node for node\n');
    return d.length ? 1 : 0;
  },
};
