import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getLinalgBackend } from '../../../src/core/linalg';
import { decomposeMpo, reconstructMpo } from '../../../src/core/analysis/mpo';
import { reconstructMpoChunked, lowRankProductInto } from '../../../src/core/surgery/reconstruct';
import { seededVector } from './surgeryTestUtil';

test('chunked MPO reconstruction equals reconstructMpo: 1-4 sites, explicit factors, zero padding', async () => {
  const backend = await getLinalgBackend();
  try {
    const cases: Array<{ rows: number; cols: number; opts: Record<string, unknown>; chi: number }> = [
      { rows: 64, cols: 96, opts: { sites: 2 }, chi: 5 },
      { rows: 64, cols: 96, opts: { sites: 3 }, chi: 7 },
      { rows: 128, cols: 256, opts: { sites: 4 }, chi: 9 },
      { rows: 65, cols: 128, opts: { outFactors: [5, 13], inFactors: [8, 16] }, chi: 6 },
      { rows: 172, cols: 64, opts: { sites: 2, siteOptions: { strategy: 'pad' } }, chi: 8 },
      { rows: 30, cols: 20, opts: { sites: 1 }, chi: 3 },
    ];
    for (const c of cases) {
      const w = seededVector(c.rows * c.cols, c.rows + c.cols);
      const mpo = await decomposeMpo(w, c.rows, c.cols, { backend, truncation: { chi: c.chi }, spectra: 'sweep', ...c.opts });
      const a = await reconstructMpo(mpo, backend);
      const b = await reconstructMpoChunked(mpo, backend);
      let maxDiff = 0, maxAbs = 0;
      for (let i = 0; i < a.length; i++) { maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i])); maxAbs = Math.max(maxAbs, Math.abs(a[i])); }
      assert.equal(b.length, c.rows * c.cols);
      // Into a given array (the engine reuses the input's buffer): every element is written.
      const into = new Float32Array(c.rows * c.cols).fill(NaN);
      assert.equal(await reconstructMpoChunked(mpo, backend, undefined, into), into);
      assert.deepEqual(into, b);
      assert.ok(maxDiff <= 1e-5 * maxAbs, `${c.rows}x${c.cols} ${JSON.stringify(c.opts)}: max diff ${maxDiff} (padding ${JSON.stringify(mpo.plan.padding)})`);
    }
  } finally { await backend.dispose(); }
});

test('lowRankProductInto equals one product A B, written into the given array in row blocks', async () => {
  const backend = await getLinalgBackend();
  try {
    for (const [m, k, n] of [[7, 3, 5], [300, 16, 20000], [4, 0, 6]]) {
      const a = { rows: m, cols: k, data: seededVector(m * k, m) };
      const b = { rows: k, cols: n, data: seededVector(k * n, n) };
      const out = new Float32Array(m * n).fill(NaN);
      await lowRankProductInto(a, b, backend, out);
      const ref = k === 0 ? new Float32Array(m * n) : (await backend.gemm(a, b)).data;
      let maxDiff = 0;
      for (let i = 0; i < out.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out[i] - ref[i]));
      assert.ok(maxDiff <= 1e-5, `${m}x${k}x${n}: ${maxDiff}`);
    }
  } finally { await backend.dispose(); }
});
