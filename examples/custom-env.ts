/**
 * A host env written in TypeScript, registered through the public API and trained with PPO.
 *
 *   node bin/run-ts.js examples/custom-env.ts [OUT_DIR]
 *
 * PointMass: a mass on a line, pushed by a force in [-1, 1], rewarded for staying near 0.
 * obs = [x, v]; v += 0.1 a; x += 0.1 v; reward = -(x² + 0.01 a²); the episode terminates when
 * |x| > 2 and is truncated after 100 steps. Each env starts at x ~ U(-1, 1), v = 0.
 * (From an installed package, import from 'tensorloom' instead of '../index.ts'.)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend, registerHostEnv, train, type HostEnv, type HostStep, type JsonValue } from '../index.ts';

export const MAX_STEPS = 100;

/** mulberry32: a small seeded generator whose whole state is one uint32 (easy to checkpoint). */
function uniform(state: Uint32Array, i: number): number {
  state[i] = (state[i]! + 0x6d2b79f5) >>> 0;
  let t = state[i]!;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

export class PointMass implements HostEnv {
  readonly x: Float64Array;
  readonly v: Float64Array;
  readonly t: Int32Array;
  readonly rng: Uint32Array;

  constructor(readonly numEnvs: number) {
    this.x = new Float64Array(numEnvs);
    this.v = new Float64Array(numEnvs);
    this.t = new Int32Array(numEnvs);
    this.rng = new Uint32Array(numEnvs);
  }

  private start(i: number): void {
    this.x[i] = 2 * uniform(this.rng, i) - 1;
    this.v[i] = 0;
    this.t[i] = 0;
  }

  private observe(i: number, out: Float32Array): void {
    out[2 * i] = this.x[i]!;
    out[2 * i + 1] = this.v[i]!;
  }

  reset(seed: number): Float32Array {
    const obs = new Float32Array(2 * this.numEnvs);
    for (let i = 0; i < this.numEnvs; i++) {
      this.rng[i] = (seed + i) >>> 0;
      this.start(i);
      this.observe(i, obs);
    }
    return obs;
  }

  step(actions: Float32Array | Int32Array): HostStep {
    const N = this.numEnvs;
    const out: HostStep = { obs: new Float32Array(2 * N), reward: new Float64Array(N), terminated: new Uint8Array(N), truncated: new Uint8Array(N), final_obs: new Float32Array(2 * N) };
    for (let i = 0; i < N; i++) {
      const a = Math.max(-1, Math.min(1, actions[i]!));
      this.v[i]! += 0.1 * a;
      this.x[i]! += 0.1 * this.v[i]!;
      this.t[i]! += 1;
      out.reward[i] = -(this.x[i]! ** 2 + 0.01 * a * a);
      out.terminated[i] = Math.abs(this.x[i]!) > 2 ? 1 : 0;
      out.truncated[i] = this.t[i]! >= MAX_STEPS ? 1 : 0;
      this.observe(i, out.final_obs);
      // Same-step auto-reset: the next observation is the new episode's first.
      if (out.terminated[i] || out.truncated[i]) this.start(i);
      this.observe(i, out.obs);
    }
    return out;
  }

  getState(): JsonValue {
    return { x: Array.from(this.x), v: Array.from(this.v), t: Array.from(this.t), rng: Array.from(this.rng) };
  }

  setState(state: JsonValue): void {
    const s = state as { x: number[]; v: number[]; t: number[]; rng: number[] };
    this.x.set(s.x);
    this.v.set(s.v);
    this.t.set(s.t);
    this.rng.set(s.rng);
  }
}

export function registerPointMass(): void {
  registerHostEnv('PointMass', {
    observationShape: [2],
    action: { kind: 'box', low: [-1], high: [1] },
    create: ({ numEnvs }) => new PointMass(numEnvs),
    doc: 'a point mass on a line, pushed towards 0',
  });
}

export const PIPELINE = join(import.meta.dirname, 'point-mass.json');

/** Trains examples/point-mass.json (2048 steps: 4 iterations) into `outDir`. */
export async function main(outDir: string) {
  registerPointMass();
  return train(PIPELINE, { outDir });
}

if (process.argv[1] === import.meta.filename) {
  const out = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'point-mass-'));
  await initBackend('wasm', () => {});
  const r = await main(out);
  for (const m of r.metrics) console.log(`iteration ${m.iteration}: ${m.global_step} steps, mean episode return ${m.episodic_return?.toFixed(2) ?? '-'}`);
  console.log(`evaluation: ${r.eval?.meanReturn?.toFixed(2)} over ${r.eval?.episodes} episodes; run folder ${out}`);
}
