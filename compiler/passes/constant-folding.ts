/**
 * Constant folding: an elementwise op whose inputs are all constants becomes a constant,
 * evaluated from the op's own kernel IR (the same body generated kernels use) in float64, rounded
 * to float32. Limited to small tensors without broadcasting, where it pays and stays exact.
 */
import { evalExpr, kir } from '../codegen/kir.ts';
import { flattenLiteral, literalShape } from '../ops/const.ts';
import { getOp } from '../ops/registry.ts';
import type { AttrValue, IRGraph, IRNode } from '../ir.ts';
import type { Pass } from './pass.ts';

const MAX_FOLD_ELEMENTS = 4096;

function constValues(n: IRNode | undefined): { shape: number[]; values: number[] } | undefined {
  if (!n || n.op !== 'const') return undefined;
  const shape = literalShape(n.attrs.value!);
  if (typeof shape === 'string') return undefined;
  const values = flattenLiteral(n.attrs.value!);
  // A float32 constant holds fround(value) at run time (0.99 is 0.9900000095...); folding from
  // the same operands makes the result bit-identical to the float32 kernels'.
  const dtype = n.type?.dtype ?? n.attrs.dtype ?? 'float32';
  return { shape, values: dtype === 'float32' ? values.map(Math.fround) : values };
}

function nest(values: number[], shape: number[]): AttrValue {
  if (shape.length === 0) return values[0]!;
  const [d, ...rest] = shape;
  const step = rest.reduce((a, b) => a * b, 1);
  return Array.from({ length: d! }, (_, i) => nest(values.slice(i * step, (i + 1) * step), rest));
}

export const constantFolding: Pass = {
  name: 'constant-folding',
  doc: 'evaluate elementwise ops on constant inputs at compile time',
  run(g: IRGraph) {
    const byId = new Map<string, IRNode>();
    let changed = false;
    const nodes = g.nodes.map((n) => {
      const def = getOp(n.op);
      let out = n;
      if (def?.fusion === 'elementwise' && def.scalar && def.pure !== false && n.inputs.length > 0 && n.type) {
        const ins = n.inputs.map((r) => constValues(byId.get(r)));
        const shape = n.type.shape;
        const size = shape.every((d) => typeof d === 'number') ? (shape as number[]).reduce((a, b) => a * b, 1) : Infinity;
        if (ins.every((c) => c && (c.values.length === 1 || c.values.length === size)) && size <= MAX_FOLD_ELEMENTS) {
          const body = def.scalar(n.inputs.map((r, i) => kir.load(i, byId.get(r)!.type?.dtype ?? 'float32')), n.attrs);
          const values: number[] = [];
          for (let i = 0; i < size; i++) {
            const v = evalExpr(body, ins.map((c) => (c!.values.length === 1 ? c!.values[0]! : c!.values[i]!)));
            values.push(n.type.dtype === 'float32' ? Math.fround(v) : n.type.dtype === 'int32' ? Math.trunc(v) | 0 : v ? 1 : 0);
          }
          const value = nest(n.type.dtype === 'bool' ? values.map((v) => (v ? 1 : 0)) : values, shape as number[]);
          if (values.every(Number.isFinite) || n.type.dtype === 'float32') {
            out = { id: n.id, op: 'const', inputs: [], attrs: { value: n.type.dtype === 'bool' ? boolNest(value) : value, dtype: n.type.dtype }, type: n.type, source: n.source };
            changed = true;
          }
        }
      }
      byId.set(out.id, out);
      return out;
    });
    return changed ? { ...g, nodes } : g;
  },
};

function boolNest(v: AttrValue): AttrValue {
  return Array.isArray(v) ? v.map(boolNest) : v === 1;
}
