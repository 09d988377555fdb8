/**
 * The native backend: the system's LAPACK/BLAS through the koffi FFI.
 *
 * ABI choice: the Fortran ABI (`dsyevd_`, `sgemm_`, ...; every argument by pointer, gfortran's
 * hidden `size_t` string lengths appended after the declared arguments). Every LAPACK build exports
 * it — OpenBLAS, reference LAPACK + BLAS, Accelerate — whereas LAPACKE is a separate library that
 * Debian's OpenBLAS does not include (`nm -D libopenblas.so.0 | grep LAPACKE` is empty). Extra
 * trailing length arguments are harmless to implementations that do not read them.
 *
 * Storage: our matrices are row-major; a row-major m x n matrix is the column-major n x m matrix
 * A^T, so every call is set up on the transpose (singular values are the same; SVD factors swap).
 *
 * Threads: OpenBLAS's own pool size is set with `openblas_set_num_threads` when the symbol exists:
 * 1 thread for calls below ~2^20 multiply-adds (pool wake-up and spin-waiting cost more than they
 * save there), else `threads` (default os.availableParallelism()). The jobs layer should pass
 * threads = cores / workers when several workers run LAPACK at once: OpenBLAS's pool is
 * process-wide and spin-waits, so oversubscription is very costly. OPENBLAS_NUM_THREADS in the
 * environment only sets the initial value; we override it per call.
 * Calls are synchronous: they block the calling thread, which is why analysis runs in
 * worker_threads. Cancellation is checked between blocks (Gram chunks, sketch iterations), never
 * inside one LAPACK call.
 */
import type * as Koffi from 'koffi';
import { existsSync } from 'node:fs';
import { availableParallelism, platform } from 'node:os';
import { throwIfAborted } from '../checkpoint/errors';
import { lanczosSvdWith, randomizedSvdWith, type LanczosOptions, type SketchOps } from './sketch';
import { singularValuesFromGram } from './symmetricEigen';
import type {
  LinalgBackend, LinalgOptions, Matrix, Matrix64, RandomizedSvdOptions, SingularValueOptions, SvdResult, SymEigResult,
} from './types';

export interface NativeOptions {
  /** A LAPACK library (that also exports BLAS or links it) to use instead of the search. */
  libraryPath?: string;
  /** OpenBLAS thread count; default os.availableParallelism(). */
  threads?: number;
}

/** Candidate libraries, in order; each entry is [LAPACK, optional separate BLAS]. */
export function nativeCandidates(libraryPath?: string): Array<[string, string?]> {
  const out: Array<[string, string?]> = [];
  if (libraryPath) { out.push([libraryPath]); return out; }
  const env = process.env['TENSOR_SCALPEL_LAPACK'];
  if (env) out.push([env]);
  const os = platform();
  if (os === 'darwin') {
    out.push(['/System/Library/Frameworks/Accelerate.framework/Accelerate']);
    out.push(['/opt/homebrew/opt/openblas/lib/libopenblas.dylib'], ['/usr/local/opt/openblas/lib/libopenblas.dylib']);
  } else if (os === 'win32') {
    out.push(['libopenblas.dll'], ['openblas.dll']);
  } else {
    const dirs = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/usr/local/lib'];
    for (const name of ['libopenblas.so.0', 'libopenblas.so']) {
      out.push([name]);
      for (const d of dirs) if (existsSync(`${d}/${name}`)) out.push([`${d}/${name}`]);
    }
    out.push(['liblapack.so.3', 'libblas.so.3']);
    for (const d of dirs) if (existsSync(`${d}/liblapack.so.3`)) out.push([`${d}/liblapack.so.3`, `${d}/libblas.so.3`]);
  }
  return out;
}

type Fn = (...args: any[]) => any;

let koffiModule: typeof Koffi | undefined;
/**
 * koffi is loaded on first use, not at import: where its prebuilt binary is missing or broken, the
 * native backend reports itself unavailable and the portable one keeps working.
 */
function koffi(): typeof Koffi {
  return (koffiModule ??= require('koffi') as typeof Koffi);
}

interface Lapack {
  path: string;
  description: string;
  sgemm: Fn; dgemm: Fn; dsyrk: Fn;
  dsyevd: Fn; dsyevd2stage?: Fn; sgesdd: Fn; dgesdd: Fn; dgeqrf: Fn; dorgqr: Fn;
  setThreads?: Fn;
}

const REQUIRED = ['sgemm_', 'dgemm_', 'dsyrk_', 'dsyevd_', 'sgesdd_', 'dgesdd_', 'dgeqrf_', 'dorgqr_'];

function bind(lapackPath: string, blasPath?: string): Lapack {
  const lib = koffi().load(lapackPath);
  let blas: Koffi.LibraryHandle | undefined;
  const fn = (decl: string, name: string): Fn => {
    try { return lib.func(decl) as Fn; } catch (e) {
      if (!blasPath) throw e;
      blas ??= koffi().load(blasPath);
      void name;
      return blas.func(decl) as Fn;
    }
  };
  const opt = (decl: string): Fn | undefined => { try { return lib.func(decl) as Fn; } catch { return undefined; } };
  const i = 'int *';
  const l: Lapack = {
    path: lapackPath,
    description: '',
    sgemm: fn(`void sgemm_(const char *ta, const char *tb, ${i} m, ${i} n, ${i} k, float *alpha, float *a, ${i} lda, float *b, ${i} ldb, float *beta, _Inout_ float *c, ${i} ldc, size_t la, size_t lb)`, 'sgemm_'),
    dgemm: fn(`void dgemm_(const char *ta, const char *tb, ${i} m, ${i} n, ${i} k, double *alpha, double *a, ${i} lda, double *b, ${i} ldb, double *beta, _Inout_ double *c, ${i} ldc, size_t la, size_t lb)`, 'dgemm_'),
    dsyrk: fn(`void dsyrk_(const char *uplo, const char *trans, ${i} n, ${i} k, double *alpha, double *a, ${i} lda, double *beta, _Inout_ double *c, ${i} ldc, size_t lu, size_t lt)`, 'dsyrk_'),
    dsyevd: lib.func(`void dsyevd_(const char *jobz, const char *uplo, ${i} n, _Inout_ double *a, ${i} lda, _Out_ double *w, _Inout_ double *work, ${i} lwork, _Inout_ int *iwork, ${i} liwork, _Out_ int *info, size_t lj, size_t lu)`) as Fn,
    dsyevd2stage: opt(`void dsyevd_2stage_(const char *jobz, const char *uplo, ${i} n, _Inout_ double *a, ${i} lda, _Out_ double *w, _Inout_ double *work, ${i} lwork, _Inout_ int *iwork, ${i} liwork, _Out_ int *info, size_t lj, size_t lu)`),
    sgesdd: lib.func(`void sgesdd_(const char *jobz, ${i} m, ${i} n, _Inout_ float *a, ${i} lda, _Out_ float *s, _Inout_ float *u, ${i} ldu, _Inout_ float *vt, ${i} ldvt, _Inout_ float *work, ${i} lwork, _Inout_ int *iwork, _Out_ int *info, size_t lj)`) as Fn,
    dgesdd: lib.func(`void dgesdd_(const char *jobz, ${i} m, ${i} n, _Inout_ double *a, ${i} lda, _Out_ double *s, _Inout_ double *u, ${i} ldu, _Inout_ double *vt, ${i} ldvt, _Inout_ double *work, ${i} lwork, _Inout_ int *iwork, _Out_ int *info, size_t lj)`) as Fn,
    dgeqrf: lib.func(`void dgeqrf_(${i} m, ${i} n, _Inout_ double *a, ${i} lda, _Out_ double *tau, _Inout_ double *work, ${i} lwork, _Out_ int *info)`) as Fn,
    dorgqr: lib.func(`void dorgqr_(${i} m, ${i} n, ${i} k, _Inout_ double *a, ${i} lda, double *tau, _Inout_ double *work, ${i} lwork, _Out_ int *info)`) as Fn,
    setThreads: opt('void openblas_set_num_threads(int n)'),
  };
  const getConfig = opt('const char *openblas_get_config()');
  const config = getConfig ? String(getConfig()) : '';
  l.description = config ? `OpenBLAS (${config.trim()}) [${lapackPath}]` : `LAPACK [${lapackPath}${blasPath ? ` + ${blasPath}` : ''}]`;
  return l;
}

let cached: { lapack?: Lapack; detail: string } | undefined;

/** Finds and binds a LAPACK; never throws: the detail says what was tried and why it failed. */
export function probeNative(libraryPath?: string): { lapack?: Lapack; detail: string } {
  if (!libraryPath && cached) return cached;
  const tried: string[] = [];
  let result: { lapack?: Lapack; detail: string } | undefined;
  for (const [lapackPath, blasPath] of nativeCandidates(libraryPath)) {
    try {
      const lapack = bind(lapackPath, blasPath);
      result = { lapack, detail: lapack.description };
      break;
    } catch (e) {
      tried.push(`${lapackPath}${blasPath ? ` + ${blasPath}` : ''}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  result ??= {
    detail: `no LAPACK found (needs ${REQUIRED.join(', ')}). Tried: ${tried.join('; ') || '(nothing to try on this platform)'}`,
  };
  if (!libraryPath) cached = result;
  return result;
}

const one32 = new Float32Array([1]);
const zero32 = new Float32Array([0]);
const one64 = new Float64Array([1]);
const int = (v: number): Int32Array => new Int32Array([v]);

function checkInfo(routine: string, info: Int32Array): void {
  if (info[0] !== 0) throw new Error(`${routine} failed: info = ${info[0]}${info[0]! > 0 ? ' (no convergence)' : ' (bad argument)'}`);
}

function checkSize(n: number, what: string): void {
  if (n > 2147483647) throw new RangeError(`${what}: ${n} exceeds the 32-bit LAPACK index range`);
}

/** OpenBLAS's pool size is process-wide (per loaded library): remember the last value we set. */
let openblasThreads = -1;

export class NativeBackend implements LinalgBackend {
  readonly name = 'native' as const;
  readonly description: string;
  readonly threads: number;
  private readonly l: Lapack;

  constructor(lapack: Lapack, threads = availableParallelism()) {
    this.l = lapack;
    this.threads = Math.max(1, threads);
    this.description = `${lapack.description}, ${this.threads} thread(s)`;
  }

  /**
   * One OpenBLAS thread for small problems (below ~2^20 multiply-adds per call the pool's
   * start-up and spin-waiting cost more than they save, badly so on a loaded machine), the
   * configured count otherwise. No-op for libraries without openblas_set_num_threads.
   */
  private threadsFor(work: number): void {
    const want = work < 1 << 20 ? 1 : this.threads;
    if (want !== openblasThreads && this.l.setThreads) {
      this.l.setThreads(want);
      openblasThreads = want;
    }
  }

  /** Row-major C = op(A) op(B): column-major C^T = op(B)^T op(A)^T, so swap operands. */
  private gemmRaw32(a: Float32Array, aRows: number, aCols: number, b: Float32Array, bRows: number, bCols: number, transA: boolean, transB: boolean): Matrix {
    const m = transA ? aCols : aRows, k = transA ? aRows : aCols;
    const k2 = transB ? bCols : bRows, n = transB ? bRows : bCols;
    if (k !== k2) throw new RangeError(`gemm: inner dimensions differ (${k} vs ${k2})`);
    checkSize(m * n, 'gemm');
    const c = new Float32Array(m * n);
    if (m === 0 || n === 0 || k === 0) return { rows: m, cols: n, data: c };
    this.threadsFor(m * n * k);
    this.l.sgemm(transB ? 'T' : 'N', transA ? 'T' : 'N', int(n), int(m), int(k), one32, b, int(Math.max(1, bCols)), a, int(Math.max(1, aCols)), zero32, c, int(n), 1, 1);
    return { rows: m, cols: n, data: c };
  }

  gemm64Sync(a: Matrix64, b: Matrix64, transA: boolean, transB: boolean): Matrix64 {
    const m = transA ? a.cols : a.rows, k = transA ? a.rows : a.cols;
    const k2 = transB ? b.cols : b.rows, n = transB ? b.rows : b.cols;
    if (k !== k2) throw new RangeError(`gemm64: inner dimensions differ (${k} vs ${k2})`);
    const c = new Float64Array(m * n);
    if (m === 0 || n === 0 || k === 0) return { rows: m, cols: n, data: c };
    this.threadsFor(m * n * k);
    this.l.dgemm(transB ? 'T' : 'N', transA ? 'T' : 'N', int(n), int(m), int(k), one64, b.data, int(Math.max(1, b.cols)), a.data, int(Math.max(1, a.cols)), new Float64Array([0]), c, int(n), 1, 1);
    return { rows: m, cols: n, data: c };
  }

  async gemm(a: Matrix, b: Matrix, opts: LinalgOptions & { transA?: boolean; transB?: boolean } = {}): Promise<Matrix> {
    throwIfAborted(opts.signal);
    return this.gemmRaw32(a.data, a.rows, a.cols, b.data, b.rows, b.cols, opts.transA === true, opts.transB === true);
  }

  /**
   * G = A A^T (rows <= cols) or A^T A, accumulated in float64 by dsyrk over chunks of A converted
   * to float64 (at most ~8M elements at a time, so a 4096 x 14336 matrix never needs a 470 MB copy).
   * Products of float32 numbers are exact in float64; only the sums round (relative 1e-16).
   */
  async gram(a: Matrix, opts: LinalgOptions = {}): Promise<Matrix64> {
    const { rows: m, cols: n } = a;
    const small = Math.min(m, n);
    const g = new Float64Array(small * small);
    const chunkElems = 1 << 23;
    this.threadsFor(small * small * Math.max(m, n));
    if (m <= n) {
      // Column chunk j0..j1 of A, copied row-major (m x cb) = column-major X (cb x m); G += X^T X.
      const cb = Math.max(1, Math.min(n, Math.floor(chunkElems / Math.max(1, m))));
      const buf = new Float64Array(m * cb);
      for (let j0 = 0; j0 < n; j0 += cb) {
        throwIfAborted(opts.signal);
        const w = Math.min(cb, n - j0);
        for (let i = 0; i < m; i++) {
          const src = i * n + j0, dst = i * w;
          for (let j = 0; j < w; j++) buf[dst + j] = a.data[src + j]!;
        }
        this.l.dsyrk('U', 'T', int(m), int(w), one64, buf, int(Math.max(1, w)), one64, g, int(Math.max(1, m)), 1, 1);
      }
    } else {
      // Row chunk i0..i1 (rb x n row-major) = column-major X (n x rb); G += X X^T.
      const rb = Math.max(1, Math.min(m, Math.floor(chunkElems / Math.max(1, n))));
      for (let i0 = 0; i0 < m; i0 += rb) {
        throwIfAborted(opts.signal);
        const h = Math.min(rb, m - i0);
        const buf = Float64Array.from(a.data.subarray(i0 * n, (i0 + h) * n));
        this.l.dsyrk('U', 'N', int(n), int(h), one64, buf, int(Math.max(1, n)), one64, g, int(Math.max(1, n)), 1, 1);
      }
    }
    // dsyrk filled the upper triangle of the column-major G = the lower of row-major; mirror it.
    for (let i = 0; i < small; i++) for (let j = i + 1; j < small; j++) g[i * small + j] = g[j * small + i]!;
    return { rows: small, cols: small, data: g };
  }

  /** dsyevd (divide and conquer); values only of n >= 1536 through dsyevd_2stage (band reduction first) when exported. */
  async symEig(a: Matrix64, opts: LinalgOptions & { vectors?: boolean } = {}): Promise<SymEigResult> {
    throwIfAborted(opts.signal);
    const n = a.rows;
    if (a.cols !== n) throw new RangeError(`symEig: matrix is ${a.rows} x ${a.cols}, not square`);
    if (n === 0) return { values: new Float64Array(0), vectors: opts.vectors ? new Float64Array(0) : undefined };
    const vectors = opts.vectors === true;
    this.threadsFor(n * n * n);
    const work = Float64Array.from(a.data);
    const w = new Float64Array(n);
    const info = new Int32Array(1);
    // The two-stage reduction (full -> band by BLAS3, band -> tridiagonal by bulge chasing) pays off
    // for values only on large matrices; below ~1500 its extra pass costs more (measured here:
    // n = 768: 44 vs 33 ms; n = 2048: 0.9 vs 1.7 s, one thread).
    const routine = !vectors && n >= 1536 && this.l.dsyevd2stage ? this.l.dsyevd2stage : this.l.dsyevd;
    const name = routine === this.l.dsyevd ? 'dsyevd' : 'dsyevd_2stage';
    const jobz = vectors ? 'V' : 'N';
    const q = new Float64Array(1), qi = new Int32Array(1);
    routine(jobz, 'L', int(n), work, int(n), w, q, int(-1), qi, int(-1), info, 1, 1);
    checkInfo(`${name} workspace query`, info);
    const lwork = Math.max(1, Math.ceil(q[0]!)), liwork = Math.max(1, qi[0]!);
    routine(jobz, 'L', int(n), work, int(n), w, new Float64Array(lwork), int(lwork), new Int32Array(liwork), int(liwork), info, 1, 1);
    checkInfo(name, info);
    if (!vectors) return { values: w };
    // Column-major eigenvectors = row-major transpose: flip to row-major, column j = vector j.
    const out = new Float64Array(n * n);
    for (let j = 0; j < n; j++) for (let r = 0; r < n; r++) out[r * n + j] = work[j * n + r]!;
    return { values: w, vectors: out };
  }

  /**
   * 'auto' and 'gram': float64 Gram (dsyrk) + dsyevd(_2stage), s_i = sqrt(max(lambda_i, 0)).
   * The float64 Gram's eigenvalues carry absolute errors ~1e-16 s_max^2, so every s_i is within
   * ~1e-8 s_max: the 1e-5 (relative to s_max) contract always holds, hence 'auto' = 'gram'.
   * 'direct': sgesdd values only (relative accuracy ~1e-7 s_max, and small values keep theirs).
   */
  async singularValues(a: Matrix, opts: SingularValueOptions = {}): Promise<Float64Array> {
    throwIfAborted(opts.signal);
    const k = Math.min(a.rows, a.cols);
    if (k === 0) return new Float64Array(0);
    if (opts.method === 'direct') {
      this.threadsFor(a.rows * a.cols * k);
      const copy = Float32Array.from(a.data);
      const s = new Float32Array(k);
      const info = new Int32Array(1);
      const m = a.cols, n = a.rows; // column-major view A^T
      const dummy = new Float32Array(1);
      const q = new Float32Array(1);
      const iwork = new Int32Array(8 * k);
      this.l.sgesdd('N', int(m), int(n), copy, int(m), s, dummy, int(1), dummy, int(1), q, int(-1), iwork, info, 1);
      checkInfo('sgesdd workspace query', info);
      const lwork = Math.max(1, Math.ceil(q[0]! * 1.0001));
      this.l.sgesdd('N', int(m), int(n), copy, int(m), s, dummy, int(1), dummy, int(1), new Float32Array(lwork), int(lwork), iwork, info, 1);
      checkInfo('sgesdd', info);
      return Float64Array.from(s);
    }
    const g = await this.gram(a, opts);
    throwIfAborted(opts.signal);
    const { values } = await this.symEig(g, opts);
    return singularValuesFromGram(values);
  }

  /** Thin SVD by dgesdd (jobz = 'S') on a float64 copy. */
  async svd(a: Matrix, opts: LinalgOptions = {}): Promise<SvdResult> {
    throwIfAborted(opts.signal);
    const { rows, cols } = a;
    const k = Math.min(rows, cols);
    if (k === 0) return { U: { rows, cols: 0, data: new Float64Array(0) }, S: new Float64Array(0), Vt: { rows: 0, cols, data: new Float64Array(0) } };
    // Column-major X = A^T is cols x rows. X = U' S V'^T  =>  A = V' S U'^T.
    const m = cols, n = rows;
    this.threadsFor(m * n * k);
    const x = Float64Array.from(a.data);
    const s = new Float64Array(k);
    const uP = new Float64Array(m * k); // column-major m x k = row-major k x m = U'^T = Vt of A
    const vtP = new Float64Array(k * n); // column-major k x n = row-major n x k = V' = U of A
    const info = new Int32Array(1);
    const iwork = new Int32Array(8 * k);
    const q = new Float64Array(1);
    this.l.dgesdd('S', int(m), int(n), x, int(m), s, uP, int(m), vtP, int(k), q, int(-1), iwork, info, 1);
    checkInfo('dgesdd workspace query', info);
    const lwork = Math.max(1, Math.ceil(q[0]!));
    this.l.dgesdd('S', int(m), int(n), x, int(m), s, uP, int(m), vtP, int(k), new Float64Array(lwork), int(lwork), iwork, info, 1);
    checkInfo('dgesdd', info);
    return { U: { rows, cols: k, data: vtP }, S: s, Vt: { rows: k, cols, data: uP } };
  }

  /** Q of Householder QR (dgeqrf + dorgqr). */
  orthonormalizeSync(y: Matrix64): Matrix64 {
    const m = y.rows, l = y.cols;
    if (l === 0) return y;
    if (m < l) throw new RangeError(`orthonormalize: needs rows >= cols, got ${m} x ${l}`);
    this.threadsFor(m * l * l);
    const c = new Float64Array(m * l);
    for (let i = 0; i < m; i++) for (let j = 0; j < l; j++) c[j * m + i] = y.data[i * l + j]!;
    const tau = new Float64Array(l);
    const info = new Int32Array(1);
    const q = new Float64Array(1);
    this.l.dgeqrf(int(m), int(l), c, int(m), tau, q, int(-1), info);
    checkInfo('dgeqrf workspace query', info);
    let lwork = Math.max(1, Math.ceil(q[0]!));
    this.l.dgeqrf(int(m), int(l), c, int(m), tau, new Float64Array(lwork), int(lwork), info);
    checkInfo('dgeqrf', info);
    this.l.dorgqr(int(m), int(l), int(l), c, int(m), tau, q, int(-1), info);
    checkInfo('dorgqr workspace query', info);
    lwork = Math.max(1, Math.ceil(q[0]!));
    this.l.dorgqr(int(m), int(l), int(l), c, int(m), tau, new Float64Array(lwork), int(lwork), info);
    checkInfo('dorgqr', info);
    const out = new Float64Array(m * l);
    for (let i = 0; i < m; i++) for (let j = 0; j < l; j++) out[i * l + j] = c[j * m + i]!;
    return { rows: m, cols: l, data: out };
  }

  private sketchOps(a: Matrix): SketchOps {
    const to32 = (x: Matrix64): Float32Array => Float32Array.from(x.data);
    const to64 = (x: Matrix): Matrix64 => ({ rows: x.rows, cols: x.cols, data: Float64Array.from(x.data) });
    return {
      rows: a.rows,
      cols: a.cols,
      mulA: async (x) => to64(this.gemmRaw32(a.data, a.rows, a.cols, to32(x), x.rows, x.cols, false, false)),
      // A^T Y as (Y^T A)^T: OpenBLAS's sgemm is much faster with the skinny operand on the left in this
      // layout (4096 x 14336, 32 columns: 39 ms against 59 ms), and the two transposes of the thin
      // panels cost ~1 ms.
      mulAt: async (y) => {
        const c = y.cols, m = y.rows;
        const yt = new Float32Array(c * m);
        for (let i = 0; i < m; i++) for (let j = 0; j < c; j++) yt[j * m + i] = y.data[i * c + j]!;
        const r = this.gemmRaw32(yt, c, m, a.data, a.rows, a.cols, false, false); // c x cols
        const n = r.cols, out = new Float64Array(n * c);
        for (let j = 0; j < c; j++) for (let i = 0; i < n; i++) out[i * c + j] = r.data[j * n + i]!;
        return { rows: n, cols: c, data: out };
      },
      gemm64: async (x, y, tx, ty) => this.gemm64Sync(x, y, tx, ty),
      // LAPACK's blocked Householder QR: one pass, unconditionally stable (measured faster here than
      // CholeskyQR's seven dgemm calls on 4096 x 74 panels).
      orthonormalize: async (y) => this.orthonormalizeSync(y),
    };
  }

  randomizedSvd(a: Matrix, k: number, opts: RandomizedSvdOptions = {}): Promise<SvdResult> {
    return randomizedSvdWith(this.sketchOps(a), k, opts);
  }

  lanczosSvd(a: Matrix, k: number, opts: LanczosOptions = {}): Promise<SvdResult> {
    return lanczosSvdWith(this.sketchOps(a), k, opts);
  }

  async dispose(): Promise<void> {
    // The library stays loaded for the process (koffi cannot safely unload while other backends use it).
  }
}

/** Creates the native backend or throws an Error naming every library that was tried. */
export function createNativeBackend(opts: NativeOptions = {}): NativeBackend {
  const probe = probeNative(opts.libraryPath);
  if (!probe.lapack) throw new Error(`Native LAPACK unavailable: ${probe.detail}`);
  return new NativeBackend(probe.lapack, opts.threads);
}
