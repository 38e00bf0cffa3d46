/**
 * Role contracts: the signature each graph a pipeline names must have for the driver to run it,
 * written once as data and checked when a pipeline's graphs are loaded (so `loom check`, `train`
 * and `compare` all reject a graph that does not fit its role, before anything runs).
 *
 * A type pattern is `dtype[dims]`:
 * - dtype: float32 | int32 | bool, or a lowercase variable (`action`) that every role must agree on;
 * - a dim: a number; a batch symbol (N, M, P), which a graph may leave symbolic and otherwise must
 *   give the sizes the driver runs it with; or a pipeline symbol (O), which every graph that fixes
 *   it must fix to the same number;
 * - a trailing `...name`: any further dims, the same in every role (the env's state and action
 *   shapes beyond the batch).
 */
import { dimEq, isStatic, type Dim } from '../../compiler/dims.ts';
import { LoomError, type ErrorCode } from '../../compiler/errors.ts';
import { refType } from '../../compiler/frontend/infer.ts';
import { displayPath } from '../../compiler/frontend/load.ts';
import { DTYPES, showType, type DType, type IRGraph, type TensorType } from '../../compiler/ir.ts';
import type { GroupValue, PipelineConfig, PipelineGraphs } from './config.ts';
import { hostEnvDefinition, hostEnvIo } from '../host-env/host-env.ts';

export interface RoleContract {
  /** The pipeline field that names the graph. */
  pointer: string;
  graph: 'step' | 'reset' | 'act' | 'loss' | 'optimizer' | 'groupAdvantage';
  /** Input name -> type pattern; "a|b" is one input named either way. */
  inputs: Record<string, string>;
  /** Inputs the driver gives only to a graph that declares them (the loss's KL penalty). */
  optionalInputs?: Record<string, string>;
  /** Inputs beyond `inputs` are the graph's own business (the optimizer's state and scalars). */
  openInputs?: boolean;
  outputs: Record<string, string>;
  optionalOutputs?: Record<string, string>;
  /** The graph holds the params of this role's graph and outputs grad__<param> for each. */
  gradsOf?: string;
  /** What to say when the graph lacks an input or takes one too many (default: is it the right graph?). */
  hint?: string;
}

/** The roles, in the order they are checked: the env first, so it sets the obs width and the action type. */
export const ROLES: Record<string, RoleContract> = {
  'env.step': {
    pointer: '/env/step',
    graph: 'step',
    inputs: { state: 'state[N, ...state]', t: 'int32[N]', action: 'action[N, ...action]', key: 'int32[2]' },
    outputs: { state: 'state[N, ...state]', t: 'int32[N]', obs: 'float32[N, O]', reward: 'float32[N]', terminated: 'bool[N]', truncated: 'bool[N]' },
    optionalOutputs: { final_obs: 'float32[N, O]' },
  },
  'env.reset': {
    pointer: '/env/reset',
    graph: 'reset',
    inputs: { key: 'int32[2]', like: 'int32[N]' },
    outputs: { state: 'state[N, ...state]', t: 'int32[N]', obs: 'float32[N, O]' },
  },
  'policy.act': {
    pointer: '/policy/act',
    graph: 'act',
    inputs: { obs: 'float32[N, O]', key: 'int32[2]' },
    outputs: { action: 'action[N, ...action]', logp: 'float32[N]', value: 'float32[N]' },
  },
  loss: {
    pointer: '/loss',
    graph: 'loss',
    inputs: {
      obs: 'float32[M, O]',
      actions: 'action[M, ...action]',
      logp_old: 'float32[M]',
      advantages: 'float32[M]',
      returns: 'float32[M]',
      values_old: 'float32[M]',
      clip_coef: 'float32[]',
      ent_coef: 'float32[]',
      vf_coef: 'float32[]',
      norm_adv: 'float32[]',
      clip_vloss: 'float32[]',
    },
    // A KL penalty to a reference policy: log pi_ref of each sampled action, and its weight update.kl_coef.
    optionalInputs: { logp_ref: 'float32[M]', kl_coef: 'float32[]' },
    outputs: { loss: 'float32[]', pg_loss: 'float32[]', v_loss: 'float32[]', entropy: 'float32[]', approx_kl: 'float32[]', clipfrac: 'float32[]' },
    gradsOf: 'policy.act',
  },
  optimizer: {
    pointer: '/optimizer/name',
    graph: 'optimizer',
    inputs: { 'params|param': 'float32[P]', 'grads|grad': 'float32[P]' },
    openInputs: true,
    outputs: { 'params|param': 'float32[P]' },
  },
};

/** The group advantage graph's contract, by group.value: what the group rollout gives it and reads back. */
export const GROUP_ROLES: Record<GroupValue, RoleContract> = {
  none: {
    pointer: '/group/advantage',
    graph: 'groupAdvantage',
    inputs: { rewards: 'float32[N, G]' },
    outputs: { adv: 'float32[N, G]' },
    hint: 'group.value "none" gives the graph only the branch rewards; a graph that also takes R, V_s, V_next and done needs "value": "bootstrap"',
  },
  bootstrap: {
    pointer: '/group/advantage',
    graph: 'groupAdvantage',
    inputs: { R: 'float32[N, G]', V_s: 'float32[N]', V_next: 'float32[N, G]', done: 'float32[N, G]' },
    outputs: { adv: 'float32[N, G]', y: 'float32[N]', select: 'int32[N]' },
    hint: 'group.value "bootstrap" gives the graph R, V_s, V_next and done; a graph that takes only rewards needs "value": "none"',
  },
};

/** What each symbol stands for, for messages. */
const SYMBOLS: Record<string, string> = {
  N: 'the envs stepped at once',
  M: 'the minibatch rows',
  P: 'the flattened param count',
  G: 'the branches per group (group.size)',
  O: 'the obs width',
  state: "the env state's dims",
  action: "the action's dims",
};

interface Pattern {
  dtype: string;
  dims: (number | string)[];
  rest: string | null;
}

function parsePattern(p: string): Pattern {
  const m = /^(\w+)\[(.*)\]$/.exec(p);
  if (!m) throw new Error(`internal: bad role type pattern ${p}`);
  const parts = m[2]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const last = parts[parts.length - 1];
  const rest = last?.startsWith('...') ? last.slice(3) : null;
  const dims = (rest === null ? parts : parts.slice(0, -1)).map((d) => (/^\d+$/.test(d) ? Number(d) : d));
  return { dtype: m[1]!, dims, rest };
}

const isDType = (s: string): s is DType => (DTYPES as readonly string[]).includes(s);

/** The batch sizes the driver runs each batch symbol with, for this pipeline. */
function batchSizes(cfg: PipelineConfig, graphs: PipelineGraphs): Record<string, number[]> {
  const n = cfg.env.num_envs;
  const g = cfg.group?.size ?? 1;
  const batch = n * cfg.rollout.steps * g;
  const params = graphs.act.params.reduce((s, p) => s + p.type.shape.reduce<number>((a, d) => a * (isStatic(d) ? d : 1), 1), 0);
  return { N: g > 1 ? [n, n * g] : [n], M: [batch / cfg.update.minibatches], P: [params], G: [g] };
}

/** The type of each output of a loaded (inferred) graph. */
export function outputType(g: IRGraph, name: string): TensorType {
  const types = new Map<string, TensorType>();
  for (const i of g.inputs) types.set(i.name, i.type);
  for (const p of g.params) types.set(p.name, p.type);
  for (const n of g.nodes) if (n.type) types.set(n.id, n.type);
  return refType(types, new Map(g.nodes.map((n) => [n.id, n])), g.outputs[name]!);
}

/** A pipeline-wide binding (dtype variable, pipeline symbol or rest) and the role that set it. */
interface Binding<T> {
  value: T;
  by: string;
}

/** Checks every role's graph against its contract, unifying dims across roles; throws the first mismatch. */
export function checkRoles(cfg: PipelineConfig, graphs: PipelineGraphs): void {
  const sizes = batchSizes(cfg, graphs);
  const dtypes = new Map<string, Binding<DType>>();
  const dims = new Map<string, Binding<number>>();
  const rests = new Map<string, Binding<Dim[]>>();
  if (cfg.env.host !== undefined) {
    // A host env has no step/reset graphs: its spaces bind what the env roles would.
    const io = hostEnvIo(hostEnvDefinition(cfg.env.host, cfg.file));
    const by = `host env ${cfg.env.host}`;
    dtypes.set('action', { value: io.action.dtype, by });
    dims.set('O', { value: io.obs, by });
    rests.set('action', { value: io.action.dims, by });
  }
  const roles: [string, RoleContract][] = [...Object.entries(ROLES), ...(cfg.group ? [['group.advantage', GROUP_ROLES[cfg.group.value]] as [string, RoleContract]] : [])];
  for (const [role, c] of roles) {
    const g = graphs[c.graph];
    if (!g) continue;
    const file = displayPath(g.file);
    const fail = (code: ErrorCode, message: string, extra: { expected?: string; found?: string; hint?: string } = {}): never => {
      throw new LoomError({ code, message: `role ${role} ${message}`, file: cfg.file, pointer: c.pointer, ...extra });
    };
    // The graph's dim for each batch symbol: one graph uses one dim per symbol.
    const local = new Map<string, Dim>();
    const render = (p: Pattern): string => {
      const dt = isDType(p.dtype) ? p.dtype : (dtypes.get(p.dtype)?.value ?? '*');
      const ds = p.dims.map((d) => (typeof d === 'string' && dims.has(d) ? dims.get(d)!.value : d));
      const rest = p.rest === null ? [] : (rests.get(p.rest)?.value ?? ['...']);
      return `${dt}[${[...ds, ...rest].join(', ')}]`;
    };
    const match = (what: string, pattern: string, t: TensorType): void => {
      const p = parsePattern(pattern);
      const expected = render(p);
      const mismatch = (code: ErrorCode, why?: string): never =>
        fail(code, `expects ${what}: ${expected}; graph ${file} has ${showType(t)}`, { expected, found: showType(t), ...(why !== undefined ? { hint: why } : {}) });
      const bound = (sym: string, b: Binding<unknown>) => `${sym} (${SYMBOLS[sym] ?? sym}) is ${Array.isArray(b.value) ? `[${b.value.join(', ')}]` : String(b.value)}, set by ${b.by}`;
      if (isDType(p.dtype)) {
        if (t.dtype !== p.dtype) mismatch('E_DTYPE');
      } else {
        const b = dtypes.get(p.dtype);
        if (!b) dtypes.set(p.dtype, { value: t.dtype, by: `${role}'s ${what}` });
        else if (b.value !== t.dtype) mismatch('E_DTYPE', `the ${p.dtype} dtype is ${b.value}, set by ${b.by}`);
      }
      if (p.rest === null ? t.shape.length !== p.dims.length : t.shape.length < p.dims.length) mismatch('E_RANK');
      p.dims.forEach((d, k) => {
        const got = t.shape[k]!;
        if (typeof d === 'number') {
          if (!dimEq(d, got)) mismatch('E_SHAPE');
        } else if (d in sizes) {
          const prev = local.get(d);
          if (prev !== undefined && !dimEq(prev, got)) mismatch('E_SHAPE', `${d} (${SYMBOLS[d]}) is ${prev} elsewhere in this graph`);
          local.set(d, got);
          const want = sizes[d]!;
          if (isStatic(got) && want.some((n) => n !== got)) mismatch('E_SHAPE', `the driver runs it with ${want.join(' and ')} rows on axis ${k} (${SYMBOLS[d]}); give that axis a symbolic dim`);
        } else if (isStatic(got)) {
          const b = dims.get(d);
          if (!b) dims.set(d, { value: got, by: `${role}'s ${what}` });
          else if (b.value !== got) mismatch('E_SHAPE', bound(d, b));
        }
      });
      if (p.rest !== null) {
        const tail = t.shape.slice(p.dims.length);
        const b = rests.get(p.rest);
        if (!b) rests.set(p.rest, { value: tail, by: `${role}'s ${what}` });
        else if (b.value.length !== tail.length || b.value.some((d, k) => isStatic(d) && isStatic(tail[k]!) && d !== tail[k])) mismatch(t.shape.length !== p.dims.length + b.value.length ? 'E_RANK' : 'E_SHAPE', bound(p.rest, b));
      }
    };
    const names = (key: string) => key.split('|');
    const listInputs = () => `inputs ${g.inputs.map((i) => `${i.name}: ${showType(i.type)}`).join(', ') || '(none)'}`;
    for (const [key, pattern] of Object.entries(c.inputs)) {
      const input = g.inputs.find((i) => names(key).includes(i.name));
      if (!input) fail('E_SCHEMA', `expects input "${key}": ${render(parsePattern(pattern))}; graph ${file} has no input "${names(key)[0]}"`, { found: listInputs(), hint: c.hint ?? `is ${c.pointer} the right graph for ${role}?` });
      match(`input "${input!.name}"`, pattern, input!.type);
    }
    for (const [name, pattern] of Object.entries(c.optionalInputs ?? {})) {
      const input = g.inputs.find((i) => i.name === name);
      if (input) match(`input "${name}"`, pattern, input.type);
    }
    if (!c.openInputs) {
      const known = new Set([...Object.keys(c.inputs), ...Object.keys(c.optionalInputs ?? {})].flatMap(names));
      const extra = g.inputs.find((i) => !known.has(i.name));
      if (extra) fail('E_SCHEMA', `gives its graph only the inputs ${[...known].join(', ')}; graph ${file} also takes "${extra.name}"`, { found: listInputs(), hint: c.hint ?? `is ${c.pointer} the right graph for ${role}?` });
    }
    const listOutputs = () => `outputs ${Object.keys(g.outputs).join(', ') || '(none)'}`;
    for (const [key, pattern] of Object.entries(c.outputs)) {
      const name = names(key).find((n) => Object.hasOwn(g.outputs, n));
      if (name === undefined) fail('E_SCHEMA', `expects output "${key}": ${render(parsePattern(pattern))}; graph ${file} has no output "${names(key)[0]}"`, { found: listOutputs(), hint: c.hint ?? `is ${c.pointer} the right graph for ${role}?` });
      match(`output "${name}"`, pattern, outputType(g, name!));
    }
    for (const [name, pattern] of Object.entries(c.optionalOutputs ?? {})) if (Object.hasOwn(g.outputs, name)) match(`output "${name}"`, pattern, outputType(g, name));
    if (c.gradsOf !== undefined) {
      const owner = graphs[ROLES[c.gradsOf]!.graph]!;
      for (const p of owner.params) {
        const mine = g.params.find((q) => q.name === p.name);
        if (!mine || showType(mine.type) !== showType(p.type))
          fail('E_SCHEMA', `must share ${c.gradsOf}'s param "${p.name}"; graph ${file} ${mine ? `has it as ${showType(mine.type)}` : 'has no such param'}`, { expected: showType(p.type), found: mine ? showType(mine.type) : 'nothing' });
        const grad = gradOutput(p.name);
        if (!Object.hasOwn(g.outputs, grad)) fail('E_SCHEMA', `expects output "${grad}" (the gradient of param "${p.name}"); graph ${file} has none`, { expected: showType(p.type), found: listOutputs() });
        match(`output "${grad}"`, `${p.type.dtype}[${p.type.shape.join(', ')}]`, outputType(g, grad));
      }
    }
  }
}

/** The loss graph's output name for the gradient of a param. */
export function gradOutput(param: string): string {
  return 'grad__' + param.replace(/\//g, '__');
}
