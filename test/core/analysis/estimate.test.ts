// Estimate mode (stochastic Lanczos quadrature) against exact answers: the fixture tensors' reference
// entropies, and generated 1024 x 1024 matrices W = U diag(s) V^T with known spectra.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from '../../../src/core/checkpoint';
import { getLinalgBackend } from '../../../src/core/linalg';
import type { LinalgBackend, Matrix } from '../../../src/core/linalg/types';
import { estimateSpectrum, tQuantile975 } from '../../../src/core/analysis/estimate';
import { analyzeTensor } from '../../../src/core/analysis/analyze';
import { vonNeumannEntropy, renyi2Entropy } from '../../../src/core/analysis/spectrum';
import { Random } from '../../../src/core/analysis/random';

const SHARED = join(__dirname, '..', '..', '..', '..', 'shared');

test('Student t quantiles match the table (df 3, 10, 30)', () => {
  for (const [df, t] of [[3, 3.182], [10, 2.228], [30, 2.042]] as const) assert.ok(Math.abs(tQuantile975(df) - t) < 0.01 * t, `df ${df}: ${tQuantile975(df)}`);
});

for (const [model, file] of [['pico', 'fixtures/pico/pico.safetensors'], ['stories260k', 'fixtures/stories260k/stories260K.safetensors']]) {
  test(`estimate mode is within 2% of the reference entropy for every tensor of ${file}`, async () => {
    const backend = await getLinalgBackend('auto');
    const ckpt = await open(join(SHARED, file));
    try {
      const refs = JSON.parse(readFileSync(join(SHARED, 'reference', `${model}.spectra.json`), 'utf8')).tensors;
      for (const r of refs) {
        const e = ckpt.get(r.name)!;
        const res = await analyzeTensor(backend, e, await e.read(), { mode: 'estimate' });
        assert.equal(res.mode, 'estimate');
        const err = Math.abs(res.vonNeumannEntropy / r.vonNeumannEntropy - 1);
        assert.ok(err < 0.02, `${r.name}: estimated S ${res.vonNeumannEntropy} vs ${r.vonNeumannEntropy} (${(err * 100).toFixed(2)}%)`);
        assert.ok(Math.abs(res.renyi2Entropy / r.renyi2Entropy - 1) < 0.02, `${r.name} Renyi-2`);
        assert.ok(Math.abs(res.frobeniusNorm / r.frobeniusNorm - 1) < 1e-6, 'Frobenius norm is exact');
        assert.ok(Math.abs(res.spectralNorm / r.spectralNorm - 1) < 1e-4, 'top singular value from randomized SVD');
        const [lo, hi] = res.confidence!.vonNeumannEntropy;
        assert.ok(lo <= res.vonNeumannEntropy && res.vonNeumannEntropy <= hi);
      }
    } finally {
      await ckpt.close();
      await backend.dispose();
    }
  });
}

/** W = U diag(s) V^T with U, V the singular vectors of a Gaussian matrix (Haar-distributed orthogonal factors). */
async function withSpectrum(backend: LinalgBackend, n: number, s: number[], factors: { U: Float64Array; Vt: Float64Array }): Promise<Matrix> {
  const US = new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) US[i * n + j] = factors.U[i * n + j] * s[j];
  return backend.gemm({ rows: n, cols: n, data: US }, { rows: n, cols: n, data: Float32Array.from(factors.Vt) });
}

test('1024 x 1024 matrices with known spectra: entropy and Renyi-2 within 2%, the truth inside a tight interval', async () => {
  const backend = await getLinalgBackend('auto');
  const n = 1024;
  const rng = new Random(11);
  const G = new Float32Array(n * n);
  for (let i = 0; i < G.length; i++) G[i] = rng.gaussian();
  const { U, Vt } = await backend.svd({ rows: n, cols: n, data: G });
  const spectra: Record<string, number[]> = {
    'power-law s_i = i^-0.8': Array.from({ length: n }, (_, i) => (i + 1) ** -0.8),
    'exponential s_i = exp(-i/60)': Array.from({ length: n }, (_, i) => Math.exp(-i / 60)),
    'flat bulk with 5 outliers': Array.from({ length: n }, (_, i) => (i < 5 ? 20 - 3 * i : 1 + 0.1 * rng.uniform())).sort((a, b) => b - a),
  };
  for (const [name, s] of Object.entries(spectra)) {
    const W = await withSpectrum(backend, n, s, { U: U.data, Vt: Vt.data });
    const e = await estimateSpectrum(backend, W, { seed: 5 });
    const S = vonNeumannEntropy(s), S2 = renyi2Entropy(s);
    const err = Math.abs(e.vonNeumannEntropy.estimate / S - 1);
    assert.ok(err < 0.02, `${name}: S ${e.vonNeumannEntropy.estimate} vs ${S}`);
    assert.ok(Math.abs(e.renyi2Entropy.estimate / S2 - 1) < 0.02, `${name}: S2 ${e.renyi2Entropy.estimate} vs ${S2}`);
    // The 95% interval is informative (under 2% half-width) and contains the truth up to the quadrature bias.
    const half = (e.vonNeumannEntropy.high - e.vonNeumannEntropy.low) / 2;
    assert.ok(half < 0.02 * S, `${name}: interval half-width ${half}`);
    assert.ok(Math.abs(e.vonNeumannEntropy.estimate - S) < 2 * half + 0.002 * S, `${name}: truth ${S} outside ${e.vonNeumannEntropy.low}..${e.vonNeumannEntropy.high}`);
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(e.topSingularValues[i] / s[i] - 1) < 1e-3, `${name}: s_${i + 1}`);
    assert.ok(Math.abs(e.frobeniusSquared / s.reduce((a, x) => a + x * x, 0) - 1) < 1e-5);
    if (name.startsWith('flat')) {
      // The bulk median is well resolved for a flat bulk: s^2 ~ (1.05)^2.
      assert.ok(Math.abs(Math.sqrt(e.eigenvalueMedian) / 1.05 - 1) < 0.05, `median ${Math.sqrt(e.eigenvalueMedian)}`);
    }
  }
  await backend.dispose();
});

test('estimate mode honours its AbortSignal between Lanczos steps', async () => {
  const backend = await getLinalgBackend('auto');
  const ac = new AbortController();
  ac.abort();
  const W = { rows: 64, cols: 64, data: new Float32Array(64 * 64).fill(1) };
  await assert.rejects(estimateSpectrum(backend, W, { signal: ac.signal }), { name: 'CancelledError' });
  await backend.dispose();
});

test('the portable backend (onnxruntime products) gives the same estimates within 2%', async () => {
  const backend = await getLinalgBackend('portable');
  const ckpt = await open(join(SHARED, 'fixtures/pico/pico.safetensors'));
  try {
    const refs: Array<{ name: string; vonNeumannEntropy: number; renyi2Entropy: number }> = JSON.parse(readFileSync(join(SHARED, 'reference', 'pico.spectra.json'), 'utf8')).tensors;
    for (const name of ['h.0.attn.c_attn.weight', 'h.3.mlp.c_proj.weight', 'wte.weight']) {
      const r = refs.find((x) => x.name === name)!;
      const e = ckpt.get(name)!;
      const res = await analyzeTensor(backend, e, await e.read(), { mode: 'estimate' });
      assert.equal(res.backend, 'portable');
      assert.ok(Math.abs(res.vonNeumannEntropy / r.vonNeumannEntropy - 1) < 0.02, `${name}: ${res.vonNeumannEntropy} vs ${r.vonNeumannEntropy}`);
      assert.ok(Math.abs(res.renyi2Entropy / r.renyi2Entropy - 1) < 0.02, `${name} Renyi-2`);
    }
  } finally {
    await ckpt.close();
    await backend.dispose();
  }
});
