/**
 * Eigenvalues of a symmetric tridiagonal matrix and the first component of each eigenvector — the
 * nodes and weights of the Gauss quadrature that a Lanczos run defines (Golub & Welsch 1969): for a
 * Lanczos tridiagonal T_s built from a unit start vector v, v^T f(A) v ~= sum_j tau_j^2 f(theta_j)
 * where theta_j are the eigenvalues of T_s and tau_j the first entries of its unit eigenvectors.
 *
 * Implicit QL with Wilkinson-type shifts (the classical tql2 scheme). Only the first row of the
 * accumulated rotation matrix is kept, since the quadrature needs nothing else: O(s^2) work.
 */
export interface TridiagonalEigen {
  /** Eigenvalues, ascending. */
  values: Float64Array;
  /** First component of the unit eigenvector belonging to values[j]. */
  firstComponents: Float64Array;
}

/**
 * @param diagonal alpha_1..alpha_s
 * @param offDiagonal beta_1..beta_{s-1} (beta_i couples rows i-1 and i, 0-based)
 */
export function tridiagonalEigen(diagonal: ArrayLike<number>, offDiagonal: ArrayLike<number>): TridiagonalEigen {
  const n = diagonal.length;
  const d = Float64Array.from(diagonal);
  // e[i] couples d[i] and d[i+1]; e[n-1] is a zero sentinel.
  const e = new Float64Array(n);
  for (let i = 0; i < n - 1; i++) e[i] = offDiagonal[i];
  // z holds the first row of the accumulated orthogonal transformation (starts as e_1^T).
  const z = new Float64Array(n);
  if (n > 0) z[0] = 1;

  for (let l = 0; l < n; l++) {
    let iterations = 0;
    for (;;) {
      // Find the first negligible off-diagonal element at or below l: the block l..m is unreduced.
      let m = l;
      for (; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= Number.EPSILON * dd) break;
      }
      if (m === l) break;
      if (++iterations > 60) throw new Error(`tridiagonal eigensolver: no convergence at row ${l} after 60 QL sweeps`);
      // Wilkinson-type shift from the leading 2x2 block.
      let g = (d[l + 1] - d[l]) / (2 * e[l]);
      let r = Math.hypot(g, 1);
      g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
      let s = 1;
      let c = 1;
      let p = 0;
      let i = m - 1;
      let deflatedEarly = false;
      for (; i >= l; i--) {
        const f = s * e[i];
        const b = c * e[i];
        r = Math.hypot(f, g);
        e[i + 1] = r;
        if (r === 0) {
          // Underflow: the rotation is the identity; the block splits here.
          d[i + 1] -= p;
          e[m] = 0;
          deflatedEarly = true;
          break;
        }
        s = f / r;
        c = g / r;
        g = d[i + 1] - p;
        r = (d[i] - g) * s + 2 * c * b;
        p = s * r;
        d[i + 1] = g + p;
        g = c * r - b;
        // Apply the Givens rotation to columns i, i+1 of the first row.
        const zi1 = z[i + 1];
        z[i + 1] = s * z[i] + c * zi1;
        z[i] = c * z[i] - s * zi1;
      }
      if (deflatedEarly) continue;
      d[l] -= p;
      e[l] = g;
      e[m] = 0;
    }
  }
  // Sort ascending, carrying the first components along.
  const order = Array.from({ length: n }, (_, k) => k).sort((a, b) => d[a] - d[b]);
  const values = new Float64Array(n);
  const firstComponents = new Float64Array(n);
  order.forEach((k, j) => { values[j] = d[k]; firstComponents[j] = z[k]; });
  return { values, firstComponents };
}
