/**
 * Matrix product operators (tensor trains) of weight matrices, and their bond-cut entanglement.
 *
 * A weight matrix W [out, in] with out = o_1 ... o_N and in = i_1 ... i_N is an operator on N sites;
 * its MPO form is
 *   W[(o_1..o_N), (i_1..i_N)] = sum_{a_1..a_{N-1}} G_1[1, o_1, i_1, a_1] G_2[a_1, o_2, i_2, a_2] ... G_N[a_{N-1}, o_N, i_N, 1]
 * with cores G_k of shape (chi_{k-1}, o_k, i_k, chi_k), boundary bonds chi_0 = chi_N = 1.
 *
 * TT-SVD (I. Oseledets, "Tensor-Train Decomposition", SIAM J. Sci. Comput. 33(5), 2011, Alg. 1):
 * permute W into P[o_1, i_1, ..., o_N, i_N] (mpoTensor.ts), then sweep left to right: at bond k the
 * carried remainder C_{k-1} (chi_{k-1} x d_k R_k, d_k = o_k i_k, R_k = d_{k+1} ... d_N) is viewed as the
 * unfolding M_k = (chi_{k-1} d_k) x R_k; an orthonormal U_k (chi_{k-1} d_k x chi_k) spanning its top
 * chi_k left singular vectors becomes core G_k, and C_k = U_k^T M_k is carried on. The last remainder
 * is the last core. Because every U_k is an isometry the discarded pieces are mutually orthogonal, so
 *   ||W - W_TT||_F^2 = sum_k delta_k,   delta_k = ||M_k||^2 - ||U_k^T M_k||^2 (the weight discarded at bond k)
 * and Oseledets' Theorem 2.2 bounds it by sum_k eps_k^2, eps_k = the best rank-chi_k error of the
 * exact unfolding at bond k. A target relative error eps for the whole matrix is therefore met by
 * allowing delta_k <= eps^2 ||W||^2 / (N - 1) at every bond.
 *
 * Bond-cut entanglement: the Schmidt values at bond k are the singular values s_j of the exact
 * unfolding of P at that cut (L_k = d_1 ... d_k rows, R_k columns), the operator-space analogue of a
 * state's Schmidt decomposition. With p_j = s_j^2 / sum s^2:
 *   von Neumann entropy  S = -sum_j p_j ln p_j,   Renyi-2  S_2 = -ln sum_j p_j^2,
 *   maximum possible     ln min(L_k, R_k)  (a flat spectrum of full rank).
 *
 * Bond dimensions: chi_k = min(chi, chi_{k-1} d_k, R_k) — never more than the rank the cut allows
 * (equivalently min(chi, L_k, R_k) for a uniform chi). Parameters: sum_k chi_{k-1} o_k i_k chi_k.
 */
import type { LinalgBackend, Matrix } from '../linalg/types';
import { singularValuesFromGram } from '../linalg/symmetricEigen';
import { CancelledError } from '../checkpoint/errors';
import { planSites, userSites, type SitePlan, type SitePlanOptions } from './mpoFactors';
import { matrixToSiteTensor, siteTensorToMatrix, sumSquares } from './mpoTensor';

export { FactorisationError, planSites, userSites, balancedFactors, primeFactors } from './mpoFactors';
export type { SitePlan, SitePlanOptions } from './mpoFactors';

export interface MpoTruncation {
  /** Maximum bond dimension: one for every bond, or one per bond (N - 1 numbers). */
  chi?: number | number[];
  /** Discarded-weight budget per bond, relative to ||W||_F^2: keep the fewest Schmidt values with delta_k <= budget ||W||^2. */
  bondDiscardedWeight?: number;
  /** Target relative Frobenius error eps of the whole matrix: delta_k <= eps^2 ||W||^2 / (N - 1) (the TT-SVD bound). */
  relativeError?: number;
}

/**
 * When a sweep step leaves the dense routes. Measured trade-offs on this project's machines
 * (ENVIRONMENT.md): a Gram + eigensolver costs ~m^2 n + m^3 and returns the whole spectrum; a
 * randomized SVD of rank k with q power iterations costs ~(2q + 2) m n k and only the top k.
 */
export interface RouteThresholds {
  /** Use randomized SVD when the target chi satisfies chi * randomizedRankRatio <= min(m, n) ... */
  randomizedRankRatio: number;
  /** ... and the unfolding has at least this many elements (smaller ones are cheap densely). */
  randomizedMinElements: number;
  /** Largest smaller side for the Gram route / dense SVD when no chi is given (an error budget). */
  gramMaxSide: number;
  /**
   * Randomized route acceptance: the Ritz residuals rho_j = ||M v_j - s_j u_j|| bound how far each
   * captured s_j can be below the true one (|sigma - s_j| <= rho_j for some singular value sigma), so the
   * weight the sketch missed is at most sum_j (2 s_j rho_j + rho_j^2). Accepted when that is at most
   * randomizedTolerance times the discarded weight (or 1e-6 ||M||^2): the step's error
   * sqrt(discarded) is then within a factor sqrt(1 + tolerance) (1% for 0.02) of the optimal rank-k
   * step. Otherwise the power iterations are raised (q, 3q, 8q: 2 -> 6 -> 16), then the step falls back
   * to the Gram route. What is promised is the error, not the subspace: on a flat spectrum (a Gaussian
   * matrix, k << rank) the sketch's captured weight can still be 10-15% below the optimum while the
   * error is within 0.2% (measured: 1024 x 4096 Gaussian unfolding, k = 64, the bound is 2-6x the
   * weight actually missed; q = 2 captures 86% of the optimal weight, q = 16 99.3%). Demanding the
   * subspace too (tolerance relative to the captured weight) made a flat 4096 x 14336 unfolding fall
   * through to the Gram route at 13x the time.
   */
  randomizedTolerance: number;
  /** Power iterations of the first randomized attempt (Halko et al. Alg. 4.4). */
  powerIterations: number;
}

export const DEFAULT_ROUTES: RouteThresholds = {
  randomizedRankRatio: 8,
  randomizedMinElements: 1 << 20,
  gramMaxSide: 8192,
  randomizedTolerance: 0.02,
  powerIterations: 2,
};

export interface MpoOptions {
  backend: LinalgBackend;
  truncation?: MpoTruncation;
  /**
   * Site factorisation: `sites` (automatic, see mpoFactors.ts) or explicit `outFactors` + `inFactors`.
   * Default: 2 sites.
   */
  sites?: number;
  outFactors?: number[];
  inFactors?: number[];
  /** Options for the automatic factorisation; `allowPadding` lets explicit factors multiply to more than the size. */
  siteOptions?: SitePlanOptions & { allowPadding?: boolean };
  /**
   * 'exact' (default): every bond's Schmidt values are the full spectrum of the original tensor's
   * unfolding at that cut, independent of truncation (reused from the sweep where the sweep saw
   * exactly that matrix, i.e. while nothing was truncated yet); 'sweep': only what the sweep computed
   * (the spectra of the carried remainders; partial on randomized steps). Cuts with min(L, R) above
   * RouteThresholds.gramMaxSide keep the sweep's spectrum even in 'exact' mode (see spectrumSource).
   */
  spectra?: 'exact' | 'sweep';
  routes?: Partial<RouteThresholds>;
  /** Seed of the randomized sketches (results are deterministic per seed). */
  seed?: number;
  signal?: AbortSignal;
  progress?: (message: string) => void;
}

export interface MpoCore {
  /** (chi_{k-1}, o_k, i_k, chi_k). */
  shape: [number, number, number, number];
  /** Row-major, float32. */
  data: Float32Array;
}

export type SweepRoute = 'svd' | 'gram' | 'randomized';

export interface MpoBond {
  /** Bond k sits between sites k and k+1 (1-based, 1 .. N-1). */
  index: number;
  /** Rows and columns of the exact unfolding at this cut: L_k = d_1 ... d_k, R_k = d_{k+1} ... d_N. */
  leftDim: number;
  rightDim: number;
  /** min(L_k, R_k). */
  maxRank: number;
  /** chi_k chosen by the truncation. */
  dimension: number;
  /** Schmidt values at this cut, descending (see `spectrumSource`). */
  schmidtValues: Float64Array;
  /** 'exact': the full spectrum of the original unfolding; 'sweep': of the carried remainder; 'sweep-partial': its top values only. */
  spectrumSource: 'exact' | 'sweep' | 'sweep-partial';
  /** -sum p ln p (nats), p = s^2 / sum s^2; null when the spectrum is partial. */
  entropy: number | null;
  /** -ln sum p^2; null when the spectrum is partial. */
  renyi2: number | null;
  /** ln min(L_k, R_k). */
  maxEntropy: number;
  /** delta_k: weight (sum of squares) discarded by the sweep at this bond; sum_k delta_k = ||W - W_TT||^2. */
  discardedWeight: number;
  /** delta_k / ||W||_F^2. */
  relativeDiscardedWeight: number;
  /** sum_{j > chi_k} s_j^2 of the exact spectrum: the least any rank-chi_k cut can discard (when the spectrum is exact). */
  optimalDiscardedWeight: number | null;
  /** How the sweep factored this bond. */
  route: SweepRoute;
  /** Randomized route only: the power iterations used and whether the residual check passed. */
  randomized?: { powerIterations: number; checkPassed: boolean; missedWeightBound: number };
}

export interface MpoDecomposition {
  rows: number;
  cols: number;
  plan: SitePlan;
  outFactors: number[];
  inFactors: number[];
  cores: MpoCore[];
  bonds: MpoBond[];
  /** Internal bond dimensions chi_1 .. chi_{N-1}. */
  bondDimensions: number[];
  /** sum_k chi_{k-1} o_k i_k chi_k (of the padded operator when padded). */
  params: number;
  /** rows * cols of the original matrix. */
  denseParams: number;
  frobeniusNorm: number;
  /** sqrt(sum_k delta_k) / ||W||_F = ||W - W_TT||_F / ||W||_F (exact identity for left-orthogonal TT-SVD). */
  relativeError: number;
}

/** d_k = o_k i_k for every site. */
export function siteDimensions(outFactors: number[], inFactors: number[]): number[] {
  return outFactors.map((o, k) => o * inFactors[k]);
}

/**
 * Bond dimensions for a maximum chi: chi_k = min(chi_k^max, chi_{k-1} d_k, R_k), chi_0 = 1.
 * (For uniform chi this is min(chi, L_k, R_k).)
 */
export function bondDimensionsForChi(outFactors: number[], inFactors: number[], chi: number | number[]): number[] {
  const d = siteDimensions(outFactors, inFactors);
  const n = d.length;
  const out: number[] = [];
  let prev = 1;
  for (let k = 0; k < n - 1; k++) {
    const right = d.slice(k + 1).reduce((a, b) => a * b, 1);
    const cap = Array.isArray(chi) ? chi[k] : chi;
    prev = Math.min(cap, prev * d[k], right);
    out.push(prev);
  }
  return out;
}

/** MPO parameter count: sum_k chi_{k-1} o_k i_k chi_k with chi_0 = chi_N = 1. */
export function mpoParamCount(outFactors: number[], inFactors: number[], bondDims: number[]): number {
  const chis = [1, ...bondDims, 1];
  return outFactors.reduce((sum, o, k) => sum + chis[k] * o * inFactors[k] * chis[k + 1], 0);
}

/**
 * Entanglement measures of a spectrum s (descending or not): p_j = s_j^2 / sum s^2,
 * S = -sum p ln p, S_2 = -ln sum p^2 (nats). A zero spectrum has entropy 0.
 */
export function spectrumEntropies(s: ArrayLike<number>): { entropy: number; renyi2: number; probabilities: Float64Array } {
  let total = 0;
  for (let i = 0; i < s.length; i++) total += s[i] * s[i];
  const p = new Float64Array(s.length);
  if (total === 0) return { entropy: 0, renyi2: 0, probabilities: p };
  let h = 0, purity = 0;
  for (let i = 0; i < s.length; i++) {
    const q = (s[i] * s[i]) / total;
    p[i] = q;
    if (q > 0) h -= q * Math.log(q);
    purity += q * q;
  }
  return { entropy: h, renyi2: -Math.log(purity), probabilities: p };
}

/** sum_{j >= k} s_j^2 (0-based k): the weight discarded by keeping the first k values. */
export function tailWeight(s: ArrayLike<number>, k: number): number {
  let t = 0;
  for (let j = s.length - 1; j >= k; j--) t += s[j] * s[j];
  return t;
}

/** Smallest k >= 1 with tailWeight(s, k) <= budget (s descending); s.length if none smaller. */
export function rankForBudget(s: ArrayLike<number>, budget: number): number {
  let tail = 0;
  // Walk from the smallest value up: the first k where adding s_{k-1} would exceed the budget.
  for (let k = s.length; k >= 1; k--) {
    const next = tail + s[k - 1] * s[k - 1];
    if (next > budget) return k;
    tail = next;
  }
  return 1;
}

interface StepResult {
  /** m x r orthonormal columns, row-major float32 = the core. */
  U: Float32Array;
  r: number;
  /** r x n carried remainder. */
  C: Float32Array;
  spectrum: Float64Array;
  complete: boolean;
  discarded: number;
  route: SweepRoute;
  randomized?: MpoBond['randomized'];
}

function check(signal?: AbortSignal) {
  if (signal?.aborted) throw new CancelledError();
}

/** Columns [0, k) of a row-major m x n float64 matrix, as float32 m x k. */
function leadingColumns(a: Float64Array, m: number, n: number, k: number): Float32Array {
  const out = new Float32Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) out[i * k + j] = a[i * n + j];
  return out;
}

/** diag(s_0..s_{k-1}) times the first k rows of Vt (k x n), as float32. */
function scaledRows(s: Float64Array, vt: Float64Array, n: number, k: number): Float32Array {
  const out = new Float32Array(k * n);
  for (let i = 0; i < k; i++) {
    const si = s[i];
    for (let j = 0; j < n; j++) out[i * n + j] = si * vt[i * n + j];
  }
  return out;
}

/**
 * One TT-SVD step: an orthonormal U spanning the dominant left singular subspace of M (m x n) of the
 * size the truncation asks for, and C = U^T M. Route choice (thresholds in RouteThresholds):
 * - 'randomized' when only a chi is given, chi << min(m, n) and M is large;
 * - 'gram' when m <= n: eigen-decomposition of the float64 M M^T gives U and every s_j = sqrt(lambda_j);
 *   C = U^T M by one product (no division by small s_j, so it stays stable for rank-deficient M);
 * - 'svd' (thin SVD) when m > n: U from the SVD, C = diag(s) V^T.
 */
async function sweepStep(
  M: Matrix,
  chiCap: number | undefined,
  budget: number | undefined,
  backend: LinalgBackend,
  routes: RouteThresholds,
  seed: number,
  signal?: AbortSignal,
): Promise<StepResult> {
  const { rows: m, cols: n } = M;
  const rMax = Math.min(m, n);
  const kChi = chiCap === undefined ? rMax : Math.max(1, Math.min(chiCap, rMax));
  const chooseRank = (s: Float64Array) => (budget === undefined ? kChi : Math.min(kChi, rankForBudget(s, budget)));
  const big = m * n >= routes.randomizedMinElements;

  if (budget === undefined && big && kChi * routes.randomizedRankRatio <= rMax) {
    const r = await randomizedStep(M, kChi, backend, routes, seed, signal);
    if (r) return r;
  }
  if (budget !== undefined && big && rMax > routes.gramMaxSide) {
    // Error budget on a huge unfolding: grow a randomized sketch until its tail fits the budget.
    // Sketch ranks 64, 128, ... up to min(chi, rMax / randomizedRankRatio); beyond that it is no longer cheap.
    const total = sumSquares(M.data);
    const kMax = Math.min(kChi, Math.floor(rMax / routes.randomizedRankRatio));
    for (let k = Math.min(64, kMax); k >= 1; k = k === kMax ? 0 : Math.min(2 * k, kMax)) {
      const r = await randomizedStep(M, k, backend, routes, seed, signal);
      if (!r) break;
      if (total - capturedWeight(r.spectrum) <= budget || k >= kChi) {
        const keep = Math.min(kChi, rankForPartial(r.spectrum, total, budget));
        return keep === r.r ? r : await truncateRandomized(M, r, keep, backend, total, signal);
      }
    }
  }
  if (rMax > routes.gramMaxSide) {
    // A dense factorisation here needs O(rMax^2) memory (a 23k-wide Gram is 4 GB): refuse instead of OOM.
    throw new RangeError(`the ${m} x ${n} unfolding has rank up to ${rMax}; dense factorisations above ${routes.gramMaxSide} are refused — give a chi <= ${Math.floor(rMax / routes.randomizedRankRatio)} or an error target (randomized route)`);
  }
  if (m <= n) {
    const g = await backend.gram(M, { signal });
    const eig = await backend.symEig(g, { vectors: true, signal });
    const vecs = eig.vectors!;
    // Ascending eigenvalues -> descending singular values; column j of vecs is eigenvector j.
    const s = singularValuesFromGram(eig.values);
    const k = chooseRank(s);
    const U = new Float32Array(m * k);
    for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) U[i * k + j] = vecs[i * m + (m - 1 - j)];
    const C = await backend.gemm({ rows: m, cols: k, data: U }, M, { transA: true, signal });
    return { U, r: k, C: C.data, spectrum: s, complete: true, discarded: tailWeight(s, k), route: 'gram' };
  }
  const svd = await backend.svd(M, { signal });
  const s = svd.S;
  const k = chooseRank(s);
  return {
    U: leadingColumns(svd.U.data, m, svd.U.cols, k),
    r: k,
    C: scaledRows(s, svd.Vt.data, n, k),
    spectrum: s,
    complete: true,
    discarded: tailWeight(s, k),
    route: 'svd',
  };
}

function capturedWeight(s: ArrayLike<number>): number {
  let t = 0;
  for (let i = 0; i < s.length; i++) t += s[i] * s[i];
  return t;
}

/** Fewest of the known top values whose complement (total - captured) fits the budget. */
function rankForPartial(s: Float64Array, total: number, budget: number): number {
  let captured = 0;
  for (let k = 1; k <= s.length; k++) {
    captured += s[k - 1] * s[k - 1];
    if (total - captured <= budget) return k;
  }
  return s.length;
}

async function truncateRandomized(M: Matrix, r: StepResult, keep: number, backend: LinalgBackend, total: number, signal?: AbortSignal): Promise<StepResult> {
  const m = M.rows;
  const U = new Float32Array(m * keep);
  for (let i = 0; i < m; i++) for (let j = 0; j < keep; j++) U[i * keep + j] = r.U[i * r.r + j];
  const C = await backend.gemm({ rows: m, cols: keep, data: U }, M, { transA: true, signal });
  return { ...r, U, r: keep, C: C.data, discarded: Math.max(0, total - sumSquares(C.data)) };
}

/**
 * Randomized rank-k step (Halko, Martinsson, Tropp 2011) with the Ritz-residual acceptance test of
 * RouteThresholds.randomizedTolerance. Returns undefined when the test keeps failing (the caller then
 * takes a dense route).
 */
async function randomizedStep(M: Matrix, k: number, backend: LinalgBackend, routes: RouteThresholds, seed: number, signal?: AbortSignal): Promise<StepResult | undefined> {
  const { rows: m, cols: n } = M;
  const total = sumSquares(M.data);
  let last: StepResult | undefined;
  for (const q of [routes.powerIterations, routes.powerIterations * 3, routes.powerIterations * 8]) {
    check(signal);
    const res = await backend.randomizedSvd(M, k, { oversample: 10, powerIterations: q, seed, signal, vectors: true });
    const kk = Math.min(k, res.S.length);
    const U = leadingColumns(res.U.data, m, res.U.cols, kk);
    const C = await backend.gemm({ rows: m, cols: kk, data: U }, M, { transA: true, signal });
    const captured = sumSquares(C.data);
    const discarded = Math.max(0, total - captured);
    // Ritz residuals rho_j = ||M v_j - s_j u_j||: one product M V (m x kk).
    const Vt = leadingRows(res.Vt.data, n, kk);
    const MV = await backend.gemm(M, { rows: kk, cols: n, data: Vt }, { transB: true, signal });
    const rho = new Float64Array(kk);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < kk; j++) {
        const d = MV.data[i * kk + j] - res.S[j] * res.U.data[i * res.U.cols + j];
        rho[j] += d * d;
      }
    }
    let missed = 0;
    for (let j = 0; j < kk; j++) { const r = Math.sqrt(rho[j]); missed += 2 * res.S[j] * r + r * r; }
    const passed = missed <= routes.randomizedTolerance * discarded || missed <= 1e-6 * total;
    last = {
      U, r: kk, C: C.data, spectrum: Float64Array.from(res.S.subarray(0, kk)), complete: false, discarded, route: 'randomized',
      randomized: { powerIterations: q, checkPassed: passed, missedWeightBound: missed },
    };
    if (passed) return last;
  }
  // Still failing after q = 8 * initial: only accept it when a dense route would be out of reach.
  return Math.min(m, n) > routes.gramMaxSide ? last : undefined;
}

function leadingRows(a: Float64Array, n: number, k: number): Float32Array {
  return Float32Array.from(a.subarray(0, k * n));
}

/** Resolves the site plan from the options (explicit factors win over `sites`). */
export function resolveSitePlan(rows: number, cols: number, opts: Pick<MpoOptions, 'sites' | 'outFactors' | 'inFactors' | 'siteOptions'>): SitePlan {
  if (opts.outFactors || opts.inFactors) {
    if (!opts.outFactors || !opts.inFactors) {
      return userSites(rows, cols, opts.outFactors ?? [], opts.inFactors ?? [], opts.siteOptions);
    }
    return userSites(rows, cols, opts.outFactors, opts.inFactors, opts.siteOptions);
  }
  return planSites(rows, cols, opts.sites ?? 2, opts.siteOptions);
}

/**
 * TT-SVD of a matrix W [rows, cols] (row-major float32) into an MPO; see the file comment for the
 * algorithm, the truncation rules and the bond metrics.
 */
export async function decomposeMpo(w: Float32Array, rows: number, cols: number, opts: MpoOptions): Promise<MpoDecomposition> {
  if (w.length !== rows * cols) throw new RangeError(`matrix has ${w.length} elements, expected ${rows} x ${cols} = ${rows * cols}`);
  const plan = resolveSitePlan(rows, cols, opts);
  const { outFactors, inFactors } = plan;
  const N = outFactors.length;
  const d = siteDimensions(outFactors, inFactors);
  const routes = { ...DEFAULT_ROUTES, ...opts.routes };
  const backend = opts.backend;
  const truncation = opts.truncation ?? {};
  if (Array.isArray(truncation.chi) && truncation.chi.length !== N - 1) {
    throw new RangeError(`chi has ${truncation.chi.length} entries but ${N} sites have ${N - 1} bonds`);
  }
  const P = matrixToSiteTensor(w, rows, cols, outFactors, inFactors);
  const normSq = sumSquares(P);
  let budget: number | undefined;
  if (truncation.relativeError !== undefined && N > 1) budget = (truncation.relativeError ** 2 * normSq) / (N - 1);
  if (truncation.bondDiscardedWeight !== undefined) {
    const b = truncation.bondDiscardedWeight * normSq;
    budget = budget === undefined ? b : Math.min(budget, b);
  }

  const cores: MpoCore[] = [];
  const bonds: MpoBond[] = [];
  let carry = P;
  let chiPrev = 1;
  let untruncatedSoFar = true;
  const seed = opts.seed ?? 0x5eed;
  for (let k = 0; k < N - 1; k++) {
    check(opts.signal);
    const m = chiPrev * d[k];
    const n = d.slice(k + 1).reduce((a, b) => a * b, 1);
    const cap = truncation.chi === undefined ? undefined : Array.isArray(truncation.chi) ? truncation.chi[k] : truncation.chi;
    opts.progress?.(`bond ${k + 1}/${N - 1}: unfolding ${m} x ${n}`);
    let step: StepResult;
    try {
      step = await sweepStep({ rows: m, cols: n, data: carry }, cap, budget, backend, routes, seed + k, opts.signal);
    } catch (e) {
      if (e instanceof RangeError) throw new RangeError(`bond ${k + 1}: ${e.message}`);
      throw e;
    }
    cores.push({ shape: [chiPrev, outFactors[k], inFactors[k], step.r], data: step.U });
    const L = d.slice(0, k + 1).reduce((a, b) => a * b, 1);
    const maxRank = Math.min(L, n);
    const exactHere = untruncatedSoFar && step.complete; // the sweep saw the original unfolding itself
    const ent = step.complete ? spectrumEntropies(step.spectrum) : undefined;
    bonds.push({
      index: k + 1,
      leftDim: L,
      rightDim: n,
      maxRank,
      dimension: step.r,
      schmidtValues: step.spectrum,
      spectrumSource: exactHere ? 'exact' : step.complete ? 'sweep' : 'sweep-partial',
      entropy: ent ? ent.entropy : null,
      renyi2: ent ? ent.renyi2 : null,
      maxEntropy: Math.log(maxRank),
      discardedWeight: step.discarded,
      relativeDiscardedWeight: normSq > 0 ? step.discarded / normSq : 0,
      optimalDiscardedWeight: exactHere ? tailWeight(step.spectrum, step.r) : null,
      route: step.route,
      ...(step.randomized ? { randomized: step.randomized } : {}),
    });
    if (step.r < Math.min(m, n)) untruncatedSoFar = false;
    carry = step.C;
    chiPrev = step.r;
  }
  cores.push({ shape: [chiPrev, outFactors[N - 1], inFactors[N - 1], 1], data: carry });

  if ((opts.spectra ?? 'exact') === 'exact') {
    for (const b of bonds) {
      // Cuts wider than gramMaxSide on both sides keep the sweep's (partial) spectrum: the full one
      // would need an O(min(L, R)^2) dense matrix.
      if (b.spectrumSource === 'exact' || b.maxRank > routes.gramMaxSide) continue;
      check(opts.signal);
      opts.progress?.(`bond ${b.index}: exact spectrum of the ${b.leftDim} x ${b.rightDim} unfolding`);
      // The unfolding at a cut is P's memory viewed as L_k x R_k (mpoTensor.ts).
      const s = await backend.singularValues({ rows: b.leftDim, cols: b.rightDim, data: P }, { signal: opts.signal });
      const ent = spectrumEntropies(s);
      b.schmidtValues = s;
      b.spectrumSource = 'exact';
      b.entropy = ent.entropy;
      b.renyi2 = ent.renyi2;
      b.optimalDiscardedWeight = tailWeight(s, b.dimension);
    }
  }

  const bondDimensions = bonds.map((b) => b.dimension);
  const discardedTotal = bonds.reduce((a, b) => a + b.discardedWeight, 0);
  return {
    rows,
    cols,
    plan,
    outFactors,
    inFactors,
    cores,
    bonds,
    bondDimensions,
    params: mpoParamCount(outFactors, inFactors, bondDimensions),
    denseParams: rows * cols,
    frobeniusNorm: Math.sqrt(normSq),
    relativeError: normSq > 0 ? Math.sqrt(discardedTotal / normSq) : 0,
  };
}

/**
 * Contracts the cores back into the dense [rows, cols] matrix: A_1 = G_1 as d_1 x chi_1, then
 * A_k = A_{k-1} (L_{k-1} x chi_{k-1}) times G_k (chi_{k-1} x d_k chi_k), read as L_k x chi_k; the final
 * L_N x 1 column is the site-ordered tensor P, which is inverse-permuted and cropped of any padding.
 */
export async function reconstructMpo(mpo: Pick<MpoDecomposition, 'cores' | 'rows' | 'cols' | 'outFactors' | 'inFactors'>, backend: LinalgBackend, signal?: AbortSignal): Promise<Float32Array> {
  let acc = mpo.cores[0].data;
  let L = mpo.cores[0].shape[1] * mpo.cores[0].shape[2];
  for (let k = 1; k < mpo.cores.length; k++) {
    check(signal);
    const [chiL, o, i, chiR] = mpo.cores[k].shape;
    const prod = await backend.gemm({ rows: L, cols: chiL, data: acc }, { rows: chiL, cols: o * i * chiR, data: mpo.cores[k].data }, { signal });
    acc = prod.data;
    L *= o * i;
  }
  return siteTensorToMatrix(acc, mpo.rows, mpo.cols, mpo.outFactors, mpo.inFactors);
}

/** The JSON-serialisable summary (what `tensor-scalpel mpo --json` prints and the UI draws). */
export interface MpoReport {
  shape: [number, number];
  outFactors: number[];
  inFactors: number[];
  bondDimensions: number[];
  bondEntropies: Array<number | null>;
  bondRenyi2: Array<number | null>;
  maxBondEntropies: number[];
  bondSpectra: number[][];
  bondSpectrumSources: string[];
  discardedWeights: number[];
  relativeDiscardedWeights: number[];
  optimalDiscardedWeights: Array<number | null>;
  routes: SweepRoute[];
  params: number;
  denseParams: number;
  compression: number;
  frobeniusNorm: number;
  relativeError: number;
  sitePlan: { strategy: SitePlan['strategy']; requestedSites: number; sites: number };
  padding?: { rows: number; cols: number; paddedShape: [number, number] };
}

export function mpoReport(mpo: MpoDecomposition): MpoReport {
  const padded = mpo.plan.padding.rows > 0 || mpo.plan.padding.cols > 0;
  return {
    shape: [mpo.rows, mpo.cols],
    outFactors: mpo.outFactors,
    inFactors: mpo.inFactors,
    bondDimensions: mpo.bondDimensions,
    bondEntropies: mpo.bonds.map((b) => b.entropy),
    bondRenyi2: mpo.bonds.map((b) => b.renyi2),
    maxBondEntropies: mpo.bonds.map((b) => b.maxEntropy),
    bondSpectra: mpo.bonds.map((b) => Array.from(b.schmidtValues)),
    bondSpectrumSources: mpo.bonds.map((b) => b.spectrumSource),
    discardedWeights: mpo.bonds.map((b) => b.discardedWeight),
    relativeDiscardedWeights: mpo.bonds.map((b) => b.relativeDiscardedWeight),
    optimalDiscardedWeights: mpo.bonds.map((b) => b.optimalDiscardedWeight),
    routes: mpo.bonds.map((b) => b.route),
    params: mpo.params,
    denseParams: mpo.denseParams,
    compression: mpo.denseParams / mpo.params,
    frobeniusNorm: mpo.frobeniusNorm,
    relativeError: mpo.relativeError,
    sitePlan: { strategy: mpo.plan.strategy, requestedSites: mpo.plan.requestedSites, sites: mpo.outFactors.length },
    ...(padded ? { padding: { rows: mpo.plan.padding.rows, cols: mpo.plan.padding.cols, paddedShape: [mpo.plan.paddedOut, mpo.plan.paddedIn] as [number, number] } } : {}),
  };
}
