/** Catching the LoomError a call throws, for tests that inspect its code, file, pointer and node. */
import { isLoomError, type LoomError } from '../../compiler/errors.ts';

/** The LoomError `f` throws. Throwing anything else, or nothing, fails the test. */
export function loomErr(f: () => unknown): LoomError {
  try {
    f();
  } catch (e) {
    if (isLoomError(e)) return e;
    throw new Error(`expected a LoomError, got ${(e as Error)?.stack ?? String(e)}`);
  }
  throw new Error('expected a LoomError');
}

/** The LoomError the promise `f` returns rejects with; for async calls such as `train`. */
export async function loomErrAsync(f: () => Promise<unknown>): Promise<LoomError> {
  try {
    await f();
  } catch (e) {
    if (isLoomError(e)) return e;
    throw new Error(`expected a LoomError, got ${(e as Error)?.stack ?? String(e)}`);
  }
  throw new Error('expected a LoomError');
}
