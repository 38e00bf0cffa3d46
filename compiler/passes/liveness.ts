/** Liveness / memory planning pass (placeholder until it lands): identity. */
import type { Pass } from './pass.ts';

export const liveness: Pass = { name: 'liveness', doc: 'free each tensor at its last use', run: (g) => g };
