/**
 * The code-generation seam: a target turns a KernelSpec (one fused loop nest at concrete
 * shapes, its per-element work as kernel IR) into source code the runtime can load. The
 * CPU/WASM-host target emits TypeScript over typed arrays (./js.ts); the WGSL target emits
 * compute shaders (./wgsl.ts).
 */
import type { KernelSpec } from './spec.ts';

export interface GeneratedKernel {
  /** Unique per distinct kernel: derived from a hash of the source. */
  name: string;
  /** The target that produced it. */
  target: string;
  /** Source of one function called `name` (the target's language). */
  source: string;
  /** Helper functions the kernel calls (each a complete declaration; shared kernels share them). */
  support: string[];
  /** What the kernel computes: the host glue reads inputs, outputs, matmul and in-place info here. */
  spec: KernelSpec;
}

export interface CodegenTarget {
  readonly name: string;
  emit(spec: KernelSpec): GeneratedKernel;
  /** Checks kernels (once per distinct kernel); throws with the diagnostics when one is ill-typed. */
  check(kernels: readonly GeneratedKernel[]): void;
}

/** A 53-bit string hash (cyrb53), as a base-36 string: names kernels by their source. */
export function hashText(s: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}
