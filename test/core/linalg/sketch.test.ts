// The stopping rule of block Lanczos' value test (valueErrorEstimates) on synthetic Ritz-value
// histories with a known limit, and lanczosSvdWith's bookkeeping (iterations, convergence flag,
// exhausted Krylov space) on a small matrix with a known spectrum.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getLinalgBackend, GaussianRng, householderQR, matmul, orthonormalityError } from '../../../src/core/linalg/index';
import { topEigenpairs, valueErrorEstimates, type LanczosOptions, type LanczosSvdResult } from '../../../src/core/linalg/sketch';
import type { Matrix } from '../../../src/core/linalg/types';
import { withSpectrum, maxRelDiff } from './fixtures';

/** Ritz values converging geometrically to sigma from below: theta^(j) = sigma - c rho^j. */
function geometric(sigma: number, c: number, rho: number, steps: number): Float64Array[] {
  return Array.from({ length: steps }, (_, j) => Float64Array.of(sigma - c * rho ** j));
}

test('valueErrorEstimates: bounds the remaining error of geometric and superlinear convergence, Infinity when it cannot tell', () => {
  // Geometric, rho = 0.5 and 0.8: the tail estimate d rho / (1 - rho) is exact; never below the true error.
  for (const rho of [0.5, 0.8]) {
    const h = geometric(10, 1, rho, 6);
    const est = valueErrorEstimates(h, 1)[0]!;
    const actual = 10 - h[5]![0]!;
    assert.ok(est >= actual * (1 - 1e-9), `rho ${rho}: estimate ${est} < actual ${actual}`);
    assert.ok(est <= actual * 1.0001, `rho ${rho}: estimate ${est} far above actual ${actual}`);
  }
  // Superlinear (rho shrinking 0.5, 0.25, 0.125, ...): the estimate stays above the true error.
  const errs = [1, 0.5, 0.125, 0.015625, 0.001953125 / 4];
  const h = errs.map((e) => Float64Array.of(3 - e));
  const est = valueErrorEstimates(h, 1)[0]!;
  assert.ok(est >= errs[errs.length - 1]!, `superlinear: ${est}`);
  // Fewer than three snapshots, or increments that do not shrink: no claim.
  assert.equal(valueErrorEstimates(geometric(1, 1, 0.5, 2), 1)[0], Infinity);
  const growing = [0, 0.1, 0.3].map((x) => Float64Array.of(x));
  assert.equal(valueErrorEstimates(growing, 1)[0], Infinity);
  // A value that stopped moving: its (zero) increment.
  const still = [Float64Array.of(1), Float64Array.of(2), Float64Array.of(2)];
  assert.equal(valueErrorEstimates(still, 1)[0], 0);
  // Missing entries (history shorter than k) stay Infinity.
  assert.equal(valueErrorEstimates([Float64Array.of(1), Float64Array.of(1.5), Float64Array.of(1.6)], 2)[1], Infinity);
});

test('lanczosSvdWith: value test stops early on a fast-decaying spectrum; otherSide: false; an exhausted Krylov space is exact with zero residuals', async () => {
  const b = await getLinalgBackend('portable');
  // The backend's lanczosSvd passes LanczosOptions through to lanczosSvdWith and returns its result.
  const lanczos = (a: Matrix, k: number, o: LanczosOptions) => b.lanczosSvd(a, k, o) as Promise<LanczosSvdResult>;
  try {
    const fast = Array.from({ length: 60 }, (_, i) => 5 * Math.exp(-i / 4));
    const a = withSpectrum(240, 60, fast, 4);
    const r = await lanczos(a, 8, { valueTolerance: 1e-6, blockSize: 8 });
    assert.ok(r.converged);
    assert.ok(r.iterations < 60 / 8, `iterations ${r.iterations}`);
    assert.ok(maxRelDiff(r.S, fast.slice(0, 8), fast[0]!) < 1e-5);
    for (let i = 0; i < 8; i++) assert.ok(r.errorEstimates[i]! <= 1e-6 * r.S[0]!);
    // otherSide: false returns only the smaller side's vectors (here V: 60 < 240), same values.
    const half = await lanczos(a, 8, { valueTolerance: 1e-6, blockSize: 8, otherSide: false });
    assert.equal(half.U.cols, 0);
    assert.equal(half.Vt.rows, 8);
    assert.ok(maxRelDiff(half.S, r.S, r.S[0]!) < 1e-12);
    assert.ok(maxRelDiff(half.Vt.data, r.Vt.data, 1) < 1e-10);
    // blockSize 20 x 3 blocks = 60 = min(m, n): the whole space, so exact and no residual.
    const full = await lanczos(a, 8, { valueTolerance: 0, blockSize: 20 });
    assert.ok(full.converged);
    assert.equal(full.iterations, 3);
    assert.ok(maxRelDiff(full.S, fast.slice(0, 8), fast[0]!) < 1e-6);
    assert.ok(full.residuals.every((x) => x === 0) && full.errorEstimates.every((x) => x === 0));
    // maxIterations cuts it short: not converged, said so.
    const cut = await lanczos(a, 8, { valueTolerance: 1e-12, blockSize: 8, maxIterations: 2 });
    assert.equal(cut.converged, false);
    assert.equal(cut.iterations, 2);
  } finally {
    await b.dispose();
  }
});

test('topEigenpairs: the leading eigenpairs of a symmetric matrix with a cluster and a repeated eigenvalue (H x = lambda x, X^T X = I)', async () => {
  const n = 120, count = 20;
  // H = Q diag(lambda) Q^T with Q from a QR of a Gaussian matrix: top values 10, 10 (repeated), a
  // cluster 9 + 1e-9 j, then a decaying tail.
  const lambda = Array.from({ length: n }, (_, i) => (i < 2 ? 10 : i < 8 ? 9 + 1e-9 * i : 8 * Math.exp(-i / 15)));
  const q = householderQR({ rows: n, cols: n, data: new GaussianRng(3).fill(new Float64Array(n * n)) }).q;
  const h = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let acc = 0;
    for (let p = 0; p < n; p++) acc += q.data[i * n + p]! * lambda[p]! * q.data[j * n + p]!;
    h[i * n + j] = acc;
  }
  const sorted = [...lambda].sort((a, b) => b - a);
  const { values, vectors } = await topEigenpairs(h, n, count);
  assert.ok(maxRelDiff(values, sorted, 10) < 1e-13);
  assert.ok(orthonormalityError(vectors) < 1e-12, `orthonormality ${orthonormalityError(vectors)}`);
  const hx = matmul({ rows: n, cols: n, data: h }, vectors);
  let worst = 0;
  for (let i = 0; i < n; i++) for (let c = 0; c < count; c++) worst = Math.max(worst, Math.abs(hx.data[i * count + c]! - values[c]! * vectors.data[i * count + c]!));
  assert.ok(worst < 1e-12 * 10, `residual ${worst}`);
});
