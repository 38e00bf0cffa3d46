/** Tensors <-> JSON (nested arrays), with errors that name the file, the pointer and the input. */
import * as tf from '@tensorflow/tfjs';
import { flattenLiteral, literalShape } from '../compiler/ops/const.ts';
import { LoomError, joinPointer } from '../compiler/errors.ts';
import type { AttrValue, IRGraph } from '../compiler/ir.ts';
import { seedKey, foldIn, toInt32 } from '../compiler/ops/threefry.ts';

/**
 * Builds input tensors from a JSON object {name: nested array}. Inputs of type int32[2] that are
 * not given are treated as RNG keys and derived from `seed` (documented in the README).
 */
export function inputsFromJson(g: IRGraph, json: unknown, file: string, seed: number): Record<string, tf.Tensor> {
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new LoomError({ code: 'E_INPUT', message: 'the inputs file must hold a JSON object {inputName: value}', file, pointer: '', found: Array.isArray(json) ? 'array' : typeof json });
  const obj = json as Record<string, unknown>;
  const out: Record<string, tf.Tensor> = {};
  try {
    g.inputs.forEach((i, k) => {
      const v = obj[i.name];
      const pointer = joinPointer('', i.name);
      if (v === undefined) {
        if (i.type.dtype === 'int32' && i.type.shape.length === 1 && i.type.shape[0] === 2) {
          out[i.name] = tf.tensor1d(toInt32(foldIn(seedKey(seed), k)), 'int32');
          return;
        }
        throw new LoomError({ code: 'E_INPUT', message: `missing input "${i.name}"`, file, pointer, expected: `${i.type.dtype}[${i.type.shape.join(', ')}]` });
      }
      const shape = literalShape(v as AttrValue);
      if (typeof shape === 'string') throw new LoomError({ code: 'E_INPUT', message: `input "${i.name}": ${shape}`, file, pointer });
      const flat = flattenLiteral(v as AttrValue);
      if (flat.some((x) => typeof x !== 'number' || !Number.isFinite(x)) && i.type.dtype !== 'float32')
        throw new LoomError({ code: 'E_INPUT', message: `input "${i.name}" must hold finite numbers`, file, pointer });
      if (i.type.dtype === 'int32' && flat.some((x) => !Number.isInteger(x)))
        throw new LoomError({ code: 'E_INPUT', message: `input "${i.name}" is int32 but holds non-integers`, file, pointer });
      out[i.name] = tf.tensor(flat, shape, i.type.dtype);
    });
    for (const k of Object.keys(obj))
      if (!g.inputs.some((i) => i.name === k))
        throw new LoomError({ code: 'E_INPUT', message: `unexpected input "${k}"`, file, pointer: joinPointer('', k), expected: g.inputs.map((i) => i.name).join(', ') || 'no inputs' });
  } catch (e) {
    for (const t of Object.values(out)) t.dispose();
    throw e;
  }
  return out;
}

export function tensorToJson(t: tf.Tensor): unknown {
  const v = t.arraySync();
  return t.dtype === 'bool' ? mapNested(v, (x) => x !== 0) : v;
}

function mapNested(v: unknown, f: (x: number) => unknown): unknown {
  return Array.isArray(v) ? v.map((x) => mapNested(x, f)) : f(v as number);
}

/** JSON with arrays of numbers kept on one line, so tensors stay readable. */
export function compactJson(v: unknown, indent = ''): string {
  if (Array.isArray(v)) {
    if (v.every((x) => !Array.isArray(x) && (x === null || typeof x !== 'object'))) return `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
    const inner = indent + '  ';
    return `[\n${v.map((x) => inner + compactJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  if (v !== null && typeof v === 'object') {
    const inner = indent + '  ';
    const entries = Object.entries(v as Record<string, unknown>).map(([k, x]) => `${inner}${JSON.stringify(k)}: ${compactJson(x, inner)}`);
    return entries.length ? `{\n${entries.join(',\n')}\n${indent}}` : '{}';
  }
  return JSON.stringify(v);
}
