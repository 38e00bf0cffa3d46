/**
 * The PPO training driver: rollout (act graph + env step graph per step, keys split per step),
 * GAE (a graph), epochs x minibatches over a seeded permutation (loss graph -> grad-norm clip
 * graph -> optimizer graph on the flattened params), metrics, checkpoints, evaluation.
 * All randomness comes from one host-side threefry key, so a seed reproduces a run and a
 * checkpoint resumes it bit-identically on the same backend.
 */
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../../compiler/errors.ts';
import { permutation, randomInts, seedKey, splitKey, toInt32, type Key } from '../../compiler/ops/threefry.ts';
import { ensureDir, outputPath, removeStaleTemps } from '../fs.ts';
import { hostConcat, hostSplit, hostTensor, hostValues, StagedInput, syncReadable, type HostArray } from '../host-memory.ts';
import { initParams, type TensorMap } from '../interpreter.ts';
import { loadGroup, matchCheckpoint, readCheckpoint, saveGroup, writeCheckpoint, type CheckpointBody, type CheckpointLayout, type CheckpointSource } from './checkpoint.ts';
import { loadPipelineGraphs, stepsPerVisitedState, type PipelineConfig, type PipelineGraphs } from './config.ts';
import { checkPipelineSize } from './budget.ts';
import { AMPPO_COLUMNS, EVAL_COLUMNS, GROUP_COLUMNS, METRIC_COLUMNS, METRICS_FILES, MetricsLog, type IterationMetrics } from './metrics.ts';
import type { DType, IRGraph } from '../../compiler/ir.ts';
import { substShape } from '../../compiler/dims.ts';
import { refType } from '../../compiler/frontend/infer.ts';
import type { ProgramOptions } from '../exec.ts';
import { defaultExecutor, makeProgram, runReadable, type Executor, type Program } from './program.ts';
import { checkRunFolder, endRecord, removeCheckpoint, RUN_FILE, startRecord, writeRunRecord, type RunControl } from './run-record.ts';
import { gradOutput } from './roles.ts';
import { hostEnvDefinition, loadHostEnv, type HostEnv, type HostEnvDefinition } from '../host-env/host-env.ts';
import { hostEnvPrograms } from '../host-env/programs.ts';

export { gradOutput, permutation };

export interface TrainOptions extends RunControl {
  /** Receives the metrics row of every iteration, logged to metrics.jsonl or not. */
  onMetrics?: (row: IterationMetrics) => void;
}

export interface TrainResult {
  iterations: number;
  globalStep: number;
  stopped: boolean;
  metrics: readonly IterationMetrics[];
  eval: { episodes: number; meanReturn: number | null; returns: number[] } | null;
  /** The best mean evaluation return seen with eval.every (its checkpoint is in best/), or null. */
  bestEval: number | null;
  /** Returns of the last (up to) 20 training episodes, oldest first. */
  lastEpisodes: number[];
  checkpoint: string;
  params: TensorMap;
}

/** Welford-style running mean/var (as gymnasium's RunningMeanStd), host-side float64. */
class RunningStat {
  mean: number[];
  var_: number[];
  count = 1e-4;
  constructor(n: number) {
    this.mean = new Array<number>(n).fill(0);
    this.var_ = new Array<number>(n).fill(1);
  }
  update(rows: ArrayLike<number>, n: number): void {
    const d = this.mean.length;
    for (let j = 0; j < d; j++) {
      let m = 0;
      for (let i = 0; i < n; i++) m += rows[i * d + j]!;
      m /= n;
      let v = 0;
      for (let i = 0; i < n; i++) v += (rows[i * d + j]! - m) ** 2;
      v /= n;
      const delta = m - this.mean[j]!;
      const tot = this.count + n;
      const m2 = this.var_[j]! * this.count + v * n + (delta * delta * this.count * n) / tot;
      this.mean[j] = this.mean[j]! + (delta * n) / tot;
      this.var_[j] = m2 / tot;
    }
    this.count += n;
  }
  toJSON() {
    return { mean: this.mean, var: this.var_, count: this.count };
  }
  static from(j: { mean: number[]; var: number[]; count: number }): RunningStat {
    const r = new RunningStat(j.mean.length);
    r.mean = j.mean;
    r.var_ = j.var;
    r.count = j.count;
    return r;
  }
}

interface HostState {
  key: [number, number];
  epReturn: number[];
  epLength: number[];
  recentReturns: number[];
  obsStat: RunningStat | null;
  retStat: RunningStat | null;
  retAcc: number[];
  /** AM-PPO controller state (float32 values held as numbers; exact round trip). */
  amppo: { alpha_ema: number; s_ema: number } | null;
  /** The best mean return of the evaluations during training so far (eval.every), or null. */
  bestEval: number | null;
}

/** The act graph output that holds the deterministic action (argmax of the logits, Gaussian mean). */
export const ACTION_MODE = 'action_mode';

/** The graph with only the named outputs: compiling it drops the nodes that only fed the others. */
function withOutputs(g: IRGraph, keep: (name: string) => boolean): IRGraph {
  return { ...g, outputs: Object.fromEntries(Object.entries(g.outputs).filter(([k]) => keep(k))) };
}

function keyTensor(k: Key): tf.Tensor {
  return tf.tensor(toInt32(k), [2], 'int32');
}

/** Splits the host key: returns `n` fresh keys and advances the state. */
function take(h: HostState, n: number): Key[] {
  const w = splitKey(h.key, n + 1);
  h.key = [w[0]!, w[1]!];
  return Array.from({ length: n }, (_, i) => [w[2 * i + 2]!, w[2 * i + 3]!] as Key);
}

/** Writes rows `rows` of a row-major array with `row` elements per row into `out`, in order. */
function gatherRows(src: HostArray, rows: Int32Array, row: number, out: HostArray): void {
  if (row === 1) for (let i = 0; i < rows.length; i++) out[i] = src[rows[i]!]!;
  else for (let i = 0; i < rows.length; i++) out.set(src.subarray(rows[i]! * row, (rows[i]! + 1) * row), i * row);
}

function disposeMap(m: TensorMap): void {
  tf.dispose(Object.values(m));
}

function mean(xs: number[]): number | null {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

/**
 * Driver work that may wait for reads. Where the backend's tensors cannot be read synchronously
 * (webgpu), each program runs asynchronously and its outputs are read once (tfjs then keeps their
 * values on the host, so the driver's synchronous reads of them succeed): the work yields the
 * promise of that. Elsewhere it yields nothing, and `runSync` drives it without a single await.
 */
type Work<T> = Generator<Promise<void>, T, void>;

function runSync<T>(w: Work<T>): T {
  const r = w.next();
  if (r.done) return r.value;
  r.value.catch(() => {});
  throw new LoomError({
    code: 'E_BACKEND',
    message: `the ${tf.getBackend()} backend reads tensors only asynchronously, and this call is synchronous`,
    hint: 'use trainAsync, or the Trainer methods initAsync, iterateAsync and evaluateAsync',
  });
}

async function runAsync<T>(w: Work<T>): Promise<T> {
  for (;;) {
    const r = w.next();
    if (r.done) return r.value;
    await r.value;
  }
}

export class Trainer {
  readonly cfg: PipelineConfig;
  readonly graphs: PipelineGraphs;
  private act: Program;
  /** The act graph reduced to action_mode, compiled on the first deterministic evaluation. */
  private actMode: Program | null = null;
  private readonly program: (g: IRGraph) => Program;
  private step: Program;
  private reset: Program;
  /** The host envs the rollout steps (env.host), or null for a graph env. */
  private hostEnv: HostEnv | null;
  /** Evaluation's own host envs, so that it leaves the rollout's episodes as they are. */
  private evalEnv: { step: Program; reset: Program; env: HostEnv | null } | null = null;
  private loss: Program;
  private opt: Program;
  private gae: Program;
  private clip: Program;
  private amppoUpdate: Program | null;
  private amppoModulate: Program | null;
  private groupAdv: Program | null;
  /** AlphaGrad's `segment`: tensor index of each flattened param element (null when unused). */
  private segment: tf.Tensor | null = null;
  /**
   * The rollout's per-step PRNG keys, rewritten in place (null when the act or step graph outputs
   * its key unchanged: that output could share the key's memory, so each step gets new tensors).
   */
  private keys: { act: StagedInput; step: StagedInput } | null;
  readonly paramNames: string[];
  params: TensorMap = {};
  optState: TensorMap = {};
  env: TensorMap = {};
  host!: HostState;
  iteration = 0;
  globalStep = 0;
  readonly iterations: number;
  private optParam: string;
  private optGrad: string;
  /** Whether the backend reads tensors synchronously (all but webgpu): then no work ever waits. */
  private readonly syncReads = syncReadable(tf.getBackend());

  constructor(cfg: PipelineConfig, graphs: PipelineGraphs = loadPipelineGraphs(cfg), executor: Executor = defaultExecutor(), programOptions: ProgramOptions = {}) {
    // Before any program or tensor: the config may have changed since the graphs were loaded (--env, --steps).
    checkPipelineSize(cfg, graphs);
    this.cfg = cfg;
    this.graphs = graphs;
    const program = (g: IRGraph) => makeProgram(g, executor, programOptions);
    this.program = program;
    // The rollout never reads action_mode: leaving it out keeps its nodes out of the compiled program.
    [this.act, this.loss, this.opt, this.gae, this.clip] = [withOutputs(graphs.act, (k) => k !== ACTION_MODE), graphs.loss, graphs.optimizer, graphs.gae, graphs.clip].map(program);
    ({ step: this.step, reset: this.reset, env: this.hostEnv } = this.envPrograms());
    this.amppoUpdate = graphs.amppo ? program(graphs.amppo.update) : null;
    this.amppoModulate = graphs.amppo ? program(graphs.amppo.modulate) : null;
    this.groupAdv = graphs.groupAdvantage ? program(graphs.groupAdvantage) : null;
    if (cfg.group && !graphs.groupAdvantage) throw new LoomError({ code: 'E_INPUT', message: 'a group rollout needs its advantage graph', file: cfg.file, pointer: '/group/advantage' });
    if (cfg.advantage.transform && !graphs.amppo) throw new LoomError({ code: 'E_INPUT', message: 'advantage.transform amppo needs the amppo graphs', file: cfg.file, pointer: '/advantage/transform' });
    const passesKey = [graphs.act, graphs.step].some((g) => g && Object.values(g.outputs).includes('key'));
    this.keys = passesKey ? null : { act: new StagedInput([2], 'int32'), step: new StagedInput([2], 'int32') };
    this.paramNames = graphs.act.params.map((p) => p.name);
    if (cfg.eval.deterministic && cfg.eval.episodes > 0) this.requireActionMode('/eval/deterministic');
    [this.optParam, this.optGrad] = optimizerPorts(graphs.optimizer);
    this.iterations = Math.floor(cfg.total_steps / this.stepsPerIteration());
    if (this.iterations < 1)
      throw new LoomError({ code: 'E_USAGE', message: 'total_steps is smaller than one rollout', file: cfg.file, pointer: '/total_steps', expected: `>= ${this.stepsPerIteration()}`, found: String(cfg.total_steps) });
    if (graphs.optimizer.inputs.some((i) => i.name === 'segment')) {
      const sizes = graphs.act.params.map((p) => (p.type.shape as number[]).reduce((a, b) => a * b, 1));
      this.segment = tf.tensor(Int32Array.from(sizes.flatMap((n, i) => new Array<number>(n).fill(i))), [sizes.reduce((a, b) => a + b, 0)], 'int32');
    }
  }

  /** The env's step and reset programs: the env graphs compiled, or a new set of host envs. */
  private envPrograms(): { step: Program; reset: Program; env: HostEnv | null } {
    const { cfg, graphs } = this;
    if (cfg.env.host === undefined) return { step: this.program(graphs.step!), reset: this.program(graphs.reset!), env: null };
    return hostEnvPrograms(cfg.env.host, hostEnvDefinition(cfg.env.host, cfg.file), cfg.env.num_envs);
  }

  /** Env steps simulated per iteration: every sampled branch counts (group algorithms step each one). */
  stepsPerIteration(): number {
    return this.cfg.env.num_envs * this.cfg.rollout.steps * stepsPerVisitedState(this.cfg);
  }

  /** Fresh state from the seed. */
  init(): void {
    runSync(this.initWork());
  }

  async initAsync(): Promise<void> {
    await runAsync(this.initWork());
  }

  /** Runs a program; where reads are asynchronous, yields until its outputs are on the host. */
  private *call(p: Program, inputs: TensorMap, params: TensorMap): Work<TensorMap> {
    if (this.syncReads) return p(inputs, params);
    let out: TensorMap = {};
    yield runReadable(p, inputs, params).then((o) => void (out = o));
    return out;
  }

  /** Brings tensors the driver computed with tfjs ops to the host, where reads are asynchronous. */
  private *readAll(ts: readonly tf.Tensor[]): Work<void> {
    if (!this.syncReads) yield Promise.all(ts.map((t) => t.data())).then(() => {});
  }

  /**
   * Brings the state tensors (params, optimizer state, env) to the host before a checkpoint reads
   * them: webgpu drops its host copy of a tensor's values once a kernel has used it.
   */
  toHost(): Promise<void> {
    return runAsync(this.readAll([...Object.values(this.params), ...Object.values(this.optState), ...Object.values(this.env)]));
  }

  private *initWork(): Work<void> {
    const c = this.cfg;
    this.params = initParams(this.graphs.act, c.seed);
    this.optState = {};
    for (const [k, t] of Object.entries(checkpointLayout(c, this.graphs).tensors.optimizer!)) this.optState[k] = tf.zeros(t.shape, t.dtype);
    const N = c.env.num_envs;
    const obsDim = this.graphs.act.inputs.find((i) => i.name === 'obs')!.type.shape[1] as number;
    // Per-env statistics are one statistic over the [N * obsDim] row that a step produces (one row per update).
    const statEnvs = c.normalize.per_env ? N : 1;
    this.host = {
      key: seedKey(c.seed),
      epReturn: new Array<number>(N).fill(0),
      epLength: new Array<number>(N).fill(0),
      recentReturns: [],
      obsStat: c.normalize.obs ? new RunningStat(statEnvs * obsDim) : null,
      retStat: c.normalize.reward ? new RunningStat(statEnvs) : null,
      retAcc: new Array<number>(N).fill(0),
      amppo: c.advantage.transform ? { alpha_ema: c.advantage.transform.alpha_init, s_ema: c.advantage.transform.s_init } : null,
      bestEval: null,
    };
    const [k] = take(this.host, 1);
    this.env = yield* this.resetEnvs(k!, N);
    this.iteration = 0;
    this.globalStep = 0;
  }

  private *resetEnvs(k: Key, n: number, reset = this.reset): Work<TensorMap> {
    const key = keyTensor(k);
    const like = tf.zeros([n], 'int32');
    const r = yield* this.call(reset, { key, like }, {});
    tf.dispose([key, like]);
    return { state: r.state!, t: r.t!, obs: r.obs! };
  }

  /** Observation normalisation (when enabled); `update` is off during evaluation. */
  private policyObs(obs: tf.Tensor, update: boolean, stat: RunningStat | null): tf.Tensor {
    if (!stat) return tf.clone(obs);
    return tf.tensor(this.normalized(obs.dataSync() as Float32Array, stat, update), obs.shape, 'float32');
  }

  /** gym's NormalizeObservation: (v - mean) / sqrt(var + 1e-8), clipped; `update` folds v into the stats first. */
  private normalized(v: Float32Array, stat: RunningStat, update: boolean): Float32Array {
    const d = stat.mean.length;
    if (update) stat.update(v, v.length / d);
    const out = new Float32Array(v.length);
    const c = this.cfg.normalize.clip;
    for (let i = 0; i < v.length; i++) out[i] = Math.max(-c, Math.min(c, (v[i]! - stat.mean[i % d]!) / Math.sqrt(stat.var_[i % d]! + 1e-8)));
    return out;
  }

  /**
   * policyObs for the rollout: the act input and its values on the host (for the batch). Without
   * normalisation the env's own obs tensor is used as is (not owned: the caller must not dispose it).
   */
  private rolloutObs(obs: tf.Tensor, stat: RunningStat | null, update: boolean): { tensor: tf.Tensor; values: Float32Array; owned: boolean } {
    // A view where the backend allows: the caller copies it out before the next allocation.
    const v = hostValues(obs) as Float32Array;
    if (!stat) return { tensor: obs, values: v, owned: false };
    const out = this.normalized(v, stat, update);
    return { tensor: tf.tensor(out, obs.shape, 'float32'), values: out, owned: true };
  }

  /** One iteration: rollout, GAE, update. Returns the metrics row. */
  iterate(): IterationMetrics {
    return runSync(this.iterateWork());
  }

  iterateAsync(): Promise<IterationMetrics> {
    return runAsync(this.iterateWork());
  }

  private *iterateWork(): Work<IterationMetrics> {
    const c = this.cfg;
    const T = c.rollout.steps;
    const N = c.env.num_envs;
    const t0 = performance.now();
    const h = this.host;
    this.iteration++;
    const lr = c.optimizer.anneal_lr ? (1 - (this.iteration - 1) / this.iterations) * c.optimizer.lr : c.optimizer.lr;
    if (this.groupAdv) return yield* this.finishIteration(t0, lr, ...(yield* this.groupRollout()));
    const finished: { ret: number; len: number }[] = [];
    // The batch is gathered on the host as it is produced and becomes tensors once, at the end:
    // per-step tensors (and the stack of 128 of them) cost more in dispatch than the copies.
    const B = T * N;
    const obsDim = this.env.obs!.size / N;
    const obsBuf = new Float32Array(B * obsDim);
    const logpBuf = new Float32Array(B);
    const valueBuf = new Float32Array(B);
    const rewardBuf = new Float32Array(B);
    const doneBuf = new Float32Array(B);
    let actBuf: HostArray | undefined;
    let actShape: number[] = [];
    let actDtype: tf.DataType = 'float32';
    // Each observation updates the statistics once, when the env produces it: the one an iteration
    // starts from was folded in by the previous iteration's last step, except a fresh run's reset observation.
    let cur = this.rolloutObs(this.env.obs!, h.obsStat, this.globalStep === 0);
    for (let s = 0; s < T; s++) {
      obsBuf.set(cur.values, s * N * obsDim);
      const [ka, ke] = take(h, 2);
      const keyA = this.keys ? this.keys.act.set(toInt32(ka!)) : keyTensor(ka!);
      const a = yield* this.call(this.act, { obs: cur.tensor, key: keyA }, this.params);
      const keyE = this.keys ? this.keys.step.set(toInt32(ke!)) : keyTensor(ke!);
      const st = yield* this.call(this.step, { state: this.env.state!, t: this.env.t!, action: a.action!, key: keyE }, {});
      // Host views of the outputs (copies where the backend's memory is not host-addressable),
      // each copied into the batch before anything else is allocated.
      const act = hostValues(a.action!);
      if (!actBuf) {
        actBuf = new (act.constructor as new (n: number) => HostArray)(T * act.length);
        actShape = a.action!.shape.slice(1);
        actDtype = a.action!.dtype;
      }
      actBuf.set(act, s * act.length);
      logpBuf.set(hostValues(a.logp!), s * N);
      valueBuf.set(hostValues(a.value!), s * N);
      const r = hostValues(st.reward!);
      const term = hostValues(st.terminated!);
      const trunc = hostValues(st.truncated!);
      const rewards = rewardBuf.subarray(s * N, (s + 1) * N);
      const dones = doneBuf.subarray(s * N, (s + 1) * N);
      for (let i = 0; i < N; i++) {
        const done = term[i]! !== 0 || trunc[i]! !== 0;
        h.epReturn[i]! += r[i]!;
        h.epLength[i]! += 1;
        rewards[i] = r[i]!;
        if (h.retStat) {
          // gym's NormalizeReward: scale by the std of the running discounted return.
          h.retAcc[i] = h.retAcc[i]! * c.advantage.gamma + r[i]!;
        }
        if (done) {
          finished.push({ ret: h.epReturn[i]!, len: h.epLength[i]! });
          h.epReturn[i] = 0;
          h.epLength[i] = 0;
        }
        dones[i] = done ? 1 : 0;
      }
      if (h.retStat) {
        const perEnv = c.normalize.per_env;
        h.retStat.update(h.retAcc, perEnv ? 1 : N);
        for (let i = 0; i < N; i++) {
          const sd = Math.sqrt(h.retStat.var_[perEnv ? i : 0]! + 1e-8);
          rewards[i] = Math.max(-c.normalize.clip, Math.min(c.normalize.clip, rewards[i]! / sd));
          if (dones[i]) h.retAcc[i] = 0;
        }
      }
      if (cur.owned) cur.tensor.dispose();
      if (!this.keys) tf.dispose([keyA, keyE]);
      tf.dispose([a.action!, a.logp!, a.value!, this.env.state!, this.env.t!, this.env.obs!, st.reward!, st.terminated!, st.truncated!, st.final_obs].filter((x): x is tf.Tensor => !!x));
      this.env = { state: st.state!, t: st.t!, obs: st.obs! };
      cur = this.rolloutObs(this.env.obs!, h.obsStat, true);
    }
    this.globalStep += T * N;
    // Bootstrap value of the observation after the last step (the action sampled here is unused).
    const [kb] = take(h, 1);
    const keyB = keyTensor(kb!);
    const boot = yield* this.call(this.act, { obs: cur.tensor, key: keyB }, this.params);
    if (cur.owned) cur.tensor.dispose();
    tf.dispose([keyB, boot.action!, boot.logp!]);

    const values = tf.tensor(valueBuf, [T, N], 'float32');
    const rewards = tf.tensor(rewardBuf, [T, N], 'float32');
    const dones = tf.tensor(doneBuf, [T, N], 'float32');
    const gamma = tf.scalar(c.advantage.gamma);
    const lambda = tf.scalar(c.advantage.lambda);
    const g = yield* this.call(this.gae, { rewards, values, next_value: boot.value!, dones, gamma, lambda }, {});
    tf.dispose([gamma, lambda, boot.value!, rewards, dones, values]);
    const data: TensorMap = {
      obs: tf.tensor(obsBuf, [B, obsDim], 'float32'),
      actions: tf.tensor(actBuf!, [B, ...actShape], actDtype),
      logp_old: tf.tensor(logpBuf, [B], 'float32'),
      advantages: g.advantages!.reshape([B]),
      returns: g.returns!.reshape([B]),
      values_old: tf.tensor(valueBuf, [B], 'float32'),
    };
    tf.dispose([g.advantages!, g.returns!]);
    let ev: number;
    let am: Partial<IterationMetrics> = {};
    if (this.amppoUpdate) {
      // Spec am-ppo §2.5: one controller update per iteration on the whole raw batch; its A_mod is for logging only.
      const st = this.host.amppo!;
      const alpha = tf.scalar(st.alpha_ema);
      const sEma = tf.scalar(st.s_ema);
      const u = yield* this.call(this.amppoUpdate, { A: data.advantages!, alpha_ema: alpha, s_ema: sEma }, {});
      tf.dispose([alpha, sEma]);
      const num = (k: string) => u[k]!.dataSync()[0]!;
      st.alpha_ema = num('alpha_ema');
      st.s_ema = num('s_ema');
      const aMod = u.A_mod!.dataSync();
      const vOld = data.values_old!.dataSync();
      // Against the value target the update regresses on.
      ev = this.cfg.advantage.transform!.value_target === 'modulated' ? explainedVariance(vOld, Float32Array.from(aMod, (a, i) => a + vOld[i]!)) : explainedVariance(vOld, data.returns!.dataSync());
      const absMean = (xs: ArrayLike<number>) => Array.from(xs).reduce((s2, x) => s2 + Math.abs(x), 0) / xs.length;
      am = { alpha_ema: st.alpha_ema, s_ema: st.s_ema, alpha_hat: num('alpha_hat'), s_obs: num('s_obs'), adv_norm: num('norm'), adv_sigma: num('sigma'), adv_raw_abs: absMean(data.advantages!.dataSync()), adv_mod_abs: absMean(aMod) };
      disposeMap(u);
    } else ev = explainedVariance(data.values_old!.dataSync(), data.returns!.dataSync());

    return yield* this.finishIteration(t0, lr, data, finished, ev, am);
  }

  /** Update on the rollout data, then the metrics row (and the numeric check). Disposes `data`. */
  private *finishIteration(t0: number, lr: number, data: TensorMap, finished: { ret: number; len: number }[], ev: number, am: Partial<IterationMetrics> = {}): Work<IterationMetrics> {
    const h = this.host;
    const B = this.stepsPerIteration();
    const stats = yield* this.update(data, lr);
    disposeMap(data);
    const dt = (performance.now() - t0) / 1000;
    for (const f of finished) h.recentReturns.push(f.ret);
    if (h.recentReturns.length > 100) h.recentReturns.splice(0, h.recentReturns.length - 100);
    const row: IterationMetrics = {
      iteration: this.iteration,
      global_step: this.globalStep,
      // One executed step per env and rollout step; the branches are not visited states.
      ...(this.cfg.group ? { visited_states: this.iteration * this.cfg.env.num_envs * this.cfg.rollout.steps } : {}),
      lr,
      episodic_return: mean(finished.map((f) => f.ret)),
      episodic_length: mean(finished.map((f) => f.len)),
      episodes: finished.length,
      ...stats,
      explained_variance: ev,
      steps_per_sec: B / dt,
      ...am,
    };
    if (stats.sat_mb !== undefined) row.sat_mb = stats.sat_mb;
    this.checkFinite(row);
    return row;
  }

  /**
   * GRPO / Hybrid GRPO rollout (spec sectional-moe-and-grpo B.2-B.5): at every step each env's state
   * row is tiled G times, G actions are sampled and every branch is stepped; the group advantage
   * graph scores the branches and one branch per env is executed (uniform or argmax q).
   */
  private *groupRollout(): Work<[TensorMap, { ret: number; len: number }[], number]> {
    const c = this.cfg;
    const T = c.rollout.steps;
    const N = c.env.num_envs;
    const Gs = c.group!.size;
    const bootstrap = c.group!.value === 'bootstrap';
    const h = this.host;
    const tile = tf.tensor(Int32Array.from({ length: N * Gs }, (_, i) => Math.floor(i / Gs)), [N * Gs], 'int32');
    const buf: Record<'obs' | 'actions' | 'logp' | 'adv' | 'returns' | 'values', tf.Tensor[]> = { obs: [], actions: [], logp: [], adv: [], returns: [], values: [] };
    const finished: { ret: number; len: number }[] = [];
    for (let s = 0; s < T; s++) {
      const [ka, ke, kb, ks] = take(h, 4);
      const obs = this.policyObs(this.env.obs!, true, h.obsStat);
      const [obsT, stateT, tT] = [obs, this.env.state!, this.env.t!].map((x) => tf.gather(x, tile));
      obs.dispose();
      const keyA = keyTensor(ka!);
      const keyE = keyTensor(ke!);
      const a = yield* this.call(this.act, { obs: obsT!, key: keyA }, this.params);
      const st = yield* this.call(this.step, { state: stateT!, t: tT!, action: a.action!, key: keyE }, {});
      const branch = yield* this.rollBranches(st, c.group!.horizon);
      // Reward normalisation scales every branch by the running std of the executed trajectory's discounted return.
      const sd = h.retStat ? Math.sqrt(h.retStat.var_[0]! + 1e-8) : 1;
      const clip = c.normalize.clip;
      const R = tf.tensor(h.retStat ? branch.R.map((x) => Math.max(-clip, Math.min(clip, x / sd))) : branch.R, [N, Gs], 'float32');
      const done = tf.tensor(branch.done, [N, Gs], 'float32');
      let adv: TensorMap;
      if (bootstrap) {
        // V of each branch's last state, from the observation before any auto-reset; (1 - done) drops finished ones.
        const keyB = keyTensor(kb!);
        const fin = this.policyObs(branch.lastObs, false, h.obsStat);
        const nx = yield* this.call(this.act, { obs: fin, key: keyB }, this.params);
        const vS = tf.tidy(() => a.value!.reshape([N, Gs]).slice([0, 0], [N, 1]).reshape([N]));
        const vNext = nx.value!.reshape([N, Gs]);
        adv = yield* this.call(this.groupAdv!, { R, V_s: vS, V_next: vNext, done }, {});
        buf.returns.push(tf.tidy(() => tf.gather(adv.y!, tile)));
        buf.values.push(a.value!);
        tf.dispose([keyB, fin, vS, vNext]);
        disposeMap(nx);
      } else {
        adv = yield* this.call(this.groupAdv!, { rewards: R }, {});
        // No value function: the value loss sees zeros (and the config requires vf_coef 0).
        buf.returns.push(tf.zeros([N * Gs]));
        buf.values.push(tf.zeros([N * Gs]));
        a.value!.dispose();
      }
      buf.adv.push(adv.adv!.reshape([N * Gs]));
      const sel =
        c.group!.select === 'argmax'
          ? Array.from(adv.select!.dataSync())
          : Array.from(randomInts(ks!, N, Gs));
      const chosen = tf.tensor(Int32Array.from(sel, (g, i) => i * Gs + g), [N], 'int32');
      const r = st.reward!.dataSync();
      const term = st.terminated!.dataSync();
      const trunc = st.truncated!.dataSync();
      for (let i = 0; i < N; i++) {
        const k = i * Gs + sel[i]!;
        h.epReturn[i]! += r[k]!;
        h.epLength[i]! += 1;
        h.retAcc[i] = h.retAcc[i]! * c.advantage.gamma + r[k]!;
        if (term[k] || trunc[k]) {
          finished.push({ ret: h.epReturn[i]!, len: h.epLength[i]! });
          h.epReturn[i] = 0;
          h.epLength[i] = 0;
        }
      }
      if (h.retStat) {
        h.retStat.update(h.retAcc, N);
        for (let i = 0; i < N; i++) if (term[i * Gs + sel[i]!] || trunc[i * Gs + sel[i]!]) h.retAcc[i] = 0;
      }
      const next = { state: tf.gather(st.state!, chosen), t: tf.gather(st.t!, chosen), obs: tf.gather(st.obs!, chosen) };
      buf.obs.push(obsT!);
      buf.actions.push(a.action!);
      buf.logp.push(a.logp!);
      tf.dispose([keyA, keyE, stateT!, tT!, chosen, R, done, branch.lastObs]);
      disposeMap(st);
      disposeMap(adv);
      disposeMap(this.env);
      this.env = next;
      // The next step's observation statistics and a checkpoint read the gathered env tensors.
      yield* this.readAll(Object.values(next));
    }
    tile.dispose();
    this.globalStep += this.stepsPerIteration();
    const data = tf.tidy(() => ({
      obs: tf.concat(buf.obs),
      actions: tf.concat(buf.actions),
      logp_old: tf.concat(buf.logp),
      advantages: tf.concat(buf.adv),
      returns: tf.concat(buf.returns),
      values_old: tf.concat(buf.values),
    }));
    Object.values(buf).forEach((xs) => tf.dispose(xs));
    yield* this.readAll(Object.values(data));
    const ev = bootstrap ? explainedVariance(data.values_old.dataSync(), data.returns.dataSync()) : NaN;
    return [data, finished, ev];
  }

  /**
   * Rolls every branch of a group step `horizon - 1` further steps under the current policy (spec
   * B.4.2): R is the discounted reward sum up to the horizon or the branch's episode end, done marks
   * branches that ended, and lastObs is each branch's last observation before any auto-reset (for
   * bootstrapping). With horizon 1 this is the first step alone.
   */
  private *rollBranches(first: TensorMap, horizon: number): Work<{ R: Float32Array; done: Float32Array; lastObs: tf.Tensor }> {
    const gamma = this.cfg.advantage.gamma;
    const R = Float32Array.from(first.reward!.dataSync());
    const term = first.terminated!.dataSync();
    const trunc = first.truncated!.dataSync();
    const done = Float32Array.from(R, (_, i) => (term[i] || trunc[i] ? 1 : 0));
    let lastObs = tf.clone(first.final_obs ?? first.obs!);
    // The branches' current state; `first` owns its tensors, continuations own theirs.
    let cur: TensorMap | null = null;
    let disc = gamma;
    for (let k = 1; k < horizon && done.some((d) => d === 0); k++) {
      const [ka, ke] = take(this.host, 2);
      const keyA = keyTensor(ka!);
      const keyE = keyTensor(ke!);
      const from: TensorMap = cur ?? first;
      const obs = this.policyObs(from.obs!, false, this.host.obsStat);
      const a = yield* this.call(this.act, { obs, key: keyA }, this.params);
      const st: TensorMap = yield* this.call(this.step, { state: from.state!, t: from.t!, action: a.action!, key: keyE }, {});
      const r = st.reward!.dataSync();
      const tm = st.terminated!.dataSync();
      const tr = st.truncated!.dataSync();
      for (let i = 0; i < R.length; i++) {
        if (done[i]) continue;
        R[i]! += disc * r[i]!;
        if (tm[i] || tr[i]) done[i] = 1;
      }
      disc *= gamma;
      const fin = st.final_obs ?? st.obs!;
      // Only live branches' last observations matter; ended ones are masked by done.
      const nextLast = tf.tidy(() => tf.where(tf.tensor(done, [done.length], 'bool').reshape([-1, 1]).tile([1, fin.shape[1]!]), lastObs, fin));
      tf.dispose([keyA, keyE, obs, lastObs, st.reward!, st.terminated!, st.truncated!, st.final_obs].filter((x): x is tf.Tensor => !!x));
      disposeMap(a);
      if (cur) disposeMap(cur);
      lastObs = nextLast;
      cur = { state: st.state!, t: st.t!, obs: st.obs! };
    }
    if (cur) disposeMap(cur);
    yield* this.readAll([lastObs]);
    return { R, done, lastObs };
  }

  private *update(data: TensorMap, lr: number): Work<Pick<IterationMetrics, 'loss' | 'pg_loss' | 'v_loss' | 'entropy' | 'approx_kl' | 'clipfrac' | 'grad_norm' | 'grad_clip_frac' | 'sat_mb'>> {
    const c = this.cfg;
    const u = c.update;
    const B = data.obs!.shape[0]!;
    const mb = B / u.minibatches;
    const scalars: TensorMap = {
      clip_coef: tf.scalar(u.clip_coef),
      ent_coef: tf.scalar(u.ent_coef),
      vf_coef: tf.scalar(u.vf_coef),
      norm_adv: tf.scalar(u.norm_adv ? 1 : 0),
      clip_vloss: tf.scalar(u.clip_vloss ? 1 : 0),
    };
    const lossTakes = (name: string) => this.graphs.loss.inputs.some((i) => i.name === name);
    if (lossTakes('kl_coef')) scalars.kl_coef = tf.scalar(u.kl_coef);
    const optScalars = this.optimizerScalars(lr);
    const maxNorm = tf.scalar(u.max_grad_norm);
    const acc = { loss: 0, pg_loss: 0, v_loss: 0, entropy: 0, approx_kl: 0, clipfrac: 0, grad_norm: 0 };
    let count = 0;
    let clippedSteps = 0;
    let sat = 0;
    const tr = c.advantage.transform;
    const alphaFrozen = this.host.amppo ? tf.scalar(this.host.amppo.alpha_ema) : null;
    // Minibatches are cut on the host from one read of the batch, and the params travel flat between
    // optimizer steps: per-minibatch gather/concat/split kernels cost more in dispatch than the copies.
    const cols = Object.entries(data).map(([k, v]) => ({ k, values: v.dataSync() as HostArray, row: v.size / v.shape[0]!, shape: v.shape.slice(1), dtype: v.dtype }));
    // The KL penalty's reference policy is the one that sampled this rollout (pi_ref <- pi_theta after every
    // iteration, spec sectional-moe-and-grpo B.2/B.5): its log-probs are logp_old.
    if (lossTakes('logp_ref')) cols.push({ ...cols.find((col) => col.k === 'logp_old')!, k: 'logp_ref' });
    yield* this.readAll(Object.values(this.params)); // (used by the rollout's kernels since their last read)
    let flatParams = this.flattenParams();
    for (let epoch = 0; epoch < u.epochs; epoch++) {
      const [kp] = take(this.host, 1);
      const perm = permutation(kp!, B);
      let lastKl = 0;
      for (let m = 0; m < u.minibatches; m++) {
        const rows = perm.subarray(m * mb, (m + 1) * mb);
        const batch: TensorMap = {};
        for (const col of cols) batch[col.k] = hostTensor([mb, ...col.shape], col.dtype as DType, (out) => gatherRows(col.values, rows, col.row, out));
        if (this.amppoModulate) {
          // Spec am-ppo §2.5: frozen alpha, minibatch norm; A_mod feeds the policy loss and the value target
          // A_mod + V_old, or with value_target "gae" the policy loss only (the GAE return stays the target).
          const mo = yield* this.call(this.amppoModulate, { A: batch.advantages!, alpha_ema: alphaFrozen! }, {});
          sat += hostValues(mo.s_obs!)[0]!;
          tf.dispose([batch.advantages!, mo.applied!, mo.norm!, mo.s_obs!]);
          batch.advantages = mo.A_mod!;
          if (tr!.value_target === 'modulated') {
            batch.returns!.dispose();
            batch.returns = tf.add(mo.A_mod!, batch.values_old!);
          }
        }
        const out = yield* this.call(this.loss, { ...batch, ...scalars }, this.params);
        disposeMap(batch);
        const flatGrad = this.flatten((p) => out[gradOutput(p)]!);
        const clipped = yield* this.call(this.clip, { grads: flatGrad, max_norm: maxNorm }, {});
        // Without clip_grad the clip graph still gives the logged norm; the step uses the raw gradient.
        const stepGrad = c.optimizer.clip_grad ? clipped.grads! : flatGrad;
        const seg: TensorMap = this.segment ? { segment: this.segment } : {};
        const o = yield* this.call(this.opt, { ...optScalars, ...this.optState, ...seg, [this.optParam]: flatParams, [this.optGrad]: stepGrad }, {});
        tf.dispose([flatParams, clipped.grads!, flatGrad]);
        flatParams = o[this.optParam]!;
        const newParams = this.unflatten(flatParams);
        disposeMap(this.params);
        disposeMap(this.optState);
        this.params = newParams;
        this.optState = {};
        for (const [k, t] of Object.entries(o)) {
          if (k === this.optParam) continue; // kept flat for the next step
          if (this.graphs.optimizer.inputs.some((i) => i.name === k)) this.optState[k] = t;
          else t.dispose();
        }
        for (const k of Object.keys(acc) as (keyof typeof acc)[]) {
          const t = k === 'grad_norm' ? clipped.norm! : out[k]!;
          acc[k] += hostValues(t)[0]!;
        }
        if (hostValues(clipped.norm!)[0]! > u.max_grad_norm) clippedSteps++;
        lastKl = hostValues(out.approx_kl!)[0]!;
        count++;
        clipped.norm!.dispose();
        disposeMap(out);
      }
      if (u.target_kl !== null && lastKl > u.target_kl) break;
    }
    flatParams.dispose();
    disposeMap(scalars);
    disposeMap(optScalars);
    maxNorm.dispose();
    alphaFrozen?.dispose();
    for (const k of Object.keys(acc) as (keyof typeof acc)[]) acc[k] /= count;
    const grad_clip_frac = clippedSteps / count;
    return this.amppoModulate ? { ...acc, grad_clip_frac, sat_mb: sat / count } : { ...acc, grad_clip_frac };
  }

  /** Scalar inputs of the optimizer graph that are not state: lr, eps, betas, and `args`. */
  private optimizerScalars(lr: number): TensorMap {
    const o = this.cfg.optimizer;
    const known: Record<string, number> = { lr, eps: o.eps, beta1: o.beta1, beta2: o.beta2, ...o.args };
    const out: TensorMap = {};
    for (const i of this.graphs.optimizer.inputs) {
      if (i.name === this.optParam || i.name === this.optGrad || i.name === 'segment' || i.name in this.graphs.optimizer.outputs) continue;
      if (!(i.name in known))
        throw new LoomError({ code: 'E_INPUT', message: `optimizer input "${i.name}" has no value`, file: this.cfg.file, pointer: '/optimizer/args', expected: `optimizer.args.${i.name}` });
      out[i.name] = tf.scalar(known[i.name]!, i.type.dtype);
    }
    return out;
  }

  /** The params as one flat float32 vector, in paramNames order. */
  private flattenParams(): tf.Tensor {
    return this.flatten((p) => this.params[p]!);
  }

  /** One flat float32 vector of per-param tensors (copied on the host: one tensor, no kernels). */
  private flatten(of: (param: string) => tf.Tensor): tf.Tensor {
    return hostConcat(this.paramNames.map(of));
  }

  /** Per-param tensors cut from a flat vector (which stays owned by the caller). */
  private unflatten(flat: tf.Tensor): TensorMap {
    const parts = hostSplit(flat, this.paramNames.map((p) => this.params[p]!.shape));
    return Object.fromEntries(this.paramNames.map((p, k) => [p, parts[k]!]));
  }

  lastCheckpoint: string | null = null;

  private checkFinite(row: IterationMetrics): void {
    const bad = (['loss', 'pg_loss', 'v_loss', 'entropy', 'approx_kl'] as const).find((k) => !Number.isFinite(row[k]));
    // On the host: the params are there already on every backend (the optimizer's output is split there).
    const paramsOk = this.paramNames.every((p) => hostValues(this.params[p]!).every((v) => Number.isFinite(v)));
    if (bad === undefined && paramsOk) return;
    throw new LoomError({
      code: 'E_NUMERIC',
      message: `${bad !== undefined ? `${bad} is ${row[bad]}` : 'the params contain NaN or Inf'} at iteration ${row.iteration}`,
      file: this.cfg.file,
      hint: this.lastCheckpoint ? `the last good checkpoint is ${this.lastCheckpoint}; lower optimizer.lr or update.max_grad_norm and resume` : 'no checkpoint was saved before this; lower optimizer.lr',
    });
  }

  checkpointBody(backend: string): CheckpointBody {
    const h = this.host;
    return {
      format: 'loom-checkpoint',
      version: 1,
      pipeline: this.cfg.pipeline,
      backend,
      iteration: this.iteration,
      global_step: this.globalStep,
      tensors: { params: saveGroup(this.params), optimizer: saveGroup(this.optState), env: saveGroup(this.env) },
      host: {
        key: h.key, epReturn: h.epReturn, epLength: h.epLength, recentReturns: h.recentReturns, obsStat: h.obsStat?.toJSON() ?? null, retStat: h.retStat?.toJSON() ?? null, retAcc: h.retAcc, amppo: h.amppo, bestEval: h.bestEval,
        // Where the policy came from, so `loom eval` and `loom export` can rebuild it from the checkpoint alone.
        source: { pipeline: this.cfg.file, env: { name: this.cfg.env.name, step: this.cfg.env.step, reset: this.cfg.env.reset }, seed: this.cfg.seed } satisfies CheckpointSource,
        ...(this.hostEnv?.getState ? { hostEnv: this.hostEnv.getState() } : {}),
      },
    };
  }

  /** Restores a checkpoint that readCheckpoint validated; one that does not fit this pipeline is an error. */
  restore(body: CheckpointBody, file: string): void {
    matchCheckpoint(body, checkpointLayout(this.cfg, this.graphs), file, this.cfg.file);
    this.params = loadGroup(body.tensors.params!);
    this.optState = loadGroup(body.tensors.optimizer!);
    this.env = loadGroup(body.tensors.env!);
    const hj = body.host as Record<string, never>;
    this.host = {
      key: hj.key,
      epReturn: hj.epReturn,
      epLength: hj.epLength,
      recentReturns: hj.recentReturns,
      obsStat: hj.obsStat ? RunningStat.from(hj.obsStat) : null,
      retStat: hj.retStat ? RunningStat.from(hj.retStat) : null,
      retAcc: hj.retAcc,
      amppo: hj.amppo ?? null,
      bestEval: typeof hj.bestEval === 'number' ? hj.bestEval : null,
    };
    if (this.hostEnv) {
      // Host envs that cannot restore their state start new episodes (documented in docs/environments.md).
      if (this.hostEnv.setState && hj.hostEnv !== undefined) this.hostEnv.setState(hj.hostEnv);
      else {
        disposeMap(this.env);
        const [k] = take(this.host, 1);
        this.env = runSync(this.resetEnvs(k!, this.cfg.env.num_envs));
        this.host.epReturn.fill(0);
        this.host.epLength.fill(0);
        this.host.retAcc.fill(0);
      }
    }
    this.iteration = body.iteration;
    this.globalStep = body.global_step;
  }

  /** Refuses an act graph without action_mode where deterministic evaluation needs it. */
  private requireActionMode(pointer: string): void {
    if (ACTION_MODE in this.graphs.act.outputs) return;
    throw new LoomError({
      code: 'E_INPUT',
      message: `deterministic evaluation needs the act graph's output "${ACTION_MODE}", which it does not have`,
      file: this.graphs.act.file,
      pointer: '/outputs',
      expected: `an output "${ACTION_MODE}": the argmax of the logits (categorical) or the mean (Gaussian)`,
      hint: `add that output, or evaluate with sampled actions (${pointer === '/eval/deterministic' ? `"eval": {"deterministic": false} in ${this.cfg.file}` : '--stochastic'})`,
    });
  }

  /**
   * Plays `episodes` episodes with the current policy and frozen normalisation: its action_mode
   * when `deterministic` (the default, as in Stable-Baselines3), sampled actions otherwise.
   */
  evaluate(episodes: number, seed: number, deterministic = true): number[] {
    return runSync(this.evaluateWork(episodes, seed, deterministic));
  }

  evaluateAsync(episodes: number, seed: number, deterministic = true): Promise<number[]> {
    return runAsync(this.evaluateWork(episodes, seed, deterministic));
  }

  private *evaluateWork(episodes: number, seed: number, deterministic: boolean): Work<number[]> {
    if (episodes <= 0) return [];
    if (deterministic && !this.actMode) {
      this.requireActionMode('--stochastic');
      this.actMode = this.program(withOutputs(this.graphs.act, (k) => k === ACTION_MODE));
    }
    const act = deterministic ? this.actMode! : this.act;
    const actionOf = (a: TensorMap) => (deterministic ? a[ACTION_MODE]! : a.action!);
    const N = this.cfg.env.num_envs;
    const h: HostState = { ...this.host, key: seedKey(seed + 0x5eed) };
    const [k0] = take(h, 1);
    const envs = this.hostEnv ? (this.evalEnv ??= this.envPrograms()) : { step: this.step, reset: this.reset };
    let env = yield* this.resetEnvs(k0!, N, envs.reset);
    const ret = new Array<number>(N).fill(0);
    const out: number[] = [];
    for (let guard = 0; out.length < episodes && guard < 100000; guard++) {
      const [ka, ke] = take(h, 2);
      const keyA = keyTensor(ka!);
      const keyE = keyTensor(ke!);
      const obs = this.policyObs(env.obs!, false, h.obsStat);
      const a = yield* this.call(act, { obs, key: keyA }, this.params);
      const st = yield* this.call(envs.step, { state: env.state!, t: env.t!, action: actionOf(a), key: keyE }, {});
      const r = st.reward!.dataSync();
      const term = st.terminated!.dataSync();
      const trunc = st.truncated!.dataSync();
      for (let i = 0; i < N; i++) {
        ret[i]! += r[i]!;
        if (term[i] || trunc[i]) {
          if (out.length < episodes) out.push(ret[i]!);
          ret[i] = 0;
        }
      }
      disposeMap(a);
      disposeMap(env);
      tf.dispose([keyA, keyE, obs, st.reward!, st.terminated!, st.truncated!, st.final_obs].filter((x): x is tf.Tensor => !!x));
      env = { state: st.state!, t: st.t!, obs: st.obs! };
    }
    disposeMap(env);
    return out;
  }

  dispose(): void {
    this.keys?.act.dispose();
    this.keys?.step.dispose();
    this.segment?.dispose();
    this.segment = null;
    disposeMap(this.params);
    disposeMap(this.optState);
    disposeMap(this.env);
    this.hostEnv?.close?.();
    this.evalEnv?.env?.close?.();
  }
}


/** The optimizer graph's flat param and grad inputs ("params"/"param", "grads"/"grad"). */
function optimizerPorts(g: IRGraph): [string, string] {
  const vecs = g.inputs.filter((i) => i.type.shape.length === 1);
  return [vecs.find((i) => i.name === 'params' || i.name === 'param')?.name ?? 'params', vecs.find((i) => i.name === 'grads' || i.name === 'grad')?.name ?? 'grads'];
}

/**
 * What a checkpoint of this pipeline holds: the agent's params, the optimizer state (its inputs that
 * are also outputs, flat over all params or scalar), the env tensors for num_envs envs, and the host
 * state's sizes. Fresh state is built from it, and a checkpoint is checked against it on resume.
 */
export function checkpointLayout(cfg: PipelineConfig, graphs: PipelineGraphs): CheckpointLayout {
  const params = Object.fromEntries(graphs.act.params.map((p) => [p.name, { dtype: p.type.dtype, shape: staticShape(p.type.shape, new Map()) }]));
  const P = Object.values(params).reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const [param] = optimizerPorts(graphs.optimizer);
  const optimizer = Object.fromEntries(
    graphs.optimizer.inputs.filter((i) => i.name !== param && i.name in graphs.optimizer.outputs).map((i) => [i.name, { dtype: i.type.dtype, shape: i.type.shape.length === 1 ? [P] : [] }]),
  );
  // The env tensors are the reset graph's outputs with its batch dim (that of `like`) at num_envs.
  const N = cfg.env.num_envs;
  const envTensors = graphs.reset ? graphEnvTensors(graphs.reset, N) : hostEnvTensors(hostEnvDefinition(cfg.env.host!, cfg.file), N);
  const obsDim = envTensors.obs!.shape[1]!;
  const statEnvs = cfg.normalize.per_env ? N : 1;
  return {
    pipeline: cfg.pipeline,
    tensors: { params, optimizer, env: envTensors },
    hostPresent: { obsStat: cfg.normalize.obs, retStat: cfg.normalize.reward, amppo: cfg.advantage.transform !== null },
    hostLengths: { epReturn: N, epLength: N, retAcc: N, 'obsStat.mean': statEnvs * obsDim, 'obsStat.var': statEnvs * obsDim, 'retStat.mean': statEnvs, 'retStat.var': statEnvs },
  };
}

/** A host env's tensors in the driver: no state of its own (it stays in the env), t and obs. */
function hostEnvTensors(def: HostEnvDefinition, N: number): CheckpointLayout['tensors']['env'] {
  return { state: { dtype: 'float32', shape: [N, 0] }, t: { dtype: 'int32', shape: [N] }, obs: { dtype: 'float32', shape: [N, def.observationShape[0]] } };
}

const staticShape = (shape: readonly (number | string)[], env: ReadonlyMap<string, number>): number[] => substShape([...shape], env).map((d) => (typeof d === 'number' ? d : NaN));

function graphEnvTensors(reset: IRGraph, N: number): CheckpointLayout['tensors']['env'] {
  const batch = reset.inputs.find((i) => i.name === 'like')?.type.shape[0];
  const env = new Map(typeof batch === 'string' ? [[batch, N]] : []);
  const types = new Map(reset.nodes.filter((n) => n.type).map((n) => [n.id, n.type!] as const));
  for (const i of reset.inputs) types.set(i.name, i.type);
  const nodes = new Map(reset.nodes.map((n) => [n.id, n]));
  return Object.fromEntries(
    (['state', 't', 'obs'] as const).map((k) => {
      const t = refType(types, nodes, reset.outputs[k]!);
      return [k, { dtype: t.dtype, shape: staticShape(t.shape, env) }];
    }),
  );
}

/** The folder of a run that holds the checkpoint of its best evaluation (eval.every). */
export const BEST_DIR = 'best';

export function explainedVariance(pred: ArrayLike<number>, target: ArrayLike<number>): number {
  const n = target.length;
  const mt = Array.from(target).reduce((a, b) => a + b, 0) / n;
  let vt = 0;
  let vr = 0;
  const res = Array.from(target, (y, i) => y - pred[i]!);
  const mr = res.reduce((a, b) => a + b, 0) / n;
  for (let i = 0; i < n; i++) {
    vt += (target[i]! - mt) ** 2;
    vr += (res[i]! - mr) ** 2;
  }
  return vt === 0 ? NaN : 1 - vr / vt;
}

/** How many graphs a pipeline compiles (AM-PPO's pair counts as two). */
function graphCount(graphs: PipelineGraphs): number {
  return Object.values(graphs).reduce((n: number, g: IRGraph | Record<string, IRGraph>) => n + ('nodes' in g ? 1 : Object.keys(g).length), 0);
}

/** Runs (or resumes) a pipeline to the end, or until maxIterations / shouldStop, without letting timers run between iterations. */
export async function train(cfg: PipelineConfig, opts: TrainOptions): Promise<TrainResult> {
  const loop = trainLoop(cfg, opts);
  for (;;) {
    const r = await loop.next();
    if (r.done) return r.value;
  }
}

/**
 * `train` that lets the event loop run between iterations, so signal handlers (Ctrl-C) and timers
 * get to run while a long pipeline trains.
 */
export async function trainAsync(cfg: PipelineConfig, opts: TrainOptions): Promise<TrainResult> {
  const loop = trainLoop(cfg, opts);
  for (;;) {
    const r = await loop.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The training loop, yielding after every iteration; driven to the end by `train` / `trainAsync`. */
async function* trainLoop(cfg: PipelineConfig, opts: TrainOptions): AsyncGenerator<void, TrainResult, void> {
  // Before compiling anything, so an output folder that cannot be written fails at once. A run
  // folder has one writer, this run: temp files of its own files are left by a killed start of it.
  ensureDir(opts.outDir);
  removeStaleTemps(opts.outDir, ['checkpoint.json', RUN_FILE, ...METRICS_FILES]);
  checkRunFolder(opts.outDir, cfg, opts);
  const bestDir = outputPath(opts.outDir, BEST_DIR);
  if (cfg.eval.every > 0) {
    ensureDir(bestDir);
    removeStaleTemps(bestDir, ['checkpoint.json']);
  }
  const graphs = loadPipelineGraphs(cfg);
  opts.onStage?.(`compiling ${graphCount(graphs)} graphs`);
  // Host envs may load asynchronously (MuJoCo's wasm module); Trainer builds them synchronously.
  if (cfg.env.host !== undefined) await loadHostEnv(cfg.env.host, cfg.file);
  const trainer = new Trainer(cfg, graphs);
  const ckpt = outputPath(opts.outDir, 'checkpoint.json');
  const backend = opts.backend ?? tf.getBackend();
  if (opts.resume) {
    const body = readCheckpoint(ckpt);
    trainer.restore(body, ckpt);
    trainer.lastCheckpoint = ckpt;
  } else {
    removeCheckpoint(opts.outDir);
    await trainer.initAsync();
  }
  const columns = [...METRIC_COLUMNS, ...(cfg.group ? GROUP_COLUMNS : []), ...(cfg.advantage.transform ? AMPPO_COLUMNS : []), ...(cfg.eval.every > 0 ? EVAL_COLUMNS : [])];
  const log = new MetricsLog(opts.outDir, opts.resume ? trainer.iteration : null, `${cfg.pipeline} (${cfg.env.name}, seed ${cfg.seed})`, columns, cfg.logging.tensorboard);
  if (log.dropped) opts.log?.(log.dropped + '\n');
  const save = async () => {
    await trainer.toHost();
    writeCheckpoint(ckpt, trainer.checkpointBody(backend));
    trainer.lastCheckpoint = ckpt;
  };
  let done = 0;
  let stopped = false;
  const record = startRecord(cfg, {
    backend,
    overrides: opts.overrides,
    invocation: opts.invocation,
    ...(opts.resume ? { resumedFrom: { iteration: trainer.iteration, global_step: trainer.globalStep } } : {}),
  });
  writeRunRecord(opts.outDir, record);
  const progress = () => ({ iterations: trainer.iteration, global_step: trainer.globalStep });
  try {
    while (trainer.iteration < trainer.iterations) {
      if (opts.shouldStop?.() || (opts.maxIterations !== undefined && done >= opts.maxIterations)) {
        stopped = true;
        break;
      }
      const row = await trainer.iterateAsync();
      done++;
      if (cfg.eval.every > 0 && row.iteration % cfg.eval.every === 0) {
        // As SB3's EvalCallback: the same seeded episodes each time, and best/ holds the best policy so far.
        const score = mean(await trainer.evaluateAsync(cfg.eval.episodes, cfg.seed, cfg.eval.deterministic));
        row.eval_return = score;
        if (score !== null && (trainer.host.bestEval === null || score > trainer.host.bestEval)) {
          trainer.host.bestEval = score;
          await trainer.toHost();
          writeCheckpoint(outputPath(bestDir, 'checkpoint.json'), {
            ...trainer.checkpointBody(backend),
            eval: { iteration: row.iteration, episodes: cfg.eval.episodes, mean_return: score, deterministic: cfg.eval.deterministic },
          });
        }
      }
      opts.onMetrics?.(row);
      if (row.iteration % cfg.logging.every === 0 || row.iteration === trainer.iterations || row.eval_return !== undefined) log.add(row);
      if (cfg.checkpoint.every > 0 && row.iteration % cfg.checkpoint.every === 0) await save();
      opts.onProgress?.({
        iteration: row.iteration,
        iterations: trainer.iterations,
        globalStep: row.global_step,
        totalSteps: trainer.iterations * trainer.stepsPerIteration(),
        recentReturn: mean(trainer.host.recentReturns.slice(-20)),
      });
      yield;
    }
    await save();
    // Once, at the end: rendering takes tens of milliseconds.
    await log.plot();
    const finished = trainer.iteration >= trainer.iterations;
    const evalReturns = finished ? await trainer.evaluateAsync(cfg.eval.episodes, cfg.seed, cfg.eval.deterministic) : [];
    writeRunRecord(opts.outDir, endRecord(record, finished ? 'finished' : 'stopped', progress()));
    const params = trainer.params;
    trainer.params = {};
    return {
      iterations: trainer.iteration,
      globalStep: trainer.globalStep,
      stopped,
      metrics: log.all(),
      eval: finished && cfg.eval.episodes > 0 ? { episodes: evalReturns.length, meanReturn: mean(evalReturns), returns: evalReturns } : null,
      bestEval: trainer.host.bestEval,
      lastEpisodes: trainer.host.recentReturns.slice(-20),
      checkpoint: ckpt,
      params,
    };
  } catch (e) {
    try {
      writeRunRecord(opts.outDir, endRecord(record, 'failed', progress(), e));
    } catch {
      // The error that stopped the run is the one to report.
    }
    throw e;
  } finally {
    trainer.dispose();
  }
}
