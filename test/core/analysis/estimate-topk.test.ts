// Estimate mode's top-k singular values (block Lanczos to topKTolerance) against exact values:
// generated 512 x 2048 matrices whose spectra have no gap at the top (where a randomized SVD with 2
// power iterations is measurably low), on both backends, and every 2-D tensor of the fixtures
// against the LAPACK reference in ../shared/reference.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { open } from '../../../src/core/checkpoint';
import { getLinalgBackend, orthonormalityError } from '../../../src/core/linalg';
import { probeNative } from '../../../src/core/linalg/native';
import type { LinalgBackend, Matrix } from '../../../src/core/linalg/types';
import type { LanczosOptions, LanczosSvdResult } from '../../../src/core/linalg/sketch';
import { estimateSpectrum } from '../../../src/core/analysis/estimate';
import { analyzeTensor } from '../../../src/core/analysis/analyze';
import { vonNeumannEntropy } from '../../../src/core/analysis/spectrum';
import { Random } from '../../../src/core/analysis/random';
import { randomHadamardOrthogonal } from '../../support/orthogonal';

const SHARED = join(__dirname, '..', '..', '..', '..', 'shared');
const TOL = 1e-4; // the default topKTolerance, relative to s_1


/** W = U diag(s) V^T (m x n, m <= n, s.length = m) with U m x m and V the first m columns of an n x n orthogonal matrix. */
async function withSpectrum(backend: LinalgBackend, m: number, n: number, s: number[], seed: number): Promise<Matrix> {
  const rng = new Random(seed);
  const U = randomHadamardOrthogonal(m, rng), V = randomHadamardOrthogonal(n, rng);
  const US = new Float32Array(m * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) US[i * m + j] = U[i * m + j] * s[j];
  const Vt = new Float32Array(m * n);
  for (let j = 0; j < m; j++) for (let c = 0; c < n; c++) Vt[j * n + c] = V[c * n + j];
  return backend.gemm({ rows: m, cols: m, data: US }, { rows: m, cols: n, data: Vt });
}

function gaussian(m: number, n: number, seed: number): Matrix {
  const rng = new Random(seed);
  const data = new Float32Array(m * n);
  for (let i = 0; i < data.length; i++) data[i] = rng.gaussian();
  return { rows: m, cols: n, data };
}

/** max_i |a_i - b_i| / b_0 over the first k. */
function topKError(a: ArrayLike<number>, b: ArrayLike<number>, k: number): number {
  let worst = 0;
  for (let i = 0; i < k; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst / b[0];
}

const native = (() => { const p = probeNative(); return { available: p.lapack !== undefined, detail: p.detail }; })();

interface Case { name: string; W: Matrix; exact: Float64Array | number[] }
let cases: Case[] | undefined;
/** The gapless test matrices, generated once (products on the portable backend, which is always there). */
async function gapless(): Promise<Case[]> {
  if (cases) return cases;
  const b = await getLinalgBackend('portable');
  try {
    const m = 512, n = 2048;
    const power = Array.from({ length: m }, (_, i) => 1 / Math.sqrt(i + 1));
    const G = gaussian(m, n, 21);
    // The Gaussian matrix's exact values: LAPACK's gesdd when native is there, else the portable
    // backend's direct SVD (both checked against the fixtures' LAPACK reference in test/core/linalg).
    const exact = native.available
      ? await (await getLinalgBackend('native')).singularValues(G, { method: 'direct' })
      : await b.singularValues(G, { method: 'direct' });
    cases = [
      { name: 'known spectrum s_i = 1/sqrt(i)', W: await withSpectrum(b, m, n, power, 7), exact: power },
      { name: 'Gaussian (Marchenko-Pastur, flat top)', W: G, exact },
    ];
    return cases;
  } finally {
    await b.dispose();
  }
}

for (const which of ['native', 'portable'] as const) {
  describe(`${which} backend: estimate-mode top-k on gapless 512 x 2048 spectra`, { skip: which === 'native' && !native.available ? `native LAPACK not available: ${native.detail}` : false }, () => {
    let backend: LinalgBackend | undefined;
    const get = async () => (backend ??= await getLinalgBackend(which));
    after(async () => { await backend?.dispose(); });

    test('randomized SVD with 2 power iterations is measurably low there (why estimate mode no longer uses it)', async () => {
      const b = await get();
      for (const c of await gapless()) {
        const r = await b.randomizedSvd(c.W, 32, { powerIterations: 2, oversample: 10, seed: 1, vectors: false });
        const err = topKError(r.S, c.exact, 32);
        assert.ok(err > 1e-3, `${c.name}: randomized q = 2 top-32 error ${err.toExponential(2)} (expected > 1e-3)`);
      }
    });

    test('every reported top-32 value is within 1e-4 s_1 of the exact one, below it (Ritz values rise from below), and inside the reported residual bound', async () => {
      const b = await get();
      for (const c of await gapless()) {
        const e = await estimateSpectrum(b, c.W, { seed: 3 });
        const k = e.topSingularValues.length;
        assert.equal(k, 32);
        const err = topKError(e.topSingularValues, c.exact, k);
        assert.ok(err < TOL, `${c.name}: top-${k} error ${err.toExponential(2)} / s_1`);
        assert.equal(e.topKConverged, true, `${c.name}: Lanczos did not converge`);
        assert.ok(e.topKErrorEstimate !== null && e.topKErrorEstimate <= TOL, `${c.name}: error estimate ${e.topKErrorEstimate}`);
        // The estimate is an estimate, but it should not be optimistic by more than the float32 floor.
        assert.ok(err <= (e.topKErrorEstimate ?? 0) + 1e-6, `${c.name}: actual ${err.toExponential(2)} > estimate ${e.topKErrorEstimate}`);
        const s1 = c.exact[0];
        for (let i = 0; i < k; i++) {
          const si = e.topSingularValues[i];
          assert.ok(si <= c.exact[i] + 1e-6 * s1, `${c.name}: s_${i + 1} = ${si} above the exact ${c.exact[i]}`);
          // Weyl: some exact singular value within topKResidual * s_1 (+ float32 rounding) of s_i.
          let nearest = Infinity;
          for (const x of c.exact) nearest = Math.min(nearest, Math.abs(x - si));
          assert.ok(nearest <= (e.topKResidual + 1e-6) * s1, `${c.name}: s_${i + 1} is ${nearest} from the spectrum, bound ${e.topKResidual * s1}`);
        }
        assert.ok(e.topKResidual > 0 && e.topKResidual < 0.05, `${c.name}: residual ${e.topKResidual}`);
        // The entropy estimate still holds (deflated by the Lanczos vectors).
        const S = vonNeumannEntropy(Array.from(c.exact));
        assert.ok(Math.abs(e.vonNeumannEntropy.estimate / S - 1) < 0.02, `${c.name}: S ${e.vonNeumannEntropy.estimate} vs ${S}`);
      }
    });

    test('Lanczos cut short (topKMaxIterations 2): reported as not converged, larger residual, entropy still within 2% (quadrature rows)', async () => {
      const b = await get();
      const c = (await gapless())[0]!;
      const full = await estimateSpectrum(b, c.W, { seed: 3 });
      const cut = await estimateSpectrum(b, c.W, { seed: 3, topKMaxIterations: 2 });
      assert.equal(cut.topKConverged, false);
      assert.ok(cut.topKResidual > full.topKResidual, `${cut.topKResidual} vs ${full.topKResidual}`);
      const S = vonNeumannEntropy(Array.from(c.exact));
      for (const e of [full, cut]) assert.ok(Math.abs(e.vonNeumannEntropy.estimate / S - 1) < 0.02, `S ${e.vonNeumannEntropy.estimate} vs ${S}`);
    });

    test('block Lanczos with a value tolerance: orthonormal triplets, W v_i = s_i u_i, tighter tolerance gives smaller errors', async () => {
      const b = await get();
      const c = (await gapless())[1]!; // the Gaussian: the harder one
      const errs: number[] = [];
      for (const valueTolerance of [1e-3, 1e-5]) {
        const opts: LanczosOptions = { valueTolerance, seed: 9 };
        const r = (await b.lanczosSvd(c.W, 16, opts)) as LanczosSvdResult;
        assert.equal(r.S.length, 16);
        assert.ok(r.converged);
        assert.equal(r.residuals.length, 16);
        errs.push(topKError(r.S, c.exact, 16));
        // Basis side (the 512 rows) orthonormal to float64 rounding, the other side after its CholeskyQR too.
        assert.ok(orthonormalityError(r.U) < 1e-10, `U: ${orthonormalityError(r.U)}`);
        assert.ok(orthonormalityError(r.Vt, false) < 1e-10, `Vt: ${orthonormalityError(r.Vt, false)}`);
        // ||W v_1 - s_1 u_1|| is bounded by the reported residual (up to float32 rounding of the product).
        const wv = await b.gemm(c.W, { rows: 1, cols: c.W.cols, data: Float32Array.from(r.Vt.data.subarray(0, c.W.cols)) }, { transB: true });
        let res = 0;
        for (let i = 0; i < c.W.rows; i++) res += (wv.data[i] - r.S[0] * r.U.data[i * r.U.cols]) ** 2;
        assert.ok(Math.sqrt(res) <= r.residuals[0] * Math.SQRT2 + 1e-5 * r.S[0], `triplet 1 residual ${Math.sqrt(res)} vs reported ${r.residuals[0]}`);
      }
      assert.ok(errs[0] < 1e-3 && errs[1] < 1e-5, `errors ${errs.map((x) => x.toExponential(2)).join(', ')}`);
      assert.ok(errs[1] < errs[0], 'a tighter tolerance must not give a worse answer');
    });
  });
}

for (const [model, file] of [['pico', 'fixtures/pico/pico.safetensors'], ['stories260k', 'fixtures/stories260k/stories260K.safetensors']]) {
  test(`estimate mode: the top-k singular values of every tensor of ${file} match the LAPACK reference to 1e-4 s_1`, async () => {
    const backend = await getLinalgBackend('auto');
    const ckpt = await open(join(SHARED, file));
    try {
      const refs: Array<{ name: string; singularValues: number[] }> = JSON.parse(readFileSync(join(SHARED, 'reference', `${model}.spectra.json`), 'utf8')).tensors;
      assert.ok(refs.length >= 10);
      for (const r of refs) {
        const e = ckpt.get(r.name)!;
        const res = await analyzeTensor(backend, e, await e.read(), { mode: 'estimate' });
        const top = res.topSingularValues!;
        assert.equal(top.length, Math.min(32, r.singularValues.length), r.name);
        const err = topKError(top, r.singularValues, top.length);
        assert.ok(err < TOL, `${r.name}: top-${top.length} error ${err.toExponential(2)} / s_1`);
      }
    } finally {
      await ckpt.close();
      await backend.dispose();
    }
  });
}
