// Tests that switch to the wasm backend with tf.setBackend get the same generated-kernel product
// as `initBackend` gives the CLI (runtime/wasm-gemm.ts) ...
import { prepareWasmGemm } from '../runtime/wasm-gemm.ts';

const unprepared = await prepareWasmGemm();
if (unprepared) throw new Error(`the own wasm product failed to assemble: ${unprepared}`);
// ... and the same wasm kernels (runtime/wasm-kernels.ts).
import { prepareWasmKernels } from '../runtime/wasm-kernels.ts';
const noKernels = await prepareWasmKernels();
if (noKernels) throw new Error(`the wasm kernels' assembler failed to load: ${noKernels}`);

// A test file of many synchronous tests never lets its worker's event loop reach I/O between
// tests; vitest's messages to the main process then time out after a minute although every test
// passes. A macrotask turn before each test lets those messages through.
import { beforeEach } from 'vitest';
beforeEach(() => new Promise<void>((done) => setImmediate(done)));
