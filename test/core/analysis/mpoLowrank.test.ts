import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFile } from 'node:fs/promises';
import { getLinalgBackend } from '../../../src/core/linalg';
import { open } from '../../../src/core/checkpoint';
import { lowRankFactors, lowRankParams, lowRankRelativeError, rankForRelativeError, lowRankAtParamBudget } from '../../../src/core/analysis/lowrank';
import { relativeFrobeniusError } from '../../../src/core/analysis/mpoTensor';
import { gaussianArray } from '../../../src/core/analysis/mpoRandom';

const SHARED = path.resolve(__dirname, '../../../../shared');

/** C = A B for small row-major matrices (test-side reference product). */
function matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) { const x = a[i * k + p]; for (let j = 0; j < n; j++) c[i * n + j] += x * b[p * n + j]; }
  return c;
}

test('low-rank SVD factors of a trained PicoGPT matrix: k (m + n) parameters, Eckart-Young error against the LAPACK reference', async () => {
  const be = await getLinalgBackend();
  const ref = JSON.parse(await readFile(path.join(SHARED, 'reference/pico.spectra.json'), 'utf8')).tensors
    .find((t: { name: string }) => t.name === 'h.0.mlp.c_fc.weight') as { singularValues: number[]; shape: number[] };
  const ckpt = await open(path.join(SHARED, 'fixtures/pico/pico.safetensors'));
  try {
    const t = ckpt.get('h.0.mlp.c_fc.weight')!;
    const [m, n] = t.shape;
    const w = await t.read();
    for (const k of [1, 10, 64]) {
      const f = await lowRankFactors({ rows: m, cols: n, data: w }, k, be);
      assert.equal(f.params, k * (m + n));
      assert.equal(f.params, lowRankParams(m, n, k));
      assert.deepEqual([f.A.rows, f.A.cols, f.B.rows, f.B.cols], [m, k, k, n]);
      const measured = relativeFrobeniusError(w, matmul(f.A.data, f.B.data, m, k, n));
      const expected = lowRankRelativeError(ref.singularValues, k);
      assert.ok(Math.abs(measured - expected) < 1e-5, `k=${k}: measured ${measured} vs reference ${expected}`);
      assert.ok(Math.abs(f.relativeError - expected) < 1e-5);
      // A = U_k sqrt(S_k), B = sqrt(S_k) V_k^T  =>  A^T A = S_k = B B^T (orthonormal U, V).
      const ata = matmul(Float32Array.from({ length: k * m }, (_, idx) => f.A.data[(idx % m) * k + Math.floor(idx / m)]), f.A.data, k, m, k);
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) {
          const target = i === j ? ref.singularValues[i] : 0;
          assert.ok(Math.abs(ata[i * k + j] - target) < 1e-4 * ref.singularValues[0], `A^T A[${i},${j}] = ${ata[i * k + j]} vs ${target}`);
        }
        let bb = 0;
        for (let c = 0; c < n; c++) bb += f.B.data[i * n + c] ** 2;
        assert.ok(Math.abs(bb - ref.singularValues[i]) < 1e-4 * ref.singularValues[0]);
      }
    }
  } finally {
    await ckpt.close();
  }
});

test('rank for an error target and the rank at a parameter budget', () => {
  const s = [10, 5, 3, 1, 0.5, 0.1];
  for (const eps of [0.5, 0.2, 0.05, 0.01, 0]) {
    const k = rankForRelativeError(s, eps);
    assert.ok(lowRankRelativeError(s, k) <= eps + 1e-15, `eps ${eps}`);
    if (k > 0) assert.ok(lowRankRelativeError(s, k - 1) > eps, `eps ${eps}: k = ${k} is not minimal`);
  }
  assert.equal(lowRankRelativeError(s, 0), 1);
  assert.equal(lowRankRelativeError(s, s.length), 0);
  // The MPO of a 128 x 128 matrix at chi = 8 has 2,560 parameters: a rank-10 SVD fits in that budget.
  const b = lowRankAtParamBudget(new Array(128).fill(1), 128, 128, 2560);
  assert.deepEqual([b.rank, b.params, b.denseParams], [10, 2560, 16384]);
  assert.ok(Math.abs(b.relativeError - Math.sqrt(118 / 128)) < 1e-15);
});

test('large low-rank factors take the randomized route and stay within 1% of the optimal error', async () => {
  const be = await getLinalgBackend();
  const m = 1024, n = 1024, k = 16;
  // Decaying spectrum: a rank-40 product with weights 1/j plus small noise.
  const g1 = gaussianArray(m * 40, 1), g2 = gaussianArray(40 * n, 2);
  for (let i = 0; i < m; i++) for (let j = 0; j < 40; j++) g1[i * 40 + j] /= j + 1;
  const w = (await be.gemm({ rows: m, cols: 40, data: g1 }, { rows: 40, cols: n, data: g2 })).data;
  const noise = gaussianArray(m * n, 3, 0.01);
  for (let i = 0; i < w.length; i++) w[i] += noise[i];
  const f = await lowRankFactors({ rows: m, cols: n, data: w }, k, be);
  assert.equal(f.singularValues.length, k, 'randomized route returns the top k only');
  const optimal = lowRankRelativeError(await be.singularValues({ rows: m, cols: n, data: w }, { method: 'direct' }), k);
  const measured = relativeFrobeniusError(w, (await be.gemm(f.A, f.B)).data);
  assert.ok(Math.abs(measured - f.relativeError) < 1e-4, `${measured} vs reported ${f.relativeError}`);
  assert.ok(measured <= optimal * 1.01, `randomized ${measured} vs optimal ${optimal}`);
  assert.ok(measured >= optimal * (1 - 1e-5), 'nothing beats Eckart-Young');
});
