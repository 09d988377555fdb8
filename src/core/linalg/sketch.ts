/**
 * Truncated SVD by sketching, written once for both backends over a few primitive products
 * (`SketchOps`): randomized range finder with subspace iteration, and block Golub-Kahan-Lanczos.
 */
import { throwIfAborted } from '../checkpoint/errors';
import { gaussianMatrix, householderQR, smallSvd } from './dense';
import { symmetricEigen, tridiagonalize, tridiagonalQL } from './symmetricEigen';
import type { LinalgOptions, Matrix64, RandomizedSvdOptions, SvdResult } from './types';

/** The products a backend supplies; all dense row-major float64 in and out. */
export interface SketchOps {
  rows: number;
  cols: number;
  /** A X for X: cols x l. */
  mulA(x: Matrix64): Promise<Matrix64>;
  /** A^T Y for Y: rows x l. */
  mulAt(y: Matrix64): Promise<Matrix64>;
  /** op(X) op(Y) in float64 (reorthogonalisation). */
  gemm64(x: Matrix64, y: Matrix64, transX: boolean, transY: boolean): Promise<Matrix64>;
  /** An orthonormal basis of the columns of Y (m x l, m >= l), numerically stable. */
  orthonormalize(y: Matrix64): Promise<Matrix64>;
}

export interface LanczosOptions extends LinalgOptions {
  /** Columns per Krylov block (default min(max(k, 8), 32)). */
  blockSize?: number;
  /** Block steps at most (default: until the Krylov space could span min(m, n) dimensions). */
  maxIterations?: number;
  /** Residual test: stop when every r_i <= tolerance * s_1 (default 1e-6). */
  tolerance?: number;
  /** Value test instead: stop when every leading value's estimated remaining error <= valueTolerance * s_1. */
  valueTolerance?: number;
  /**
   * false: skip the last pass over A that forms the larger side's vectors; the result then has only
   * the smaller side's (U when rows <= cols, else Vt; the other with 0 columns / rows, as for
   * randomizedSvd's vectors: false). Residuals are still reported. Default true.
   */
  otherSide?: boolean;
  /** Thick-restart the Krylov basis (keeping k + blockSize Ritz vectors) when it would exceed this many columns (default 12 blocks). */
  maxBasis?: number;
  seed?: number;
  /**
   * The start block (min(m, n) x b, on the smaller side) instead of a seeded Gaussian one; its
   * column count sets the block size. estimate.ts starts from its Rademacher probes.
   */
  startBlock?: Matrix64;
  /** At least this many block steps, converged or not (default 1). */
  minIterations?: number;
  /**
   * Keep the whole Krylov basis (no thick restarts) and return it with its projection (see
   * LanczosSvdResult.krylov), for block Gauss quadrature from the start block.
   */
  keepKrylov?: boolean;
}

/**
 * The block Krylov space of a run with keepKrylov: Q (s x D, orthonormal columns, s = min(m, n)),
 * H = Q^T G Q (D x D, G the Gram operator of the smaller side), and R0 (b x b) with X0 = Q[:, 0:b] R0
 * for the start block X0. For x in span(X0), x^T p(G) x = (Q^T x)^T p(H) (Q^T x) for every polynomial
 * p of degree <= 2 (block steps) - 1 (block Gauss quadrature).
 */
export interface KrylovSpace {
  basis: Matrix64;
  h: Float64Array;
  startR: Float64Array;
}

/** Yields to the event loop so an abort() issued meanwhile can land, then checks the signal. */
async function cancellationPoint(signal?: AbortSignal): Promise<void> {
  if (signal) await new Promise<void>((resolve) => setImmediate(resolve));
  throwIfAborted(signal);
}

/** Columns [from, to) of a row-major matrix. */
function columns(a: Matrix64, from: number, to: number): Matrix64 {
  const w = to - from;
  const out = new Float64Array(a.rows * w);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < w; j++) out[i * w + j] = a.data[i * a.cols + from + j]!;
  return { rows: a.rows, cols: w, data: out };
}

/** [A B] side by side. */
function hcat(a: Matrix64 | undefined, b: Matrix64): Matrix64 {
  if (!a || a.cols === 0) return b;
  const out = new Float64Array(a.rows * (a.cols + b.cols));
  const w = a.cols + b.cols;
  for (let i = 0; i < a.rows; i++) {
    out.set(a.data.subarray(i * a.cols, (i + 1) * a.cols), i * w);
    out.set(b.data.subarray(i * b.cols, (i + 1) * b.cols), i * w + a.cols);
  }
  return { rows: a.rows, cols: w, data: out };
}

function emptyResult(m: number, n: number): SvdResult {
  return { U: { rows: m, cols: 0, data: new Float64Array(0) }, S: new Float64Array(0), Vt: { rows: 0, cols: n, data: new Float64Array(0) } };
}

/**
 * Randomized SVD (Halko, Martinsson & Tropp 2011, Algorithms 4.4 + 5.1):
 *   Y = A Omega (Omega: n x l Gaussian, l = k + p);  Q = orth(Y);
 *   q times: Q = orth(A orth(A^T Q))   (subspace iteration, re-orthonormalised at every product
 *   so rounding does not collapse the basis onto the top singular vector);
 *   B = Q^T A (l x n) = U_B S V^T;  U = Q U_B; keep the first k triplets.
 * Error bound (HMT Thm 10.6 flavour): E||A - Q Q^T A|| <= (1 + ...) sigma_{k+1}^{1/(2q+1)} ...
 * so q = 1..2 suffices for the slowly decaying spectra of trained weights.
 */
export async function randomizedSvdWith(ops: SketchOps, k: number, opts: RandomizedSvdOptions = {}): Promise<SvdResult> {
  const m = ops.rows, n = ops.cols;
  const kk = Math.min(Math.max(0, Math.floor(k)), m, n);
  if (kk === 0) return emptyResult(m, n);
  const l = Math.min(kk + (opts.oversample ?? 10), m, n);
  const q = opts.powerIterations ?? 2;
  throwIfAborted(opts.signal);
  const omega = gaussianMatrix(n, l, opts.seed ?? 1);
  let basis = await ops.orthonormalize(await ops.mulA(omega));
  for (let it = 0; it < q; it++) {
    await cancellationPoint(opts.signal);
    const z = await ops.orthonormalize(await ops.mulAt(basis));
    await cancellationPoint(opts.signal);
    basis = await ops.orthonormalize(await ops.mulA(z));
  }
  await cancellationPoint(opts.signal);
  const bt = await ops.mulAt(basis); // n x l = B^T
  // SVD of the wide B through a QR of B^T (products only, no O(n l^2) TypeScript loop):
  // B^T = Q_b R_b  =>  B = R_b^T Q_b^T = U_r S (Q_b V_r)^T  with  R_b^T = U_r S V_r^T  (l x l).
  const qb = await ops.orthonormalize(bt);
  const rb = await ops.gemm64(qb, bt, true, false);
  const small = await smallSvd({ rows: l, cols: l, data: transposeData(rb) });
  const uSmall = columns(small.u, 0, kk);
  const U = await ops.gemm64(basis, uSmall, false, false);
  const S = small.s.slice(0, kk);
  const Vt = await ops.gemm64({ rows: kk, cols: l, data: small.vt.data.slice(0, kk * l) }, qb, false, true);
  if (opts.vectors === false) return { U: { rows: m, cols: 0, data: new Float64Array(0) }, S, Vt: { rows: 0, cols: n, data: new Float64Array(0) } };
  return { U, S, Vt };
}

function transposeData(a: Matrix64): Float64Array {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j]!;
  return out;
}

/** X <- X - B (B^T X), twice ("twice is enough", Giraud et al. 2005), for orthonormal B. */
async function reorthogonalize(ops: SketchOps, basis: Matrix64 | undefined, x: Matrix64): Promise<Matrix64> {
  if (!basis || basis.cols === 0) return x;
  let cur = x;
  for (let pass = 0; pass < 2; pass++) {
    const coef = await ops.gemm64(basis, cur, true, false);
    const proj = await ops.gemm64(basis, coef, false, false);
    const next = new Float64Array(cur.data.length);
    for (let i = 0; i < next.length; i++) next[i] = cur.data[i]! - proj.data[i]!;
    cur = { rows: cur.rows, cols: cur.cols, data: next };
  }
  return cur;
}

/**
 * Block Lanczos with full reorthogonalisation on the Gram operator of the smaller side,
 * G = A A^T (m <= n, basis in R^m) or A^T A (basis in R^n), for the k largest singular triplets.
 * With Q_1 an orthonormal Gaussian start block (s x b, s = min(m, n)):
 *   Y_j = G Q_j  (two float32 passes over A: Z = A^T Q_j, then A Z; or the transposes),
 *   H = Q^T G Q  (block tridiagonal; its new column block Q^T Y_j is formed densely, in float64),
 *   Q_{j+1} R = Y_j - Q (Q^T Y_j),
 * every new block reorthogonalised twice against all previous ones ("twice is enough"), so no ghost
 * copies of converged values. Same Krylov space per pass over A as Golub-Kahan-Lanczos, but only the
 * smaller side needs a basis and reorthogonalisation.
 *
 * Rayleigh-Ritz: H = X diag(theta^2) X^T (symmetricEigen, trailing updates on ops.gemm64); the Ritz
 * vector on the basis side is q_i = Q x_i, the other side p_i = A^T q_i / theta_i (or A q_i / theta_i)
 * from one more pass, re-orthonormalised by a sign-keeping CholeskyQR (rounding of the float32
 * product). The Gram residual is
 *   ||G q_i - theta_i^2 q_i|| = ||(I - Q Q^T) Y_J x_i^(J)|| =: rho_i   (x_i^(J): last block of x_i),
 * and for the triplet (q_i, theta_i, p_i) the residual on one side is 0, on the other rho_i / theta_i:
 * some singular value of A lies within r_i = min(rho_i / theta_i, sqrt(rho_i)) of theta_i (Weyl for
 * [[0, A], [A^T, 0]], and |sqrt a - sqrt b| <= sqrt |a - b|). The Krylov spaces are nested, so by
 * interlacing theta_i^(1) <= theta_i^(2) <= ... <= sigma_i: each Ritz value climbs monotonically to
 * its singular value from below.
 *
 * Stopping (s_1 stands for theta_1):
 * - residual test (default): every r_i <= tolerance * s_1 (default 1e-6). Rigorous, but r_i shrinks
 *   only like the square root of the value error, so on a spectrum without gaps it costs many more
 *   blocks than the values need; and float32 products put a floor near 1e-7;
 * - value test (when `valueTolerance` is given; replaces the residual test): every leading Ritz
 *   value's remaining error, extrapolated from its last two increments (valueErrorEstimates), is
 *   <= valueTolerance * s_1. Per block only the eigenvalues of H are needed; vectors and residuals
 *   are formed once at the end.
 * Either way the run also ends when the Krylov space is exhausted (exact) or after maxIterations.
 * Thick restart (Wu & Simon 2000, here in block form): when the basis would exceed maxBasis columns
 * (default 12 blocks), it is replaced by the leading k + b Ritz vectors, on which H = diag(theta^2);
 * the next block is already orthogonal to them, and its coupling to them enters H through the next
 * dense column block Q^T Y. This caps the Rayleigh-Ritz cost (an O(dims^3) eigenproblem per block)
 * on slowly converging (gapless) spectra; the value test restarts its history at each restart, since
 * the convergence rate drops there.
 * Accuracy floor: theta_i^2 carries ~1e-7 theta_1^2 from the float32 products, i.e. theta_i about
 * 1e-7 theta_1^2 / theta_i (ample for the leading values; small ones need a direct SVD).
 */
export async function lanczosSvdWith(ops: SketchOps, k: number, opts: LanczosOptions = {}): Promise<LanczosSvdResult> {
  const m = ops.rows, n = ops.cols;
  const leftBasis = m <= n;
  const s = Math.min(m, n);
  const kk = Math.min(Math.max(0, Math.floor(k)), s);
  if (kk === 0) return { ...emptyResult(m, n), residuals: new Float64Array(0), errorEstimates: new Float64Array(0), iterations: 0, restarts: 0, converged: true };
  const start = opts.startBlock;
  if (start && (start.rows !== s || start.cols < 1)) throw new RangeError(`lanczosSvd: start block is ${start.rows} x ${start.cols}, expected ${s} rows`);
  const b = start ? Math.min(start.cols, s) : Math.max(1, Math.min(opts.blockSize ?? Math.min(Math.max(kk, 8), 32), s));
  const minIter = Math.max(1, opts.minIterations ?? 1);
  const tol = opts.tolerance ?? 1e-6;
  const valueTol = opts.valueTolerance;
  const maxIter = Math.max(1, opts.maxIterations ?? Math.ceil(s / b));
  // Basis size that triggers a thick restart, and the Ritz vectors kept (the Rayleigh-Ritz cost grows
  // like dims^3 and dominates past a few hundred columns).
  const keep = Math.min(s, kk + b);
  const maxBasis = opts.keepKrylov ? Infinity : Math.max(opts.maxBasis ?? 12 * b, keep + b);
  let restarts = 0;
  // Basis side -> other side, and back: G = A A^T (left basis) or A^T A.
  const toOther = (x: Matrix64) => (leftBasis ? ops.mulAt(x) : ops.mulA(x));
  const toBasis = (x: Matrix64) => (leftBasis ? ops.mulA(x) : ops.mulAt(x));
  throwIfAborted(opts.signal);

  const x0 = start && start.cols === b ? start : start ? columns(start, 0, b) : gaussianMatrix(s, b, opts.seed ?? 1);
  let block = await ops.orthonormalize(x0);
  const startR = opts.keepKrylov ? (await ops.gemm64(block, x0, true, false)).data : undefined; // X0 = Q_1 R0
  let basis: Matrix64 | undefined;
  let h: Float64Array = new Float64Array(0);
  const history: Float64Array[] = [];
  for (let iter = 0; ; iter++) {
    await cancellationPoint(opts.signal);
    const y = await toBasis(await toOther(block)); // G Q_j
    const prev = basis?.cols ?? 0;
    basis = hcat(basis, block);
    const dims = basis.cols;
    h = growSymmetric(h, prev, await ops.gemm64(basis, y, true, false));
    const exhausted = dims >= s; // Q spans R^s: the Rayleigh-Ritz values are the exact ones
    const last = iter >= Math.max(maxIter, minIter) - 1;
    const leak = exhausted ? undefined : await reorthogonalize(ops, basis, y);
    const needVectors = exhausted || last || valueTol === undefined;
    let ritz = await gramRitz(ops, h, dims, kk, needVectors);
    history.push(ritz.values.slice(0, kk));
    const estimates = exhausted ? new Float64Array(kk) : valueErrorEstimates(history, kk);
    const theta1 = ritz.values[0] ?? 0;
    let residuals = ritz.x && leak ? await residualNorms(ops, leak, ritz.x, ritz.values) : new Float64Array(kk);
    let converged = exhausted;
    if (!converged && valueTol === undefined) converged = residuals.every((r) => r <= tol * theta1);
    if (!converged && valueTol !== undefined) converged = estimates.every((e) => e <= valueTol * theta1);
    if ((converged && (exhausted || iter + 1 >= minIter)) || last) {
      if (!ritz.x) {
        ritz = await gramRitz(ops, h, dims, kk, true);
        residuals = leak ? await residualNorms(ops, leak, ritz.x!, ritz.values) : new Float64Array(kk);
      }
      await cancellationPoint(opts.signal);
      const kOut = ritz.x!.cols;
      const near = await ops.gemm64(basis, ritz.x!, false, false); // s x kOut, orthonormal
      const S = ritz.values.slice(0, kOut);
      const krylov: KrylovSpace | undefined = opts.keepKrylov ? { basis, h, startR: startR! } : undefined;
      const rest = { S, residuals: residuals.slice(0, kOut), errorEstimates: estimates.slice(0, kOut), iterations: iter + 1, restarts, converged, ...(krylov ? { krylov } : {}) };
      if (opts.otherSide === false) {
        return leftBasis
          ? { U: near, Vt: { rows: 0, cols: n, data: new Float64Array(0) }, ...rest }
          : { U: { rows: m, cols: 0, data: new Float64Array(0) }, Vt: { rows: kOut, cols: n, data: transposeData(near) }, ...rest };
      }
      const far = await toOther(near); // A^T q_i (or A q_i): one more pass with kOut columns
      for (let j = 0; j < kOut; j++) {
        const th = ritz.values[j]!;
        const inv = th > theta1 * 1e-12 ? 1 / th : 0;
        for (let i = 0; i < far.rows; i++) far.data[i * kOut + j] *= inv;
      }
      const farQ = await choleskyQR(far, ops.gemm64);
      return leftBasis
        ? { U: near, Vt: { rows: kOut, cols: n, data: transposeData(farQ) }, ...rest }
        : { U: farQ, Vt: { rows: kOut, cols: n, data: transposeData(near) }, ...rest };
    }
    await cancellationPoint(opts.signal);
    const width = Math.min(b, s - dims);
    let next = await ops.orthonormalize(leak!);
    // A second round only when the QR amplified what was left along the basis (R^{-1} is large
    // when the leak is nearly rank deficient, e.g. once values have converged).
    const overlap = await ops.gemm64(basis, next, true, false);
    if (overlap.data.some((x) => Math.abs(x) > 1e-12)) next = await ops.orthonormalize(await reorthogonalize(ops, basis, next));
    if (width < next.cols) next = columns(next, 0, width);
    block = next;
    if (dims + next.cols > maxBasis && keep < dims) {
      // Thick restart: keep the leading Ritz vectors Q x_1..Q x_keep, on which H is diag(theta^2);
      // the next block is already orthogonal to all of span(Q). Their coupling to it enters H with
      // the next column block Q^T Y, so nothing else changes; the kept Ritz values can only rise.
      const kept = ritz.x && ritz.x.cols >= keep ? ritz : await gramRitz(ops, h, dims, keep, true);
      basis = await ops.gemm64(basis, kept.x!, false, false);
      h = new Float64Array(keep * keep);
      for (let i = 0; i < keep; i++) h[i * keep + i] = kept.values[i]! ** 2;
      restarts++;
      // The convergence rate changes at a restart (the discarded directions are gone): extrapolate
      // only from increments after it, the current values being the first point of the new history.
      history.splice(0, history.length - 1);
    }
  }
}

/**
 * H (prev x prev) grown by a column block C = Q^T Y_j (dims x bj, dims = prev + bj): the new columns
 * are C, the new rows C^T (H is symmetric; Y_i of earlier blocks are not kept), the new diagonal
 * block symmetrised.
 */
function growSymmetric(h: Float64Array, prev: number, c: Matrix64): Float64Array {
  const dims = c.rows, bj = c.cols;
  const out = new Float64Array(dims * dims);
  for (let i = 0; i < prev; i++) out.set(h.subarray(i * prev, (i + 1) * prev), i * dims);
  for (let i = 0; i < dims; i++) {
    for (let j = 0; j < bj; j++) {
      const col = prev + j;
      const v = c.data[i * bj + j]!;
      if (i < prev) { out[i * dims + col] = v; out[col * dims + i] = v; }
      else out[i * dims + col] = 0.5 * (v + c.data[(prev + j) * bj + (i - prev)]!);
    }
  }
  return out;
}

/**
 * Rayleigh-Ritz on H (dims x dims): theta = square roots of its eigenvalues, descending; with
 * `vectors`, X (dims x kOut) = the leading eigenvectors (orthonormal to rounding).
 */
async function gramRitz(ops: SketchOps, h: Float64Array, dims: number, kk: number, vectors: boolean): Promise<{ values: Float64Array; x?: Matrix64 }> {
  const gemmNT = async (l: Float64Array, r: Float64Array, rows: number, cols: number, inner: number): Promise<Float64Array> =>
    (await ops.gemm64({ rows, cols: inner, data: l }, { rows: cols, cols: inner, data: r }, false, true)).data;
  const toTheta = (lambda: Float64Array) => Float64Array.from(lambda, (v) => Math.sqrt(Math.max(0, v)));
  if (!vectors) {
    const eig = await symmetricEigen(h, dims, { gemmNT });
    return { values: toTheta(eig.values.reverse()) };
  }
  const top = await topEigenpairs(h, dims, Math.min(kk, dims), gemmNT);
  return { values: toTheta(top.values), x: top.vectors };
}

/**
 * All eigenvalues (descending) and the eigenvectors of the `count` largest of a symmetric n x n
 * matrix: Householder tridiagonalisation T = Z^T H Z (symmetricEigen.ts), eigenvalues of T by
 * implicit QL, then inverse iteration on T for the wanted ones only (LAPACK dstein's scheme:
 * (T - lambda I) x_new = x by Gaussian elimination with partial pivoting, three sweeps from a fixed
 * start, Gram-Schmidt against the already computed vectors of the same cluster, |lambda_i -
 * lambda_j| <= 1e-3 ||T||), back-transformed by the reflectors: x <- Z x. O(n^3) for the reduction
 * plus O(n count^2), instead of the O(n^3) rotations and back-transformation of all n vectors.
 */
export async function topEigenpairs(h: Float64Array, n: number, count: number, gemmNT?: (l: Float64Array, r: Float64Array, rows: number, cols: number, inner: number) => Promise<Float64Array>): Promise<{ values: Float64Array; vectors: Matrix64 }> {
  const tri = await tridiagonalize(h, n, { keepReflectors: true, gemmNT });
  const d = Float64Array.from(tri.d), e = Float64Array.from(tri.e);
  const lam = Float64Array.from(tri.d), el = Float64Array.from(tri.e);
  tridiagonalQL(lam, el);
  const values = Float64Array.from(lam).sort().reverse();
  let tnorm = 0;
  for (let i = 0; i < n; i++) tnorm = Math.max(tnorm, Math.abs(d[i]!) + (i < n - 1 ? Math.abs(e[i]!) : 0) + (i > 0 ? Math.abs(e[i - 1]!) : 0));
  const tiny = Math.max(Number.EPSILON * tnorm, Number.MIN_VALUE);
  const vecs: Float64Array[] = [];
  for (let c = 0; c < count; c++) {
    const lambda = values[c]!;
    const solve = tridiagonalShiftedSolver(d, e, lambda, tiny);
    // A fixed, non-special start (no eigenvector of T is orthogonal to it in practice).
    let x: Float64Array = Float64Array.from({ length: n }, (_, i) => 1 + 0.5 * Math.sin(1.7 * i + c));
    for (let sweep = 0; sweep < 3; sweep++) {
      x = solve(x);
      for (let p = c - 1; p >= 0 && values[p]! - lambda <= 1e-3 * tnorm; p--) {
        const y = vecs[p]!;
        let dot = 0;
        for (let i = 0; i < n; i++) dot += y[i]! * x[i]!;
        for (let i = 0; i < n; i++) x[i] -= dot * y[i]!;
      }
      let norm = 0;
      for (let i = 0; i < n; i++) norm += x[i]! * x[i]!;
      norm = Math.sqrt(norm);
      for (let i = 0; i < n; i++) x[i] /= norm;
    }
    vecs.push(x);
  }
  // Back-transformation x <- H_j x = x - tau v (v^T x) on entries j+1..n-1, j = n-3 down to 0.
  const refl = tri.reflectors!;
  const out = new Float64Array(n * count);
  vecs.forEach((x, c) => {
    for (let j = n - 3; j >= 0; j--) {
      const tau = refl.tau[j]!;
      if (tau === 0) continue;
      const v = refl.v[j]!;
      let s2 = 0;
      for (let r = 0; r < v.length; r++) s2 += v[r]! * x[j + 1 + r]!;
      s2 *= tau;
      for (let r = 0; r < v.length; r++) x[j + 1 + r] -= s2 * v[r]!;
    }
    for (let i = 0; i < n; i++) out[i * count + c] = x[i]!;
  });
  return { values, vectors: { rows: n, cols: count, data: out } };
}

/**
 * x -> (T - sigma I)^{-1} b for the symmetric tridiagonal T (diagonal d, off-diagonal e[i] coupling
 * i and i + 1): LU with partial pivoting (U has two super-diagonals), pivots below `tiny` replaced
 * by `tiny` (sigma is an eigenvalue, so one pivot is ~0: that is what makes inverse iteration work).
 */
function tridiagonalShiftedSolver(d: Float64Array, e: Float64Array, sigma: number, tiny: number): (b: Float64Array) => Float64Array {
  const n = d.length;
  const u0 = new Float64Array(n), u1 = new Float64Array(n), u2 = new Float64Array(n), mult = new Float64Array(n);
  const swap = new Uint8Array(n);
  // The row waiting to be the pivot of column i: entries in columns i, i+1, i+2.
  let r0 = d[0]! - sigma, r1 = n > 1 ? e[0]! : 0, r2 = 0;
  for (let i = 0; i < n - 1; i++) {
    const s0 = e[i]!, s1 = d[i + 1]! - sigma, s2 = i + 2 < n ? e[i + 1]! : 0; // original row i + 1
    if (Math.abs(r0) >= Math.abs(s0)) {
      const p = Math.abs(r0) < tiny ? (r0 < 0 ? -tiny : tiny) : r0;
      u0[i] = p; u1[i] = r1; u2[i] = r2;
      const m = s0 / p;
      mult[i] = m;
      r0 = s1 - m * r1; r1 = s2 - m * r2; r2 = 0;
    } else {
      swap[i] = 1;
      u0[i] = s0; u1[i] = s1; u2[i] = s2;
      const m = r0 / s0;
      mult[i] = m;
      r0 = r1 - m * s1; r1 = r2 - m * s2; r2 = 0;
    }
  }
  u0[n - 1] = Math.abs(r0) < tiny ? (r0 < 0 ? -tiny : tiny) : r0;
  return (b: Float64Array) => {
    const y = Float64Array.from(b);
    for (let i = 0; i < n - 1; i++) {
      if (swap[i]) { const t = y[i]!; y[i] = y[i + 1]!; y[i + 1] = t - mult[i]! * y[i]!; }
      else y[i + 1] -= mult[i]! * y[i]!;
    }
    const x = new Float64Array(n);
    for (let i = n - 1; i >= 0; i--) {
      let acc = y[i]!;
      if (i + 1 < n) acc -= u1[i]! * x[i + 1]!;
      if (i + 2 < n) acc -= u2[i]! * x[i + 2]!;
      x[i] = acc / u0[i]!;
    }
    return x;
  };
}

/**
 * Singular-triplet residual bounds r_i = min(rho_i / theta_i, sqrt(rho_i)) from the Gram residuals
 * rho_i = ||leak x_i^(J)||, leak = (I - Q Q^T) Y_J (s x b_J), x_i^(J) the last b_J rows of x_i,
 * via the b_J x b_J Gram: rho_i^2 = x^T (leak^T leak) x.
 */
async function residualNorms(ops: SketchOps, leak: Matrix64, x: Matrix64, theta: Float64Array): Promise<Float64Array> {
  const bj = leak.cols, off = x.rows - bj;
  const c = await ops.gemm64(leak, leak, true, false);
  const out = new Float64Array(x.cols);
  for (let i = 0; i < x.cols; i++) {
    let r2 = 0;
    for (let a = 0; a < bj; a++) {
      let acc = 0;
      for (let d = 0; d < bj; d++) acc += c.data[a * bj + d]! * x.data[(off + d) * x.cols + i]!;
      r2 += x.data[(off + a) * x.cols + i]! * acc;
    }
    const rho = Math.sqrt(Math.max(0, r2));
    const th = theta[i]!;
    out[i] = th > 0 ? Math.min(rho / th, Math.sqrt(rho)) : Math.sqrt(rho);
  }
  return out;
}

/** Result of lanczosSvdWith: the triplets plus how far each is from converged. */
export interface LanczosSvdResult extends SvdResult {
  /** r_i = ||A^T u_i - s_i v_i|| (A v_i = s_i u_i holds to rounding): some singular value lies within r_i of s_i. */
  residuals: Float64Array;
  /** Extrapolated remaining error of each s_i (valueErrorEstimates); Infinity before three blocks, 0 when exact. */
  errorEstimates: Float64Array;
  /** Block steps taken. */
  iterations: number;
  /** Thick restarts (see LanczosOptions.maxBasis). */
  restarts: number;
  /** Whether the stopping test passed (false: maxIterations ran out). */
  converged: boolean;
  /** With keepKrylov: the Krylov space the values came from. */
  krylov?: KrylovSpace;
}

/**
 * Remaining error of each leading Ritz value from its history theta^(1) <= theta^(2) <= ...: with the
 * last two increments d = theta^(j) - theta^(j-1) and d' = theta^(j-1) - theta^(j-2), Krylov
 * convergence is (super)linear with ratio rho = d / d' (it only improves: the polynomial degree
 * grows), so what is left is at most about the geometric tail
 *   e = d rho / (1 - rho),   rho clamped to >= 1/2 (never claim less than the last increment d).
 * The clamp matters in the superlinear phase, where one ratio can look far better than the next.
 * A value that no longer moves (d <= 1e-12 theta_1: eigensolver rounding) gets e = max(d, 0); one
 * whose increments are not shrinking (d >= d'), or with fewer than three entries of history, gets
 * Infinity. An estimate, not a bound: on the test spectra it was 0.5-70x the actual error, the low
 * end right after a thick restart (callers that need a tolerance should ask for half of it, as
 * estimate.ts does).
 */
export function valueErrorEstimates(history: Float64Array[], kk: number): Float64Array {
  const out = new Float64Array(kk).fill(Infinity);
  const j = history.length - 1;
  if (j < 2) return out;
  const h2 = history[j]!, h1 = history[j - 1]!, h0 = history[j - 2]!;
  const floor = 1e-12 * (h2[0] ?? 0); // below this a value only moves by rounding of the eigensolver
  for (let i = 0; i < kk; i++) {
    if (i >= h0.length || i >= h2.length) continue;
    const d = h2[i]! - h1[i]!, dPrev = h1[i]! - h0[i]!;
    if (!(d > floor)) { out[i] = Math.max(0, d); continue; }
    if (!(dPrev > d)) continue;
    const rho = Math.max(0.5, d / dPrev);
    out[i] = (d * rho) / (1 - rho);
  }
  return out;
}

/**
 * CholeskyQR2 with a shift in the first pass (shifted CholeskyQR3, Fukaya et al. 2020):
 * R from chol(Y^T Y + sI), Q = Y R^{-1}, twice more without shift; each pass squares the distance
 * from orthogonality. Falls back to Householder QR when a Cholesky pivot is not positive (rank
 * deficiency) or the result is not orthonormal to 1e-12. All products through `gemm64`.
 */
export async function choleskyQR(y: Matrix64, gemm64: SketchOps['gemm64']): Promise<Matrix64> {
  const l = y.cols;
  let cur = y;
  let shiftNorm = 0;
  for (let i = 0; i < y.data.length; i++) shiftNorm += y.data[i]! * y.data[i]!;
  for (let pass = 0; pass < 3; pass++) {
    const g = await gemm64(cur, cur, true, false);
    if (pass === 0) {
      const shift = 11 * (y.rows * l + l * (l + 1)) * Number.EPSILON * shiftNorm;
      for (let i = 0; i < l; i++) g.data[i * l + i] += shift;
    }
    const rinv = choleskyInverseFactor(g.data, l);
    if (!rinv) return householderQR(y).q;
    cur = await gemm64(cur, { rows: l, cols: l, data: rinv }, false, false);
  }
  const g = await gemm64(cur, cur, true, false);
  for (let i = 0; i < l; i++) for (let j = 0; j < l; j++) {
    if (Math.abs(g.data[i * l + j]! - (i === j ? 1 : 0)) > 1e-12) return householderQR(y).q;
  }
  return cur;
}

/** R^{-1} where G = R^T R (Cholesky, R upper); undefined when G is not numerically positive definite. */
function choleskyInverseFactor(g: Float64Array, l: number): Float64Array | undefined {
  const r = new Float64Array(l * l);
  for (let j = 0; j < l; j++) {
    let s = g[j * l + j]!;
    for (let p = 0; p < j; p++) s -= r[p * l + j]! * r[p * l + j]!;
    if (!(s > 0)) return undefined;
    const rjj = Math.sqrt(s);
    r[j * l + j] = rjj;
    for (let c = j + 1; c < l; c++) {
      let t = g[j * l + c]!;
      for (let p = 0; p < j; p++) t -= r[p * l + j]! * r[p * l + c]!;
      r[j * l + c] = t / rjj;
    }
  }
  // Inverse of the upper triangular R by back substitution, column by column.
  const inv = new Float64Array(l * l);
  for (let c = 0; c < l; c++) {
    inv[c * l + c] = 1 / r[c * l + c]!;
    for (let i = c - 1; i >= 0; i--) {
      let s = 0;
      for (let p = i + 1; p <= c; p++) s += r[i * l + p]! * inv[p * l + c]!;
      inv[i * l + c] = -s / r[i * l + i]!;
    }
  }
  if (!inv.every(Number.isFinite)) return undefined;
  return inv;
}
