/**
 * Estimate mode: spectrum metrics of a large matrix W (m x n) without computing all its singular
 * values: block Lanczos on the Gram operator, started from Rademacher probes, whose one Krylov space
 * gives both the top-k singular values (Ritz values) and stochastic Lanczos quadrature (SLQ; Ubaru,
 * Chen & Saad, SIAM J. Matrix Anal. Appl. 38(4), 2017) for the traces.
 *
 * Let A be the Gram operator of the smaller side (A = W^T W when n < m, else W W^T; r = min(m, n)
 * eigenvalues lambda_i = s_i^2) and T = tr(A) = ||W||_F^2, summed exactly. With p_i = lambda_i / T:
 *   S   = -sum p_i ln p_i = tr(g(A)),        g(lambda) = -(lambda/T) ln(lambda/T)
 *   S_2 = -ln sum p_i^2   = -ln(tr(A^2) / T^2).
 *
 * The Krylov space. Block Lanczos with full reorthogonalisation (backend.lanczosSvd = linalg/sketch.ts
 * lanczosSvdWith, keepKrylov) from the start block Z = [z_1 .. z_p] of p Rademacher probes (default 32)
 * runs q block steps: at least `lanczosSteps` (default 8), and on until every one of the top k
 * (default 32) Ritz values' extrapolated remaining error is below topKTolerance / 2 * s_1 (default
 * 1e-4), at most topKMaxIterations (default 24) steps. It returns the orthonormal basis Q (r x D,
 * D = p q), H = Q^T A Q, and R0 with Z = Q_1 R0.
 *
 * Top-k values: the square roots of H's largest eigenvalues (Ritz values rise monotonically to the
 * singular values; Krylov methods converge with the square root of the gap, where the randomized SVD
 * with 2 power iterations used before read gapless spectra up to 10% low). Reported with them:
 * topKResidual, a rigorous bound (some singular value within topKResidual * s_1 of each s_i), Lanczos'
 * own error estimate, and whether it converged. Measured max_i |s_i - sigma_i| / sigma_1 over the top
 * 32: 4096 x 14336 (bench A) 5.7e-6, 4096 x 4096 quarter circle 2.5e-5, 512 x 2048 Gaussian and
 * 1/sqrt(i) spectra < 1e-4 on both backends (test/core/analysis/estimate-topk.test.ts).
 *
 * Traces: block Gauss quadrature. For z_l in the start block, Q^T z_l = (R0 e_l, 0, ...), and with the
 * eigenpairs (mu_i, y_i) of H
 *   z_l^T f(A) z_l ~= sum_i c_il^2 f(mu_i),   c_il = y_i[0:p]^T R0 e_l,
 * exact for polynomials f of degree <= 2q - 1. E[z^T f(A) z] = tr f(A) (Hutchinson). Deflation
 * (Hutch++'s variance cut) comes free: Q f(H) Q^T = sum_i b_i b_i^T f(mu_i) with Ritz vectors
 * b_i = Q y_i, so the converged top Ritz pairs (Gram residual <= 1e-3 s_j^2) are taken out of every
 * probe's sum and added once:
 *   tr f(A) ~= sum_{j top} f(mu_j) + (1/p) sum_l sum_{i not top} c_il^2 f(mu_i),
 * unbiased up to the quadrature since E[(b_j^T z)^2] = 1 (to the extent b_j, which the probes helped
 * build, does not depend on them: b_j converged is a fixed eigenvector up to its residual). No pass
 * over W is spent on anything but the Krylov space: on 4096 x 14336 this is 16 passes with 32
 * columns (1.2 s), where separate top-k Lanczos + SLQ took 16 + 20 passes (2.0-2.5 s).
 *
 * Variance reduction: tr(P A P) = T - sum_{top} mu_j is known exactly and each probe's quadrature
 * reproduces z^T A z exactly (degree 1), so the plain trace serves as a control variate for the entropy
 * and purity traces (regression estimator, see controlVariateMean). Reported confidence: the 95%
 * interval of that estimator (Student t, p - 2 degrees of freedom). It covers the Hutchinson sampling
 * error, not the quadrature bias (bench B: 0.27% on an exponential spectrum, <= 0.04% on the others).
 *
 * Cost: 2 q passes over W with p columns, the Rayleigh-Ritz eigenvalues of H after each block
 * (D <= 24 p), and one eigendecomposition of H with vectors at the end; memory O(D r) for the basis.
 */
import type { LinalgBackend, Matrix, SvdResult } from '../linalg/types';
import type { LanczosOptions, LanczosSvdResult } from '../linalg/sketch';
import { throwIfAborted } from '../checkpoint/errors';
import { Random } from './random';
import {
  type MatrixShape, type SpectralDensity, type SpectrumMetrics, marchenkoPasturFit, powerLawFit,
  numericalRankThreshold, binOf,
} from './spectrum';

export interface EstimateOptions {
  /** Rademacher probe vectors (default 32): the start block of the Krylov space, so also its block size. */
  probes?: number;
  /** Block Lanczos steps at least (default 8): the quadrature is exact for polynomials of degree 2 steps - 1. */
  lanczosSteps?: number;
  /** Top singular values computed to `topKTolerance` by block Lanczos, also deflated out of the estimate (default 32). */
  topK?: number;
  /**
   * Accuracy of the top-k values relative to s_1 (default 1e-4): block Lanczos runs until every
   * value's extrapolated remaining error is below topKTolerance / 2 * s_1 (lanczosSvdWith's value
   * test, with a factor 2 of margin because it is an extrapolation, not a bound).
   */
  topKTolerance?: number;
  /** Cap on the block Lanczos steps (default 24; the whole basis is kept, so this bounds memory too); topKConverged says whether it sufficed. */
  topKMaxIterations?: number;
  /** Seed for probes and sketch (default 1): the same seed gives the same estimate. */
  seed?: number;
  /** Bins of the spectral density histogram (default 64). */
  bins?: number;
  signal?: AbortSignal;
}

/** A point estimate with its 95% confidence interval. */
export interface Interval {
  estimate: number;
  low: number;
  high: number;
}

export interface SpectrumEstimate {
  rank: number;
  /** The k largest singular values, descending, each to about topKTolerance * s_1 (see topKErrorEstimate). */
  topSingularValues: number[];
  /**
   * max_i r_i / s_1 with r_i the residual of the i-th triplet (u_i, s_i, v_i): a rigorous bound, each
   * reported s_i has a singular value of W within topKResidual * s_1 (Weyl, for [[0, W], [W^T, 0]]).
   * From Lanczos (r_i = ||W W^T u_i - s_i^2 u_i|| / s_i, the other side being exact by construction),
   * or measured as ||(W v_i - s_i u_i, W^T u_i - s_i v_i)|| / sqrt 2 when the backend does not report
   * it. The actual errors are far smaller: they go like r_i^2 / (gap to the neighbouring values).
   */
  topKResidual: number;
  /**
   * max_i of Lanczos' extrapolated remaining error of s_i, relative to s_1 (the stopping test; see
   * valueErrorEstimates in linalg/sketch.ts); null when the backend did not report it.
   */
  topKErrorEstimate: number | null;
  /** Whether block Lanczos met topKTolerance within topKMaxIterations (null: not reported by the backend). */
  topKConverged: boolean | null;
  /** ||W||_F^2, exact. */
  frobeniusSquared: number;
  vonNeumannEntropy: Interval;
  renyi2Entropy: Interval;
  effectiveRank: Interval;
  /** Estimated median eigenvalue (s^2) of the whole spectrum, for the Marchenko-Pastur fit. */
  eigenvalueMedian: number;
  /** Estimated number of singular values above the numerical-rank threshold. */
  numericalRank: number;
  density: SpectralDensity;
  probes: number;
  lanczosSteps: number;
  /** Relative error of the stochastic estimate of tr(P A P) against its exact value T - sum_{i<=k} s_i^2 (a self-check). */
  traceCheck: number;
}

/** Student t quantile t_{0.975, df} (Cornish-Fisher expansion around the normal 1.95996; < 0.5% off for df >= 3). */
export function tQuantile975(df: number): number {
  const z = 1.959963984540054;
  if (!(df >= 1)) return Infinity;
  if (df === 1) return 12.706;
  if (df === 2) return 4.303;
  const z3 = z ** 3, z5 = z ** 5, z7 = z ** 7;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df * df) + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3);
}

/** sum of squares of a float32 array in float64: T = ||W||_F^2 exactly enough (relative error ~1e-16 * sqrt(mn)). */
export function frobeniusSquared(data: Float32Array): number {
  // Four independent float64 accumulators: the loop is bound by the add latency otherwise (measured
  // 160 -> 60 ms on 4096 x 14336); the summation order changes the result only at rounding level.
  let t0 = 0, t1 = 0, t2 = 0, t3 = 0;
  const n = data.length, n4 = n - (n % 4);
  for (let i = 0; i < n4; i += 4) {
    const a = data[i]!, b = data[i + 1]!, c = data[i + 2]!, d = data[i + 3]!;
    t0 += a * a; t1 += b * b; t2 += c * c; t3 += d * d;
  }
  for (let i = n4; i < n; i++) t0 += data[i]! * data[i]!;
  return (t0 + t1) + (t2 + t3);
}

/**
 * SLQ estimate of the spectrum metrics of W (rows x cols). `backend` supplies lanczosSvd and gemm.
 */
export async function estimateSpectrum(backend: LinalgBackend, W: Matrix, opts: EstimateOptions = {}): Promise<SpectrumEstimate> {
  const { rows, cols } = W;
  const r = Math.min(rows, cols);
  // A = W^T W (n = cols) or W W^T (n = rows): the smaller side, W W^T when square, as in lanczosSvdWith.
  const gramOfCols = cols < rows;
  const n = r;
  const nv = Math.max(3, Math.min(opts.probes ?? 32, r));
  const steps = Math.max(2, opts.lanczosSteps ?? 8);
  const kWanted = Math.min(opts.topK ?? 32, r);
  const seed = opts.seed ?? 1;
  const bins = opts.bins ?? 64;
  const signal = opts.signal;
  const T = frobeniusSquared(W.data);
  const g = (lambda: number) => (lambda > 0 && T > 0 ? -(lambda / T) * Math.log(lambda / T) : 0);

  // 1. One block Krylov space from the Rademacher probes Z (n x nv) serves both halves: its Ritz
  // values are the top-k singular values (to topKTolerance), and block Gauss quadrature from Z gives
  // the Hutchinson samples z^T g(A) z. No pass over W is spent on anything else.
  throwIfAborted(signal);
  const topKTolerance = opts.topKTolerance ?? 1e-4;
  const rng = new Random(seed ^ 0x5bd1e995);
  const Z = new Float64Array(n * nv);
  for (let i = 0; i < Z.length; i++) Z[i] = rng.rademacher();
  const maxBlocks = Math.max(1, opts.topKMaxIterations ?? 24);
  const lanczos: LanczosOptions = {
    // Half the tolerance: the stopping test extrapolates, so it gets a factor 2 of margin.
    signal, valueTolerance: topKTolerance / 2, tolerance: topKTolerance,
    startBlock: { rows: n, cols: nv, data: Z }, minIterations: Math.min(steps, maxBlocks), keepKrylov: true,
    // The whole basis is kept (no thick restarts), so the cap also bounds memory (n x nv x cap) and
    // the Rayleigh-Ritz cost.
    maxIterations: maxBlocks,
    // Only the smaller side's vectors are needed: saves a pass over W.
    otherSide: false,
  };
  const top: SvdResult & Partial<LanczosSvdResult> = await backend.lanczosSvd(W, kWanted, lanczos);
  const k = Math.min(kWanted, top.S.length); // fewer only if the Krylov space is smaller than k
  const topS = Array.from(top.S.subarray(0, k));
  const topKResidual = top.residuals
    ? (topS[0] > 0 ? Math.max(0, ...Array.from(top.residuals.subarray(0, k))) / topS[0] : 0)
    : await tripletResidual(backend, W, top, k, signal);
  const estimates = top.errorEstimates ? Array.from(top.errorEstimates.subarray(0, k)) : undefined;
  const topKErrorEstimate = estimates && topS[0] > 0 ? Math.max(0, ...estimates) / topS[0] : estimates ? 0 : null;
  const kry = top.krylov;
  if (!kry) throw new Error(`estimate: backend ${backend.name} did not return its Krylov space`);
  const D = kry.basis.cols;

  // 2. Eigenpairs (mu_i, y_i) of H = Q^T A Q. For a probe z = Q_1 R0 e_l (first block), Q^T z = (R0 e_l, 0, ...)
  // and the block Gauss quadrature is  z^T g(A) z ~= sum_i c_il^2 g(mu_i),  c_il = y_i[0:b]^T R0 e_l.
  throwIfAborted(signal);
  const eig = await backend.symEig({ rows: D, cols: D, data: kry.h }, { vectors: true, signal });
  const mu = eig.values, Y = eig.vectors!; // ascending; column i of Y (row-major D x D) is y_i
  const b0 = Math.sqrt(kry.startR.length) | 0;
  // 3. Deflation inside the quadrature: Q g(H) Q^T = sum_i b_i b_i^T g(mu_i) with Ritz vectors b_i = Q y_i.
  // The top Ritz pairs that have converged (Gram residual rho_j <= 1e-3 s_j^2) are taken out of every
  // probe's sum and added once, exactly:
  //   tr g(A) ~= sum_{j top} g(mu_j) + mean_l sum_{i not top} c_il^2 g(mu_i),
  // unbiased up to the quadrature because E[(b_j^T z)^2] = ||b_j||^2 = 1; the removed terms are the
  // ones that carry most of the variance (Hutch++'s deflation, here without extra products).
  const conv = new Set<number>(); // indices into mu (ascending)
  for (let j = 0; j < k; j++) {
    const rj = top.residuals?.[j];
    if (rj !== undefined && topS[j] > 0 && rj <= 1e-3 * topS[j]) conv.add(D - 1 - j);
  }
  let gTop = 0, sqTop = 0, lambdaTopSum = 0;
  const nodes: Array<[number, number]> = []; // (eigenvalue, weight in eigenvalue counts)
  for (const i of conv) {
    const lambda = Math.max(0, mu[i]!);
    gTop += g(lambda); sqTop += lambda * lambda; lambdaTopSum += lambda;
    nodes.push([lambda, 1]);
  }
  const perProbeG = new Float64Array(nv), perProbeSq = new Float64Array(nv), perProbeLambda = new Float64Array(nv);
  const nodeWeight = new Float64Array(D);
  for (let l = 0; l < nv; l++) {
    let qg = 0, qsq = 0, ql = 0;
    for (let i = 0; i < D; i++) {
      if (conv.has(i)) continue;
      let c = 0;
      for (let a = 0; a < b0; a++) c += Y[a * D + i]! * kry.startR[a * b0 + l]!;
      const w = c * c, lambda = Math.max(0, mu[i]!);
      qg += w * g(lambda); qsq += w * lambda * lambda; ql += w * lambda;
      nodeWeight[i] += w / nv;
    }
    perProbeG[l] = qg; perProbeSq[l] = qsq; perProbeLambda[l] = ql;
  }
  for (let i = 0; i < D; i++) if (!conv.has(i) && nodeWeight[i] > 0) nodes.push([Math.max(0, mu[i]!), nodeWeight[i]]);
  const remainderExact = Math.max(0, T - lambdaTopSum);
  // tr(P A P) = T - sum_j b_j^T A b_j is known exactly, and u^T A u is reproduced exactly by the
  // quadrature (degree 1): a control variate for the other traces, whose per-probe values move with it.
  const gRest = controlVariateMean(perProbeG, perProbeLambda, remainderExact);
  const sqRest = controlVariateMean(perProbeSq, perProbeLambda, remainderExact);
  const lambdaRest = meanAndError(perProbeLambda);
  const tq = tQuantile975(nv - 2);

  const S = gTop + gRest.mean;
  const vonNeumannEntropy = { estimate: S, low: S - tq * gRest.error, high: S + tq * gRest.error };
  const purity = (sq: number) => (T > 0 ? (sqTop + Math.max(0, sq)) / (T * T) : 1);
  const renyi = (sq: number) => -Math.log(Math.min(1, purity(sq)));
  const renyi2Entropy = {
    estimate: renyi(sqRest.mean),
    low: renyi(sqRest.mean + tq * sqRest.error),
    high: renyi(Math.max(0, sqRest.mean - tq * sqRest.error)),
  };
  const effectiveRank = { estimate: Math.exp(S), low: Math.exp(vonNeumannEntropy.low), high: Math.exp(vonNeumannEntropy.high) };

  // 5. The spectral measure: the pooled quadrature nodes of the top rows (mass 1 each) and the probes.
  nodes.sort((a, b) => a[0] - b[0]);
  const eigenvalueMedian = weightedQuantile(nodes, r / 2);
  const s1 = topS[0] ?? 0;
  const thr = numericalRankThreshold(s1, { rows, cols }) ** 2;
  let numericalRank = 0;
  for (const [lambda, w] of nodes) if (lambda > thr) numericalRank += w;
  const edges = Array.from({ length: bins + 1 }, (_, b) => (s1 * b) / bins);
  const counts = new Array<number>(bins).fill(0);
  for (const [lambda, w] of nodes) counts[binOf(Math.sqrt(lambda), s1, bins)] += w;

  return {
    rank: r,
    topSingularValues: topS,
    topKResidual,
    topKErrorEstimate: topKErrorEstimate !== null && Number.isFinite(topKErrorEstimate) ? topKErrorEstimate : null,
    topKConverged: top.converged ?? null,
    frobeniusSquared: T,
    vonNeumannEntropy,
    renyi2Entropy,
    effectiveRank,
    eigenvalueMedian,
    numericalRank: Math.min(r, Math.round(numericalRank)),
    density: { edges, counts },
    probes: nv,
    lanczosSteps: steps,
    traceCheck: remainderExact > 0 ? (lambdaRest.mean - remainderExact) / remainderExact : 0,
  };
}

/**
 * max_i sqrt((||W v_i - s_i u_i||^2 + ||W^T u_i - s_i v_i||^2) / 2) / s_1 over the first k triplets:
 * the residual of the unit vector (u_i, v_i) / sqrt 2 for the symmetric [[0, W], [W^T, 0]], whose
 * eigenvalues are +-sigma_j, so some sigma_j is within it of s_i (Weyl). Two float32 products
 * (their rounding, ~1e-7 ||W|| per entry, sets the floor).
 */
async function tripletResidual(backend: LinalgBackend, W: Matrix, t: SvdResult, k: number, signal?: AbortSignal): Promise<number> {
  if (k === 0 || !(t.S[0]! > 0)) return 0;
  const { rows, cols } = W;
  const u32 = new Float32Array(rows * k);
  for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) u32[i * k + j] = t.U.data[i * t.U.cols + j]!;
  const vt32 = Float32Array.from(t.Vt.data.subarray(0, k * cols));
  const wv = await backend.gemm(W, { rows: k, cols, data: vt32 }, { transB: true, signal }); // rows x k
  const wtu = await backend.gemm({ rows, cols: k, data: u32 }, W, { transA: true, signal }); // k x cols
  let worst = 0;
  for (let j = 0; j < k; j++) {
    const s = t.S[j]!;
    let r2 = 0;
    for (let i = 0; i < rows; i++) r2 += (wv.data[i * k + j]! - s * t.U.data[i * t.U.cols + j]!) ** 2;
    for (let c = 0; c < cols; c++) r2 += (wtu.data[j * cols + c]! - s * t.Vt.data[j * cols + c]!) ** 2;
    worst = Math.max(worst, Math.sqrt(r2 / 2));
  }
  return worst / t.S[0]!;
}

/** Z = X A for a block of row vectors X (nv x n): X W^T W (A = W^T W) or X W W^T (A = W W^T), in two gemms. */
async function applyGram(backend: LinalgBackend, W: Matrix, X: Matrix, gramOfCols: boolean, signal?: AbortSignal): Promise<Float64Array> {
  let Z: Matrix;
  if (gramOfCols) {
    const Y = await backend.gemm(X, W, { transB: true, signal }); // nv x rows
    Z = await backend.gemm(Y, W, { signal }); // nv x cols
  } else {
    const Y = await backend.gemm(X, W, { signal }); // nv x cols
    Z = await backend.gemm(Y, W, { transB: true, signal }); // nv x rows
  }
  return Float64Array.from(Z.data);
}

function meanAndError(xs: Float64Array): { mean: number; error: number } {
  const n = xs.length;
  let mean = 0;
  for (const x of xs) mean += x;
  mean /= n;
  let v = 0;
  for (const x of xs) v += (x - mean) ** 2;
  v /= Math.max(1, n - 1);
  return { mean, error: Math.sqrt(v / n) };
}

/**
 * Regression (control-variate) estimate of E[y] given paired x with known mean mu_x:
 *   y_cv = mean(y) - beta (mean(x) - mu_x),  beta = cov(x, y) / var(x),
 * with standard error sd(y - beta x) / sqrt(n) on n - 2 degrees of freedom (beta is fitted).
 * When y is nearly proportional to x across probes — as the entropy contribution is to the plain
 * trace — this removes most of the probe-to-probe variance.
 */
function controlVariateMean(y: Float64Array, x: Float64Array, muX: number): { mean: number; error: number } {
  const n = y.length;
  const my = meanAndError(y).mean, mx = meanAndError(x).mean;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) ** 2; }
  const beta = sxx > 0 ? sxy / sxx : 0;
  let rss = 0;
  for (let i = 0; i < n; i++) rss += (y[i] - my - beta * (x[i] - mx)) ** 2;
  const dof = Math.max(1, n - 2);
  return { mean: my - beta * (mx - muX), error: Math.sqrt(rss / dof / n) };
}

/** The value below which `target` of the total weight lies, interpolating linearly between sorted nodes. */
function weightedQuantile(sorted: Array<[number, number]>, target: number): number {
  let acc = 0;
  for (let i = 0; i < sorted.length; i++) {
    const [x, w] = sorted[i];
    if (acc + w >= target) {
      const prev = i > 0 ? sorted[i - 1][0] : 0;
      const frac = w > 0 ? (target - acc) / w : 1;
      return prev + frac * (x - prev);
    }
    acc += w;
  }
  return sorted.length ? sorted[sorted.length - 1][0] : 0;
}

/** Everything estimate mode reports for one matrix, in the shape of the exact metrics plus confidence. */
export interface EstimatedMetrics extends SpectrumMetrics {
  confidence: {
    level: 0.95;
    vonNeumannEntropy: [number, number];
    normalizedEntropy: [number, number] | null;
    renyi2Entropy: [number, number];
    effectiveRank: [number, number];
  };
}

/**
 * Turns an SLQ estimate into the metric set of spectrum.ts. Exact parts: Frobenius norm (summed),
 * spectral norm and stable rank (s_1 from block Lanczos, to topKTolerance). Estimated parts carry a
 * 95% interval. The Marchenko-Pastur sigma uses the estimated median eigenvalue; outliers are counted
 * among the top-k (if all k are above the edge the true count may be larger). alpha is fitted on the
 * top-k eigenvalues only: the power-law tail lives there, but xmin cannot go below lambda_k.
 */
export function estimatedMetrics(e: SpectrumEstimate, shape: MatrixShape): EstimatedMetrics {
  const s1 = e.topSingularValues[0] ?? 0;
  const lnR = Math.log(e.rank);
  const mp = marchenkoPasturFit(e.topSingularValues, shape, e.eigenvalueMedian);
  const fit = powerLawFit(e.topSingularValues.map((s) => s * s));
  return {
    rank: e.rank,
    vonNeumannEntropy: e.vonNeumannEntropy.estimate,
    normalizedEntropy: e.rank > 1 ? e.vonNeumannEntropy.estimate / lnR : null,
    renyi2Entropy: e.renyi2Entropy.estimate,
    effectiveRank: e.effectiveRank.estimate,
    stableRank: s1 > 0 ? e.frobeniusSquared / (s1 * s1) : 0,
    spectralNorm: s1,
    frobeniusNorm: Math.sqrt(e.frobeniusSquared),
    numericalRank: e.numericalRank,
    mpSigma: mp.sigma,
    mpEdge: mp.edge,
    outliers: mp.outliers,
    alpha: fit ? fit.alpha : null,
    alphaFit: fit,
    confidence: {
      level: 0.95,
      vonNeumannEntropy: [e.vonNeumannEntropy.low, e.vonNeumannEntropy.high],
      normalizedEntropy: e.rank > 1 ? [e.vonNeumannEntropy.low / lnR, e.vonNeumannEntropy.high / lnR] : null,
      renyi2Entropy: [e.renyi2Entropy.low, e.renyi2Entropy.high],
      effectiveRank: [e.effectiveRank.low, e.effectiveRank.high],
    },
  };
}
