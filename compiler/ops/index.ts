/** Loads every op family into the registry. Import this, not the family files. */
import './const.ts';
import './elementwise.ts';
import './shape.ts';
import './linalg.ts';
import './reduce.ts';
import './nn.ts';
import './random.ts';
import './scan.ts';

export { allOps, getOp, type OpDef } from './registry.ts';
