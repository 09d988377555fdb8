/**
 * Estimate mode: spectrum metrics of a large matrix W (m x n) without computing all its singular
 * values, by stochastic Lanczos quadrature (SLQ; Ubaru, Chen & Saad, "Fast estimation of tr(f(A))
 * via stochastic Lanczos quadrature", SIAM J. Matrix Anal. Appl. 38(4), 2017) on the Gram operator.
 *
 * Let A be the Gram operator of the smaller side (A = W^T W when n < m, else W W^T; r = min(m, n)
 * eigenvalues lambda_i = s_i^2) and T = tr(A) = ||W||_F^2, summed exactly. With p_i = lambda_i / T:
 *   S   = -sum p_i ln p_i = tr(g(A)),        g(lambda) = -(lambda/T) ln(lambda/T)
 *   S_2 = -ln sum p_i^2   = -ln(tr(A^2) / T^2)
 * (equivalently S = ln T - tr(A ln A) / T). Each trace is
 *   tr(f(A)) = tr(V_k^T f(A) V_k)  +  tr(P f(A) P),   P = I - V_k V_k^T,
 * with V_k the top-k eigenvectors (they dominate both sums for trained weights, and removing them —
 * "deflation", as in Hutch++ — cuts the variance of the stochastic part).
 * The first sum is evaluated as sum_j v_j^T f(A) v_j by Lanczos quadrature from each v_j (exact for
 * any orthonormal V_k, converged or not); the remainder is the Hutchinson estimate over Rademacher
 * probes v_l, u_l = P v_l:
 *   u^T f(A) u ~= ||u||^2 sum_j tau_j^2 f(theta_j)
 * with theta_j, tau_j the eigenvalues and eigenvector first components of the s-step Lanczos
 * tridiagonal of P A P started at u / ||u|| (Gauss quadrature, Golub & Welsch). All probes advance
 * together: one Lanczos step applies A to the whole block of running rows with two backend.gemm
 * products; the top rows, which start near-invariant, stop after `topLanczosSteps` (default 3).
 * Top vectors that Lanczos reports as converged (residual r_j <= 1e-2 s_j) skip the quadrature: their
 * contributions follow in closed form from s_j and r_j (see the comment at the top part below).
 * Lanczos runs without reorthogonalisation: in floating point its quadrature still matches a nearby
 * exact one (Greenbaum 1989), which is all a trace estimate needs.
 *
 * Variance reduction: tr(P A P) = T - sum_j v_j^T A v_j is known exactly, so the plain trace serves as
 * a control variate for the entropy and purity traces (regression estimator, see controlVariateMean).
 * Reported confidence: the 95% interval of that estimator (Student t, probes - 2 degrees of freedom).
 * It covers the Hutchinson sampling error, not the Lanczos quadrature bias (on the test spectra the
 * estimates move < 0.1% between 10 and 20 steps).
 *
 * Top-k singular values: block Lanczos with full reorthogonalisation on the Gram operator of the
 * smaller side (backend.lanczosSvd = linalg/sketch.ts lanczosSvdWith), blocks of min(k, 32) columns,
 * thick-restarted at 12 blocks, run until every one of the k Ritz values' extrapolated remaining
 * error is below topKTolerance / 2 * s_1 (topKTolerance default 1e-4). The Ritz values rise
 * monotonically to the singular values; the error estimate is the geometric tail of their last
 * increments. A randomized SVD with a fixed 2 power iterations, used before, reads gapless spectra
 * (Gaussian-like bulks, flat tops) up to 10% low; Krylov methods converge with the square root of
 * the gap instead. Measured max_i |s_i - sigma_i| / sigma_1 over the top 32: 4096 x 4096 Gaussian
 * 1.5e-5 (randomized SVD: 1.0e-1), 512 x 2048 Gaussian and 1/sqrt(i) spectra < 1e-4 on both
 * backends (test/core/analysis/estimate-topk.test.ts). Reported with them: topKResidual, a rigorous
 * bound (some singular value within topKResidual * s_1 of each s_i; much larger than the actual
 * error, which goes like residual^2 / gap), Lanczos' own error estimate, and whether it converged.
 * The basis-side Ritz vectors are orthonormal to float64 rounding, the other side after a
 * CholeskyQR, so the deflation basis B below is orthonormal either way.
 *
 * Cost: 2 passes over W with min(k, 32) columns per Lanczos block (8 blocks on a decaying spectrum,
 * ~21 on a 4096 x 4096 Gaussian) plus one with k columns at the end and the small Rayleigh-Ritz
 * eigenproblems (at most 12 blocks square), then 2 x lanczosSteps passes with probes (+ the
 * unconverged top vectors, usually none, for the first topLanczosSteps) columns; memory
 * O(12 min(k, 32) min(m, n)) for the Lanczos basis, O((k + probes) n) for SLQ.
 */
import type { LinalgBackend, Matrix, SvdResult } from '../linalg/types';
import type { LanczosOptions, LanczosSvdResult } from '../linalg/sketch';
import { throwIfAborted } from '../checkpoint/errors';
import { Random } from './random';
import { tridiagonalEigen } from './tridiagonal';
import {
  type MatrixShape, type SpectralDensity, type SpectrumMetrics, marchenkoPasturFit, powerLawFit,
  numericalRankThreshold, binOf,
} from './spectrum';

export interface EstimateOptions {
  /**
   * Rademacher probe vectors (default 16). Each Lanczos step is one pass over W for all probes at once,
   * bound by reading W (4096 x 14336: 30 ms with 16 columns, 40 ms with 32). Measured: 32 probes x 6
   * steps is ~15% faster than 16 x 10 but doubles the quadrature bias on decaying spectra (exponential
   * s_i = exp(-i/200): 1.0% vs 0.65%), so the defaults stay.
   */
  probes?: number;
  /** Lanczos steps per probe (default 10: on the test spectra entropy and Renyi-2 change < 0.1% from 10 to 20 steps). */
  lanczosSteps?: number;
  /** Top singular values computed to `topKTolerance` by block Lanczos, also deflated out of the estimate (default 32). */
  topK?: number;
  /**
   * Accuracy of the top-k values relative to s_1 (default 1e-4): block Lanczos runs until every
   * value's extrapolated remaining error is below topKTolerance / 2 * s_1 (lanczosSvdWith's value
   * test, with a factor 2 of margin because it is an extrapolation, not a bound).
   */
  topKTolerance?: number;
  /** Cap on the block Lanczos steps (default 40 blocks of min(k, 32) columns); topKConverged says whether it sufficed. */
  topKMaxIterations?: number;
  /**
   * Lanczos steps from each top eigenvector estimate (default 3; 2 to 10 agree within 0.05% on the test spectra): they start close to invariant, so
   * their quadrature settles in a few steps, after which they leave the product block.
   */
  topLanczosSteps?: number;
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
  const nv = Math.max(2, opts.probes ?? 16);
  const steps = Math.max(2, Math.min(opts.lanczosSteps ?? 10, n));
  const kWanted = Math.min(opts.topK ?? 32, r);
  const topSteps = Math.max(1, Math.min(opts.topLanczosSteps ?? 3, steps));
  const seed = opts.seed ?? 1;
  const bins = opts.bins ?? 64;
  const signal = opts.signal;
  const T = frobeniusSquared(W.data);

  // 1. Top-k triplets to topKTolerance (values, and the eigenvectors of A that deflation removes).
  throwIfAborted(signal);
  const topKTolerance = opts.topKTolerance ?? 1e-4;
  const lanczos: LanczosOptions = {
    // Half the tolerance: the stopping test extrapolates, so it gets a factor 2 of margin.
    seed, signal, valueTolerance: topKTolerance / 2, maxIterations: opts.topKMaxIterations ?? 40,
    // Only the smaller side's vectors (the deflation basis B) are needed: saves a pass over W.
    otherSide: false,
    // A backend that ignores valueTolerance falls back to the (stricter, slower) residual test.
    tolerance: topKTolerance,
  };
  const top: SvdResult & Partial<LanczosSvdResult> = await backend.lanczosSvd(W, kWanted, lanczos);
  const k = Math.min(kWanted, top.S.length); // fewer only if topKMaxIterations cut the Krylov space below k
  const topS = Array.from(top.S.subarray(0, k));
  // Lanczos reports r_i for its triplets; a backend that does not is measured here (two more passes).
  const topKResidual = top.residuals
    ? (topS[0] > 0 ? Math.max(0, ...Array.from(top.residuals.subarray(0, k))) / topS[0] : 0)
    : await tripletResidual(backend, W, top, k, signal);
  const estimates = top.errorEstimates ? Array.from(top.errorEstimates.subarray(0, k)) : undefined;
  const topKErrorEstimate = estimates && topS[0] > 0 ? Math.max(0, ...estimates) / topS[0] : estimates ? 0 : null;
  // B: k x n, orthonormal rows spanning the top eigenvectors of A.
  const B = new Float64Array(k * n);
  if (gramOfCols) B.set(top.Vt.data.subarray(0, k * n));
  else for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) B[j * n + i] = top.U.data[i * top.U.cols + j];
  // The top part sum_j b_j^T f(A) b_j. A Ritz vector b_j of A (Gram residual rho_j = ||A b_j - s_j^2 b_j||,
  // rho_j = r_j s_j) has a spectral measure with mean exactly s_j^2 and variance rho_j^2, so
  //   b_j^T A b_j = s_j^2,   b_j^T A^2 b_j = s_j^4 + rho_j^2   (exact),
  //   b_j^T g(A) b_j = g(s_j^2) - rho_j^2 / (2 T s_j^2) + ...   (g'' = -1 / (T lambda); Jensen: <= g(s_j^2)),
  // and when r_j <= 1e-2 s_j the neglected term is below 5e-5 of the row's own share p_j = s_j^2 / T:
  // such "converged" rows are evaluated in closed form and need no products. The others (no residual
  // reported, or not converged) get quadrature rows: they start at b_j in rows 0..kq-1 of the
  // Lanczos block, before the deflated probes in rows kq..kq+nv-1; that quadrature is right for any
  // orthonormal B, so tr f(A) = tr(B f(A) B^T) + tr(P f(A) P) holds whatever Lanczos delivered.
  const closedForm: number[] = [], quadTop: number[] = [];
  for (let j = 0; j < k; j++) {
    const rj = top.residuals?.[j];
    if (rj !== undefined && topS[j] > 0 && rj <= 1e-2 * topS[j]) closedForm.push(j);
    else quadTop.push(j);
  }
  const kq = quadTop.length;
  const R = kq + nv;
  /** x <- (I - B^T B) x for the probe rows (kq..R-1) of X (R x n), skipping rows no longer active. */
  const deflate = (X: Float64Array, active?: boolean[]) => {
    if (k === 0) return;
    const c = new Float64Array(k);
    for (let l = kq; l < R; l++) {
      if (active && !active[l]) continue;
      const xo = l * n;
      for (let j = 0; j < k; j++) {
        let acc = 0;
        const bo = j * n;
        for (let i = 0; i < n; i++) acc += B[bo + i] * X[xo + i];
        c[j] = acc;
      }
      for (let j = 0; j < k; j++) {
        const cj = c[j];
        if (cj === 0) continue;
        const bo = j * n;
        for (let i = 0; i < n; i++) X[xo + i] -= cj * B[bo + i];
      }
    }
  };
  const g = (lambda: number) => (lambda > 0 && T > 0 ? -(lambda / T) * Math.log(lambda / T) : 0);

  // 2. Start vectors: B's rows (unit), then Rademacher probes, deflated and normalised; the weight
  // ||u||^2 carries each probe's norm into its quadrature.
  const rng = new Random(seed ^ 0x5bd1e995);
  const Q = new Float64Array(R * n);
  quadTop.forEach((j, a) => Q.set(B.subarray(j * n, (j + 1) * n), a * n));
  for (let i = kq * n; i < Q.length; i++) Q[i] = rng.rademacher();
  deflate(Q);
  const mass = new Float64Array(R);
  for (let l = 0; l < R; l++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += Q[l * n + i] ** 2;
    // A probe with nothing left after deflation (k = r: the top part is the whole space) is dropped.
    const empty = l >= kq && ss <= 1e-20 * n;
    mass[l] = l < kq ? 1 : empty ? 0 : ss;
    const inv = ss > 0 && !empty ? 1 / Math.sqrt(ss) : 0;
    for (let i = 0; i < n; i++) Q[l * n + i] *= inv;
  }

  // 3. Lanczos: A on the top rows, P A P on the probe rows, every row in the same two gemms per step.
  const alpha: number[][] = Array.from({ length: R }, () => []);
  const beta: number[][] = Array.from({ length: R }, () => []);
  const active = new Array<boolean>(R).fill(true);
  for (let l = 0; l < R; l++) if (mass[l] === 0) active[l] = false;
  let Qprev = new Float64Array(R * n);
  let Qcur = Q;
  for (let step = 0; step < steps; step++) {
    throwIfAborted(signal);
    // Only the rows still running go into the product (the top rows stop after topSteps).
    const running: number[] = [];
    for (let l = 0; l < R; l++) if (active[l]) running.push(l);
    if (running.length === 0) break;
    const X32 = new Float32Array(running.length * n);
    running.forEach((l, a) => { for (let i = 0; i < n; i++) X32[a * n + i] = Qcur[l * n + i]; });
    const Zc = await applyGram(backend, W, { rows: running.length, cols: n, data: X32 }, gramOfCols, signal);
    const Z = new Float64Array(R * n);
    running.forEach((l, a) => Z.set(Zc.subarray(a * n, (a + 1) * n), l * n));
    deflate(Z, active);
    const Qnext = new Float64Array(R * n);
    for (let l = 0; l < R; l++) {
      if (!active[l]) continue;
      const o = l * n;
      let a = 0;
      for (let i = 0; i < n; i++) a += Qcur[o + i] * Z[o + i];
      const bPrev = step > 0 ? beta[l][step - 1] : 0;
      let bb = 0;
      for (let i = 0; i < n; i++) {
        const w = Z[o + i] - a * Qcur[o + i] - bPrev * Qprev[o + i];
        Z[o + i] = w;
        bb += w * w;
      }
      alpha[l].push(a);
      const b = Math.sqrt(bb);
      // An invariant subspace was found (b ~ 0 relative to the spectrum's scale): the quadrature is exact.
      if (step === (l < kq ? topSteps : steps) - 1 || !(b > 1e-10 * Math.max(Math.abs(a), T / n * 1e-6))) {
        active[l] = false;
        continue;
      }
      beta[l].push(b);
      for (let i = 0; i < n; i++) Qnext[o + i] = Z[o + i] / b;
    }
    Qprev = Qcur;
    Qcur = Qnext;
  }

  // 4. Quadrature per row: the top rows summed (no variance), the probe rows averaged; the
  // closed-form top rows added as one node each.
  let gTop = 0, sqTop = 0, lambdaTopSum = 0;
  const perProbeG = new Float64Array(nv), perProbeSq = new Float64Array(nv), perProbeLambda = new Float64Array(nv);
  const nodes: Array<[number, number]> = []; // (eigenvalue, weight in eigenvalue counts)
  for (const j of closedForm) {
    const lambda = topS[j] * topS[j], rho = top.residuals![j] * topS[j];
    gTop += g(lambda) - (T > 0 ? (rho * rho) / (2 * T * lambda) : 0);
    sqTop += lambda * lambda + rho * rho;
    lambdaTopSum += lambda;
    nodes.push([lambda, 1]);
  }
  for (let l = 0; l < R; l++) {
    if (alpha[l].length === 0) continue;
    const { values, firstComponents } = tridiagonalEigen(alpha[l], beta[l].slice(0, alpha[l].length - 1));
    let qg = 0, qsq = 0, ql = 0;
    for (let j = 0; j < values.length; j++) {
      const theta = Math.max(0, values[j]);
      const w = mass[l] * firstComponents[j] ** 2;
      qg += w * g(theta);
      qsq += w * theta * theta;
      ql += w * theta;
      nodes.push([theta, l < kq ? w : w / nv]);
    }
    if (l < kq) { gTop += qg; sqTop += qsq; lambdaTopSum += ql; }
    else { perProbeG[l - kq] = qg; perProbeSq[l - kq] = qsq; perProbeLambda[l - kq] = ql; }
  }
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
