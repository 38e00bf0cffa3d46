import { describe, expect, it } from 'vitest';
import { showType } from '../../compiler/ir.ts';
import { graph, key, r32, step } from './harness.ts';

/** The documented interface (docs/environments.md): [state size, obs size, action type]. */
const ENVS: Record<string, [number, number, string]> = {
  cartpole: [4, 4, 'int32[N]'],
  acrobot: [4, 6, 'int32[N]'],
  pendulum: [2, 3, 'float32[N, 1]'],
  mountaincar_continuous: [2, 2, 'float32[N, 1]'],
};

describe('env graph interface', () => {
  for (const [env, [S, O, action]] of Object.entries(ENVS)) {
    it(`${env}: step and reset graphs have the uniform signature`, () => {
      const st = graph(`${env}.step.graph.json`);
      const ins = Object.fromEntries(st.inputs.map((i) => [i.name, showType(i.type)]));
      expect(ins).toEqual({ state: `float32[N, ${S}]`, t: 'int32[N]', action, key: 'int32[2]' });
      expect(st.params).toEqual([]);
      const outTypes = (g: typeof st) => {
        const types = new Map(g.nodes.flatMap((n) => [
          ...(n.type ? [[n.id, n.type] as const] : []),
          ...Object.entries(n.outputTypes ?? {}).map(([o, t]) => [`${n.id}.${o}`, t] as const),
        ]));
        return Object.fromEntries(Object.entries(g.outputs).map(([k, ref]) => [k, showType(types.get(ref)!)]));
      };
      expect(outTypes(st)).toEqual({
        state: `float32[N, ${S}]`,
        t: 'int32[N]',
        obs: `float32[N, ${O}]`,
        reward: 'float32[N]',
        terminated: 'bool[N]',
        truncated: 'bool[N]',
        final_obs: `float32[N, ${O}]`,
      });
      const rs = graph(`${env}.reset.graph.json`);
      expect(Object.fromEntries(rs.inputs.map((i) => [i.name, showType(i.type)]))).toEqual({ key: 'int32[2]', like: 'int32[N]' });
      expect(outTypes(rs)).toEqual({ state: `float32[N, ${S}]`, t: 'int32[N]', obs: `float32[N, ${O}]` });
    });
  }

  it('envs of a batch step independently: a cloned state branches identically', () => {
    // Hybrid GRPO branches by copying state rows; each copy must evolve as the original alone.
    const s = r32([0.2, -0.1, 0.5, 1.0]);
    const other = r32([-1.0, 2.0, -2.0, 3.0]);
    const alone = step('acrobot', [s], [3], [2], key(1, 1));
    const batch = step('acrobot', [other, s, s, other], [0, 3, 3, 0], [0, 2, 2, 1], key(1, 1));
    expect(batch.state[1]).toEqual(alone.state[0]);
    expect(batch.state[2]).toEqual(alone.state[0]);
    expect(batch.reward[1]).toBe(alone.reward[0]);
  });
});
