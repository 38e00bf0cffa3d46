/**
 * Sectional-MoE benchmark, in two parts (`--part`; the default runs the first, in about a minute
 * on a busy 2-core machine; the second takes several minutes there).
 *
 * Overhead regime (`overhead`): where per-expert costs matter, so that the savings K/E trade off
 * against an overhead growing with E and the fastest E can be interior. Small steps (d0 = 256,
 * L = 16, L' = 4, batch 1, expert FFN m = 4), experts dispatched one by one (`--dispatch
 * per-expert`: every expert issues its own kernels) and E over the whole feasible set up to
 * d0/s_min (`--smin`, default 4: E = 1..64). The E values are timed round-robin for `--overhead-runs`
 * rounds; w1 and w2 are fitted to the per-E medians (`fitOverheads`), their uncertainty and that
 * of both optima come from a bootstrap over whole rounds (`bootstrapOverheads`), and the
 * measured-fastest E is set beside the solver's E* with the fitted coefficients and the
 * simulator's prediction on the calibrated profile. It says plainly when no interior optimum
 * shows on this machine.
 *
 * Simulator comparison (`simulator`): for d0 in {256, 512} and every feasible E up to 32, measures the
 * forward+backward step of the layer and compares it with the roofline simulator's prediction on a
 * calibrated profile of this machine, and the expert-count solver's E* on the same profile with the
 * measured-fastest E.
 *
 * Configuration: L = 64, L' = 16 (reduction factor 4, as in the spec's worked examples), batch 8,
 * one head per expert, and each expert a full narrow transformer block: attention plus an FFN
 * s -> 4s -> s (m = 4, the usual transformer expansion). The spec's expert block (A.3 step 4) has
 * the FFN, and its E-dependent cost K/E with K = 3 L' d0^2 + 2 m L' d0^2 (A.4, A.5) is what the
 * solver models; without it the E-independent pre-expert block and pooling dominate the step.
 *
 * Without --profile it calibrates this machine first (runtime/calibrate.ts), which also measures
 * the profile's `rates` (batched matmul, fresh right operand, transpose, broadcast, reduction) the simulator prices the
 * expert block with. The E values of one width are timed round-robin within each repetition, so
 * a slow spell of a shared machine hits every E alike; each figure is the median over --runs
 * (default 9) repetitions after 2 warm-up ones.
 *
 * Measured = the compiled program run by the compiled executor (runtime/exec.ts), which is the
 * program the simulator prices; `--executor interpret` runs the program compiled without fusion
 * node by node on the reference interpreter instead (then the simulator prices that program).
 *
 * `--backend` picks the tfjs backend for both parts (wasm on this machine; any backend
 * runtime/backend.ts knows, e.g. a GPU one, can be named there).
 *
 *   node bin/run-ts.js bench/moe.ts [--part overhead,simulator] [--profile FILE] [--backend B]
 *                                   [--overhead-runs N] [--overhead-width D0] [--overhead-batch B] [--smin S]
 *                                   [--dispatch per-expert|batched] [--resamples N]
 *                                   [--runs N] [--executor compiled|interpret] [--widths 256,512] [--write-graphs]
 *
 * --write-graphs regenerates the shipped graphs/moe/*.graph.json and exits.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { compileGraph } from '../compiler/compile.ts';
import { loadGraphJson } from '../compiler/frontend/load.ts';
import { defaultMoeGraphs, generateMoeStep } from '../compiler/cost/moe-graph.ts';
import { bootstrapOverheads, feasibleSet, fitOverheads, objective, optimalExperts, type MoeParams } from '../compiler/cost/moe.ts';
import { loadProfile, type Profile } from '../compiler/cost/profile.ts';
import { simulate } from '../compiler/cost/simulate.ts';
import { initBackend } from '../runtime/backend.ts';
import { calibrate, median } from '../runtime/calibrate.ts';
import { writeFileAtomic } from '../runtime/fs.ts';
import { initParams, interpret, type TensorMap } from '../runtime/interpreter.ts';
import { compileProgram, type Program } from '../runtime/exec.ts';
import type { IRGraph } from '../compiler/ir.ts';
import { benchArgs } from './args.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const values = benchArgs(
  'usage: npm run bench:moe -- [--part overhead|simulator|overhead,simulator (default overhead)] [--profile FILE] [--backend B]\n' +
    '  overhead regime: [--overhead-runs N (default 15)] [--overhead-width D0 (256)] [--overhead-batch B (1)] [--smin S (4)] [--dispatch per-expert|batched] [--resamples N (200)]\n' +
    '  simulator comparison: [--runs N (default 9)] [--executor compiled|interpret] [--widths 256,512]\n' +
    '  [--write-graphs]',
  {
    part: { type: 'string', default: 'overhead' },
    'overhead-runs': { type: 'string', default: '15' },
    'overhead-width': { type: 'string', default: '256' },
    'overhead-batch': { type: 'string', default: '1' },
    smin: { type: 'string', default: '4' },
    dispatch: { type: 'string', default: 'per-expert' },
    resamples: { type: 'string', default: '200' },
    profile: { type: 'string' },
    backend: { type: 'string' },
    runs: { type: 'string', default: '9' },
    executor: { type: 'string', default: 'compiled' },
    widths: { type: 'string', default: '256,512' },
    'write-graphs': { type: 'boolean' },
  },
);

if (values['write-graphs']) {
  for (const [name, json] of Object.entries(defaultMoeGraphs())) {
    const file = join(ROOT, 'graphs', 'moe', name);
    writeFileAtomic(file, JSON.stringify(json, null, 2) + '\n');
    console.log(`wrote ${file}`);
  }
  process.exit(0);
}

/** Spearman rank correlation (average ranks for ties). */
export function spearman(a: number[], b: number[]): number {
  const rank = (xs: number[]): number[] => {
    const idx = xs.map((v, i) => [v, i] as const).sort((p, q) => p[0] - q[0]);
    const r = new Array<number>(xs.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
      for (let k = i; k <= j; k++) r[idx[k]![1]] = (i + j) / 2 + 1;
      i = j + 1;
    }
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
  const ma = mean(ra);
  const mb = mean(rb);
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < ra.length; i++) {
    num += (ra[i]! - ma) * (rb[i]! - mb);
    da += (ra[i]! - ma) ** 2;
    db += (rb[i]! - mb) ** 2;
  }
  return num / Math.sqrt(da * db);
}

const B = 8;
const L = 64;
const Lp = 16;
/** Expert FFN expansion ratio (spec A.2 m). */
const M = 4;
const runs = Math.max(3, Number(values.runs));
const parts = new Set((values.part ?? '').split(','));
for (const part of parts)
  if (part !== 'overhead' && part !== 'simulator') {
    console.error(`--part takes overhead, simulator or both (comma-separated), not "${part}"`);
    process.exit(2);
  }
if (values.dispatch !== 'per-expert' && values.dispatch !== 'batched') {
  console.error(`--dispatch must be per-expert or batched, not "${values.dispatch}"`);
  process.exit(2);
}

const backend = await initBackend(values.backend, (m) => console.log(m));
let profile: Profile;
if (values.profile) profile = loadProfile(values.profile);
else {
  console.log('calibrating this machine (loom calibrate)...');
  profile = await calibrate();
}
console.log(
  `profile ${profile.name}: peak ${(profile.peakFlops.float32 / 1e9).toFixed(2)} GFLOP/s, bandwidth ${(profile.memoryBandwidth / 1e9).toFixed(2)} GB/s, overhead ${(profile.kernelOverhead * 1e6).toFixed(2)} us/kernel`,
);
const r = profile.rates;
if (r)
  console.log(
    `profile rates: fresh right operand ${((r.freshOperand ?? 0) * 1e9).toFixed(2)} ns/element; batched matmul ${(r.batchedMatmul ?? []).map((p) => `${(p.rate / 1e9).toFixed(2)}`).join('/')} GFLOP/s at ${(r.batchedMatmul ?? []).map((p) => p.rhsElements).join('/')} rhs elements; transpose ${((r.transpose ?? 0) / 1e9).toFixed(3)}, broadcast ${((r.broadcast ?? 0) / 1e9).toFixed(3)}, reduction ${((r.reduction ?? 0) / 1e9).toFixed(3)} GB/s`,
  );
const compiled = values.executor !== 'interpret';
if (parts.has('simulator'))
  console.log(
    `measured: ${compiled ? 'compiled executor' : 'compiled program (fusion off) run by the reference interpreter'} on tfjs ${backend.name}, median of ${runs} runs after 2 warm-up runs; B=${B}, L=${L}, L'=${Lp}, one head, expert FFN m=${M}`,
  );

/** One timed forward+backward run (outputs read back, then freed). */
function timeOnce(c: { g: IRGraph; prog: Program | null }, x: tf.Tensor, params: TensorMap): number {
  const t0 = process.hrtime.bigint();
  const out = c.prog ? c.prog.run({ x }, params) : interpret(c.g, { x }, params);
  for (const t of Object.values(out)) t.dataSync();
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const t of Object.values(out)) t.dispose();
  return dt;
}

const pad = (s: string, n: number) => s.padStart(n);

/** "4 62%, 8 30%": how often each E came out over the bootstrap resamples, most frequent first. */
const sharesText = (xs: { E: number; share: number }[]) =>
  [...xs]
    .sort((a, b) => b.share - a.share)
    .map((x) => `${x.E} ${(100 * x.share).toFixed(0)}%`)
    .join(', ');

/**
 * The overhead regime (see the header): measured times against the fitted solver and the simulator,
 * in ratios to each curve's own fastest E.
 */
function overheadRegime(): void {
  const d0 = Number(values['overhead-width']);
  const Bo = Number(values['overhead-batch']);
  const [Lo, Lpo] = [16, 4];
  const roundsN = Math.max(3, Number(values['overhead-runs']));
  const dispatch = values.dispatch as 'per-expert' | 'batched';
  const params: MoeParams = { L: Lo, d0, reduction: { kind: 'fixed', rho: Lo / Lpo }, c_att: 2, m: M, w2: 0, sMin: Number(values.smin) };
  const Es = feasibleSet(params);
  console.log(
    `\noverhead regime: d0 = ${d0}, L = ${Lo}, L' = ${Lpo}, B = ${Bo}, expert FFN m = ${M}, experts dispatched ${dispatch}, E = ${Es.join(', ')} (s >= ${params.sMin}); compiled executor on tfjs ${backend.name}, median of ${roundsN} round-robin rounds after 2 warm-up ones`,
  );
  const cases = Es.map((E) => {
    const json = generateMoeStep({ d0, E, L: Lo, Lp: Lpo, heads: 1, m: M, mix: true, dispatch });
    const prog = compileProgram(loadGraphJson(json, join(ROOT, 'graphs', 'moe', `bench-overhead-d${d0}-e${E}.graph.json`)), { log: () => {} });
    const sim = simulate(prog.graph, profile, { dims: { B: Bo } });
    return { E, g: prog.graph, prog, sim, params: initParams(prog.graph, 1), times: [] as number[] };
  });
  const x = tf.randomNormal([Bo, Lo, d0], 0, 1, 'float32', 7);
  for (let rep = 0; rep < roundsN + 2; rep++)
    for (const c of cases) {
      const dt = timeOnce(c, x, c.params);
      if (rep >= 2) c.times.push(dt);
    }
  x.dispose();
  for (const c of cases) for (const t of Object.values(c.params)) t.dispose();

  const boot = bootstrapOverheads(cases, { ...params, Emax: Es[Es.length - 1]! }, { stat: median, resamples: Number(values.resamples), seed: 1 });
  const fit = boot.fit;
  const meas = cases.map((c) => median(c.times));
  const pred = cases.map((c) => c.sim.total.timeS);
  const fitted = Es.map((E) => fit.scale * (objective(E, { ...params, w2: 0 }) + fit.w0 + fit.w1 * E + fit.w2 * E * E));
  const iMeas = meas.indexOf(Math.min(...meas));
  const iPred = pred.indexOf(Math.min(...pred));
  // The simulator's own overhead coefficients, fitted to its predictions in the same way.
  const simFit = fitOverheads(Es.map((E, i) => ({ E, cost: pred[i]! })), params);
  const simE = optimalExperts({ ...params, w1: simFit.w1, w2: simFit.w2 }).E;

  console.log(`${pad('E', 3)}  ${pad('s', 4)}  ${pad('kernels', 7)}  ${pad('measured/fastest', 16)}  ${pad('simulated/fastest', 17)}  ${pad('fit/measured', 12)}`);
  Es.forEach((E, i) =>
    console.log(
      `${pad(String(E), 3)}  ${pad(String(d0 / E), 4)}  ${pad(String(cases[i]!.sim.total.kernels), 7)}  ${pad((meas[i]! / meas[iMeas]!).toFixed(2), 16)}  ${pad((pred[i]! / pred[iPred]!).toFixed(2), 17)}  ${pad((fitted[i]! / meas[i]!).toFixed(2), 12)}`,
    ),
  );
  console.log(`fastest measured median: ${(meas[iMeas]! * 1e3).toFixed(2)} ms at E = ${Es[iMeas]}; measured/simulated there ${(meas[iMeas]! / pred[iMeas]!).toFixed(2)}`);
  const ci = (c: { lo: number; hi: number }) => `[${c.lo.toExponential(2)}, ${c.hi.toExponential(2)}]`;
  console.log(
    `fitted to the measured medians (MAC-equivalents per sequence; bootstrap over ${boot.resamples} resamples of the rounds: standard error, 95% interval): w1 = ${fit.w1.toExponential(3)} ± ${boot.w1.se.toExponential(2)} ${ci(boot.w1)}, w2 = ${fit.w2.toExponential(3)} ± ${boot.w2.se.toExponential(2)} ${ci(boot.w2)}`,
  );
  console.log(`E*, side by side:`);
  console.log(`  measured fastest:                          ${pad(String(Es[iMeas]), 3)}  (bootstrap: ${sharesText(boot.measuredE)})`);
  console.log(`  solver, w1 and w2 fitted to the measured:  ${pad(String(boot.E), 3)}  (bootstrap: ${sharesText(boot.solverE)})`);
  console.log(`  simulator (calibrated profile), fastest:   ${pad(String(Es[iPred]), 3)}`);
  console.log(`  solver, w1 and w2 fitted to the simulator: ${pad(String(simE), 3)}  (w1 = ${simFit.w1.toExponential(3)}, w2 = ${simFit.w2.toExponential(3)})`);
  if (profile.moe) {
    // The profile's launch-count model (docs/moe.md), per sequence: B sequences share each launch.
    const [w1, w2] = [(profile.moe.w1 ?? 0) / Bo, (profile.moe.w2 ?? 0) / Bo];
    console.log(`  solver, the profile's launch-count model:  ${pad(String(optimalExperts({ ...params, w1, w2 }).E), 3)}  (w1 = ${w1.toExponential(3)}, w2 = ${w2.toExponential(3)})`);
  }
  const interior = (E: number) => E !== Es[0] && E !== Es[Es.length - 1];
  const interiorShare = boot.measuredE.filter((e) => interior(e.E)).reduce((a, e) => a + e.share, 0);
  if (interior(Es[iMeas]!))
    console.log(
      `interior optimum: the measured-fastest E = ${Es[iMeas]} lies inside ${Es[0]}..${Es[Es.length - 1]} (interior in ${(100 * interiorShare).toFixed(0)}% of the bootstrap resamples); the quadratic term w2 ${boot.w2.lo > 0 ? 'is' : 'is not'} distinguishable from 0 at 95%`,
    );
  else
    console.log(
      `no interior optimum on this hardware: the measured-fastest E = ${Es[iMeas]} is the end of the range ${Es[0]}..${Es[Es.length - 1]} (interior in ${(100 * interiorShare).toFixed(0)}% of the bootstrap resamples)`,
    );
}

if (parts.has('overhead')) overheadRegime();

let allPred: number[] = [];
let allMeas: number[] = [];
for (const d0 of parts.has('simulator') ? (values.widths ?? '256,512').split(',').map(Number) : []) {
  const Es = [1, 2, 4, 8, 16, 32].filter((E) => d0 % E === 0);
  const cases = Es.map((E) => {
    const json = generateMoeStep({ d0, E, L, Lp, heads: 1, m: M, mix: true });
    const loaded = loadGraphJson(json, join(ROOT, 'graphs', 'moe', `bench-d${d0}-e${E}.graph.json`));
    // The interpreter runs one tfjs kernel per node and cannot run fused nodes.
    const prog = compiled ? compileProgram(loaded, { log: () => {} }) : null;
    const g = prog ? prog.graph : compileGraph(loaded, { disabled: new Set(['fusion']) }).graph;
    const sim = simulate(g, profile, { dims: { B } });
    return { E, g, prog, sim, params: initParams(g, 1), times: [] as number[] };
  });
  const x = tf.randomNormal([B, L, d0], 0, 1, 'float32', 7);
  // Round-robin over E, so a slow spell of the machine hits every E alike.
  for (let rep = 0; rep < runs + 2; rep++)
    for (const c of cases) {
      const dt = timeOnce(c, x, c.params);
      if (rep >= 2) c.times.push(dt);
    }
  x.dispose();
  const rows = cases.map((c) => {
    for (const t of Object.values(c.params)) t.dispose();
    const b = c.sim.byBound;
    const bound = (['compute', 'memory', 'overhead'] as const).reduce((best, k) => (b[k].timeS > b[best].timeS ? k : best), 'compute' as 'compute' | 'memory' | 'overhead');
    return { E: c.E, pred: c.sim.total.timeS, meas: median(c.times), best: Math.min(...c.times), kernels: c.sim.total.kernels, bound };
  });
  const rho = spearman(
    rows.map((r) => r.pred),
    rows.map((r) => r.meas),
  );
  // The fastest run is the one least hit by other jobs (their load only ever adds time).
  const rhoBest = spearman(
    rows.map((r) => r.pred),
    rows.map((r) => r.best),
  );
  allPred = allPred.concat(rows.map((r) => r.pred));
  allMeas = allMeas.concat(rows.map((r) => r.meas));
  const fastest = rows.reduce((a, r) => (r.meas < a.meas ? r : a));
  const simBest = rows.reduce((a, r) => (r.pred < a.pred ? r : a));
  const verdictFor = (E: number) => {
    const iSol = Es.indexOf(E);
    const iFast = Es.indexOf(fastest.E);
    return E === fastest.E ? 'matches the measured-fastest E' : Math.abs(iSol - iFast) === 1 ? 'is the feasible neighbour of the measured-fastest E' : 'MISSES the measured-fastest E';
  };
  const moeParams = { L, d0, reduction: { kind: 'fixed' as const, rho: L / Lp }, c_att: 2, m: M, Emax: 32 };
  // (1) Overheads from the profile's launch-count model (moe.w1/w2: per-expert kernel launches).
  const w1 = (profile.moe?.w1 ?? 0) / B;
  const w2 = (profile.moe?.w2 ?? 0) / B;
  const solLaunch = optimalExperts({ ...moeParams, w1, w2 });
  // (2) Overheads fitted to the simulator's predictions on the profile, in forward MACs per sequence.
  const macsPerSecond = profile.peakFlops.float32 / 2;
  const fit = fitOverheads(rows.map((r) => ({ E: r.E, cost: (r.pred * macsPerSecond) / B })), { ...moeParams, w2: 1 });
  const sol = optimalExperts({ ...moeParams, w1: fit.w1, w2: fit.w2 });
  const verdict = verdictFor(sol.E);

  console.log(`\nd0 = ${d0} (forward + backward, ms)`);
  console.log(`${pad('E', 3)}  ${pad('s', 4)}  ${pad('kernels', 7)}  ${pad('predicted', 10)}  ${pad('measured', 10)}  ${pad('meas/pred', 9)}  ${pad('fastest run', 11)}  sim bound`);
  for (const r of rows)
    console.log(
      `${pad(String(r.E), 3)}  ${pad(String(d0 / r.E), 4)}  ${pad(String(r.kernels), 7)}  ${pad((r.pred * 1e3).toFixed(3), 10)}  ${pad((r.meas * 1e3).toFixed(3), 10)}  ${pad((r.meas / r.pred).toFixed(2), 9)}  ${pad((r.best * 1e3).toFixed(3), 11)}  ${r.bound}`,
    );
  console.log(`Spearman rank correlation predicted vs measured: ${rho.toFixed(3)} (target >= 0.9); vs fastest run: ${rhoBest.toFixed(3)}`);
  console.log(`fastest: measured E = ${fastest.E}, simulated E = ${simBest.E}`);
  console.log(
    `solver, overheads fitted to the simulator on this profile (scale ${fit.scale.toFixed(2)}, w1 = ${fit.w1.toExponential(3)}, w2 = ${fit.w2.toExponential(3)}): E* = ${sol.E} ${verdict}`,
  );
  console.log(`solver, overheads from the profile's per-expert launch model (w1 = ${w1.toExponential(3)}, w2 = ${w2.toExponential(3)}): E* = ${solLaunch.E} ${verdictFor(solLaunch.E)}`);
}
if (allPred.length > 0) console.log(`\npooled Spearman over both widths: ${spearman(allPred, allMeas).toFixed(3)}`);
