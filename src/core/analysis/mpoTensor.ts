/**
 * Index bookkeeping between a matrix W [out, in] and its site-ordered tensor
 * P[o_1, i_1, o_2, i_2, ..., o_N, i_N] (row-major), plus zero padding and cropping.
 *
 * The row index is the mixed-radix number over the out factors (o_1 most significant), the column
 * index over the in factors:  r = ((o_1 O_2 + o_2) O_3 + o_3) ...,  c = ((i_1 I_2 + i_2) I_3 + i_3) ...
 * With d_k = O_k I_k and S_k = d_{k+1} ... d_N (the stride of site k in P), the element W[r, c] sits at
 *   P offset = sum_k (o_k I_k + i_k) S_k = rowOffset(r) + colOffset(c),
 * which separates into a row part and a column part — so the whole permutation is two small lookup
 * tables and one pass over the matrix. The unfolding of P at bond k (sites 1..k | k+1..N) is P's
 * memory viewed as an L_k x R_k matrix, L_k = d_1 ... d_k, R_k = d_{k+1} ... d_N: no copy needed.
 */

export interface SiteOffsets {
  rowOffset: Float64Array;
  colOffset: Float64Array;
  /** d_k = o_k i_k. */
  siteDims: number[];
}

/** The row and column offset tables described above. */
export function siteOffsets(outFactors: number[], inFactors: number[]): SiteOffsets {
  const n = outFactors.length;
  const siteDims = outFactors.map((o, k) => o * inFactors[k]);
  const stride = new Array<number>(n);
  let s = 1;
  for (let k = n - 1; k >= 0; k--) { stride[k] = s; s *= siteDims[k]; }
  const table = (factors: number[], scale: (k: number) => number) => {
    const total = factors.reduce((a, b) => a * b, 1);
    const t = new Float64Array(total);
    // Mixed-radix digits of every index, least significant digit last.
    const digit = new Array<number>(n).fill(0);
    for (let idx = 0; idx < total; idx++) {
      let off = 0;
      for (let k = 0; k < n; k++) off += digit[k] * scale(k);
      t[idx] = off;
      for (let k = n - 1; k >= 0; k--) {
        if (++digit[k] < factors[k]) break;
        digit[k] = 0;
      }
    }
    return t;
  };
  return {
    rowOffset: table(outFactors, (k) => inFactors[k] * stride[k]),
    colOffset: table(inFactors, (k) => stride[k]),
    siteDims,
  };
}

/**
 * P = permute(reshape(W_pad, o_1..o_N, i_1..i_N), (o_1, i_1, ..., o_N, i_N)), where W_pad is W
 * [rows, cols] zero-padded to [prod o, prod i]. Returns a new Float32Array of prod(o) prod(i) elements.
 */
export function matrixToSiteTensor(w: Float32Array, rows: number, cols: number, outFactors: number[], inFactors: number[]): Float32Array {
  const { rowOffset, colOffset } = siteOffsets(outFactors, inFactors);
  const p = new Float32Array(rowOffset.length * colOffset.length); // padding stays zero
  for (let r = 0; r < rows; r++) {
    const ro = rowOffset[r];
    const base = r * cols;
    for (let c = 0; c < cols; c++) p[ro + colOffset[c]] = w[base + c];
  }
  return p;
}

/** The inverse of matrixToSiteTensor, cropping the padding: W[r, c] = P[rowOffset(r) + colOffset(c)]. */
export function siteTensorToMatrix(p: Float32Array, rows: number, cols: number, outFactors: number[], inFactors: number[]): Float32Array {
  const { rowOffset, colOffset } = siteOffsets(outFactors, inFactors);
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const ro = rowOffset[r];
    const base = r * cols;
    for (let c = 0; c < cols; c++) w[base + c] = p[ro + colOffset[c]];
  }
  return w;
}

/** Sum of squares in float64: ||x||_F^2. */
export function sumSquares(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** Relative Frobenius error ||a - b||_F / ||a||_F, accumulated in float64. */
export function relativeFrobeniusError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`length mismatch: ${a.length} vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { const d = a[i] - b[i]; num += d * d; den += a[i] * a[i]; }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Row-major transpose of an m x n matrix. */
export function transpose(a: Float32Array, m: number, n: number): Float32Array {
  const t = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/** Float64 -> Float32 copy. */
export function toFloat32(a: Float64Array): Float32Array {
  return Float32Array.from(a);
}
