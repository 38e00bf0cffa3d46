/** The ShapeCtx handed to op shape rules, bound to one node so its failures name it. */
import { canonDim, dimEq, isStatic, showShape, type Dim, type Shape } from '../dims.ts';
import { LoomError, type ErrorCode } from '../errors.ts';
import type { DType, SourceLoc, TensorType } from '../ir.ts';
import type { ShapeCtx } from '../ops/registry.ts';

export interface NodeLoc {
  node?: string;
  source?: SourceLoc;
  op?: string;
}

export function makeShapeCtx(loc: NodeLoc, boundSymbols: ReadonlySet<string> = new Set()): ShapeCtx {
  const fail = (code: ErrorCode, message: string, expected?: string, found?: string): never => {
    throw new LoomError({
      code,
      message: loc.op ? `${loc.op}: ${message}` : message,
      file: loc.source?.file,
      pointer: loc.source?.pointer,
      node: loc.node,
      expected,
      found,
    });
  };
  const unify = (a: Dim, b: Dim, what: string): Dim => {
    if (dimEq(a, b)) return isStatic(a) ? a : canonDim(b);
    return fail('E_SHAPE', `${what}: dimensions differ`, String(a), String(b));
  };
  const broadcast = (...shapes: Shape[]): Shape => {
    const rank = Math.max(0, ...shapes.map((s) => s.length));
    const out: Dim[] = [];
    for (let i = 0; i < rank; i++) {
      let d: Dim = 1;
      for (const s of shapes) {
        const k = s.length - rank + i;
        if (k < 0) continue;
        const e = s[k]!;
        if (e === 1) continue;
        if (d === 1) d = canonDim(e);
        else if (!dimEq(d, e))
          fail(
            'E_SHAPE',
            `shapes are not broadcast-compatible (axis ${i - rank} has ${d} vs ${e})`,
            'equal dims or 1 on each axis (NumPy broadcasting)',
            shapes.map(showShape).join(' and '),
          );
      }
      out.push(d);
    }
    return out;
  };
  return {
    fail,
    unify,
    broadcast,
    axis(axis: number, rank: number): number {
      // A scalar has no axis at all: ops that accept one check the rank first.
      if (!Number.isInteger(axis) || axis < -rank || axis >= rank)
        fail('E_AXIS', `axis ${axis} is out of range for a rank-${rank} tensor`, rank === 0 ? 'no axis (a scalar has none)' : `an axis in [${-rank}, ${rank - 1}]`, String(axis));
      return axis < 0 ? axis + rank : axis;
    },
    dtype(t: TensorType, allowed: readonly DType[], what: string): DType {
      if (!allowed.includes(t.dtype)) fail('E_DTYPE', `${what} has the wrong dtype`, allowed.join(' | '), t.dtype);
      return t.dtype;
    },
    sameDtype(ts: TensorType[]): DType {
      const first = ts[0]!.dtype;
      for (const t of ts)
        if (t.dtype !== first)
          fail('E_DTYPE', 'inputs must share a dtype (insert a cast)', `all ${first}`, ts.map((x) => x.dtype).join(', '));
      return first;
    },
    isBound: (s) => boundSymbols.has(s),
  };
}
