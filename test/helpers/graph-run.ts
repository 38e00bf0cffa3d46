/** Loading algorithm graphs the way pipelines configure them, and running them on plain numbers. */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { loadGraphJson } from '../../compiler/frontend/load.ts';
import type { IRGraph } from '../../compiler/ir.ts';
import { interpret, type TensorMap } from '../../runtime/interpreter.ts';
import { patchHp } from '../../runtime/pipeline/config.ts';

type Json = { nodes: { id: string; op: string; attrs?: Record<string, unknown> }[] };

/** Loads a graph file with `hp_*` const values overridden (as pipelines do) and/or attrs of named nodes. */
export function loadWithHp(path: string, hp: Record<string, number> = {}, attrs: Record<string, Record<string, unknown>> = {}): IRGraph {
  const json = patchHp(JSON.parse(readFileSync(path, 'utf8')), hp, true, path, '') as Json;
  for (const [id, a] of Object.entries(attrs)) Object.assign(json.nodes.find((x) => x.id === id)!.attrs!, a);
  return loadGraphJson(json, path);
}

/** Runs a graph on plain numbers and nested arrays with the interpreter; every tensor is disposed. */
export function runPlain(g: IRGraph, inputs: Record<string, number | number[] | number[][]>): Record<string, number[]> {
  const t: TensorMap = {};
  for (const [k, v] of Object.entries(inputs)) t[k] = tf.tensor(v);
  const out = interpret(g, t, {});
  const res: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(out)) res[k] = Array.from(v.dataSync());
  tf.dispose([...Object.values(t), ...Object.values(out)]);
  return res;
}
