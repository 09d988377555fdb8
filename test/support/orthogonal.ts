/**
 * Random orthogonal matrices for building test matrices with a known spectrum, W = U diag(s) V^T,
 * in O(n^2 log n) instead of a QR of a Gaussian matrix: U = H D1 H D2 / n with H the (unnormalised)
 * Walsh-Hadamard matrix (H H^T = n I) and D1, D2 random sign diagonals. Every entry is +-1/n times a
 * sum of n signs, so of size ~1/sqrt(n): the singular vectors are spread over all coordinates, as a
 * trained weight's are. Used by the estimate tests and bench/estimate.bench.ts.
 */
import type { Random } from '../../src/core/analysis/random';

/** In place: x <- H x along the row index for every column (unnormalised fast Walsh-Hadamard transform). */
export function hadamardRows(M: Float64Array, n: number): void {
  for (let h = 1; h < n; h <<= 1) {
    for (let i = 0; i < n; i += 2 * h) {
      for (let r = i; r < i + h; r++) {
        const a = r * n, b = (r + h) * n;
        for (let j = 0; j < n; j++) {
          const x = M[a + j]!, y = M[b + j]!;
          M[a + j] = x + y;
          M[b + j] = x - y;
        }
      }
    }
  }
}

/** U = H D1 H D2 / n (n a power of 2), row-major n x n: orthogonal, entries ~ 1/sqrt(n). */
export function randomHadamardOrthogonal(n: number, rng: Random): Float64Array {
  if (n & (n - 1)) throw new RangeError(`randomHadamardOrthogonal: n = ${n} is not a power of 2`);
  const M = new Float64Array(n * n);
  for (let i = 0; i < n; i++) M[i * n + i] = rng.rademacher(); // D2
  hadamardRows(M, n);
  for (let i = 0; i < n; i++) { const d = rng.rademacher(); for (let j = 0; j < n; j++) M[i * n + j]! *= d; } // D1
  hadamardRows(M, n);
  for (let i = 0; i < M.length; i++) M[i]! /= n;
  return M;
}
