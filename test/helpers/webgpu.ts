/**
 * The webgpu test group's start: selects the webgpu backend for this test file (vitest runs each
 * file in its own process, so no other file sees it) or says, on the console, why the group is
 * skipped. Only a missing adapter skips; any other failure is an error.
 */
import { isLoomError } from '../../compiler/errors.ts';
import { initBackend, type BackendChoice } from '../../runtime/backend.ts';

export async function startWebgpu(group: string): Promise<BackendChoice | undefined> {
  try {
    return await initBackend('webgpu', () => {});
  } catch (e) {
    if (!isLoomError(e) || e.code !== 'E_BACKEND') throw e;
    console.log(`SKIPPED ${group}: no WebGPU adapter on this machine (${e.info.message}); .ci/install-gpu-adapter.sh installs a software one`);
    return undefined;
  }
}
