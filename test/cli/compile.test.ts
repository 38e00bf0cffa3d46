import { describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';

async function compile(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['compile', ...args], { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join(''), err: err.join('') };
}

describe('loom compile --emit', () => {
  it('ir prints the graph as loaded, with calls and grads', async () => {
    const r = await compile('graphs/examples/mlp-loss-grad.graph.json', '--emit', 'ir');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/%net = call\(%obs.*\{graph="..\/nets\/mlp.graph.json"\}/);
    expect(r.out).toMatch(/%g = grad\(%loss\)/);
  });

  it('opt shows each pass and an IR without calls, grads or fused nodes', async () => {
    const r = await compile('graphs/examples/mlp-loss-grad.graph.json', '--emit', 'opt');
    expect(r.out).toMatch(/^inline +5 -> 12 +add \+3, call -1, matmul \+3, tanh \+2$/m);
    expect(r.out).toMatch(/^fusion +disabled/m);
    expect(r.out).not.toMatch(/= (call|grad|fused)\(/);
  });

  it('fused shows matmul epilogues on the MLP and fused groups on the PPO loss', async () => {
    const mlp = await compile('graphs/nets/mlp.graph.json', '--emit', 'fused');
    expect(mlp.out.match(/= fused\(.*\{kind="matmul"\}/g)).toHaveLength(3);
    expect(mlp.out).toMatch(/\| %a1 = tanh\(%z1\)/);
    const ppo = await compile('graphs/algorithms/ppo-cartpole.loss.graph.json', '--emit', 'fused');
    const m = /^fusion +(\d+) -> (\d+) /m.exec(ppo.out)!;
    expect(Number(m[2])).toBeLessThan(Number(m[1]) / 2);
    expect(ppo.out).toMatch(/kind="elementwise"/);
    expect(ppo.out).toMatch(/kind="reduction"/);
  });

  it('ts prints the generated kernels at the given sizes, sharing identical ones', async () => {
    const r = await compile('graphs/nets/mlp.graph.json', '--emit', 'ts', '--dim', 'B=16');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/function loom_\w+\(in0: Float32Array/);
    expect(r.out).toMatch(/for \(let i0 = 0; i0 < 16; i0\+\+\)/);
    expect(r.out).toMatch(/fused#1: matmul -> add -> tanh: the same kernel as fused#0/);
  });

  it('ts --product-epilogue lowers as on wasm: the product applies the bias add and tanh, the loop reads them', async () => {
    const plain = await compile('graphs/nets/mlp.graph.json', '--emit', 'ts', '--dim', 'B=16');
    const r = await compile('graphs/nets/mlp.graph.json', '--emit', 'ts', '--dim', 'B=16', '--product-epilogue');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/fused#0: matmul -> add -> tanh \(the product applies the bias add and tanh\)/);
    expect(plain.out).not.toMatch(/the product applies/);
    // The loops no longer call tanh.
    expect(plain.out).toMatch(/= loom_tanh32\(/);
    expect(r.out).not.toMatch(/= loom_tanh32\(/);
  });

  it('wgsl prints one compute shader per output of each fused kernel, at the given sizes', async () => {
    const r = await compile('graphs/nets/mlp.graph.json', '--emit', 'wgsl', '--dim', 'B=100');
    expect(r.code).toBe(0);
    // 100 x 64 outputs in workgroups of 64: 100 groups; the product is a buffer the shader reads.
    expect(r.out).toMatch(/\/\/ output 0 \(float32\[100, 64\]\): shader \w+, 6400 invocations, dispatch 100x1x1, bindings 0: result, 1: x0 = input \d, 2: x1 = the product/);
    expect(r.out).toMatch(/fn loom_value\(index: i32\) -> f32 \{/);
    expect(r.out).toMatch(/@compute @workgroup_size\(64\)/);
    expect(r.out).toMatch(/loom_tanh\(/);
    expect(r.out).toMatch(/fused#1: matmul -> add -> tanh: the same kernel as fused#0/);
  });

  it('wat prints one WebAssembly module of the kernels the wasm backend runs as SIMD, and says why the others stay JavaScript', async () => {
    const r = await compile('graphs/programs/ppo-cartpole/update-step.graph.json', '--emit', 'wat', '--dim', 'MB=128', '--dim', 'B=512', '--product-epilogue');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\(module\n\(import "env" "memory" \(memory 0\)\)/);
    // Adam over the 9155 parameters: 2288 vectors of 4 and a tail of 3.
    expect(r.out).toMatch(/;; fused#\d+: mul -> mul -> mul -> add -> mul -> square -> mul -> add -> sqrt -> div -> add -> div -> mul -> sub\n\(func \$loom_wasm_\w+/);
    expect(r.out).toMatch(/\(i32\.const 9152\)/);
    expect(r.out).toMatch(/f32x4\.sqrt/);
    // The backward product's column sum renders; the sum of squares over everything stays JS.
    expect(r.out).toMatch(/;; fused#\d+: matmul -> mul -> sum_to\n\(func /);
    expect(r.out).toMatch(/;; fused#\d+: square -> sum: stays JavaScript \(value \d+ reduces \(sum\) over the innermost loop/);
    const { default: loadWabt } = await import('wabt');
    const parsed = (await loadWabt()).parseWat('update-step.wat', r.out, { simd: true });
    expect(() => parsed.validate()).not.toThrow();
    parsed.destroy();
  });

  it('--disable-pass switches a pass off, and rejects unknown or required passes', async () => {
    const r = await compile('graphs/examples/mlp-loss-grad.graph.json', '--emit', 'fused', '--disable-pass', 'cse');
    expect(r.out).toMatch(/^cse +disabled/m);
    expect((await compile('graphs/nets/mlp.graph.json', '--disable-pass', 'nope')).err).toMatch(/unknown pass "nope"/);
    expect((await compile('graphs/nets/mlp.graph.json', '--disable-pass', 'autodiff')).err).toMatch(/cannot be disabled/);
    expect((await compile('graphs/nets/mlp.graph.json', '--emit', 'asm')).code).toBe(2);
    expect((await compile('graphs/nets/mlp.graph.json', '--emit', 'ts', '--dim', 'B')).err).toMatch(/--dim takes NAME=N/);
  });
});
