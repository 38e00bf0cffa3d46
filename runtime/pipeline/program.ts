/**
 * The one seam between the pipeline driver and whatever executes graphs: the compiled executor
 * (runtime/exec.ts) by default, or the reference interpreter when asked (LOOM_EXECUTOR=interpret),
 * which is slower but is the oracle the compiled programs are tested against.
 */
import type { IRGraph } from '../../compiler/ir.ts';
import { LoomError } from '../../compiler/errors.ts';
import { compileProgram, type ProgramOptions } from '../exec.ts';
import { interpret, type TensorMap } from '../interpreter.ts';

/** Runs a graph; returns fresh tensors owned by the caller and never disposes its arguments. */
export type Program = (inputs: TensorMap, params: TensorMap) => TensorMap;

export type Executor = 'compiled' | 'interpret';

export function defaultExecutor(): Executor {
  const v = process.env.LOOM_EXECUTOR;
  if (v === undefined || v === '' || v === 'compiled') return 'compiled';
  if (v === 'interpret') return 'interpret';
  throw new LoomError({ code: 'E_USAGE', message: `unknown LOOM_EXECUTOR "${v}"`, expected: 'compiled | interpret', found: v });
}

/** `options` tune the compiled executor (the interpreter takes none). */
export function makeProgram(g: IRGraph, executor: Executor = defaultExecutor(), options: ProgramOptions = {}): Program {
  if (executor === 'interpret') return (inputs, params) => interpret(g, inputs, params);
  const prog = compileProgram(g, options);
  return (inputs, params) => prog.run(inputs, params);
}
