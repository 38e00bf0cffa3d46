/**
 * Program pipeline files (`"program": ...`): an init graph that makes the state tensors, an
 * iteration graph (state -> next state, metrics) and an optional evaluate graph, with
 * hyperparameters fed as inputs. Read like pipeline files (allowed roots, bounded reads,
 * `extends`, `--set`), then the graphs are loaded and checked against the contract the driver
 * relies on; every mismatch names the file, JSON pointer and node, with expected and found.
 */
import { dirname, resolve } from 'node:path';
import { isStatic, substShape, symbolsOf } from '../../compiler/dims.ts';
import { LoomError, pointerToken } from '../../compiler/errors.ts';
import { assertAllowed, assertDocumentKind, displayPath, parseJsonText, readUntrusted, tryReadUntrusted } from '../../compiler/frontend/files.ts';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { assertValid, schemaValidator, suggest } from '../../compiler/frontend/schema.ts';
import { showType, type DType, type IRGraph, type IRInput } from '../../compiler/ir.ts';
import { applyOverrides, blameOverride, documentObject, pipelineRoots, resolveExtends, type DocumentKind, type Override } from '../pipeline/config.ts';
import { outputType } from '../pipeline/roles.ts';

export interface ProgramConfig {
  file: string;
  program: string;
  doc?: string;
  /** Absolute graph paths; evaluate is null when the program has none. */
  init: string;
  iteration: string;
  evaluate: string | null;
  hyper: Record<string, number>;
  total_steps: number;
  seed: number;
  /** `tensorboard`: write TensorBoard event files beside metrics.jsonl; absent: true (so run records made before it existed still match on resume). */
  logging: { every: number; tensorboard?: boolean };
  checkpoint: { every: number };
  eval: { episodes: number };
  /** What `loom export` exports: the act graph and the state tensors it reads (absent: the program has no policy to export). */
  policy?: ProgramPolicy;
  /** The folders its graphs (and the graphs they call) may be read from; see pipelineRoots. */
  roots?: readonly string[];
}

/**
 * The program's policy as a standalone graph sees it: the act graph (absolute path), its params
 * bound to state tensors as a `call` binds them, and, for a program that normalises observations,
 * the state tensors of the statistics and the clip (a number, or the name of a hyper entry).
 */
export interface ProgramPolicy {
  act: string;
  params: Record<string, string>;
  obs_norm?: { mean: string; var: string; clip: number | string };
}

/** A state tensor's type, with every dim fixed by the init graph. */
export interface StateType {
  dtype: DType;
  shape: number[];
}

export interface ProgramGraphs {
  init: IRGraph;
  iteration: IRGraph;
  evaluate: IRGraph | null;
  /** The state tensors, in the order the init graph outputs them. */
  state: Record<string, StateType>;
  /** The iteration graph's metric outputs, in its order (env_steps among them). */
  metrics: string[];
  /** The policy's act graph, checked against the state tensors `policy` binds; null without a policy. */
  act: IRGraph | null;
}

/** The metric the driver sums against total_steps. */
export const ENV_STEPS = 'env_steps';
/** Inputs the driver feeds besides state and hyper: the graphs' key, total_steps, and eval.episodes. */
export const KEY_INPUT = 'key';
export const TOTAL_STEPS_INPUT = 'total_steps';
export const EPISODES_INPUT = 'episodes';
/** Columns of a metrics row that the driver writes; a metric may not take their names. */
export const ROW_COLUMNS = ['iteration', 'global_step', 'steps_per_sec'] as const;

/** The most seeds one run takes (`loom train --seeds K`): each is a copy of the state and its own output folder. */
export const MAX_SEEDS = 256;

/** Refuses a seed list that is empty, too long, or has duplicates or values outside [0, 2^31). */
export function checkSeeds(seeds: readonly number[]): void {
  const bad = (message: string, found: string, hint?: string): never => {
    throw new LoomError({ code: 'E_USAGE', message, found, ...(hint ? { hint } : {}) });
  };
  if (seeds.length < 1) bad('a run needs at least one seed', '0 seeds');
  if (seeds.length > MAX_SEEDS) bad(`at most ${MAX_SEEDS} seeds run together`, `${seeds.length} seeds`, `split the seeds over several runs (--seed S --seeds K)`);
  for (const s of seeds) if (!(Number.isInteger(s) && s >= 0 && s < 2 ** 31)) bad('a seed is an integer from 0 to 2^31 - 1', String(s));
  const dup = seeds.find((s, i) => seeds.indexOf(s) !== i);
  if (dup !== undefined) bad(`seed ${dup} is given twice`, seeds.join(','));
}

export const PROGRAM_KIND: DocumentKind = {
  what: 'program pipeline',
  markers: ['program'],
  schema: 'program.schema.json',
  pathFields: [['init'], ['iteration'], ['evaluate'], ['policy', 'act']],
  examples: 'hyper.lr, seed, total_steps, checkpoint.every',
};

export interface ProgramOptions {
  /** Folders given with --allow-path. */
  allow?: readonly string[];
  /** `--set PATH=VALUE` overrides, applied after `extends`. */
  overrides?: readonly Override[];
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/**
 * True for a file whose top-level object has the key `program`: `loom train` runs it with the
 * program driver. A file that cannot be read or parsed is not one (reading it as a pipeline says why).
 */
export function isProgramFile(file: string): boolean {
  const j = documentObject(file);
  return j !== null && Object.hasOwn(j, 'program');
}

export function loadProgram(file: string, opts: ProgramOptions = {}): ProgramConfig {
  return parseProgram(parseJsonText(readUntrusted(file, { what: PROGRAM_KIND.what }), file), file, opts);
}

/** Validates and fills defaults; graph paths become absolute (relative to the file that names them). */
export function parseProgram(json: unknown, file: string, opts: ProgramOptions = {}): ProgramConfig {
  const roots = pipelineRoots(file, opts.allow);
  assertDocumentKind(json, file, PROGRAM_KIND.what, PROGRAM_KIND.markers);
  const applied = applyOverrides(resolveExtends(json, file, roots, PROGRAM_KIND), opts.overrides ?? [], PROGRAM_KIND);
  try {
    return configFrom(applied.json, file, roots);
  } catch (e) {
    throw blameOverride(e, applied.blame);
  }
}

function configFrom(json: unknown, file: string, roots: readonly string[]): ProgramConfig {
  assertValid(schemaValidator(PROGRAM_KIND.schema), json, file, '', PROGRAM_KIND.what);
  const j = json as Record<string, unknown>;
  const base = dirname(resolve(file));
  const sub = (k: string) => (isPlainObject(j[k]) ? j[k] : {}) as Record<string, unknown>;
  const cfg: ProgramConfig = {
    file: resolve(file),
    program: j.program as string,
    ...(typeof j.doc === 'string' ? { doc: j.doc } : {}),
    init: resolve(base, j.init as string),
    iteration: resolve(base, j.iteration as string),
    evaluate: typeof j.evaluate === 'string' ? resolve(base, j.evaluate) : null,
    hyper: { ...((j.hyper as Record<string, number> | undefined) ?? {}) },
    total_steps: j.total_steps as number,
    seed: (j.seed as number | undefined) ?? 1,
    logging: { every: (sub('logging').every as number | undefined) ?? 1, ...(typeof sub('logging').tensorboard === 'boolean' ? { tensorboard: sub('logging').tensorboard as boolean } : {}) },
    checkpoint: { every: (sub('checkpoint').every as number | undefined) ?? 10 },
    eval: { episodes: (sub('eval').episodes as number | undefined) ?? 10 },
    ...(isPlainObject(j.policy) ? { policy: { ...(j.policy as unknown as ProgramPolicy), act: resolve(base, j.policy.act as string) } } : {}),
    roots,
  };
  for (const [k, leaf] of PROGRAM_KIND.pathFields) {
    if (leaf !== undefined) continue;
    const target = cfg[k as 'init' | 'iteration' | 'evaluate'];
    if (target !== null) assertAllowed(target, roots, { what: 'graph path', written: j[k!] as string, file: cfg.file, pointer: `/${k}` });
  }
  if (cfg.policy) assertAllowed(cfg.policy.act, roots, { what: 'graph path', written: sub('policy').act as string, file: cfg.file, pointer: '/policy/act' });
  return cfg;
}

// ---------------------------------------------------------------------------- the contract

/** Where in a graph file a problem is: an input's or an output's pointer, and the node an output names. */
function inputAt(g: IRGraph, i: IRInput) {
  return { file: displayPath(g.file), pointer: i.source?.pointer ?? `/inputs/${pointerToken(i.name)}` };
}
export function outputAt(g: IRGraph, name: string): { file: string; pointer: string; node?: string } {
  const ref = g.outputs[name]!;
  const id = ref.split('.')[0]!;
  const node = g.nodes.some((n) => n.id === ref) ? ref : g.nodes.some((n) => n.id === id) ? id : undefined;
  return { file: displayPath(g.file), pointer: g.outputSources?.[name]?.pointer ?? `/outputs/${pointerToken(name)}`, ...(node !== undefined ? { node } : {}) };
}

const SCALAR_F32 = 'float32[]';
const showState = (t: StateType) => showType({ dtype: t.dtype, shape: t.shape });

/**
 * Loads the program's graphs and checks them against the driver's contract:
 * - init: inputs `key` (int32[2]) and hyper entries; every output a state tensor of fixed shape;
 * - iteration: every state tensor as an input (symbolic dims are bound by the state's sizes) and
 *   as an output of the same type; other inputs hyper entries or total_steps; other outputs
 *   float32 scalar metrics, `env_steps` among them; no params of its own (params are state);
 * - evaluate: inputs state tensors, `key`, hyper entries, `episodes`; outputs float32 scalars;
 * - every hyper entry is read by some graph (a misspelt --set would otherwise change nothing).
 */
export function loadProgramGraphs(cfg: ProgramConfig, overrides: readonly Override[] = []): ProgramGraphs {
  try {
    return checkedGraphs(cfg);
  } catch (e) {
    // An error at a pointer of the program file that a --set wrote names the --set.
    if (!(e instanceof LoomError) || e.info.file !== cfg.file) throw e;
    throw blameOverride(e, overrides.map((o) => ({ pointer: '/' + o.path.map(pointerToken).join('/'), created: [], override: o })));
  }
}

function checkedGraphs(cfg: ProgramConfig): ProgramGraphs {
  const roots = cfg.roots ?? pipelineRoots(cfg.file);
  const load = (path: string, pointer: string): IRGraph => {
    if (tryReadUntrusted(path, { what: 'graph file' }) === undefined)
      throw new LoomError({ code: 'E_IO', message: `graph file ${displayPath(path)} does not exist`, file: cfg.file, pointer, hint: 'graph paths are relative to the file that names them' });
    return loadGraph(path, { roots });
  };
  const init = load(cfg.init, '/init');
  const iteration = load(cfg.iteration, '/iteration');
  const evaluate = cfg.evaluate === null ? null : load(cfg.evaluate, '/evaluate');

  const state: Record<string, StateType> = {};
  for (const name of Object.keys(init.outputs)) {
    const t = outputType(init, name);
    if (!t.shape.every(isStatic))
      throw new LoomError({
        code: 'E_SHAPE',
        message: `state tensor "${name}" has no fixed shape: the driver allocates and checkpoints state of fixed sizes`,
        ...outputAt(init, name),
        expected: 'a shape of numbers',
        found: showType(t),
        hint: 'give the init graph fixed sizes (a hyper entry cannot size a tensor; write the size in the graph)',
      });
    state[name] = { dtype: t.dtype, shape: t.shape as number[] };
  }
  if (!Object.keys(state).length)
    throw new LoomError({ code: 'E_SCHEMA', message: 'the init graph has no outputs, so the program has no state', file: displayPath(init.file), pointer: '/outputs', expected: 'at least one output (a state tensor)' });

  // Inputs other than state: key (init, evaluate), hyper entries, total_steps (all), episodes (evaluate).
  const used = new Set<string>();
  const checkExtraInput = (g: IRGraph, i: IRInput, role: string, extra: readonly string[]) => {
    if (i.name === KEY_INPUT && extra.includes(KEY_INPUT)) {
      if (showType(i.type) !== 'int32[2]') throw new LoomError({ code: 'E_DTYPE', message: `the ${role} graph's input "key" is the driver's random key`, ...inputAt(g, i), expected: 'int32[2]', found: showType(i.type) });
      return;
    }
    const fromHyper = Object.hasOwn(cfg.hyper, i.name);
    if (fromHyper || i.name === TOTAL_STEPS_INPUT || (i.name === EPISODES_INPUT && extra.includes(EPISODES_INPUT))) {
      if (fromHyper) used.add(i.name);
      const ok = i.type.shape.length === 0 && (i.type.dtype === 'float32' || i.type.dtype === 'int32');
      if (!ok) throw new LoomError({ code: 'E_DTYPE', message: `the ${role} graph's input "${i.name}" is fed a scalar (${fromHyper ? `hyper.${i.name}` : i.name})`, ...inputAt(g, i), expected: 'float32[] or int32[]', found: showType(i.type) });
      const value = fromHyper ? cfg.hyper[i.name]! : i.name === TOTAL_STEPS_INPUT ? cfg.total_steps : cfg.eval.episodes;
      if (i.type.dtype === 'int32' && !(Number.isInteger(value) && Math.abs(value) < 2 ** 31))
        throw new LoomError({
          code: 'E_DTYPE',
          message: `hyper.${i.name} is ${value}, but the ${role} graph takes it as an int32`,
          file: cfg.file,
          pointer: `/hyper/${pointerToken(i.name)}`,
          expected: 'an integer (|x| < 2^31)',
          found: String(value),
          hint: `declare the input float32 in ${displayPath(g.file)}, or give an integer`,
        });
      return;
    }
    const candidates = [...Object.keys(cfg.hyper), ...extra, TOTAL_STEPS_INPUT];
    const near = suggest(i.name, candidates);
    throw new LoomError({
      code: 'E_INPUT',
      message: `the ${role} graph's input "${i.name}" is neither a state tensor nor a hyper entry`,
      ...inputAt(g, i),
      expected: `one of: ${[...(role === 'init' ? [] : Object.keys(state)), ...candidates].join(', ') || '(none)'}`,
      found: i.name,
      hint: near ? `did you mean "${near}"?` : `add "${i.name}" to hyper in ${displayPath(cfg.file)} (or --set hyper.${i.name}=VALUE)`,
    });
  };

  for (const i of init.inputs) checkExtraInput(init, i, 'init', [KEY_INPUT]);

  // The iteration graph's state inputs: each dim either equals the state's or is a symbol bound by it (consistently).
  if (iteration.params.length)
    throw new LoomError({
      code: 'E_INPUT',
      message: `the iteration graph declares params (${iteration.params.map((p) => p.name).join(', ')}), but a program's params are state tensors made by the init graph`,
      file: displayPath(iteration.file),
      pointer: iteration.params[0]!.source?.pointer ?? '/params',
      expected: 'no params: bind called graphs\' params to state inputs with the call\'s "params"',
      found: iteration.params.map((p) => p.name).join(', '),
    });
  const dims = new Map<string, number>();
  const bindState = (g: IRGraph, i: IRInput, role: string): void => {
    const s = state[i.name]!;
    const bad = () =>
      new LoomError({ code: 'E_SHAPE', message: `the ${role} graph's input "${i.name}" does not take the state tensor the init graph makes`, ...inputAt(g, i), expected: showState(s), found: showType(i.type), hint: `the init graph ${displayPath(init.file)} outputs "${i.name}" as ${showState(s)}` });
    if (i.type.dtype !== s.dtype || i.type.shape.length !== s.shape.length) throw bad();
    i.type.shape.forEach((d, k) => {
      if (isStatic(d)) {
        if (d !== s.shape[k]) throw bad();
      } else if (symbolsOf(d).length === 1 && symbolsOf(d)[0] === d) {
        const prior = dims.get(d);
        if (prior !== undefined && prior !== s.shape[k])
          throw new LoomError({ ...bad().info, message: `the ${role} graph's input "${i.name}" binds dim ${d} to ${s.shape[k]}, but another state tensor bound it to ${prior}` });
        dims.set(d, s.shape[k]!);
      }
    });
  };
  for (const i of iteration.inputs) {
    if (Object.hasOwn(state, i.name)) bindState(iteration, i, 'iteration');
    else checkExtraInput(iteration, i, 'iteration', []);
  }
  for (const name of Object.keys(state)) {
    if (!iteration.inputs.some((i) => i.name === name))
      throw new LoomError({ code: 'E_INPUT', message: `the iteration graph has no input for state tensor "${name}"`, file: displayPath(iteration.file), pointer: '/inputs', expected: `an input "${name}": ${showState(state[name]!)}`, found: 'no such input', hint: `every output of the init graph is state that the iteration takes and gives back` });
    if (!Object.hasOwn(iteration.outputs, name))
      throw new LoomError({ code: 'E_SCHEMA', message: `the iteration graph does not output state tensor "${name}"`, file: displayPath(iteration.file), pointer: '/outputs', expected: `an output "${name}": ${showState(state[name]!)} (the next state)`, found: 'no such output', hint: 'output the input itself if the iteration leaves it unchanged' });
  }
  // After the state inputs, so that their inputs with unresolvable dims are reported as such.
  for (const i of iteration.inputs) if (Object.hasOwn(state, i.name)) {
    const out = outputType(iteration, i.name);
    const shape = substShape(out.shape, dims);
    const s = state[i.name]!;
    if (out.dtype !== s.dtype || shape.length !== s.shape.length || shape.some((d, k) => d !== s.shape[k]))
      throw new LoomError({ code: 'E_SHAPE', message: `the iteration graph's next value of state tensor "${i.name}" does not have the state's type`, ...outputAt(iteration, i.name), expected: showState(s), found: showType({ dtype: out.dtype, shape }) });
  }
  const metrics = Object.keys(iteration.outputs).filter((k) => !Object.hasOwn(state, k));
  for (const m of metrics) {
    const t = outputType(iteration, m);
    if ((ROW_COLUMNS as readonly string[]).includes(m))
      throw new LoomError({ code: 'E_SCHEMA', message: `metric "${m}" takes the name of a column the driver writes`, ...outputAt(iteration, m), expected: `a name other than ${ROW_COLUMNS.join(', ')}`, found: m });
    if (showType(t) !== SCALAR_F32)
      throw new LoomError({ code: 'E_SHAPE', message: `metric "${m}" is not a float32 scalar (outputs of the iteration graph that are not state tensors are metrics)`, ...outputAt(iteration, m), expected: SCALAR_F32, found: showType(t), hint: Object.keys(state).length ? `if "${m}" is meant as state, the init graph must output it too` : undefined });
  }
  if (!metrics.includes(ENV_STEPS))
    throw new LoomError({
      code: 'E_SCHEMA',
      message: `the iteration graph has no metric "${ENV_STEPS}"`,
      file: displayPath(iteration.file),
      pointer: '/outputs',
      expected: `an output "${ENV_STEPS}": float32[], the env steps of this iteration (the driver sums them against total_steps)`,
      found: metrics.length ? `metrics ${metrics.join(', ')}` : 'no metrics',
      ...(suggest(ENV_STEPS, metrics) ? { hint: `did you mean "${suggest(ENV_STEPS, metrics)}"? rename it to "${ENV_STEPS}"` } : {}),
    });

  if (evaluate) {
    for (const i of evaluate.inputs) {
      if (Object.hasOwn(state, i.name) && i.name !== KEY_INPUT) bindState(evaluate, i, 'evaluate');
      else checkExtraInput(evaluate, i, 'evaluate', [KEY_INPUT, EPISODES_INPUT]);
    }
    if (evaluate.params.length)
      throw new LoomError({ code: 'E_INPUT', message: `the evaluate graph declares params (${evaluate.params.map((p) => p.name).join(', ')}); it reads the trained params as state inputs`, file: displayPath(evaluate.file), pointer: evaluate.params[0]!.source?.pointer ?? '/params', expected: 'no params' });
    for (const o of Object.keys(evaluate.outputs)) {
      const t = outputType(evaluate, o);
      if (showType(t) !== SCALAR_F32) throw new LoomError({ code: 'E_SHAPE', message: `evaluation output "${o}" is not a float32 scalar`, ...outputAt(evaluate, o), expected: SCALAR_F32, found: showType(t) });
    }
  }

  const act = cfg.policy ? checkPolicy(cfg, cfg.policy, state, load, used) : null;

  for (const k of Object.keys(cfg.hyper)) {
    if (Object.hasOwn(state, k))
      throw new LoomError({ code: 'E_SCHEMA', message: `hyper.${k} has the name of a state tensor`, file: cfg.file, pointer: `/hyper/${pointerToken(k)}`, expected: 'hyper names that no state tensor has', found: k, hint: 'rename the hyper entry (and the graph inputs that read it)' });
    if (!used.has(k)) {
      const inputs = [...new Set([init, iteration, ...(evaluate ? [evaluate] : [])].flatMap((g) => g.inputs.map((i) => i.name)))].filter((n) => !Object.hasOwn(state, n));
      const near = suggest(k, inputs);
      throw new LoomError({
        code: 'E_SCHEMA',
        message: `hyper.${k} is read by none of the program's graphs`,
        file: cfg.file,
        pointer: `/hyper/${pointerToken(k)}`,
        expected: `the name of an input of the init, iteration or evaluate graph${inputs.length ? ` (${inputs.join(', ')})` : ''}`,
        found: k,
        hint: near ? `did you mean "${near}"?` : 'remove it, or declare an input of that name in the graph that should read it',
      });
    }
  }
  return { init, iteration, evaluate, state, metrics, act };
}

/**
 * The policy's contract: every param of the act graph is bound to a state tensor of its type, and
 * nothing else is bound; the act graph takes obs [B, D] and key; the observation statistics are
 * float32 [D] state tensors and the clip a number or a hyper entry (which counts as read).
 */
function checkPolicy(cfg: ProgramConfig, policy: ProgramPolicy, state: Record<string, StateType>, load: (path: string, pointer: string) => IRGraph, used: Set<string>): IRGraph {
  const act = load(policy.act, '/policy/act');
  const at = (...path: string[]) => ({ file: cfg.file, pointer: '/policy/' + path.map(pointerToken).join('/') });
  const stateNamed = (name: string, where: ReturnType<typeof at>, what: string, want: StateType | null): void => {
    const s = Object.hasOwn(state, name) ? state[name]! : undefined;
    if (!s) {
      const near = suggest(name, Object.keys(state));
      throw new LoomError({ code: 'E_INPUT', message: `policy: ${what} names "${name}", which is not a state tensor`, ...where, expected: `one of the state tensors: ${Object.keys(state).join(', ')}`, found: name, ...(near ? { hint: `did you mean "${near}"?` } : {}) });
    }
    if (want && showState(s) !== showState(want))
      throw new LoomError({ code: 'E_SHAPE', message: `policy: ${what} is bound to state tensor "${name}" of another type`, ...where, expected: showState(want), found: showState(s) });
  };
  for (const p of act.params) {
    if (!Object.hasOwn(policy.params, p.name))
      throw new LoomError({
        code: 'E_INPUT',
        message: `policy.params does not bind the act graph's param "${p.name}" to a state tensor`,
        ...at('params'),
        expected: `an entry "${p.name}": the state tensor that holds it (${showType(p.type)})`,
        found: `entries for ${Object.keys(policy.params).join(', ') || 'no params'}`,
        hint: `bind every param of ${displayPath(act.file)} as the program's graphs bind it in their call of it`,
      });
    stateNamed(policy.params[p.name]!, at('params', p.name), `the act graph's param "${p.name}"`, { dtype: p.type.dtype, shape: p.type.shape as number[] });
  }
  for (const k of Object.keys(policy.params))
    if (!act.params.some((p) => p.name === k)) {
      const near = suggest(k, act.params.map((p) => p.name));
      throw new LoomError({ code: 'E_INPUT', message: `policy.params binds "${k}", which is not a param of the act graph`, ...at('params', k), expected: `params of ${displayPath(act.file)}: ${act.params.map((p) => p.name).join(', ') || '(none)'}`, found: k, ...(near ? { hint: `did you mean "${near}"?` } : {}) });
    }
  const obs = act.inputs.find((i) => i.name === 'obs');
  const extra = act.inputs.filter((i) => i.name !== 'obs' && i.name !== KEY_INPUT);
  if (!obs || obs.type.shape.length !== 2 || extra.length)
    throw new LoomError({ code: 'E_INPUT', message: 'policy.act must be an act graph: its inputs are the observations and a key', ...at('act'), expected: 'inputs obs: float32[B, D] and key: int32[2]', found: act.inputs.map((i) => `${i.name}: ${showType(i.type)}`).join(', ') });
  const norm = policy.obs_norm;
  if (norm) {
    const D = obs.type.shape[1];
    if (typeof D !== 'number')
      throw new LoomError({ code: 'E_SHAPE', message: 'policy.obs_norm needs an act graph whose obs has a fixed size D', file: displayPath(act.file), pointer: obs.source?.pointer ?? '/inputs/obs', expected: 'obs: float32[B, D] with D a number', found: showType(obs.type) });
    for (const k of ['mean', 'var'] as const) stateNamed(norm[k], at('obs_norm', k), `obs_norm.${k}`, { dtype: 'float32', shape: [D] });
    if (typeof norm.clip === 'string') {
      if (!Object.hasOwn(cfg.hyper, norm.clip))
        throw new LoomError({ code: 'E_INPUT', message: `policy.obs_norm.clip names "${norm.clip}", which is not a hyper entry`, ...at('obs_norm', 'clip'), expected: `a number, or one of: ${Object.keys(cfg.hyper).join(', ') || '(no hyper entries)'}`, found: norm.clip });
      used.add(norm.clip);
    }
  }
  return act;
}
