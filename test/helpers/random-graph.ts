/**
 * Random well-typed graphs for differential tests (compiled vs interpreted, on every backend):
 * fuzzed instructions each pick an op and operands by index, so fast-check can shrink them.
 */
import fc from 'fast-check';
import * as tf from '@tensorflow/tfjs';
import type { TensorMap } from '../../runtime/interpreter.ts';

/** A static size or a symbolic one ("B", or a product such as "3*B" after a flatten). */
type Dim = number | string;
interface Val {
  ref: string;
  shape: Dim[];
  dtype: 'float32' | 'int32' | 'bool';
}

function flatDim(shape: Dim[]): Dim {
  const coef = shape.reduce<number>((a, d) => (typeof d === 'number' ? a * d : a), 1);
  const syms = shape.filter((d): d is string => typeof d === 'string');
  if (syms.length === 0) return coef;
  return coef === 1 ? syms.join('*') : `${coef}*${syms.join('*')}`;
}
export interface Instr {
  op: number;
  a: number;
  b: number;
  c: number;
  attr: number;
}

function broadcast(x: Dim[], y: Dim[]): Dim[] | undefined {
  const n = Math.max(x.length, y.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const a = x[x.length - n + i] ?? 1;
    const b = y[y.length - n + i] ?? 1;
    if (a === b || b === 1) out.push(a);
    else if (a === 1) out.push(b);
    else return undefined;
  }
  return out;
}
const sameShape = (x: Dim[], y: Dim[]) => x.length === y.length && x.every((d, i) => d === y[i]);

const UNARY = ['neg', 'abs', 'tanh', 'sigmoid', 'sin', 'cos', 'relu', 'softplus', 'square', 'identity', 'floor'];
const BINARY = ['add', 'sub', 'mul', 'maximum', 'minimum'];
const REDUCE = ['sum', 'mean', 'max', 'min'];

/**
 * Builds a well-typed graph from fuzzed instructions (each picks an op and operands by index).
 * `smooth` leaves out the piecewise-constant paths (floor, integer casts), whose ties make
 * subgradient conventions differ between tfjs and the registry's rules.
 */
export function buildGraph(instrs: Instr[], smooth = false): Record<string, unknown> {
  const vals: Val[] = [
    { ref: 'x', shape: ['B', 3], dtype: 'float32' },
    { ref: 'y', shape: [3], dtype: 'float32' },
    { ref: 'z', shape: ['B', 1], dtype: 'float32' },
    { ref: 'p', shape: ['B', 3], dtype: 'float32' },
    { ref: 's', shape: [], dtype: 'float32' },
  ];
  const nodes: Record<string, unknown>[] = [];
  let k = 0;
  const add = (op: string, ins: (string | number)[], shape: Dim[], attrs?: Record<string, unknown>, dtype: Val['dtype'] = 'float32'): Val => {
    const id = `n${k++}`;
    nodes.push(attrs ? { id, op, in: ins, attrs } : { id, op, in: ins });
    const v = { ref: id, shape, dtype };
    vals.push(v);
    return v;
  };
  const floats = () => vals.filter((v) => v.dtype === 'float32');
  for (const ins of instrs) {
    const fl = floats();
    const va = fl[ins.a % fl.length]!;
    const vb = fl[ins.b % fl.length]!;
    const vc = fl[ins.c % fl.length]!;
    switch (ins.op % 11) {
      case 0:
      case 1: {
        const op = UNARY[ins.attr % UNARY.length]!;
        add(smooth && op === 'floor' ? 'tanh' : op, [va.ref], va.shape);
        break;
      }
      case 2:
      case 3: {
        const s = broadcast(va.shape, vb.shape);
        if (s) add(BINARY[ins.attr % BINARY.length]!, [va.ref, vb.ref], s);
        else add('tanh', [va.ref], va.shape);
        break;
      }
      case 4: {
        // A safe division: va / (1.5 + |vb|).
        const s = broadcast(va.shape, vb.shape);
        if (!s) break;
        const d = add('add', [1.5, add('abs', [vb.ref], vb.shape).ref], vb.shape);
        add('div', [va.ref, d.ref], s);
        break;
      }
      case 5: {
        const s = broadcast(broadcast(va.shape, vb.shape) ?? [0], vc.shape);
        if (!s || s.includes(0)) break;
        const cond = add(ins.attr % 2 ? 'greater' : 'less_equal', [va.ref, vb.ref], broadcast(va.shape, vb.shape)!, undefined, 'bool');
        add('where', [cond.ref, va.ref, vc.ref], s);
        break;
      }
      case 6: {
        const r = va.shape.length;
        const keepdims = ins.b % 2 === 1;
        const all = r === 0 || ins.c % 3 === 0;
        const axes = all ? [...Array(r).keys()] : [ins.c % r];
        const shape = va.shape.flatMap((d, i) => (axes.includes(i) ? (keepdims ? [1] : []) : [d])) as Dim[];
        add(REDUCE[ins.attr % REDUCE.length]!, [va.ref], shape, all ? { keepdims } : { axes, keepdims });
        break;
      }
      case 7: {
        const r = va.shape.length;
        const pick = ins.attr % 3;
        if (pick === 0) {
          const axis = ins.b % (r + 1);
          const shape = [...va.shape];
          shape.splice(axis, 0, 1);
          add('expand_dims', [va.ref], shape, { axis });
        } else if (pick === 1 && va.shape.includes(1)) {
          add('squeeze', [va.ref], va.shape.filter((d) => d !== 1));
        } else if (r === 2 && va.shape[1] === 3) {
          add('matmul', [va.ref, 'q'], [va.shape[0]!, 2]);
        } else add('reshape', [va.ref], [flatDim(va.shape)], { shape: [-1] });
        break;
      }
      case 8: {
        if (broadcast(va.shape, vb.shape) && sameShape(broadcast(va.shape, vb.shape)!, vb.shape) && !sameShape(va.shape, vb.shape)) {
          add(ins.attr % 2 ? 'broadcast_like' : 'sum_to', ins.attr % 2 ? [va.ref, vb.ref] : [vb.ref, va.ref], ins.attr % 2 ? vb.shape : va.shape);
        } else add('sin', [va.ref], va.shape);
        break;
      }
      case 9: {
        if (smooth) break;
        // Through int32 and back: trunc(4 * va) as an integer, plus one.
        const m = add('mul', [va.ref, 4], va.shape);
        const i = add('cast', [m.ref], va.shape, { dtype: 'int32' }, 'int32');
        const c1 = add('const', [], [], { value: 1, dtype: 'int32' }, 'int32');
        const one = add('add', [i.ref, c1.ref], va.shape, undefined, 'int32');
        add('cast', [one.ref], va.shape, { dtype: 'float32' });
        break;
      }
      case 10: {
        // A dense layer: matmul by q [3, 2], a scalar bias, an activation.
        const m = fl.filter((v) => v.shape.length === 2 && v.shape[1] === 3);
        const src = m[ins.a % Math.max(1, m.length)] ?? vals[0]!;
        const h = add('matmul', [src.ref, 'q'], [src.shape[0]!, 2]);
        const z = add('add', [h.ref, 's'], h.shape);
        add(UNARY[ins.attr % UNARY.length]!, [z.ref], z.shape);
        break;
      }
    }
  }
  // Outputs: the last two values made, and one picked by the first instruction.
  const made = vals.slice(5);
  const outs = [...new Set([made[made.length - 1], made[made.length - 2], made[(instrs[0]?.c ?? 0) % Math.max(1, made.length)]].filter(Boolean).map((v) => v!.ref))];
  return {
    graph: 'random',
    inputs: { x: { shape: ['B', 3] }, y: { shape: [3] }, z: { shape: ['B', 1] }, p: { shape: ['B', 3] }, s: { shape: [] }, q: { shape: [3, 2] } },
    nodes,
    outputs: Object.fromEntries(outs.map((r, i) => [`o${i}`, r])),
  };
}

export const instrArb = fc.record({ op: fc.nat(99), a: fc.nat(99), b: fc.nat(99), c: fc.nat(99), attr: fc.nat(99) });

export function randomInputs(b: number, seed: number): TensorMap {
  const u = (shape: number[], k: number) => tf.randomUniform(shape, -2, 2, 'float32', seed * 7 + k);
  return { x: u([b, 3], 1), y: u([3], 2), z: u([b, 1], 3), p: u([b, 3], 4), s: u([], 5), q: u([3, 2], 6) };
}
