/** Watching the tfjs engine from tests: kernels dispatched through it, and buffers a backend holds. */
import * as tf from '@tensorflow/tfjs';

type RunKernel = (...args: unknown[]) => unknown;
const engineProto = Object.getPrototypeOf(tf.engine()) as { runKernel: RunKernel };

/** Names of the kernels dispatched through the engine while f runs (replayed, generated and host kernels bypass it). */
export function dispatched(f: () => void): string[] {
  const orig = engineProto.runKernel;
  const names: string[] = [];
  engineProto.runKernel = function (this: unknown, ...args: unknown[]) {
    names.push(args[0] as string);
    return orig.apply(this, args);
  };
  try {
    f();
  } finally {
    engineProto.runKernel = orig;
  }
  return names;
}

/** Buffers the active backend holds: bare tensor infos count too, which tf.memory() does not see. */
export const buffers = (): number => tf.engine().backend.numDataIds();
