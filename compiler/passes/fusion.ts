/** Fusion pass (placeholder until the fusion work lands): identity. */
import type { Pass } from './pass.ts';

export const fusion: Pass = { name: 'fusion', doc: 'group elementwise chains, reductions and matmul epilogues into fused kernels', run: (g) => g };
