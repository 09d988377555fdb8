/**
 * Plain low-rank SVD compression, the baseline shown next to the MPO.
 *
 * Eckart-Young: the best rank-k approximation of W (m x n) in Frobenius norm is U_k S_k V_k^T, with
 *   relative error  sqrt(sum_{i>k} s_i^2 / sum_i s_i^2)
 * stored as two factors A = U_k sqrt(S_k) (m x k) and B = sqrt(S_k) V_k^T (k x n), W ~ A B, for
 *   k (m + n) parameters (instead of m n).
 */
import type { LinalgBackend, Matrix } from '../linalg/types';
import { sumSquares } from './mpoTensor';

/** k (m + n). */
export function lowRankParams(m: number, n: number, k: number): number {
  return k * (m + n);
}

/** sqrt(sum_{i>k} s_i^2 / sum s_i^2) for a full descending spectrum s. */
export function lowRankRelativeError(s: ArrayLike<number>, k: number): number {
  let total = 0, tail = 0;
  for (let i = 0; i < s.length; i++) {
    const w = s[i] * s[i];
    total += w;
    if (i >= k) tail += w;
  }
  return total === 0 ? 0 : Math.sqrt(tail / total);
}

/** Smallest k with lowRankRelativeError(s, k) <= eps. */
export function rankForRelativeError(s: ArrayLike<number>, eps: number): number {
  let total = 0;
  for (let i = 0; i < s.length; i++) total += s[i] * s[i];
  let tail = total;
  for (let k = 0; k <= s.length; k++) {
    if (tail <= eps * eps * total) return k;
    if (k < s.length) tail -= s[k] * s[k];
  }
  return s.length;
}

export interface LowRankSummary {
  rank: number;
  params: number;
  denseParams: number;
  relativeError: number;
}

/** The largest rank whose k (m + n) parameters fit a budget (e.g. an MPO's), with its error. */
export function lowRankAtParamBudget(s: ArrayLike<number>, m: number, n: number, budget: number): LowRankSummary {
  const rank = Math.max(0, Math.min(Math.floor(budget / (m + n)), Math.min(m, n)));
  return { rank, params: lowRankParams(m, n, rank), denseParams: m * n, relativeError: lowRankRelativeError(s, rank) };
}

export interface LowRankFactors extends LowRankSummary {
  /** m x k: U_k sqrt(S_k). */
  A: Matrix;
  /** k x n: sqrt(S_k) V_k^T. */
  B: Matrix;
  /** The singular values computed (all of them on the dense route, the top k on the randomized one). */
  singularValues: Float64Array;
}

/**
 * Rank-k factors A, B of W. Dense thin SVD, except for a large W with k <= min(m, n) / 8, which goes
 * through the randomized SVD; the error is then sqrt(||W||^2 - sum_{i<=k} s_i^2) / ||W|| (exact for the
 * captured subspace since ||W - A B||^2 = ||W||^2 - ||S_k||^2 when U_k, V_k are orthonormal).
 */
export async function lowRankFactors(w: Matrix, k: number, backend: LinalgBackend, opts: { signal?: AbortSignal; seed?: number } = {}): Promise<LowRankFactors> {
  const { rows: m, cols: n } = w;
  const kk = Math.max(0, Math.min(k, m, n));
  const total = sumSquares(w.data);
  const randomized = m * n >= 1 << 20 && kk * 8 <= Math.min(m, n);
  const svd = randomized
    ? await backend.randomizedSvd(w, kk, { oversample: 10, powerIterations: 2, seed: opts.seed ?? 1, signal: opts.signal })
    : await backend.svd(w, { signal: opts.signal });
  const A = new Float32Array(m * kk);
  const B = new Float32Array(kk * n);
  let captured = 0;
  for (let j = 0; j < kk; j++) {
    const r = Math.sqrt(svd.S[j]);
    captured += svd.S[j] * svd.S[j];
    for (let i = 0; i < m; i++) A[i * kk + j] = svd.U.data[i * svd.U.cols + j] * r;
    for (let c = 0; c < n; c++) B[j * n + c] = svd.Vt.data[j * n + c] * r;
  }
  const relativeError = randomized
    ? (total === 0 ? 0 : Math.sqrt(Math.max(0, total - captured) / total))
    : lowRankRelativeError(svd.S, kk);
  return {
    rank: kk,
    params: lowRankParams(m, n, kk),
    denseParams: m * n,
    relativeError,
    A: { rows: m, cols: kk, data: A },
    B: { rows: kk, cols: n, data: B },
    singularValues: randomized ? Float64Array.from(svd.S.subarray(0, kk)) : svd.S,
  };
}
