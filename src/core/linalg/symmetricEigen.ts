/**
 * A symmetric eigensolver in TypeScript (float64), the heart of the portable backend:
 *
 * 1. Householder tridiagonalisation Q^T A Q = T, blocked like LAPACK's dsytrd/dlatrd
 *    (Dongarra, Hammarling & Sorensen 1989): a panel of nb columns is reduced using the not yet
 *    updated trailing matrix plus the panel's accumulated V, W; afterwards the trailing matrix takes
 *    the whole panel at once as the rank-2nb update  A22 <- A22 - V W^T - W V^T, which is one GEMM
 *    (onnxruntime's DGEMM when a product function is given). The matrix-vector product inside the
 *    panel (half of the flops, memory bound) stays level-2.
 * 2. Eigenvalues of the tridiagonal T by the root-free (Pal-Walker-Kahan) QL algorithm when only
 *    values are wanted (O(n^2), no square roots); with vectors, the implicit QL algorithm with
 *    Wilkinson-type shifts accumulating its plane rotations (O(n^3)), then the Householder
 *    reflectors applied back: X = H_0 H_1 ... H_{n-3} Z.
 *
 * Row-major throughout; the matrix is symmetric, so a row is also a column.
 */

import { acquireWasmWorkspace, releaseWasmWorkspace, type WasmWorkspace } from './wasm/kernels';

/** out (rows x cols) = L (rows x k) R^T (cols x k); row-major float64. Optional fast product. */
export type Gemm64NT = (l: Float64Array, r: Float64Array, rows: number, cols: number, k: number) => Promise<Float64Array>;
/**
 * out (rows x cols) = L (rows x k) R^T (cols x k) written into `out` (a view on the eigensolver's
 * WebAssembly memory; onnxruntime fills it as a pre-allocated output). Optional, preferred to Gemm64NT.
 */
export type Gemm64NTInto = (l: Float64Array, r: Float64Array, rows: number, cols: number, k: number, out: Float64Array) => Promise<void>;
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
  gemmNTInto?: Gemm64NTInto;
  /**
   * WebAssembly path: the trailing update is done in row strips of about this many rows, each
   * product covering only the strip's upper-triangular part (default 256).
   */
  stripRows?: number;
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
  // max |x_r| and the plain sum of squares in one pass.
  let scale = 0, ss = 0;
  for (let r = from + 1; r < to; r++) { const t = x[r]!; ss += t * t; const u = t < 0 ? -t : t; if (u > scale) scale = u; }
  if (scale === 0) {
    for (let r = from + 1; r < to; r++) x[r] = 0;
    x[from] = 1;
    return { beta: alpha, tau: 0 };
  }
  // ||x2||: the plain sum of squares unless it could have overflowed or underflowed, then scaled.
  let xnorm: number;
  if (scale < 1e150 && scale > 1e-150) {
    xnorm = Math.sqrt(ss);
  } else {
    ss = 0;
    for (let r = from + 1; r < to; r++) { const t = x[r]! / scale; ss += t * t; }
    xnorm = scale * Math.sqrt(ss);
  }
  const beta = -(alpha >= 0 ? 1 : -1) * Math.hypot(alpha, xnorm);
  const tau = (beta - alpha) / beta;
  const inv = 1 / (alpha - beta);
  for (let r = from + 1; r < to; r++) x[r]! *= inv;
  x[from] = 1;
  return { beta, tau };
}

/** Blocked Householder tridiagonalisation of a symmetric n x n matrix (the input is not modified). */
export async function tridiagonalize(a: Float64Array, n: number, opts: TridiagonalizeOptions = {}): Promise<TridiagonalForm> {
  if (opts.wasm !== false && n >= 64) {
    const nb = Math.max(1, Math.min(opts.blockSize ?? 32, n));
    const stripRows = Math.max(16, opts.stripRows ?? 256);
    const layout = wasmLayout(n, nb, Math.min(n, stripRows));
    const ws = acquireWasmWorkspace(layout.total);
    if (ws) {
      try {
        return await tridiagonalizeWasm(a, n, nb, stripRows, ws, layout, opts);
      } finally {
        releaseWasmWorkspace(ws);
      }
    }
  }
  return tridiagonalizePlain(a, n, opts);
}

/**
 * Element offsets of the WebAssembly path's arrays in the kernels' linear memory: the trailing
 * matrix at 0 (n^2), VW (2nb rows of length n: row 2p = v_p, row 2p+1 = w_p), y, col (n each),
 * dots, coef (2nb each), L, R (n x 2nb each), the strip product U (stripMax x n).
 */
interface WasmLayout { vw: number; y: number; col: number; dots: number; coef: number; l: number; r: number; u: number; total: number }

function wasmLayout(n: number, nb: number, stripMax: number): WasmLayout {
  const vw = n * n, y = vw + 2 * nb * n, col = y + n, dots = col + n, coef = dots + 2 * nb;
  const l = coef + 2 * nb, r = l + 2 * nb * n, u = r + 2 * nb * n;
  return { vw, y, col, dots, coef, l, r, u, total: u + stripMax * n };
}

/**
 * The WebAssembly path of tridiagonalize(). Same algorithm (dsytrd/dlatrd), arranged for memory
 * traffic, which is what bounds it:
 * - the trailing matrix T (N x N, row-major, ld N) keeps only its UPPER triangle up to date; the
 *   panel's product y = A22 v is the symmetric kernel `symvu`, which reads each element once for
 *   both halves (half the traffic of a full gemv);
 * - the panel's V and W are kept transposed and interleaved (rows v_0, w_0, v_1, w_1, ... of
 *   length n), so every correction (V (W^T v) + W (V^T v), the panel column's own update) is one
 *   row-wise gemv and one paired axpy (`axpyt2`) over long contiguous rows;
 * - the rank-2nb trailing update A22 <- A22 - [V W][W V]^T is done in row strips [r0, r1), each
 *   one GEMM  U = L[r0:r1] R[r0:M]^T  over the strip's columns r0..M-1 only (the upper triangle,
 *   (p+1)/2p of the full product for p strips), written by onnxruntime straight into linear memory,
 *   and subtracted row by row while compacting T to ld M.
 */
async function tridiagonalizeWasm(
  a: Float64Array, n: number, nbDefault: number, stripRows: number, ws: WasmWorkspace, L: WasmLayout, opts: TridiagonalizeOptions,
): Promise<TridiagonalForm> {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const keep = opts.keepReflectors === true;
  const tauAll = new Float64Array(n);
  const vAll: Float64Array[] = [];
  const f = ws.f64;
  f.set(a.subarray(0, n * n), 0);
  const ctx: PanelContext = {
    ws, L, n, f, col: f.subarray(L.col, L.col + n), y: f.subarray(L.y, L.y + n),
    out: { d, e, tau: tauAll, v: keep ? vAll : undefined },
  };
  let N = n;
  let c = 0;
  while (c < n) {
    const nb = Math.min(nbDefault, N);
    for (let i = 0; i < nb; i++) {
      if (!panelColumn(ctx, N, c, i)) break;
    }
    if (nb >= N) break;
    // Trailing update of rows/cols nb..N-1 (upper triangle): A22 <- A22 - L R^T with
    // L = [V W], R = [W V] (M x 2nb, row-major), then compaction of T to ld M.
    const M = N - nb, k2 = 2 * nb;
    packUpdateFactors(f, L, n, nb, M);
    const strips = Math.max(1, Math.ceil(M / stripRows));
    const h = Math.ceil(M / strips);
    for (let r0 = 0; r0 < M; r0 += h) {
      const r1 = Math.min(M, r0 + h), w = M - r0;
      const u = f.subarray(L.u, L.u + (r1 - r0) * w);
      const lStrip = f.subarray(L.l + r0 * k2, L.l + r1 * k2), rStrip = f.subarray(L.r + r0 * k2, L.r + M * k2);
      if (opts.gemmNTInto && M >= 64) {
        await opts.gemmNTInto(lStrip, rStrip, r1 - r0, w, k2, u);
      } else if (opts.gemmNT && M >= 64) {
        u.set(await opts.gemmNT(lStrip, rStrip, r1 - r0, w, k2));
      } else {
        for (let r = r0; r < r1; r++) {
          for (let q = r; q < M; q++) {
            let s = 0;
            for (let p = 0; p < k2; p++) s += lStrip[(r - r0) * k2 + p]! * rStrip[(q - r0) * k2 + p]!;
            u[(r - r0) * w + q - r0] = s;
          }
        }
      }
      // In-place compaction is safe: a row's destination never reaches a later row's source.
      for (let r = r0; r < r1; r++) ws.sub(r * M + r, (r + nb) * N + nb + r, L.u + (r - r0) * w + (r - r0), M - r);
    }
    N = M;
    c += nb;
    if (opts.checkpoint) await opts.checkpoint();
  }
  return { d, e, reflectors: keep ? { tau: tauAll, v: vAll } : undefined };
}

/**
 * L = [V W], R = [W V] (M x 2nb, row-major) from the panel's rows v_p, w_p (entries nb..N-1):
 * each row read contiguously, written with stride 2nb into L and R (which fit in cache).
 */
function packUpdateFactors(f: Float64Array, L: WasmLayout, n: number, nb: number, M: number): void {
  const k2 = 2 * nb;
  for (let p = 0; p < nb; p++) {
    const vo = L.vw + 2 * p * n + nb, wo = vo + n;
    for (let r = 0, lo = L.l + p, ro = L.r + p; r < M; r++, lo += k2, ro += k2) {
      const vv = f[vo + r]!, ww = f[wo + r]!;
      f[lo] = vv; f[lo + nb] = ww;
      f[ro] = ww; f[ro + nb] = vv;
    }
  }
}

/** What panelColumn() works on (views on the workspace) and where it puts its results. */
interface PanelContext {
  ws: WasmWorkspace; L: WasmLayout; n: number; f: Float64Array; col: Float64Array; y: Float64Array;
  out: { d: Float64Array; e: Float64Array; tau: Float64Array; v: Float64Array[] | undefined };
}

/**
 * Column i of the current panel (global column j = c + i) of the N x N trailing matrix: brings the
 * column up to date, makes its Householder reflector, and appends v_i, w_i to the panel's VW rows.
 * A function of its own (called n times) so the JIT optimises it early and on its own feedback.
 * Returns false at the last column of the matrix.
 */
function panelColumn(ctx: PanelContext, N: number, c: number, i: number): boolean {
  const { ws, L, n, f, col, y, out } = ctx;
  const j = c + i;
  const vRow = L.vw + 2 * i * n, wRow = vRow + n;
  // Column i of the trailing matrix (= row i, upper part), brought up to date with this
  // panel's earlier reflectors: a <- a - V W[i,:]^T - W V[i,:]^T  (entries i..N-1).
  f.copyWithin(L.col + i, i * N + i, i * N + N);
  if (i > 0) {
    for (let p = 0; p < i; p++) { f[L.coef + 2 * p] = f[L.vw + (2 * p + 1) * n + i]!; f[L.coef + 2 * p + 1] = f[L.vw + 2 * p * n + i]!; }
    ws.axpyt2(L.vw, n, L.coef, L.col, i, i, N);
  }
  out.d[j] = col[i]!;
  if (j >= n - 1) return false;
  if (j === n - 2) {
    out.e[j] = col[i + 1]!;
    f.fill(0, vRow + i + 1, vRow + N); f.fill(0, wRow + i + 1, wRow + N);
    return true;
  }
  const { beta, tau } = householder(col, i + 1, N);
  out.e[j] = beta;
  out.tau[j] = tau;
  if (out.v) out.v[j] = col.slice(i + 1, N);
  if (tau === 0) { f.fill(0, vRow + i + 1, vRow + N); f.fill(0, wRow + i + 1, wRow + N); return true; }
  f.copyWithin(vRow + i + 1, L.col + i + 1, L.col + N);
  // y = A22 v (panel-start trailing matrix), then y <- y - V (W^T v) - W (V^T v).
  ws.symvu(0, N, vRow, L.y, i + 1, N);
  if (i > 0) {
    // dots = (v_0.v, w_0.v, v_1.v, ...); v_p takes the coefficient w_p.v and w_p takes v_p.v.
    ws.gemv(L.vw, n, vRow, L.dots, 0, 2 * i, i + 1, N);
    for (let p = 0; p < i; p++) { f[L.coef + 2 * p] = f[L.dots + 2 * p + 1]!; f[L.coef + 2 * p + 1] = f[L.dots + 2 * p]!; }
    ws.axpyt2(L.vw, n, L.coef, L.y, i, i + 1, N);
  }
  // w = tau y;  w <- w - (tau/2)(w.v) v   so that  H A22 H = A22 - v w^T - w v^T.
  let wv = 0;
  for (let r = i + 1; r < N; r++) { const s = tau * y[r]!; f[wRow + r] = s; wv += s * col[r]!; }
  const alpha = -0.5 * tau * wv;
  for (let r = i + 1; r < N; r++) f[wRow + r]! += alpha * col[r]!;
  return true;
}

/** The plain TypeScript path of tridiagonalize() (no WebAssembly). */
async function tridiagonalizePlain(a: Float64Array, n: number, opts: TridiagonalizeOptions = {}): Promise<TridiagonalForm> {
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  const keep = opts.keepReflectors === true;
  const tauAll = new Float64Array(n);
  const vAll: Float64Array[] = [];
  if (n === 0) return { d, e, reflectors: keep ? { tau: tauAll, v: vAll } : undefined };
  const nbDefault = opts.blockSize ?? 32;
  const matVecMin = opts.matVecMin ?? 1024;
  // The trailing matrix, kept compact (N x N, N = n - c) so it can be handed to a GEMM/GEMV as is.
  let t = Float64Array.from(a.subarray(0, n * n));
  let N = n;
  let c = 0;
  while (c < n) {
    const nb = Math.min(nbDefault, N);
    // Row r, column p at r * nb + p.
    const V = new Float64Array(N * nb);
    const W = new Float64Array(N * nb);
    const col = new Float64Array(N);
    const vtw = new Float64Array(nb);
    const wtv = new Float64Array(nb);
    for (let i = 0; i < nb; i++) {
      const j = c + i;
      // Column i of the trailing matrix, brought up to date with this panel's earlier reflectors:
      // a <- a - V W[i,:]^T - W V[i,:]^T  (rows i..N-1).
      for (let r = i; r < N; r++) {
        let s = t[i * N + r]!;
        for (let p = 0; p < i; p++) s -= V[r * nb + p]! * W[i * nb + p]! + W[r * nb + p]! * V[i * nb + p]!;
        col[r] = s;
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
      // y = A22 v with the panel-start trailing matrix, then the panel's own corrections:
      // y <- y - V (W^T v) - W (V^T v).
      let y: Float64Array;
      if (opts.matVec && N >= matVecMin) {
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
      const alpha = -0.5 * tau * wv;
      for (let r = i + 1; r < N; r++) W[r * nb + i] += alpha * col[r]!;
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
      for (let q = 0; q < M; q++) t[dst + q] = t[src + q]! - upd[r * M + q]!;
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
 * eigenvalue of the leading 2x2 block closer to d[l] (Wilkinson). Converges cubically. An
 * off-diagonal is negligible when |e_m| <= eps (|d_m| + |d_{m+1}|) or |e_m| <= eps ||T||.
 * When zt is given (n x n, ROW i holds vector i), the rotations are accumulated into it.
 * On return d holds the eigenvalues (unsorted), e is destroyed.
 */
export function tridiagonalQL(d: Float64Array, e: Float64Array, zt?: Float64Array): void {
  const n = d.length;
  if (n === 0) return;
  e[n - 1] = 0;
  // Also negligible: |e_m| <= eps ||T|| (absolute). Without it, an off-diagonal of rounding size
  // between two exactly zero diagonal entries (rank-deficient Gram matrices) never deflates.
  let tnorm = 0;
  for (let i = 0; i < n; i++) tnorm = Math.max(tnorm, Math.abs(d[i]!) + Math.abs(e[i]!) + (i > 0 ? Math.abs(e[i - 1]!) : 0));
  const absTol = Number.EPSILON * tnorm;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (Math.abs(e[m]!) <= Number.EPSILON * dd || Math.abs(e[m]!) <= absTol) break;
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

/**
 * Eigenvalues only of a symmetric tridiagonal matrix (d, e; e[i] couples i and i+1) by the
 * root-free QL algorithm of Pal, Walker and Kahan (as in LAPACK's dsterf): the implicit QL sweep
 * with a Wilkinson-type shift sigma is rewritten in terms of the squares e_i^2, so the inner loop
 *   r = p + e_i^2,  c = p / r,  s = e_i^2 / r,  gamma' = c (d_i - sigma) - s gamma,
 *   d_{i+1} = gamma + (d_i - gamma'),  p = gamma'^2 / c   (= c_old e_i^2 when c = 0)
 * needs no square root and no Givens rotation (c, s are the squared cosine and sine). O(n^2).
 * An off-diagonal is negligible when e_m^2 <= eps^2 (|d_m| + |d_{m+1}|)^2, or below eps ||T||
 * (the absolute backward error the tridiagonalisation already carries).
 * On return d holds the eigenvalues (unsorted); e is left unchanged.
 */
export function tridiagonalEigenvalues(d: Float64Array, e: Float64Array): void {
  const n = d.length;
  if (n <= 1) return;
  const eps2 = Number.EPSILON * Number.EPSILON;
  const e2 = new Float64Array(n);
  let tnorm = 0;
  for (let i = 0; i < n; i++) {
    if (i < n - 1) e2[i] = e[i]! * e[i]!;
    tnorm = Math.max(tnorm, Math.abs(d[i]!) + Math.abs(e[i]!) + (i > 0 ? Math.abs(e[i - 1]!) : 0));
  }
  e2[n - 1] = 0;
  const absTol2 = eps2 * tnorm * tnorm;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    for (;;) {
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]!) + Math.abs(d[m + 1]!);
        if (e2[m]! <= eps2 * dd * dd || e2[m]! <= absTol2) break;
      }
      if (m === l) break;
      if (++iter > 60) throw new Error(`tridiagonal root-free QL did not converge at row ${l}`);
      const rte = Math.sqrt(e2[l]!);
      let sigma = (d[l + 1]! - d[l]!) / (2 * rte);
      const r = Math.abs(sigma) > 1e150 ? Math.abs(sigma) : Math.sqrt(sigma * sigma + 1);
      sigma = d[l]! - rte / (sigma + (sigma >= 0 ? r : -r));
      let c = 1, s = 0;
      let gamma = d[m]! - sigma;
      let p = gamma * gamma;
      for (let i = m - 1; i >= l; i--) {
        const bb = e2[i]!;
        const rr = p + bb;
        if (i !== m - 1) e2[i + 1] = s * rr;
        const oldc = c;
        c = p / rr;
        s = bb / rr;
        const oldgam = gamma;
        const alpha = d[i]!;
        gamma = c * (alpha - sigma) - s * oldgam;
        d[i + 1] = oldgam + (alpha - gamma);
        p = c !== 0 ? (gamma * gamma) / c : oldc * bb;
      }
      e2[l] = s * p;
      d[l] = sigma + gamma;
    }
  }
}

/**
 * Singular values from the ascending eigenvalues of a Gram matrix: s_i = sqrt(max(lambda_{k-1-i}, 0)),
 * descending. Rounding can leave a positive semidefinite matrix with tiny negative eigenvalues.
 */
export function singularValuesFromGram(values: ArrayLike<number>): Float64Array {
  const k = values.length;
  const s = new Float64Array(k);
  for (let i = 0; i < k; i++) s[i] = Math.sqrt(Math.max(0, values[k - 1 - i]!));
  return s;
}

/** Eigenvectors (row-major k x k, column j for the j-th ascending eigenvalue) with the columns in descending order. */
export function descendingColumns(vectors: Float64Array, k: number): Float64Array {
  const w = new Float64Array(k * k);
  for (let j = 0; j < k; j++) {
    const src = k - 1 - j;
    for (let i = 0; i < k; i++) w[i * k + j] = vectors[i * k + src]!;
  }
  return w;
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
  if (wantVectors) tridiagonalQL(d, e, zt);
  else tridiagonalEigenvalues(d, e);
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
