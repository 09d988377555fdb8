/**
 * Spectrum metrics of one weight matrix W (m x n), as pure functions of its singular values
 * s_1 >= s_2 >= ... >= s_r >= 0 (r = min(m, n)) and its shape. Natural logarithms throughout (nats).
 * The probability vector of the spectrum is p_i = s_i^2 / sum_j s_j^2 — the squared Schmidt
 * coefficients of W read as a bipartite state, so the entropies below are entanglement entropies
 * across the row/column cut.
 */

/** Machine epsilon of float32 (2^-23): the weights are stored at most this precisely. */
export const FLOAT32_EPSILON = 2 ** -23;

export interface MatrixShape {
  rows: number;
  cols: number;
}

/**
 * How a stored tensor is read as a matrix:
 * - 2-D [m, n] is the matrix itself (row-major, as PyTorch and numpy store it);
 * - k-D with k >= 3 (a conv kernel [out, in, kh, kw], stacked heads...) becomes [shape[0], prod(rest)]:
 *   one row per output channel, the same as PyTorch's `weight.flatten(1)`. Row-major data needs no
 *   copy for this view;
 * - 0-D and 1-D tensors (biases, norms, scalars) are not matrices: undefined (skipped);
 * - a shape with a zero dimension has no spectrum: undefined.
 */
export function matrixShape(shape: readonly number[]): MatrixShape | undefined {
  if (shape.length < 2) return undefined;
  let cols = 1;
  for (let i = 1; i < shape.length; i++) cols *= shape[i];
  const rows = shape[0];
  if (rows === 0 || cols === 0) return undefined;
  return { rows, cols };
}

/** sum_i s_i^2 = ||W||_F^2, summed from the smallest value up so that small terms are not lost. */
export function sumOfSquares(s: ArrayLike<number>): number {
  let t = 0;
  for (let i = s.length - 1; i >= 0; i--) t += s[i] * s[i];
  return t;
}

/** p_i = s_i^2 / sum_j s_j^2 (sums to 1; all zeros for the zero matrix). */
export function spectralProbabilities(s: ArrayLike<number>): Float64Array {
  const total = sumOfSquares(s);
  const p = new Float64Array(s.length);
  if (total > 0) for (let i = 0; i < s.length; i++) p[i] = (s[i] * s[i]) / total;
  return p;
}

/** von Neumann entropy S = -sum_i p_i ln p_i (nats), with 0 ln 0 = 0. */
export function vonNeumannEntropy(s: ArrayLike<number>): number {
  const p = spectralProbabilities(s);
  let h = 0;
  for (let i = p.length - 1; i >= 0; i--) if (p[i] > 0) h -= p[i] * Math.log(p[i]);
  return h;
}

/**
 * Normalised entropy S / ln(r) in [0, 1], with r = min(m, n) the full rank of the shape (not the
 * numerical rank): 1 means all r directions carry equal weight. This is weightwatcher's "entropy".
 * Null for r = 1, where ln r = 0.
 */
export function normalizedEntropy(entropy: number, shape: MatrixShape): number | null {
  const r = Math.min(shape.rows, shape.cols);
  return r > 1 ? entropy / Math.log(r) : null;
}

/** Renyi-2 (collision) entropy S_2 = -ln sum_i p_i^2 <= S. */
export function renyi2Entropy(s: ArrayLike<number>): number {
  const p = spectralProbabilities(s);
  let q = 0;
  for (let i = p.length - 1; i >= 0; i--) q += p[i] * p[i];
  return q > 0 ? -Math.log(q) : 0;
}

/** Effective rank exp(S) (Roy & Vetterli 2007): the number of equally weighted directions with the same entropy. */
export function effectiveRank(entropy: number): number {
  return Math.exp(entropy);
}

/** Stable rank sum_i s_i^2 / s_1^2 = ||W||_F^2 / ||W||_2^2 <= rank. */
export function stableRank(s: ArrayLike<number>): number {
  const s1 = s.length > 0 ? s[0] : 0;
  return s1 > 0 ? sumOfSquares(s) / (s1 * s1) : 0;
}

/** Spectral norm ||W||_2 = s_1. */
export function spectralNorm(s: ArrayLike<number>): number {
  return s.length > 0 ? s[0] : 0;
}

/** Frobenius norm ||W||_F = sqrt(sum_i s_i^2). */
export function frobeniusNorm(s: ArrayLike<number>): number {
  return Math.sqrt(sumOfSquares(s));
}

/**
 * Numerical rank #{i : s_i > s_1 * max(m, n) * eps_float32} — numpy's matrix_rank tolerance with the
 * epsilon of float32, the precision the weights are stored in.
 */
export function numericalRank(s: ArrayLike<number>, shape: MatrixShape): number {
  const tol = numericalRankThreshold(spectralNorm(s), shape);
  let k = 0;
  for (let i = 0; i < s.length; i++) if (s[i] > tol) k++;
  return k;
}

export function numericalRankThreshold(s1: number, shape: MatrixShape): number {
  return s1 * Math.max(shape.rows, shape.cols) * FLOAT32_EPSILON;
}

// ---------------------------------------------------------------------------------------------
// Marchenko-Pastur bulk edge

const mpMedianCache = new Map<number, number>();

/**
 * Median of the Marchenko-Pastur law with ratio q = M/N <= 1 and unit variance: the distribution of
 * the eigenvalues of (1/N) X X^T for an M x N matrix X of iid unit-variance entries, with density
 *   f(x) = sqrt((b - x)(x - a)) / (2 pi q x),  a = (1 - sqrt q)^2 <= x <= b = (1 + sqrt q)^2.
 * Integrated numerically with the substitution x = a + c (1 - cos t), c = (b - a)/2, which turns the
 * square-root end points into the smooth integrand c^2 sin^2 t / (2 pi q x(t)) on [0, pi]; composite
 * Simpson on 2048 panels (error far below the 1e-6 the estimator needs), then the 1/2 crossing by
 * linear interpolation of the cumulative table.
 */
export function marchenkoPasturMedian(q: number): number {
  if (!(q > 0 && q <= 1)) throw new RangeError(`Marchenko-Pastur ratio must be in (0, 1], got ${q}`);
  const cached = mpMedianCache.get(q);
  if (cached !== undefined) return cached;
  const sq = Math.sqrt(q);
  const a = (1 - sq) ** 2;
  const b = (1 + sq) ** 2;
  const c = (b - a) / 2;
  const x = (t: number) => a + c * (1 - Math.cos(t));
  const h = (t: number) => {
    const st = Math.sin(t);
    const xt = x(t);
    return xt > 0 ? (c * c * st * st) / (2 * Math.PI * q * xt) : (q === 1 ? 2 / Math.PI : 0); // q = 1: limit at t -> 0
  };
  const panels = 2048;
  const dt = Math.PI / panels;
  // Cumulative integral at the panel boundaries (Simpson per panel with its midpoint).
  const cum = new Float64Array(panels + 1);
  for (let k = 0; k < panels; k++) {
    const t0 = k * dt;
    cum[k + 1] = cum[k] + (dt / 6) * (h(t0) + 4 * h(t0 + dt / 2) + h(t0 + dt));
  }
  const total = cum[panels]; // 1 up to quadrature error; normalising removes it
  let k = 0;
  while (k < panels && cum[k + 1] < 0.5 * total) k++;
  const frac = (0.5 * total - cum[k]) / (cum[k + 1] - cum[k]);
  const median = x((k + frac) * dt);
  mpMedianCache.set(q, median);
  return median;
}

/**
 * Integral of the Marchenko-Pastur density over its support (1 up to quadrature error; a self-check
 * for tests), by the midpoint rule in the same t-substitution the median uses.
 */
export function marchenkoPasturMass(q: number): number {
  const sq = Math.sqrt(q);
  const a = (1 - sq) ** 2;
  const b = (1 + sq) ** 2;
  const c = (b - a) / 2;
  const steps = 20000;
  let m = 0;
  for (let k = 0; k < steps; k++) {
    const t = ((k + 0.5) / steps) * Math.PI;
    const st = Math.sin(t);
    m += (c * c * st * st) / (2 * Math.PI * q * (a + c * (1 - Math.cos(t))));
  }
  return (m * Math.PI) / steps;
}

export interface MarchenkoPasturFit {
  /** Estimated per-entry standard deviation sigma of the random bulk. */
  sigma: number;
  /** Bulk edge for the singular values: sigma (sqrt(m) + sqrt(n)). */
  edge: number;
  /** Number of singular values above the edge (the "spikes" a random matrix would not have). */
  outliers: number;
}

/**
 * Marchenko-Pastur bulk edge of an m x n matrix. For iid entries of variance sigma^2 the singular
 * values fill [sigma |sqrt m - sqrt n|, sigma (sqrt m + sqrt n)]; anything above the upper edge is an
 * outlier (signal, or a planted direction).
 *
 * sigma is estimated robustly from the bulk by matching medians: with N = max(m, n), M = min(m, n),
 * q = M / N, the eigenvalues s_i^2 / N follow MP(q) scaled by sigma^2, so
 *   sigma^2 = median_i(s_i^2 / N) / median(MP(q)).
 * A few large outliers barely move the median, unlike the mean (||W||_F^2 / (m n)), which they inflate.
 * `eigenvalueMedian` lets estimate mode pass a median taken from its spectral density instead.
 */
export function marchenkoPasturFit(s: ArrayLike<number>, shape: MatrixShape, eigenvalueMedian?: number): MarchenkoPasturFit {
  const N = Math.max(shape.rows, shape.cols);
  const M = Math.min(shape.rows, shape.cols);
  const median = eigenvalueMedian ?? medianOfSquares(s, M);
  const sigma = Math.sqrt(median / N / marchenkoPasturMedian(M / N));
  const edge = sigma * (Math.sqrt(shape.rows) + Math.sqrt(shape.cols));
  let outliers = 0;
  for (let i = 0; i < s.length; i++) if (s[i] > edge) outliers++;
  return { sigma, edge, outliers };
}

/** Median of s_i^2 over r = min(m, n) values (missing trailing values count as 0). */
function medianOfSquares(s: ArrayLike<number>, r: number): number {
  const sq = new Float64Array(r);
  for (let i = 0; i < Math.min(r, s.length); i++) sq[i] = s[i] * s[i];
  sq.sort();
  return r % 2 === 1 ? sq[(r - 1) / 2] : 0.5 * (sq[r / 2 - 1] + sq[r / 2]);
}

// ---------------------------------------------------------------------------------------------
// Power-law tail (weightwatcher's alpha)

export interface PowerLawFit {
  /** Exponent alpha of p(lambda) ~ lambda^-alpha on the tail lambda >= xmin. */
  alpha: number;
  /** Lower end of the fitted tail (an eigenvalue lambda = s^2). */
  xmin: number;
  /** Number of eigenvalues in the tail. */
  tailCount: number;
  /** Kolmogorov-Smirnov distance between the tail and the fitted law. */
  ks: number;
  /** Standard error of the MLE, (alpha - 1) / sqrt(n_tail) (Clauset et al. eq. 3.2). */
  alphaError: number;
}

/** Tails shorter than this are not fitted: the KS minimum over tiny tails is noise. */
export const POWER_LAW_MIN_TAIL = 10;
/** At most this many xmin candidates are tried (evenly spaced in rank), bounding the work at O(1000 n). */
const POWER_LAW_MAX_CANDIDATES = 1000;

/**
 * Power-law fit of the eigenvalue density of W^T W, as weightwatcher does it: eigenvalues
 * lambda_i = s_i^2 (no 1/N normalisation — the exponent is scale-invariant, so it would not change
 * alpha), continuous power law p(lambda) ~ lambda^-alpha for lambda >= xmin, fitted by maximum
 * likelihood
 *   alpha = 1 + n / sum_{lambda_i >= xmin} ln(lambda_i / xmin),
 * with xmin the candidate (an eigenvalue) minimising the Kolmogorov-Smirnov distance
 *   D = max_x |F_tail(x) - (1 - (x / xmin)^(1 - alpha))|
 * between the empirical tail CDF and the fitted one (Clauset, Shalizi & Newman 2009, sec. 3.3).
 * Zero eigenvalues are left out. Null when fewer than POWER_LAW_MIN_TAIL positive eigenvalues exist.
 */
export function powerLawFit(eigenvalues: ArrayLike<number>): PowerLawFit | null {
  const pos: number[] = [];
  for (let i = 0; i < eigenvalues.length; i++) if (eigenvalues[i] > 0 && Number.isFinite(eigenvalues[i])) pos.push(eigenvalues[i]);
  const x = Float64Array.from(pos).sort();
  const n = x.length;
  if (n < POWER_LAW_MIN_TAIL) return null;
  // suffix[j] = sum_{i >= j} ln x_i, for alpha at every candidate in O(1).
  const logs = x.map(Math.log);
  const suffix = new Float64Array(n + 1);
  for (let i = n - 1; i >= 0; i--) suffix[i] = suffix[i + 1] + logs[i];
  const lastStart = n - POWER_LAW_MIN_TAIL;
  const stride = Math.max(1, Math.ceil((lastStart + 1) / POWER_LAW_MAX_CANDIDATES));
  let best: PowerLawFit | null = null;
  for (let j = 0; j <= lastStart; j += stride) {
    if (j > 0 && x[j] === x[j - 1]) continue; // ties: the first occurrence defines the tail
    const xmin = x[j];
    const count = n - j;
    const sumLog = suffix[j] - count * logs[j];
    if (!(sumLog > 0)) continue; // all tail values equal: no power law
    const alpha = 1 + count / sumLog;
    // Two-sided KS distance of the step CDF against P(x) = 1 - (x/xmin)^(1-alpha).
    let ks = 0;
    for (let i = j; i < n; i++) {
      const model = 1 - Math.exp((1 - alpha) * (logs[i] - logs[j]));
      const below = (i - j) / count;
      const above = (i - j + 1) / count;
      const dist = Math.max(Math.abs(model - below), Math.abs(above - model));
      if (dist > ks) ks = dist;
    }
    if (best === null || ks < best.ks) best = { alpha, xmin, tailCount: count, ks, alphaError: (alpha - 1) / Math.sqrt(count) };
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Truncation curve

export interface TruncationCurve {
  /** errors[k] = ||W - W_k||_F / ||W||_F = sqrt(sum_{i>k} s_i^2 / sum_i s_i^2), k = 0..K (Eckart-Young). */
  errors: number[];
  /** params[k] = k (m + n): the storage of a rank-k factorisation U_k (m x k) and S_k V_k^T (k x n). */
  params: number[];
}

/**
 * Relative Frobenius error and parameter count of the best rank-k approximation for every k from
 * 0 to the number of singular values given. `totalSquares` (= ||W||_F^2) may be passed when only the
 * top singular values are known (estimate mode); the errors then remain exact for the k covered.
 */
export function truncationCurve(s: ArrayLike<number>, shape: MatrixShape, totalSquares = sumOfSquares(s)): TruncationCurve {
  const K = s.length;
  const errors: number[] = new Array(K + 1);
  const params: number[] = new Array(K + 1);
  // Tail sums from the bottom up: sum_{i>k} s_i^2 = total - sum_{i<=k} s_i^2 would cancel
  // catastrophically at large k; with all values known, sum the tail directly.
  const known = sumOfSquares(s);
  const missing = Math.max(0, totalSquares - known); // mass beyond the values given (estimate mode)
  let tail = missing;
  errors[K] = totalSquares > 0 ? Math.sqrt(tail / totalSquares) : 0;
  for (let k = K - 1; k >= 0; k--) {
    tail += s[k] * s[k];
    errors[k] = totalSquares > 0 ? Math.sqrt(Math.min(1, tail / totalSquares)) : 0;
  }
  for (let k = 0; k <= K; k++) params[k] = k * (shape.rows + shape.cols);
  return { errors, params };
}

// ---------------------------------------------------------------------------------------------
// Density and the whole set

export interface SpectralDensity {
  /** Bin edges over singular values (length bins + 1), from 0 to s_1. */
  edges: number[];
  /** Number of singular values per bin (sums to r in exact mode; an estimate in estimate mode). */
  counts: number[];
}

/** Histogram of the singular values on `bins` equal bins over [0, s_1]. */
export function singularValueHistogram(s: ArrayLike<number>, bins = 64): SpectralDensity {
  const top = spectralNorm(s);
  const edges = Array.from({ length: bins + 1 }, (_, k) => (top * k) / bins);
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < s.length; i++) counts[binOf(s[i], top, bins)]++;
  return { edges, counts };
}

export function binOf(value: number, top: number, bins: number): number {
  if (!(top > 0)) return 0;
  return Math.min(bins - 1, Math.max(0, Math.floor((value / top) * bins)));
}

/** Every metric of one matrix's spectrum; JSON-serialisable. */
export interface SpectrumMetrics {
  /** Full rank r = min(m, n). */
  rank: number;
  vonNeumannEntropy: number;
  normalizedEntropy: number | null;
  renyi2Entropy: number;
  effectiveRank: number;
  stableRank: number;
  spectralNorm: number;
  frobeniusNorm: number;
  numericalRank: number;
  /** Marchenko-Pastur noise level sigma (per entry), bulk edge and outlier count. */
  mpSigma: number;
  mpEdge: number;
  outliers: number;
  /** Power-law tail exponent (null when the spectrum is too short to fit). */
  alpha: number | null;
  alphaFit: PowerLawFit | null;
}

/** All metrics from the full set of singular values (descending) of an m x n matrix. */
export function spectrumMetrics(singularValues: ArrayLike<number>, shape: MatrixShape): SpectrumMetrics {
  const s = singularValues;
  const entropy = vonNeumannEntropy(s);
  const mp = marchenkoPasturFit(s, shape);
  const eig = new Float64Array(s.length);
  for (let i = 0; i < s.length; i++) eig[i] = s[i] * s[i];
  const fit = powerLawFit(eig);
  return {
    rank: Math.min(shape.rows, shape.cols),
    vonNeumannEntropy: entropy,
    normalizedEntropy: normalizedEntropy(entropy, shape),
    renyi2Entropy: renyi2Entropy(s),
    effectiveRank: effectiveRank(entropy),
    stableRank: stableRank(s),
    spectralNorm: spectralNorm(s),
    frobeniusNorm: frobeniusNorm(s),
    numericalRank: numericalRank(s, shape),
    mpSigma: mp.sigma,
    mpEdge: mp.edge,
    outliers: mp.outliers,
    alpha: fit ? fit.alpha : null,
    alphaFit: fit,
  };
}
