/**
 * The portable backend: runs wherever onnxruntime-node runs, no system LAPACK needed.
 *
 * - Products: onnxruntime Gemm sessions built in memory (./onnxGemm), float32 (MLAS SGEMM) for
 *   products with the weights, float64 (MLAS DGEMM) where accuracy needs it.
 * - Gram matrix: float64. The weights are float32, products of two float32 numbers are exact in
 *   float64, so a float64 DGEMM over float64 copies of column/row chunks of A gives the Gram with
 *   relative rounding ~1e-16 (a float32 Gram would put absolute errors ~1e-7 s_max^2 on the
 *   eigenvalues, i.e. ~3e-4 s_max on the small singular values).
 * - Symmetric eigenproblem: ./symmetricEigen — blocked Householder tridiagonalisation whose panel
 *   runs in WebAssembly SIMD kernels and whose trailing rank-2nb updates are onnxruntime DGEMMs
 *   written straight into the kernels' memory, then root-free QL (values) or implicit QL (vectors).
 * - Small dense steps (QR of sketches, SVD of projected matrices) in plain TypeScript (./dense).
 */
import { availableParallelism } from 'node:os';
import { throwIfAborted } from '../checkpoint/errors';
import { householderQR, matmul } from './dense';
import { OrtGemm } from './onnxGemm';
import { prepareKernels } from './wasm/kernels';
import { choleskyQR, lanczosSvdWith, randomizedSvdWith, type LanczosOptions, type SketchOps } from './sketch';
import { descendingColumns, singularValuesFromGram, symmetricEigen, type SymEigOptions } from './symmetricEigen';
import type {
  LinalgBackend, LinalgOptions, Matrix, Matrix64, RandomizedSvdOptions, SingularValueOptions, SvdResult, SymEigResult,
} from './types';

export interface PortableOptions {
  /** onnxruntime intra-op threads; default os.availableParallelism(). */
  threads?: number;
  /**
   * Panel width of the blocked tridiagonalisation (default: 32, or 64 for matrices of >= 1536 rows,
   * where the wider rank-2nb update runs onnxruntime's DGEMM measurably faster).
   */
  blockSize?: number;
}

/** Below this many multiply-adds a product is done in TypeScript (an ORT run costs ~0.1 ms). */
const ORT_MIN_WORK = 1 << 18;

export class PortableBackend implements LinalgBackend {
  readonly name = 'portable' as const;
  readonly description: string;
  private readonly ort: OrtGemm;
  private readonly blockSize: number | undefined;

  /**
   * The eigensolver's onnxruntime products, made once (fresh closures per call would hand the JIT
   * a new call target each time, and it deoptimises the solver's hot loop on each).
   */
  private readonly eigProducts: Pick<SymEigOptions, 'gemmNT' | 'gemmNTInto' | 'matVec' | 'matVecMin'>;

  constructor(opts: PortableOptions = {}) {
    this.ort = new OrtGemm(opts.threads ?? availableParallelism());
    const ort = this.ort;
    this.eigProducts = {
      gemmNT: async (l, r, rows, cols, k) => (await ort.gemm(l, rows, k, r, cols, k, false, true)).data,
      gemmNTInto: (l, r, rows, cols, k, out) => ort.gemmInto(l, rows, k, r, cols, k, false, true, out),
      matVec: async (m, x, nn) => (await ort.gemm(m, nn, nn, x, nn, 1)).data,
      matVecMin: 1024,
    };
    // The Gram matrix and the eigensolver's updates both run X Y^T in float64: have that session
    // and the WebAssembly kernels ready before the first call.
    ort.prepare('float64', false, true);
    prepareKernels();
    this.blockSize = opts.blockSize;
    this.description = `onnxruntime-node GEMM (${this.ort.threads} thread(s)) + WebAssembly/TypeScript blocked Householder tridiagonalisation + root-free QL`;
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
   * G = A A^T (rows <= cols) or A^T A in float64: chunks of A (<= 8M elements) along the long side
   * are converted to float64 (wide: typed-array set of contiguous row pieces; tall: a tiled
   * transpose) as X (small x chunk), and G += X_I X_J^T by onnxruntime DGEMM (X_I = rows I). The
   * small side is split into p = round(small / 256) blocks (1..4) and only the p(p+1)/2 blocks
   * G_IJ, I <= J, are multiplied ((p+1)/2p of the flops of the full product: 5/8 for p = 4; GEMM has
   * no SYRK's symmetry saving).
   * Products of two float32 numbers are exact in float64, so G carries only the DGEMM's summation
   * rounding (~k 2^-53 relative).
   */
  async gram(a: Matrix, opts: LinalgOptions = {}): Promise<Matrix64> {
    const { rows: m, cols: n } = a;
    const wide = m <= n;
    const small = Math.min(m, n), large = Math.max(m, n);
    const g = new Float64Array(small * small);
    if (small === 0) return { rows: 0, cols: 0, data: g };
    const chunk = Math.max(1, Math.min(large, Math.floor((1 << 23) / small)));
    const nBlocks = Math.max(1, Math.min(4, Math.round(small / 256)));
    const edges = Array.from({ length: nBlocks + 1 }, (_, b) => Math.round((b * small) / nBlocks));
    const single = chunk >= large && nBlocks === 1;
    for (let c0 = 0; c0 < large; c0 += chunk) {
      throwIfAborted(opts.signal);
      const w = Math.min(chunk, large - c0);
      // Block b of the chunk in float64, X_b = rows i0..i1 of A (wide) or of A^T (tall) over
      // c0..c0+w (|I| x w, row-major). The tall case is transposed here in cache-sized tiles: MLAS
      // multiplies X X^T (transB) measurably faster than Y^T Y (transA).
      const blocks: Float64Array[] = [];
      for (let b = 0; b < nBlocks; b++) {
        const i0 = edges[b]!, i1 = edges[b + 1]!;
        const x = new Float64Array((i1 - i0) * w);
        if (wide) {
          for (let i = i0; i < i1; i++) x.set(a.data.subarray(i * n + c0, i * n + c0 + w), (i - i0) * w);
        } else {
          transposeInto(a.data, n, c0, c0 + w, i0, i1, x);
        }
        blocks.push(x);
      }
      for (let bi = 0; bi < nBlocks; bi++) {
        for (let bj = bi; bj < nBlocks; bj++) {
          const i0 = edges[bi]!, i1 = edges[bi + 1]!, j0 = edges[bj]!, j1 = edges[bj + 1]!;
          const hi = i1 - i0, wj = j1 - j0;
          const xi = blocks[bi]!, xj = blocks[bj]!;
          if (single) {
            // One product covers all of G: let onnxruntime write it in place.
            await this.gemm64Into({ rows: hi, cols: w, data: xi }, { rows: wj, cols: w, data: xj }, false, true, g);
            continue;
          }
          const part = (await this.gemm64({ rows: hi, cols: w, data: xi }, { rows: wj, cols: w, data: xj }, false, true)).data;
          addBlock(g, small, part, i0, i1, j0, j1);
        }
      }
    }
    mirrorUpperBlocks(g, small, edges);
    return { rows: small, cols: small, data: g };
  }

  /** gemm64 written into `out` (op(A) op(B) elements): onnxruntime fills it directly when large. */
  private async gemm64Into(a: Matrix64, b: Matrix64, transA: boolean, transB: boolean, out: Float64Array): Promise<void> {
    const m = transA ? a.cols : a.rows, k = transA ? a.rows : a.cols, n = transB ? b.rows : b.cols;
    if (m * k * n < ORT_MIN_WORK) { out.set(matmul(a, b, transA, transB).data); return; }
    await this.ort.gemmInto(a.data, a.rows, a.cols, b.data, b.rows, b.cols, transA, transB, out);
  }

  async symEig(a: Matrix64, opts: LinalgOptions & { vectors?: boolean } = {}): Promise<SymEigResult> {
    throwIfAborted(opts.signal);
    if (a.rows !== a.cols) throw new RangeError(`symEig: matrix is ${a.rows} x ${a.cols}, not square`);
    const n = a.rows;
    return symmetricEigen(a.data, n, {
      vectors: opts.vectors === true,
      blockSize: this.blockSize ?? (n >= 1536 ? 64 : 32),
      ...this.eigProducts,
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
    return singularValuesFromGram(values);
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
    const s = singularValuesFromGram(eig.values);
    const w = descendingColumns(eig.vectors!, k);
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

/** G[i0..i1, j0..j1] += part (row-major, j1 - j0 columns); G is small x small. */
function addBlock(g: Float64Array, small: number, part: Float64Array, i0: number, i1: number, j0: number, j1: number): void {
  const wj = j1 - j0;
  for (let i = i0; i < i1; i++) {
    const o = i * small + j0, po = (i - i0) * wj;
    for (let j = 0; j < wj; j++) g[o + j] += part[po + j]!;
  }
}

/**
 * Completes a Gram matrix of which the blocks G_IJ, I <= J (block edges `edges`) were computed:
 * mirrors the upper blocks into the lower ones and symmetrises the diagonal blocks, whose two
 * halves come from different dot-product orders and can differ in the last bit.
 */
function mirrorUpperBlocks(g: Float64Array, small: number, edges: number[]): void {
  for (let b = 0; b + 1 < edges.length; b++) {
    const b0 = edges[b]!, b1 = edges[b + 1]!;
    for (let i = b0; i < b1; i++) {
      const row = i * small;
      for (let j = i + 1; j < b1; j++) {
        const v = 0.5 * (g[row + j]! + g[j * small + i]!);
        g[row + j] = v; g[j * small + i] = v;
      }
      for (let j = b1; j < small; j++) g[j * small + i] = g[row + j]!;
    }
  }
}

/**
 * out (|I| x (r1 - r0), row-major) = float64 copy of A[r0..r1, i0..i1]^T for a row-major A with
 * `cols` columns; 32 x 32 tiles keep both the reads and the strided writes in cache.
 */
function transposeInto(a: Float32Array, cols: number, r0: number, r1: number, i0: number, i1: number, out: Float64Array): void {
  const w = r1 - r0, T = 32;
  for (let rb = r0; rb < r1; rb += T) {
    const re = Math.min(r1, rb + T);
    for (let cb = i0; cb < i1; cb += T) {
      const ce = Math.min(i1, cb + T);
      for (let r = rb; r < re; r++) {
        const src = r * cols, dst = r - r0;
        for (let c = cb; c < ce; c++) out[(c - i0) * w + dst] = a[src + c]!;
      }
    }
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
