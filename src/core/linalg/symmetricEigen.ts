/**
 * A symmetric eigensolver in TypeScript (float64), the heart of the portable backend:
 *
 * 1. Householder tridiagonalisation Q^T A Q = T, blocked like LAPACK's dsytrd/dlatrd
 *    (Dongarra, Hammarling & Sorensen 1989): a panel of nb columns is reduced using the not yet
 *    updated trailing matrix plus the panel's accumulated V, W; afterwards the trailing matrix takes
 *    the whole panel at once as the rank-2nb update  A22 <- A22 - V W^T - W V^T, which is one GEMM
 *    (onnxruntime's DGEMM when a product function is given). The matrix-vector product inside the
 *    panel (half of the flops, memory bound) stays level-2.
 * 2. Eigenvalues of the tridiagonal T by the implicit QL algorithm with Wilkinson-type shifts
 *    (O(n^2) for values), eigenvectors by accumulating the QL plane rotations (O(n^3)) and then
 *    applying the Householder reflectors back: X = H_0 H_1 ... H_{n-3} Z.
 *
 * Row-major throughout; the matrix is symmetric, so a row is also a column.
 */

import { wasmWorkspace } from './wasm/kernels';

/** out (rows x cols) = L (rows x k) R^T (cols x k); row-major float64. Optional fast product. */
export type Gemm64NT = (l: Float64Array, r: Float64Array, rows: number, cols: number, k: number) => Promise<Float64Array>;
/** y = M x for a square row-major n x n matrix M. */
export type MatVec64 = (m: Float64Array, x: Float64Array, n: number) => Promise<Float64Array>;

export interface TridiagonalForm {
  /** Diagonal, n. */
  d: Float64Array;
  /** Sub-diagonal, e[i] couples i and i+1; length n with e[n-1] = 0. */
  e: Float64Array;
  /** Householder reflectors H_j = I - tau_j v_j v_j^T acting on rows j+1..n-1 (when vectors were asked for). */
  reflectors?: { tau: Float64Array; v: Float64Array[] };
}

export interface TridiagonalizeOptions {
  blockSize?: number;
  gemmNT?: Gemm64NT;
  /**
   * Used for the panel's matrix-vector products when the trailing matrix has at least matVecMin
   * rows and the WebAssembly SIMD kernel is unavailable (it is preferred: no call overhead).
   */
  matVec?: MatVec64;
  matVecMin?: number;
  /** Use the WebAssembly SIMD kernels when the engine supports them (default true). */
  wasm?: boolean;
  keepReflectors?: boolean;
  /** Called between panels (cancellation point). */
  checkpoint?: () => void | Promise<void>;
}

/**
 * Householder vector (LAPACK dlarfg convention): for x = (alpha, x2) returns beta, tau and v with
 * v[0] = 1 such that (I - tau v v^T) x = beta e_1, |beta| = ||x||, beta = -sign(alpha) ||x||.
 * Overwrites x[from+1..] with v[1..].
 */
function householder(x: Float64Array, from: number, to: number): { beta: number; tau: number } {
  const alpha = x[from]!;
  let scale = 0;
  for (let r = from + 1; r < to; r++) scale = Math.max(scale, Math.abs(x[r]!));
  if (scale === 0) {
    for (let r = from + 1; r < to; r++) x[r] = 0;
    x[from] = 1;
    return { beta: alpha, tau: 0 };
  }
  // ||x2|| with scaling against overflow/underflow.
  let ss = 0;
  for (let r = from + 1; r < to; r++) { const t = x[r]! / scale; ss += t * t; }
  const xnorm = scale * Math.sqrt(ss);
  const beta = -(alpha >= 0 ? 1 : -1) * Math.hypot(alpha, xnorm);
  const tau = (beta - alpha) / beta;
  const inv = 1 / (alpha - beta);
  for (let r = from + 1; r < to; r++) x[r]! *= inv;
  x[from] = 1;
  return { beta, tau };
}

/** Blocked Householder tridiagonalisation of a symmetric n x n matrix (the input is not modified). */
export async function tridiagonalize(a: Float64Array, n: number, opts: TridiagonalizeOptions = {}): Promise<TridiagonalForm> {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const keep = opts.keepReflectors === true;
  const tauAll = new Float64Array(n);
  const vAll: Float64Array[] = [];
  if (n === 0) return { d, e, reflectors: keep ? { tau: tauAll, v: vAll } : undefined };
  const nbDefault = opts.blockSize ?? 32;
  const matVecMin = opts.matVecMin ?? 1024;
  // The trailing matrix, kept compact (N x N, N = n - c) so it can be handed to a GEMM/GEMV as is.
  // With WebAssembly everything the panel touches lives in the kernels' linear memory:
  // [t: n^2][v: n][y: n][scratch: n][V, W: n*nb each (row-major, ld nb)][Vt, Wt: nb*n each
  // (ld N, so V^T x is a row-wise gemv too)][x1, x2: nb][tmp1, tmp2: n].
  const nbMax = Math.max(1, Math.min(nbDefault, n));
  const vAt = n * n, yAt = n * n + n, scratchAt = n * n + 2 * n;
  const VAt = n * n + 3 * n, WAt = VAt + n * nbMax, VtAt = WAt + n * nbMax, WtAt = VtAt + n * nbMax;
  const x1At = WtAt + n * nbMax, x2At = x1At + nbMax, tmp1At = x2At + nbMax, tmp2At = tmp1At + n;
  const ws = opts.wasm === false || n < 64 ? undefined : wasmWorkspace(tmp2At + n);
  let t: Float64Array;
  if (ws) { t = ws.f64.subarray(0, n * n); t.set(a.subarray(0, n * n)); } else t = Float64Array.from(a);
  let N = n;
  let c = 0;
  while (c < n) {
    const nb = Math.min(nbDefault, N);
    // Row r, column p at r * nb + p.
    const V = ws ? ws.f64.subarray(VAt, VAt + N * nb).fill(0) : new Float64Array(N * nb);
    const W = ws ? ws.f64.subarray(WAt, WAt + N * nb).fill(0) : new Float64Array(N * nb);
    if (ws) { ws.f64.fill(0, VtAt, VtAt + nb * N); ws.f64.fill(0, WtAt, WtAt + nb * N); }
    const f = ws?.f64;
    const col = new Float64Array(N);
    const vtw = new Float64Array(nb);
    const wtv = new Float64Array(nb);
    for (let i = 0; i < nb; i++) {
      const j = c + i;
      // Column i of the trailing matrix, brought up to date with this panel's earlier reflectors:
      // a <- a - V W[i,:]^T - W V[i,:]^T  (rows i..N-1).
      if (ws && f && i > 0) {
        for (let p = 0; p < i; p++) { f[x1At + p] = W[i * nb + p]!; f[x2At + p] = V[i * nb + p]!; }
        ws.gemv(VAt, nb, x1At, tmp1At, i, N, 0, i);
        ws.gemv(WAt, nb, x2At, tmp2At, i, N, 0, i);
        for (let r = i; r < N; r++) col[r] = t[i * N + r]! - f[tmp1At + r]! - f[tmp2At + r]!;
      } else {
        for (let r = i; r < N; r++) {
          let s = t[i * N + r]!;
          for (let p = 0; p < i; p++) s -= V[r * nb + p]! * W[i * nb + p]! + W[r * nb + p]! * V[i * nb + p]!;
          col[r] = s;
        }
      }
      d[j] = col[i]!;
      if (j >= n - 1) break;
      if (j === n - 2) { e[j] = col[i + 1]!; continue; }
      const { beta, tau } = householder(col, i + 1, N);
      e[j] = beta;
      tauAll[j] = tau;
      if (keep) vAll[j] = col.slice(i + 1, N);
      if (tau === 0) continue; // V, W columns stay zero: H = I.
      for (let r = i + 1; r < N; r++) V[r * nb + i] = col[r]!;
      if (f) f.set(col.subarray(i + 1, N), VtAt + i * N + i + 1);
      // y = A22 v with the panel-start trailing matrix, then the panel's own corrections:
      // y <- y - V (W^T v) - W (V^T v).
      let y: Float64Array;
      if (ws) {
        ws.f64.set(col.subarray(i + 1, N), vAt + i + 1);
        ws.gemv(0, N, vAt, yAt, i + 1, N, i + 1, N);
        y = ws.f64.subarray(yAt, yAt + N);
      } else if (opts.matVec && N >= matVecMin) {
        const vPad = new Float64Array(N);
        for (let r = i + 1; r < N; r++) vPad[r] = col[r]!;
        y = await opts.matVec(t, vPad, N);
      } else {
        y = new Float64Array(N);
        for (let r = i + 1; r < N; r++) {
          const o = r * N;
          let s0 = 0, s1 = 0;
          let q = i + 1;
          for (; q + 1 < N; q += 2) { s0 += t[o + q]! * col[q]!; s1 += t[o + q + 1]! * col[q + 1]!; }
          if (q < N) s0 += t[o + q]! * col[q]!;
          y[r] = s0 + s1;
        }
      }
      // w = tau (y - corrections);  w <- w - (tau/2)(w.v) v   so that  H A22 H = A22 - v w^T - w v^T.
      let wv = 0;
      if (ws && f) {
        // wtv = W^T v, vtw = V^T v (rows of Wt/Vt against v), then V wtv + W vtw, all gemv.
        ws.gemv(WtAt, N, vAt, x1At, 0, i, i + 1, N);
        ws.gemv(VtAt, N, vAt, x2At, 0, i, i + 1, N);
        ws.gemv(VAt, nb, x1At, tmp1At, i + 1, N, 0, i);
        ws.gemv(WAt, nb, x2At, tmp2At, i + 1, N, 0, i);
        for (let r = i + 1; r < N; r++) {
          const s = tau * (y[r]! - f[tmp1At + r]! - f[tmp2At + r]!);
          W[r * nb + i] = s;
          wv += s * col[r]!;
        }
      } else {
        vtw.fill(0); wtv.fill(0);
        for (let r = i + 1; r < N; r++) {
          const vr = col[r]!;
          for (let p = 0; p < i; p++) { wtv[p] += W[r * nb + p]! * vr; vtw[p] += V[r * nb + p]! * vr; }
        }
        for (let r = i + 1; r < N; r++) {
          let s = y[r]!;
          for (let p = 0; p < i; p++) s -= V[r * nb + p]! * wtv[p]! + W[r * nb + p]! * vtw[p]!;
          s *= tau;
          W[r * nb + i] = s;
          wv += s * col[r]!;
        }
      }
      const alpha = -0.5 * tau * wv;
      for (let r = i + 1; r < N; r++) W[r * nb + i] += alpha * col[r]!;
      if (f) for (let r = i + 1; r < N; r++) f[WtAt + i * N + r] = W[r * nb + i]!;
    }
    if (nb >= N) break;
    // Trailing update of rows/cols nb..N-1: A22 <- A22 - [V W] [W V]^T, then compact in place.
    const M = N - nb;
    const L = new Float64Array(M * 2 * nb);
    const R = new Float64Array(M * 2 * nb);
    for (let r = 0; r < M; r++) {
      for (let p = 0; p < nb; p++) {
        const vv = V[(r + nb) * nb + p]!, ww = W[(r + nb) * nb + p]!;
        L[r * 2 * nb + p] = vv; L[r * 2 * nb + nb + p] = ww;
        R[r * 2 * nb + p] = ww; R[r * 2 * nb + nb + p] = vv;
      }
    }
    let upd: Float64Array;
    if (opts.gemmNT && M >= 64) {
      upd = await opts.gemmNT(L, R, M, M, 2 * nb);
    } else {
      upd = new Float64Array(M * M);
      const k2 = 2 * nb;
      for (let r = 0; r < M; r++) {
        for (let q = r; q < M; q++) {
          let s = 0;
          for (let p = 0; p < k2; p++) s += L[r * k2 + p]! * R[q * k2 + p]!;
          upd[r * M + q] = s; upd[q * M + r] = s;
        }
      }
    }
    // In-place compaction is safe: the destination index never exceeds the source index.
    for (let r = 0; r < M; r++) {
      const src = (r + nb) * N + nb, dst = r * M;
      if (ws) {
        ws.f64.set(upd.subarray(r * M, (r + 1) * M), scratchAt);
        ws.sub(dst, src, scratchAt, M);
      } else {
        for (let q = 0; q < M; q++) t[dst + q] = t[src + q]! - upd[r * M + q]!;
      }
    }
    t = t.subarray(0, M * M);
    N = M;
    c += nb;
    if (opts.checkpoint) await opts.checkpoint();
  }
  return { d, e, reflectors: keep ? { tau: tauAll, v: vAll } : undefined };
}

/**
 * Implicit QL with shifts on a symmetric tridiagonal matrix (d, e; e[i] couples i and i+1).
 * Each sweep chases a bulge from row m up to row l with Givens rotations; the shift is the
 * eigenvalue of the leading 2x2 block closer to d[l] (Wilkinson). Converges cubically.
 * When zt is given (n x n, ROW i holds vector i), the rotations are accumulated into it.
 * On return d holds the eigenvalues (unsorted), e is destroyed.
 */
export function tridiagonalQL(d: Float64Array, e: Float64Array, zt?: Float64Array): void {
  const n = d.length;
  if (n === 0) return;
  e[n - 1] = 0;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (Math.abs(e[m]!) <= Number.EPSILON * dd) break;
      }
      if (m === l) break;
      if (++iter > 60) throw new Error(`tridiagonal QL did not converge at row ${l}`);
      let g = (d[l + 1]! - d[l]!) / (2 * e[l]!);
      let r = Math.abs(g) > 1e150 ? Math.abs(g) : Math.sqrt(g * g + 1);
      g = d[m]! - d[l]! + e[l]! / (g + (g >= 0 ? r : -r));
      let s = 1, c = 1, p = 0;
      let i = m - 1;
      let deflated = false;
      for (; i >= l; i--) {
        const f = s * e[i]!;
        const b = c * e[i]!;
        r = Math.sqrt(f * f + g * g); // Math.hypot is several times slower in V8; values here are far from overflow
        e[i + 1] = r;
        if (r === 0) { d[i + 1]! -= p; e[m] = 0; deflated = true; break; }
        s = f / r;
        c = g / r;
        g = d[i + 1]! - p;
        r = (d[i]! - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        if (zt) {
          const oi = i * n, oj = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const zf = zt[oj + k]!, zi = zt[oi + k]!;
            zt[oj + k] = s * zi + c * zf;
            zt[oi + k] = c * zi - s * zf;
          }
        }
      }
      if (deflated) continue;
      d[l]! -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
}

export interface SymEigOptions extends TridiagonalizeOptions {
  vectors?: boolean;
}

/**
 * Eigen-decomposition A = X diag(lambda) X^T of a symmetric matrix; values ascending,
 * vectors (when asked) as columns of a row-major n x n matrix.
 */
export async function symmetricEigen(a: Float64Array, n: number, opts: SymEigOptions = {}): Promise<{ values: Float64Array; vectors?: Float64Array }> {
  const wantVectors = opts.vectors === true;
  const tri = await tridiagonalize(a, n, { ...opts, keepReflectors: wantVectors });
  const d = tri.d, e = tri.e;
  let zt: Float64Array | undefined;
  if (wantVectors) {
    zt = new Float64Array(n * n);
    for (let i = 0; i < n; i++) zt[i * n + i] = 1;
  }
  tridiagonalQL(d, e, zt);
  const order = Array.from(d.keys()).sort((x, y) => d[x]! - d[y]!);
  const values = Float64Array.from(order, (i) => d[i]!);
  if (!wantVectors) return { values };
  // Back-transformation, one reflector at a time on each eigenvector (rows of zt):
  // x <- H_j x = x - tau v (v^T x) on entries j+1..n-1, for j = n-3 down to 0.
  const refl = tri.reflectors!;
  for (let k = 0; k < n; k++) {
    const o = k * n;
    for (let j = n - 3; j >= 0; j--) {
      const tau = refl.tau[j]!;
      if (tau === 0) continue;
      const v = refl.v[j]!;
      let s = 0;
      for (let r = 0; r < v.length; r++) s += v[r]! * zt![o + j + 1 + r]!;
      s *= tau;
      for (let r = 0; r < v.length; r++) zt![o + j + 1 + r]! -= s * v[r]!;
    }
  }
  const vectors = new Float64Array(n * n);
  for (let col = 0; col < n; col++) {
    const o = order[col]! * n;
    for (let r = 0; r < n; r++) vectors[r * n + col] = zt![o + r]!;
  }
  return { values, vectors };
}
