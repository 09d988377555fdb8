/**
 * Small pure helpers for dense row-major matrices, shared by both backends and by other modules
 * (analysis, surgery, tests). Everything here is plain TypeScript and meant for SMALL sizes
 * (sketches, panels, projected matrices); large products go through a LinalgBackend.
 */
import type { Matrix, Matrix64 } from './types';
import { descendingColumns, singularValuesFromGram, symmetricEigen } from './symmetricEigen';

/** Wraps row-major data as a Matrix (float32) or Matrix64 (float64), checking the length. */
export function toMatrix(data: Float32Array, rows: number, cols: number): Matrix;
export function toMatrix(data: Float64Array, rows: number, cols: number): Matrix64;
export function toMatrix(data: Float32Array | Float64Array, rows: number, cols: number): Matrix | Matrix64 {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new RangeError(`toMatrix: bad shape ${rows} x ${cols}`);
  }
  if (data.length !== rows * cols) {
    throw new RangeError(`toMatrix: ${data.length} elements for a ${rows} x ${cols} matrix (expected ${rows * cols})`);
  }
  return { rows, cols, data } as Matrix | Matrix64;
}

/** ||A||_F = sqrt(sum_ij a_ij^2), accumulated in float64 with scaling-free two-term summation. */
export function frobenius(a: Matrix | Matrix64 | Float32Array | Float64Array): number {
  const d = 'data' in a ? a.data : a;
  let s0 = 0, s1 = 0;
  let i = 0;
  for (; i + 1 < d.length; i += 2) { s0 += d[i]! * d[i]!; s1 += d[i + 1]! * d[i + 1]!; }
  if (i < d.length) s0 += d[i]! * d[i]!;
  return Math.sqrt(s0 + s1);
}

/**
 * Seeded Gaussian random numbers: xoshiro128** (Blackman & Vigna) for uniform 32-bit integers,
 * seeded through splitmix32, and the Box-Muller transform z = sqrt(-2 ln u1) cos(2 pi u2).
 * Deterministic for a given seed on every platform.
 */
export class GaussianRng {
  private s = new Uint32Array(4);
  private spare: number | undefined;

  constructor(seed = 0x5eed) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.s[0]! | this.s[1]! | this.s[2]! | this.s[3]!) === 0) this.s[0] = 1;
  }

  /** Uniform 32-bit unsigned integer (xoshiro128**). */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1]!, 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!; s[3]! ^= s[1]!; s[1]! ^= s[2]!; s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return result;
  }

  /** Uniform in (0, 1), never 0 (so ln u is finite). */
  uniform(): number {
    return (this.nextUint32() + 0.5) / 4294967296;
  }

  /** Standard normal N(0, 1). */
  normal(): number {
    if (this.spare !== undefined) { const v = this.spare; this.spare = undefined; return v; }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const th = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  fill<T extends Float32Array | Float64Array>(out: T): T {
    for (let i = 0; i < out.length; i++) out[i] = this.normal();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Gaussian matrix with i.i.d. N(0, 1) entries (float64). */
export function gaussianMatrix(rows: number, cols: number, seed: number): Matrix64 {
  return { rows, cols, data: new GaussianRng(seed).fill(new Float64Array(rows * cols)) };
}

/** C = op(A) op(B) in float64, plain loops (i-k-j order): only for small sizes. */
export function matmul(a: Matrix | Matrix64, b: Matrix | Matrix64, transA = false, transB = false): Matrix64 {
  const m = transA ? a.cols : a.rows, k = transA ? a.rows : a.cols;
  const k2 = transB ? b.cols : b.rows, n = transB ? b.rows : b.cols;
  if (k !== k2) throw new RangeError(`matmul: inner dimensions differ (${k} vs ${k2})`);
  const A = a.data, B = b.data, C = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const aip = transA ? A[p * a.cols + i]! : A[i * a.cols + p]!;
      if (aip === 0) continue;
      if (transB) { for (let j = 0; j < n; j++) C[ci + j] += aip * B[j * b.cols + p]!; }
      else { const bp = p * b.cols; for (let j = 0; j < n; j++) C[ci + j] += aip * B[bp + j]!; }
    }
  }
  return { rows: m, cols: n, data: C };
}

export function transpose<T extends Matrix | Matrix64>(a: T): T {
  const out = new (a.data.constructor as { new (n: number): Float32Array | Float64Array })(a.data.length);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j]!;
  return { rows: a.cols, cols: a.rows, data: out } as T;
}

export function to64(a: Matrix | Matrix64): Matrix64 {
  return { rows: a.rows, cols: a.cols, data: a.data instanceof Float64Array ? a.data : Float64Array.from(a.data) };
}

export function to32(a: Matrix | Matrix64): Matrix {
  return { rows: a.rows, cols: a.cols, data: a.data instanceof Float32Array ? a.data : Float32Array.from(a.data) };
}

/**
 * max_ij |(Q^T Q - I)_ij| for the columns of Q (columns = true) or |(Q Q^T - I)_ij| for its rows.
 * The usual measure of loss of orthogonality.
 */
export function orthonormalityError(q: Matrix | Matrix64, columns = true): number {
  const g = columns ? matmul(q, q, true, false) : matmul(q, q, false, true);
  let worst = 0;
  for (let i = 0; i < g.rows; i++) for (let j = 0; j < g.cols; j++) {
    worst = Math.max(worst, Math.abs(g.data[i * g.cols + j]! - (i === j ? 1 : 0)));
  }
  return worst;
}

/** ||A - U diag(S) Vt||_F / ||A||_F. */
export function reconstructionError(a: Matrix | Matrix64, u: Matrix64, s: Float64Array, vt: Matrix64): number {
  const k = s.length;
  const us = new Float64Array(u.rows * k);
  for (let i = 0; i < u.rows; i++) for (let j = 0; j < k; j++) us[i * k + j] = u.data[i * u.cols + j]! * s[j]!;
  const r = matmul({ rows: u.rows, cols: k, data: us }, { rows: k, cols: vt.cols, data: vt.data.subarray(0, k * vt.cols) });
  let num = 0;
  for (let i = 0; i < r.data.length; i++) { const t = r.data[i]! - a.data[i]!; num += t * t; }
  const den = frobenius(a);
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num) / den;
}

/**
 * Thin Householder QR of a tall m x l matrix (m >= l), float64: Y = Q R with Q m x l orthonormal
 * columns and R upper triangular with non-negative diagonal. Columns beyond the numerical rank
 * still come out orthonormal (the reflectors complete the basis), which is what the sketching
 * algorithms need. Cost 4 m l^2 flops.
 */
export function householderQR(y: Matrix64): { q: Matrix64; r: Matrix64 } {
  const m = y.rows, l = y.cols;
  if (m < l) throw new RangeError(`householderQR: needs rows >= cols, got ${m} x ${l}`);
  // Work column-major for contiguous column access.
  const a = new Float64Array(m * l);
  for (let i = 0; i < m; i++) for (let j = 0; j < l; j++) a[j * m + i] = y.data[i * l + j]!;
  const tau = new Float64Array(l);
  const beta = new Float64Array(l);
  for (let j = 0; j < l; j++) {
    const o = j * m;
    let ss = 0;
    for (let i = j + 1; i < m; i++) ss += a[o + i]! * a[o + i]!;
    const alpha = a[o + j]!;
    if (ss === 0) { tau[j] = 0; beta[j] = alpha; a[o + j] = 1; continue; }
    const b = -(alpha >= 0 ? 1 : -1) * Math.sqrt(alpha * alpha + ss);
    tau[j] = (b - alpha) / b;
    beta[j] = b;
    const inv = 1 / (alpha - b);
    for (let i = j + 1; i < m; i++) a[o + i]! *= inv;
    a[o + j] = 1;
    // Apply H_j = I - tau v v^T to the remaining columns.
    for (let c = j + 1; c < l; c++) {
      const oc = c * m;
      let s = 0;
      for (let i = j; i < m; i++) s += a[o + i]! * a[oc + i]!;
      s *= tau[j]!;
      for (let i = j; i < m; i++) a[oc + i]! -= s * a[o + i]!;
    }
  }
  const r = new Float64Array(l * l);
  for (let j = 0; j < l; j++) {
    for (let i = 0; i < j; i++) r[i * l + j] = a[j * m + i]!;
    r[j * l + j] = beta[j]!;
  }
  // Q = H_0 ... H_{l-1} [I; 0], built backwards, column-major.
  const q = new Float64Array(m * l);
  for (let j = 0; j < l; j++) q[j * m + j] = 1;
  for (let j = l - 1; j >= 0; j--) {
    const t = tau[j]!;
    if (t === 0) continue;
    const o = j * m;
    for (let c = j; c < l; c++) {
      const oc = c * m;
      let s = 0;
      for (let i = j; i < m; i++) s += a[o + i]! * q[oc + i]!;
      s *= t;
      for (let i = j; i < m; i++) q[oc + i]! -= s * a[o + i]!;
    }
  }
  // Non-negative diagonal of R: flip signs of the matching Q columns / R rows.
  const qr = new Float64Array(m * l);
  for (let j = 0; j < l; j++) {
    const sgn = r[j * l + j]! < 0 ? -1 : 1;
    if (sgn < 0) for (let c = j; c < l; c++) r[j * l + c] = -r[j * l + c]!;
    for (let i = 0; i < m; i++) qr[i * l + j] = sgn * q[j * m + i]!;
  }
  return { q: { rows: m, cols: l, data: qr }, r: { rows: l, cols: l, data: r } };
}

/**
 * SVD of a small dense matrix in float64 (any shape), M = U diag(S) Vt with k = min(rows, cols):
 * QR of the tall orientation (M or M^T), then the eigen-decomposition of the small k x k Gram of R
 * (R^T R = W diag(S^2) W^T), then  U_R = R W S^{-1}  re-orthonormalised by a second QR, which keeps
 * directions of tiny or zero singular values orthonormal. Accurate for singular values down to
 * ~1e-7 of the largest (the Gram squares the condition number); meant for the projected matrices of
 * randomized SVD and Lanczos, where only the leading triplets matter.
 */
export async function smallSvd(m: Matrix64): Promise<{ u: Matrix64; s: Float64Array; vt: Matrix64 }> {
  const wide = m.rows < m.cols;
  const tall = wide ? transpose(m) : m; // tall: p x k, p >= k
  const k = tall.cols;
  if (k === 0) {
    return { u: { rows: m.rows, cols: 0, data: new Float64Array(0) }, s: new Float64Array(0), vt: { rows: 0, cols: m.cols, data: new Float64Array(0) } };
  }
  const { q, r } = householderQR(tall); // tall = Q R
  const g = matmul(r, r, true, false); // R^T R = W S^2 W^T
  const eig = await symmetricEigen(g.data, k, { vectors: true });
  // Descending order.
  const s = singularValuesFromGram(eig.values);
  const w = descendingColumns(eig.vectors!, k);
  // R W = U_R S; normalise columns, then re-orthonormalise (columns with s ~ 0 get completed).
  const rw = matmul(r, { rows: k, cols: k, data: w });
  const smax = s[0]!;
  for (let j = 0; j < k; j++) {
    const sj = s[j]!;
    const ok = sj > smax * 1e-12;
    for (let i = 0; i < k; i++) rw.data[i * k + j] = ok ? rw.data[i * k + j]! / sj : (i === j ? 1e-3 : 0);
  }
  const ur = householderQR(rw).q;
  // Householder QR keeps the column signs (R diagonal >= 0) so U_R stays aligned with R W S^-1.
  const left = matmul(q, ur); // p x k
  // tall = left diag(s) W^T
  if (!wide) return { u: left, s, vt: transpose({ rows: k, cols: k, data: w }) };
  // M = tall^T = W diag(s) left^T
  return { u: { rows: k, cols: k, data: w }, s, vt: transpose(left) };
}
