/**
 * Differential test over the whole graph library: every graph file in graphs/ compiles, and the
 * compiled program computes what the reference interpreter computes on the same inputs; the long
 * closed-loop iterations and evaluations (LONG_CLOSED_LOOP) are left to test/programs/shipped.test.ts,
 * which runs them on real state, while their stage bodies are checked here.
 */
import { relative } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGraph } from '../../compiler/frontend/load.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { initParams, interpret } from '../../runtime/interpreter.ts';
import { graphFiles, GRAPHS_ROOT, inputsFor, LONG_CLOSED_LOOP } from '../helpers/library-graphs.ts';
import { expectCompiledClose } from '../helpers/mismatch.ts';

const ROOT = GRAPHS_ROOT;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('every graph in graphs/: compiled == interpreted', () => {
  const files = graphFiles(ROOT);
  it('finds the library', () => expect(files.length).toBeGreaterThan(40));
  for (const file of files) {
    if (LONG_CLOSED_LOOP.has(relative(ROOT, file))) continue;
    it(relative(ROOT, file), () => {
      const g = loadGraph(file);
      const inputs = inputsFor(g);
      const params = initParams(g, 3);
      const want = interpret(g, inputs, params);
      const got = compileProgram(g, { log: () => {} }).run(inputs, params);
      expectCompiledClose(got, want);
      tf.dispose([...Object.values(inputs), ...Object.values(params), ...Object.values(want), ...Object.values(got)]);
    });
  }
});
