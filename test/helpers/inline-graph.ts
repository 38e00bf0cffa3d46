/** A graph written inline in a test, loaded as if from a file (no other files exist). */
import { loadGraphJson, memoryFiles } from '../../compiler/frontend/load.ts';
import type { IRGraph } from '../../compiler/ir.ts';

export function inlineGraph(json: Record<string, unknown>, file = '/virtual/t.graph.json'): IRGraph {
  return loadGraphJson({ version: 1, ...json }, file, { files: memoryFiles({}) });
}
