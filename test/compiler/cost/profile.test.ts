import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { batchedMatmulPerMatrix, batchedMatmulRate, deriveMoeOverhead, loadProfile, validateProfile } from '../../../compiler/cost/profile.ts';
import { loomErr } from '../../helpers/loom-error.ts';

const good = { name: 'x', peakFlops: { float32: 1e12 }, memoryBandwidth: 1e11, kernelOverhead: 5e-6 };

describe('shipped profiles', () => {
  it('h100 and h200 carry the datasheet figures and a source', () => {
    const h100 = loadProfile('h100');
    const h200 = loadProfile('h200');
    expect(h100.peakFlops).toMatchObject({ float32: 67e12, bfloat16: 989.5e12 });
    expect(h100.memoryBandwidth).toBe(3.35e12);
    expect(h100.memoryCapacity).toBe(80e9);
    expect(h200.peakFlops.bfloat16).toBe(h100.peakFlops.bfloat16);
    expect(h200.memoryBandwidth).toBe(4.8e12);
    expect(h200.memoryCapacity).toBe(141e9);
    for (const p of [h100, h200]) expect(p.source).toMatch(/datasheet/);
  });

  it('their moe coefficients follow the documented derivation', () => {
    const h100 = loadProfile('h100');
    const d = deriveMoeOverhead(h100.kernelOverhead, h100.peakFlops.bfloat16!);
    // one launch = 4e-6 s * 989.5e12 / 2 MAC/s = 1.979e9 MACs; w1 = 10 launches.
    expect(d.w2).toBeCloseTo(1.979e9, 0);
    expect(d.w1).toBeCloseTo(1.979e10, 0);
    expect(h100.moe).toMatchObject({ w1: d.w1, w2: d.w2 });
  });
});

describe('validation', () => {
  it('accepts a minimal profile', () => {
    expect(validateProfile(good, 'p.json').name).toBe('x');
  });

  it('names a missing required field', () => {
    const { memoryBandwidth: _m, ...rest } = good;
    const e = loomErr(() => validateProfile(rest, 'p.json'));
    expect(e.code).toBe('E_SCHEMA');
    expect(e.message).toContain('memoryBandwidth');
    expect(e.info.file).toBe('p.json');
  });

  it('rejects non-positive rates with the pointer to them', () => {
    const e = loomErr(() => validateProfile({ ...good, peakFlops: { float32: 0 } }, 'p.json'));
    expect(e.code).toBe('E_SCHEMA');
    expect(e.info.pointer).toBe('/peakFlops/float32');
    const e2 = loomErr(() => validateProfile({ ...good, kernelOverhead: -1 }, 'p.json'));
    expect(e2.info.pointer).toBe('/kernelOverhead');
  });

  it('rejects unknown properties and unknown precisions, suggesting the right name', () => {
    const e = loomErr(() => validateProfile({ ...good, memoryBandwith: 1 }, 'p.json'));
    expect(e.message).toContain('unknown property "memoryBandwith"');
    const e2 = loomErr(() => validateProfile({ ...good, peakFlops: { float32: 1, fp8: 2 } }, 'p.json'));
    expect(e2.message).toContain('"fp8"');
  });

  it('rejects a negative moe coefficient', () => {
    const e = loomErr(() => validateProfile({ ...good, moe: { w2: -3 } }, 'p.json'));
    expect(e.info.pointer).toBe('/moe/w2');
  });

  it('reports unreadable files and bad JSON', () => {
    expect(loomErr(() => loadProfile('/nonexistent/profile.json')).code).toBe('E_IO');
    const dir = mkdtempSync(join(tmpdir(), 'loom-profile-'));
    const f = join(dir, 'bad.json');
    writeFileSync(f, '{"name": ');
    expect(loomErr(() => loadProfile(f)).code).toBe('E_JSON');
    writeFileSync(f, JSON.stringify(good));
    expect(loadProfile(f).kernelOverhead).toBe(5e-6);
  });
});

describe('kernel rates', () => {
  it('accepts measured rates and rejects malformed ones', () => {
    const rates = { batchedMatmul: [{ rhsElements: 64, rate: 1e9, perMatrix: 2e-6 }, { rhsElements: 256, rate: 2e9 }], transpose: 1e9, broadcast: 5e7, reduction: 3e9, matmulCopiesTransposed: true, matmulCopies: true };
    expect(validateProfile({ ...good, rates }, 'p.json').rates).toEqual(rates);
    expect(loomErr(() => validateProfile({ ...good, rates: { batchedMatmul: [] } }, 'p.json')).message).toMatch(/rates/);
    expect(loomErr(() => validateProfile({ ...good, rates: { transpose: 0 } }, 'p.json')).message).toMatch(/transpose/);
    expect(loomErr(() => validateProfile({ ...good, rates: { batchedMatmul: [{ rhsElements: 64 }] } }, 'p.json')).message).toMatch(/rate/);
    expect(loomErr(() => validateProfile({ ...good, rates: { batchedMatmul: [{ rhsElements: 64, rate: 1, perMatrix: -1 }] } }, 'p.json')).message).toMatch(/perMatrix/);
    expect(loomErr(() => validateProfile({ ...good, rates: { gather: 1 } }, 'p.json')).code).toBeDefined();
  });

  it('interpolates the per-matrix cost linearly in log size, a missing one counting 0', () => {
    const p = { ...good, rates: { batchedMatmul: [{ rhsElements: 100, rate: 1, perMatrix: 3e-6 }, { rhsElements: 10, rate: 1, perMatrix: 1e-6 }, { rhsElements: 1000, rate: 1 }] } };
    // log10 midpoint of 10 and 100: halfway between 1 and 3 us; of 100 and 1000: halfway between 3 and 0.
    expect(batchedMatmulPerMatrix(p, Math.sqrt(1000))).toBeCloseTo(2e-6, 15);
    expect(batchedMatmulPerMatrix(p, Math.sqrt(1e5))).toBeCloseTo(1.5e-6, 15);
    expect(batchedMatmulPerMatrix(p, 1)).toBe(1e-6);
    expect(batchedMatmulPerMatrix(p, 1e6)).toBe(0);
    expect(batchedMatmulPerMatrix(good, 50)).toBe(0);
  });

  it('interpolates the batched rate log-log and falls back to the float32 peak', () => {
    const p = { ...good, rates: { batchedMatmul: [{ rhsElements: 100, rate: 4e9 }, { rhsElements: 10, rate: 1e9 }] } };
    // Geometric midpoint of 10 and 100 gets the geometric mean of the rates: 2e9.
    expect(batchedMatmulRate(p, Math.sqrt(1000))).toBeCloseTo(2e9, 0);
    expect(batchedMatmulRate(p, 1)).toBe(1e9);
    expect(batchedMatmulRate(p, 1e6)).toBe(4e9);
    expect(batchedMatmulRate(good, 50)).toBe(1e12);
    // The shipped profiles have no rates and keep their roofline.
    expect(loadProfile('h100').rates).toBeUndefined();
  });
});
