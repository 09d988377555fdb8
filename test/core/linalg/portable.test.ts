/**
 * The portable backend's Gram matrix on its 2- and 3-block paths (small side 384..895, both
 * orientations: the tall one is transposed in tiles before the DGEMMs) against float64 dot
 * products, and singularValues on matrices with a known spectrum W = U diag(s) V^T.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GaussianRng } from '../../../src/core/linalg/dense';
import { PortableBackend } from '../../../src/core/linalg/portable';
import type { Matrix } from '../../../src/core/linalg/types';

function gaussian(m: number, n: number, seed: number): Matrix {
  return { rows: m, cols: n, data: new GaussianRng(seed).fill(new Float32Array(m * n)) };
}

/** A k x n matrix with orthonormal rows: the first k rows of H_1 H_2 H_3 (H_j = I - 2 u_j u_j^T, n x n). */
function orthonormalRows(k: number, n: number, seed: number): Float64Array {
  const rng = new GaussianRng(seed);
  const q = new Float64Array(k * n); // row i = e_i H_1 H_2 H_3
  for (let i = 0; i < k; i++) q[i * n + i] = 1;
  for (let h = 0; h < 3; h++) {
    const u = rng.fill(new Float64Array(n));
    let s = 0;
    for (const x of u) s += x * x;
    for (let j = 0; j < n; j++) u[j]! /= Math.sqrt(s);
    for (let i = 0; i < k; i++) {
      let d = 0;
      for (let j = 0; j < n; j++) d += q[i * n + j]! * u[j]!;
      for (let j = 0; j < n; j++) q[i * n + j]! -= 2 * d * u[j]!;
    }
  }
  return q;
}

test('portable gram on the 2- and 3-block paths matches float64 dot products (wide and tall)', async () => {
  const b = new PortableBackend({ threads: 2 });
  try {
    for (const [m, n] of [[400, 900], [900, 400], [700, 760], [760, 700]] as const) {
      const a = gaussian(m, n, m * 7 + n);
      const g = await b.gram(a);
      const small = Math.min(m, n), inner = Math.max(m, n);
      assert.equal(g.rows, small);
      const at = (i: number, p: number): number => (m <= n ? a.data[i * n + p]! : a.data[p * n + i]!);
      const rng = new GaussianRng(5);
      for (let t = 0; t < 300; t++) {
        const i = rng.nextUint32() % small, j = t < 20 ? i : rng.nextUint32() % small;
        let want = 0;
        for (let p = 0; p < inner; p++) want += at(i, p) * at(j, p);
        assert.ok(Math.abs(g.data[i * small + j]! - want) <= 1e-12 * inner, `${m} x ${n}: G[${i},${j}] = ${g.data[i * small + j]} vs ${want}`);
        assert.equal(g.data[i * small + j], g.data[j * small + i]);
      }
    }
  } finally {
    await b.dispose();
  }
});

test('portable singularValues: known spectra (graded over 5 decades, a zero block) within 1e-5 s_max, wide and tall', async () => {
  const b = new PortableBackend({ threads: 2 });
  try {
    const k = 200, n = 520;
    const s = Float64Array.from({ length: k }, (_, i) => (i >= k - 10 ? 0 : 10 ** (-5 * i / k)));
    const U = orthonormalRows(k, k, 1), V = orthonormalRows(k, n, 2);
    // W = U^T diag(s) V  (k x n): rows of U and V are orthonormal.
    const w = new Float32Array(k * n);
    for (let i = 0; i < k; i++) {
      for (let p = 0; p < k; p++) {
        const c = U[p * k + i]! * s[p]!;
        if (c === 0) continue;
        for (let j = 0; j < n; j++) w[i * n + j]! += c * V[p * n + j]!;
      }
    }
    const wt = new Float32Array(n * k);
    for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) wt[j * k + i] = w[i * n + j]!;
    for (const a of [{ rows: k, cols: n, data: w }, { rows: n, cols: k, data: wt }]) {
      const got = await b.singularValues(a);
      assert.equal(got.length, k);
      let err = 0;
      for (let i = 0; i < k; i++) err = Math.max(err, Math.abs(got[i]! - s[i]!));
      // float32 rounding of W moves singular values by ~1e-7; the Gram route adds ~1e-8.
      assert.ok(err < 1e-5 * s[0]!, `${a.rows} x ${a.cols}: max |s - exact| = ${err.toExponential(2)}`);
      for (let i = 1; i < k; i++) assert.ok(got[i]! <= got[i - 1]!, 'descending');
    }
  } finally {
    await b.dispose();
  }
});
