/**
 * The one linear-algebra contract of Tensor Scalpel. Two implementations:
 * - `native`: the system's LAPACK/BLAS through koffi (OpenBLAS on Linux, Accelerate on macOS, or a
 *   library path from the settings); found at start-up, its absence is normal;
 * - `portable`: large products through onnxruntime-node, eigen/SVD steps in TypeScript.
 * Matrices are dense and row-major.
 */

export interface Matrix {
  rows: number;
  cols: number;
  /** Row-major, rows * cols elements. */
  data: Float32Array;
}

export interface Matrix64 {
  rows: number;
  cols: number;
  data: Float64Array;
}

export interface SvdResult {
  /** rows x k, orthonormal columns. */
  U: Matrix64;
  /** k singular values, descending. */
  S: Float64Array;
  /** k x cols, orthonormal rows. */
  Vt: Matrix64;
}

export interface SymEigResult {
  /** Eigenvalues in ascending order. */
  values: Float64Array;
  /** n x n row-major; column j is the eigenvector of values[j] (when requested). */
  vectors?: Float64Array;
}

export interface LinalgOptions {
  signal?: AbortSignal;
}

export interface SingularValueOptions extends LinalgOptions {
  /**
   * 'auto' (default): the backend's fastest route that keeps singular values accurate to 1e-5 relative
   * to the largest; 'gram': eigenvalues of the float64 Gram matrix; 'direct': a direct SVD (gesdd or
   * equivalent), for when small singular values matter.
   */
  method?: 'auto' | 'gram' | 'direct';
}

export interface RandomizedSvdOptions extends LinalgOptions {
  /** Extra columns of the random sketch (Halko et al.: p = 10 is typical). */
  oversample?: number;
  /** Subspace (power) iterations, each re-orthonormalised (Halko et al. Alg. 4.4). */
  powerIterations?: number;
  /** Seed for the Gaussian test matrix (deterministic results). */
  seed?: number;
  /** Also return U and Vt (default true). */
  vectors?: boolean;
}

export interface LinalgBackend {
  readonly name: 'native' | 'portable';
  /** Human-readable detail, e.g. "OpenBLAS 0.3.21 (libopenblas.so.0)". */
  readonly description: string;
  /** C = op(A) op(B) in float32. */
  gemm(a: Matrix, b: Matrix, opts?: LinalgOptions & { transA?: boolean; transB?: boolean }): Promise<Matrix>;
  /** The Gram matrix of the smaller side: A A^T if rows <= cols else A^T A, accumulated in float64. */
  gram(a: Matrix, opts?: LinalgOptions): Promise<Matrix64>;
  /** Eigenvalues (ascending) and optionally eigenvectors of a symmetric n x n matrix. */
  symEig(a: Matrix64, opts?: LinalgOptions & { vectors?: boolean }): Promise<SymEigResult>;
  /** All min(rows, cols) singular values, descending. */
  singularValues(a: Matrix, opts?: SingularValueOptions): Promise<Float64Array>;
  /** Thin SVD: k = min(rows, cols). */
  svd(a: Matrix, opts?: LinalgOptions): Promise<SvdResult>;
  /** Randomized truncated SVD of rank k (Halko, Martinsson, Tropp 2011). */
  randomizedSvd(a: Matrix, k: number, opts?: RandomizedSvdOptions): Promise<SvdResult>;
  /** Block Lanczos (Golub-Kahan) for the k largest singular triplets. */
  lanczosSvd(a: Matrix, k: number, opts?: LinalgOptions & { blockSize?: number; maxIterations?: number; tolerance?: number; seed?: number }): Promise<SvdResult>;
  dispose(): Promise<void>;
}
