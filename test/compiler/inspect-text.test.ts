/**
 * The text views of graphs (signature, IR, diff, kernel headers) escape the names they quote
 * from files, whatever sink they are printed to.
 */
import { describe, expect, it } from 'vitest';
import { compileGraph } from '../../compiler/compile.ts';
import { graphDiff, graphDiffText, irText, kernelsText, signature, stagesText } from '../../compiler/inspect.ts';
import { loadGraphJson, memoryFiles } from '../../compiler/frontend/load.ts';
import { expectSafeOutput, HOSTILE } from '../helpers/hostile.ts';

const callee = { version: 1, graph: HOSTILE, inputs: { x: { shape: [2, 3] } }, params: { w: { shape: [3, 2] } }, nodes: [{ id: 'h', op: 'matmul', in: ['x', 'w'] }, { id: 'y', op: 'tanh', in: ['h'] }], outputs: { y: 'y' } };
const files = memoryFiles({
  [`/virtual/${HOSTILE}/callee.graph.json`]: callee,
  [`/virtual/${HOSTILE}/callee\u202e2.graph.json`]: { ...callee, graph: `${HOSTILE}2` },
});
const load = (op: string, calleeFile = 'callee.graph.json') =>
  loadGraphJson(
    { version: 1, graph: HOSTILE, inputs: { x: { shape: [2, 3] } }, nodes: [{ id: 'c', op: 'call', graph: calleeFile, in: { x: 'x' } }, { id: 'y', op, in: ['c.y'] }], outputs: { y: 'y' } },
    `/virtual/${HOSTILE}/t.graph.json`,
    { files },
  );

describe('text views of a graph with a hostile name and path', () => {
  const g = load('tanh');
  it('signature', () => expectSafeOutput(signature(g)));
  it('irText', () => expectSafeOutput(irText(g)));
  it('graphDiffText', () => {
    const d = graphDiffText(graphDiff(g, load('sigmoid', 'callee\u202e2.graph.json')));
    expect(d.length).toBeGreaterThan(0);
    expectSafeOutput(d.join('\n'));
  });
  it('compiled IR, stages and kernels', () => {
    const { graph, stages } = compileGraph(g);
    expectSafeOutput(stagesText(stages) + irText(graph));
    expectSafeOutput(kernelsText(graph, new Map()));
  });
});
