/** The executor's recompilation note names the graph escaped: it may go straight to stderr. */
import { expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import '../../compiler/ops/index.ts';
import { compileProgram } from '../../runtime/exec.ts';
import { inlineGraph } from '../helpers/inline-graph.ts';
import { expectSafeOutput, HOSTILE } from '../helpers/hostile.ts';

await tf.setBackend('cpu');

it('a recompilation of a hostile-named graph logs one printable line', () => {
  const g = inlineGraph({ graph: HOSTILE, inputs: { x: { shape: ['N'] } }, nodes: [{ id: 'a', op: 'exp', in: ['x'] }], outputs: { a: 'a' } });
  const logs: string[] = [];
  const prog = compileProgram(g, { log: (m) => logs.push(m) });
  for (const n of [3, 5]) tf.dispose(Object.values(prog.run({ x: tf.zeros([n]) }, {})));
  expect(logs).toHaveLength(1);
  expect(logs[0]).toContain('recompiled \\x1b[2Jevil');
  expectSafeOutput(logs[0]!);
  expect(logs[0]).not.toContain('\n');
});
