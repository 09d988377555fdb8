/**
 * The rank marker of the spectrum view: readouts at rank k from the truncation curve the host shipped
 * (core/analysis/spectrum.ts truncationCurve), and the marker's keyboard steps.
 *   error(k)  = errors[k] = sqrt(sum_{i>k} s_i^2 / sum_i s_i^2)     (Eckart-Young, relative Frobenius)
 *   params(k) = params[k] = k (m + n)                                  (U_k and S_k V_k^T)
 *   ratio(k)  = m n / params(k)                                        (dense over factored; > 1 saves)
 *   energy(k) = 1 - error(k)^2 = sum_{i<=k} s_i^2 / sum_i s_i^2        (cumulative energy)
 */
export interface Truncation {
  errors: ArrayLike<number>;
  params: ArrayLike<number>;
}

export interface MarkerReadout {
  rank: number;
  error: number;
  params: number;
  denseParams: number;
  ratio: number;
  energy: number;
}

/** Largest rank the curve covers (K for errors[0..K]). */
export function maxRank(t: Truncation): number {
  return Math.max(0, t.errors.length - 1);
}

export function clampRank(k: number, t: Truncation): number {
  return Math.min(maxRank(t), Math.max(1, Math.round(k)));
}

export function readoutAt(t: Truncation, rows: number, cols: number, k: number): MarkerReadout {
  const rank = clampRank(k, t);
  const error = t.errors[rank];
  const params = t.params[rank];
  const denseParams = rows * cols;
  return { rank, error, params, denseParams, ratio: params > 0 ? denseParams / params : Infinity, energy: 1 - error * error };
}

/** Cumulative energy curve: energy[k] = 1 - errors[k]^2 for k = 0..K. */
export function energyCurve(t: Truncation): number[] {
  const out = new Array<number>(t.errors.length);
  for (let k = 0; k < t.errors.length; k++) out[k] = 1 - t.errors[k] * t.errors[k];
  return out;
}

/** The rank a key moves the marker to (arrows: 1, PageUp/Down: 10% of the range, Home/End); undefined for other keys. */
export function stepRank(k: number, key: string, t: Truncation): number | undefined {
  const K = maxRank(t);
  const big = Math.max(1, Math.round(K / 10));
  switch (key) {
    case 'ArrowRight': case 'ArrowUp': return clampRank(k + 1, t);
    case 'ArrowLeft': case 'ArrowDown': return clampRank(k - 1, t);
    case 'PageUp': return clampRank(k + big, t);
    case 'PageDown': return clampRank(k - big, t);
    case 'Home': return clampRank(1, t);
    case 'End': return K;
    default: return undefined;
  }
}

/**
 * The rank under a pixel x of a log-scaled rank axis [1, K] drawn over [x0, x1]: the inverse of
 * x = x0 + (x1 - x0) ln k / ln K, rounded to the nearest integer rank.
 */
export function rankAtX(x: number, x0: number, x1: number, K: number): number {
  if (K <= 1 || x1 === x0) return 1;
  const f = Math.min(1, Math.max(0, (x - x0) / (x1 - x0)));
  return Math.min(K, Math.max(1, Math.round(Math.exp(f * Math.log(K)))));
}

/** Smallest rank whose error is at most `target` (errors are non-increasing); K if none. */
export function rankForError(t: Truncation, target: number): number {
  const K = maxRank(t);
  for (let k = 1; k <= K; k++) if (t.errors[k] <= target) return k;
  return K;
}
