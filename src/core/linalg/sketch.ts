/**
 * Truncated SVD by sketching, written once for both backends over a few primitive products
 * (`SketchOps`): randomized range finder with subspace iteration, and block Golub-Kahan-Lanczos.
 */
import { throwIfAborted } from '../checkpoint/errors';
import { gaussianMatrix, householderQR, smallSvd } from './dense';
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
  blockSize?: number;
  maxIterations?: number;
  tolerance?: number;
  seed?: number;
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
 * Block Golub-Kahan-Lanczos with full reorthogonalisation for the k largest singular triplets.
 * With V_1 an orthonormal n x b start block:
 *   U_j R_j = A V_j - (components along U_1..U_{j-1}),
 *   V_{j+1} L_{j+1} = A^T U_j - (components along V_1..V_j),
 * every new block reorthogonalised twice against all previous ones (so no ghost copies of
 * converged values). Then A V = U T exactly with T = U^T A V (block bidiagonal, formed densely),
 * and for a Ritz triplet T y = theta x, (U x, theta, V y) has residual
 *   ||A^T U x - theta V y|| = ||L_{j+1} x_j||   (x_j = the last block of x),
 * the convergence test: all k residuals <= tolerance * theta_1.
 */
export async function lanczosSvdWith(ops: SketchOps, k: number, opts: LanczosOptions = {}): Promise<SvdResult> {
  const m = ops.rows, n = ops.cols;
  const maxDim = Math.min(m, n);
  const kk = Math.min(Math.max(0, Math.floor(k)), maxDim);
  if (kk === 0) return emptyResult(m, n);
  const b = Math.max(1, Math.min(opts.blockSize ?? Math.min(Math.max(kk, 8), 32), maxDim));
  const tol = opts.tolerance ?? 1e-6;
  const maxIter = opts.maxIterations ?? Math.max(1, Math.ceil(maxDim / b));
  throwIfAborted(opts.signal);

  let vBlock = await ops.orthonormalize(gaussianMatrix(n, b, opts.seed ?? 1));
  let vAll: Matrix64 | undefined;
  let uAll: Matrix64 | undefined;
  let avAll: Matrix64 | undefined;
  let best: { x: Matrix64; s: Float64Array; y: Matrix64 } | undefined;
  for (let iter = 0; iter < maxIter; iter++) {
    await cancellationPoint(opts.signal);
    vAll = hcat(vAll, vBlock);
    const av = await ops.mulA(vBlock);
    avAll = hcat(avAll, av);
    let p = await reorthogonalize(ops, uAll, av);
    let uBlock = await ops.orthonormalize(p);
    uBlock = await ops.orthonormalize(await reorthogonalize(ops, uAll, uBlock));
    uAll = hcat(uAll, uBlock);
    // T = U^T A V (dims x dims).
    const t = await ops.gemm64(uAll, avAll, true, false);
    const small = await smallSvd(t);
    best = { x: small.u, s: small.s, y: small.vt };
    const dims = vAll.cols;
    if (uAll.cols >= m) {
      // U spans all of R^m, but span(V) may still miss part of the row space: the exact answer is
      // then the SVD of the small m x n matrix U^T A = (A^T U)^T.
      const bt = await ops.mulAt(uAll);
      const exact = await smallSvd({ rows: uAll.cols, cols: n, data: transposeData(bt) });
      const kOut = Math.min(kk, exact.s.length);
      return {
        U: await ops.gemm64(uAll, columns(exact.u, 0, kOut), false, false),
        S: exact.s.slice(0, kOut),
        Vt: { rows: kOut, cols: n, data: exact.vt.data.slice(0, kOut * n) },
      };
    }
    if (dims >= maxDim || iter === maxIter - 1) break;
    await cancellationPoint(opts.signal);
    // Next right block and the coefficients L of A^T U_j along it.
    const atu = await ops.mulAt(uBlock);
    const qRe = await reorthogonalize(ops, vAll, atu);
    const width = Math.min(b, maxDim - dims);
    let vNext = await ops.orthonormalize(qRe);
    vNext = await ops.orthonormalize(await reorthogonalize(ops, vAll, vNext));
    if (width < vNext.cols) vNext = columns(vNext, 0, width);
    const lCoef = await ops.gemm64(vNext, qRe, true, false); // width x bj
    // Residuals of the leading k Ritz triplets.
    const bj = uBlock.cols;
    const off = uAll.cols - bj;
    let converged = true;
    const theta1 = small.s[0]!;
    for (let i = 0; i < kk && converged; i++) {
      let r2 = 0;
      for (let a = 0; a < lCoef.rows; a++) {
        let s = 0;
        for (let c = 0; c < bj; c++) s += lCoef.data[a * bj + c]! * small.u.data[(off + c) * small.u.cols + i]!;
        r2 += s * s;
      }
      if (Math.sqrt(r2) > tol * theta1) converged = false;
    }
    if (converged) break;
    vBlock = vNext;
  }
  const { x, s, y } = best!;
  const kOut = Math.min(kk, s.length);
  const U = await ops.gemm64(uAll!, columns(x, 0, kOut), false, false);
  const Vr = await ops.gemm64(vAll!, { rows: y.cols, cols: kOut, data: transposeData({ rows: kOut, cols: y.cols, data: y.data.slice(0, kOut * y.cols) }) }, false, false);
  return { U, S: s.slice(0, kOut), Vt: { rows: kOut, cols: n, data: transposeData(Vr) } };
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
