/**
 * The compiler driver: a checked IRGraph goes through the optimisation passes, in order.
 * Each pass can be switched off by name (`--disable-pass NAME`).
 */
import type { IRGraph } from './ir.ts';
import { runPasses, type Pass, type StageReport } from './passes/pass.ts';

export type { StageReport };
import { inline } from './passes/inline.ts';
import { autodiff } from './passes/autodiff.ts';
import { constantFolding } from './passes/constant-folding.ts';
import { simplify } from './passes/simplify.ts';
import { cse } from './passes/cse.ts';
import { dce } from './passes/dce.ts';
import { fusion } from './passes/fusion.ts';
import { liveness } from './passes/liveness.ts';
import { vmapWithReport, type VmapResult, type VmapSpec } from './passes/vmap.ts';

export type { VmapResult, VmapSpec };

/** Passes that must run for the program to be executable by the compiled runtime. */
export const REQUIRED_PASSES: ReadonlySet<string> = new Set(['inline', 'autodiff']);

export const PASSES: readonly Pass[] = [inline, autodiff, constantFolding, simplify, cse, dce, fusion, liveness];

export interface CompileOptions {
  disabled?: ReadonlySet<string>;
  onStage?: (pass: Pass, g: IRGraph) => void;
}

export interface CompileResult {
  graph: IRGraph;
  stages: StageReport[];
}

export function passNames(): string[] {
  return PASSES.map((p) => p.name);
}

export function compileGraph(g: IRGraph, opts: CompileOptions = {}): CompileResult {
  return runPasses(g, PASSES, opts);
}

/**
 * A checked graph mapped over a new leading axis (see passes/vmap.ts): the required passes (inline,
 * autodiff) first, then the batching. The result is compiled like any graph; it reports the nodes
 * that run one op per instance for want of a batching rule.
 */
export function vmapGraph(g: IRGraph, spec: VmapSpec): VmapResult {
  return vmapWithReport(autodiff.run(inline.run(g)), spec);
}
