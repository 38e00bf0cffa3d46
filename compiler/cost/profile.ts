/**
 * Hardware profiles (schemas/profile.schema.json): roofline parameters for `loom simulate` and
 * the sectional-MoE overhead coefficients for `loom experts`. Shipped profiles live in
 * profiles/<name>.json; `loom calibrate` writes one for the machine it runs on.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LoomError } from '../errors.ts';
import { packagePath } from '../package-root.ts';
import { assertValid, schemaValidator } from '../frontend/schema.ts';
import { parseJsonText, readUntrusted } from '../frontend/files.ts';

export const PROFILE_DIR = packagePath('profiles');

export type Precision = 'float32' | 'tf32' | 'bfloat16' | 'float16';
export const PRECISIONS: readonly Precision[] = ['float32', 'tf32', 'bfloat16', 'float16'];

export interface MoeOverhead {
  w0?: number;
  w1?: number;
  w2?: number;
  derivation?: string;
}

/**
 * One measured point of batched-matmul cost: a library call multiplying n matrices of
 * [m, k] x [k, cols] takes n * (perMatrix + 2 m k cols / rate) beyond its launch.
 */
export interface BatchedMatmulPoint {
  /** Elements (k cols) of one right-hand matrix of the batch. */
  rhsElements: number;
  /** FLOP/s (float32) of the arithmetic, net of the per-matrix cost. */
  rate: number;
  /** Seconds per matrix of the batch whatever its rows (setup of each product); absent: 0. */
  perMatrix?: number;
}

/**
 * Measured rates of kernel classes that can run far from the roofline figures (on tfjs-wasm,
 * batched matmuls reach a tenth of the 2-D rate and broadcast copies a thousandth of the
 * streaming bandwidth). Every member is optional; see the effective* helpers for the fallbacks.
 */
export interface KernelRates {
  batchedMatmul?: BatchedMatmulPoint[];
  /**
   * Seconds per element of the right-hand matrix of a 2-D product when that tensor is new to the
   * backend (tfjs-wasm packs a right operand once per tensor and reuses the packing); absent: 0.
   */
  freshOperand?: number;
  /** Bytes/s (read + write). */
  transpose?: number;
  broadcast?: number;
  reduction?: number;
  matmulCopiesTransposed?: boolean;
  /**
   * Rank-2 float32 matmuls run as the executor's own product (wasm, runtime/wasm-gemm.ts): at the
   * peak, with no packing and no operand copies.
   */
  ownProduct2d?: boolean;
  /** The executor runs matmuls through the op registry's kernel, whose operand copies (see planMatmul in compiler/ops/linalg.ts) are priced. */
  matmulCopies?: boolean;
}

export interface Profile {
  name: string;
  description?: string;
  source?: string;
  /** FLOP/s per compute precision; float32 always present. */
  peakFlops: { float32: number } & Partial<Record<Precision, number>>;
  /** bytes/s */
  memoryBandwidth: number;
  /** seconds per kernel launch / dispatch */
  kernelOverhead: number;
  /** bytes */
  memoryCapacity?: number;
  moe?: MoeOverhead;
  rates?: KernelRates;
  measured?: Record<string, unknown>;
}

/** Validates parsed JSON against the profile schema; errors name the file and pointer. */
export function validateProfile(json: unknown, file: string): Profile {
  assertValid(schemaValidator('profile.schema.json'), json, file, '', 'profile');
  return json as Profile;
}

/** The file of a profile given by shipped name (`h100`, `h200`) or by path. */
export function profileFile(nameOrFile: string): string {
  const shipped = join(PROFILE_DIR, `${nameOrFile}.json`);
  return /^[A-Za-z0-9_-]+$/.test(nameOrFile) && existsSync(shipped) ? shipped : nameOrFile;
}

/** Loads a profile by shipped name (`h100`, `h200`) or by file path. */
export function loadProfile(nameOrFile: string): Profile {
  const file = profileFile(nameOrFile);
  let text: string;
  try {
    text = readUntrusted(file, { what: 'profile' });
  } catch (e) {
    if (e instanceof LoomError && e.code === 'E_IO') throw new LoomError({ ...e.info, hint: `give a profile file or one of the shipped names: ${shippedProfiles().join(', ')}` });
    throw e;
  }
  return validateProfile(parseJsonText(text, file), file);
}

export function shippedProfiles(): string[] {
  try {
    return ['h100', 'h200'].filter((n) => existsSync(join(PROFILE_DIR, `${n}.json`)));
  } catch {
    return [];
  }
}

/** Peak FLOP/s at a precision, with a clear error when the profile does not list it. */
export function peakFor(p: Profile, precision: Precision): number {
  const v = p.peakFlops[precision];
  if (v === undefined)
    throw new LoomError({
      code: 'E_USAGE',
      message: `profile "${p.name}" has no peak for precision ${precision}`,
      expected: `one of ${Object.keys(p.peakFlops).join(', ')}`,
      found: precision,
    });
  return v;
}

/**
 * Float32 FLOP/s of a batched matmul whose right-hand matrices have `rhsElements` elements: log-log
 * interpolation between the profile's measured points, clamped at the ends; the float32 peak when
 * the profile has none (then batched and 2-D products run alike).
 */
export function batchedMatmulRate(p: Profile, rhsElements: number): number {
  const pts = [...(p.rates?.batchedMatmul ?? [])].sort((a, b) => a.rhsElements - b.rhsElements);
  if (pts.length === 0) return p.peakFlops.float32;
  if (rhsElements <= pts[0]!.rhsElements) return pts[0]!.rate;
  const last = pts[pts.length - 1]!;
  if (rhsElements >= last.rhsElements) return last.rate;
  let i = 1;
  while (pts[i]!.rhsElements < rhsElements) i++;
  const lo = pts[i - 1]!;
  const hi = pts[i]!;
  const t = Math.log(rhsElements / lo.rhsElements) / Math.log(hi.rhsElements / lo.rhsElements);
  return Math.exp(Math.log(lo.rate) + t * Math.log(hi.rate / lo.rate));
}

/**
 * Float32 per-matrix seconds of a batched matmul whose right-hand matrices have `rhsElements`
 * elements: interpolated linearly in log(rhsElements) between the measured points (a point without
 * `perMatrix` counts 0), clamped at the ends; 0 when the profile has no points.
 */
export function batchedMatmulPerMatrix(p: Profile, rhsElements: number): number {
  const pts = [...(p.rates?.batchedMatmul ?? [])].sort((a, b) => a.rhsElements - b.rhsElements);
  if (pts.length === 0) return 0;
  const c = (q: BatchedMatmulPoint) => q.perMatrix ?? 0;
  if (rhsElements <= pts[0]!.rhsElements) return c(pts[0]!);
  const last = pts[pts.length - 1]!;
  if (rhsElements >= last.rhsElements) return c(last);
  let i = 1;
  while (pts[i]!.rhsElements < rhsElements) i++;
  const lo = pts[i - 1]!;
  const hi = pts[i]!;
  const t = Math.log(rhsElements / lo.rhsElements) / Math.log(hi.rhsElements / lo.rhsElements);
  return c(lo) + t * (c(hi) - c(lo));
}

/** Kernels one expert issues when experts are dispatched one by one (forward: Q, K, V, scores, scale, softmax, AV, out-proj, residual, plus one gather of its section). */
export const KERNELS_PER_EXPERT = 10;

/**
 * The MoE overhead coefficients in multiply-accumulates per sequence from a per-kernel overhead
 * (seconds) and a peak rate (FLOP/s): one kernel launch costs overhead * peak/2 MAC-equivalents.
 * w1: each expert dispatched on its own issues KERNELS_PER_EXPERT kernels; w2: one launch per
 * pair of experts (the spec's quadratic synchronisation/communication term, a reconstruction).
 * For a batch of B sequences per launch divide both by B.
 */
export function deriveMoeOverhead(kernelOverhead: number, peakFlops: number, kernelsPerExpert = KERNELS_PER_EXPERT): Required<MoeOverhead> {
  const launch = kernelOverhead * (peakFlops / 2);
  return {
    w0: 0,
    w1: kernelsPerExpert * launch,
    w2: launch,
    derivation: `w1 = ${kernelsPerExpert} kernels per expert * ${kernelOverhead.toPrecision(3)} s * ${(peakFlops / 2).toPrecision(4)} MAC/s; w2 = 1 kernel per expert pair * the same (batch 1: divide by B for B sequences per launch)`,
  };
}
