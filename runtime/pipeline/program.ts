/**
 * The one seam between the pipeline driver and whatever executes graphs. Today: the reference
 * interpreter. The compiled executor (runtime/exec.ts) plugs in here without touching the driver.
 */
import type { IRGraph } from '../../compiler/ir.ts';
import { interpret, type TensorMap } from '../interpreter.ts';

/** Runs a graph; returns fresh tensors owned by the caller and never disposes its arguments. */
export type Program = (inputs: TensorMap, params: TensorMap) => TensorMap;

export function makeProgram(g: IRGraph): Program {
  return (inputs, params) => interpret(g, inputs, params);
}
