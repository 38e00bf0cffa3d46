/**
 * Batching rules for the vmap pass, shared by the op families: each turns a node whose inputs
 * may carry a leading batch axis into ops over the whole batch at once (never a loop). An op
 * names its rule in `OpDef.batch`; batchRuleOf derives one from the fusion class and the
 * attributes where that is sound, so most ops need nothing.
 */
import type { Attrs } from '../ir.ts';
import type { BatchArgs, BatchBuilder, BatchResult, OpDef } from './registry.ts';

type Rule = (b: BatchBuilder, a: BatchArgs) => BatchResult;

/** A per-instance axis as an axis of the batched value: non-negative axes move by one, negative ones count from the end and stay. */
export function shiftAxis(ax: number): number {
  return ax < 0 ? ax : ax + 1;
}

const batchedValue = (value: string): BatchResult => ({ value, batched: true });

/** Every input batched (unbatched ones repeated along the batch axis). */
export function allBatched(b: BatchBuilder, a: BatchArgs): string[] {
  return a.inputs.map((x, i) => (a.batched[i] ? x : b.materialize(x)));
}

/**
 * NumPy-broadcasting ops (elementwise, and matmul's batch dims): batched inputs of a lower
 * per-instance rank than the output get size-1 axes after the batch axis, so that their own
 * axes still align from the end; unbatched inputs broadcast over the batch axis as they are.
 */
export const broadcastingBatch: Rule = (b, a) => {
  const rank = a.outType.shape.length;
  const ins = a.inputs.map((x, i) => (a.batched[i] ? b.padRank(x, rank) : x));
  return batchedValue(b.op(a.op, ins, a.attrs));
};

/** Ops that treat every leading axis as a batch axis (categorical, one_hot...): the same op over all inputs batched. */
export const leadingBatch: Rule = (b, a) => batchedValue(b.op(a.op, allBatched(b, a), a.attrs));

/** Reductions over `axes` (absent: all axes, which becomes all but the batch axis). */
export function axesBatch(resultBatched = true): Rule {
  return (b, a) => {
    const x = a.inputs[0]!;
    const rank = b.type(x).shape.length - 1;
    const raw = a.attrs.axes;
    const axes = raw === undefined ? [...Array(rank).keys()] : typeof raw === 'number' ? [raw] : (raw as number[]);
    const attrs: Attrs = { ...a.attrs, axes: axes.map(shiftAxis) };
    return { value: b.op(a.op, [a.batched[0] ? x : b.materialize(x)], attrs), batched: resultBatched };
  };
}

/** Ops with one `axis` attribute (softmax, argmax, concat, stack...); every input batched. */
export function axisBatch(defaultAxis: number): Rule {
  return (b, a) => {
    const ax = (a.attrs.axis as number | undefined) ?? defaultAxis;
    return batchedValue(b.op(a.op, allBatched(b, a), { ...a.attrs, axis: shiftAxis(ax) }));
  };
}

/** The rule an op batches with: its own, or the default of its class; undefined: no batched form. */
export function batchRuleOf(def: OpDef): Rule | undefined {
  if (def.batch) return def.batch;
  const props = def.attrs.properties;
  if (def.fusion === 'elementwise' && !('shape' in props)) return broadcastingBatch;
  if (def.fusion === 'reduction' && 'axes' in props) return axesBatch();
  return undefined;
}
