/**
 * Pass infrastructure. A pass is a small pure function IRGraph -> IRGraph with a name and an
 * off switch (`--disable-pass NAME`). The pipeline records op counts before and after each
 * pass so `loom compile --emit` can show what every pass did.
 */
import type { IRGraph } from '../ir.ts';

export interface Pass {
  name: string;
  doc: string;
  run(g: IRGraph): IRGraph;
}

export interface StageReport {
  pass: string;
  skipped: boolean;
  nodesBefore: number;
  nodesAfter: number;
  opsBefore: Record<string, number>;
  opsAfter: Record<string, number>;
}

export function opCounts(g: IRGraph): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of g.nodes) out[n.op] = (out[n.op] ?? 0) + 1;
  return out;
}

export interface PipelineOptions {
  disabled?: ReadonlySet<string>;
  /** Called after every pass (for --emit of intermediate stages and for tests). */
  onStage?: (pass: Pass, g: IRGraph) => void;
}

export function runPasses(g: IRGraph, passes: readonly Pass[], opts: PipelineOptions = {}): { graph: IRGraph; stages: StageReport[] } {
  const stages: StageReport[] = [];
  let cur = g;
  for (const p of passes) {
    const before = opCounts(cur);
    const n0 = cur.nodes.length;
    const skipped = opts.disabled?.has(p.name) ?? false;
    if (!skipped) cur = p.run(cur);
    stages.push({ pass: p.name, skipped, nodesBefore: n0, nodesAfter: cur.nodes.length, opsBefore: before, opsAfter: opCounts(cur) });
    opts.onStage?.(p, cur);
  }
  return { graph: cur, stages };
}
