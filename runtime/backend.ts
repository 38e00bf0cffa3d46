/**
 * Backend selection. Order: --backend / LOOM_BACKEND if given; else `tensorflow` when
 * @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node is installed; else `wasm` (embedded
 * default); else `cpu`. The choice and its reason are reported once.
 */
import * as tf from '@tensorflow/tfjs';
import { LoomError } from '../compiler/errors.ts';
import { prepareWasmGemm } from './wasm-gemm.ts';

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendChoice {
  name: BackendName;
  reason: string;
}

let active: BackendChoice | undefined;
let announced = false;

async function tryImport(mod: string): Promise<boolean> {
  try {
    await import(mod);
    return true;
  } catch {
    return false;
  }
}

async function loadTensorflow(): Promise<string | undefined> {
  for (const mod of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) if (await tryImport(mod)) return mod;
  return undefined;
}

async function activate(name: BackendName): Promise<boolean> {
  if (name === 'wasm' && !(await tryImport('@tensorflow/tfjs-backend-wasm'))) return false;
  try {
    return (await tf.setBackend(name)) && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/** Selects and initialises the backend; idempotent for the same request. */
export async function initBackend(requested?: string, log: (msg: string) => void = (m) => process.stderr.write(m + '\n')): Promise<BackendChoice> {
  const req = requested ?? process.env.LOOM_BACKEND ?? undefined;
  if (req !== undefined && req !== '' && !(BACKENDS as readonly string[]).includes(req))
    throw new LoomError({ code: 'E_USAGE', message: `unknown backend "${req}"`, expected: BACKENDS.join(' | '), found: req });
  if (active && (!req || req === active.name)) return active;

  let choice: BackendChoice | undefined;
  if (req) {
    const via = requested !== undefined ? '--backend' : 'LOOM_BACKEND';
    if (req === 'tensorflow') {
      const mod = await loadTensorflow();
      if (!mod || !(await activate('tensorflow')))
        throw new LoomError({
          code: 'E_BACKEND',
          message: 'the tensorflow backend needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, and neither is installed',
          hint: 'install one of them (its installer downloads libtensorflow), or use --backend wasm',
        });
      choice = { name: 'tensorflow', reason: `requested by ${via} (${mod})` };
    } else {
      if (!(await activate(req as BackendName))) throw new LoomError({ code: 'E_BACKEND', message: `the ${req} backend failed to initialise` });
      choice = { name: req as BackendName, reason: `requested by ${via}` };
    }
  } else {
    const mod = await loadTensorflow();
    if (mod && (await activate('tensorflow'))) choice = { name: 'tensorflow', reason: `${mod} is installed` };
    else if (await activate('wasm')) choice = { name: 'wasm', reason: 'embedded default (tfjs-node is not installed)' };
    else if (await activate('cpu')) choice = { name: 'cpu', reason: 'wasm backend failed to initialise' };
    else throw new LoomError({ code: 'E_BACKEND', message: 'no TensorFlow.js backend could be initialised' });
  }
  await tf.ready();
  // Generated kernels multiply with their own product on wasm (see wasm-gemm.ts).
  const unprepared = choice.name === 'wasm' ? await prepareWasmGemm() : undefined;
  if (unprepared) log(`loom: the own wasm product is unavailable (${unprepared}); products run as the library's matmul`);
  active = choice;
  if (!announced || requested) {
    log(`loom: backend ${choice.name} (${choice.reason})`);
    announced = true;
  }
  return choice;
}

export { tf };
