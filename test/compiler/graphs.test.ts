/**
 * Differential test over the whole graph library: every graph file in graphs/ compiles, and the
 * compiled program computes what the reference interpreter computes on the same inputs.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { symbolsOf } from '../../compiler/dims.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { initParams, interpret, type TensorMap } from '../../runtime/interpreter.ts';

const ROOT = join(import.meta.dirname, '..', '..', 'graphs');

function graphFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? graphFiles(p) : f.endsWith('.graph.json') ? [p] : [];
  });
}

/** Deterministic inputs: small positive floats (valid for logs and scales), index 0, false, and RNG keys. */
function inputsFor(g: ReturnType<typeof loadGraph>): TensorMap {
  const out: TensorMap = {};
  let seed = 1;
  for (const i of g.inputs) {
    const shape = i.type.shape.map((d) => (typeof d === 'number' ? d : symbolsOf(d).reduce((a) => a * 3, 1))) as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    if (i.type.dtype === 'float32') {
      const v = Float32Array.from({ length: n }, (_, k) => 0.05 + 0.9 * (((k + 1) * 0.618034 * seed) % 1));
      out[i.name] = tf.tensor(v, shape, 'float32');
    } else if (i.type.dtype === 'int32') {
      out[i.name] = shape.length === 1 && shape[0] === 2 ? tf.tensor1d([seed, 7], 'int32') : tf.zeros(shape, 'int32');
    } else out[i.name] = tf.zeros(shape, 'bool');
    seed++;
  }
  return out;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('every graph in graphs/: compiled == interpreted', () => {
  const files = graphFiles(ROOT);
  it('finds the library', () => expect(files.length).toBeGreaterThan(40));
  for (const file of files) {
    it(relative(ROOT, file), () => {
      const g = loadGraph(file);
      const inputs = inputsFor(g);
      const params = initParams(g, 3);
      const want = interpret(g, inputs, params);
      const got = compileProgram(g, { log: () => {} }).run(inputs, params);
      for (const [name, w] of Object.entries(want)) {
        const c = got[name]!;
        expect(c.shape, name).toEqual(w.shape);
        expect(c.dtype, name).toBe(w.dtype);
        const a = c.dataSync();
        const b = w.dataSync();
        for (let k = 0; k < a.length; k++) {
          // Compiled kernels round only where values are stored and use a float32-accurate tanh.
          const tol = 1e-4 + 1e-4 * Math.abs(b[k]!);
          if (!(Math.abs(a[k]! - b[k]!) <= tol || (Number.isNaN(a[k]!) && Number.isNaN(b[k]!))))
            expect.fail(`${name}[${k}]: compiled ${a[k]} vs interpreted ${b[k]}`);
        }
      }
      tf.dispose([...Object.values(inputs), ...Object.values(params), ...Object.values(want), ...Object.values(got)]);
    });
  }
});
