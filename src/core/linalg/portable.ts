/**
 * The portable backend: runs wherever onnxruntime-node runs, no system LAPACK needed.
 *
 * - Products: onnxruntime Gemm sessions built in memory (./onnxGemm), float32 (MLAS SGEMM) for
 *   products with the weights, float64 (MLAS DGEMM) where accuracy needs it.
 * - Gram matrix: float64. The weights are float32, products of two float32 numbers are exact in
 *   float64, so a float64 DGEMM over float64 copies of column/row chunks of A gives the Gram with
 *   relative rounding ~1e-16 (a float32 Gram would put absolute errors ~1e-7 s_max^2 on the
 *   eigenvalues, i.e. ~3e-4 s_max on the small singular values).
 * - Symmetric eigenproblem: ./symmetricEigen — blocked Householder tridiagonalisation whose
 *   trailing rank-2nb updates are onnxruntime DGEMMs (and the panel's matrix-vector products too,
 *   for trailing matrices of >= 1024 rows), then implicit QL on the tridiagonal matrix.
 * - Small dense steps (QR of sketches, SVD of projected matrices) in plain TypeScript (./dense).
 */
import { availableParallelism } from 'node:os';
import { throwIfAborted } from '../checkpoint/errors';
import { householderQR, matmul } from './dense';
import { OrtGemm } from './onnxGemm';
import { choleskyQR, lanczosSvdWith, randomizedSvdWith, type LanczosOptions, type SketchOps } from './sketch';
import { symmetricEigen } from './symmetricEigen';
import type {
  LinalgBackend, LinalgOptions, Matrix, Matrix64, RandomizedSvdOptions, SingularValueOptions, SvdResult, SymEigResult,
} from './types';

export interface PortableOptions {
  /** onnxruntime intra-op threads; default os.availableParallelism(). */
  threads?: number;
  /** Panel width of the blocked tridiagonalisation (default 32). */
  blockSize?: number;
}

/** Below this many multiply-adds a product is done in TypeScript (an ORT run costs ~0.1 ms). */
const ORT_MIN_WORK = 1 << 18;

export class PortableBackend implements LinalgBackend {
  readonly name = 'portable' as const;
  readonly description: string;
  private readonly ort: OrtGemm;
  private readonly blockSize: number;

  constructor(opts: PortableOptions = {}) {
    this.ort = new OrtGemm(opts.threads ?? availableParallelism());
    this.blockSize = opts.blockSize ?? 32;
    this.description = `onnxruntime-node GEMM (${this.ort.threads} thread(s)) + TypeScript blocked Householder/QL eigensolver`;
  }

  async gemm(a: Matrix, b: Matrix, opts: LinalgOptions & { transA?: boolean; transB?: boolean } = {}): Promise<Matrix> {
    throwIfAborted(opts.signal);
    const r = await this.ort.gemm(a.data, a.rows, a.cols, b.data, b.rows, b.cols, opts.transA === true, opts.transB === true);
    return { rows: r.rows, cols: r.cols, data: r.data };
  }

  /** Float64 product, in TypeScript when small, else onnxruntime DGEMM. */
  async gemm64(a: Matrix64, b: Matrix64, transA = false, transB = false): Promise<Matrix64> {
    const m = transA ? a.cols : a.rows, k = transA ? a.rows : a.cols, n = transB ? b.rows : b.cols;
    if (m * k * n < ORT_MIN_WORK) return matmul(a, b, transA, transB);
    const r = await this.ort.gemm(a.data, a.rows, a.cols, b.data, b.rows, b.cols, transA, transB);
    return { rows: r.rows, cols: r.cols, data: r.data };
  }

  /**
   * G = A A^T (rows <= cols) or A^T A in float64: chunks of A (<= 8M elements) converted to
   * float64 and laid out as X (small side x chunk), G += X X^T by onnxruntime DGEMM. For a small
   * side >= 1024 the rows of X are split into 4 blocks and only the 10 blocks G_IJ, I <= J, are
   * multiplied (5/8 of the flops of the full product; GEMM has no SYRK's symmetry saving).
   */
  async gram(a: Matrix, opts: LinalgOptions = {}): Promise<Matrix64> {
    const { rows: m, cols: n } = a;
    const small = Math.min(m, n), large = Math.max(m, n);
    const g = new Float64Array(small * small);
    const chunk = Math.max(1, Math.min(large, Math.floor((1 << 23) / Math.max(1, small))));
    const nBlocks = small >= 1024 ? 4 : 1;
    const edges = Array.from({ length: nBlocks + 1 }, (_, b) => Math.round((b * small) / nBlocks));
    for (let c0 = 0; c0 < large; c0 += chunk) {
      throwIfAborted(opts.signal);
      const w = Math.min(chunk, large - c0);
      // X: small x w, row i = the i-th row (m <= n) or column (m > n) of A over this chunk.
      const x = new Float64Array(small * w);
      if (m <= n) {
        for (let i = 0; i < m; i++) {
          const src = i * n + c0, dst = i * w;
          for (let j = 0; j < w; j++) x[dst + j] = a.data[src + j]!;
        }
      } else {
        for (let r = 0; r < w; r++) {
          const src = (c0 + r) * n;
          for (let i = 0; i < n; i++) x[i * w + r] = a.data[src + i]!;
        }
      }
      for (let bi = 0; bi < nBlocks; bi++) {
        for (let bj = bi; bj < nBlocks; bj++) {
          const i0 = edges[bi]!, i1 = edges[bi + 1]!, j0 = edges[bj]!, j1 = edges[bj + 1]!;
          const xi: Matrix64 = { rows: i1 - i0, cols: w, data: x.slice(i0 * w, i1 * w) };
          const xj: Matrix64 = bi === bj ? xi : { rows: j1 - j0, cols: w, data: x.slice(j0 * w, j1 * w) };
          const part = (await this.gemm64(xi, xj, false, true)).data;
          const pw = j1 - j0;
          for (let i = i0; i < i1; i++) {
            const o = i * small, po = (i - i0) * pw;
            for (let j = j0; j < j1; j++) g[o + j] += part[po + j - j0]!;
          }
        }
      }
    }
    // Mirror the upper blocks, and symmetrise the diagonal blocks (their halves can differ in the last bit).
    const blockOf = new Int32Array(small);
    for (let b = 0; b < nBlocks; b++) blockOf.fill(b, edges[b]!, edges[b + 1]!);
    for (let i = 0; i < small; i++) for (let j = i + 1; j < small; j++) {
      const sameBlock = blockOf[i] === blockOf[j];
      const v = sameBlock ? 0.5 * (g[i * small + j]! + g[j * small + i]!) : g[i * small + j]!;
      g[i * small + j] = v; g[j * small + i] = v;
    }
    return { rows: small, cols: small, data: g };
  }

  async symEig(a: Matrix64, opts: LinalgOptions & { vectors?: boolean } = {}): Promise<SymEigResult> {
    throwIfAborted(opts.signal);
    if (a.rows !== a.cols) throw new RangeError(`symEig: matrix is ${a.rows} x ${a.cols}, not square`);
    const n = a.rows;
    return symmetricEigen(a.data, n, {
      vectors: opts.vectors === true,
      blockSize: this.blockSize,
      gemmNT: async (l, r, rows, cols, k) => (await this.ort.gemm(l, rows, k, r, cols, k, false, true)).data,
      matVec: async (m, x, nn) => (await this.ort.gemm(m, nn, nn, x, nn, 1)).data,
      matVecMin: 1024,
      checkpoint: opts.signal ? () => throwIfAborted(opts.signal) : undefined,
    });
  }

  /**
   * 'auto' / 'gram': float64 Gram + the TypeScript eigensolver, s_i = sqrt(max(lambda_i, 0)); every
   * value lands within ~1e-8 s_max (see gram()). 'direct': Householder QR of the tall orientation,
   * then one-sided Jacobi (Hestenes) on the k x k factor R — no Gram, so small singular values keep
   * their relative accuracy; O(k^3) per sweep in TypeScript, meant for k up to a few hundred.
   */
  async singularValues(a: Matrix, opts: SingularValueOptions = {}): Promise<Float64Array> {
    throwIfAborted(opts.signal);
    const k = Math.min(a.rows, a.cols);
    if (k === 0) return new Float64Array(0);
    if (opts.method === 'direct') {
      const tall = a.rows >= a.cols
        ? { rows: a.rows, cols: a.cols, data: Float64Array.from(a.data) }
        : transpose64(a);
      const { r } = householderQR(tall);
      return jacobiSingularValues(r.data, k, opts.signal);
    }
    const g = await this.gram(a, opts);
    const { values } = await this.symEig(g, opts);
    const out = new Float64Array(k);
    for (let i = 0; i < k; i++) out[i] = Math.sqrt(Math.max(0, values[k - 1 - i]!));
    return out;
  }

  /**
   * Thin SVD through the Gram of the smaller side: A A^T = U diag(s^2) U^T (rows <= cols), then
   * Vt = diag(1/s) U^T A and a Householder re-orthonormalisation of V (which also completes the
   * directions whose s is ~0). The Gram is float64, so factors are accurate for s_i down to
   * ~1e-6 s_max and the identity U S Vt = A holds to ~1e-12 regardless.
   */
  async svd(a: Matrix, opts: LinalgOptions = {}): Promise<SvdResult> {
    throwIfAborted(opts.signal);
    const { rows: m, cols: n } = a;
    const k = Math.min(m, n);
    if (k === 0) return { U: { rows: m, cols: 0, data: new Float64Array(0) }, S: new Float64Array(0), Vt: { rows: 0, cols: n, data: new Float64Array(0) } };
    const wide = m <= n;
    const g = await this.gram(a, opts);
    const eig = await this.symEig(g, { ...opts, vectors: true });
    // Descending eigenpairs: W (k x k) columns, s.
    const s = new Float64Array(k);
    const w = new Float64Array(k * k);
    for (let j = 0; j < k; j++) {
      const src = k - 1 - j;
      s[j] = Math.sqrt(Math.max(0, eig.values[src]!));
      for (let i = 0; i < k; i++) w[i * k + j] = eig.vectors![i * k + src]!;
    }
    throwIfAborted(opts.signal);
    const W: Matrix64 = { rows: k, cols: k, data: w };
    const A64: Matrix64 = { rows: m, cols: n, data: Float64Array.from(a.data) };
    // wide: other = A^T W (n x k) = V diag(s);  tall: other = A W (m x k) = U diag(s).
    const other = await this.gemm64(A64, W, wide, false);
    const p = other.rows;
    const smax = s[0]!;
    for (let j = 0; j < k; j++) {
      const ok = s[j]! > smax * 1e-12;
      for (let i = 0; i < p; i++) other.data[i * k + j] = ok ? other.data[i * k + j]! / s[j]! : 0;
    }
    const q = householderQR(other).q; // p x k, orthonormal, signs kept (diag R >= 0)
    if (wide) return { U: W, S: s, Vt: transpose64m(q) };
    return { U: q, S: s, Vt: transpose64m(W) };
  }

  private sketchOps(a: Matrix): SketchOps {
    const gemm64 = (x: Matrix64, y: Matrix64, tx: boolean, ty: boolean): Promise<Matrix64> => this.gemm64(x, y, tx, ty);
    const mul = async (x: Matrix64, transA: boolean): Promise<Matrix64> => {
      const r = await this.ort.gemm(a.data, a.rows, a.cols, Float32Array.from(x.data), x.rows, x.cols, transA, false);
      return { rows: r.rows, cols: r.cols, data: Float64Array.from(r.data) };
    };
    return {
      rows: a.rows,
      cols: a.cols,
      mulA: (x) => mul(x, false),
      mulAt: (y) => mul(y, true),
      gemm64,
      orthonormalize: async (y) => (y.rows >= 4 * y.cols ? choleskyQR(y, gemm64) : householderQR(y).q),
    };
  }

  randomizedSvd(a: Matrix, k: number, opts: RandomizedSvdOptions = {}): Promise<SvdResult> {
    return randomizedSvdWith(this.sketchOps(a), k, opts);
  }

  lanczosSvd(a: Matrix, k: number, opts: LanczosOptions = {}): Promise<SvdResult> {
    return lanczosSvdWith(this.sketchOps(a), k, opts);
  }

  async dispose(): Promise<void> {
    await this.ort.dispose();
  }
}

function transpose64(a: Matrix): Matrix64 {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j]!;
  return { rows: a.cols, cols: a.rows, data: out };
}

function transpose64m(a: Matrix64): Matrix64 {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = a.data[i * a.cols + j]!;
  return { rows: a.cols, cols: a.rows, data: out };
}

/**
 * Singular values of a square k x k matrix by one-sided Jacobi (Hestenes 1958): rotate column
 * pairs (p, q) by the angle that zeroes their inner product,
 *   zeta = (||c_q||^2 - ||c_p||^2) / (2 c_p.c_q),  t = sign(zeta) / (|zeta| + sqrt(1 + zeta^2)),
 * until every pair satisfies |c_p.c_q| <= eps ||c_p|| ||c_q||; then s_j = ||c_j||. High relative
 * accuracy (Demmel & Veselic 1992). Columns are stored as rows of the transpose for locality.
 */
export async function jacobiSingularValues(r: Float64Array, k: number, signal?: AbortSignal): Promise<Float64Array> {
  const c = new Float64Array(k * k); // row j = column j of R
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) c[j * k + i] = r[i * k + j]!;
  const norms = new Float64Array(k);
  for (let j = 0; j < k; j++) { let s = 0; for (let i = 0; i < k; i++) s += c[j * k + i]! ** 2; norms[j] = s; }
  const tol = Number.EPSILON * k;
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < k - 1; p++) {
      for (let q = p + 1; q < k; q++) {
        const op = p * k, oq = q * k;
        let dot = 0;
        for (let i = 0; i < k; i++) dot += c[op + i]! * c[oq + i]!;
        const np = norms[p]!, nq = norms[q]!;
        if (Math.abs(dot) <= tol * Math.sqrt(np * nq) || dot === 0) continue;
        rotated = true;
        const zeta = (nq - np) / (2 * dot);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cs = 1 / Math.sqrt(1 + t * t), sn = cs * t;
        for (let i = 0; i < k; i++) {
          const x = c[op + i]!, y = c[oq + i]!;
          c[op + i] = cs * x - sn * y;
          c[oq + i] = sn * x + cs * y;
        }
        norms[p] = np - t * dot;
        norms[q] = nq + t * dot;
      }
    }
    if (signal) { await new Promise<void>((res) => setImmediate(res)); throwIfAborted(signal); }
    // Refresh the norms to stop drift from the updates above.
    for (let j = 0; j < k; j++) { let s = 0; for (let i = 0; i < k; i++) s += c[j * k + i]! ** 2; norms[j] = s; }
    if (!rotated) break;
  }
  return Float64Array.from(norms, Math.sqrt).sort().reverse();
}

export function createPortableBackend(opts: PortableOptions = {}): PortableBackend {
  return new PortableBackend(opts);
}
