/**
 * A program run read back from its folder, for `loom eval` and `loom export`: its checkpoint's
 * state, and the program configured as the run was (the program file and `--set` overrides that
 * its run.json records, the seed its checkpoint records).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isLoomError, LoomError } from '../../compiler/errors.ts';
import { displayPath } from '../../compiler/frontend/files.ts';
import type { ConstValues, GraphDocument, Prelude } from '../../compiler/standalone.ts';
import { loadGroup, readChecksummed, savedValues } from '../pipeline/checkpoint.ts';
import { parseOverride } from '../pipeline/config.ts';
import { obsNormalizer, standalonePolicy } from '../pipeline/policy.ts';
import { defaultExecutor, makeProgram, type Executor } from '../pipeline/program.ts';
import { readRunRecord, RUN_FILE, type RecordedConfig, type RunRecord } from '../pipeline/run-record.ts';
import { EPISODES_INPUT, loadProgram, loadProgramGraphs, type ProgramConfig, type ProgramGraphs } from './config.ts';
import { CHECKPOINT_FILE, evaluate, readProgramCheckpoint, type ProgramCheckpointBody } from './driver.ts';

export interface SavedProgram {
  /** The checkpoint file. */
  file: string;
  body: ProgramCheckpointBody;
  cfg: ProgramConfig;
  graphs: ProgramGraphs;
}

export interface OpenProgramOptions {
  /** The program file, instead of the one the run records (taken as it is, without the run's overrides). */
  program?: string;
  /** A checkpoint file to read instead of the run folder's checkpoint.json. */
  checkpoint?: string;
  /** Folders its graphs may be read from besides the defaults (`--allow-path`). */
  allow?: readonly string[];
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** The run folder's seed-<s> subfolders that hold a run: a `loom train --seeds K` folder. */
function seedFolders(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => /^seed-\d+$/.test(f) && existsSync(join(dir, f, RUN_FILE)))
      .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  } catch {
    return [];
  }
}

/**
 * Whether `target` (a run folder or a checkpoint file) is a program run: its run.json records a
 * program, or its checkpoint is a program checkpoint. A folder of several seeds is an error that
 * names them. What cannot be read is not a program run here: opening it as a pipeline's says why.
 */
export function isProgramRun(target: string): boolean {
  const dir = isDir(target) ? target : dirname(target);
  if (isDir(target) && !existsSync(join(target, CHECKPOINT_FILE)) && !existsSync(join(target, RUN_FILE))) {
    const seeds = seedFolders(target);
    if (seeds.length)
      throw new LoomError({
        code: 'E_USAGE',
        message: `${target} holds a run of several seeds (${seeds.join(', ')}), each in its own folder`,
        file: target,
        hint: `give one seed's folder, e.g. ${join(target, seeds[0]!)}`,
      });
  }
  try {
    const record = readRunRecord<RecordedConfig>(dir);
    if (record) return 'program' in record.config;
  } catch {
    // A damaged run record: the checkpoint decides.
  }
  try {
    const body = readChecksummed(isDir(target) ? join(target, CHECKPOINT_FILE) : target, 'policy');
    return isObj(body) && body.format === 'loom-program-checkpoint';
  } catch {
    return false;
  }
}

/**
 * Opens a program run: `target` is its folder or its checkpoint file (`opts.checkpoint` another
 * checkpoint of it). The program is the one its run.json records, with the run's `--set`
 * overrides and total_steps, or `opts.program`; the seed is the checkpoint's. The checkpoint must
 * hold the program's state: errors name the file and what differs.
 */
export function openProgramRun(target: string, opts: OpenProgramOptions = {}): SavedProgram {
  const runDir = isDir(target) ? target : dirname(target);
  const file = opts.checkpoint ?? (isDir(target) ? join(target, CHECKPOINT_FILE) : target);
  const record = readRunRecord<ProgramConfig>(runDir);
  const recorded: RunRecord<ProgramConfig> | null = record && 'program' in record.config ? record : null;
  const programFile = opts.program ?? recorded?.config.file;
  if (programFile === undefined)
    throw new LoomError({
      code: 'E_INPUT',
      message: `${runDir} has no run record of a program run (${RUN_FILE}), so the program that wrote ${file} is not known`,
      file: join(runDir, RUN_FILE),
      hint: 'give the program file with --pipeline FILE',
    });
  if (opts.program === undefined && !existsSync(programFile))
    throw new LoomError({ code: 'E_IO', message: `the program that trained ${runDir} is no longer at ${displayPath(programFile)}`, file: join(runDir, RUN_FILE), pointer: '/config/file', hint: 'give the program file with --pipeline FILE' });
  // Overrides are validated like the command line's; the folders a run was allowed are not taken
  // from its files (that would let a file widen what it may read): give them with --allow-path.
  const overrides = opts.program === undefined ? (recorded?.overrides ?? []).map(parseOverride) : [];
  const cfg = loadProgram(programFile, { allow: opts.allow, overrides });
  // --steps is not an override: the run's total_steps is in its record (some graphs read it).
  const steps = recorded?.config.total_steps;
  if (opts.program === undefined && Number.isSafeInteger(steps) && steps! >= 1) cfg.total_steps = steps!;
  const graphs = loadProgramGraphs(cfg, overrides);
  let body: ProgramCheckpointBody;
  try {
    body = readProgramCheckpoint(file, cfg, graphs, 'policy');
  } catch (e) {
    if (!isLoomError(e)) throw e;
    throw new LoomError({ ...e.info, hint: `give another checkpoint of this run with --checkpoint FILE, or the program that wrote it with --pipeline FILE` });
  }
  cfg.seed = body.host.seed;
  return { file, body, cfg, graphs };
}

export interface ProgramEvalOptions {
  /** Fed to the evaluate graph's input `episodes` (default: the program's eval.episodes); refused when it has none. */
  episodes?: number;
  /** The seed of the evaluation key fold_in(PRNGKey(seed), 1) (default: the run's, as at the end of the run). */
  seed?: number;
  executor?: Executor;
}

export interface ProgramEvaluation {
  /** The evaluate graph file, as shown to the user. */
  graph: string;
  seed: number;
  /** What the graph's input `episodes` was fed; null when it has none. */
  episodes: number | null;
  outputs: Record<string, number | null>;
}

/**
 * Runs the program's evaluate graph on the run's checkpoint state, as the driver does at the end
 * of a run: so a finished run's evaluation equals its eval.json. A program without an evaluate
 * graph is an error at the program file's /evaluate.
 */
export async function evaluateProgramRun(run: SavedProgram, o: ProgramEvalOptions = {}): Promise<ProgramEvaluation> {
  const g = run.graphs.evaluate;
  if (g === null)
    throw new LoomError({
      code: 'E_INPUT',
      message: `program ${run.cfg.program} has no evaluate graph, so there is nothing to evaluate its state with`,
      file: displayPath(run.cfg.file),
      pointer: '/evaluate',
      expected: 'a field "evaluate": the graph file that scores the state',
      found: 'no "evaluate" field',
      hint: 'add "evaluate": "evaluate.graph.json" to the program file: a graph whose inputs are state tensors, key, hyper entries and episodes, and whose outputs are float32 scalars (docs/programs.md; graphs/programs/ppo-cartpole/evaluate.graph.json is one)',
    });
  const takesEpisodes = g.inputs.some((i) => i.name === EPISODES_INPUT);
  if (o.episodes !== undefined && !takesEpisodes)
    throw new LoomError({
      code: 'E_USAGE',
      message: `--episodes: the evaluate graph of program ${run.cfg.program} has no input "${EPISODES_INPUT}", so its episodes are fixed in the graph`,
      file: displayPath(g.file),
      pointer: '/inputs',
      hint: `leave out --episodes, or declare an input "${EPISODES_INPUT}" in the evaluate graph`,
    });
  const cfg: ProgramConfig = { ...run.cfg, seed: o.seed ?? run.cfg.seed, eval: { episodes: o.episodes ?? run.cfg.eval.episodes } };
  const state = loadGroup(run.body.tensors.state);
  try {
    const outputs = await evaluate(makeProgram(g, o.executor ?? defaultExecutor()), g, cfg, state);
    return { graph: displayPath(g.file), seed: cfg.seed, episodes: takesEpisodes ? cfg.eval.episodes : null, outputs };
  } finally {
    Object.values(state).forEach((t) => t.dispose());
  }
}

/**
 * The program's act graph with the run's params baked in from the checkpoint's state tensors that
 * `policy.params` names, and, with `policy.obs_norm`, the observation normaliser with the saved
 * statistics: the graph `loom export` writes, as for a pipeline's run.
 */
export function exportProgramPolicy(run: SavedProgram): GraphDocument {
  const { policy } = run.cfg;
  const act = run.graphs.act;
  if (!policy || !act)
    throw new LoomError({
      code: 'E_INPUT',
      message: `program ${run.cfg.program} has no policy, so there is nothing to export`,
      file: displayPath(run.cfg.file),
      pointer: '/policy',
      expected: 'a field "policy": the act graph and the state tensors that hold its params',
      found: 'no "policy" field',
      hint: 'add "policy": { "act": "<act graph>", "params": { "<act param>": "<state tensor>", ... } } to the program file, binding the params as its rollout\'s call of the act graph does (docs/programs.md)',
    });
  const saved = run.body.tensors.state;
  const values = (name: string) => savedValues(saved[name]!);
  const params: Record<string, ConstValues> = {};
  for (const [p, s] of Object.entries(policy.params)) params[p] = { shape: saved[s]!.shape, values: values(s) };
  const preludes: Prelude[] = [];
  if (policy.obs_norm) {
    const { mean, var: variance, clip } = policy.obs_norm;
    const stat = { mean: Array.from(values(mean)), var: Array.from(values(variance)) };
    const bad = [mean, variance].find((k, i) => !(i === 0 ? stat.mean : stat.var).every((x) => Number.isFinite(x) && (i === 0 || x >= 0)));
    if (bad !== undefined)
      throw new LoomError({ code: 'E_INPUT', message: `checkpoint ${run.file} holds no usable observation statistics in state tensor "${bad}"`, file: run.file, pointer: `/body/tensors/state/${bad}`, expected: 'finite values (a variance of at least 0)', hint: 'export a checkpoint written by a run of this program' });
    preludes.push(obsNormalizer(stat, typeof clip === 'number' ? clip : run.cfg.hyper[clip]!));
  }
  return standalonePolicy(act, params, { pipeline: run.body.pipeline, iteration: run.body.iteration, globalStep: run.body.global_step, source: run.file, preludes });
}
