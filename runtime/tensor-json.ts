/** Tensors <-> JSON (nested arrays), with errors that name the file, the pointer and the input. */
import * as tf from '@tensorflow/tfjs';
import { flattenLiteral, literalShape } from '../compiler/ops/const.ts';
import { LoomError, joinPointer } from '../compiler/errors.ts';
import type { AttrValue, DType, IRGraph } from '../compiler/ir.ts';
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
      const value = checkedValue(v, i.type.dtype, i.name, file, pointer);
      const shape = literalShape(value);
      if (typeof shape === 'string') throw new LoomError({ code: 'E_INPUT', message: `input "${i.name}": ${shape}`, file, pointer });
      out[i.name] = tf.tensor(flattenLiteral(value), shape, i.type.dtype);
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

/**
 * JSON has no literal for NaN or the infinities (JSON.stringify writes null). They are written as
 * these strings, which Python's json and JavaScript's Number() read back, and `--inputs` accepts
 * them for float32 inputs, so an output file can be fed back as inputs.
 */
const NON_FINITE: Readonly<Record<string, number>> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
const FLOAT32_MAX = 3.4028234663852886e38;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * A copy of an input's nested array in which every number is checked against the dtype (an error
 * names the element's JSON pointer) and the strings of NON_FINITE are numbers. Walked without
 * recursion, since the nesting is the file's to choose.
 */
function checkedValue(v: unknown, dtype: DType, name: string, file: string, pointer: string): AttrValue {
  const fail = (message: string, at: string, expected: string, found: string): never => {
    throw new LoomError({ code: 'E_INPUT', message: `input "${name}": ${message}`, file, pointer: at, expected, found });
  };
  const element = (x: unknown, at: string): unknown => {
    if (typeof x === 'string') {
      if (dtype === 'float32' && Object.hasOwn(NON_FINITE, x)) return NON_FINITE[x];
      const shown = JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}...` : x);
      return fail(`${shown} is not a number`, at, dtype === 'float32' ? 'a number, or "NaN", "Infinity" or "-Infinity"' : `a number (${dtype})`, shown);
    }
    if (typeof x !== 'number') return x; // booleans and anything else: literalShape decides
    if (!Number.isFinite(x))
      return fail('the number is too large: it reads as Infinity', at, dtype === 'float32' ? 'a finite number, or the string "Infinity" or "-Infinity"' : `a finite ${dtype}`, String(x));
    if (dtype === 'int32' && !Number.isInteger(x)) return fail('int32 values must be integers', at, 'an integer', String(x));
    if (dtype === 'int32' && (x < INT32_MIN || x > INT32_MAX)) return fail('the number is out of the int32 range', at, `an integer from ${INT32_MIN} to ${INT32_MAX}`, String(x));
    if (dtype === 'float32' && Math.abs(x) > FLOAT32_MAX)
      return fail('the number is beyond float32 range: it would become an infinity', at, `at most ${FLOAT32_MAX} in magnitude, or the string "Infinity" or "-Infinity"`, String(x));
    return x;
  };
  const root: Record<string | number, unknown> = {};
  const todo: [unknown, Record<string | number, unknown>, string | number, string][] = [[v, root, 'v', pointer]];
  while (todo.length > 0) {
    const [x, parent, key, at] = todo.pop()!;
    if (Array.isArray(x)) {
      const copy: unknown[] = new Array(x.length);
      parent[key] = copy;
      // Pushed last to first, so the first bad element in document order is reported.
      for (let k = x.length - 1; k >= 0; k--) todo.push([x[k], copy as unknown as Record<number, unknown>, k, joinPointer(at, k)]);
    } else parent[key] = element(x, at);
  }
  return root.v as AttrValue;
}

/**
 * A tensor as nested arrays; NaN and the infinities become the strings of NON_FINITE. `values`:
 * the tensor's `await t.array()`, where it cannot be read synchronously (webgpu).
 */
export function tensorToJson(t: tf.Tensor, values?: unknown): unknown {
  const v = values ?? t.arraySync();
  if (t.dtype === 'bool') return mapNested(v, (x) => x !== 0);
  return t.dtype === 'float32' ? mapNested(v, (x) => (Number.isFinite(x) ? x : String(x))) : v;
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
