/**
 * Factorized weights in the built graphs: a projection whose matrix the checkpoint stores as factors
 * (safetensorsWriter.ts: low-rank `<W>.lowrank.a/.b`, MPO `<W>.mpo.core.<k>`) is computed WITH the
 * factors, never expanded to the dense matrix, so the graph does fewer multiply-accumulates.
 *
 * Orientation. A factorization always describes the stored matrix W [rows, cols] as the file holds
 * it. A graph multiplies x [B, n] against it in one of two ways (graphCommon.ts):
 *   side 'cols': y = x W^T   (Linear [out, in] weights: the contracted axis is W's columns)
 *   side 'rows': y = x W     (Conv1D [in, out] weights: the contracted axis is W's rows)
 *
 * Low-rank W = a b, a [rows, k], b [k, cols]:
 *   y = x W^T = (x b^T) a^T      (Gemm transB = 1 twice)
 *   y = x W   = (x a) b          (Gemm transB = 0 twice)
 *   MACs per token k (rows + cols), against rows x cols dense.
 *
 * MPO (cores G_k [chi_k, o_k, i_k, chi_{k+1}], chi_0 = chi_N = 1, W[r, c] = prod_k G_k[.., o_k(r), i_k(c), ..],
 * r / c mixed-radix with the first site most significant). Let p = the contracted side's factors
 * (o for side 'rows', i for 'cols'), q = the other side's, P_{>k} = p_{k+1} ... p_{N-1},
 * Q_{<k} = q_0 ... q_{k-1}. Contracting left to right keeps the row-major state
 *   S_k = [B Q_{<k}, chi_k p_k, P_{>k}]      (S_0 = x, zero-padded to prod p, viewed [B, p_0, P_{>0}])
 * and multiplies it on the left by the constant
 *   L_k [(q_k chi_{k+1}), (chi_k p_k)],   L_k[(q, b), (a, p)] = G_k[a, o, i, b]  (o, i = p, q or q, p by side)
 * giving [B Q_{<k}, q_k chi_{k+1}, P_{>k}], which read row-major IS S_{k+1} = [B Q_{<k+1}, chi_{k+1} p_{k+1}, P_{>k+1}].
 * The final state is [B, Q] with q_0 most significant: the output index, cropped to the true size.
 * Each step sums exactly one (bond, factor) pair of the MPO formula, so the chain equals x W_mpo
 * (or x W_mpo^T) up to float rounding. Only MatMul and Reshape act on activations; the L_k are
 * permuted in JavaScript when the graph is built. When the trailing axis is 1 (the last site) the
 * step is one flat GEMM S [X, chi_k p_k] @ L_k^T instead of X matrix-vector products.
 *   MACs per token: sum_k Q_{<k} P_{>k} (q_k chi_{k+1}) (chi_k p_k)
 * (the same as onnxWriter.ts's mpoContractionMacs for the left-to-right order).
 */
import type { FactorizedTensor } from '../checkpoint/safetensorsWriter';
import type { GraphBuilder } from './onnxGraph';

export interface FactorizedLinear {
  output: string;
  /** Multiply-accumulates per row of x (per token). */
  macsPerToken: number;
  /** Parameters the graph holds for this projection (the factors). */
  params: number;
}

/** Initializers already added per graph (a factor shared by two products is added once). */
const made = new WeakMap<GraphBuilder, Map<string, string>>();

async function initOnce(g: GraphBuilder, name: string, dims: number[], make: () => Promise<Float32Array>): Promise<string> {
  let m = made.get(g);
  if (!m) { m = new Map(); made.set(g, m); }
  const have = m.get(name);
  if (have) return have;
  g.floatInit(name, dims, await make());
  m.set(name, name);
  return name;
}

const prod = (a: readonly number[]) => a.reduce((x, y) => x * y, 1);

/** MACs per token of the left-to-right MPO chain (see the file comment). */
export function mpoChainMacs(outFactors: readonly number[], inFactors: readonly number[], bondDims: readonly number[], side: 'rows' | 'cols'): number {
  const p = side === 'rows' ? outFactors : inFactors;
  const q = side === 'rows' ? inFactors : outFactors;
  const chi = [1, ...bondDims, 1];
  let macs = 0;
  for (let k = 0; k < p.length; k++) macs += prod(q.slice(0, k)) * prod(p.slice(k + 1)) * q[k] * chi[k + 1] * chi[k] * p[k];
  return macs;
}

/** Parameters of a factorization: k (rows + cols), or sum_k chi_k o_k i_k chi_{k+1}. */
export function factorizationParams(f: FactorizedTensor): number {
  if (f.kind === 'lowrank') return f.rank * (f.shape[0] + f.shape[1]);
  const chi = [1, ...f.bondDims, 1];
  return f.outFactors.reduce((s, o, k) => s + chi[k] * o * f.inFactors[k] * chi[k + 1], 0);
}

/**
 * Emits y = x W^T (side 'cols') or y = x W (side 'rows') [+ bias] for a factorized W, x [B, n] 2-D.
 * `name` is the original tensor's name (for value names); factor tensors are read with `readFactor`.
 */
export async function factorizedLinear(
  g: GraphBuilder, x: string, name: string, f: FactorizedTensor, readFactor: (factor: string) => Promise<Float32Array>,
  bias: string | undefined, side: 'rows' | 'cols', hint: string,
): Promise<FactorizedLinear> {
  const [rows, cols] = f.shape;
  if (f.kind === 'lowrank') {
    const k = f.rank;
    const [aName, bName] = f.tensors;
    const a = await initOnce(g, aName, [rows, k], () => readFactor(aName));
    const b = await initOnce(g, bName, [k, cols], () => readFactor(bName));
    // side cols: (x b^T) a^T; side rows: (x a) b.
    const [first, second] = side === 'cols' ? [b, a] : [a, b];
    const t = g.op1('Gemm', [x, first], { transB: side === 'cols' ? 1 : 0 }, `${hint}/lowrank_inner`);
    const output = g.op1('Gemm', bias ? [t, second, bias] : [t, second], { transB: side === 'cols' ? 1 : 0 }, `${hint}/lowrank`);
    return { output, macsPerToken: k * (rows + cols), params: k * (rows + cols) };
  }

  const o = f.outFactors, i = f.inFactors, N = o.length;
  const chi = [1, ...f.bondDims, 1];
  const p = side === 'rows' ? o : i;
  const q = side === 'rows' ? i : o;
  const inSize = side === 'rows' ? rows : cols;
  const outSize = side === 'rows' ? cols : rows;
  const P = prod(p), Q = prod(q);
  const cores = f.tensors;
  let cur = x;
  if (P > inSize) cur = g.op1('Pad', [cur, g.int64([0, 0, 0, P - inSize])], {}, `${hint}/mpo_pad`);
  for (let k = 0; k < N; k++) {
    const [cl, ok, ik, cr] = [chi[k], o[k], i[k], chi[k + 1]];
    const pk = p[k], qk = q[k];
    const trailing = prod(p.slice(k + 1));
    const K = cl * pk, M = qk * cr;
    const last = trailing === 1;
    // L_k[(q, b), (a, p)] = G[a, o, i, b]; stored as L (M x K) or, for the flat last step, L^T (K x M).
    const mat = await initOnce(g, `${cores[k]}.${side}${last ? '.T' : ''}`, last ? [K, M] : [M, K], async () => {
      const G = await readFactor(cores[k]);
      const want = cl * ok * ik * cr;
      if (G.length !== want) throw new RangeError(`MPO core ${cores[k]} has ${G.length} values, the factorization describes [${cl}, ${ok}, ${ik}, ${cr}] = ${want}`);
      const L = new Float32Array(M * K);
      for (let a = 0; a < cl; a++) for (let oo = 0; oo < ok; oo++) for (let ii = 0; ii < ik; ii++) for (let b = 0; b < cr; b++) {
        const v = G[((a * ok + oo) * ik + ii) * cr + b];
        const [pp, qq] = side === 'rows' ? [oo, ii] : [ii, oo];
        const row = qq * cr + b, col = a * pk + pp;
        if (last) L[col * M + row] = v; else L[row * K + col] = v;
      }
      return L;
    });
    if (last) {
      cur = g.op1('Reshape', [cur, g.int64([-1, K])], {}, `${hint}/mpo_site${k + 1}_in`);
      cur = g.op1('MatMul', [cur, mat], {}, `${hint}/mpo_site${k + 1}`);
    } else {
      cur = g.op1('Reshape', [cur, g.int64([-1, K, trailing])], {}, `${hint}/mpo_site${k + 1}_in`);
      cur = g.op1('MatMul', [mat, cur], {}, `${hint}/mpo_site${k + 1}`);
    }
  }
  cur = g.op1('Reshape', [cur, g.int64([-1, Q])], {}, `${hint}/mpo_out`);
  if (Q > outSize) cur = g.op1('Slice', [cur, g.int64([0]), g.int64([outSize]), g.int64([1])], {}, `${hint}/mpo_crop`);
  const output = bias ? g.op1('Add', [cur, bias], {}, `${hint}/mpo_bias`) : cur;
  return { output, macsPerToken: mpoChainMacs(o, i, f.bondDims, side), params: factorizationParams(f) };
}
