/**
 * The float32 matrix product of generated kernels on the wasm backend: a WebAssembly SIMD
 * module that imports the backend's own memory and multiplies its tensors where they lie.
 *
 * Why not the backend's BatchMatMul: it builds an XNNPACK operator for each right operand,
 * packing the operand into it, and caches the operator by tensor id. In a training step nearly
 * every right operand is new (the weights after each optimizer step, the gradients and
 * activations of the backward pass), so most products pay for the packing: at
 * [128, 64] x [64, 64] it costs 47 us against 33 us with the operator cached. It also multiplies
 * transposed operands about 10x slower than plain ones. This kernel reads the right operand's rows
 * directly, which for the matrices of an RL policy (K up to a few hundred) stay in cache, and
 * takes 29 us for the same product.
 *
 * Products are computed in 4-row x 8-column register blocks of f32x4 accumulators (then 4-column
 * blocks, then single columns; then single rows), each output the float32 sum over k of float32
 * products, in order of k, over chunks of 256 values of k (a block's panel of b stays in L1; the
 * partial sums go through the output, which is exact). Measured against the library from
 * [128, 64] x [64, 64] to [1024, 512] x [512, 512]: within a few percent of XNNPACK with a cached
 * operator or faster, and faster than it with a new right operand; slower only for right operands
 * of millions of elements ([64, 1024] x [1024, 1024]: 21 GFLOP/s against 33 cached, 19 new). A transposed left operand is read through strides; a transposed right
 * operand is first copied to its plain layout in a scratch area of the same memory. Before a
 * block is stored, the product may add a bias row and apply tanh (`GemmEpilogue`, TANH32 in
 * float32 on four lanes at once): about 7 us per [128, 64] result, where the generated loop's
 * scalar tanh takes about 40 us.
 *
 * The module text is generated here and assembled by wabt once per process (`prepareWasmGemm`,
 * which `initBackend` awaits when it selects wasm); until then `wasmGemm` answers undefined and
 * products go to the library kernel.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ProductActivation } from '../compiler/codegen/spec.ts';
import { productFits } from '../compiler/codegen/semantics.ts';
import { TANH32 } from '../compiler/codegen/tanh32.ts';

/** What the product applies to each output before storing it: a bias row added, then an activation. */
export interface GemmEpilogue {
  /** A float32 tensor of cols(op(b)) elements, added to every row. */
  bias?: tf.TensorInfo;
  /** The bias holds one such row per matrix of a stacked product, in order (vmap's per-seed biases). */
  biasPerMatrix?: boolean;
  activation?: ProductActivation;
}
/** The module's code for each activation (0 is none). */
const ACTIVATIONS: Record<ProductActivation, number> = { tanh: 1 };

/**
 * out = act(op(a) x op(b) + bias) for float32 tensors of the wasm backend; out is
 * [rows of op(a), cols of op(b)]. Operands may also be stacks of matrices (see productFits):
 * then each matrix of the stack is multiplied in turn, as a batched product (vmap's K seeds).
 * The operands give the number of matrices, not out's shape: a kernel may write its product into
 * the buffer of an output of another shape with as many elements (a [K, B] output of a [K, B, 1]
 * product).
 */
export type Gemm = (a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean, out: tf.TensorInfo, epilogue?: GemmEpilogue) => void;

/** The operand shapes the own product multiplies (one rule with the fusion pass's). */
export { productFits };

interface WasmBackendLike {
  wasm: { asm?: { memory?: unknown }; _malloc(bytes: number): number; _free(ptr: number): void };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

interface GemmExports {
  /**
   * c[m, n] = act(op(a)[m, k] x b[k, n] + bias[n]); op(a)[i, kk] lies at a + i*strideRow + kk*strideK
   * (bytes); bias 0 = none; act 0 = identity, else ACTIVATIONS.
   */
  gemm(a: number, b: number, c: number, m: number, k: number, n: number, strideRow: number, strideK: number, bias: number, act: number): void;
  /** dst[cols, rows] = src[rows, cols]^T. */
  transpose(src: number, dst: number, rows: number, cols: number): void;
}

const ROWS = 4;
/** Rows of b per chunk of k: a block's column panel of b (KC rows of 8 floats) stays in L1. */
const KC = 256;

/** The address of output row $i + r of the current block. */
const rowOut = (r: number) => (r === 0 ? '(local.get $pc)' : `(i32.add (local.get $pc) (i32.mul (local.get $ldc) (i32.const ${r})))`);

const f32 = (v: number) => String(Math.fround(v));
const splat = (v: number) => `(v128.const f32x4 ${f32(v)} ${f32(v)} ${f32(v)} ${f32(v)})`;

/**
 * TANH32 of local `x` into itself, in float32: `shape` 'f32x4' on a vector (temporaries $tc $tx2
 * $tp $tq), 'f32' on a scalar (temporaries $uc $ux2 $up $uq).
 */
function tanhInPlace(x: string, shape: 'f32x4' | 'f32'): string {
  const v = shape === 'f32x4';
  const [c, x2, p, q] = v ? ['$tc', '$tx2', '$tp', '$tq'] : ['$uc', '$ux2', '$up', '$uq'];
  const k = (n: number) => (v ? splat(n) : `(f32.const ${f32(n)})`);
  const horner = (acc: string, coefs: readonly number[]) => [
    `(local.set ${acc} (${shape}.add (${shape}.mul (local.get ${x2}) ${k(coefs[0]!)}) ${k(coefs[1]!)}))`,
    ...coefs.slice(2).map((cf) => `(local.set ${acc} (${shape}.add (${shape}.mul (local.get ${x2}) (local.get ${acc})) ${k(cf)}))`),
  ];
  const ratio = `(${shape}.div (${shape}.mul (local.get ${c}) (local.get ${p})) (local.get ${q}))`;
  const small = `(${shape}.lt (${shape}.abs (local.get ${x})) ${k(TANH32.small)})`;
  return [
    // c = x > CLAMP ? CLAMP : x < -CLAMP ? -CLAMP : x (NaN stays NaN): pmin/pmax are exactly that
    // on vectors, one instruction each where min/max take several.
    v
      ? `(local.set ${c} (f32x4.pmax (f32x4.pmin (local.get ${x}) ${k(TANH32.clamp)}) ${k(-TANH32.clamp)}))`
      : `(local.set ${c} (select ${k(TANH32.clamp)} (select ${k(-TANH32.clamp)} (local.get ${x}) (f32.lt (local.get ${x}) ${k(-TANH32.clamp)})) (f32.gt (local.get ${x}) ${k(TANH32.clamp)})))`,
    `(local.set ${x2} (${shape}.mul (local.get ${c}) (local.get ${c})))`,
    ...horner(p, TANH32.p),
    ...horner(q, TANH32.q),
    v ? `(local.set ${x} (v128.bitselect (local.get ${x}) ${ratio} ${small}))` : `(local.set ${x} (select (local.get ${x}) ${ratio} ${small}))`,
  ].join('\n');
}

/** Bias (from $pbias, `offset` bytes on) and activation of one accumulator, after the last chunk of k. */
function epilogue(acc: string, shape: 'f32x4' | 'f32', offset: number): string {
  const load = shape === 'f32x4' ? `(v128.load offset=${offset} align=4 (local.get $pbias))` : `(f32.load offset=${offset} (local.get $pbias))`;
  return `(if (local.get $last) (then
  (if (local.get $bias) (then (local.set ${acc} (${shape}.add (local.get ${acc}) ${load}))))
  (if (i32.eq (local.get $act) (i32.const ${ACTIVATIONS.tanh})) (then ${tanhInPlace(acc, shape)}))))`;
}

/** Multiplies `rows` rows of op(a) (from $i) by `vecs` f32x4 column vectors of b (from $j) into c. */
function vectorBlock(rows: number, vecs: number, tag: string): string {
  const acc = (r: number, v: number) => `$acc${r}_${v}`;
  const rowAddr = (r: number) => (r === 0 ? '(local.get $pa)' : `(i32.add (local.get $pa) (local.get $row${r}))`);
  const init: string[] = [];
  // The first chunk of k starts from zero, a later one from the sums the chunk before stored.
  for (let r = 0; r < rows; r++)
    for (let v = 0; v < vecs; v++)
      init.push(`(local.set ${acc(r, v)} (if (result v128) (local.get $k0) (then (v128.load offset=${16 * v} align=4 ${rowOut(r)})) (else (v128.const i32x4 0 0 0 0))))`);
  // b's row kk, columns j + 4v .. j + 4v + 3, times op(a)[i + r, kk] for each row r.
  const body: string[] = [];
  for (let v = 0; v < vecs; v++) body.push(`(local.set $b${v} (v128.load offset=${16 * v} align=4 (local.get $pb)))`);
  for (let r = 0; r < rows; r++) {
    body.push(`(local.set $av (f32x4.splat (f32.load ${rowAddr(r)})))`);
    for (let v = 0; v < vecs; v++) body.push(`(local.set ${acc(r, v)} (f32x4.add (local.get ${acc(r, v)}) (f32x4.mul (local.get $av) (local.get $b${v}))))`);
  }
  const stores: string[] = [];
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < vecs; v++) stores.push(epilogue(acc(r, v), 'f32x4', 16 * v), `(v128.store offset=${16 * v} align=4 (local.get $pc) (local.get ${acc(r, v)}))`);
    stores.push('(local.set $pc (i32.add (local.get $pc) (local.get $ldc)))');
  }
  return blockLoop(tag, init.join('\n'), body.join('\n'), stores.join('\n'));
}

/** Multiplies `rows` rows of op(a) (from $i) by column $j of b into c, one float at a time. */
function scalarBlock(rows: number, tag: string): string {
  const rowAddr = (r: number) => (r === 0 ? '(local.get $pa)' : `(i32.add (local.get $pa) (local.get $row${r}))`);
  const init: string[] = [];
  const body = ['(local.set $bs (f32.load (local.get $pb)))'];
  const stores: string[] = [];
  for (let r = 0; r < rows; r++) {
    init.push(`(local.set $s${r} (if (result f32) (local.get $k0) (then (f32.load ${rowOut(r)})) (else (f32.const 0))))`);
    body.push(`(local.set $s${r} (f32.add (local.get $s${r}) (f32.mul (f32.load ${rowAddr(r)}) (local.get $bs))))`);
    stores.push(epilogue(`$s${r}`, 'f32', 0), `(f32.store (local.get $pc) (local.get $s${r}))`, '(local.set $pc (i32.add (local.get $pc) (local.get $ldc)))');
  }
  return blockLoop(tag, init.join('\n'), body.join('\n'), stores.join('\n'));
}

/**
 * The k loop around a block's body over the current chunk of k ($k0, $kc long): $pa walks op(a)'s
 * row i along k, $pb walks b's column j down k; $pc is the block's first output.
 */
function blockLoop(tag: string, init: string, body: string, stores: string): string {
  return `
(local.set $pa (i32.add (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $strideRow))) (i32.mul (local.get $k0) (local.get $strideK))))
(local.set $pb (i32.add (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (i32.mul (local.get $k0) (local.get $ldb))))
(local.set $pc (i32.add (i32.add (local.get $c) (i32.mul (local.get $i) (local.get $ldc))) (i32.shl (local.get $j) (i32.const 2))))
${init}
(local.set $kk (local.get $kc))
(block $end_${tag} (loop $next_${tag}
  (br_if $end_${tag} (i32.eqz (local.get $kk)))
  ${body}
  (local.set $pa (i32.add (local.get $pa) (local.get $strideK)))
  (local.set $pb (i32.add (local.get $pb) (local.get $ldb)))
  (local.set $kk (i32.sub (local.get $kk) (i32.const 1)))
  (br $next_${tag})))
(local.set $pbias (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2))))
${stores}`;
}

/** All columns of `rows` rows from $i: 8-column blocks, then a 4-column block, then single columns. */
function rowPanel(rows: number): string {
  const tag = `r${rows}`;
  return `
(local.set $j (i32.const 0))
(block $end8_${tag} (loop $next8_${tag}
  (br_if $end8_${tag} (i32.gt_u (i32.add (local.get $j) (i32.const 8)) (local.get $n)))
  ${vectorBlock(rows, 2, `${tag}c8`)}
  (local.set $j (i32.add (local.get $j) (i32.const 8)))
  (br $next8_${tag})))
(if (i32.le_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)) (then
  ${vectorBlock(rows, 1, `${tag}c4`)}
  (local.set $j (i32.add (local.get $j) (i32.const 4)))))
(block $end1_${tag} (loop $next1_${tag}
  (br_if $end1_${tag} (i32.ge_u (local.get $j) (local.get $n)))
  ${scalarBlock(rows, `${tag}c1`)}
  (local.set $j (i32.add (local.get $j) (i32.const 1)))
  (br $next1_${tag})))`;
}

/** The module's WebAssembly text (exported for tests and inspection). */
export function gemmModuleText(): string {
  const i32s = ['i', 'j', 'k0', 'kc', 'last', 'kk', 'pa', 'pb', 'pc', 'pbias', 'ldb', 'ldc', ...Array.from({ length: ROWS - 1 }, (_v, r) => `row${r + 1}`)];
  const f32s = ['bs', 'uc', 'ux2', 'up', 'uq', ...Array.from({ length: ROWS }, (_v, r) => `s${r}`)];
  const v128s = ['av', 'b0', 'b1', 'tc', 'tx2', 'tp', 'tq', ...Array.from({ length: ROWS }, (_v, r) => [`acc${r}_0`, `acc${r}_1`]).flat()];
  const locals = [...i32s.map((l) => `(local $${l} i32)`), ...f32s.map((l) => `(local $${l} f32)`), ...v128s.map((l) => `(local $${l} v128)`)].join(' ');
  const rowOffsets = Array.from({ length: ROWS - 1 }, (_v, r) => `(local.set $row${r + 1} (i32.mul (local.get $strideRow) (i32.const ${r + 1})))`).join('\n  ');
  return `(module
(import "env" "memory" (memory 0))
(func $loom_gemm (export "gemm") (param $a i32) (param $b i32) (param $c i32) (param $m i32) (param $k i32) (param $n i32) (param $strideRow i32) (param $strideK i32) (param $bias i32) (param $act i32)
  ${locals}
  (local.set $ldb (i32.shl (local.get $n) (i32.const 2)))
  (local.set $ldc (local.get $ldb))
  ${rowOffsets}
  ;; k in chunks of at most ${KC}; the epilogue runs with the last one.
  (local.set $k0 (i32.const 0))
  (loop $next_chunk
  (local.set $kc (select (i32.const ${KC}) (i32.sub (local.get $k) (local.get $k0)) (i32.lt_u (i32.const ${KC}) (i32.sub (local.get $k) (local.get $k0)))))
  (local.set $last (i32.ge_u (i32.add (local.get $k0) (local.get $kc)) (local.get $k)))
  (local.set $i (i32.const 0))
  (block $end_rows${ROWS} (loop $next_rows${ROWS}
    (br_if $end_rows${ROWS} (i32.gt_u (i32.add (local.get $i) (i32.const ${ROWS})) (local.get $m)))
    ${rowPanel(ROWS)}
    (local.set $i (i32.add (local.get $i) (i32.const ${ROWS})))
    (br $next_rows${ROWS})))
  (block $end_rows1 (loop $next_rows1
    (br_if $end_rows1 (i32.ge_u (local.get $i) (local.get $m)))
    ${rowPanel(1)}
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $next_rows1)))
  (local.set $k0 (i32.add (local.get $k0) (local.get $kc)))
  (br_if $next_chunk (i32.lt_u (local.get $k0) (local.get $k)))))
(func $loom_transpose (export "transpose") (param $src i32) (param $dst i32) (param $rows i32) (param $cols i32) (local $r i32) (local $c i32) (local $from i32)
  (local.set $r (i32.const 0))
  (block $end_r (loop $next_r
    (br_if $end_r (i32.ge_u (local.get $r) (local.get $rows)))
    (local.set $from (i32.add (local.get $src) (i32.shl (i32.mul (local.get $r) (local.get $cols)) (i32.const 2))))
    (local.set $c (i32.const 0))
    (block $end_c (loop $next_c
      (br_if $end_c (i32.ge_u (local.get $c) (local.get $cols)))
      (f32.store
        (i32.add (local.get $dst) (i32.shl (i32.add (i32.mul (local.get $c) (local.get $rows)) (local.get $r)) (i32.const 2)))
        (f32.load (i32.add (local.get $from) (i32.shl (local.get $c) (i32.const 2)))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $next_c)))
    (local.set $r (i32.add (local.get $r) (i32.const 1)))
    (br $next_r))))
)`;
}

let compiled: WebAssembly.Module | undefined;
let preparing: Promise<string | undefined> | undefined;

/**
 * Assembles the module once per process. Resolves when `wasmGemm` can answer: to undefined, or
 * to why it cannot (no WebAssembly SIMD, say), in which case products stay the library's.
 */
export function prepareWasmGemm(): Promise<string | undefined> {
  preparing ??= (async () => {
    try {
      const { default: loadWabt } = await import('wabt');
      const wabt = await loadWabt();
      const parsed = wabt.parseWat('loom-gemm.wat', gemmModuleText(), { simd: true });
      try {
        parsed.validate();
        // With its names, so profiles show the product as loom_gemm (bench/cpu-profile.ts).
        compiled = new WebAssembly.Module(parsed.toBinary({ write_debug_names: true }).buffer as Uint8Array<ArrayBuffer>);
      } finally {
        parsed.destroy();
      }
      return undefined;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  })();
  return preparing;
}

const instances = new WeakMap<object, Gemm>();

/** The product for a wasm backend, or undefined before `prepareWasmGemm` or where the backend's memory is out of reach. */
export function wasmGemm(backend: tf.KernelBackend): Gemm | undefined {
  if (!compiled) return undefined;
  const known = instances.get(backend);
  if (known) return known;
  const be = backend as unknown as WasmBackendLike;
  const memory = be.wasm?.asm?.memory;
  if (!(memory instanceof WebAssembly.Memory) || typeof be.wasm._malloc !== 'function' || !be.dataIdMap) return undefined;
  const ex = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as GemmExports;
  // Scratch for a transposed right operand, grown as needed; it lives as long as the backend.
  let scratch = 0;
  let scratchBytes = 0;
  const at = (t: tf.TensorInfo) => be.dataIdMap.get(t.dataId)!.memoryOffset;
  const gemm: Gemm = (a, b, transposeA, transposeB, out, epilogue) => {
    const ra = a.shape.length;
    const rb = b.shape.length;
    const [m, k] = transposeA ? [a.shape[ra - 1]!, a.shape[ra - 2]!] : [a.shape[ra - 2]!, a.shape[ra - 1]!];
    const n = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
    // A stack of matrices is contiguous, one after the other; a single matrix serves every entry.
    const count = (ra > 2 ? a.shape : b.shape).slice(0, -2).reduce((p, d) => p * d, 1);
    const aStep = ra > 2 ? 4 * m * k : 0;
    const bStep = rb > 2 ? 4 * k * n : 0;
    const bias = epilogue?.bias ? at(epilogue.bias) : 0;
    const biasStep = epilogue?.bias && epilogue.biasPerMatrix ? 4 * n : 0;
    const act = epilogue?.activation ? ACTIVATIONS[epilogue.activation] : 0;
    if (transposeB && 4 * k * n > scratchBytes) {
      if (scratch) be.wasm._free(scratch);
      scratch = be.wasm._malloc(4 * k * n);
      scratchBytes = 4 * k * n;
    }
    // Offsets are read after the scratch allocation, which may move nothing but may grow the heap.
    const a0 = at(a);
    const b0 = at(b);
    const c0 = at(out);
    for (let e = 0; e < count; e++) {
      let bAt = b0 + e * bStep;
      if (transposeB) {
        if (e === 0 || bStep > 0) ex.transpose(bAt, scratch, n, k);
        bAt = scratch;
      }
      ex.gemm(a0 + e * aStep, bAt, c0 + e * 4 * m * n, m, k, n, transposeA ? 4 : 4 * k, transposeA ? 4 * m : 4, bias && bias + e * biasStep, act);
    }
  };
  instances.set(backend, gemm);
  return gemm;
}
