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
export interface Program {
  (inputs: TensorMap, params: TensorMap): TensorMap;
  /** The same, awaiting the reads its ops make on the host where tensors cannot be read synchronously (webgpu). */
  runAsync(inputs: TensorMap, params: TensorMap): Promise<TensorMap>;
}

export type Executor = 'compiled' | 'interpret';

export function defaultExecutor(): Executor {
  const v = process.env.LOOM_EXECUTOR;
  if (v === undefined || v === '' || v === 'compiled') return 'compiled';
  if (v === 'interpret') return 'interpret';
  throw new LoomError({ code: 'E_USAGE', message: `unknown LOOM_EXECUTOR "${v}"`, expected: 'compiled | interpret', found: v });
}

/** A program from a synchronous function whose tensors are always readable (host code, the interpreter). */
export function syncProgram(run: (inputs: TensorMap, params: TensorMap) => TensorMap): Program {
  return Object.assign(run, { runAsync: async (inputs: TensorMap, params: TensorMap) => run(inputs, params) });
}

/** `options` tune the compiled executor (the interpreter takes none). */
export function makeProgram(g: IRGraph, executor: Executor = defaultExecutor(), options: ProgramOptions = {}): Program {
  if (executor === 'interpret') {
    return syncProgram((inputs, params) => interpret(g, inputs, params));
  }
  const prog = compileProgram(g, options);
  return Object.assign((inputs: TensorMap, params: TensorMap) => prog.run(inputs, params), { runAsync: (inputs: TensorMap, params: TensorMap) => prog.runAsync(inputs, params) });
}

/**
 * Runs a program where tensors cannot be read synchronously, then reads each output once: tfjs
 * keeps the values on the host, so later synchronous reads of those outputs succeed.
 */
export async function runReadable(p: Program, inputs: TensorMap, params: TensorMap): Promise<TensorMap> {
  const out = await p.runAsync(inputs, params);
  await Promise.all(Object.values(out).map((t) => t.data()));
  return out;
}
