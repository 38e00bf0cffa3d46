/**
 * What the fusion pass and the code generators need to know about an op, all read from the op
 * registry: its role in a fused kernel, the per-element kernel IR of elementwise ops, and
 * how a reduction combines elements.
 */
import { type Attrs } from '../ir.ts';
import { getOp, type Reducer } from '../ops/registry.ts';
import type { Expr } from './kir.ts';

export type { Reducer };

export type Role = 'elementwise' | 'reduction' | 'matmul' | 'view' | 'opaque';

export function reducerOf(op: string): Reducer | undefined {
  return getOp(op)?.reducer;
}

/** One element of an elementwise op as kernel IR over its operands, or undefined if the op is not one. */
export function scalarOf(op: string): ((args: Expr[], attrs: Attrs) => Expr) | undefined {
  const def = getOp(op);
  return def?.fusion === 'elementwise' ? def.scalar : undefined;
}

/** The role an op can play in a fused kernel. */
export function roleOf(op: string): Role {
  const def = getOp(op);
  if (!def || def.pure === false) return 'opaque';
  if (scalarOf(op)) return 'elementwise';
  if (reducerOf(op)) return 'reduction';
  if (def.fusion === 'matmul') return 'matmul';
  if (def.fusion === 'view') return 'view';
  return 'opaque';
}

/**
 * Whether a kernel's product takes matmul operands of these shapes: two matrices, stacks of
 * matrices with the same leading dims, or a stack and one matrix shared by all of its entries
 * (vmap's K seeds). The host product walks such operands as consecutive matrices; other batch
 * shapes (broadcast 1s) stay with the library's batched product.
 */
export function productFits(as: readonly (number | string)[], bs: readonly (number | string)[]): boolean {
  if (as.length < 2 || bs.length < 2) return false;
  if (as.length === 2 || bs.length === 2) return true;
  return as.length === bs.length && as.slice(0, -2).every((d, i) => String(d) === String(bs[i]));
}

/** Matmul operands' transposition flags. */
export function matmulFlags(attrs: Attrs): { transposeA: boolean; transposeB: boolean } {
  return { transposeA: attrs.transpose_a === true, transposeB: attrs.transpose_b === true };
}
