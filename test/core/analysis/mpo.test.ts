import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { getLinalgBackend } from '../../../src/core/linalg';
import type { LinalgBackend } from '../../../src/core/linalg/types';
import {
  decomposeMpo, reconstructMpo, mpoReport, mpoParamCount, bondDimensionsForChi, spectrumEntropies, tailWeight, rankForBudget,
} from '../../../src/core/analysis/mpo';
import { balancedFactors, planSites, userSites, FactorisationError, primeFactors } from '../../../src/core/analysis/mpoFactors';
import { relativeFrobeniusError, sumSquares } from '../../../src/core/analysis/mpoTensor';
import { gaussianArray } from '../../../src/core/analysis/mpoRandom';
import { CancelledError } from '../../../src/core/checkpoint/errors';

let cached: Promise<LinalgBackend> | undefined;
// MPO_TEST_BACKEND=portable runs these tests on the onnxruntime + TypeScript backend instead of 'auto'.
const backend = () => (cached ??= getLinalgBackend((process.env.MPO_TEST_BACKEND as 'portable' | undefined) ?? 'auto'));

/**
 * The unfolding at bond k built independently of mpoTensor.ts: every W[r, c] is split into its digits
 * o_1..o_N (of r) and i_1..i_N (of c); the row of the unfolding is the mixed-radix number over
 * (o_1, i_1, ..., o_k, i_k), the column over (o_{k+1}, i_{k+1}, ..., o_N, i_N). Padding is zero.
 */
function explicitUnfolding(w: Float32Array, rows: number, cols: number, of: number[], inf: number[], k: number) {
  const N = of.length;
  const digits = (x: number, f: number[]) => {
    const d = new Array<number>(f.length);
    for (let j = f.length - 1; j >= 0; j--) { d[j] = x % f[j]; x = Math.floor(x / f[j]); }
    return d;
  };
  const L = of.slice(0, k).reduce((a, b, j) => a * b * inf[j], 1);
  const R = of.slice(k).reduce((a, b, j) => a * b * inf[k + j], 1);
  const u = new Float32Array(L * R);
  for (let r = 0; r < rows; r++) {
    const o = digits(r, of);
    for (let c = 0; c < cols; c++) {
      const i = digits(c, inf);
      let row = 0, col = 0;
      for (let j = 0; j < k; j++) row = (row * of[j] + o[j]) * inf[j] + i[j];
      for (let j = k; j < N; j++) col = (col * of[j] + o[j]) * inf[j] + i[j];
      u[row * R + col] = w[r * cols + c];
    }
  }
  return { rows: L, cols: R, data: u };
}

test('site factorisation: balanced prime packing, validation, padding and fewer-site strategies', () => {
  assert.deepEqual(primeFactors(14336), [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 7]);
  assert.deepEqual(balancedFactors(128, 2), [8, 16]);
  assert.deepEqual(balancedFactors(512, 3), [8, 8, 8]);
  assert.deepEqual(balancedFactors(65, 2), [5, 13]);
  assert.deepEqual(balancedFactors(14336, 4), [8, 8, 14, 16]);
  for (const [n, s] of [[4096, 4], [14336, 4], [384, 3], [172, 2], [509, 2]]) {
    assert.equal(balancedFactors(n, s).reduce((a, b) => a * b, 1), n);
  }
  // 65 = 5 * 13 is accepted as it is; 172 = 4 * 43 and 61 (prime) are padded; the padding is recorded.
  const head = planSites(65, 128, 2);
  assert.equal(head.strategy, 'exact');
  assert.deepEqual([head.outFactors, head.inFactors], [[5, 13], [8, 16]]);
  const ffn = planSites(172, 64, 2);
  assert.equal(ffn.strategy, 'pad');
  assert.equal(ffn.paddedOut, ffn.outFactors[0] * ffn.outFactors[1]);
  assert.ok(ffn.padding.rows > 0 && ffn.padding.rows <= 172 / 8, JSON.stringify(ffn));
  assert.equal(ffn.padding.cols, 0);
  const prime = planSites(61, 509, 2);
  assert.equal(prime.strategy, 'pad');
  assert.ok(prime.padding.rows > 0 && prime.padding.cols > 0);
  // Without padding, a prime size cannot be split: the plan falls back to fewer sites (here 1).
  const fewer = planSites(61, 64, 2, { strategy: 'fewer-sites' });
  assert.equal(fewer.strategy, 'fewer-sites');
  assert.deepEqual([fewer.outFactors, fewer.inFactors], [[61], [64]]);
  assert.throws(() => planSites(61, 64, 2, { strategy: 'exact' }), FactorisationError);
  // User factorisations must multiply out, with a message that says by how much they miss.
  assert.throws(() => userSites(130, 128, [8, 16], [8, 16]), { message: 'out-factors 8,16 multiply to 128 but the tensor has 130 rows' });
  assert.throws(() => userSites(128, 100, [8, 16], [8, 16]), /in-factors 8,16 multiply to 128 but the tensor has 100 columns/);
  assert.throws(() => userSites(128, 128, [8, 16], [2, 4, 16]), /same number on both sides/);
  assert.equal(userSites(120, 128, [8, 16], [8, 16], { allowPadding: true }).padding.rows, 8);
});

test('parameter counts of the acceptance cases come out exactly, from the formula and from real decompositions', async () => {
  const cases: Array<[number, number, number[], number[], number]> = [
    [128, 128, [8, 16], [8, 16], 2560],
    [128, 512, [4, 4, 8], [8, 8, 8], 2816],
    [65, 128, [5, 13], [8, 16], 1984],
  ];
  for (const [rows, cols, of, inf, expected] of cases) {
    assert.equal(mpoParamCount(of, inf, bondDimensionsForChi(of, inf, 8)), expected);
    const w = gaussianArray(rows * cols, rows + cols);
    const mpo = await decomposeMpo(w, rows, cols, { backend: await backend(), outFactors: of, inFactors: inf, truncation: { chi: 8 }, spectra: 'sweep' });
    assert.equal(mpo.params, expected, `${rows}x${cols}`);
    assert.equal(mpo.cores.reduce((a, c) => a + c.data.length, 0), expected, 'params = stored core elements');
    for (const c of mpo.cores) assert.equal(c.data.length, c.shape.reduce((a, b) => a * b, 1));
    assert.equal(mpo.denseParams, rows * cols);
  }
});

test('untruncated cores reconstruct the matrix to float32 round-off (incl. padded and many-site shapes)', async () => {
  const be = await backend();
  const cases: Array<[number, number, number]> = [[128, 128, 2], [128, 512, 3], [64, 96, 4], [172, 64, 2], [61, 40, 2], [65, 128, 3], [128, 128, 7]];
  for (const [rows, cols, sites] of cases) {
    const w = gaussianArray(rows * cols, 1000 + rows * 7 + sites);
    const mpo = await decomposeMpo(w, rows, cols, { backend: be, sites, spectra: 'sweep' });
    const rec = await reconstructMpo(mpo, be);
    const err = relativeFrobeniusError(w, rec);
    assert.ok(err < 1e-5, `${rows}x${cols} on ${sites} sites (${mpo.plan.strategy}, out ${mpo.outFactors}, in ${mpo.inFactors}): error ${err}`);
    assert.ok(mpo.relativeError < 1e-5);
    assert.equal(mpo.params, mpoParamCount(mpo.outFactors, mpo.inFactors, mpo.bondDimensions));
    const padded = mpo.plan.padding.rows + mpo.plan.padding.cols > 0;
    assert.equal(padded, ['172x64', '61x40', '65x128'].includes(`${rows}x${cols}`), `${rows}x${cols} padding ${JSON.stringify(mpo.plan.padding)}`);
    if (padded) {
      assert.ok(mpoReport(mpo).padding);
      assert.equal(mpo.cores.reduce((a, c) => a + c.data.length, 0), mpo.params, 'padded parameters are counted');
    }
  }
});

test('1-site MPO is the matrix itself', async () => {
  const w = gaussianArray(40 * 24, 5);
  const mpo = await decomposeMpo(w, 40, 24, { backend: await backend(), sites: 1 });
  assert.equal(mpo.cores.length, 1);
  assert.deepEqual(mpo.cores[0].shape, [1, 40, 24, 1]);
  assert.deepEqual(Array.from(mpo.cores[0].data), Array.from(w));
  assert.deepEqual(mpo.bonds, []);
  assert.equal(mpo.params, 40 * 24);
  assert.deepEqual(Array.from(await reconstructMpo(mpo, await backend())), Array.from(w));
});

test('truncated TT-SVD: measured error equals sqrt(sum of discarded weights)/||W|| and meets the error target', async () => {
  const be = await backend();
  for (const [rows, cols, sites, chi] of [[128, 128, 2, 8], [128, 512, 3, 8], [96, 64, 4, 5], [172, 64, 2, 6]] as const) {
    const w = gaussianArray(rows * cols, 77 + rows);
    const mpo = await decomposeMpo(w, rows, cols, { backend: be, sites, truncation: { chi } });
    const measured = relativeFrobeniusError(w, await reconstructMpo(mpo, be));
    const bound = Math.sqrt(mpo.bonds.reduce((a, b) => a + b.discardedWeight, 0)) / mpo.frobeniusNorm;
    assert.ok(measured <= bound + 1e-5, `${rows}x${cols}: measured ${measured} > bound ${bound}`);
    if (mpo.plan.padding.rows + mpo.plan.padding.cols === 0) {
      // Left-orthogonal cores make the discarded pieces orthogonal: the bound is attained.
      assert.ok(Math.abs(measured - bound) < 1e-5, `${rows}x${cols}: ${measured} vs ${bound}`);
    }
    // Oseledets Thm 2.2: each bond's sweep discard never exceeds the exact unfolding's best-rank tail.
    const optimalBound = Math.sqrt(mpo.bonds.reduce((a, b) => a + (b.optimalDiscardedWeight ?? Infinity), 0)) / mpo.frobeniusNorm;
    assert.ok(measured <= optimalBound + 1e-5, `${measured} > ${optimalBound}`);
    for (const b of mpo.bonds) assert.ok(b.dimension <= chi);
  }
  // A target relative error: per-bond budget eps^2 ||W||^2 / (N - 1) keeps the whole error below eps.
  const w = gaussianArray(128 * 128, 3);
  for (const eps of [0.05, 0.3, 0.6]) {
    const mpo = await decomposeMpo(w, 128, 128, { backend: be, sites: 3, truncation: { relativeError: eps } });
    const measured = relativeFrobeniusError(w, await reconstructMpo(mpo, be));
    assert.ok(measured <= eps + 1e-6, `eps ${eps}: measured ${measured}`);
    for (const b of mpo.bonds) assert.ok(b.relativeDiscardedWeight <= (eps * eps) / 2 + 1e-9);
  }
  // A per-bond discarded-weight budget.
  const mb = await decomposeMpo(w, 128, 128, { backend: be, sites: 2, truncation: { bondDiscardedWeight: 0.1 } });
  assert.ok(mb.bonds[0].relativeDiscardedWeight <= 0.1);
  assert.equal(mb.bondDimensions[0], rankForBudget(mb.bonds[0].schmidtValues, 0.1 * mb.frobeniusNorm ** 2));
});

test('Schmidt values equal the singular values of the explicitly reshaped unfolding; sum p = 1; entropy bounds', async () => {
  const be = await backend();
  const rows = 96, cols = 80;
  const w = gaussianArray(rows * cols, 11);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) w[r * cols + c] += 3 * Math.sin(r / 7) * Math.cos(c / 5); // some structure
  const of = [4, 4, 6], inf = [4, 4, 5];
  for (const truncation of [{}, { chi: 3 }]) {
    const mpo = await decomposeMpo(w, rows, cols, { backend: be, outFactors: of, inFactors: inf, truncation });
    for (const b of mpo.bonds) {
      assert.equal(b.spectrumSource, 'exact');
      const u = explicitUnfolding(w, rows, cols, of, inf, b.index);
      assert.deepEqual([u.rows, u.cols], [b.leftDim, b.rightDim]);
      const ref = (await be.svd(u)).S;
      assert.equal(b.schmidtValues.length, ref.length);
      for (let j = 0; j < ref.length; j++) {
        assert.ok(Math.abs(b.schmidtValues[j] - ref[j]) <= 1e-5 * ref[0], `bond ${b.index} s_${j}: ${b.schmidtValues[j]} vs ${ref[j]} (${JSON.stringify(truncation)})`);
      }
      const { probabilities, entropy } = spectrumEntropies(b.schmidtValues);
      const sumP = probabilities.reduce((a, x) => a + x, 0);
      assert.ok(Math.abs(sumP - 1) < 1e-12, `sum p = ${sumP}`);
      assert.ok(Math.abs(entropy - b.entropy!) < 1e-12);
      assert.ok(b.entropy! >= 0 && b.entropy! <= b.maxEntropy + 1e-12);
      assert.ok(b.renyi2! <= b.entropy! + 1e-12, 'Renyi-2 <= von Neumann');
      assert.equal(b.maxEntropy, Math.log(Math.min(b.leftDim, b.rightDim)));
      // sum of s^2 at every cut is ||W||^2 (a reshape does not change the Frobenius norm).
      assert.ok(Math.abs(tailWeight(b.schmidtValues, 0) - sumSquares(w)) < 1e-4 * sumSquares(w));
      assert.ok(Math.abs(b.optimalDiscardedWeight! - tailWeight(ref, b.dimension)) < 1e-4 * sumSquares(w));
    }
  }
  // Textbook entropies: a flat spectrum of rank r has S = S_2 = ln r; rank 1 has 0.
  assert.ok(Math.abs(spectrumEntropies([2, 2, 2, 2]).entropy - Math.log(4)) < 1e-15);
  assert.ok(Math.abs(spectrumEntropies([2, 2, 2, 2]).renyi2 - Math.log(4)) < 1e-15);
  assert.equal(spectrumEntropies([5, 0, 0]).entropy, 0);
});

test('randomized sweep route (forced by low thresholds) keeps the error bound and stays near the dense sweep', async () => {
  const be = await backend();
  // A matrix with a decaying bond spectrum: a sum of a few Kronecker products plus small noise.
  const rows = 256, cols = 256;
  const w = gaussianArray(rows * cols, 21, 0.01);
  const a = gaussianArray(16 * 16 * 6, 22), b = gaussianArray(16 * 16 * 6, 23);
  for (let t = 0; t < 6; t++) {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      w[r * cols + c] += a[t * 256 + Math.floor(r / 16) * 16 + Math.floor(c / 16)] * b[t * 256 + (r % 16) * 16 + (c % 16)] / (t + 1);
    }
  }
  const dense = await decomposeMpo(w, rows, cols, { backend: be, sites: 2, truncation: { chi: 8 }, spectra: 'sweep' });
  const fast = await decomposeMpo(w, rows, cols, {
    backend: be, sites: 2, truncation: { chi: 8 }, spectra: 'sweep', routes: { randomizedMinElements: 1, randomizedRankRatio: 4 },
  });
  assert.equal(dense.bonds[0].route, 'gram');
  assert.equal(fast.bonds[0].route, 'randomized');
  assert.equal(fast.bonds[0].spectrumSource, 'sweep-partial');
  assert.equal(fast.bonds[0].entropy, null);
  const measured = relativeFrobeniusError(w, await reconstructMpo(fast, be));
  assert.ok(Math.abs(measured - fast.relativeError) < 1e-4, `${measured} vs ${fast.relativeError}`);
  assert.ok(fast.relativeError <= dense.relativeError * 1.01 + 1e-6, `randomized ${fast.relativeError} vs dense ${dense.relativeError}`);
  for (let j = 0; j < 8; j++) assert.ok(Math.abs(fast.bonds[0].schmidtValues[j] - dense.bonds[0].schmidtValues[j]) < 1e-3 * dense.bonds[0].schmidtValues[0]);
});

test('unfoldings wider than gramMaxSide: randomized with a chi, a clear refusal without one, sweep spectra kept', async () => {
  const be = await backend();
  const w = gaussianArray(64 * 64, 8);
  const routes = { gramMaxSide: 16, randomizedMinElements: 1 };
  await assert.rejects(decomposeMpo(w, 64, 64, { backend: be, outFactors: [8, 8], inFactors: [8, 8], routes }),
    /bond 1: the 64 x 64 unfolding has rank up to 64; dense factorisations above 16 are refused/);
  const mpo = await decomposeMpo(w, 64, 64, { backend: be, outFactors: [8, 8], inFactors: [8, 8], routes, truncation: { chi: 4 } });
  assert.equal(mpo.bonds[0].route, 'randomized');
  assert.equal(mpo.bonds[0].spectrumSource, 'sweep-partial');
  assert.equal(mpo.bonds[0].schmidtValues.length, 4);
  const measured = relativeFrobeniusError(w, await reconstructMpo(mpo, be));
  assert.ok(Math.abs(measured - mpo.relativeError) < 1e-5, `${measured} vs ${mpo.relativeError}`);
});

test('error target on an unfolding wider than gramMaxSide: the randomized sketch grows until the tail fits', async () => {
  const be = await backend();
  // Bond-1 rank 3 (a sum of 3 Kronecker products of 8 x 8 blocks) plus 1e-3 noise.
  const w = gaussianArray(64 * 64, 30, 1e-3);
  const a = gaussianArray(3 * 64, 31), b = gaussianArray(3 * 64, 32);
  for (let t = 0; t < 3; t++) for (let r = 0; r < 64; r++) for (let c = 0; c < 64; c++) {
    w[r * 64 + c] += a[t * 64 + Math.floor(r / 8) * 8 + Math.floor(c / 8)] * b[t * 64 + (r % 8) * 8 + (c % 8)];
  }
  const mpo = await decomposeMpo(w, 64, 64, {
    backend: be, outFactors: [8, 8], inFactors: [8, 8], truncation: { relativeError: 0.01 }, routes: { gramMaxSide: 16, randomizedMinElements: 1, randomizedRankRatio: 2 },
  });
  assert.equal(mpo.bonds[0].route, 'randomized');
  assert.equal(mpo.bondDimensions[0], 3);
  const measured = relativeFrobeniusError(w, await reconstructMpo(mpo, be));
  assert.ok(measured <= 0.01, `${measured}`);
});

test('a cancelled signal stops the sweep with CancelledError', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(decomposeMpo(gaussianArray(64 * 64, 1), 64, 64, { backend: await backend(), sites: 3, signal: ac.signal }), CancelledError);
});

test('trained PicoGPT layers have lower bond-cut entropies than seeded Gaussian matrices of the same shape', async () => {
  const be = await backend();
  const { open } = await import('../../../src/core/checkpoint');
  const reference = JSON.parse(await (await import('node:fs/promises')).readFile(path.resolve(__dirname, '../../../../shared/reference/pico.spectra.json'), 'utf8')) as { tensors: Array<{ name: string; frobeniusNorm: number }> };
  const ckpt = await open(path.resolve(__dirname, '../../../../shared/fixtures/pico/pico.safetensors'));
  try {
    const lines: string[] = [];
    for (let layer = 0; layer < 4; layer++) {
      for (const kind of ['attn.c_proj', 'mlp.c_fc']) {
        const t = ckpt.get(`h.${layer}.${kind}.weight`)!;
        const [rows, cols] = t.shape;
        const w = await t.read();
        const ref = reference.tensors.find((x) => x.name === t.name)!;
        const gaussian = gaussianArray(rows * cols, 4242 + layer);
        for (const sites of [2, 3]) {
          const trained = await decomposeMpo(w, rows, cols, { backend: be, sites, truncation: { chi: 8 } });
          assert.ok(Math.abs(trained.frobeniusNorm - ref.frobeniusNorm) < 1e-5 * ref.frobeniusNorm, '||W||_F matches the LAPACK reference');
          const random = await decomposeMpo(gaussian, rows, cols, { backend: be, sites, truncation: { chi: 8 } });
          lines.push(`${t.name} [${rows}x${cols}] sites ${trained.outFactors}|${trained.inFactors}: trained S = ${trained.bonds.map((b) => b.entropy!.toFixed(3)).join(', ')}; random S = ${random.bonds.map((b) => b.entropy!.toFixed(3)).join(', ')}; max ${trained.bonds.map((b) => b.maxEntropy.toFixed(3)).join(', ')}`);
          for (let k = 0; k < trained.bonds.length; k++) {
            assert.ok(trained.bonds[k].entropy! < random.bonds[k].entropy!, `${t.name} bond ${k + 1}: trained ${trained.bonds[k].entropy} >= random ${random.bonds[k].entropy}`);
          }
        }
      }
    }
    console.log(lines.join('\n'));
  } finally {
    await ckpt.close();
  }
});
