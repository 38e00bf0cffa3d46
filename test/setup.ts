// Tests that switch to the wasm backend with tf.setBackend get the same generated-kernel product
// as `initBackend` gives the CLI (runtime/wasm-gemm.ts).
import { prepareWasmGemm } from '../runtime/wasm-gemm.ts';

const unprepared = await prepareWasmGemm();
if (unprepared) throw new Error(`the own wasm product failed to assemble: ${unprepared}`);
