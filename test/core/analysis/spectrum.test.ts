import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  matrixShape, spectrumMetrics, spectralProbabilities, vonNeumannEntropy, renyi2Entropy, stableRank,
  frobeniusNorm, spectralNorm, numericalRank, marchenkoPasturMedian, marchenkoPasturMass, marchenkoPasturFit,
  powerLawFit, truncationCurve, singularValueHistogram, normalizedEntropy, effectiveRank,
} from '../../../src/core/analysis/spectrum';
import { tridiagonalEigen } from '../../../src/core/analysis/tridiagonal';
import { Random } from '../../../src/core/analysis/random';

const REF = join(__dirname, '..', '..', '..', '..', 'shared', 'reference');
interface RefTensor { name: string; shape: number[]; singularValues: number[]; vonNeumannEntropy: number; renyi2Entropy: number; stableRank: number; frobeniusNorm: number; spectralNorm: number }
const references: Array<[string, RefTensor[]]> = ['pico', 'stories260k'].map((m) => [m, JSON.parse(readFileSync(join(REF, `${m}.spectra.json`), 'utf8')).tensors]);

function rel(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
}

for (const [model, tensors] of references) {
  test(`metrics match ../shared/reference/${model}.spectra.json to 1e-9 relative for every tensor`, () => {
    assert.ok(tensors.length > 10);
    for (const t of tensors) {
      const shape = matrixShape(t.shape)!;
      assert.equal(t.singularValues.length, Math.min(shape.rows, shape.cols));
      const m = spectrumMetrics(t.singularValues, shape);
      for (const key of ['vonNeumannEntropy', 'renyi2Entropy', 'stableRank', 'frobeniusNorm', 'spectralNorm'] as const) {
        assert.ok(rel(m[key], t[key]) < 1e-9, `${t.name} ${key}: ${m[key]} vs reference ${t[key]}`);
      }
      // Identities that tie the other metrics to the reference ones.
      assert.ok(rel(m.effectiveRank, Math.exp(t.vonNeumannEntropy)) < 1e-9);
      assert.ok(rel(m.normalizedEntropy!, t.vonNeumannEntropy / Math.log(Math.min(...t.shape))) < 1e-9);
      assert.ok(m.renyi2Entropy <= m.vonNeumannEntropy + 1e-12, 'Renyi-2 never exceeds von Neumann');
      assert.ok(m.numericalRank <= m.rank && m.numericalRank > 0);
      const p = spectralProbabilities(t.singularValues);
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12, 'sum p_i = 1');
    }
  });
}

test('matrixShape: 2-D as is, conv kernels flattened to [out, in*kh*kw], vectors skipped', () => {
  assert.deepEqual(matrixShape([384, 128]), { rows: 384, cols: 128 });
  assert.deepEqual(matrixShape([64, 3, 7, 7]), { rows: 64, cols: 147 });
  assert.equal(matrixShape([128]), undefined);
  assert.equal(matrixShape([]), undefined);
  assert.equal(matrixShape([0, 5]), undefined);
});

test('entropies of known spectra: flat spectrum has S = ln r, rank one has S = 0', () => {
  const flat = new Array(50).fill(2);
  assert.ok(Math.abs(vonNeumannEntropy(flat) - Math.log(50)) < 1e-12);
  assert.ok(Math.abs(renyi2Entropy(flat) - Math.log(50)) < 1e-12);
  assert.ok(Math.abs(normalizedEntropy(vonNeumannEntropy(flat), { rows: 50, cols: 80 })! - 1) < 1e-12);
  assert.ok(Math.abs(effectiveRank(vonNeumannEntropy(flat)) - 50) < 1e-9);
  assert.ok(Math.abs(stableRank(flat) - 50) < 1e-12);
  const one = [3, 0, 0, 0];
  assert.equal(vonNeumannEntropy(one), 0);
  assert.equal(stableRank(one), 1);
  assert.equal(frobeniusNorm([3, 4]), 5);
  assert.equal(spectralNorm([3, 1]), 3);
  // numerical rank: values below s_1 * max(m, n) * 2^-23 do not count.
  assert.equal(numericalRank([1, 0.5, 1e-3, 1e-6, 1e-9], { rows: 5, cols: 10 }), 3);
});

test('truncation curve: Eckart-Young error and k (m + n) parameters at every rank', () => {
  const s = [4, 3, 2, 1];
  const c = truncationCurve(s, { rows: 10, cols: 6 });
  assert.equal(c.errors.length, 5);
  assert.equal(c.errors[0], 1);
  assert.equal(c.errors[4], 0);
  assert.ok(Math.abs(c.errors[2] - Math.sqrt(5 / 30)) < 1e-15);
  assert.deepEqual(c.params, [0, 16, 32, 48, 64]);
  // With only the top two values and the exact total (estimate mode) the covered errors are unchanged.
  const partial = truncationCurve([4, 3], { rows: 10, cols: 6 }, 30);
  assert.ok(Math.abs(partial.errors[2] - c.errors[2]) < 1e-15);
  assert.ok(Math.abs(partial.errors[1] - c.errors[1]) < 1e-15);
});

test('histogram counts every singular value once', () => {
  const s = [5, 4, 4, 1, 0.5, 0];
  const h = singularValueHistogram(s, 5);
  assert.equal(h.counts.reduce((a, b) => a + b, 0), s.length);
  assert.equal(h.edges.length, 6);
  assert.equal(h.counts[4], 3); // 4, 4 and 5 are in the top bin [4, 5]
});

test('Marchenko-Pastur density integrates to 1 and its median matches scipy quadrature', () => {
  for (const q of [1, 0.5, 0.25, 0.01]) assert.ok(Math.abs(marchenkoPasturMass(q) - 1) < 1e-6, `mass at q=${q}`);
  // Medians from scipy: brentq on integrate.quad of the same density (computed by hand, 1e-12 accurate).
  const scipyMedians: Array<[number, number]> = [[1, 0.6527759416335757], [0.5, 0.8304658815832391], [0.25, 0.9160040706866612]];
  for (const [q, med] of scipyMedians) assert.ok(Math.abs(marchenkoPasturMedian(q) - med) < 1e-6, `median at q=${q}: ${marchenkoPasturMedian(q)}`);
  // Limit q -> 0: MP concentrates at 1 with width 4 sqrt(q); the median tends to 1.
  assert.ok(Math.abs(marchenkoPasturMedian(1e-4) - 1) < 0.03);
});

/** Singular values of a dense matrix through the Jacobi eigenvalues of its Gram (a test-only check, small sizes). */
function gramEigenvalues(W: Float64Array, rows: number, cols: number): Float64Array {
  const n = Math.min(rows, cols);
  const G = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let acc = 0;
    if (cols <= rows) for (let k = 0; k < rows; k++) acc += W[k * cols + i] * W[k * cols + j];
    else for (let k = 0; k < cols; k++) acc += W[i * cols + k] * W[j * cols + k];
    G[i * n + j] = acc;
  }
  // Cyclic Jacobi rotations until the off-diagonal mass vanishes.
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += G[i * n + j] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) {
      const apq = G[p * n + q];
      if (Math.abs(apq) < 1e-300) continue;
      const theta = (G[q * n + q] - G[p * n + p]) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let k = 0; k < n; k++) {
        const gkp = G[k * n + p], gkq = G[k * n + q];
        G[k * n + p] = c * gkp - s * gkq; G[k * n + q] = s * gkp + c * gkq;
      }
      for (let k = 0; k < n; k++) {
        const gpk = G[p * n + k], gqk = G[q * n + k];
        G[p * n + k] = c * gpk - s * gqk; G[q * n + k] = s * gpk + c * gqk;
      }
    }
  }
  const ev = new Float64Array(n);
  for (let i = 0; i < n; i++) ev[i] = Math.max(0, G[i * n + i]);
  return ev.sort().reverse();
}

test('Marchenko-Pastur fit recovers sigma of a Gaussian matrix and counts a planted spike as the one outlier', () => {
  const rows = 240, cols = 80, sigma = 0.05;
  const rng = new Random(7);
  const W = new Float64Array(rows * cols);
  for (let i = 0; i < W.length; i++) W[i] = sigma * rng.gaussian();
  const s = Array.from(gramEigenvalues(W, rows, cols), Math.sqrt);
  const fit = marchenkoPasturFit(s, { rows, cols });
  assert.ok(Math.abs(fit.sigma / sigma - 1) < 0.05, `sigma ${fit.sigma}`);
  assert.ok(Math.abs(s[0] / fit.edge - 1) < 0.08, `edge ${fit.edge} vs s_1 ${s[0]}`);
  // Plant a rank-one spike of norm 3 x the edge: exactly one singular value leaves the bulk.
  const u = Array.from({ length: rows }, () => rng.gaussian()), v = Array.from({ length: cols }, () => rng.gaussian());
  const nu = Math.hypot(...u), nv = Math.hypot(...v);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) W[i * cols + j] += 3 * fit.edge * (u[i] / nu) * (v[j] / nv);
  const s2 = Array.from(gramEigenvalues(W, rows, cols), Math.sqrt);
  const fit2 = marchenkoPasturFit(s2, { rows, cols });
  assert.equal(fit2.outliers, 1);
  assert.ok(Math.abs(fit2.sigma / sigma - 1) < 0.06, 'the median estimator ignores the spike');
});

test('power-law fit recovers alpha of Pareto samples (MLE with KS-chosen xmin)', () => {
  const rng = new Random(3);
  for (const alpha of [2, 3.5]) {
    // Body: uniform on [0.1, 1); tail: Pareto(alpha) above xmin = 1 via inverse CDF x = u^(-1/(alpha-1)).
    const xs: number[] = [];
    for (let i = 0; i < 1000; i++) xs.push(0.1 + 0.9 * rng.uniform());
    for (let i = 0; i < 2000; i++) xs.push(rng.uniform() ** (-1 / (alpha - 1)));
    const fit = powerLawFit(xs)!;
    assert.ok(Math.abs(fit.alpha - alpha) < 4 * fit.alphaError + 0.05, `alpha ${fit.alpha} vs ${alpha}`);
    assert.ok(fit.xmin > 0.5 && fit.xmin < 2, `xmin ${fit.xmin}`);
    assert.ok(fit.ks < 0.05);
  }
  assert.equal(powerLawFit([1, 2, 3]), null);
});

test('tridiagonal eigen: the [-1, 2, -1] matrix has lambda_k = 2 - 2 cos(k pi/(n+1)) and known first components', () => {
  const n = 30;
  const { values, firstComponents } = tridiagonalEigen(new Array(n).fill(2), new Array(n - 1).fill(-1));
  for (let k = 1; k <= n; k++) {
    const theta = (k * Math.PI) / (n + 1);
    assert.ok(Math.abs(values[k - 1] - (2 - 2 * Math.cos(theta))) < 1e-12);
    assert.ok(Math.abs(Math.abs(firstComponents[k - 1]) - Math.sqrt(2 / (n + 1)) * Math.sin(theta)) < 1e-12);
  }
  assert.ok(Math.abs(firstComponents.reduce((a, z) => a + z * z, 0) - 1) < 1e-12, 'weights sum to 1');
});
